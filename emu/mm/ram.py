"""RAM, the integrity oracle's shadow of it, and the findings log.

RAM bytes are stored XOR ``RAM_POISON`` so a never-written (OS-zeroed, lazily allocated) page
reads as the poison pattern. The shadow holds what each byte *should* hold after every CPU
store and device write, in order (same encoding); a 512-byte block of a page is marked
touched when either writes it, which bounds the final check.
"""

from .. import consts as K
from .._bytes import copy_bytes, copy_xor, count_diff
from .._jit import hot, inline
from ..cache.kernels import mark_blocks, mark_ram_range


@hot
def shadow_store(S, B, pa, src, so, n):
    """A CPU store or device write of ``src[so:so+n]`` at ``pa``: what memory should now hold."""
    if S[K.H_ORACLE] == 0:
        return
    copy_xor(B, S[K.H_B_SHADOW] + pa, src, so, n, K.RAM_POISON)
    mark_blocks(B, S[K.H_B_TOUCHED], pa, n)
    mark_ram_range(S, B, pa, n)


@inline
def shadow_accept(S, B, pa, n):
    """Declare RAM's current bytes at ``pa`` correct (a buffer handed to the device)."""
    mark_ram_range(S, B, pa, n)
    copy_bytes(B, S[K.H_B_SHADOW] + pa, B, S[K.H_B_RAM] + pa, n)


@inline
def record_finding(S, B, kind, pa, va, expect, eo, found, fo, n, bad, dma_lo, dma_hi):
    """Log a finding: ``n`` bytes at ``pa`` should hold ``expect[eo:]`` but hold ``found[fo:]``
    (plain bytes); ``bad`` of them are the ones that count (lost or stale)."""
    fr = S[K.H_R_FIND]
    i = S[fr + K.FIND_COUNT]
    S[fr + K.FIND_COUNT] = i + 1
    S[fr + K.FIND_BYTES + kind] += bad              # totals count past the log's capacity
    if i >= S[fr + K.FIND_CAP]:
        return
    r = fr + K.FIND_HDR + i * K.FIND_W
    m = min(n, K.FIND_MAXB)
    d = S[K.H_B_FINDDATA] + i * 2 * K.FIND_MAXB
    copy_bytes(B, d, expect, eo, m)
    copy_bytes(B, d + K.FIND_MAXB, found, fo, m)
    S[r + K.FD_KIND] = kind
    S[r + K.FD_PA] = pa
    S[r + K.FD_VA] = va
    S[r + K.FD_N] = m
    S[r + K.FD_BAD] = bad
    S[r + K.FD_CTX] = S[K.H_CUR_CTX]
    S[r + K.FD_SITE] = S[K.H_CUR_SITE]
    S[r + K.FD_STEP] = S[K.H_STEP]
    S[r + K.FD_DMA_LO] = dma_lo
    S[r + K.FD_DMA_HI] = dma_hi


@inline
def check_device_read(S, B, pa, n):
    """Stale-device-read check: the ``n`` RAM bytes a device read at ``pa`` against the
    shadow, a finding per cache line that differs (CPU stores still dirty in the cache, a
    ``DMA_TO_DEVICE`` buffer the CPU wrote after its clean: the device sends old bytes)."""
    if S[K.H_ORACLE] == 0:
        return
    line = S[K.H_C_LINE]
    ram = S[K.H_B_RAM]
    sh = S[K.H_B_SHADOW]
    exp = S[K.H_B_SCRATCH]
    fnd = exp + line
    end = pa + n
    while pa < end:
        k = min(end, pa - pa % line + line) - pa
        bad = count_diff(B, ram + pa, B, sh + pa, k, 0)
        if bad:
            copy_xor(B, exp, B, sh + pa, k, K.RAM_POISON)
            copy_xor(B, fnd, B, ram + pa, k, K.RAM_POISON)
            record_finding(S, B, K.FIND_STALE_DEVICE, pa, -1, B, exp, B, fnd, k, bad, -1, -1)
        pa += k


@hot
def check_load(S, B, va, pa, dst, n):
    """Stale-read check: the ``n`` bytes a CPU load just put at ``B[dst:]`` against the shadow;
    then, while a device transfer is in flight, :func:`check_read_in_flight`."""
    if S[K.H_ORACLE] == 0:
        return
    sh = S[K.H_B_SHADOW] + pa
    bad = count_diff(B, dst, B, sh, n, K.RAM_POISON)
    if bad:
        scratch = S[K.H_B_SCRATCH]
        copy_xor(B, scratch, B, sh, n, K.RAM_POISON)
        record_finding(S, B, K.FIND_STALE, pa, va, B, scratch, B, dst, n, bad, -1, -1)
    if S[K.H_XFERS] > 0:
        check_read_in_flight(S, B, va, pa, dst, n)


@inline
def in_flight_line(S, lo, n):
    """The IRQ line whose ``device_start`` transfer in flight writes into ``[lo, lo + n)``
    (bus address = physical address), or -1."""
    for line in range(K.MAXIRQ):
        ir = S[K.H_R_IRQ] + line * K.IRQ_W
        a = S[ir + K.IRQ_XFER_ADDR]
        if S[ir + K.IRQ_XFER_LEN] > 0 and a < lo + n and lo < a + S[ir + K.IRQ_XFER_LEN]:
            return line
    return -1


@inline
def check_read_in_flight(S, B, va, pa, dst, n):
    """emu's own check of a CPU load of ``[pa, pa + n)``: the bytes a ``device_start``
    transfer still in flight is to write there are a ``read-during-dma`` finding, the
    device's bytes expected and the load's found, the transfer's range as its DMA range.
    The driver took memory's old bytes for the device's (a spurious IRQ ended its wait):
    the shadow cannot see it, since it changes only once the device writes."""
    for line in range(K.MAXIRQ):
        ir = S[K.H_R_IRQ] + line * K.IRQ_W
        k = S[ir + K.IRQ_XFER_LEN]
        a = S[ir + K.IRQ_XFER_ADDR]
        lo = max(a, pa)
        hi = min(a + k, pa + n)
        if k > 0 and lo < hi:
            # bytes the stale-read check already counted (the load got cached bytes older
            # than memory's) are not counted again: a run's stale total counts each once
            stale = count_diff(B, dst + lo - pa, B, S[K.H_B_SHADOW] + lo, hi - lo,
                               K.RAM_POISON)
            record_finding(S, B, K.FIND_DMA_READ, lo, va + lo - pa,
                           B, S[ir + K.IRQ_XFER_SRC] + lo - a, B, dst + lo - pa,
                           hi - lo, hi - lo - stale, a, a + k)
