"""The data-integrity oracle: which CPU writes were lost, which CPU reads were stale.

The machine keeps a shadow of what every RAM byte should hold (CPU stores and device writes,
in order; :mod:`emu.mm.ram`). Two checks use it:

* a dirty line dropped by an invalidate (a cache discard event) lost writes if its bytes were
  the latest values of memory that RAM does not hold and they lie *outside* the physical range
  the running maintenance hands to the device. Inside that range the device owns the bytes,
  so the drop is accepted and the shadow takes RAM's value;
* :func:`final_check`: RAM with the dirty cache lines laid over it must equal the shadow on
  every touched 512-byte block — a write that is neither cached nor in RAM was lost.

Stale reads are caught on each CPU load (``check_load``), and so are loads of bytes a
``device_start`` transfer in flight is still to write (``read-during-dma``, emu's own check:
the shadow changes only when the device writes).
"""

import numpy as np

from .. import consts as K
from .._bytes import copy_bytes, copy_xor, count_diff, next_nonzero, next_other
from .._jit import inline, njit
from ..mm.ram import record_finding, shadow_accept


@njit
def judge_discards(S, B):
    """Judge the discard events recorded since the last call. With the oracle on, the event
    log then starts again when it is nearly full, so that every drop is judged however many
    a machine makes (``cache.discards()`` holds those since then)."""
    if S[K.H_ORACLE] == 0:
        return
    ev = S[K.H_R_EV]
    n = min(S[ev + K.EV_COUNT], S[ev + K.EV_CAP])
    line = S[K.H_C_LINE]
    gshift = S[K.H_C_DGSHIFT]
    ram = S[K.H_B_RAM]
    sh = S[K.H_B_SHADOW]
    exp = S[K.H_B_SCRATCH]
    fnd = exp + line
    for i in range(S[K.H_EV_SEEN], n):
        r = ev + K.EV_HDR + i * K.EV_W
        pa = S[r + K.EV_PA]
        if pa == K.NO_PA:
            continue
        mask = S[r + K.EV_MASK]
        lo = S[r + K.EV_DMA_LO]
        hi = S[r + K.EV_DMA_HI]
        data = S[K.H_B_EVDATA] + i * line
        lost = 0
        for k in range(line):
            B[exp + k] = B[sh + pa + k] ^ K.RAM_POISON
            B[fnd + k] = B[ram + pa + k] ^ K.RAM_POISON
            if mask & (1 << (k >> gshift)) == 0:
                continue
            if lo <= pa + k < hi:
                shadow_accept(S, B, pa + k, 1)      # the device owns these bytes now
                B[exp + k] = B[fnd + k]
            elif B[data + k] == B[exp + k] and B[fnd + k] != B[exp + k]:
                lost += 1
        if lost:
            ctx, site, step = S[K.H_CUR_CTX], S[K.H_CUR_SITE], S[K.H_STEP]
            S[K.H_CUR_CTX] = S[r + K.EV_CTX]        # name the op that dropped the line
            S[K.H_CUR_SITE] = S[r + K.EV_SITE]
            S[K.H_STEP] = S[r + K.EV_STEP]
            record_finding(S, B, K.FIND_LOST, pa, S[r + K.EV_VA], B, exp, B, fnd, line, lost,
                           lo, hi)
            S[K.H_CUR_CTX] = ctx
            S[K.H_CUR_SITE] = site
            S[K.H_STEP] = step
    S[K.H_EV_SEEN] = n
    if S[ev + K.EV_COUNT] > S[ev + K.EV_CAP] - S[K.H_C_NLINES]:
        # every event is judged: the log starts again before it can fill (a call or a step
        # drops at most a cache's worth of lines), else later drops would go unjudged
        S[ev + K.EV_COUNT] = 0
        S[K.H_EV_SEEN] = 0


@njit
def final_check(S, B):
    """Compare RAM with the dirty lines laid over it against the shadow on touched blocks; log
    each differing line as ``FIND_FINAL``. Returns the number of differing bytes. Changes
    nothing but the findings log."""
    if S[K.H_ORACLE] == 0:
        return 0
    dirty = S[K.H_R_ISCRATCH]                      # dirty lines, in index order
    nd = 0
    nlines = S[K.H_C_NLINES]
    i = next_other(S, S[K.H_R_DIRTY], nlines, 0, 0)
    while i < nlines:
        if S[S[K.H_R_TAG] + i] != K.TAG_INVALID and S[S[K.H_R_LPA] + i] != K.NO_PA:
            S[dirty + nd] = i
            nd += 1
        i = next_other(S, S[K.H_R_DIRTY], nlines, i + 1, 0)
    total = 0
    touched = S[K.H_B_TOUCHED]
    npages = S[K.H_NPAGES]
    pfn = next_nonzero(B, touched, npages, 0)
    while pfn < npages:
        total += _check_page(S, B, pfn, nd, B[touched + pfn])
        pfn = next_nonzero(B, touched, npages, pfn + 1)
    return total


