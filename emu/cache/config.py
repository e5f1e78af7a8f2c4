"""Cache geometry, policies and the per-core presets, with validation.

Values marked ``[S]`` are stated by the cited source, ``[R]`` recalled from a vendor manual that
could not be checked, ``[E]`` an assumption (see ../shared/spec/arm-cycle-costs.md §1.3).
"""

from dataclasses import dataclass, replace

from .. import consts as K
from .._args import is_int

_POW2_HINT = "a power of two"


@dataclass(frozen=True)
class CacheConfig:
    """Geometry and policy of one VIVT data cache.

    Parameters
    ----------
    size : int
        Capacity in bytes (power of two).
    ways : int
        Associativity (power of two, at most ``size // line``).
    line : int
        Line size in bytes (power of two, 4..256).
    replacement : str
        ``"round-robin"``, ``"lru"``, ``"fifo"`` or ``"random"``.
    write_back : bool
        Write-back (True) or write-through (False).
    write_allocate : bool
        Allocate on write misses too (True) or on read misses only (False, ARM926).
    style : str
        Whose Linux cache routines the range and whole-cache operations follow: ``"arm926"``,
        ``"feroceon"``, ``"xscale"`` or ``"v4wb"``.
    dirty_granule : int
        Bytes covered by one dirty bit (ARM926: 16, two dirty bits per line).
    window : int
        Virtual base of the area ``flush_all`` displaces through (XScale clean area, v4wb
        ``FLUSH_BASE``); unused by the other styles.
    """

    size: int = 16384
    ways: int = 4
    line: int = 32
    replacement: str = "round-robin"
    write_back: bool = True
    write_allocate: bool = False
    style: str = "arm926"
    dirty_granule: int = 0
    window: int = 0

    def __post_init__(self):
        for name in ("size", "ways", "line", "dirty_granule", "window"):
            if is_int(getattr(self, name)):                 # numpy ints as Python ones
                object.__setattr__(self, name, int(getattr(self, name)))
        if self.dirty_granule == 0 and isinstance(self.line, int):
            object.__setattr__(self, "dirty_granule", self.line)
        self.validate()

    # -- derived --------------------------------------------------------------------------
    @property
    def nlines(self):
        """Lines in the cache."""
        return self.size // self.line

    @property
    def nsets(self):
        """Sets in the cache."""
        return self.nlines // self.ways

    @property
    def repl_id(self):
        """The replacement policy's index in ``REPL_NAMES`` (what the kernels read)."""
        return K.REPL_NAMES.index(self.replacement)

    @property
    def style_id(self):
        """The routine style's index in ``STYLE_NAMES`` (what the kernels read)."""
        return K.STYLE_NAMES.index(self.style)

    def validate(self):
        """Raise ``ValueError`` naming the first bad argument."""
        for name in ("size", "ways", "line", "dirty_granule"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0 or v & (v - 1):
                raise ValueError(f"{name}={v!r}: must be {_POW2_HINT} (a positive int)")
        if not 4 <= self.line <= 256:
            raise ValueError(f"line={self.line}: must be a power of two from 4 to 256")
        if self.size < self.line:
            raise ValueError(f"size={self.size}: must be at least one line ({self.line} bytes)")
        if self.ways > self.nlines:
            raise ValueError(f"ways={self.ways}: must be at most size // line = {self.nlines}")
        if self.dirty_granule > self.line or self.line // self.dirty_granule > 32:
            raise ValueError(f"dirty_granule={self.dirty_granule}: must divide the line "
                             f"({self.line} bytes) into 1..32 parts")
        if self.replacement not in K.REPL_NAMES:
            raise ValueError(f"replacement={self.replacement!r}: accepted values are "
                             + ", ".join(repr(n) for n in K.REPL_NAMES))
        if self.style not in K.STYLE_NAMES:
            raise ValueError(f"style={self.style!r}: accepted values are "
                             + ", ".join(repr(n) for n in K.STYLE_NAMES))
        for name in ("write_back", "write_allocate"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r}: must be True or False")
        if 4 * self.size > K.ADDR_SPACE:           # (the window check below named window)
            raise ValueError(f"size={self.size}: must be at most {K.ADDR_SPACE // 4} (1 GiB: "
                             f"flush_all's displacement window, two cache sizes, must fit the "
                             f"32-bit address space)")
        if not isinstance(self.window, int) or not 0 <= self.window <= 0xFFFFFFFF - 2 * self.size \
                or self.window % self.line:
            raise ValueError(f"window={self.window!r}: must be a line-aligned 32-bit address "
                             f"with room for two {self.size}-byte windows above it")

    def with_(self, **changes):
        """A copy with some fields changed, validated as a new configuration.

        Parameters
        ----------
        **changes
            Field names of :class:`CacheConfig` (``size``, ``ways``, ``line``, ``replacement``,
            ...) and their new values.

        Returns
        -------
        CacheConfig
            The new configuration; ``self`` is unchanged.
        """
        return replace(self, **changes)


# Presets. Sources: ARM926EJ-S TRM DDI 0198D §4.1 [S] (4-way, 32 B lines, VIVT, two dirty bits
# per line, allocate on read miss only, round-robin or random selectable); 16 KiB is the size
# the cost spec assumes [E: ARM926 D-caches are 4-128 KiB]. Feroceon 88FR131: 16 KiB 4-way
# 32 B (7-cpu.com/cpu/Kirkwood.html) [S]; read-allocate, round-robin and one dirty bit per line
# [E]. XScale: 32 KiB, 32 B lines (proc-xscale.S CACHESIZE, CACHELINESIZE) [S], 32-way and
# round-robin (Intel XScale Core Developer's Manual) [R], two dirty bits per line [R];
# clean area 0xFFFE0000 (proc-xscale.S clean_addr) [S]. SA-110 (cache-v4wb.S): 16 KiB
# (CACHE_DSIZE) [S], 32-way, round-robin [R], one dirty bit per line [E]; FLUSH_BASE 0xF9000000
# (footbridge asm/arch/memory.h, the SA-110 EBSA-285 platform) [S].
PRESETS = {
    "arm926": CacheConfig(16384, 4, 32, "round-robin", True, False, "arm926", 16, 0),
    "feroceon": CacheConfig(16384, 4, 32, "round-robin", True, False, "feroceon", 32, 0),
    "xscale": CacheConfig(32768, 32, 32, "round-robin", True, False, "xscale", 16, 0xFFFE0000),
    "sa110": CacheConfig(16384, 32, 32, "round-robin", True, False, "v4wb", 32, 0xF9000000),
}

#: Which values of each preset are assumptions (shown by ``emu presets``).
PRESET_ASSUMPTIONS = {
    "arm926": ("size 16 KiB (ARM926 D-caches are 4-128 KiB)", "round-robin per set"),
    "feroceon": ("read-allocate", "round-robin per set", "one dirty bit per line"),
    "xscale": ("32-way [R]", "round-robin per set [R]", "two dirty bits per line [R]"),
    "sa110": ("32-way [R]", "round-robin per set [R]", "one dirty bit per line"),
}


def preset(name):
    """The :class:`CacheConfig` of a core preset.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`: ``"arm926"``, ``"feroceon"``, ``"xscale"``, ``"sa110"``.

    Returns
    -------
    CacheConfig

    Raises
    ------
    ValueError
        ``name`` is not a preset (the message lists the accepted names).
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"cpu={name!r}: unknown core preset; accepted values are "
                         + ", ".join(repr(n) for n in PRESETS)) from None
