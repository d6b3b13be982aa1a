#!/usr/bin/python3
"""Single-tone audio for interop/xmpp-web.sh: make a tone, then judge a recording of it.

  audiocheck.py gen OUT.wav --freq HZ [--rate 48000] [--seconds 10]
  audiocheck.py check GOT.wav --freq HZ [--tol 15] [--min-active-s 1.5] [--min-share 0.8]

`check` cuts the recording into 50 ms blocks, calls a block active when its RMS is above
-40 dBFS, and finds each active block's dominant frequency (peak of a Hann-windowed FFT,
refined by parabolic interpolation). It passes when there is enough active audio and enough
of the active blocks peak within --tol Hz of --freq; it prints
`rms_dbfs=R active_s=S peak_hz=P share=F` (P: median peak over active blocks). Silence, a
wrong pitch (e.g. our own tone echoed back) or noise fail. Why a single tone and not the
tone patterns of interop/phone/tones.py: Chromium's fake microphone loops its file from the
moment getUserMedia opens it, so the recording's start in the pattern is unknown.
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
    n = int(a.rate * a.seconds)
    t = np.arange(n) / a.rate
    pcm = (0.5 * np.sin(2 * math.pi * a.freq * t) * 32767).astype("<i2")
    with wave.open(a.out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(a.rate)
        w.writeframes(pcm.tobytes())
    return 0


def peak_hz(block, rate):
    spec = np.abs(np.fft.rfft(block * np.hanning(len(block))))
    spec[0] = 0.0
    k = int(np.argmax(spec))
    if 0 < k < len(spec) - 1:
        a, b, c = np.log(spec[k - 1] + 1e-12), np.log(spec[k] + 1e-12), np.log(spec[k + 1] + 1e-12)
        den = a - 2 * b + c
        k = k + (0.5 * (a - c) / den if den != 0 else 0.0)
    return k * rate / len(block)


def check(a):
    x, rate = read(a.got)
    n = int(rate * 0.05)
    peaks = []
    for i in range(0, len(x) - n + 1, n):
        b = x[i:i + n]
        if math.sqrt(float(np.mean(b * b))) >= 10 ** (-40 / 20):
            peaks.append(peak_hz(b, rate))
    rms = math.sqrt(float(np.mean(x * x))) if len(x) else 0.0
    rms_db = 20 * math.log10(rms) if rms > 0 else -math.inf
    active_s = len(peaks) * 0.05
    share = sum(1 for p in peaks if abs(p - a.freq) <= a.tol) / len(peaks) if peaks else 0.0
    med = float(np.median(peaks)) if peaks else 0.0
    print(f"rms_dbfs={rms_db:.1f} active_s={active_s:.2f} peak_hz={med:.0f} share={share:.2f}")
    return 0 if active_s >= a.min_active_s and share >= a.min_share else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--freq", type=float, required=True)
    g.add_argument("--rate", type=int, default=48000)
    g.add_argument("--seconds", type=float, default=10)
    c = sub.add_parser("check")
    c.add_argument("got")
    c.add_argument("--freq", type=float, required=True)
    c.add_argument("--tol", type=float, default=15)
    c.add_argument("--min-active-s", type=float, default=1.5)
    c.add_argument("--min-share", type=float, default=0.8)
    a = p.parse_args()
    return gen(a) if a.cmd == "gen" else check(a)


if __name__ == "__main__":
    sys.exit(main())
