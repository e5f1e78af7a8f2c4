"""emu.cache: a VIVT write-back data cache that holds real data.

Public names: :class:`Cache`, :class:`CacheConfig`, :func:`preset`, :data:`PRESETS`,
:func:`read_din`.
"""

from .cache import Cache, Discard, LineRecord
from .config import PRESETS, CacheConfig, preset
from .din import read_din

__all__ = ["Cache", "CacheConfig", "Discard", "LineRecord", "PRESETS", "preset", "read_din"]
