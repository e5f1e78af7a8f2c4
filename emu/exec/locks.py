"""Spinlocks: ``kmap_lock`` with lock_stat and lockdep-style IRQ-safety tracking.

Locking is modelled as an SMP (or CONFIG_DEBUG_SPINLOCK) kernel has it: the lock has an owner
even on one CPU, so an IRQ handler spinning on a lock its interrupted task holds is a visible
deadlock. (A UP non-debug kernel compiles ``spin_lock`` to ``preempt_disable()`` and would
corrupt pkmap state instead.) Costs follow the kernel's instruction sequences: UP locks are
``preempt_disable()`` only (``include/linux/spinlock_api_up.h``); SMP locks add the ARMv6
``ldrex/strex`` loop and barriers (``arch/arm/include/asm/spinlock.h``).

A routine acquires in two halves so that it can spin across scheduling points:
:func:`lock_begin` masks IRQs / disables preemption once, :func:`lock_try` is retried.
"""

from .. import consts as K
from .._jit import hot, inline, tiny
from ..cost.account import uop
from .trace import trace
from .cpu import (clock, in_irq, irqs_disabled, local_irq_disable, local_irq_enable,
                  local_irq_restore, local_irq_save, log2_bucket, preempt_disable,
                  preempt_enable)


@inline
def _smp_lock_uops(S):
    if S[K.H_SMP]:
        uop(S, K.UOP_SMP_LOCK, 1)       # 1: ldrex; teq; strexeq; teqeq; bne 1b; smp_mb()


@inline
def _smp_unlock_uops(S):
    if S[K.H_SMP]:
        uop(S, K.UOP_SMP_UNLOCK, 1)     # smp_mb(); str 0; dsb_sev()


@inline
def raw_lock_irqsave(S):
    """``spin_lock_irqsave`` on an uncontended inner lock (hash bucket, pool): the section it
    guards runs within one step, so only its instructions and IRQ masking are modelled."""
    flags = local_irq_save(S)
    preempt_disable(S)
    _smp_lock_uops(S)
    return flags


@inline
def raw_unlock_irqrestore(S, flags):
    _smp_unlock_uops(S)
    local_irq_restore(S, flags)
    preempt_enable(S)


@hot
def lock_begin(S, flavour):
    """IRQ and preempt half of ``spin_lock{,_irq,_irqsave}``; returns the saved flags."""
    flags = 0
    if flavour == K.LOCK_IRQ:
        local_irq_disable(S)
    elif flavour == K.LOCK_IRQSAVE:
        flags = local_irq_save(S)
    preempt_disable(S)
    return flags


@inline
def _lockdep_usage(S, lk):
    """Record how the lock class is used (lockdep's {IN-HARDIRQ-W} / {HARDIRQ-ON-W})."""
    if in_irq(S):
        if S[lk + K.LK_USAGE] & K.USAGE_IN_HARDIRQ == 0:
            S[lk + K.LK_USAGE] |= K.USAGE_IN_HARDIRQ
            S[lk + K.LK_IN_IRQ_SITE] = S[K.H_CUR_SITE]
            S[lk + K.LK_IN_IRQ_CTX] = S[K.H_CUR_CTX]
            S[lk + K.LK_IN_IRQ_STEP] = S[K.H_STEP]
    elif not irqs_disabled(S):
        if S[lk + K.LK_USAGE] & K.USAGE_HARDIRQ_ON == 0:
            S[lk + K.LK_USAGE] |= K.USAGE_HARDIRQ_ON
            S[lk + K.LK_IRQ_ON_SITE] = S[K.H_CUR_SITE]
            S[lk + K.LK_IRQ_ON_CTX] = S[K.H_CUR_CTX]
            S[lk + K.LK_IRQ_ON_STEP] = S[K.H_STEP]


@inline
def _stat_minmax(S, lk, mn, mx, total, d):
    S[lk + total] += d
    if d > S[lk + mx]:
        S[lk + mx] = d
    if d > 0 and (S[lk + mn] == 0 or d < S[lk + mn]):   # lock_stat: shortest non-zero time
        S[lk + mn] = d


