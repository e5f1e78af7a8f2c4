"""The pkmap window: mm/highmem.c of Linux 2.6.30.4 with ARCH_NEEDS_KMAP_HIGH_GET (spec §1).

``pkmap_count[nr]`` (hm:32-38): 0 = slot free and its PTE clear, so ``map_new_virtual`` may hand
it out; 1 = still mapped but unused (lazily unmapped; only ``flush_all_zero_pkmaps`` frees it);
n >= 2 = mapped with n-1 users.

Each routine is a resumable step function ``(S, B, c, f) -> ST_*`` (see emu.exec.frames): it
may stop where the kernel can be preempted or spin (after taking ``kmap_lock``, after
releasing it) and where ``map_new_virtual`` sleeps on ``pkmap_map_wait``. A BUG leaves the
machine as it was: the check runs before the update it guards (the kernel decrements before
its ``BUG()`` in kunmap_high; emu does not), and the lock is released.
"""

from .. import consts as K
from .._jit import hot, inline, njit, tiny
from ..cache.maint import flush_kern_cache_all
from ..cost.account import enter_site, leave_site, uop, uops4
from ..exec.cpu import in_irq, irqs_disabled
from ..exec.frames import bug, ctx_rec, push, set_ret
from ..exec.trace import trace
from ..exec.locks import (acquire, kmap_lock, lock_kmap_any_flavour, lock_kmap_flavour,
                          raw_lock_irqsave, raw_unlock_irqrestore, unlock)
from .page_address import page_address, pool_empty, set_page_address
from .pgtable import (flush_tlb_kernel_range, page_is_highmem, pkmap_addr, pkmap_nr, pte,
                      pte_clear, set_pte)

# ---------------------------------------------------------------------------------------------
# pkmap_map_wait
# ---------------------------------------------------------------------------------------------


@tiny
def _count(S, nr):
    return S[K.H_R_PKMAP_COUNT] + nr


@inline
def add_wait_queue(S, c):
    """Queue ``c`` on pkmap_map_wait; ``add_wait_queue`` inserts at the head."""
    q = S[K.H_R_WAITQ]
    n = S[q]
    for j in range(n, 0, -1):
        S[q + 1 + j] = S[q + j]
    S[q + 1] = c
    S[q] = n + 1


@inline
def remove_wait_queue(S, c):
    q = S[K.H_R_WAITQ]
    n = S[q]
    j = 0
    while j < n and S[q + 1 + j] != c:
        j += 1
    if j == n:
        return
    for k in range(j, n - 1):
        S[q + 1 + k] = S[q + 2 + k]
    S[q] = n - 1


@inline
def waitqueue_active(S):
    return S[S[K.H_R_WAITQ]] > 0


@inline
def wake_up(S):
    """``wake_up(&pkmap_map_wait)``: every queued task becomes runnable (non-exclusive waits);
    each removes itself from the queue when it runs again."""
    q = S[K.H_R_WAITQ]
    flags = raw_lock_irqsave(S)                 # q->lock
    for j in range(S[q]):
        cr = ctx_rec(S, S[q + 1 + j])
        if S[cr + K.CTX_STATE] == K.CTX_SLEEPING:
            S[cr + K.CTX_STATE] = K.CTX_RUNNABLE
            S[cr + K.CTX_READY_AT] = S[K.H_NOW]
            trace(S, K.T_WAKE, S[q + 1 + j], 0)
        uop(S, K.UOP_ALU, 4)                    # try_to_wake_up, roughly
    raw_unlock_irqrestore(S, flags)
    S[S[K.H_R_MMSTAT] + K.MM_WAKEUPS] += 1


# ---------------------------------------------------------------------------------------------
# flush_all_zero_pkmaps / map_new_virtual (run with kmap_lock held, never stop)
# ---------------------------------------------------------------------------------------------


@inline
def flush_cache_kmaps(S, B):
    """ARM 2.6.30: an unconditional ``flush_cache_all()`` (asm/highmem.h, spec §2)."""
    prev = enter_site(S, K.SITE_FLUSH_CACHE_ALL)
    flush_kern_cache_all(S, B)
    S[S[K.H_R_MMSTAT] + K.MM_CACHE_FLUSHES] += 1
    trace(S, K.T_FLUSH_CACHE, 0, 0)
    leave_site(S, prev)


