"""The cores' cache maintenance routines: ``dma_*_range`` and ``flush_kern_cache_all``.

Written from spec §4 (Linux 2.6.30.4 ``arch/arm/mm/{cache-v4wb,proc-arm926,proc-feroceon,
proc-xscale}.S``). Each routine records the instructions it executes as micro-ops.

Range operations are resumable between cache lines, because that is where the 2009 race
preempts ``dma_map_page()``, and in XScale's and v4wb's flush also between a line's clean and
its invalidate: :func:`dma_range_step` takes a cursor (``RANGE_START`` to begin) and returns
the next cursor (``| RANGE_HALF`` once a line is cleaned and not yet invalidated), or
``RANGE_DONE``. With ``S[H_YIELD] == 0`` it runs to the end in
one call. Feroceon's range variant is a single hardware operation with IRQs masked (fer:
``feroceon_range_dma_inv_range``), so it always completes in one step.
"""

from .. import consts as K
from .._bytes import next_other
from .._jit import flat, hot, inline, njit
from ..cost.account import loop_back, uop, uops4
from ..exec.cpu import _irqs_masked, _irqs_unmasked
from ..exec.frames import steps_passed
from .kernels import (_stat, cache_load, flush_index, line_alloc, line_op, mark_line,
                      range_lines)

RANGE_START = -1
RANGE_DONE = -2
RANGE_HALF = 1      # cursor bit: this line is cleaned, its invalidate is next (two-op flush)


@inline
def _account_line(S, op, r):
    """Micro-op for one CP15 line op ``op`` that found the line in state ``r`` (0/1/2)."""
    if op == K.OP_INV:
        uop(S, K.UOP_DLINE_INV, 1)
    elif op == K.OP_CLEAN:
        uop(S, K.UOP_DLINE_CLEAN_DIRTY if r == 2 else K.UOP_DLINE_CLEAN, 1)
    else:
        uop(S, K.UOP_DLINE_FLUSH_DIRTY if r == 2 else K.UOP_DLINE_FLUSH, 1)


@inline
def _mcr_line(S, B, op, va):
    """Issue one line op by MVA and account for it."""
    r = line_op(S, B, op, va)
    _account_line(S, op, r)


@hot
def _account_loop(S, op, n, nd, ended):
    """Micro-ops of ``n`` iterations of the range loop that met ``nd`` dirty lines:
    the line op, ``add r0, #32; cmp r0, r1; blo 1b`` (not taken once the loop ``ended``)."""
    if op == K.OP_INV:
        uop(S, K.UOP_DLINE_INV, n)                          # c7,c6,1
    elif op == K.OP_CLEAN:
        uop(S, K.UOP_DLINE_CLEAN, n - nd)                   # c7,c10,1
        uop(S, K.UOP_DLINE_CLEAN_DIRTY, nd)
    else:
        uop(S, K.UOP_DLINE_FLUSH, n - nd)                   # c7,c14,1
        uop(S, K.UOP_DLINE_FLUSH_DIRTY, nd)
    uop(S, K.UOP_ALU, 2 * n)
    loop_back(S, n, ended)


@inline
def _epilogue(S, op, style):
    if op == K.OP_FLUSH and style == K.STYLE_V4WB:
        uop(S, K.UOP_ICACHE_INV, 1)                 # mcr c7,c5,0
    uop(S, K.UOP_DRAIN_WB, 1)                       # mcr c7,c10,4
    _stat(S, K.CS_DRAINS, 1)
    uop(S, K.UOP_BRANCH, 1)                         # mov pc, lr


@inline
def _clean_edges(S, B, start, end):
    """dma_inv_range's ``tst; mcrne c7,c10,1`` pairs: clean the partial first and last lines
    (their bytes outside the buffer are the CPU's). True if either line was partial."""
    lmask = S[K.H_C_LINE] - 1
    if start & lmask:
        _mcr_line(S, B, K.OP_CLEAN, start)
    if end & lmask:
        _mcr_line(S, B, K.OP_CLEAN, end)
    return ((start | end) & lmask) != 0