@inline
def _spin_until(S, t):
    """Spin passes (``ldrex; teq; wfene; strexeq; teqeq; bne``) until the clock reaches
    ``t``: a ``spin_wait`` micro-op each, so the wait shows where the cycles went (spec
    §1.5: the contended loop is modelled explicitly); the last pass sees the release."""
    cost = S[K.H_COST + K.UOP_SPIN_WAIT]
    if cost > 0:
        uop(S, K.UOP_SPIN_WAIT, (t - S[K.H_NOW] + cost - 1) // cost)
    if S[K.H_NOW] < t:
        S[K.H_NOW] = t                          # (a spin_wait priced at 0 cycles)


@hot
def lock_try(S, lk, f):
    """One attempt to take lock ``lk`` for the running context; False: spin and retry.

    ``f`` is the caller's frame: ``F_SPIN_AT`` remembers when a contended wait began.
    """
    _lockdep_usage(S, lk)
    if S[lk + K.LK_OWNER] >= 0:
        if S[f + K.F_LOCKST] != K.LOCKST_SPINNING:
            S[f + K.F_LOCKST] = K.LOCKST_SPINNING
            S[f + K.F_SPIN_AT] = clock(S)
            S[lk + K.LK_CONTENTIONS] += 1
        uop(S, K.UOP_SPIN_WAIT, 1)
        trace(S, K.T_SPIN, S[K.H_CUR_SITE], S[lk + K.LK_OWNER])
        return False
    if S[K.H_NOW] < S[lk + K.LK_FREE_AT]:
        # another CPU released it later in emulated time than this CPU's clock: this CPU
        # spins until that release (lock hold times never overlap), then takes it
        if S[f + K.F_LOCKST] != K.LOCKST_SPINNING:
            S[f + K.F_LOCKST] = K.LOCKST_SPINNING
            S[f + K.F_SPIN_AT] = S[K.H_NOW]
            S[lk + K.LK_CONTENTIONS] += 1
        _spin_until(S, S[lk + K.LK_FREE_AT])
    _smp_lock_uops(S)
    now = clock(S)
    if S[f + K.F_LOCKST] == K.LOCKST_SPINNING and S[K.H_PROFILE]:
        d = now - S[f + K.F_SPIN_AT]
        _stat_minmax(S, lk, K.LK_WAIT_MIN, K.LK_WAIT_MAX, K.LK_WAIT_TOTAL, d)
        S[S[K.H_R_PROF] + K.PROF_H_WAIT + log2_bucket(d)] += 1
    S[f + K.F_LOCKST] = K.LOCKST_IDLE
    S[lk + K.LK_OWNER] = S[K.H_CUR_CTX]
    S[lk + K.LK_OWNER_CPU] = S[K.H_CUR_CPU]
    S[lk + K.LK_ACQ_AT] = now
    S[lk + K.LK_ACQ_SITE] = S[K.H_CUR_SITE]
    S[lk + K.LK_ACQUISITIONS] += 1
    trace(S, K.T_LOCK, S[K.H_CUR_SITE], 0)
    return True


@hot
def lock_release(S, lk):
    """Drop lock ``lk`` (the arch part) and account the hold time."""
    _smp_unlock_uops(S)
    S[lk + K.LK_OWNER] = -1
    S[lk + K.LK_OWNER_CPU] = -1
    S[lk + K.LK_FREE_AT] = S[K.H_NOW]
    if S[K.H_PROFILE]:
        d = clock(S) - S[lk + K.LK_ACQ_AT]
        _stat_minmax(S, lk, K.LK_HOLD_MIN, K.LK_HOLD_MAX, K.LK_HOLD_TOTAL, d)
        S[S[K.H_R_PROF] + K.PROF_H_HOLD + log2_bucket(d)] += 1
        trace(S, K.T_UNLOCK, S[K.H_CUR_SITE], d)


@hot
def lock_end(S, flavour, flags):
    """IRQ and preempt half of ``spin_unlock{,_irq,_irqrestore}``."""
    if flavour == K.LOCK_IRQ:
        local_irq_enable(S)
    elif flavour == K.LOCK_IRQSAVE:
        local_irq_restore(S, flags)
    preempt_enable(S)


@hot
def unlock(S, lk, flavour, flags):
    lock_release(S, lk)
    lock_end(S, flavour, flags)


@hot
def acquire(S, lk, f, flavour):
    """Take ``lk`` from a resumable routine: True once held, False to spin (retry later).

    The IRQ/preempt half runs once (tracked in the frame's ``F_LOCKST``/``F_FLAGS``), so a
    spinning ``spin_lock_irq`` keeps IRQs masked while it waits, as Linux does.
    """
    if S[f + K.F_LOCKST] == K.LOCKST_IDLE:
        S[f + K.F_FLAGS] = lock_begin(S, flavour)
        S[f + K.F_LOCKST] = K.LOCKST_BEGUN
    return lock_try(S, lk, f)


@tiny
def kmap_lock(S):
    """Offset of ``kmap_lock``'s record."""
    return S[K.H_R_LOCK]


@tiny
def lock_kmap_flavour(S):
    """``lock_kmap()``: spin_lock_irq with ARCH_NEEDS_KMAP_HIGH_GET, else spin_lock (hm:70-87)."""
    return K.LOCK_IRQ if S[K.H_KMAP_IRQ] else K.LOCK_PLAIN


@tiny
def lock_kmap_any_flavour(S):
    """``lock_kmap_any(flags)``: spin_lock_irqsave with ARCH_NEEDS_KMAP_HIGH_GET, else spin_lock."""
    return K.LOCK_IRQSAVE if S[K.H_KMAP_IRQ] else K.LOCK_PLAIN

