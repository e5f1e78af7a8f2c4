"""Per-CPU state: the IRQ mask, preempt_count and the cycle clock.

The instruction sequences are ARMv5's (all presets are v4/v5 cores), from
``arch/arm/include/asm/irqflags.h`` (spec arm-cycle-costs §1.1):
``local_irq_disable`` = ``mrs; orr #PSR_I_BIT; msr cpsr_c``, ``local_irq_save`` the same keeping
the old CPSR, ``local_irq_restore`` = ``msr cpsr_c``. Masking and unmasking also feed the
irqsoff tracer's records (longest section with start and end sites, log2 histogram).
"""

import numba
from numba.cpython.unsafe.numbers import leading_zeros

from .. import consts as K
from .._jit import hot, inline, tiny
from ..cost.account import uop
from .trace import trace


@tiny
def cpu_rec(S, cpu):
    """Offset of CPU ``cpu``'s record in ``S``."""
    return S[K.H_R_CPU] + cpu * K.CPU_W


@tiny
def cur_cpu(S):
    """Offset of the running CPU's record (kept in ``H_CPUREC`` by ``switch_cpu``)."""
    return S[K.H_CPUREC]


if numba.config.DISABLE_JIT:
    def bit_length(x):
        """Bits needed for ``x > 0`` (``int.bit_length``); jitted: one ``lzcnt``."""
        return int(x).bit_length()
else:
    @tiny
    def bit_length(x):
        """Bits needed for ``x > 0`` (``int.bit_length``); jitted: one ``lzcnt``."""
        return 64 - leading_zeros(x)


@inline
def log2_bucket(x):
    """Histogram bucket of a duration: 0 for 0, else its bit length (capped at NHIST - 1)."""
    if x <= 0:
        return 0
    return min(bit_length(x), K.NHIST - 1)


@hot
def _irqs_masked(S, cr):
    S[cr + K.CPU_IRQOFF] = 1
    if S[K.H_PROFILE]:
        S[cr + K.CPU_IRQOFF_AT] = S[K.H_NOW]
        S[cr + K.CPU_IRQOFF_SITE] = S[K.H_CUR_SITE]
        trace(S, K.T_IRQS_OFF, S[K.H_CUR_SITE], 0)


@hot
def _irqs_unmasked(S, cr):
    """Close an irqs-off section: update the irqsoff tracer's max and histogram."""
    S[cr + K.CPU_IRQOFF] = 0
    if S[K.H_PROFILE] == 0:
        return
    trace(S, K.T_IRQS_ON, S[K.H_CUR_SITE], 0)
    p = S[K.H_R_PROF]
    d = S[K.H_NOW] - S[cr + K.CPU_IRQOFF_AT]
    start = S[cr + K.CPU_IRQOFF_SITE]
    S[p + K.PROF_IRQOFF_COUNT] += 1
    S[p + K.PROF_IRQOFF_TOTAL] += d
    S[p + K.PROF_H_IRQOFF + start * K.NHIST + log2_bucket(d)] += 1
    w = S[cr + K.CPU_IRQ_WATCH]
    if 0 <= w < S[K.H_NOW]:                 # a watched raise clock has passed (w = -1: none)
        _watch_passed(S, cr, w)
    if d > S[p + K.PROF_IRQOFF_MAX]:
        S[p + K.PROF_IRQOFF_MAX] = d
        S[p + K.PROF_IRQOFF_MAX_START] = start
        S[p + K.PROF_IRQOFF_MAX_END] = S[K.H_CUR_SITE]
        S[p + K.PROF_IRQOFF_MAX_CPU] = S[K.H_CUR_CPU]
        S[p + K.PROF_IRQOFF_MAX_AT] = S[cr + K.CPU_IRQOFF_AT]


@inline
def xfer_due(S, ir):
    """The clock at which the device transfer in flight on line record ``ir`` completes, or
    -1 if none is in flight."""
    return S[ir + K.IRQ_XFER_DUE] if S[ir + K.IRQ_XFER_LEN] > 0 else -1


@tiny
def _next_raise(S, ir, since):
    """The earliest clock ``>= since`` at which line record ``ir`` is (was) raised: its
    pending raise, its due clock or a later periodic firing, or its device's completion;
    -1 if none."""
    if S[ir + K.IRQ_PENDING] and S[ir + K.IRQ_RAISED_AT] >= since:
        return S[ir + K.IRQ_RAISED_AT]          # (a pending raise comes before its re-armed due)
    d = S[ir + K.IRQ_DUE]
    p = S[ir + K.IRQ_PERIOD]
    if 0 <= d < since and p > 0:
        d += (since - d + p - 1) // p * p
    x = xfer_due(S, ir)
    if x >= since and (d < since or x < d):
        return x
    return d if d >= since else -1