@njit
def _feroceon_edges(S, B, op, start, end):
    """feroceon_range_dma_{inv,clean,flush}_range up to the range op: for an invalidate, the
    partial edge lines are cleaned (IRQs still on). True if it cleaned one."""
    uop(S, K.UOP_MRS, 1)                            # mrs r2, cpsr
    if op != K.OP_INV:
        return False
    uop(S, K.UOP_ALU, 2)                            # tst r0 / tst r1
    return _clean_edges(S, B, start, end)


@njit
def _feroceon_range(S, B, op, start, end):
    """The rest: one D-cache range op with IRQs masked."""
    lmask = S[K.H_C_LINE] - 1
    top = end - 1 if end != start else end          # "top address is inclusive"
    uop(S, K.UOP_ALU, 3)                            # cmp; subne; orr #PSR_I_BIT
    uop(S, K.UOP_MSR_C, 1)                          # disable interrupts
    cr = S[K.H_CPUREC]
    masked = S[K.H_R_CPU] != 0 and S[cr + K.CPU_IRQOFF] == 0   # (a standalone cache has
    if masked:                                                  # no CPU to mask)
        _irqs_masked(S, cr)
    uop(S, K.UOP_DRANGE_START, 2)                   # mcr p15,5,r0,c15,c1x,0 / r1,c15,c1x,1
    va = start & ~lmask
    n = 0
    while True:
        r = line_op(S, B, op, va)
        if r == 2 and op != K.OP_INV:
            uop(S, K.UOP_WRITEBACK, 1)
        n += 1
        va += lmask + 1
        if va > top:
            break
    uop(S, K.UOP_DRANGE_LINE, n)
    uop(S, K.UOP_MSR_C, 1)                          # restore interrupts
    if masked:
        _irqs_unmasked(S, cr)
    if op != K.OP_INV:
        uop(S, K.UOP_DRAIN_WB, 1)                   # clean/flush drain; inv does not
        _stat(S, K.CS_DRAINS, 1)
    uop(S, K.UOP_BRANCH, 1)


@njit
def _two_op_step(S, B, style, cursor, end):
    """One instruction of a two-op flush loop: the line's clean (``c7,c10,1``), or its
    invalidate (``c7,c6,1``) and ``add; cmp; blo``. A scheduling point lies between the two,
    as between any two instructions: a line dirtied there through a recycled alias is
    discarded by the invalidate (xsc:355, v4wb ``v4wb_coherent_kern_range``)."""
    va = cursor & ~RANGE_HALF
    if cursor == va:
        _mcr_line(S, B, K.OP_CLEAN, va)
        return va | RANGE_HALF
    _mcr_line(S, B, K.OP_INV, va)
    va += S[K.H_C_LINE]
    uop(S, K.UOP_ALU, 2)
    loop_back(S, 1, va >= end)
    if va < end:
        return va                                   # a scheduling point between two lines
    _epilogue(S, K.OP_FLUSH, style)
    return RANGE_DONE


