"""The cache kernels' line marks (``H_B_CMARK``): every operation marks each line whose tag,
pa, dirty mask, stamp or data it changes (the exploration loop restores only marked lines).
Random operation sequences on standalone caches of every replacement policy and write policy,
trace replays included; the machine-level check with a warm snapshot is in
test_exec_snapshot.py."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from emu import consts as K
from emu.cache import Cache

OPS = ("load", "store", "inv_line", "clean_line", "flush_line", "inv_range", "clean_range",
       "flush_range", "flush_all", "replay")
WEIGHTED = ("load", "store") * 4 + OPS         # mostly accesses: hits on lines filled before


def line_rows(S, B):
    """Each cache line's tag, pa, dirty mask, stamp and data, one row a line (also used by
    test_exec_snapshot.py)."""
    n, line = int(S[K.H_C_NLINES]), int(S[K.H_C_LINE])
    words = np.stack([S[int(S[s]):int(S[s]) + n] for s in (K.H_R_TAG, K.H_R_LPA, K.H_R_DIRTY,
                                                           K.H_R_STAMP)], axis=1)
    d = int(S[K.H_B_CDATA])
    return np.concatenate([words.view(np.uint8).reshape(n, -1),
                           B[d:d + n * line].reshape(n, line)], axis=1)


def _lines(c):
    return line_rows(c._S, c._B)


def _marks(c):
    mk, n = int(c._S[K.H_B_CMARK]), int(c._S[K.H_C_NLINES])
    return c._B[mk:mk + n]


def _apply(c, op, a, n):
    if op == "load":
        c.load(a, n)
    elif op == "store":
        c.store(a, bytes([a & 0xFF]) * n)
    elif op in ("inv_line", "clean_line", "flush_line"):
        getattr(c, op)(a)
    elif op == "flush_all":
        c.flush_all()
    elif op == "replay":
        kinds = np.array([(a >> k) % 6 for k in range(8)], np.int64)
        addrs = np.array([a + 24 * k for k in range(8)], np.int64)
        c.replay(kinds, addrs, np.full(8, n, np.int64))
    else:
        getattr(c, op)(a & ~31, (a & ~31) + 32 * n)


@pytest.mark.parametrize("repl", K.REPL_NAMES)
@settings(max_examples=40, deadline=None)
@given(st.booleans(), st.booleans(),
       st.lists(st.tuples(st.sampled_from(WEIGHTED),
                          st.one_of(st.integers(0, 0x1FF), st.integers(0, 0x3FFF)),
                          st.integers(1, 40)),
                min_size=1, max_size=40))
def test_every_line_an_operation_changes_is_marked(repl, wb, wa, ops):
    c = Cache(size=2048, ways=4, line=32, replacement=repl, write_back=wb, write_allocate=wa,
              ram_size=1 << 16)
    for op, a, n in ops:
        _marks(c)[:] = 0
        before = _lines(c)
        _apply(c, op, a, n)
        changed = (_lines(c) != before).any(axis=1)
        assert not (changed & (_marks(c) == 0)).any(), (op, np.flatnonzero(changed))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("repl", K.REPL_NAMES)
def test_each_operation_on_lines_filled_before_it(repl, op):
    """Every operation on lines a clean and a dirty fill left in the cache (hits, LRU stamps,
    cleans, invalidates, evictions by a conflicting fill): the lines it changes are marked."""
    c = Cache(size=2048, ways=4, line=32, replacement=repl, ram_size=1 << 16)
    c.load(0x40, 8)                                 # clean line
    c.load(0x80, 8)
    c.store(0x80, b"\x55" * 8)                      # dirty line
    seen = False
    for a, n in ((0x40, 8), (0x80, 8), (0x40, 40)):
        _marks(c)[:] = 0
        before = _lines(c)
        _apply(c, op, a, n)
        changed = (_lines(c) != before).any(axis=1)
        assert not (changed & (_marks(c) == 0)).any(), (a, np.flatnonzero(changed))
        seen |= changed.any()
    assert seen
