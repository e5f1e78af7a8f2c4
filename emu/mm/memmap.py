"""The machine's memory map: ARM 2.6.30 defaults (spec §2), validated.

Physical RAM starts at 0 (PHYS_OFFSET); the first ``lowmem`` bytes are mapped linearly at
PAGE_OFFSET, the rest is highmem with no permanent mapping. The pkmap window sits right below
PAGE_OFFSET: ``PKMAP_BASE = PAGE_OFFSET - PMD_SIZE`` with LAST_PKMAP pages (ARM's 512 fill
that PMD). A larger LAST_PKMAP, as x86's 1024, is an emu extension: the window then starts
LAST_PKMAP pages below PAGE_OFFSET, still ending there.
"""

from dataclasses import dataclass

import numpy as np

from .. import consts as K
from .._args import is_int

#: The linear map may not run into the vmalloc/IO area (ARM: VMALLOC_END 0xF0000000).
LINEAR_MAP_END = 0xF0000000
#: ARM's LAST_PKMAP is PTRS_PER_PTE, one PMD of PTEs (asm/highmem.h); more slots grow the
#: window downwards, at most into the 16 MiB between TASK_SIZE and PAGE_OFFSET (asm/memory.h).
MAX_LAST_PKMAP = 4096


def _mb_to_pages(name, mb):
    if isinstance(mb, (bool, np.bool_)) or not isinstance(mb, (int, float, np.integer,
                                                                 np.floating)):
        raise ValueError(f"{name}={mb!r}: must be a number of MiB")
    pages = mb * 256
    if pages < 0 or pages != int(pages):
        raise ValueError(f"{name}={mb!r}: must be a non-negative multiple of 4 KiB "
                         f"(1/256 MiB)")
    return int(pages)


@dataclass(frozen=True)
class MemoryMap:
    """Sizes and addresses of one machine (validated on construction).

    Parameters
    ----------
    lowmem_mb : float
        Linearly mapped RAM, MiB (at least one page).
    highmem_mb : float
        RAM above it, MiB.
    last_pkmap : int
        LAST_PKMAP, a power of two from 2 to 4096.
    page_offset : int
        PAGE_OFFSET: 0xC0000000, 0x80000000 or 0x40000000 (CONFIG_VMSPLIT_3G/2G/1G).
    """

    lowmem_mb: float = 16
    highmem_mb: float = 16
    last_pkmap: int = 512
    page_offset: int = 0xC0000000

    def __post_init__(self):
        lp = self.last_pkmap
        if not is_int(lp) or lp < 2 or lp & (lp - 1) or lp > MAX_LAST_PKMAP:
            raise ValueError(f"last_pkmap={lp!r}: must be a power of two from 2 to "
                             f"{MAX_LAST_PKMAP} (LAST_PKMAP; ARM has 512)")
        object.__setattr__(self, "last_pkmap", int(lp))      # numpy ints too
        po = self.page_offset
        if not is_int(po) or po not in (0xC0000000, 0x80000000, 0x40000000):
            raise ValueError(f"page_offset={po!r}: accepted values are 0xC0000000, "
                             f"0x80000000 and 0x40000000 (CONFIG_VMSPLIT_3G/2G/1G)")
        low = _mb_to_pages("lowmem_mb", self.lowmem_mb)
        if low < 1:
            raise ValueError(f"lowmem_mb={self.lowmem_mb!r}: must be at least one page")
        if po + low * K.PAGE_SIZE > LINEAR_MAP_END:
            raise ValueError(f"lowmem_mb={self.lowmem_mb!r}: the linear map would pass "
                             f"{LINEAR_MAP_END:#x}; at most {(LINEAR_MAP_END - po) >> 20} MiB")
        high = _mb_to_pages("highmem_mb", self.highmem_mb)
        if (low + high) * K.PAGE_SIZE > K.ADDR_SPACE:
            raise ValueError(f"highmem_mb={self.highmem_mb!r}: RAM must fit in 32 bits")
        for name in ("lowmem_mb", "highmem_mb"):             # numpy numbers as Python ones
            v = getattr(self, name)
            if isinstance(v, np.generic):
                object.__setattr__(self, name, v.item())
        object.__setattr__(self, "page_offset", int(po))

    @property
    def lowmem_pages(self):
        """Pages of lowmem."""
        return _mb_to_pages("lowmem_mb", self.lowmem_mb)

    @property
    def npages(self):
        """Pages of RAM, lowmem and highmem."""
        return self.lowmem_pages + _mb_to_pages("highmem_mb", self.highmem_mb)

    @property
    def pkmap_base(self):
        """PKMAP_BASE: the pkmap window sits below PAGE_OFFSET (2 MiB below on ARM)."""
        return self.page_offset - max(K.PMD_SIZE, self.last_pkmap * K.PAGE_SIZE)
