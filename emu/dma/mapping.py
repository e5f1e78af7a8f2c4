"""ARM streaming DMA with L1 maintenance on a VIVT core (2.6.30 arch/arm/mm/dma-mapping.c).

``dma_map_page`` → ``dma_cache_maint_page`` splits a highmem range at page boundaries; for each
chunk ``dma_cache_maint_contiguous`` finds a virtual address for the L1 op (lowmem: the linear
map; highmem: ``kmap_high_get`` to pin an existing pkmap mapping, or — the racy scheme the seed
patch describes — an unpinned ``page_address``), runs the core's ``dmac_*_range`` line by line
(a scheduling point between lines), unpins, then calls the outer-cache hook on the physical
range (spec §3.1-3.5). Directions: FROM_DEVICE invalidates, TO_DEVICE cleans, BIDIRECTIONAL
cleans and invalidates.

The bus address is the physical address (``__pfn_to_bus`` is the identity on the machines
emu models), so ``handle >> PAGE_SHIFT`` is the page again.
"""

from .. import consts as K
from .._jit import hot, inline, njit, tiny
from ..cache.maint import RANGE_DONE, RANGE_HALF, RANGE_START, dma_range_step
from ..cost.account import uop
from ..exec.frames import bug, fail, push, set_ret, yield_same
from ..exec.trace import trace
from ..mm.page_address import page_address
from ..mm.pgtable import lowmem_address, page_is_highmem
from ..mm.ram import in_flight_line

# dma_cache_maint_page frame: A0 page, A1 offset, A2 bytes left, A3 direction, A4 chunk
# length, A5 range cursor, A6 base vaddr of the chunk's page (0: no L1 op)
_CHUNK = 0
_PINNED = 1
_L1 = 2
_UNPIN = 3
_OUTER = 4
_FLAG_V3_UNMAP = 1 << 8      # A3 high bits: the v3 unmap/sync op (invalidate), not map_area
_DIR_MASK = 0xFF


@inline
def valid_dma_direction(d):
    return d == K.DMA_BIDIRECTIONAL or d == K.DMA_TO_DEVICE or d == K.DMA_FROM_DEVICE


@inline
def outer_op(S, op, lo, hi):
    """``outer_{inv,clean,flush}_range(paddr, paddr + size)``: a hook that does nothing unless
    an outer cache is configured (asm/cacheflush.h:285-310); emu counts the calls."""
    o = S[K.H_R_OUTER]
    S[o + op] += 1
    S[o + K.OUTER_LAST_LO] = lo
    S[o + K.OUTER_LAST_HI] = hi


@inline
def _chunk_op(S, f):
    d = S[f + K.F_A3]
    if d & _FLAG_V3_UNMAP:
        return K.OP_INV
    return K.DIR2OP[d]


@inline
def _v3_outer(S, f):
    """v3 (S4): one outer op over the whole buffer — ``__dma_page_cpu_to_dev`` cleans it
    (invalidates for FROM_DEVICE) after the L1 ops; ``__dma_page_dev_to_cpu`` invalidates it
    before them (spec §3.9). 2.6.30 calls the hook per chunk instead (§3.3)."""
    lo = S[f + K.F_A7]
    hi = lo + S[f + K.F_A8]
    d = S[f + K.F_A3]
    if d & _FLAG_V3_UNMAP or d == K.DMA_FROM_DEVICE:
        outer_op(S, K.OUTER_INV, lo, hi)
    else:
        outer_op(S, K.OUTER_CLEAN, lo, hi)