@njit
def flush_all_zero_pkmaps(S, B):
    """Free every count-1 slot (hm:89-128): cache flush first, always; then per slot
    count 0, pte_clear, set_page_address(NULL); then one TLB flush of the whole window, only
    if a slot was freed. Returns -1, or the slot whose PTE was unexpectedly none (BUG)."""
    prev = enter_site(S, K.SITE_FLUSH_ALL_ZERO_PKMAPS)
    S[S[K.H_R_MMSTAT] + K.MM_FLUSH_ALL_ZERO] += 1
    flush_cache_kmaps(S, B)
    last = S[K.H_LAST_PKMAP]
    need_flush = False
    for i in range(last):
        uops4(S, 1, 1, 0, 1)                    # ldr pkmap_count[i]; cmp; bne
        if S[_count(S, i)] != 1:
            continue
        page = pte(S, i)
        if page == K.PTE_NONE:
            leave_site(S, prev)
            return i
        S[_count(S, i)] = 0
        # 2.6.30 writes pte_clear(&init_mm, page_address(page), ptep), but ARM's pte_clear
        # macro drops its addr argument (asm/pgtable.h): no page_address() runs on ARM
        pte_clear(S, i)
        set_page_address(S, page, 0)
        need_flush = True
    if need_flush:
        flush_tlb_kernel_range(S, pkmap_addr(S, 0), pkmap_addr(S, last))
    leave_site(S, prev)
    return -1


@inline
def map_new_virtual_scan(S, B, pfn):
    """The slot search of ``map_new_virtual`` (hm:140-188): pre-increment the cursor (so the
    first mapping after boot is slot 1), flush on every wrap to 0, take the first count-0 slot.
    Returns the new vaddr, 0 if every slot is pinned (the caller sleeps), -1 if a count-1
    slot had no PTE or -2 if the page_address pool was empty (both BUGs)."""
    prev = enter_site(S, K.SITE_MAP_NEW_VIRTUAL)
    last = S[K.H_LAST_PKMAP]
    count = last
    while True:
        nr = (S[K.H_PKMAP_NR] + 1) & (last - 1)
        S[K.H_PKMAP_NR] = nr
        uops4(S, 2, 3, 1, 2)                    # ldr last_pkmap_nr, pkmap_count[nr]; add,
                                                # and, cmp; str; 2 branches
        if nr == 0:
            if flush_all_zero_pkmaps(S, B) >= 0:
                leave_site(S, prev)
                return -1
            count = last
        if S[_count(S, nr)] == 0:
            break
        count -= 1
        if count == 0:
            leave_site(S, prev)
            return 0
    if pool_empty(S):
        leave_site(S, prev)
        return -2
    vaddr = pkmap_addr(S, nr)
    set_pte(S, nr, pfn)
    S[_count(S, nr)] = 1
    uop(S, K.UOP_STORE, 1)
    set_page_address(S, pfn, vaddr)
    leave_site(S, prev)
    return vaddr


# ---------------------------------------------------------------------------------------------
# The routines (resumable)
# ---------------------------------------------------------------------------------------------
_LOCK = 0            # taking kmap_lock
_MAPPED = 1          # lock held: look up / map / count
_WOKEN = 2           # back from schedule() in map_new_virtual
_RELOCK = 3          # map_new_virtual: lock_kmap() again after the sleep
_RECHECK = 4         # lock held again: "somebody else might have mapped it while we slept"
_WAKE = 2            # kunmap_high: wake_up() after dropping the lock


@hot
def _take_lock(S, lk, f, flavour, next_pc):
    """Take kmap_lock for the routine in frame ``f``, which then resumes at ``next_pc``.
    Returns ST_SPIN (held elsewhere), ST_YIELD (the scheduling point right after taking it:
    other CPUs, and IRQs under a plain spin_lock, may run) or -1 to go straight on."""
    if not acquire(S, lk, f, flavour):
        return K.ST_SPIN
    S[f + K.F_PC] = next_pc
    if S[K.H_YIELD]:
        return K.ST_YIELD
    return -1


