#!/usr/bin/python3
"""Tone-pattern audio for the phone interop tests: make a reference, then judge a recording.

  tones.py gen OUT.wav [--rate 8000] [--seconds 10] [--freqs 440,1000,...] [--seg-ms 250]
  tones.py check REF.wav GOT.wav [--min-match 0.85] [--min-seconds 3]

The reference is a sequence of pure tones (seg-ms each, cycling through freqs). `check`
measures the dominant frequency of every 50 ms block of both files (Goertzel bank over the
reference's frequencies plus an "other" bin from total energy), slides the recording
against the reference in 10 ms steps, and at the best lag counts the recording's blocks
whose tone equals the reference's. It passes when enough of the overlap matches and the
recording has enough active audio; it prints `match=M active_s=S lag_ms=L`. Resampling,
codec noise and concealment are tolerated; silence, wrong pitch or wrong content are not.
"""
import argparse
import math
import sys
import wave

import numpy as np


def read(path):
    with wave.open(path, "rb") as w:
        ch, sw, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if sw != 2:
        sys.exit(f"{path}: 16-bit PCM expected")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return x.reshape(-1, ch)[:, 0], rate


def gen(a):
    freqs = [float(f) for f in a.freqs.split(",")]
    seg = int(a.rate * a.seg_ms / 1000)
    n = int(a.rate * a.seconds)
    t = np.arange(seg) / a.rate
    fade = np.minimum(1.0, np.minimum(np.arange(seg), seg - 1 - np.arange(seg)) / (0.005 * a.rate))
    out = []
    k = 0
    while sum(len(s) for s in out) < n:
        out.append(0.5 * np.sin(2 * math.pi * freqs[k % len(freqs)] * t) * fade)
        k += 1
    pcm = (np.concatenate(out)[:n] * 32767).astype("<i2")
    with wave.open(a.out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(a.rate)
        w.writeframes(pcm.tobytes())


def labels(x, rate, freqs, block):
    """Per block: index of the dominant reference frequency, -1 silent, -2 other sound."""
    n = int(rate * block / 1000)
    out = []
    for i in range(0, len(x) - n + 1, n):
        b = x[i:i + n] * np.hanning(n)
        energy = float(np.sum(b * b))
        if math.sqrt(energy / n) < 10 ** (-40 / 20):
            out.append(-1)
            continue
        t = np.arange(n) / rate
        powers = [abs(np.sum(b * np.exp(-2j * math.pi * f * t))) ** 2 for f in freqs]
        best = int(np.argmax(powers))
        # a Hann-windowed pure tone puts about 3/8 n^2/4 ... compare against the energy
        share = 2 * powers[best] / (n * energy) / 0.375
        out.append(best if share > 0.5 else -2)
    return out


def check(a):
    ref, rr = read(a.ref)
    got, gr = read(a.got)
    freqs = [float(f) for f in a.freqs.split(",")]
    block = 50
    lr = labels(ref, rr, freqs, block)
    # The recording's blocks are cut at every 10 ms offset: a jitter buffer that stretched
    # playout by 20 ms under load leaves the tones off the 50 ms grid, and every block that
    # straddles two tones would otherwise count as wrong.
    step = 10
    best = (0.0, 0)
    active_s = 0.0
    for off in range(0, block, step):
        lg = labels(got[int(gr * off / 1000):], gr, freqs, block)
        if off == 0:
            active_s = sum(1 for v in lg if v != -1) * block / 1000
        for lag in range(0, max(1, len(lg) - 10)):
            pairs = [(lr[i], lg[i + lag]) for i in range(len(lr)) if i + lag < len(lg) and lr[i] >= 0]
            if len(pairs) < 20:
                break
            m = sum(1 for r, g in pairs if r == g) / len(pairs)
            if m > best[0]:
                best = (m, lag * block + off)
    ok = best[0] >= a.min_match and active_s >= a.min_seconds
    line = f"match={best[0]:.3f} active_s={active_s:.1f} lag_ms={best[1]}"
    if not ok:
        # What was heard, one character per 50 ms block (tone index, '.' silence, '?' other
        # sound), beside what was sent, at lag 0 of the recording's own start: enough to tell
        # a gap from a slip from noise when the recording itself is gone.
        def show(ls):
            return "".join("." if v == -1 else "?" if v == -2 else str(v) for v in ls)
        lg = labels(got, gr, freqs, block)
        line += f" got={show(lg[:160])} sent={show(lr[:min(len(lg), 160)])}"
    print(line)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--rate", type=int, default=8000)
    g.add_argument("--seconds", type=float, default=10)
    g.add_argument("--freqs", default="440,1000,700,1300,550,850,1150,400")
    g.add_argument("--seg-ms", type=int, default=250)
    c = sub.add_parser("check")
    c.add_argument("ref")
    c.add_argument("got")
    c.add_argument("--freqs", default="440,1000,700,1300,550,850,1150,400")
    c.add_argument("--min-match", type=float, default=0.85)
    c.add_argument("--min-seconds", type=float, default=3)
    a = p.parse_args()
    if a.cmd == "gen":
        gen(a)
        return 0
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