# hot (inlined into the context runner): the step an exploration of (i) runs most (a line
# of the invalidate loop each); scheduler 15.6 -> 16.7 M steps/s
@hot
def dma_cache_maint_page_step(S, B, c, f):
    """``dma_cache_maint_page(page, offset, size, dir)`` (dm:562-586), one chunk at a time.

    2.6.30 mishandles ``offset >= PAGE_SIZE`` for highmem pages (size_t underflow, spec §3.4);
    emu normalises page and offset first, as later kernels do (S4).
    """
    v3 = S[K.H_DMA_API] == K.API_V3
    while True:
        pc = S[f + K.F_PC]
        if pc == _CHUNK:
            left = S[f + K.F_A2]
            if S[f + K.F_A7] == 0 and S[f + K.F_A8] == 0:      # first chunk
                S[f + K.F_A7] = (S[f + K.F_A0] << K.PAGE_SHIFT) + S[f + K.F_A1]
                S[f + K.F_A8] = left
                if v3 and S[f + K.F_A3] & _FLAG_V3_UNMAP:
                    _v3_outer(S, f)
            if left <= 0:
                if v3 and not S[f + K.F_A3] & _FLAG_V3_UNMAP:
                    _v3_outer(S, f)
                return K.ST_RET
            pfn = S[f + K.F_A0]
            off = S[f + K.F_A1]
            if off >= K.PAGE_SIZE:                  # the fix: pfn += off / PAGE_SIZE first
                pfn += off >> K.PAGE_SHIFT
                off &= K.PAGE_SIZE - 1
                S[f + K.F_A0] = pfn
                S[f + K.F_A1] = off
            n = left
            high = page_is_highmem(S, pfn)
            if high and n + off > K.PAGE_SIZE:
                n = K.PAGE_SIZE - off
            S[f + K.F_A4] = n
            S[f + K.F_A5] = RANGE_START
            uop(S, K.UOP_ALU, 4)
            uop(S, K.UOP_BRANCH, 2)
            if not high:
                S[f + K.F_A6] = lowmem_address(S, pfn)
                S[f + K.F_PC] = _L1
            elif S[K.H_DMA_PIN] == K.PIN_KMAP_HIGH_GET:
                S[f + K.F_PC] = _PINNED
                push(S, c, K.R_KMAP_HIGH_GET, pfn, 0, 0, 0)
                return K.ST_CALL
            else:
                # unpinned: the address can be recycled under the loop (the seed patch's race),
                # from here on: preemption (or the other CPU) may come between page_address()
                # and the first line op (Pitre, spec §5: "still leaves a window")
                S[f + K.F_A6] = page_address(S, pfn)
                trace(S, K.T_PAGE_ADDRESS, S[f + K.F_A6], pfn)
                if S[f + K.F_A6] != 0:
                    S[f + K.F_PC] = _L1
                    return K.ST_YIELD
                S[f + K.F_PC] = _OUTER
        elif pc == _PINNED:
            vaddr = S[S[K.H_R_CTX] + c * K.CTX_W + K.CTX_RET]
            S[f + K.F_A6] = vaddr
            # no mapping: no L1 op (VIVT holds no lines of an unmapped highmem page, §3.3)
            S[f + K.F_PC] = _L1 if vaddr != 0 else _OUTER
        elif pc == _L1:
            start = S[f + K.F_A6] + S[f + K.F_A1]
            pa = (S[f + K.F_A0] << K.PAGE_SHIFT) + S[f + K.F_A1]
            S[K.H_DMA_LO] = pa
            S[K.H_DMA_HI] = pa + S[f + K.F_A4]
            cur0 = S[f + K.F_A5]
            va = start if cur0 == RANGE_START else cur0 & ~RANGE_HALF
            kind = K.T_MAINT_INV if cur0 != RANGE_START and cur0 & RANGE_HALF else K.T_MAINT
            trace(S, kind, va, pa + va - start)         # the line's pa, as its va
            cur = dma_range_step(S, B, _chunk_op(S, f), start, start + S[f + K.F_A4], cur0)
            S[K.H_DMA_LO] = -1
            S[K.H_DMA_HI] = -1
            S[f + K.F_A5] = cur
            if cur != RANGE_DONE:
                if cur0 != RANGE_START:             # this step was one more line, nothing else
                    return yield_same(S)
                return K.ST_YIELD                   # between two cache lines
            pinned = (S[K.H_DMA_PIN] == K.PIN_KMAP_HIGH_GET
                      and page_is_highmem(S, S[f + K.F_A0]))
            S[f + K.F_PC] = _UNPIN if pinned else _OUTER
        elif pc == _UNPIN:
            S[f + K.F_PC] = _OUTER
            push(S, c, K.R_KUNMAP_HIGH_UNPIN, S[f + K.F_A0], 0, 0, 0)
            return K.ST_CALL
        else:
            if not v3:
                pa = (S[f + K.F_A0] << K.PAGE_SHIFT) + S[f + K.F_A1]
                outer_op(S, _chunk_op(S, f), pa, pa + S[f + K.F_A4])
            S[f + K.F_A2] -= S[f + K.F_A4]
            S[f + K.F_A0] += 1
            S[f + K.F_A1] = 0
            S[f + K.F_PC] = _CHUNK