@flat
def dma_range_step(S, B, op, start, end, cursor):
    """Run the core's ``dma_{inv,clean,flush}_range(start, end)`` from ``cursor``.

    ``end`` is exclusive; the loop is bottom-tested (at least one line); for ``OP_INV`` the
    partial first and last lines are cleaned before the invalidate loop (spec §4.1-4.5).
    Returns the cursor of the next line (or op), or ``RANGE_DONE``.
    """
    style = S[K.H_C_STYLE]
    going_on = cursor != RANGE_START            # this step is one more line, nothing else
    lmask = S[K.H_C_LINE] - 1
    if style == K.STYLE_FEROCEON:
        if cursor == RANGE_START:
            _stat(S, K.CS_RANGE_OPS, 1)
            if _feroceon_edges(S, B, op, start, end) and S[K.H_YIELD]:
                return start & ~lmask           # a scheduling point before the masked op
        _feroceon_range(S, B, op, start, end)
        return RANGE_DONE
    # ARM926 with CONFIG_CPU_DCACHE_WRITETHROUGH (arm926:248-300, spec §4.3): no line is
    # ever dirty, so dma_inv_range cleans no edge lines, dma_clean_range only drains the
    # write buffer and dma_flush_range invalidates (c7,c6,1) each line
    wt = style == K.STYLE_ARM926 and S[K.H_C_WB] == 0
    if wt and op == K.OP_FLUSH:
        op = K.OP_INV
    if cursor == RANGE_START:
        _stat(S, K.CS_RANGE_OPS, 1)
        cursor = start & ~lmask
        if wt and op == K.OP_CLEAN:
            _epilogue(S, op, style)
            return RANGE_DONE
        if op == K.OP_INV and not wt:
            uop(S, K.UOP_ALU, 3)                    # tst r0; tst r1; bic r0
            if _clean_edges(S, B, start, end) and S[K.H_YIELD]:
                # a scheduling point between the edge cleans and the invalidate loop: a line
                # dirtied here (through a recycled alias) is dropped by the loop, not cleaned
                return cursor
        else:
            uop(S, K.UOP_ALU, 1)                    # bic r0, r0, #CACHE_DLINESIZE - 1
    if op == K.OP_FLUSH and (style == K.STYLE_XSCALE or style == K.STYLE_V4WB):
        # xscale_dma_flush_range / v4wb_coherent_kern_range: clean then invalidate each
        # line, an instruction a step (all of them here when nothing yields)
        cursor = _two_op_step(S, B, style, cursor, end)
        while cursor != RANGE_DONE and S[K.H_YIELD] == 0:
            cursor = _two_op_step(S, B, style, cursor, end)
        return cursor
    nmax = K.RANGE_ALL
    if S[K.H_YIELD]:
        nmax = 1 + (S[K.H_BATCH] if going_on else 0)
    cursor, n, nd = range_lines(S, B, op, cursor, end, nmax)
    if n > 1 and nmax != K.RANGE_ALL:
        steps_passed(S, n - 1)                      # lines after the first: steps of their own
    _account_loop(S, op, n, nd, cursor >= end)
    if cursor < end:
        return cursor                               # a scheduling point between two lines
    _epilogue(S, op, style)
    return RANGE_DONE


@njit
def dma_range(S, B, op, start, end):
    """Run ``dma_*_range(start, end)`` to completion (no scheduling points)."""
    saved = S[K.H_YIELD]
    S[K.H_YIELD] = 0
    dma_range_step(S, B, op, start, end, RANGE_START)
    S[K.H_YIELD] = saved


@inline
def _flush_all_arm926(S, B):
    """arm926_flush_kern_cache_all: ``1: mrc p15,0,r15,c7,c14,3; bne 1b`` (test, clean and
    invalidate: one dirty line per iteration, the whole D-cache invalidated once clean;
    ARM926EJ-S TRM), then invalidate I-cache and drain. Dirty lines are found in index order [E].
    With CONFIG_CPU_DCACHE_WRITETHROUGH (spec §4.3) no line is dirty, and the loop is one
    ``mcr p15,0,ip,c7,c6,0`` (invalidate the whole D-cache).
    """
    tag = S[K.H_R_TAG]
    dirty = S[K.H_R_DIRTY]
    nlines = S[K.H_C_NLINES]
    wt = S[K.H_C_WB] == 0
    iters = 1
    i = nlines if wt else next_other(S, dirty, nlines, 0, 0)
    while i < nlines:
        if S[tag + i] != K.TAG_INVALID:
            flush_index(S, B, i)
            _stat(S, K.CS_LINE_FLUSHES, 1)
            uop(S, K.UOP_WRITEBACK, 1)
            iters += 1
        i = next_other(S, dirty, nlines, i + 1, 0)
    i = next_other(S, tag, nlines, 0, K.TAG_INVALID)
    while i < nlines:                               # the whole D-cache invalidated
        S[tag + i] = K.TAG_INVALID
        mark_line(S, B, i)
        i = next_other(S, tag, nlines, i + 1, K.TAG_INVALID)
    if wt:
        uop(S, K.UOP_DCACHE_INV_ALL, 1)
        return
    uop(S, K.UOP_TCI_ITER, iters)
    uop(S, K.UOP_DCACHE_SCAN, S[K.H_C_NLINES])     # the hardware walks every line once
    loop_back(S, iters, True)                       # bne 1b


