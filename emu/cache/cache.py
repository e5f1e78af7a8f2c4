"""The public :class:`Cache`: a VIVT data cache that holds real data.

Used on its own (``emu.cache.Cache(size=16384, ways=4)``) or as ``Machine.cache``, where it
works on the machine's own arrays. Every method validates its arguments first and raises
``ValueError`` naming the bad one, so a rejected call changes nothing.
"""

import inspect
from typing import NamedTuple, Optional

import numpy as np

from .. import consts as K
from .._args import check_int, check_int_array, is_int
from ..cost.account import add_regions as _add_accounting
from ..layout import Layout, b_view, pack_bytes, s_view, unpack_bytes
from . import kernels as _k
from . import maint as _m
from .maint import dma_range as _dma_range
from .config import CacheConfig, preset
from .state import DEFAULT_EVENT_CAPACITY, MAX_EVENT_CAPACITY, add_cache, add_events

ADDR_LIMIT = 1 << 32


class LineRecord(NamedTuple):
    """One valid cache line, as :meth:`Cache.probe` returns it.

    Attributes
    ----------
    valid, dirty : bool
    vtag : int
        Virtual address of the line (the tag, VIVT).
    pa : int or None
        Physical address it was filled from (None: no backing RAM).
    data : bytes
        Its bytes.
    dirty_mask : int
        One bit per dirty granule.
    set, way : int
        Where it sits.
    """

    valid: bool
    dirty: bool
    vtag: int
    pa: Optional[int]
    data: bytes
    dirty_mask: int
    set: int
    way: int


class Discard(NamedTuple):
    """A dirty line dropped by an invalidate: the data it held never reached RAM.

    Attributes
    ----------
    va : int
        Virtual address of the line.
    pa : int or None
        Physical address it was filled from.
    dirty_mask : int
        One bit per dirty granule.
    data : bytes
        What it held.
    ctx : int
        The context that dropped it.
    site : str
        The routine that dropped it.
    step : int
        The run's step number then.
    """

    va: int
    pa: Optional[int]
    dirty_mask: int
    data: bytes
    ctx: int
    site: str
    step: int


def _check_addr(name, value, limit=ADDR_LIMIT):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: must be an int address")
    if not 0 <= value < limit:
        raise ValueError(f"{name}={value:#x}: must be in [0, {limit:#x})")
    return int(value)


def _check_range(start, end):
    start = _check_addr("start", start)
    end = _check_addr("end", end, ADDR_LIMIT + 1)
    if end < start:
        raise ValueError(f"end={end:#x}: must be >= start ({start:#x}); end is exclusive")
    return start, end