@hot
def _count_up_and_unlock(S, c, f, lk, flavour, pfn, vaddr, which):
    """``pkmap_count[PKMAP_NR(vaddr)]++`` then unlock and return ``vaddr``. kmap_high's
    ``BUG_ON(count < 2)`` after the increment and kmap_high_get's ``BUG_ON(count < 1)`` before
    it are the same check; it runs first, so a BUG changes nothing."""
    cnt = _count(S, pkmap_nr(S, vaddr))
    uops4(S, 1, 3, 1, 1)                        # ldr; add, PKMAP_NR, cmp; str; b
    if S[cnt] < 1:
        unlock(S, lk, flavour, S[f + K.F_FLAGS])
        return bug(S, which, pfn, pkmap_nr(S, vaddr), S[cnt])
    S[cnt] += 1
    unlock(S, lk, flavour, S[f + K.F_FLAGS])
    set_ret(S, c, vaddr)
    return K.ST_RET_YIELD


# hot (inlined into the context runner): a call passing both arrays' fields was ~8 ns of the
# ~75 ns kmap_high + kunmap_high pair; first-run compile ~4 s more on two CPUs, ~11 s on one
@hot
def kmap_high_step(S, B, c, f):
    """``kmap_high(page)`` (hm:198-214); ``F_A0`` = pfn. Returns the vaddr in ``CTX_RET``."""
    pc = S[f + K.F_PC]
    lk = kmap_lock(S)
    flavour = lock_kmap_flavour(S)
    if pc == _WOKEN:
        remove_wait_queue(S, c)
        pc = _RELOCK
        S[f + K.F_PC] = pc
    if pc == _LOCK or pc == _RELOCK:
        st = _take_lock(S, lk, f, flavour, _MAPPED if pc == _LOCK else _RECHECK)
        if st >= 0:
            return st
    pfn = S[f + K.F_A0]
    vaddr = page_address(S, pfn)
    if vaddr == 0:
        vaddr = map_new_virtual_scan(S, B, pfn)
        if vaddr < 0:
            unlock(S, lk, flavour, S[f + K.F_FLAGS])
            return bug(S, K.BUG_PTE_NONE if vaddr == -1 else K.BUG_PAM_POOL_EMPTY, pfn, 0, 0)
        if vaddr == 0:
            if in_irq(S):
                # schedule() from a handler: kernel/sched.c's schedule_debug() reports
                # "BUG: scheduling while atomic"; a handler can never be woken, so it is one
                unlock(S, lk, flavour, S[f + K.F_FLAGS])
                return bug(S, K.BUG_SCHED_ATOMIC, pfn, 0, 0)
            # every slot pinned: sleep on pkmap_map_wait (hm:160-172)
            S[ctx_rec(S, c) + K.CTX_STATE] = K.CTX_SLEEPING
            add_wait_queue(S, c)
            unlock(S, lk, flavour, S[f + K.F_FLAGS])
            S[S[K.H_R_MMSTAT] + K.MM_SLEEPS] += 1
            trace(S, K.T_SLEEP, pfn, 0)
            # schedule(): the switch is charged once, when the scheduler runs the next task
            S[f + K.F_PC] = _WOKEN
            return K.ST_SLEEP
    return _count_up_and_unlock(S, c, f, lk, flavour, pfn, vaddr, K.BUG_KMAP_COUNT)


@hot
def kunmap_high_step(S, B, c, f):
    """``kunmap_high(page)`` (hm:251-289); ``F_A0`` = pfn."""
    pc = S[f + K.F_PC]
    lk = kmap_lock(S)
    flavour = lock_kmap_any_flavour(S)
    if pc == _WAKE:
        wake_up(S)                              # outside the lock, race-free (hm:287)
        return K.ST_RET_YIELD
    if pc == _LOCK:
        st = _take_lock(S, lk, f, flavour, _MAPPED)
        if st >= 0:
            return st
    pfn = S[f + K.F_A0]
    vaddr = page_address(S, pfn)
    if vaddr == 0:
        unlock(S, lk, flavour, S[f + K.F_FLAGS])
        return bug(S, K.BUG_KUNMAP_NO_VADDR, pfn, 0, 0)
    nr = pkmap_nr(S, vaddr)
    cnt = _count(S, nr)
    uops4(S, 1, 3, 1, 2)                        # ldr; add, PKMAP_NR, cmp; str; 2 branches
    if S[cnt] <= 1:
        unlock(S, lk, flavour, S[f + K.F_FLAGS])
        return bug(S, K.BUG_KUNMAP_UNBALANCED, pfn, nr, S[cnt])
    S[cnt] -= 1
    need_wakeup = S[cnt] == 1 and waitqueue_active(S)
    unlock(S, lk, flavour, S[f + K.F_FLAGS])
    set_ret(S, c, 0)
    if need_wakeup:
        if S[K.H_YIELD]:
            S[f + K.F_PC] = _WAKE
            return K.ST_YIELD                   # preemptible between unlock and wake_up
        wake_up(S)
    return K.ST_RET_YIELD


