"""Turning a kernel routine's error status into the Python exception a user sees."""

from .. import consts as K
from ..errors import Deadlock, DmaDebugError, EmuError, KernelBug, PageFault, WouldSleep


def _ranges(nrs):
    """Compact '1-7, 9' form of a sorted list of slot numbers."""
    out, start, prev = [], None, None
    for n in nrs:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(out)


def bug_message(a, b, c, d):
    """The message of a kernel BUG, naming the failed check.

    Parameters
    ----------
    a : int
        The BUG (``BUG_*``).
    b, c, d : int
        Its details, as the kernel routine left them in ``H_ERR_B..D`` (page, slot, count).

    Returns
    -------
    str
    """
    msgs = {
        K.BUG_KUNMAP_NO_VADDR: f"kunmap_high: page {b} has no virtual address (BUG_ON(!vaddr))",
        K.BUG_KUNMAP_UNBALANCED: (f"kunmap_high: unbalanced kunmap of page {b}: "
                                  f"pkmap_count[{c}] is {d} and would drop to {d - 1} "
                                  f"(BUG() on a count of 0)"),
        K.BUG_KMAP_COUNT: (f"kmap_high: page {b}: pkmap_count[{c}] would be {d + 1} "
                           f"(BUG_ON(pkmap_count[PKMAP_NR(vaddr)] < 2))"),
        K.BUG_KHG_COUNT: (f"kmap_high_get: page {b}: pkmap_count[{c}] is {d} "
                          f"(BUG_ON(pkmap_count[PKMAP_NR(vaddr)] < 1))"),
        K.BUG_PTE_NONE: (f"flush_all_zero_pkmaps: slot {b} has count 1 but no PTE "
                         f"(BUG_ON(pte_none(pkmap_page_table[i])))"),
        K.BUG_PAM_POOL_EMPTY: "set_page_address: BUG_ON(list_empty(&page_address_pool))",
        K.BUG_NOT_HIGHMEM: f"set_page_address: page {b} (BUG_ON(!PageHighMem(page)))",
        K.BUG_KUNMAP_IN_IRQ: (f"kunmap: page {b} unmapped from interrupt context "
                              f"(BUG_ON(in_interrupt()))"),
        K.BUG_DMA_DIRECTION: (f"dma: invalid direction {b} "
                              f"(BUG_ON(!valid_dma_direction(dir)))"),
        K.BUG_DMA_VIRT_INVALID: (f"dma_cache_maint: dma address {b:#x} (size {c}) is a highmem "
                                 f"buffer with no linear-map address (BUG_ON(!virt_addr_valid"
                                 f"(start) || !virt_addr_valid(start + size - 1)))"),
        K.BUG_MIGHT_SLEEP: (f"kmap: page {b}: sleeping function called from invalid context "
                            f"(might_sleep() in atomic or interrupt context)"),
        K.BUG_SCHED_ATOMIC: (f"kmap_high: page {b}: scheduling while atomic (every pkmap slot "
                             f"is pinned, and an IRQ handler cannot sleep on pkmap_map_wait)"),
        K.BUG_WAIT_IRQ_ATOMIC: (f"wait_irq: line {b}: scheduling while atomic (the IRQ "
                                f"handler would sleep until the line's handler has run {c} "
                                f"time{'' if c == 1 else 's'}, it has run {d}; an IRQ handler "
                                f"cannot sleep)"),
    }
    return msgs.get(a, f"kernel BUG {a} ({b}, {c}, {d})")


def dma_debug_message(kind, handle, a, b):
    """dma-debug's wording (lib/dma-debug.c) for an error.

    Parameters
    ----------
    kind : int
        The error (``DD_ERR_*``).
    handle : int
        The DMA address of the mapping.
    a, b : int
        Its details (sizes, directions, mapping types or an IRQ line, as ``kind`` says).

    Returns
    -------
    str
    """
    dirs = K.DMA_DIR_NAMES
    dn = (lambda d: dirs[d] if 0 <= d < len(dirs) else str(d))
    base = "DMA-API: device driver"
    if kind == K.DD_ERR_NOT_MAPPED:
        return (f"{base} tries to free DMA memory it has not allocated "
                f"[device address={handle:#018x}] [size={a} bytes]")
    if kind == K.DD_ERR_SIZE:
        return (f"{base} frees DMA memory with different size [device address={handle:#018x}] "
                f"[map size={a} bytes] [unmap size={b} bytes]")
    if kind == K.DD_ERR_TYPE:
        tn = (lambda t: K.DD_TYPE_NAMES[t] if 0 <= t < len(K.DD_TYPE_NAMES) else str(t))
        return (f"{base} frees DMA memory with wrong function [device address={handle:#018x}] "
                f"[size={a} bytes] [mapped as {tn(b >> 8)}] [unmapped as {tn(b & 255)}]")
    if kind == K.DD_ERR_DIR:
        return (f"{base} frees DMA memory with different direction "
                f"[device address={handle:#018x}] [size={a} bytes] [mapped with {dn(b >> 8)}] "
                f"[unmapped with {dn(b & 255)}]")
    if kind == K.DD_ERR_IN_FLIGHT:                  # emu's own check (b: the IRQ line)
        return (f"{base} frees DMA memory a device is still writing "
                f"[device address={handle:#018x}] [size={a} bytes] (emu: the device's "
                f"transfer on IRQ line {b} has not completed; lib/dma-debug.c cannot see it)")
    if kind == K.DD_ERR_SYNC_NOT_MAPPED:
        return (f"{base} tries to sync DMA memory it has not allocated "
                f"[device address={handle:#018x}] [size={a} bytes]")
    if kind == K.DD_ERR_SYNC_RANGE:                 # b: sync offset << 32 | sync size
        return (f"{base} syncs DMA memory outside allocated range "
                f"[device address={handle:#018x}] [allocation size={a} bytes] "
                f"[sync offset={b >> 32}] [sync size={b & 0xFFFFFFFF}]")
    what = {K.DD_ERR_SYNC_RO: "device read-only DMA memory for cpu",
            K.DD_ERR_SYNC_WO: "device write-only DMA memory to device"}
    return (f"{base} syncs {what.get(kind, 'DMA memory with different direction')} "
            f"[device address={handle:#018x}] "
            f"[size={a} bytes] [mapped with {dn(b >> 8)}] [synced with {dn(b & 255)}]")


