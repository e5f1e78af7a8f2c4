"""emu._rawindex: C-like integer indexing in emu's kernels, Python's everywhere else."""

import numba
import numpy as np
import pytest

from emu._jit import njit as emu_njit

pytestmark = pytest.mark.skipif(numba.config.DISABLE_JIT,
                                reason="indexing is Python's with NUMBA_DISABLE_JIT=1")


def _update(S, i, j):
    S[i + 1] += S[S[j]]
    S[j] = 7
    return S[i]


def _load(S, i):
    return S[i]


def _wraparound_selects(disp):
    """How many ``select``s the function's LLVM IR has: numba's wrap-around is one per
    signed-index access (the kernels here have no other)."""
    ir = next(iter(disp.inspect_llvm().values()))
    return ir[ir.find("define"):].count(" select ")


def test_emu_kernels_index_without_wraparound():
    raw = emu_njit(cache=False)(_update)
    plain = numba.njit(cache=False)(_update)
    S1, S2 = np.arange(10, dtype=np.int64), np.arange(10, dtype=np.int64)
    assert raw(S1, 3, 2) == plain(S2, 3, 2) == 3
    assert np.array_equal(S1, S2) and S1[4] == 6 and S1[2] == 7
    assert _wraparound_selects(plain) >= 4
    assert _wraparound_selects(raw) == 0


def test_other_functions_keep_python_indexing():
    """A plain numba function, compiled after emu's and called from an emu kernel, still
    counts a negative index from the end."""
    plain = numba.njit(cache=False)(_load)
    calls_plain = emu_njit(cache=False)(lambda S, i: plain(S, i))
    S = np.arange(10, dtype=np.int64) * 3
    assert calls_plain(S, -1) == 27
    assert plain(S, -2) == 24
    assert _wraparound_selects(plain) == 1


def test_boundscheck_still_catches_a_negative_index():
    checked = emu_njit(cache=False, boundscheck=True)(_load)
    S = np.arange(4, dtype=np.int64)
    assert checked(S, 3) == 3
    with pytest.raises(IndexError):
        checked(S, -1)
    with pytest.raises(IndexError):
        checked(S, 4)