@njit
def kmap_high_get_step(S, B, c, f):
    """``kmap_high_get(page)`` (hm:218-243): pin an existing mapping, never create one."""
    pc = S[f + K.F_PC]
    lk = kmap_lock(S)
    flavour = lock_kmap_any_flavour(S)
    if pc == _LOCK:
        st = _take_lock(S, lk, f, flavour, _MAPPED)
        if st >= 0:
            return st
    pfn = S[f + K.F_A0]
    vaddr = page_address(S, pfn)
    uop(S, K.UOP_BRANCH, 1)
    if vaddr != 0:
        return _count_up_and_unlock(S, c, f, lk, flavour, pfn, vaddr, K.BUG_KHG_COUNT)
    unlock(S, lk, flavour, S[f + K.F_FLAGS])
    set_ret(S, c, 0)
    return K.ST_RET_YIELD


@njit
def kmap_flush_unused_step(S, B, c, f):
    """``kmap_flush_unused()`` (hm:133-138): lock_kmap; flush_all_zero_pkmaps; unlock_kmap."""
    lk = kmap_lock(S)
    flavour = lock_kmap_flavour(S)
    if S[f + K.F_PC] == _LOCK:
        st = _take_lock(S, lk, f, flavour, _MAPPED)
        if st >= 0:
            return st
    bad = flush_all_zero_pkmaps(S, B)
    unlock(S, lk, flavour, S[f + K.F_FLAGS])
    if bad >= 0:
        return bug(S, K.BUG_PTE_NONE, bad, 0, 0)
    set_ret(S, c, 0)
    return K.ST_RET_YIELD


@inline
def _in_atomic(S):
    return in_irq(S) or irqs_disabled(S)


@njit
def kmap_step(S, B, c, f):
    """ARM ``kmap(page)`` (arch/arm/mm/highmem.c): might_sleep(); lowmem: page_address;
    highmem: kmap_high."""
    if S[f + K.F_PC] == 1:
        return K.ST_RET                         # kmap_high set CTX_RET
    pfn = S[f + K.F_A0]
    if _in_atomic(S):
        return bug(S, K.BUG_MIGHT_SLEEP, pfn, 0, 0)
    uop(S, K.UOP_ALU, 2)
    uop(S, K.UOP_BRANCH, 1)
    if not page_is_highmem(S, pfn):
        set_ret(S, c, page_address(S, pfn))
        return K.ST_RET
    S[f + K.F_PC] = 1
    push(S, c, K.R_KMAP_HIGH, pfn, 0, 0, 0)
    return K.ST_CALL


@njit
def kunmap_step(S, B, c, f):
    """ARM ``kunmap(page)``: BUG_ON(in_interrupt()); lowmem: nothing; highmem: kunmap_high."""
    if S[f + K.F_PC] == 1:
        return K.ST_RET
    pfn = S[f + K.F_A0]
    if in_irq(S):
        return bug(S, K.BUG_KUNMAP_IN_IRQ, pfn, 0, 0)
    uop(S, K.UOP_ALU, 2)
    uop(S, K.UOP_BRANCH, 1)
    set_ret(S, c, 0)
    if not page_is_highmem(S, pfn):
        return K.ST_RET
    S[f + K.F_PC] = 1
    push(S, c, K.R_KUNMAP_HIGH, pfn, 0, 0, 0)
    return K.ST_CALL