def _as_bytes(data):
    """``data`` as a read-only, C-contiguous uint8 array: one array type for the kernels
    whatever the caller passed (a writeable array would make numba compile them again)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(data), dtype=np.uint8)
    arr = np.asarray(data)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError("data: must be bytes, bytearray or a 1-D uint8 array")
    arr = np.ascontiguousarray(arr).view()          # a view: the caller's array keeps its flags
    arr.flags.writeable = False
    return arr


class Cache:
    """A set-associative, virtually indexed, virtually tagged data cache.

    Parameters
    ----------
    size, ways, line : int
        Geometry in bytes / ways / bytes, all powers of two (``ways <= size // line``,
        ``size <= 2**30``).
    replacement : str
        ``"round-robin"`` (ARM default), ``"lru"``, ``"fifo"`` or ``"random"``.
    write_back : bool
        Write-back (default) or write-through.
    write_allocate : bool
        Allocate on write misses too; default False (ARM926: read-allocate only).
    style : str
        Whose Linux maintenance routines the range and ``flush_all`` operations follow
        (``"arm926"``, ``"feroceon"``, ``"xscale"``, ``"v4wb"``).
    dirty_granule : int
        Bytes per dirty bit (default: one bit per line).
    window : int
        Base of the ``flush_all`` displacement window (XScale, v4wb).
    seed : int
        Seed of the random replacement policy (any int ``>= 0``).
    ram_size : int
        Bytes of backing RAM (allocated lazily; default the whole 32-bit space).
    events : int
        How many dropped dirty lines :meth:`discards` keeps (at most ``2**24``).

    Examples
    --------
    >>> c = Cache(size=16384, ways=4)
    >>> c.load(0x1000, 4)                      # miss: fills the line from RAM (poisoned)
    b'ZZZZ'
    >>> c.inv_range(0x1000, 0x1020)
    """

    def __init__(self, size=16384, ways=4, line=32, replacement="round-robin", write_back=True,
                 write_allocate=False, style="arm926", dirty_granule=0, window=0, seed=0,
                 ram_size=ADDR_LIMIT, events=DEFAULT_EVENT_CAPACITY):
        cfg = CacheConfig(size, ways, line, replacement, write_back, write_allocate, style,
                          dirty_granule, window)
        seed = check_int("seed", seed, 0)
        if not is_int(ram_size) or not 0 < ram_size <= ADDR_LIMIT:
            raise ValueError(f"ram_size={ram_size!r}: must be an int in (0, 2**32]")
        if not is_int(events) or not 0 <= events <= MAX_EVENT_CAPACITY:
            raise ValueError(f"events={events!r}: must be an int in [0, {MAX_EVENT_CAPACITY}]")
        ram_size, events = int(ram_size), int(events)
        if ram_size % cfg.line:
            raise ValueError(f"ram_size={ram_size}: must be a multiple of the line size "
                             f"({cfg.line} bytes)")
        lay = Layout(K.HDR_SIZE)            # machine-only header slots stay 0 (unused)
        add_cache(lay, cfg, seed)
        lay.param(K.H_S_COUNTERS, lay.s_size)
        _add_accounting(lay)
        lay.param(K.H_S_TAIL, lay.s_size)
        add_events(lay, cfg, events)
        lay.param(K.H_RAM_SIZE, ram_size)
        lay.b_region(K.H_B_RAM, ram_size)
        S, B = lay.build()
        self._bind(S, B, cfg)

    @classmethod
    def from_preset(cls, name, **overrides):
        """A standalone cache with a core preset's geometry.

        Parameters
        ----------
        name : str
            Core preset: ``"arm926"``, ``"feroceon"``, ``"xscale"`` or ``"sa110"``.
        **overrides
            Any argument of :class:`Cache` (``size=``, ``ram_size=``, ``seed=`` ...).

        Returns
        -------
        Cache
        """
        cfg = preset(name)
        accepted = tuple(inspect.signature(cls).parameters)
        for key, value in overrides.items():
            if key not in accepted:
                raise ValueError(f"{key}={value!r}: not an argument of Cache; accepted "
                                 f"arguments are " + ", ".join(accepted))
        kw = dict(size=cfg.size, ways=cfg.ways, line=cfg.line, replacement=cfg.replacement,
                  write_back=cfg.write_back, write_allocate=cfg.write_allocate, style=cfg.style,
                  dirty_granule=cfg.dirty_granule, window=cfg.window)
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def _over(cls, S, B, cfg, after=None):
        """A view of the cache inside a machine's arrays; ``after(S, B)`` runs after each op
        (a function of the arrays, not a method of the machine: no reference cycle)."""
        self = cls.__new__(cls)
        self._bind(S, B, cfg, after)
        return self

    def _bind(self, S, B, cfg, after=None):
        self._S = S
        self._B = B
        object.__setattr__(self, "config", cfg)         # fixed: see __setattr__
        self._after = after
        self._ram_size = int(S[K.H_RAM_SIZE])
        self._scratch = np.zeros(max(cfg.line, 256), dtype=np.uint8)

    def __getstate__(self):
        """Pickling (and ``copy.deepcopy``): the state with ``B`` packed, so untouched RAM (4 GiB
        by default) is neither copied nor written out."""
        state = self.__dict__.copy()
        state["_B"] = pack_bytes(self._B)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state, _B=unpack_bytes(state["_B"]))

    def __copy__(self):
        """``copy.copy``: another handle on the same cache (state arrays shared)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    # -- geometry ---------------------------------------------------------------------------
    @property
    def line(self):
        """Line size in bytes."""
        return self.config.line

    def __setattr__(self, name, value):
        """``config`` (the geometry and policies, :class:`CacheConfig`) and the ``Cache()``
        arguments (``c.write_back``, ``c.ways``, ``c.line`` ...) are fixed when the cache is
        made: the state arrays are laid out for them, so a new value would be silently
        ignored. Assigning one raises; other attributes are the user's."""
        if name in _FIXED:
            raise AttributeError(f"Cache.{name} is fixed when the cache is made (its state "
                                 f"arrays are laid out for it): make a new "
                                 f"Cache({_FIXED[name]}=...) or Cache.from_preset(...)")
        object.__setattr__(self, name, value)

    def _done(self):
        if self._after is not None:
            self._after(self._S, self._B)

    # -- CPU accesses -------------------------------------------------------------------------
    def _split(self, va, pa, n, va_name="va"):
        va = _check_addr(va_name, va)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n={n!r}: must be a non-negative int")
        n = int(n)
        if va + n > ADDR_LIMIT:
            raise ValueError(f"n={n}: {va_name} + n must not pass the end of the 32-bit space")
        pa = va if pa is None else _check_addr("pa", pa)
        if (pa ^ va) & (self.line - 1):
            raise ValueError(f"pa={pa:#x}: must have the same offset within a line as "
                             f"va={va:#x} (translation keeps the offset)")
        if pa + n > self._ram_size:
            raise ValueError(f"pa={pa:#x}: pa + n must be within RAM ({self._ram_size:#x} bytes)")
        return va, pa, n

    def load(self, va, n, pa=None):
        """CPU loads of ``n`` bytes at virtual ``va``, a line-sized access at a time.

        Parameters
        ----------
        va : int
            Virtual address (index and tag), any alignment.
        n : int
            Number of bytes.
        pa : int, optional
            Physical address a miss fills from (default ``va``: a standalone cache's
            identity map).

        Returns
        -------
        bytes
        """
        va, pa, n = self._split(va, pa, n)
        out = np.empty(n, dtype=np.uint8)
        o = 0
        while o < n:
            k = min(self.line - ((va + o) & (self.line - 1)), n - o)
            _k.cache_load(self._S, self._B, va + o, pa + o, k, out, o)
            o += k
        self._done()
        return out.tobytes()

    def store(self, va, data, pa=None):
        """CPU stores of ``data`` at virtual ``va``, a line-sized access at a time, under the
        cache's write policy (write-back or write-through, write-allocate or not).

        Parameters
        ----------
        va : int
            Virtual address (index and tag), any alignment.
        data : bytes, bytearray, memoryview or 1-D uint8 array
            The bytes to store (copied).
        pa : int, optional
            Physical address behind ``va`` (default ``va``).
        """
        src = _as_bytes(data)
        va, pa, n = self._split(va, pa, len(src))
        o = 0
        while o < n:
            k = min(self.line - ((va + o) & (self.line - 1)), n - o)
            _k.cache_store(self._S, self._B, va + o, pa + o, k, src, o)
            o += k
        self._unshadowed(K.H_B_TOUCHED, pa, n)
        self._done()

    def _unshadowed(self, slot, pa, n):
        """On a machine, mark the 512-byte blocks of ``[pa, pa + n)`` in the page flag bytes
        at ``S[slot]``: a store straight into the cache (or RAM) that the oracle's shadow does
        not know of is ``H_B_TOUCHED`` (the final check compares only touched blocks); a RAM
        write is ``H_B_RAMDIRTY`` too (snapshots restore it). A standalone cache has neither."""
        flags = int(self._S[slot]) if slot < len(self._S) else 0
        if not flags or n <= 0 or (slot == K.H_B_TOUCHED and not self._S[K.H_ORACLE]):
            return
        for b in range(pa >> K.BLOCK_SHIFT, ((pa + n - 1) >> K.BLOCK_SHIFT) + 1):
            self._B[flags + (b >> 3)] |= 1 << (b & 7)

    # -- maintenance --------------------------------------------------------------------------
    def _line(self, op, va):
        _k.line_op(self._S, self._B, op, _check_addr("va", va))
        self._done()

    def inv_line(self, va):
        """Invalidate the line holding ``va`` (``mcr p15, 0, rd, c7, c6, 1``): dirty data is
        dropped (counted in ``dirty_discards`` and logged in :meth:`discards`).

        Parameters
        ----------
        va : int
            Virtual address, any byte of the line.
        """
        self._line(K.OP_INV, va)

    def clean_line(self, va):
        """Write back the line holding ``va`` if it is dirty (``mcr p15, 0, rd, c7, c10, 1``);
        it stays valid.

        Parameters
        ----------
        va : int
            Virtual address, any byte of the line.
        """
        self._line(K.OP_CLEAN, va)

    def flush_line(self, va):
        """Clean and invalidate the line holding ``va`` (``mcr p15, 0, rd, c7, c14, 1``).

        Parameters
        ----------
        va : int
            Virtual address, any byte of the line.
        """
        self._line(K.OP_FLUSH, va)

    def _range(self, op, start, end):
        if not (type(start) is int and type(end) is int and 0 <= start < ADDR_LIMIT
                and start <= end <= ADDR_LIMIT):
            start, end = _check_range(start, end)       # the slow path says what is wrong
        _dma_range(self._S, self._B, op, start, end)
        if self._after is not None:
            self._after(self._S, self._B)

    def inv_range(self, start, end):
        """The core's ``dma_inv_range(start, end)``: end exclusive; partial edge lines are
        cleaned first (as the core's routine does), interior lines invalidated (dirty data
        dropped).

        Parameters
        ----------
        start, end : int
            Virtual range ``[start, end)``, ``0 <= start <= end <= 2**32``.
        """
        self._range(K.OP_INV, start, end)

    def clean_range(self, start, end):
        """The core's ``dma_clean_range(start, end)``: every dirty line written back.

        Parameters
        ----------
        start, end : int
            Virtual range ``[start, end)``, ``0 <= start <= end <= 2**32``.
        """
        self._range(K.OP_CLEAN, start, end)

    def flush_range(self, start, end):
        """The core's ``dma_flush_range(start, end)``: clean and invalidate.

        Parameters
        ----------
        start, end : int
            Virtual range ``[start, end)``, ``0 <= start <= end <= 2**32``.
        """
        self._range(K.OP_FLUSH, start, end)

    def flush_all(self):
        """The core's ``flush_kern_cache_all`` (test-clean-invalidate, set/way, line-allocate
        or read displacement, as the style says)."""
        _m.flush_kern_cache_all(self._S, self._B)
        self._done()

    # -- inspection ---------------------------------------------------------------------------
    def probe(self, va):
        """The valid line holding ``va``, looked up without touching the cache's state.

        Parameters
        ----------
        va : int
            Virtual address, any byte of the line.

        Returns
        -------
        LineRecord or None
            ``(valid, dirty, vtag, pa, data)`` of the line, or None on a miss.
        """
        va = _check_addr("va", va)
        i = int(_k.find(self._S, va & ~(self.line - 1)))
        return None if i < 0 else self._record(i)

    def _record(self, i):
        S, cfg = self._S, self.config
        d = int(S[K.H_B_CDATA]) + i * cfg.line
        pa = int(S[S[K.H_R_LPA] + i])
        mask = int(S[S[K.H_R_DIRTY] + i])
        return LineRecord(True, mask != 0, int(S[S[K.H_R_TAG] + i]),
                          None if pa == K.NO_PA else pa, self._B[d:d + cfg.line].tobytes(),
                          mask, i // cfg.ways, i % cfg.ways)

    def lines(self):
        """Every valid line, in index order (set-major)."""
        tags = s_view(self._S, K.H_R_TAG, self.config.nlines)
        return [self._record(int(i)) for i in np.flatnonzero(tags != K.TAG_INVALID)]

    def state(self):
        """Copies of the raw line arrays (for comparing whole caches)."""
        n, cfg = self.config.nlines, self.config
        S = self._S
        return {
            "tag": s_view(S, K.H_R_TAG, n).copy(),
            "pa": s_view(S, K.H_R_LPA, n).copy(),
            "dirty": s_view(S, K.H_R_DIRTY, n).copy(),
            "data": b_view(S, self._B, K.H_B_CDATA, n * cfg.line).reshape(n, cfg.line).copy(),
        }

    @property
    def stats(self):
        """Counters as a dict (``loads``, ``stores``, ``load_hits`` ... ``dirty_discards``)."""
        c = s_view(self._S, K.H_R_CSTAT, K.NCSTAT)
        return {name: int(c[i]) for i, name in enumerate(K.CSTAT_NAMES)}

    def dinero_stats(self):
        """The counters Dinero IV prints for this cache's data side, as if the trace ended now.

        Dinero copies back every dirty block at the end of a run (cmdmain.c ``done:``), so
        ``bytes_to_memory`` includes the dirty lines still cached; nothing is changed here.
        """
        st = self.stats
        S = self._S
        dirty = s_view(S, K.H_R_DIRTY, self.config.nlines)
        valid = s_view(S, K.H_R_TAG, self.config.nlines) != K.TAG_INVALID
        g = self.config.dirty_granule
        pending = sum(bin(int(m)).count("1") * g for m in dirty[valid & (dirty != 0)])
        return {
            "demand_fetches": st["loads"] + st["stores"],
            "read_fetches": st["loads"], "write_fetches": st["stores"],
            "demand_misses": st["load_misses"] + st["store_misses"],
            "read_misses": st["load_misses"], "write_misses": st["store_misses"],
            "bytes_from_memory": st["bytes_read"],
            "bytes_to_memory": st["bytes_written"] + pending,
        }

    def reset_stats(self):
        """Zero the counters of :attr:`stats` (the lines are left as they are)."""
        s_view(self._S, K.H_R_CSTAT, K.NCSTAT)[:] = 0

    def discards(self):
        """Dirty lines dropped by invalidates so far, oldest first: the first ``events`` of a
        standalone cache (the rest are counted in :attr:`discards_dropped`); on a Machine
        with the oracle, those since its log last started again (it does when nearly full,
        after judging every entry: :func:`emu.dma.oracle.judge_discards`)."""
        S = self._S
        ev = int(S[K.H_R_EV])
        n = min(int(S[ev + K.EV_COUNT]), int(S[ev + K.EV_CAP]))
        out = []
        for j in range(n):
            r = ev + K.EV_HDR + j * K.EV_W
            e = int(S[K.H_B_EVDATA]) + j * self.line
            pa = int(S[r + K.EV_PA])
            out.append(Discard(int(S[r + K.EV_VA]), None if pa == K.NO_PA else pa,
                               int(S[r + K.EV_MASK]), self._B[e:e + self.line].tobytes(),
                               int(S[r + K.EV_CTX]), K.SITE_NAMES[int(S[r + K.EV_SITE])],
                               int(S[r + K.EV_STEP])))
        return out

    @property
    def discards_dropped(self):
        """Discards that happened after the event buffer was full (counted, not stored)."""
        ev = int(self._S[K.H_R_EV])
        return max(0, int(self._S[ev + K.EV_COUNT]) - int(self._S[ev + K.EV_CAP]))

    def clear_discards(self):
        """Empty the log of :meth:`discards` (and the count of :attr:`discards_dropped`)."""
        self._S[int(self._S[K.H_R_EV]) + K.EV_COUNT] = 0

    # -- RAM (standalone caches) ---------------------------------------------------------------
    def ram_read(self, pa, n):
        """RAM bytes as a bus master sees them (no cache).

        Parameters
        ----------
        pa : int
            Physical address; ``[pa, pa + n)`` must lie in RAM.
        n : int
            Number of bytes.

        Returns
        -------
        bytes
        """
        pa, _, n = self._split(pa, pa, n, "pa")
        r = int(self._S[K.H_B_RAM]) + pa
        return (self._B[r:r + n] ^ K.RAM_POISON).tobytes()

    def ram_write(self, pa, data):
        """Write RAM directly, not through the cache (a loader or a bus master).

        Parameters
        ----------
        pa : int
            Physical address; the bytes must fit in RAM.
        data : bytes, bytearray, memoryview or 1-D uint8 array
            The bytes (copied).
        """
        src = _as_bytes(data)
        pa, _, n = self._split(pa, pa, len(src), "pa")
        r = int(self._S[K.H_B_RAM]) + pa
        self._B[r:r + n] = src ^ K.RAM_POISON
        self._unshadowed(K.H_B_RAMDIRTY, pa, n)
        self._unshadowed(K.H_B_TOUCHED, pa, n)

    # -- traces --------------------------------------------------------------------------------
    def replay(self, kinds, addrs, sizes=None):
        """Replay a trace in one jitted call, counting as Dinero IV does.

        Parameters
        ----------
        kinds : array of int
            Dinero IV labels: 0 load, 1 store, 2 instruction fetch (ignored by a D-cache),
            3 misc load, 4 copy-back (clean) one line, 5 invalidate one line.
        addrs : array of int
            Byte addresses in RAM (used as both virtual and physical address).
        sizes : array of int, optional
            Bytes per access (default 1; 0 counts as 1 for the bounds); an access crossing a
            line boundary is split. ``addr + size`` must not pass the end of RAM.

        Returns
        -------
        int
            Number of trace records replayed.
        """
        kinds, addrs, sizes = self._trace(kinds, addrs, sizes)
        n = int(_k.replay(self._S, self._B, kinds, addrs, sizes))
        self._done()
        return n

    def _trace(self, kinds, addrs, sizes):
        """The checked int64 arrays of :meth:`replay` (ValueError naming the bad one)."""
        ram = self._ram_size
        kinds = check_int_array("kinds", kinds, 0, 6)
        addrs = check_int_array("addrs", addrs, 0, ram, as_hex=True)
        sizes = (np.ones(len(kinds), np.int64) if sizes is None
                 else check_int_array("sizes", sizes, 0, ram + 1))
        if not len(kinds) == len(addrs) == len(sizes):
            raise ValueError(f"kinds, addrs, sizes: must have the same length (got "
                             f"{len(kinds)}, {len(addrs)}, {len(sizes)})")
        past = addrs + np.maximum(sizes, 1) > ram        # both < 2**33: no overflow
        if past.any():
            i = int(np.argmax(past))
            raise ValueError(f"addrs[{i}]={int(addrs[i]):#x}: with sizes[{i}]={int(sizes[i])} "
                             f"passes the end of RAM ({ram:#x} bytes)")
        return kinds, addrs, sizes

    def __repr__(self):
        c = self.config
        return (f"Cache(size={c.size}, ways={c.ways}, line={c.line}, "
                f"replacement={c.replacement!r}, write_back={c.write_back}, "
                f"write_allocate={c.write_allocate}, style={c.style!r})")


#: What ``Cache.__setattr__`` refuses: ``config`` and the ``Cache()`` arguments, with the
#: constructor argument(s) a new value goes to.
_FIXED = {p: p for p in inspect.signature(Cache.__init__).parameters if p != "self"} | {
    "config": "size, ways, line, ..."}