# ---------------------------------------------------------------------------------------------
# dma-debug (lib/dma-debug.c): live mappings, checked on unmap and sync
# ---------------------------------------------------------------------------------------------


@inline
def _dd(S):
    return S[K.H_R_DMADBG]


@inline
def debug_add(S, handle, size, d, pfn, typ):
    t = _dd(S)
    if S[t + K.DD_OFF]:
        return
    n = S[t + K.DD_COUNT]
    if n >= S[t + K.DD_CAP]:
        S[t + K.DD_OFF] = 1                         # "DMA-API: debugging out of memory"
        return
    e = t + K.DD_HDR + n * K.DD_W
    S[e + K.DD_HANDLE] = handle
    S[e + K.DD_SIZE] = size
    S[e + K.DD_DIR] = d
    S[e + K.DD_PFN] = pfn
    S[e + K.DD_TYPE] = typ
    S[t + K.DD_COUNT] = n + 1


@inline
def _debug_find(S, handle):
    t = _dd(S)
    for j in range(S[t + K.DD_COUNT]):
        if S[t + K.DD_HDR + j * K.DD_W + K.DD_HANDLE] == handle:
            return j
    return -1


@inline
def _debug_error(S, kind, handle, a, b):
    """Report a dma-debug error; in strict mode the call fails (returns True)."""
    S[_dd(S) + K.DD_ERRORS] += 1
    if S[K.H_DMA_STRICT]:
        fail(S, K.ERR_DMA_DEBUG, kind, handle, a, b)
        return True
    return False


@inline
def debug_unmap(S, handle, size, d, typ):
    """check_unmap(): the mapping must exist with the same size, type (``dma_unmap_page`` of
    a page mapping, ``dma_unmap_sg`` of an sg entry) and direction. Each mismatch is
    reported, in that order; in strict mode the first stops the call (returns True) and the
    mapping stays, otherwise it is freed anyway, as the kernel does. Then emu's own check,
    which dma-debug cannot make: no ``device_start`` transfer still in flight writes into
    the mapping (a driver that took a spurious IRQ for the device's completion)."""
    t = _dd(S)
    if S[t + K.DD_OFF]:
        return False
    j = _debug_find(S, handle)
    if j < 0:
        return _debug_error(S, K.DD_ERR_NOT_MAPPED, handle, size, d)
    e = t + K.DD_HDR + j * K.DD_W
    if S[e + K.DD_SIZE] != size:
        if _debug_error(S, K.DD_ERR_SIZE, handle, S[e + K.DD_SIZE], size):
            return True
    if S[e + K.DD_TYPE] != typ:
        if _debug_error(S, K.DD_ERR_TYPE, handle, size, S[e + K.DD_TYPE] * 256 + typ):
            return True
    if S[e + K.DD_DIR] != d:
        if _debug_error(S, K.DD_ERR_DIR, handle, S[e + K.DD_SIZE], S[e + K.DD_DIR] * 256 + d):
            return True
    line = in_flight_line(S, handle, S[e + K.DD_SIZE])
    if line >= 0 and _debug_error(S, K.DD_ERR_IN_FLIGHT, handle, S[e + K.DD_SIZE], line):
        return True
    # the later entries move down one: the table stays in mapping order, so a handle mapped
    # twice is found oldest first, as lib/dma-debug.c's bucket list (list_add_tail) finds it
    n = S[t + K.DD_COUNT]
    for k in range(e, t + K.DD_HDR + (n - 1) * K.DD_W):
        S[k] = S[k + K.DD_W]
    S[t + K.DD_COUNT] = n - 1
    return False