@inline
def finding_bytes(S, kind):
    """Bytes of all findings of ``kind`` so far, those past the log's capacity included:
    ``FIND_LOST``, what a run that did not finish lost before it stopped; ``FIND_STALE``,
    what its CPU reads got wrong."""
    return S[S[K.H_R_FIND] + K.FIND_BYTES + kind]


@inline
def stale_bytes(S):
    """Bytes reads got wrong so far (``FIND_STALE_KINDS``: CPU loads' stale-read and
    read-during-dma findings, devices' stale-device-read), past the log's capacity too."""
    n = 0
    for kind in K.FIND_STALE_KINDS:
        n += finding_bytes(S, kind)
    return n


@inline
def _words_equal(a, b, lo, hi):
    """``a[lo:hi] == b[lo:hi]``, word by word without an early exit, so that LLVM vectorises
    the loop (the final check of 32 device-written pages: 11.8 -> 6.9 us)."""
    acc = np.uint64(0)
    for k in range(lo, hi):
        acc |= a[k] ^ b[k]
    return acc == 0


@inline
def _line_equal(B, rw, sw, ram, sh, lpa, s, line):
    """Does RAM hold the shadow's bytes on line slot ``s`` (at ``lpa``) of the page?"""
    if line < 8:
        return count_diff(B, ram + lpa, B, sh + lpa, line, 0) == 0
    w = line >> 3
    return _words_equal(rw, sw, s * w, s * w + w)


@njit
def _check_page(S, B, pfn, nd, mask):
    """:func:`final_check` of the touched blocks (``mask``) of one page; the first ``nd``
    ISCRATCH entries list the dirty lines. Each line slot of the page gets the list of dirty
    lines holding it (in index order: when aliases hold the same bytes, the later index is
    laid over last). A dirty line lies in a touched block: a CPU store dirtied it."""
    line = S[K.H_C_LINE]
    slots = K.PAGE_SIZE // line
    base = pfn << K.PAGE_SHIFT
    dirty = S[K.H_R_ISCRATCH]
    heads = dirty + S[K.H_C_NLINES]                # [slots] first list entry, or -1
    nxt = heads + slots                            # [nd] next entry of the same slot
    for s in range(slots):
        S[heads + s] = -1
    lpas = S[K.H_R_LPA]
    dblocks = 0                                    # blocks holding a dirty line's slot
    for j in range(nd - 1, -1, -1):                # push-front in reverse: lists in order
        lpa = S[lpas + S[dirty + j]]
        if lpa >> K.PAGE_SHIFT == pfn:
            s = (lpa - base) // line
            S[nxt + j] = S[heads + s]
            S[heads + s] = j
            dblocks |= 1 << ((lpa - base) >> K.BLOCK_SHIFT)
    any_dirty = dblocks != 0
    ram = S[K.H_B_RAM]
    sh = S[K.H_B_SHADOW]
    rw = B[ram + base:ram + base + K.PAGE_SIZE].view(np.uint64)   # compared 8 bytes at a time
    sw = B[sh + base:sh + base + K.PAGE_SIZE].view(np.uint64)
    wb = K.BLOCK_SIZE >> 3                         # words a block
    same = True
    for b in range(K.PAGE_BLOCKS):
        if mask & (1 << b) and not _words_equal(rw, sw, b * wb, b * wb + wb):
            same = False
            break
    if same and not any_dirty:
        return 0
    gshift = S[K.H_C_DGSHIFT]
    full = (1 << (line >> gshift)) - 1             # every granule dirty
    eff = S[K.H_B_SCRATCH]
    exp = eff + line
    total = 0
    spb = K.BLOCK_SIZE // line                     # slots a block (lines are <= 256 bytes)
    for b in range(K.PAGE_BLOCKS):
        if not (mask | dblocks) & (1 << b):
            continue                               # untouched, no dirty line: RAM is right
        for s in range(b * spb, b * spb + spb):
            lpa = base + s * line
            j = S[heads + s]
            if j < 0 and (same or not mask & (1 << b)
                          or _line_equal(B, rw, sw, ram, sh, lpa, s, line)):
                continue                           # no dirty line, RAM holds the shadow
            copy_xor(B, eff, B, ram + lpa, line, K.RAM_POISON)
            copy_xor(B, exp, B, sh + lpa, line, K.RAM_POISON)
            va = -1
            while j >= 0:
                i = S[dirty + j]
                va = S[S[K.H_R_TAG] + i]
                d = S[K.H_B_CDATA] + i * line
                m = S[S[K.H_R_DIRTY] + i]
                if m == full:
                    copy_bytes(B, eff, B, d, line)
                else:
                    for k in range(line):
                        if m & (1 << (k >> gshift)):
                            B[eff + k] = B[d + k]
                j = S[nxt + j]
            bad = count_diff(B, eff, B, exp, line, 0)
            if bad:
                record_finding(S, B, K.FIND_FINAL, lpa, va, B, exp, B, eff, line, bad, -1, -1)
                total += bad
    return total
