"""Helpers the benchmark files share: interleaved timing and numba-vs-C state comparison."""

import gc
import time

import numpy as np

from emu import consts as K


def interleaved_min(fns, rounds):
    """Best time of each function over ``rounds`` interleaved rounds (GC off while timing)."""
    best = [float("inf")] * len(fns)
    was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for j, f in enumerate(fns):
                t0 = time.perf_counter()
                f()
                best[j] = min(best[j], time.perf_counter() - t0)
    finally:
        if was:
            gc.enable()
    return best


def where(S, j):
    """Name the header slot or region of ``S[j]`` (for a readable mismatch message)."""
    if j < K.HDR_SIZE:
        return next((n for n, v in vars(K).items() if n.startswith("H_") and v == j), "H_?")
    regions = sorted((int(S[v]), n) for n, v in vars(K).items()
                     if n.startswith("H_R_") and v < K.HDR_SIZE)
    name, off = "?", 0
    for o, n in regions:
        if o <= j:
            name, off = n, o
    return f"{name}[{j - off}]"


def _mask_scratch(S):
    """``S`` with the final check's per-page slot lists blanked: scratch space the C oracle
    (a plain scan) does not use; only the dirty-line list before them is compared."""
    S = S.copy()
    isc, n = int(S[K.H_R_ISCRATCH]), int(S[K.H_C_NLINES])
    S[isc + n:isc + 2 * n + K.PAGE_SIZE // max(int(S[K.H_C_LINE]), 1)] = 0
    return S


def assert_same(S1, B1, S2, B2, what):
    """numba (S1, B1) and C (S2, B2) must be byte-identical (but for scratch the C does not
    use); name the first difference."""
    if S1[K.H_R_ISCRATCH] > 0:
        S1, S2 = _mask_scratch(S1), _mask_scratch(S2)
    if not np.array_equal(S1, S2):
        j = int(np.flatnonzero(S1 != S2)[0])
        raise AssertionError(f"{what}: S differs first at {j} ({where(S1, j)}): "
                             f"numba {S1[j]} vs C {S2[j]}")
    if not np.array_equal(B1, B2):
        j = int(np.flatnonzero(B1 != B2)[0])
        raise AssertionError(f"{what}: B differs first at {j}: numba {B1[j]} vs C {B2[j]}")