@inline
def debug_sync(S, handle, size, d, to_cpu):
    """check_sync(): the range must lie in a live mapping made in the same direction. The
    mapping is the one whose handle it is (lib/dma-debug.c looks the entry up by dev_addr,
    oldest first); emu also accepts a handle inside a mapping (a sub-range sync, as
    ``dma_sync_single_range_*`` with the offset folded into the handle), taking the oldest
    mapping that contains it, one made in the sync's direction first (the best fit, as
    later kernels' bucket_find_contain does). (The spec is silent on dma-debug: this follows
    2.6.30.) As check_sync(), every check runs and each failed one is an error of its own
    (range, direction, then read-only memory synced for the CPU or write-only memory synced
    for the device); in strict mode the first stops the call (returns True)."""
    t = _dd(S)
    if S[t + K.DD_OFF]:
        return False
    j = _debug_find(S, handle)
    if j < 0:
        for i in range(S[t + K.DD_COUNT]):
            e = t + K.DD_HDR + i * K.DD_W
            if S[e + K.DD_HANDLE] <= handle < S[e + K.DD_HANDLE] + S[e + K.DD_SIZE]:
                if j < 0:
                    j = i
                if S[e + K.DD_DIR] == d:
                    j = i
                    break
    if j < 0:
        return _debug_error(S, K.DD_ERR_SYNC_NOT_MAPPED, handle, size, d)
    e = t + K.DD_HDR + j * K.DD_W
    h = S[e + K.DD_HANDLE]
    esize = S[e + K.DD_SIZE]
    edir = S[e + K.DD_DIR]
    if handle + size > h + esize:
        # "[device address=entry's] [allocation size] [sync offset] [sync size]"
        if _debug_error(S, K.DD_ERR_SYNC_RANGE, h, esize, ((handle - h) << 32) | size):
            return True
    # 2.6.30's check_sync tests the direction before its DMA_BIDIRECTIONAL exit, so a
    # bidirectional mapping synced one way is reported too; later kernels (the v3 model)
    # swapped the two and accept it
    if edir == K.DMA_BIDIRECTIONAL and S[K.H_DMA_API] == K.API_V3:
        return False
    dirs = edir * 256 + d
    if edir != d:
        if _debug_error(S, K.DD_ERR_SYNC_DIR, handle, esize, dirs):
            return True
    if edir == K.DMA_BIDIRECTIONAL:
        return False
    if to_cpu and edir != K.DMA_FROM_DEVICE and d != K.DMA_TO_DEVICE:
        if _debug_error(S, K.DD_ERR_SYNC_RO, handle, esize, dirs):
            return True
    if not to_cpu and edir != K.DMA_TO_DEVICE and d != K.DMA_FROM_DEVICE:
        if _debug_error(S, K.DD_ERR_SYNC_WO, handle, esize, dirs):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# API entry points (F_A0..A3 as in Linux; the device is implicit)
# ---------------------------------------------------------------------------------------------


@tiny
def dma_map_page_bad_arg(S, pfn, offset, size, direction):
    """The first ``dma_map_page`` argument out of range (its index: pfn 0, offset 1, size 2,
    direction 3), or -1: ``[offset, offset + size)`` of page ``pfn`` must be non-empty and
    inside RAM, the direction valid (no sum here can overflow int64)."""
    npages = S[K.H_NPAGES]
    if not 0 <= pfn < npages:
        return 0
    room = (npages - pfn) << K.PAGE_SHIFT      # bytes from the page's start to RAM's end
    if not 0 <= offset < room:
        return 1
    if not 0 < size <= room - offset:
        return 2
    return -1 if K.DMA_BIDIRECTIONAL <= direction <= K.DMA_FROM_DEVICE else 3


@njit
def dma_map_page_step(S, B, c, f):
    """``dma_map_page(dev, page, offset, size, dir)`` (dmh:325): BUG_ON(!valid_dma_direction);
    dma_cache_maint_page; return ``page_to_dma(page) + offset``."""
    pfn = S[f + K.F_A0]
    off = S[f + K.F_A1]
    size = S[f + K.F_A2]
    d = S[f + K.F_A3] & _DIR_MASK                   # DMA_FLAG_SG: an entry of dma_map_sg
    if S[f + K.F_PC] == 0:
        if not valid_dma_direction(d):
            return bug(S, K.BUG_DMA_DIRECTION, d, 0, 0)
        S[f + K.F_PC] = 1
        push(S, c, K.R_DMA_CACHE_MAINT_PAGE, pfn, off, size, d)
        return K.ST_CALL
    handle = (pfn << K.PAGE_SHIFT) + off
    debug_add(S, handle, size, d, pfn,
              K.DD_TYPE_SG if S[f + K.F_A3] & K.DMA_FLAG_SG else K.DD_TYPE_PAGE)
    set_ret(S, c, handle)
    return K.ST_RET_YIELD


