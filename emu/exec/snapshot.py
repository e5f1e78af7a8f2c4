"""Snapshots of a machine, restored before every schedule of an exploration.

``S`` is copied up to its logs (tens of KiB; the exploration loop leaves out the cost and
profile counters at its end, which only reports read, and of the cache's lines copies only
those the kernels marked changed, ``H_B_CMARK``). Of ``B`` only what a run can change and
later read is restored: cache line data, the scenario data pool's read buffers, and the RAM,
shadow and touched flags of each 512-byte block a run wrote (``H_B_RAMDIRTY``, a bit mask a
page); the other byte buffers are written before they are read. A restore therefore costs
microseconds, not a copy of RAM. The exploration loop keeps a checkpoint the same way
(emu.exec.dfs.save_checkpoint: these regions, and the blocks written since the snapshot), and
when it returns puts the counters back to the snapshot's.
"""

import numpy as np

from .. import consts as K
from .._bytes import copy_bytes, fill_bytes, next_nonzero
from .._jit import flat, inline, njit


@flat
def copy_regions(S, B, S0, B0, counters, lines):
    """Copy into ``(S, B)`` from ``(S0, B0)`` (same layout) everything of a machine's state a
    run can change except RAM: ``S`` up to its tail (``counters=False``: up to the cost and
    profile counters, ``H_S_COUNTERS``), the log headers, the live dma-debug entries, the
    cache lines and the scenario data pool's read buffers.

    ``lines=True`` copies every cache line and clears the line marks (``H_B_CMARK``);
    ``lines=False`` only the lines marked changed, whose marks it clears: the exploration
    loop, between restores of the same snapshot or checkpoint.

    Sizes and offsets come from the source ``S0``: the destination may be a checkpoint's
    arrays that nothing has been saved to yet (all zeros)."""
    end = S0[K.H_S_TAIL] if counters else S0[K.H_S_COUNTERS]
    nlines = S0[K.H_C_NLINES]
    if lines:
        copy_bytes(S, 0, S0, 0, end)
        c = S0[K.H_B_CDATA]
        copy_bytes(B, c, B0, c, nlines * S0[K.H_C_LINE])
        fill_bytes(B, S0[K.H_B_CMARK], nlines, 0)
    else:
        copy_bytes(S, 0, S0, 0, S0[K.H_R_TAG])      # the line arrays lie in [TAG, RR)
        r = S0[K.H_R_RR]
        copy_bytes(S, r, S0, r, end - r)
        copy_marked_lines(S, B, S0, B0)
    for slot, hdr in ((K.H_R_EV, K.EV_HDR), (K.H_R_FIND, K.FIND_HDR),
                      (K.H_R_TRACE, K.TR_HDR)):
        copy_bytes(S, S0[slot], S0, S0[slot], hdr)
    o = S0[K.H_R_DMADBG]                          # live dma-debug entries too
    copy_bytes(S, o, S0, o, K.DD_HDR + S0[o + K.DD_COUNT] * K.DD_W)
    d = S0[K.H_B_DATA]
    copy_bytes(B, d, B0, d, S0[K.H_DATA_RW])


@inline
def copy_marked_lines(S, B, S0, B0):
    """Each cache line marked changed: its tag, pa, dirty mask, stamp and data from
    ``(S0, B0)``; its mark cleared."""
    mk = S[K.H_B_CMARK]
    nlines = S[K.H_C_NLINES]
    line = S[K.H_C_LINE]
    cdata = S[K.H_B_CDATA]
    i = next_nonzero(B, mk, nlines, 0)
    while i < nlines:
        B[mk + i] = 0
        for slot in (K.H_R_TAG, K.H_R_LPA, K.H_R_DIRTY, K.H_R_STAMP):
            S[S[slot] + i] = S0[S[slot] + i]
        copy_bytes(B, cdata + i * line, B0, cdata + i * line, line)
        i = next_nonzero(B, mk, nlines, i + 1)


@flat
def copy_page(S, B, B0, p, mask):
    """The blocks in ``mask`` of RAM page ``p`` of ``B`` from ``B0``, with their oracle
    shadow, and the page's touched flags."""
    o = p << K.PAGE_SHIFT
    ram = S[K.H_B_RAM]
    oracle = S[K.H_ORACLE] != 0
    sh = S[K.H_B_SHADOW]
    for b in range(K.PAGE_BLOCKS):
        if mask & (1 << b):
            ob = o + (b << K.BLOCK_SHIFT)
            copy_bytes(B, ram + ob, B0, ram + ob, K.BLOCK_SIZE)
            if oracle:
                copy_bytes(B, sh + ob, B0, sh + ob, K.BLOCK_SIZE)
    if oracle:
        B[S[K.H_B_TOUCHED] + p] = B0[S[K.H_B_TOUCHED] + p]


@flat
def revert_pages(S, B, B0):
    """Every RAM block written since the last restore (``H_B_RAMDIRTY``) back to ``B0``'s."""
    rd = S[K.H_B_RAMDIRTY]
    npages = S[K.H_NPAGES]
    p = next_nonzero(B, rd, npages, 0)
    while p < npages:
        mask = B[rd + p]
        B[rd + p] = 0
        copy_page(S, B, B0, p, mask)
        p = next_nonzero(B, rd, npages, p + 1)


@flat
def restore_state(S, B, S0, B0, counters, lines):
    """Back to the snapshot ``(S0, B0)``; ``counters=False`` leaves the cost and profile
    counters as they are (the exploration loop: no schedule's outcome depends on them),
    ``lines=False`` restores only the cache lines marked changed (see :func:`copy_regions`)."""
    copy_regions(S, B, S0, B0, counters, lines)
    revert_pages(S, B, B0)


@njit
def _restore(S, B, S0, B0):
    restore_state(S, B, S0, B0, True, True)


class Snapshot:
    """The state of a machine now; :meth:`restore` puts it back.

    Parameters
    ----------
    m : emu.Machine
    """

    def __init__(self, m):
        rd = int(m._S[K.H_B_RAMDIRTY])
        m._B[rd:rd + int(m._S[K.H_NPAGES])] = 0
        self.S = m._S.copy()
        self.B = m._B.copy()

    def restore(self, m):
        """Put machine ``m``'s state back as it was when the snapshot was taken.

        Parameters
        ----------
        m : emu.Machine
            The machine the snapshot was taken of.
        """
        _restore(m._S, m._B, self.S, self.B)

    def reset(self, m):
        """Copy the whole state back (slow: copies RAM); used when ``m`` was replaced.

        Parameters
        ----------
        m : emu.Machine
        """
        m._S[:] = self.S
        m._B[:] = self.B
        rd = int(m._S[K.H_B_RAMDIRTY])
        m._B[rd:rd + int(m._S[K.H_NPAGES])] = 0


def empty_log(cap):
    """Decision-log arrays for :func:`emu.exec.sched.run`.

    Parameters
    ----------
    cap : int
        Decisions the log holds.

    Returns
    -------
    tuple of numpy.ndarray
        int64: alternatives count, choice, preemption flag, action, row of the alternatives
        table, and the table (``MAXALT`` a row).
    """
    return (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64),
            np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap * K.MAXALT, np.int64))
