"""The context runner: dispatches frames to the routines' step functions.

``run_step(S, B, c)`` runs context ``c`` until its next scheduling point (``ST_YIELD``), or until
it spins, sleeps, fails or finishes. With ``S[H_YIELD] == 0`` scheduling points are passed
through, so a direct call runs to completion in one call. The interleaving executor
(:mod:`emu.exec.sched`) calls ``run_step`` for whichever context its schedule picks; when
the schedule already says that context goes on (``H_BATCH``), ``run_step`` passes that many
more line-loop scheduling points (``H_SAME_SET``) and counts each as a step.
"""

from .. import consts as K
from .._jit import flat, tiny
from ..dma.mapping import (dma_cache_maint_page_step, dma_map_page_step, dma_sync_for_cpu_step,
                           dma_sync_for_device_step, dma_unmap_page_step)
from ..mm.access import cpu_read_step, cpu_write_step
from ..mm.highmem import (kmap_flush_unused_step, kmap_high_get_step, kmap_high_step,
                          kmap_step, kunmap_high_step, kunmap_step)
from ..cost.account import set_site
from .cpu import cpu_rec
from .frames import ctx_rec, fail, push_at, routine_returned, steps_passed
from .program import program_step

# The site each routine's own instructions are charged to.
R2SITE = (
    K.SITE_USER, K.SITE_PROGRAM, K.SITE_KMAP_HIGH, K.SITE_KUNMAP_HIGH, K.SITE_KMAP_HIGH_GET,
    K.SITE_KMAP_FLUSH_UNUSED, K.SITE_KMAP, K.SITE_KUNMAP, K.SITE_CPU_ACCESS,
    K.SITE_CPU_ACCESS, K.SITE_DMA_MAP_PAGE, K.SITE_DMA_UNMAP_PAGE,
    K.SITE_DMA_SYNC_SINGLE_FOR_CPU, K.SITE_DMA_SYNC_SINGLE_FOR_DEVICE,
    K.SITE_DMA_CACHE_MAINT_PAGE, K.SITE_KUNMAP_HIGH,
)
assert len(R2SITE) == len(K.ROUTINE_NAMES)


@tiny
def dispatch(S, B, c, f):
    """Run the routine of frame ``f`` from its resume point, its own instructions charged
    to the routine's site. (Each branch looks its site up with a constant index, which numba
    folds: one table lookup by the loaded routine id cost ~4 ns on the kmap pair.)"""
    r = S[f + K.F_ROUTINE]
    if r == K.R_KMAP_HIGH:
        set_site(S, R2SITE[K.R_KMAP_HIGH])
        return kmap_high_step(S, B, c, f)
    if r == K.R_KUNMAP_HIGH or r == K.R_KUNMAP_HIGH_UNPIN:     # (the same routine)
        set_site(S, R2SITE[K.R_KUNMAP_HIGH])
        return kunmap_high_step(S, B, c, f)
    if r == K.R_CPU_WRITE:
        set_site(S, R2SITE[K.R_CPU_WRITE])
        return cpu_write_step(S, B, c, f)
    if r == K.R_CPU_READ:
        set_site(S, R2SITE[K.R_CPU_READ])
        return cpu_read_step(S, B, c, f)
    if r == K.R_DMA_CACHE_MAINT_PAGE:
        set_site(S, R2SITE[K.R_DMA_CACHE_MAINT_PAGE])
        return dma_cache_maint_page_step(S, B, c, f)
    if r == K.R_KMAP_HIGH_GET:
        set_site(S, R2SITE[K.R_KMAP_HIGH_GET])
        return kmap_high_get_step(S, B, c, f)
    if r == K.R_PROGRAM:
        set_site(S, R2SITE[K.R_PROGRAM])
        return program_step(S, B, c, f)
    if r == K.R_KMAP:
        set_site(S, R2SITE[K.R_KMAP])
        return kmap_step(S, B, c, f)
    if r == K.R_KUNMAP:
        set_site(S, R2SITE[K.R_KUNMAP])
        return kunmap_step(S, B, c, f)
    if r == K.R_DMA_MAP_PAGE:
        set_site(S, R2SITE[K.R_DMA_MAP_PAGE])
        return dma_map_page_step(S, B, c, f)
    if r == K.R_DMA_UNMAP_PAGE:
        set_site(S, R2SITE[K.R_DMA_UNMAP_PAGE])
        return dma_unmap_page_step(S, B, c, f)
    if r == K.R_DMA_SYNC_SINGLE_FOR_CPU:
        set_site(S, R2SITE[K.R_DMA_SYNC_SINGLE_FOR_CPU])
        return dma_sync_for_cpu_step(S, B, c, f)
    if r == K.R_DMA_SYNC_SINGLE_FOR_DEVICE:
        set_site(S, R2SITE[K.R_DMA_SYNC_SINGLE_FOR_DEVICE])
        return dma_sync_for_device_step(S, B, c, f)
    if r == K.R_KMAP_FLUSH_UNUSED:
        set_site(S, R2SITE[K.R_KMAP_FLUSH_UNUSED])
        return kmap_flush_unused_step(S, B, c, f)
    set_site(S, R2SITE[K.R_NONE])
    return fail(S, K.ERR_BUG, 0, r, 0, 0)


