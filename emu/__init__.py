"""emu: an ARM VIVT data cache, the Linux highmem pkmap window and ARM streaming-DMA cache
maintenance, with an instruction-level cycle cost model.

>>> import emu
>>> m = emu.Machine(cpu="arm926", last_pkmap=8)
>>> hex(m.kmap(m.highmem_pfns[0]))        # the first pkmap slot handed out is 1, not 0
'0xbfe01000'
"""

from . import cache
from .consts import DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE
from .errors import Deadlock, DmaDebugError, EmuError, KernelBug, PageFault, WouldSleep
from .machine import Finding, Machine

__version__ = "0.1.0"

__all__ = [
    "Machine", "Finding", "cache", "DMA_BIDIRECTIONAL", "DMA_TO_DEVICE", "DMA_FROM_DEVICE",
    "EmuError", "KernelBug", "PageFault", "WouldSleep", "Deadlock", "DmaDebugError",
]
