"""emu._bytes: the flag and word scans the restores, the final check and the whole-cache flush
use to skip runs of unchanged entries, against plain Python loops."""

import numpy as np
from hypothesis import given, settings, strategies as st

from emu._bytes import next_nonzero, next_other
from emu._jit import njit


@njit
def _all_other(a, ao, n, v, out):
    """Every index next_other finds, walking the array as its callers do."""
    k = 0
    i = next_other(a, ao, n, 0, v)
    while i < n:
        out[k] = i
        k += 1
        i = next_other(a, ao, n, i + 1, v)
    return k


@njit
def _all_nonzero(a, ao, n, out):
    k = 0
    i = next_nonzero(a, ao, n, 0)
    while i < n:
        out[k] = i
        k += 1
        i = next_nonzero(a, ao, n, i + 1)
    return k


def _sparse(dtype, filler):
    """(array, offset, length): mostly ``filler``, a few other values, lengths that are not
    multiples of eight and offsets that are not aligned."""
    return st.tuples(st.integers(0, 9), st.integers(0, 70), st.lists(st.integers(0, 69),
                                                                      max_size=6),
                     st.integers(-3, 3)).map(lambda t: _build(dtype, filler, *t))


def _build(dtype, filler, ao, n, hits, other):
    a = np.full(ao + n + 9, filler, dtype)
    val = other if other != filler else filler + 1
    for h in hits:
        if h < n:
            a[ao + h] = val % 256 if dtype == np.uint8 else val
    a[ao + n:] = filler + 2 if dtype != np.uint8 else 1      # past the end: never found
    return a, ao, n


@settings(max_examples=300, deadline=None)
@given(_sparse(np.int64, -1), st.sampled_from([0, -1]))
def test_next_other_finds_every_word_that_differs(arr, v):
    a, ao, n = arr
    out = np.zeros(n + 1, np.int64)
    k = _all_other(a, ao, n, v, out)
    assert out[:k].tolist() == [i for i in range(n) if a[ao + i] != v]


@settings(max_examples=300, deadline=None)
@given(_sparse(np.uint8, 0))
def test_next_nonzero_finds_every_flag(arr):
    a, ao, n = arr
    out = np.zeros(n + 1, np.int64)
    k = _all_nonzero(a, ao, n, out)
    assert out[:k].tolist() == [i for i in range(n) if a[ao + i] != 0]
