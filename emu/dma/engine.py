"""The bus-master DMA engine: moves bytes between a device and RAM, never through the cache.

Bus addresses are physical addresses. A device write also updates the oracle's shadow: after
it, RAM *should* hold the device's bytes, so a later CPU read that returns older cached bytes
is a stale read; a device read of RAM bytes older than the CPU's latest stores (still dirty
in the cache) is a stale device read.
"""

from .. import consts as K
from .._bytes import copy_xor
from .._jit import inline
from ..cache.kernels import mark_ram_range
from ..mm.ram import check_device_read, shadow_store


@inline
def device_write(S, B, addr, src, so, n):
    """The device writes ``src[so:so+n]`` to RAM at bus address ``addr``."""
    copy_xor(B, S[K.H_B_RAM] + addr, src, so, n, K.RAM_POISON)
    mark_ram_range(S, B, addr, n)
    shadow_store(S, B, addr, src, so, n)


@inline
def device_read(S, B, addr, dst, do, n):
    """The device reads ``n`` RAM bytes at bus address ``addr`` into ``dst[do:]``; the oracle
    reports the bytes RAM holds that memory should not (a stale device read)."""
    copy_xor(dst, do, B, S[K.H_B_RAM] + addr, n, K.RAM_POISON)
    check_device_read(S, B, addr, n)