def pinned_slots_message(m, pfn):
    """Why a direct ``kmap_high`` cannot go on (the message of :class:`emu.WouldSleep`).

    Parameters
    ----------
    m : emu.Machine
    pfn : int
        The page the call was mapping.

    Returns
    -------
    str
        Names the pinned slots (``pkmap_count >= 2``) as ranges.
    """
    counts = m.pkmap_count
    pinned = [i for i, v in enumerate(counts) if v >= 2]
    return (f"kmap_high(page {pfn}) would sleep forever on pkmap_map_wait: every pkmap slot is "
            f"pinned (pkmap_count >= 2) and nothing can kunmap one; pinned slots: "
            f"{_ranges(pinned)}")


def reset_direct(S):
    """Clean up after a failed direct call: the direct task holds no frames, no lock, no
    wait-queue entry, and CPU 0 runs with IRQs on and preemption enabled again.

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array.
    """
    c = int(S[K.H_DIRECT_CTX])
    cr = int(S[K.H_R_CTX]) + c * K.CTX_W
    S[cr + K.CTX_SP] = 0
    S[cr + K.CTX_STATE] = K.CTX_RUNNABLE
    q = int(S[K.H_R_WAITQ])
    ids = [int(x) for x in S[q + 1:q + 1 + int(S[q])] if x != c]
    S[q] = len(ids)
    S[q + 1:q + 1 + len(ids)] = ids
    lk = int(S[K.H_R_LOCK])
    if S[lk + K.LK_OWNER] == c:
        S[lk + K.LK_OWNER] = -1
        S[lk + K.LK_OWNER_CPU] = -1
    r = int(S[K.H_R_CPU])
    S[r + K.CPU_IRQOFF] = 0
    S[r + K.CPU_PREEMPT] = 0
    S[r + K.CPU_HARDIRQ] = 0


def lock_holder(m):
    """Who holds kmap_lock, as a deadlock message names it.

    Parameters
    ----------
    m : emu.Machine

    Returns
    -------
    str
        The holder's task or handler name (a machine a scenario was loaded on knows them),
        ``"the direct-call task"``, or ``"context N"``; and where it took the lock.
    """
    S = m._S
    lk = int(S[K.H_R_LOCK])
    owner = int(S[lk + K.LK_OWNER])
    names = getattr(m, "_ctx_names", None) or []
    who = "the direct-call task" if owner == int(S[K.H_DIRECT_CTX]) else \
        names[owner] if 0 < owner < len(names) else f"context {owner}"
    site = int(S[lk + K.LK_ACQ_SITE])
    return who + (f" (taken in {K.SITE_NAMES[site]})" if 0 <= site < len(K.SITE_NAMES) else "")


def raise_for(m, status, fault_va=None):
    """Raise the exception for a direct call that did not finish, after
    :func:`reset_direct`.

    Parameters
    ----------
    m : emu.Machine
    status : int
        How the call ended (``ST_SLEEP``, ``ST_SPIN`` or ``ST_ERROR``).
    fault_va : int, optional
        A virtual address the Python side found unmapped (a page fault it raises itself).

    Raises
    ------
    emu.WouldSleep, emu.Deadlock, emu.PageFault, emu.KernelBug, emu.DmaDebugError
        As ``status`` and the machine's error slots say.
    """
    S = m._S
    if fault_va is not None:
        raise PageFault(f"Unable to handle kernel paging request at virtual address "
                        f"{fault_va:08x}")
    err = int(S[K.H_ERR])
    a, b, c, d = (int(S[K.H_ERR_A]), int(S[K.H_ERR_B]), int(S[K.H_ERR_C]), int(S[K.H_ERR_D]))
    cr = int(S[K.H_R_CTX]) + int(S[K.H_DIRECT_CTX]) * K.CTX_W
    bottom = cr + K.CTX_FRAMES
    pfn = int(S[bottom + K.F_A0])
    holder = lock_holder(m)                     # (reset_direct frees the direct task's lock)
    reset_direct(S)
    S[K.H_ERR] = K.ERR_NONE
    if status == K.ST_SLEEP:
        raise WouldSleep(pinned_slots_message(m, pfn))
    if status == K.ST_SPIN:
        raise Deadlock(f"direct call would spin forever on kmap_lock, held by {holder}")
    if err == K.ERR_PAGE_FAULT:
        raise PageFault(f"Unable to handle kernel paging request at virtual address {a:08x}")
    if err == K.ERR_BUG:
        raise KernelBug(bug_message(a, b, c, d))
    if err == K.ERR_DMA_DEBUG:
        raise DmaDebugError(dma_debug_message(a, b, c, d))
    raise EmuError(f"kernel routine failed (status {status}, error {err})")
