"""Kernel page table and TLB for the pkmap window, and address translation.

The linear map (lowmem) is section-mapped and never changes, so it translates directly. The
pkmap window has one PTE per slot (``pkmap_page_table``) and a per-CPU TLB entry per slot that,
once filled by a table walk, stays until ``flush_tlb_kernel_range`` invalidates it: a stale
translation is observable exactly as the kernel's ordering of ``pte_clear`` and TLB flushes
allows (spec §1.4, §2 "TLB flush").
"""

from .. import consts as K
from .._jit import inline, tiny
from ..cost.account import enter_site, leave_site, loop_back, uop
from ..exec.trace import trace


@tiny
def pkmap_nr(S, va):
    """``PKMAP_NR(virt)``."""
    return (va - S[K.H_PKMAP_BASE]) >> K.PAGE_SHIFT


@tiny
def pkmap_addr(S, nr):
    """``PKMAP_ADDR(nr)``."""
    return S[K.H_PKMAP_BASE] + (nr << K.PAGE_SHIFT)


@tiny
def lowmem_address(S, pfn):
    """``lowmem_page_address()``: the linear-map address of a lowmem page."""
    return S[K.H_PAGE_OFFSET] + (pfn << K.PAGE_SHIFT)


@tiny
def page_is_highmem(S, pfn):
    return pfn >= S[K.H_LOWMEM_PAGES]


@tiny
def pte(S, nr):
    return S[S[K.H_R_PKMAP_PTE] + nr]


@inline
def set_pte(S, nr, pfn):
    """``set_pte_at(&init_mm, vaddr, &pkmap_page_table[nr], mk_pte(page, kmap_prot))``.

    ARM's set_pte also cleans the D-cache line holding the PTE (cpu_arm926_set_pte); the
    ``pte_write`` micro-op covers that. No TLB maintenance: the slot's entry was flushed when
    it was last cleared.
    """
    S[S[K.H_R_PKMAP_PTE] + nr] = pfn
    S[S[K.H_R_MMSTAT] + K.MM_SET_PTE] += 1
    trace(S, K.T_SET_PTE, nr, pfn)
    uop(S, K.UOP_PTE_WRITE, 1)


@inline
def pte_clear(S, nr):
    """``pte_clear()``: the PTE goes, TLB entries on every CPU stay until a TLB flush."""
    trace(S, K.T_PTE_CLEAR, nr, S[S[K.H_R_PKMAP_PTE] + nr])
    S[S[K.H_R_PKMAP_PTE] + nr] = K.PTE_NONE
    S[S[K.H_R_MMSTAT] + K.MM_PTE_CLEAR] += 1
    uop(S, K.UOP_PTE_WRITE, 1)


@inline
def flush_tlb_kernel_range(S, start, end):
    """Invalidate every CPU's TLB entries for pkmap pages in ``[start, end)``.

    UP: v4wbi_flush_kern_tlb_range drains the write buffer, then loops per 4 KiB page with
    ``mcr c8,c5,1; mcr c8,c6,1; add; cmp; blo`` (tlb-v4wbi.S, spec §2). SMP: the same on each
    CPU by IPI (arch/arm/kernel/smp.c); emu applies it to all CPUs at once.
    """
    prev = enter_site(S, K.SITE_FLUSH_TLB_KERNEL_RANGE)
    base = S[K.H_PKMAP_BASE]
    last = S[K.H_LAST_PKMAP]
    lo = max((start - base) >> K.PAGE_SHIFT, 0)
    hi = min((end - base + K.PAGE_SIZE - 1) >> K.PAGE_SHIFT, last)
    tlb = S[K.H_R_TLB]
    for cpu in range(S[K.H_NCPUS]):
        for nr in range(lo, hi):
            S[tlb + cpu * last + nr] = K.PTE_NONE
    pages = (end - start + K.PAGE_SIZE - 1) >> K.PAGE_SHIFT
    uop(S, K.UOP_DRAIN_WB, 1)
    if S[K.H_C_STYLE] == K.STYLE_V4WB:
        # tlb-v4wb.S: invalidate the D-TLB entry per page, then the whole I-TLB once
        uop(S, K.UOP_TLB_INV_PAGE, pages + 1)
    else:
        uop(S, K.UOP_TLB_INV_PAGE, 2 * pages)   # tlb-v4wbi.S: I and D entries per page
    uop(S, K.UOP_ALU, 2 * pages)
    loop_back(S, pages, True)                   # add; cmp; blo per page
    S[S[K.H_R_MMSTAT] + K.MM_TLB_FLUSHES] += 1
    trace(S, K.T_TLB_FLUSH, start, end)
    leave_site(S, prev)


@inline
def translate(S, va):
    """Physical address of kernel virtual ``va`` for the running CPU, or -1 (page fault)."""
    po = S[K.H_PAGE_OFFSET]
    if va >= po:
        if va < po + (S[K.H_LOWMEM_PAGES] << K.PAGE_SHIFT):
            return va - po                      # linear map, PHYS_OFFSET = 0
        return -1
    base = S[K.H_PKMAP_BASE]
    if va < base:
        return -1
    nr = (va - base) >> K.PAGE_SHIFT
    if nr >= S[K.H_LAST_PKMAP]:
        return -1                               # past the last slot: nothing maps it
    slot = S[K.H_R_TLB] + S[K.H_CUR_CPU] * S[K.H_LAST_PKMAP] + nr
    pfn = S[slot]
    if pfn == K.PTE_NONE:
        pfn = pte(S, nr)                        # TLB miss: table walk
        if pfn == K.PTE_NONE:
            return -1
        S[slot] = pfn
        S[S[K.H_R_MMSTAT] + K.MM_TLB_WALKS] += 1
        uop(S, K.UOP_TLB_WALK, 1)
    else:
        S[S[K.H_R_MMSTAT] + K.MM_TLB_HITS] += 1
    return (pfn << K.PAGE_SHIFT) + (va & (K.PAGE_SIZE - 1))