@inline
def _flush_all_feroceon(S, B):
    """feroceon_flush_kern_cache_all: clean+invalidate by set/way (``mcr c7,c14,2``), sets from
    the last down to 0, ways from the last down to 0 (fer:146)."""
    ways = S[K.H_C_WAYS]
    tag = S[K.H_R_TAG]
    for st in range(S[K.H_C_NSETS] - 1, -1, -1):
        uop(S, K.UOP_ALU, 2)                        # orr ip, r1, r3 ... subs r1 (next set)
        loop_back(S, 1, st == 0)                    # bcs 1b
        loop_back(S, ways, True)                    # bcs 2b per way
        for w in range(ways - 1, -1, -1):
            i = st * ways + w
            uop(S, K.UOP_SETWAY_OP, 1)
            uop(S, K.UOP_ALU, 1)                    # subs ip, ip, #(1 << 30)
            _stat(S, K.CS_LINE_FLUSHES, 1)
            if S[tag + i] != K.TAG_INVALID and flush_index(S, B, i):
                uop(S, K.UOP_WRITEBACK, 1)


@inline
def _window(S):
    """Toggle and return the displacement window (``eor rd, rd, #CACHESIZE``)."""
    t = S[K.H_C_TOGGLE] ^ 1
    S[K.H_C_TOGGLE] = t
    uops4(S, 2, 2, 1, 0)                            # ldr rs, =clean_addr; ldr rd, [rs];
                                                    # eor; add; str rd, [rs]
    return S[K.H_C_WIN_VA] + t * S[K.H_C_WIN_SIZE]


@inline
def _flush_all_xscale(S, B):
    """xscale_flush_kern_cache_all: ``clean_d_cache`` allocates (``mcr c7,c2,5``) every line of
    a 32 KiB window that alternates between 0xFFFE0000 and 0xFFFE8000, evicting and writing back
    whatever was cached (xsc:88)."""
    base = _window(S)
    line = S[K.H_C_LINE]
    n = S[K.H_C_WIN_SIZE] // line
    for j in range(n):
        line_alloc(S, B, base + j * line)
    uop(S, K.UOP_LINE_ALLOC, n)
    uop(S, K.UOP_ALU, n + n // 4)                   # add per line, teq per 4 (unrolled x4)
    loop_back(S, n // 4, True)                      # bne 1b per 4 lines


@inline
def _flush_all_v4wb(S, B):
    """v4wb_flush_kern_cache_all: invalidate I-cache, then read CACHE_DSIZE bytes in 32-byte
    steps from a FLUSH_BASE window that toggles each time (v4wb:66); the loads displace and
    write back every line. FLUSH_BASE_PHYS is not RAM, so the fills bring zeros."""
    uop(S, K.UOP_ICACHE_INV, 1)
    base = _window(S)
    line = S[K.H_C_LINE]
    n = S[K.H_C_WIN_SIZE] // line
    for j in range(n):
        cache_load(S, B, base + j * line, K.NO_PA, 0, B, 0)
    uop(S, K.UOP_DISPLACE_LOAD, n)
    uop(S, K.UOP_ALU, n)                            # cmp
    loop_back(S, n, True)                           # blo


@njit
def flush_kern_cache_all(S, B):
    """The core's ``flush_kern_cache_all`` (what ``flush_cache_all()`` runs on ARM 2.6.30)."""
    style = S[K.H_C_STYLE]
    _stat(S, K.CS_FLUSH_ALLS, 1)
    if style == K.STYLE_ARM926:
        _flush_all_arm926(S, B)
    elif style == K.STYLE_FEROCEON:
        _flush_all_feroceon(S, B)
    elif style == K.STYLE_XSCALE:
        _flush_all_xscale(S, B)
    else:
        _flush_all_v4wb(S, B)
        uop(S, K.UOP_DRAIN_WB, 1)
        _stat(S, K.CS_DRAINS, 1)
        uop(S, K.UOP_BRANCH, 1)
        return
    uop(S, K.UOP_ICACHE_INV, 1)                     # tst r2, #VM_EXEC; mcrne c7,c5,0
    uop(S, K.UOP_DRAIN_WB, 1)                       # mcrne c7,c10,4
    _stat(S, K.CS_DRAINS, 1)
    uop(S, K.UOP_BRANCH, 1)
