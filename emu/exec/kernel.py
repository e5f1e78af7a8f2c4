"""Small jitted entry points the Python API calls (one numba call each)."""

from .. import consts as K
from .._jit import njit
from ..dma.engine import device_write
from ..dma.mapping import dma_map_page_bad_arg
from ..dma.oracle import judge_discards
from ..mm.page_address import peek_page_address
from ..mm.pgtable import pte
from .._bytes import copy_xor
from ..cache.kernels import mark_ram_range
from ..mm.ram import check_device_read, shadow_store
from . import core


@njit
def direct_call(S, B, routine, a0, a1, a2, a3):
    """Run one kernel routine to completion on the direct-call task, then let the oracle
    judge any dirty lines it dropped. Returns the routine's (non-negative) result, or
    ``-1 - status`` if it did not complete.

    A ``dma_map_page`` whose arguments are out of range runs nothing and returns
    ``K.DIRECT_BAD_ARGS``: ``Machine.dma_map_page`` checks only the types of its arguments
    and leaves the range checks to this (about 90 ns less per call than the same comparisons
    in Python). ``K.R_DMA_MAP_SG`` / ``K.R_DMA_UNMAP_SG`` run dma_map_page / dma_unmap_page
    for one sg entry (its direction marked with ``DMA_FLAG_SG``)."""
    if routine == K.R_DMA_MAP_PAGE or routine == K.R_DMA_MAP_SG:
        if dma_map_page_bad_arg(S, a0, a1, a2, a3) >= 0:
            return K.DIRECT_BAD_ARGS
        if routine == K.R_DMA_MAP_SG:
            routine, a3 = K.R_DMA_MAP_PAGE, a3 | K.DMA_FLAG_SG
    elif routine == K.R_DMA_UNMAP_SG:
        routine, a2 = K.R_DMA_UNMAP_PAGE, a2 | K.DMA_FLAG_SG
    st = core.direct_call(S, B, routine, a0, a1, a2, a3)
    if S[S[K.H_R_EV] + K.EV_COUNT] != S[K.H_EV_SEEN]:
        judge_discards(S, B)
    if st != K.ST_DONE:
        return -1 - st
    # int(): a Python int under NUMBA_DISABLE_JIT=1 too, as numba returns (not numpy.int64,
    # which json cannot encode and which overflows where a Python int would grow)
    return int(S[S[K.H_R_CTX] + S[K.H_DIRECT_CTX] * K.CTX_W + K.CTX_RET])


@njit
def page_address_of(S, pfn):
    """``page_address()`` as seen from Python: no instructions run, nothing is charged."""
    return peek_page_address(S, pfn)


@njit
def first_unmapped(S, va, n):
    """First address in ``[va, va+n)`` whose page has no translation, or -1. No side effects
    (a TLB entry counts as a translation, as it would for the CPU)."""
    po = S[K.H_PAGE_OFFSET]
    base = S[K.H_PKMAP_BASE]
    lowend = po + (S[K.H_LOWMEM_PAGES] << K.PAGE_SHIFT)
    a = va
    end = va + n
    while a < end:
        if po <= a < lowend:
            a = lowend
            continue
        if base <= a < po:
            nr = (a - base) >> K.PAGE_SHIFT
            if nr >= S[K.H_LAST_PKMAP]:
                return a
            tlb = S[S[K.H_R_TLB] + S[K.H_CUR_CPU] * S[K.H_LAST_PKMAP] + nr]
            if tlb == K.PTE_NONE and pte(S, nr) == K.PTE_NONE:
                return a
            a = ((a >> K.PAGE_SHIFT) + 1) << K.PAGE_SHIFT
            continue
        return a
    return -1


@njit
def phys_write(S, B, pa, src):
    """Write RAM directly (a loader or bus master): RAM and the oracle's shadow agree."""
    copy_xor(B, S[K.H_B_RAM] + pa, src, 0, len(src), K.RAM_POISON)
    mark_ram_range(S, B, pa, len(src))
    shadow_store(S, B, pa, src, 0, len(src))


@njit
def device_write_direct(S, B, addr, src):
    device_write(S, B, addr, src, 0, len(src))


@njit
def device_read_check(S, B, addr, n):
    """The oracle's stale-device-read check of a device read (``Device.read``)."""
    check_device_read(S, B, addr, n)