@inline
def _v3_dev_to_cpu(S, c, f, handle, size, d):
    """v3 ``__dma_page_dev_to_cpu``: invalidate again unless TO_DEVICE (spec §3.9)."""
    if S[K.H_DMA_API] == K.API_V3 and d != K.DMA_TO_DEVICE:
        S[f + K.F_PC] = 1
        push(S, c, K.R_DMA_CACHE_MAINT_PAGE, handle >> K.PAGE_SHIFT,
             handle & (K.PAGE_SIZE - 1), size, d | _FLAG_V3_UNMAP)
        return K.ST_CALL
    set_ret(S, c, 0)
    return K.ST_RET_YIELD


@inline
def _handle_call(S, c, f, which):
    """The common start of unmap (``which`` 0; the direction may carry ``DMA_FLAG_SG``, which
    it takes off) and the syncs (1: for the CPU, 2: for the device): the second entry returns;
    the first checks the direction (BUG) and dma-debug's record. Returns a status, or -1 to
    go on."""
    if S[f + K.F_PC] == 1:
        set_ret(S, c, 0)
        return K.ST_RET_YIELD
    handle = S[f + K.F_A0]
    size = S[f + K.F_A1]
    d = S[f + K.F_A2] & _DIR_MASK
    typ = K.DD_TYPE_SG if S[f + K.F_A2] & K.DMA_FLAG_SG else K.DD_TYPE_PAGE
    uop(S, K.UOP_BRANCH, 2)                         # call and return
    if not valid_dma_direction(d):
        return bug(S, K.BUG_DMA_DIRECTION, d, 0, 0)
    if debug_unmap(S, handle, size, d, typ) if which == 0 else debug_sync(S, handle, size, d,
                                                                           which == 1):
        return K.ST_ERROR
    S[f + K.F_A2] = d
    return -1


@njit
def dma_unmap_page_step(S, B, c, f):
    """``dma_unmap_page(dev, handle, size, dir)``: 2.6.30 does nothing ("nothing to do",
    spec §3.5); the v3 ownership model invalidates FROM_DEVICE/BIDIRECTIONAL buffers again."""
    st = _handle_call(S, c, f, 0)
    if st >= 0:
        return st
    return _v3_dev_to_cpu(S, c, f, S[f + K.F_A0], S[f + K.F_A1], S[f + K.F_A2])


@njit
def dma_sync_for_cpu_step(S, B, c, f):
    """``dma_sync_single_for_cpu``: 2.6.30 touches no cache (commit 309dbbab, spec §3.5);
    v3 invalidates again unless TO_DEVICE."""
    st = _handle_call(S, c, f, 1)
    if st >= 0:
        return st
    return _v3_dev_to_cpu(S, c, f, S[f + K.F_A0], S[f + K.F_A1], S[f + K.F_A2])


@njit
def dma_sync_for_device_step(S, B, c, f):
    """``dma_sync_single_for_device``. 2.6.30 runs the virtual flavour
    ``dma_cache_maint(dma_to_virt(handle), size, dir)``, whose
    ``BUG_ON(!virt_addr_valid(start) || !virt_addr_valid(start + size - 1))`` fires for a
    highmem buffer (spec §3.5, §6.7); v3 maintains by page as ``dma_map_page`` does."""
    st = _handle_call(S, c, f, 2)
    if st >= 0:
        return st
    handle = S[f + K.F_A0]
    size = S[f + K.F_A1]
    d = S[f + K.F_A2]
    last = handle + max(size, 1) - 1
    # F_A3 = 1: dma_sync_sg_for_device, which maintains by page even in 2.6.30
    if (S[K.H_DMA_API] == K.API_2630 and S[f + K.F_A3] == 0
            and (page_is_highmem(S, handle >> K.PAGE_SHIFT)
                 or page_is_highmem(S, last >> K.PAGE_SHIFT))):
        return bug(S, K.BUG_DMA_VIRT_INVALID, handle, size, 0)
    S[f + K.F_PC] = 1
    push(S, c, K.R_DMA_CACHE_MAINT_PAGE, handle >> K.PAGE_SHIFT, handle & (K.PAGE_SIZE - 1),
         size, d)
    return K.ST_CALL
