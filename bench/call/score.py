"""Scores one received recording against the speech that was sent.

    score.py SENT.wav GOT.wav        -> prints `pesq=F delay_ms=F` (or `pesq=nan ... err=...`)

GOT is brought to 8 kHz mono, then cross-correlated with SENT (FFT, lags 0..3 s): the peak is
the mouth-to-ear delay when GOT starts at the moment SENT started playing (true for natter's
and linphonec's playout recordings; baresip's decoder dump has no silence before the first
packet, so its lag is not a delay). GOT is shifted by that lag and cut to SENT's length, then
scored with ITU-T P.862 narrowband (the `pesq` package; P.862 also re-aligns piecewise).
"""
import sys

import numpy as np
from pesq import pesq
from scipy.io import wavfile
from scipy.signal import fftconvolve, resample_poly

RATE = 8000


def load(path):
    rate, x = wavfile.read(path)
    x = x.astype(np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if rate != RATE:
        g = np.gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g)
    return x


def main():
    ref, got = load(sys.argv[1]), load(sys.argv[2])
    if len(got) < RATE or np.abs(got).max() < 1:
        print(f"pesq=nan delay_ms=nan err=silent_or_short len_s={len(got) / RATE:.1f}")
        return
    max_lag = 3 * RATE
    seg = got[: len(ref) + max_lag]
    c = fftconvolve(seg, ref[::-1], mode="full")
    # Index len(ref)-1 is lag 0; keep lags 0..max_lag.
    c = c[len(ref) - 1: len(ref) - 1 + max_lag + 1]
    lag = int(np.argmax(c))
    aligned = got[lag: lag + len(ref)]
    if len(aligned) < len(ref):
        aligned = np.concatenate([aligned, np.zeros(len(ref) - len(aligned))])
    try:
        score = pesq(RATE, ref.astype(np.float32), aligned.astype(np.float32), "nb")
    except Exception as e:  # pesq raises on e.g. "no utterances detected"
        print(f"pesq=nan delay_ms={lag * 1000 / RATE:.0f} err={type(e).__name__}")
        return
    print(f"pesq={score:.2f} delay_ms={lag * 1000 / RATE:.0f}")


main()
