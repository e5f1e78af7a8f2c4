"""The data-integrity oracle: which CPU writes were lost, which CPU reads were stale.

The machine keeps a shadow of what every RAM byte should hold (CPU stores and device writes,
in order; :mod:`emu.mm.ram`). Two checks use it:

* a dirty line dropped by an invalidate (a cache discard event) lost writes if its bytes were
  the latest values of memory that RAM does not hold and they lie *outside* the physical range
  the running maintenance hands to the device. Inside that range the device owns the bytes,
  so the drop is accepted and the shadow takes RAM's value;
* :func:`final_check`: RAM with the dirty cache lines laid over it must equal the shadow on
  every touched page — a write that is neither cached nor in RAM was lost.

Stale reads are caught on each CPU load (``check_load``).
"""

from .. import consts as K
from .._bytes import copy_xor, count_diff
from .._jit import njit
from ..mm.ram import record_finding, shadow_accept


@njit
def judge_discards(S, B):
    """Judge the discard events recorded since the last call."""
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


@njit
def final_check(S, B):
    """Compare RAM with the dirty lines laid over it against the shadow on touched pages; log
    each differing line as ``FIND_FINAL``. Returns the number of differing bytes. Changes
    nothing but the findings log."""
    if S[K.H_ORACLE] == 0:
        return 0
    line = S[K.H_C_LINE]
    gshift = S[K.H_C_DGSHIFT]
    ram = S[K.H_B_RAM]
    sh = S[K.H_B_SHADOW]
    touched = S[K.H_B_TOUCHED]
    eff = S[K.H_B_SCRATCH]
    exp = eff + line
    dirty = S[K.H_R_ISCRATCH]                      # dirty lines, in index order
    nd = 0
    for i in range(S[K.H_C_NLINES]):
        if S[S[K.H_R_TAG] + i] != K.TAG_INVALID and S[S[K.H_R_DIRTY] + i] != 0 \
                and S[S[K.H_R_LPA] + i] != K.NO_PA:
            S[dirty + nd] = i
            nd += 1
    total = 0
    for pfn in range(S[K.H_NPAGES]):
        if B[touched + pfn] == 0:
            continue
        base = pfn << K.PAGE_SHIFT
        clean = True                                # fast path: no dirty line, RAM == shadow
        for j in range(nd):
            if S[S[K.H_R_LPA] + S[dirty + j]] >> K.PAGE_SHIFT == pfn:
                clean = False
                break
        if clean and count_diff(B, ram + base, B, sh + base, K.PAGE_SIZE, 0) == 0:
            continue
        for lpa in range(base, base + K.PAGE_SIZE, line):
            copy_xor(B, eff, B, ram + lpa, line, K.RAM_POISON)
            copy_xor(B, exp, B, sh + lpa, line, K.RAM_POISON)
            va = -1
            for j in range(nd):                     # dirty lines win, later index last
                i = S[dirty + j]
                if S[S[K.H_R_LPA] + i] == lpa:
                    va = S[S[K.H_R_TAG] + i]
                    d = S[K.H_B_CDATA] + i * line
                    m = S[S[K.H_R_DIRTY] + i]
                    for k in range(line):
                        if m & (1 << (k >> gshift)):
                            B[eff + k] = B[d + k]
            bad = count_diff(B, eff, B, exp, line, 0)
            if bad:
                record_finding(S, B, K.FIND_FINAL, lpa, va, B, exp, B, eff, line, bad, -1, -1)
                total += bad
    return total