@tiny
def switch_cpu(S, cpu):
    """Make ``cpu`` the running CPU: its clock moves into ``H_NOW``."""
    old = S[K.H_CUR_CPU]
    if old != cpu:
        S[cpu_rec(S, old) + K.CPU_CLOCK] = S[K.H_NOW]
        S[K.H_NOW] = S[cpu_rec(S, cpu) + K.CPU_CLOCK]
        S[K.H_CUR_CPU] = cpu
        S[K.H_CPUREC] = cpu_rec(S, cpu)


@tiny
def enter_context(S, c):
    """Make ``c`` the running context (its CPU, clock and context kind). Its accounting row
    (``H_UOPCUR``) is set by the ``set_site`` each caller makes next, before it records
    anything (the routine's site in ``dispatch``, the scheduler's or IRQ entry's otherwise):
    computing it here too was ~1 ns of each direct call."""
    cr = ctx_rec(S, c)
    switch_cpu(S, S[cr + K.CTX_CPU])
    S[K.H_CUR_CTX] = c
    S[K.H_CUR_KIND] = S[cr + K.CTX_KIND]


@flat
def run_step(S, B, c):
    """Run context ``c`` to its next scheduling point; returns ``ST_YIELD``, ``ST_SPIN``,
    ``ST_SLEEP``, ``ST_DONE`` or ``ST_ERROR``."""
    enter_context(S, c)
    cr = ctx_rec(S, c)
    S[cr + K.CTX_STEPS] += 1
    S[K.H_STEP] += 1
    t0 = S[K.H_NOW]
    S[K.H_STEP_T0] = t0
    st = _run(S, B, c, cr)
    S[cr + K.CTX_CYCLES] += S[K.H_NOW] - t0
    S[K.H_STEP_T0] = S[K.H_NOW]
    return st


@flat
def _run(S, B, c, cr):
    while True:
        sp = S[cr + K.CTX_SP]
        if sp == 0:
            return K.ST_DONE
        f = cr + K.CTX_FRAMES + (sp - 1) * K.FW
        st = dispatch(S, B, c, f)
        if st == K.ST_CALL:
            continue
        if st == K.ST_RET or st == K.ST_RET_YIELD:
            routine_returned(S, cr, f)
            S[cr + K.CTX_SP] = sp - 1
            if sp == 1:
                return K.ST_DONE
            if st == K.ST_RET_YIELD and S[K.H_YIELD]:
                return K.ST_YIELD
            continue
        if st == K.ST_YIELD:
            if S[K.H_YIELD] == 0:
                continue
            if S[K.H_BATCH] > 0 and S[K.H_SAME_SET] != 0 \
                    and S[S[K.H_R_EV] + K.EV_COUNT] == S[K.H_EV_SEEN]:
                _next_step(S)
                continue
        return st


@tiny
def _next_step(S):
    """The schedule goes on with this context at the same-yield just reached (sched.run
    said so in ``H_BATCH``): count a new step, as run_step would. Its cycles go to the
    context at the end of the call (the sum is the same; ``H_STEP_T0`` stays)."""
    S[K.H_SAME_SET] = 0
    S[K.H_STEP] += 1
    steps_passed(S, 1)


@flat
def direct_call(S, B, routine, a0, a1, a2, a3):
    """Run one routine to completion as the direct-call task on CPU 0 (the Python API).

    Returns the final status: ``ST_DONE`` (result in the context's ``CTX_RET``), ``ST_ERROR``,
    ``ST_SLEEP`` (it would sleep: nobody can wake it) or ``ST_SPIN`` (it would spin forever).
    """
    c = S[K.H_DIRECT_CTX]
    saved = S[K.H_YIELD]
    S[K.H_YIELD] = 0
    S[K.H_ERR] = K.ERR_NONE
    push_at(S, ctx_rec(S, c), 0, routine, a0, a1, a2, a3)   # a direct call starts with no frames
    st = run_step(S, B, c)
    S[K.H_YIELD] = saved
    set_site(S, K.SITE_USER)        # back in the caller: a direct cache op is charged there
    return st