@inline
def watch_irqs(S, cr, since):
    """CPU record ``cr``'s ``CPU_WATCHES``: the next NWATCH raise clocks ``>= since`` of its
    lines (:func:`_next_raise`), in order; the first is ``CPU_IRQ_WATCH``. An irqs-off
    section that covers one goes into the CPU's ring as it ends (:func:`_watch_passed`)."""
    cpu = (cr - S[K.H_R_CPU]) // K.CPU_W
    t = since
    for n in range(K.NWATCH):
        w = -1
        for line in range(K.MAXIRQ):
            ir = S[K.H_R_IRQ] + line * K.IRQ_W
            if S[ir + K.IRQ_CTX] >= 0 and S[ir + K.IRQ_CPU] == cpu:
                x = _next_raise(S, ir, t)
                if x >= 0 and (w < 0 or x < w):
                    w = x
        S[cr + K.CPU_WATCHES + n] = w
        if w >= 0:
            t = w + 1
        else:
            t = 1 << 62                         # (no more)
    S[cr + K.CPU_WATCH_AT] = 0
    S[cr + K.CPU_IRQ_WATCH] = S[cr + K.CPU_WATCHES]


@tiny
def _watch_passed(S, cr, w):
    """The irqs-off section of CPU record ``cr`` ending now began after, or covered, watched
    raise clock ``w``: go past every watched clock before now, and keep the section in the
    CPU's ring if it covered one (no call: this sits in the hot unmasking path)."""
    now = S[K.H_NOW]
    a = S[cr + K.CPU_IRQOFF_AT]
    k = S[cr + K.CPU_WATCH_AT]
    hit = False
    while 0 <= w < now:
        hit = hit or w >= a
        k += 1
        w = S[cr + K.CPU_WATCHES + k] if k < K.NWATCH else -1
    S[cr + K.CPU_WATCH_AT] = k
    S[cr + K.CPU_IRQ_WATCH] = w
    if hit:
        j = S[cr + K.CPU_RING_AT]
        S[cr + K.CPU_RING + 2 * j] = a
        S[cr + K.CPU_RING + 2 * j + 1] = now
        S[cr + K.CPU_RING_AT] = (j + 1) & (K.NRING - 1)  # NRING is a power of two


@inline
def blocked_since(S, cr, t):
    """Cycles an interrupt raised at clock ``t`` on CPU record ``cr`` had to wait for IRQs
    to be unmasked: the rest of the irqs-off section that covered ``t``, else 0. (Handlers
    run at the executor's next scheduling point; this is the latency the CPU would see.)
    The ring holds the last NRING sections that covered a watched raise clock, so this is
    exact unless more than NWATCH raise clocks of the CPU's lines fall between two
    scheduling points, or NRING later ones come before this one's delivery."""
    for j in range(K.NRING):
        a = S[cr + K.CPU_RING + 2 * j]
        b = S[cr + K.CPU_RING + 2 * j + 1]
        if a <= t < b:
            return b - t
    if S[cr + K.CPU_IRQOFF] and S[cr + K.CPU_IRQOFF_AT] <= t:
        return S[K.H_NOW] - t
    return 0


@inline
def local_irq_disable(S):
    uop(S, K.UOP_IRQ_DISABLE, 1)                # mrs; orr #PSR_I_BIT; msr cpsr_c
    cr = cur_cpu(S)
    if S[cr + K.CPU_IRQOFF] == 0:
        _irqs_masked(S, cr)


@inline
def local_irq_enable(S):
    uop(S, K.UOP_IRQ_ENABLE, 1)                 # mrs; bic #PSR_I_BIT; msr cpsr_c
    cr = cur_cpu(S)
    if S[cr + K.CPU_IRQOFF] != 0:
        _irqs_unmasked(S, cr)


@inline
def local_irq_save(S):
    """Mask IRQs; returns the previous mask state (the ``flags``)."""
    uop(S, K.UOP_IRQ_SAVE, 1)                   # mrs flags; orr; msr cpsr_c
    cr = cur_cpu(S)
    flags = S[cr + K.CPU_IRQOFF]
    if flags == 0:
        _irqs_masked(S, cr)
    return flags


@inline
def local_irq_restore(S, flags):
    uop(S, K.UOP_IRQ_RESTORE, 1)                # msr cpsr_c, flags
    cr = cur_cpu(S)
    if flags == 0 and S[cr + K.CPU_IRQOFF] != 0:
        _irqs_unmasked(S, cr)
    elif flags != 0 and S[cr + K.CPU_IRQOFF] == 0:
        _irqs_masked(S, cr)


@inline
def preempt_disable(S):
    """``preempt_count()++`` (costs instructions only with CONFIG_PREEMPT)."""
    if S[K.H_PREEMPT]:
        uop(S, K.UOP_PREEMPT_DISABLE, 1)
    S[cur_cpu(S) + K.CPU_PREEMPT] += 1


@inline
def preempt_enable(S):
    """``preempt_count()--``; the caller treats the return as a preemption point."""
    if S[K.H_PREEMPT]:
        uop(S, K.UOP_PREEMPT_ENABLE, 1)
    S[cur_cpu(S) + K.CPU_PREEMPT] -= 1


@tiny
def irqs_disabled(S):
    return S[cur_cpu(S) + K.CPU_IRQOFF] != 0


@tiny
def in_irq(S):
    return S[cur_cpu(S) + K.CPU_HARDIRQ] != 0


@tiny
def clock(S):
    """Cycle clock of the running CPU."""
    return S[K.H_NOW]
