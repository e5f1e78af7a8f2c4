"""``emu.Machine``: one emulated ARM system (CPUs sharing a VIVT D-cache, RAM, the pkmap
window and the streaming-DMA API), driven directly from Python.

Every direct call runs one kernel routine to completion as a task on CPU 0, through the same
jitted code an interleaved scenario uses (:mod:`emu.exec`). Arguments are validated first, so
a rejected call changes nothing; kernel BUGs are raised as :class:`emu.KernelBug` with the
machine state as it was.
"""

import inspect
from functools import partial
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import consts as K
from .cache.cache import Cache, _as_bytes
from .cache.config import preset
from .cache.state import add_cache, add_events
from .cost.account import add_regions as add_accounting
from .cost.account import idle_counts, uop_counts
from .cost.tables import cost_vector
from .dma.oracle import final_check, judge_discards
from .errors import EmuError
from .exec import kernel as _kernel
from .exec.kernel import direct_call
from ._jit import cold_cache, entry
from .exec.errors import raise_for
from .layout import Layout, pack_bytes, s_view, unpack_bytes
from .mm.memmap import MemoryMap
from .mm.page_address import init_page_address
from .rng import seed_state
from ._args import INT64_MAX, check_bool, check_choice, check_int, check_real
from .warmup import warmup

SCHED_SALT = 0x632BE59BD9B4E019   # random schedules draw from their own generator
_DIRECT_SIG = "int64(int64[::1], uint8[::1], int64, int64, int64, int64, int64)"
_R_KMAP_HIGH, _R_KUNMAP_HIGH, _R_DMA_MAP_PAGE = K.R_KMAP_HIGH, K.R_KUNMAP_HIGH, K.R_DMA_MAP_PAGE
_BAD_ARGS = K.DIRECT_BAD_ARGS
IO_BYTES = 1 << 16          # bytes a direct read/write moves per kernel call
FIND_CAPACITY = 1024
MAX_RAM_MB = K.ADDR_SPACE >> 20     # lowmem_mb and highmem_mb: each at most the 32-bit space
MAX_BUFFER = 1 << 32                # program_rows, data_bytes, trace_events (scenario buffers)
DMADBG_CAPACITY = 4096


def judge_discards_of(S, B):
    """The oracle's judgement of the dirty lines a cache operation dropped (the callback of
    ``Machine.cache``).

    Parameters
    ----------
    S, B : numpy.ndarray
        The machine's arrays.
    """
    judge_discards(S, B)


class Finding(NamedTuple):
    """One integrity finding of the oracle.

    Attributes
    ----------
    kind : str
        ``"lost-write"`` (a dirty line dropped outside the DMA buffer), ``"lost-at-end"``
        (the final check), ``"stale-read"`` (a CPU load), ``"stale-device-read"``, or
        ``"read-during-dma"`` (a CPU load of bytes a ``device_start`` transfer in flight is
        still to write: ``expected`` holds the device's bytes; emu's own check).
    pa, va : int
        Physical and virtual address of the first byte.
    pfn : int
        Its page.
    expected, found : bytes
        What memory should hold there, and what it held (or the load got).
    bad_bytes : int
        How many of them differ (``read-during-dma``: how many the device had yet to write,
        less those a ``stale-read`` finding of the same load counts already).
    ctx : int
        The context running when it was found (0: direct calls).
    site : str
        The routine running then (``"dma_map_page"``, ``"user"``, ...).
    step : int
        The run's step number then.
    dma_range : tuple or None
        The physical range ``(lo, hi)`` the dropping maintenance was for (for
        ``read-during-dma``, the device transfer's), or None.
    """

    kind: str
    pa: int
    va: int
    pfn: int
    expected: bytes
    found: bytes
    bad_bytes: int
    ctx: int
    site: str
    step: int
    dma_range: tuple


class Machine:
    """An emulated ARM machine (the whole API is listed in the repository's ``API.md``).

    A machine is not thread-safe: use each one from one thread at a time (separate machines
    in separate threads are fine; emu's kernels hold the GIL). It pickles and deep-copies
    to an independent machine in the same state.

    Parameters
    ----------
    cpu : str
        Core preset: ``"arm926"``, ``"feroceon"``, ``"xscale"`` or ``"sa110"``.
    lowmem_mb, highmem_mb : float
        RAM mapped linearly at PAGE_OFFSET, and RAM above it (MiB, multiples of 4 KiB; the
        linear map must end by 0xF0000000 and all RAM fit in 32 bits).
    last_pkmap : int
        LAST_PKMAP, pkmap slots: a power of two, 2..4096 (ARM has 512, one PMD; a larger
        window, as x86's 1024, starts LAST_PKMAP pages below PAGE_OFFSET).
    kmap_high_get : bool
        ARCH_NEEDS_KMAP_HIGH_GET: irq-disabling ``kmap_lock`` and ``kmap_high_get()``.
    dma_pinning : str
        ``"kmap_high_get"`` (2.6.30) or ``"page_address"`` (the racy scheme); default follows
        ``kmap_high_get``.
    ncpus : int
        CPUs sharing the one VIVT cache.
    seed : int
        Every random choice derives from it (any int ``>= 0``: every bit counts).
    dma_api : str
        ``"2.6.30"`` (map maintains; unmap and sync_for_cpu do nothing) or ``"v3"``.
    page_offset : int
        PAGE_OFFSET (0xC0000000, 0x80000000 or 0x40000000).
    preempt : bool
        CONFIG_PREEMPT: ``preempt_disable()``/``preempt_enable()`` cost instructions.
    oracle : bool
        Keep the shadow of RAM and report lost writes and stale reads.
    dma_debug_strict : bool
        A dma-debug error raises :class:`emu.DmaDebugError` (else it is only counted).
    costs : dict, optional
        Overrides of the core's cycle table, ``{"mrs": 2, ...}``: cycles an int in
        ``[0, 1_000_000]`` (``emu.cost.tables.MAX_CYCLES``), ``core_mhz`` / ``bus_mhz`` a
        number in ``[1, 10_000]`` (see :func:`emu.cost.tables.validate_overrides`).
    timeslice : int
        Timed mode: cycles a task runs before a preemptible point switches (0: off; at most
        ``2**63 - 1``).
    stats : bool
        Keep the profiler's records: lock_stat times, irqs-off sections, IRQ latency and
        per-routine cycles (micro-op counts and clocks are always kept). Off, the kmap fast
        path takes about 20 % less time.
    """

    PAGE_SIZE = K.PAGE_SIZE

    def __init__(self, cpu="arm926", lowmem_mb=16, highmem_mb=16, last_pkmap=512,
                 kmap_high_get=True, dma_pinning=None, ncpus=1, seed=0, dma_api="2.6.30",
                 page_offset=0xC0000000, preempt=True, oracle=True, dma_debug_strict=True,
                 costs=None, contexts=1, program_rows=0, data_bytes=0, trace_events=0,
                 timeslice=0, stats=True, _force_kmap_high_get=False):
        cache_cfg = preset(cpu)
        lowmem_mb = check_real("lowmem_mb", lowmem_mb, 0, MAX_RAM_MB)
        highmem_mb = check_real("highmem_mb", highmem_mb, 0, MAX_RAM_MB)
        page_offset = check_int("page_offset", page_offset, 0, K.ADDR_SPACE - 1)
        fix = partial(object.__setattr__, self)         # settings: see __setattr__
        fix("memmap", MemoryMap(lowmem_mb, highmem_mb, last_pkmap, page_offset))
        self._npages = self.memmap.npages
        self._lowmem = self.memmap.lowmem_pages
        kmap_high_get = check_bool("kmap_high_get", kmap_high_get)
        if dma_pinning is None:
            dma_pinning = "kmap_high_get" if kmap_high_get else "page_address"
        check_choice("dma_pinning", dma_pinning, K.PIN_NAMES)
        if dma_pinning == "kmap_high_get" and not (kmap_high_get or _force_kmap_high_get):
            raise ValueError("dma_pinning='kmap_high_get': needs kmap_high_get=True "
                             "(without ARCH_NEEDS_KMAP_HIGH_GET only 'page_address' exists)")
        check_choice("dma_api", dma_api, K.API_NAMES)
        ncpus = check_int("ncpus", ncpus, 1, K.MAXCPUS)
        seed = check_int("seed", seed, 0)
        contexts = check_int("contexts", contexts, 1, 64)
        program_rows = check_int("program_rows", program_rows, 0, MAX_BUFFER)
        data_bytes = check_int("data_bytes", data_bytes, 0, MAX_BUFFER)
        trace_events = check_int("trace_events", trace_events, 0, MAX_BUFFER)
        timeslice = check_int("timeslice", timeslice, 0, INT64_MAX)
        preempt, oracle, dma_debug_strict, stats = (
            check_bool(name, v) for name, v in (("preempt", preempt), ("oracle", oracle),
                                                ("dma_debug_strict", dma_debug_strict),
                                                ("stats", stats)))
        fix("cpu", cpu)
        fix("ncpus", ncpus)
        fix("seed", seed)
        fix("kmap_high_get_enabled", kmap_high_get)
        fix("dma_pinning", dma_pinning)
        fix("dma_api", dma_api)
        self._stats = stats
        self._costs = cost_vector(cpu, costs)
        self._S, self._B = self._build(cache_cfg, kmap_high_get, dma_pinning, dma_api, preempt,
                                       oracle, dma_debug_strict, contexts, program_rows,
                                       data_bytes, trace_events, _force_kmap_high_get)
        self._S[K.H_TIMESLICE] = timeslice
        self._S[K.H_SCHED_RNG] = seed_state(seed, SCHED_SALT)
        self._attach(cache_cfg)
        if cold_cache():
            warmup()            # a first run: compile every kernel now, on all CPUs, saying so
        self._direct = entry(direct_call, _DIRECT_SIG)

    def _attach(self, cache_cfg):
        """``self.cache`` and ``self.device`` over the machine's arrays. The cache's callback
        is a function of the arrays, not a method of the machine, and the device holds the
        arrays: no reference cycle, so a machine is freed (its RAM too)
        as soon as the program drops it, not at the next garbage collection."""
        object.__setattr__(self, "cache",
                           Cache._over(self._S, self._B, cache_cfg, after=judge_discards_of))
        object.__setattr__(self, "_device", Device(self))

    def __setattr__(self, name, value):
        """A setting (``m.dma_pinning``, ``m.cache`` ...) or a ``Machine()`` argument
        (``m.dma_debug_strict``, ``m.last_pkmap`` ...) is fixed when the machine is built:
        the state arrays were laid out for it, so a new value would be silently ignored (or,
        as ``m.kmap_high_get = False``, hide a method). Assigning one raises, naming the
        constructor argument; other attributes are the user's."""
        if name in _FIXED:
            raise AttributeError(f"Machine.{name} is fixed when the machine is built: "
                                 f"make a new Machine({_FIXED[name]}=...)")
        object.__setattr__(self, name, value)

    @property
    def device(self):
        """The bus-master DMA engine (:class:`Device`) of this machine: the same object each
        time (the machine has one device)."""
        return self._device

    def __getstate__(self):
        """Pickling (and ``copy.deepcopy``): the settings and the state arrays, ``B`` packed
        (untouched RAM is neither copied nor written out); the cache view and the compiled
        entry point are made again when the machine is loaded."""
        state = self.__dict__.copy()
        del state["_direct"], state["cache"], state["_device"]
        state["_B"] = pack_bytes(self._B)
        state["_cache_config"] = self.cache.config
        return state

    def __copy__(self):
        """``copy.copy``: another handle on the same machine (state arrays shared)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __setstate__(self, state):
        state = dict(state)
        cfg = state.pop("_cache_config")
        self.__dict__.update(state, _B=unpack_bytes(state["_B"]))
        self._attach(cfg)
        self._direct = entry(direct_call, _DIRECT_SIG)

    # -- construction -------------------------------------------------------------------------
    def _build(self, cache_cfg, khg, pinning, api, preempt, oracle, strict, nctx, rows, data,
               trace_cap, forced):
        mm = self.memmap
        npages = mm.npages
        lay = Layout(K.HDR_SIZE)
        add_cache(lay, cache_cfg, self.seed)
        p = lay.param
        p(K.H_PAGE_OFFSET, mm.page_offset)
        p(K.H_PKMAP_BASE, mm.pkmap_base)
        p(K.H_LAST_PKMAP, mm.last_pkmap)
        p(K.H_LOWMEM_PAGES, mm.lowmem_pages)
        p(K.H_NPAGES, npages)
        p(K.H_KMAP_IRQ, int(khg))
        p(K.H_KHG, int(khg or forced))
        p(K.H_KHG_FORCED, int(forced))
        p(K.H_NCPUS, self.ncpus)
        p(K.H_NCTX, nctx)
        p(K.H_SMP, int(self.ncpus > 1))
        p(K.H_PREEMPT, int(preempt))
        p(K.H_ORACLE, int(oracle))
        p(K.H_DMA_PIN, K.PIN_NAMES.index(pinning))
        p(K.H_DMA_API, K.API_NAMES.index(api))
        p(K.H_DMA_STRICT, int(strict))
        p(K.H_RAM_SIZE, npages * K.PAGE_SIZE)
        p(K.H_IO_SIZE, IO_BYTES)
        last = mm.last_pkmap
        lay.s_region(K.H_R_PKMAP_COUNT, last)
        lay.s_region(K.H_R_PKMAP_PTE, last, fill=K.PTE_NONE)
        lay.s_region(K.H_R_TLB, self.ncpus * last, fill=K.PTE_NONE)
        lay.s_region(K.H_R_PAM, (last + K.PA_HASH_SIZE + 1) * K.PAM_W)
        lay.s_region(K.H_R_MMSTAT, K.NMMSTAT)
        lay.s_region(K.H_R_CPU, self.ncpus * K.CPU_W)
        lay.s_region(K.H_R_CTX, nctx * K.CTX_W)
        lay.s_region(K.H_R_LOCK, K.LOCK_W)
        lay.s_region(K.H_R_WAITQ, 1 + nctx)
        lay.s_region(K.H_R_OUTER, K.NOUTER)
        lay.s_region(K.H_R_REGS, rows)
        irq = lay.s_region(K.H_R_IRQ, K.MAXIRQ * K.IRQ_W)
        for line in range(K.MAXIRQ):
            lay.s_fill.append((irq + line * K.IRQ_W + K.IRQ_CTX, 1, -1))
            lay.s_fill.append((irq + line * K.IRQ_W + K.IRQ_DUE, 1, -1))
            lay.s_fill.append((irq + line * K.IRQ_W + K.IRQ_XFER_DUE, 1, -1))
        # then the counters, which only the reports read: the exploration loop skips them
        p(K.H_S_COUNTERS, lay.s_size)
        add_accounting(lay)
        lay.s_region(K.H_R_PROF, K.PROF_W)
        lay.s_region(K.H_R_PROFR, K.PR_SIZE)
        # logs last: a snapshot restore copies S up to here, then only their headers
        p(K.H_S_TAIL, lay.s_size)
        # scenario programs are written once, when loaded; scratch is written before it is
        # read: restores leave both alone
        lay.s_region(K.H_R_PROG, rows * K.PW)
        lay.s_region(K.H_R_ISCRATCH, 2 * cache_cfg.nlines + K.PAGE_SIZE // cache_cfg.line)
        add_events(lay, cache_cfg)
        fr = lay.s_region(K.H_R_FIND, K.FIND_HDR + FIND_CAPACITY * K.FIND_W)
        lay.s_fill.append((fr + K.FIND_CAP, 1, FIND_CAPACITY))
        dd = lay.s_region(K.H_R_DMADBG, K.DD_HDR + DMADBG_CAPACITY * K.DD_W)
        lay.s_fill.append((dd + K.DD_CAP, 1, DMADBG_CAPACITY))
        tr = lay.s_region(K.H_R_TRACE, K.TR_HDR + trace_cap * K.TR_W)
        lay.s_fill.append((tr + K.TR_CAP, 1, trace_cap))
        p(K.H_DATA_SIZE, data)
        p(K.H_DATA_RW, data)        # bytes of it runs may write (a scenario's read buffers)
        # B: state that snapshots copy first; then write-before-read buffers; RAM last
        lay.b_region(K.H_B_DATA, data)
        lay.b_region(K.H_B_IO, IO_BYTES)
        lay.b_region(K.H_B_FINDDATA, FIND_CAPACITY * 2 * K.FIND_MAXB)
        lay.b_region(K.H_B_SCRATCH, K.SCRATCH_BYTES)
        lay.b_region(K.H_B_TOUCHED, npages if oracle else 0)
        lay.b_region(K.H_B_RAMDIRTY, npages)
        lay.b_region(K.H_B_RAM, npages * K.PAGE_SIZE, align=K.PAGE_SIZE)
        lay.b_region(K.H_B_SHADOW, npages * K.PAGE_SIZE if oracle else 0, align=K.PAGE_SIZE)
        S, B = lay.build()
        S[K.H_COST:K.H_COST + K.NUOPS] = self._costs
        init_page_address(S)
        lk = int(S[K.H_R_LOCK])
        S[lk + K.LK_OWNER] = -1
        S[lk + K.LK_OWNER_CPU] = -1
        for cpu in range(self.ncpus):
            r = int(S[K.H_R_CPU]) + cpu * K.CPU_W
            S[r + K.CPU_CUR] = 0 if cpu == 0 else -1
            S[r + K.CPU_INTERRUPTED] = -1
            S[r + K.CPU_IRQ_WATCH] = -1
        for c in range(nctx):
            r = int(S[K.H_R_CTX]) + c * K.CTX_W
            S[r + K.CTX_STATE] = K.CTX_RUNNABLE if c == 0 else K.CTX_STATE_FREE
            S[r + K.CTX_PROG] = -1
            S[r + K.CTX_IRQ_LINE] = -1
        S[K.H_DIRECT_CTX] = 0
        S[K.H_CPUREC] = int(S[K.H_R_CPU])
        S[K.H_PROFILE] = int(self._stats)
        return S, B

    # -- memory map -----------------------------------------------------------------------------
    @property
    def PAGE_OFFSET(self):
        """PAGE_OFFSET: where lowmem's linear map starts."""
        return self.memmap.page_offset

    @property
    def PKMAP_BASE(self):
        """PKMAP_BASE: the pkmap window's first address."""
        return self.memmap.pkmap_base

    @property
    def LAST_PKMAP(self):
        """LAST_PKMAP: the pkmap window's slots."""
        return self.memmap.last_pkmap

    @property
    def lowmem_pfns(self):
        """The lowmem page frame numbers (linearly mapped), a range."""
        return range(0, self.memmap.lowmem_pages)

    @property
    def highmem_pfns(self):
        """The highmem page frame numbers (no permanent mapping), a range."""
        return range(self.memmap.lowmem_pages, self.memmap.npages)

    def pfn_to_phys(self, pfn):
        """Physical address of page ``pfn`` (PHYS_OFFSET is 0).

        Parameters
        ----------
        pfn : int
            Page frame number, in ``lowmem_pfns`` or ``highmem_pfns``.

        Returns
        -------
        int
            ``pfn << PAGE_SHIFT``.
        """
        return self._pfn(pfn) << K.PAGE_SHIFT

    def _pfn(self, pfn, name="pfn"):
        if type(pfn) is int and 0 <= pfn < self._npages:      # the common case, fast
            return pfn
        if isinstance(pfn, bool) or not isinstance(pfn, (int, np.integer)) \
                or not 0 <= pfn < self._npages:
            raise ValueError(f"{name}={pfn!r}: must be a page frame number in "
                             f"range(0, {self._npages})")
        return int(pfn)

    def _highmem_pfn(self, pfn, routine):
        if type(pfn) is int and self._lowmem <= pfn < self._npages:
            return pfn
        pfn = self._pfn(pfn)
        if pfn < self._lowmem:
            raise ValueError(f"pfn={pfn}: {routine}() takes a highmem page; highmem pfns are "
                             f"range({self._lowmem}, {self._npages})")
        return pfn

    # -- running kernel routines ---------------------------------------------------------------
    def _call(self, routine, a0=0, a1=0, a2=0, a3=0):
        r = self._direct(self._S, self._B, routine, a0, a1, a2, a3)
        if r < 0:
            raise_for(self, -1 - r)
        return r

    # -- pkmap (mm/highmem.c) -------------------------------------------------------------------
    def kmap(self, pfn):
        """ARM ``kmap()``: lowmem → its linear address; highmem → ``kmap_high``.

        Parameters
        ----------
        pfn : int
            Page frame number, in ``lowmem_pfns`` or ``highmem_pfns``.

        Returns
        -------
        int
            The page's kernel virtual address.

        Raises
        ------
        emu.WouldSleep
            A highmem page needs a slot and every slot is pinned.
        """
        return self._call(K.R_KMAP, self._pfn(pfn))

    def kunmap(self, pfn):
        """ARM ``kunmap()``: lowmem → nothing; highmem → ``kunmap_high``.

        Parameters
        ----------
        pfn : int
            Page frame number, in ``lowmem_pfns`` or ``highmem_pfns``.

        Raises
        ------
        emu.KernelBug
            A highmem page that is not mapped, or an unbalanced unmap.
        """
        self._call(K.R_KUNMAP, self._pfn(pfn))

    def kmap_high(self, pfn):
        """``kmap_high(page)``: map (or reuse the mapping of) a highmem page.

        A new mapping takes the next free slot after the cursor (the first one handed out is
        slot 1); a wrap of the cursor flushes the whole cache and frees the unused slots.

        Parameters
        ----------
        pfn : int
            A highmem page frame number (in ``highmem_pfns``).

        Returns
        -------
        int
            The page's pkmap address, ``PKMAP_BASE + nr * PAGE_SIZE``.

        Raises
        ------
        emu.WouldSleep
            Every slot is pinned: the call would sleep with nobody to wake it.
        """
        if not (type(pfn) is int and self._lowmem <= pfn < self._npages):
            pfn = self._highmem_pfn(pfn, "kmap_high")
        r = self._direct(self._S, self._B, _R_KMAP_HIGH, pfn, 0, 0, 0)
        if r < 0:
            raise_for(self, -1 - r)
        return r

    def kunmap_high(self, pfn):
        """``kunmap_high(page)``: drop one pin of the page's mapping. After the last one the
        slot stays mapped (count 1) until a wrap or :meth:`kmap_flush_unused` frees it.

        Parameters
        ----------
        pfn : int
            A highmem page frame number (in ``highmem_pfns``).

        Raises
        ------
        emu.KernelBug
            The page has no mapping (``BUG_ON(!vaddr)``) or no pin left (the ``BUG()`` on
            a count of 0).
        """
        if not (type(pfn) is int and self._lowmem <= pfn < self._npages):
            pfn = self._highmem_pfn(pfn, "kunmap_high")
        r = self._direct(self._S, self._B, _R_KUNMAP_HIGH, pfn, 0, 0, 0)
        if r < 0:
            raise_for(self, -1 - r)

    def kmap_high_get(self, pfn):
        """``kmap_high_get(page)``: pin the page's existing mapping, never make one.

        Parameters
        ----------
        pfn : int
            A highmem page frame number (in ``highmem_pfns``).

        Returns
        -------
        int
            The pkmap address, pinned (undo with :meth:`kunmap_high`), or 0 if the page
            has no mapping.

        Raises
        ------
        emu.EmuError
            The machine was built with ``kmap_high_get=False`` (no ARCH_NEEDS_KMAP_HIGH_GET).
        """
        if not self._S[K.H_KHG]:
            raise EmuError("kmap_high_get() does not exist without ARCH_NEEDS_KMAP_HIGH_GET "
                           "(this machine has kmap_high_get=False)")
        return self._call(K.R_KMAP_HIGH_GET, self._highmem_pfn(pfn, "kmap_high_get"))

    def kmap_flush_unused(self):
        """``kmap_flush_unused()``: free every lazily-unmapped (count 1) slot."""
        self._call(K.R_KMAP_FLUSH_UNUSED)

    def page_address(self, pfn):
        """``page_address(page)``: the page's kernel virtual address, looked up without
        running or charging any instruction.

        Parameters
        ----------
        pfn : int
            Page frame number, in ``lowmem_pfns`` or ``highmem_pfns``.

        Returns
        -------
        int
            The linear address of a lowmem page; a highmem page's pkmap address, or 0 if
            it has none.
        """
        return int(_kernel.page_address_of(self._S, self._pfn(pfn)))

    @property
    def pkmap_count(self):
        """``pkmap_count[]`` as a read-only numpy view (its flag cannot be set back)."""
        return as_strided(s_view(self._S, K.H_R_PKMAP_COUNT, self.LAST_PKMAP),
                          writeable=False)

    @property
    def last_pkmap_nr(self):
        """The round-robin cursor ``last_pkmap_nr``."""
        return int(self._S[K.H_PKMAP_NR])

    def pkmap_page(self, nr):
        """The page that pkmap slot ``nr``'s page-table entry maps.

        Parameters
        ----------
        nr : int
            Slot number, ``0 <= nr < LAST_PKMAP``.

        Returns
        -------
        int
            Page frame number, or -1 if the entry is clear.
        """
        nr = check_int("nr", nr, 0, self.LAST_PKMAP - 1)
        return int(self._S[int(self._S[K.H_R_PKMAP_PTE]) + nr])

    def tlb_page(self, nr, cpu=0):
        """The page CPU ``cpu``'s TLB still holds for pkmap slot ``nr`` (an entry stays until
        a TLB flush, whatever the page table says).

        Parameters
        ----------
        nr : int
            Slot number, ``0 <= nr < LAST_PKMAP``.
        cpu : int
            CPU number, ``0 <= cpu < ncpus``.

        Returns
        -------
        int
            Page frame number, or -1 if the TLB holds nothing for the slot.
        """
        nr = check_int("nr", nr, 0, self.LAST_PKMAP - 1)
        cpu = check_int("cpu", cpu, 0, self.ncpus - 1)
        return int(self._S[int(self._S[K.H_R_TLB]) + cpu * self.LAST_PKMAP + nr])

    @property
    def mm_stats(self):
        """Counters of the pkmap machinery (flushes, TLB flushes, PTE writes, sleeps...)."""
        v = s_view(self._S, K.H_R_MMSTAT, K.NMMSTAT)
        return {n: int(v[i]) for i, n in enumerate(K.MMSTAT_NAMES)}

    # -- CPU memory access -----------------------------------------------------------------------
    def _check_span(self, vaddr, n):
        vaddr = check_int("vaddr", vaddr, 0, K.ADDR_SPACE - 1)
        n = check_int("n", n, 0)
        if vaddr + n > K.ADDR_SPACE:
            raise ValueError(f"n={n}: vaddr + n must stay within the 32-bit address space")
        bad = _kernel.first_unmapped(self._S, vaddr, n)
        if bad >= 0:
            raise_for(self, K.ST_ERROR, fault_va=int(bad))
        return vaddr, n

    def write(self, vaddr, data):
        """CPU stores of ``data`` at kernel virtual ``vaddr``, through the TLB and the
        D-cache, split into line-sized accesses as the CPU does them.

        Parameters
        ----------
        vaddr : int
            Kernel virtual address, any alignment.
        data : bytes, bytearray, memoryview or 1-D uint8 array
            The bytes to store (copied).

        Raises
        ------
        emu.PageFault
            Some byte's page has no translation; nothing is stored.
        """
        src = _as_bytes(data)
        vaddr, n = self._check_span(vaddr, len(src))
        io = int(self._S[K.H_B_IO])
        for o in range(0, n, IO_BYTES):
            k = min(IO_BYTES, n - o)
            self._B[io:io + k] = src[o:o + k]
            self._call(K.R_CPU_WRITE, vaddr + o, k, io)

    def read(self, vaddr, n):
        """CPU loads of ``n`` bytes at kernel virtual ``vaddr``, through the TLB and the
        D-cache (a load that gets bytes memory should not hold is a ``stale-read`` finding).

        Parameters
        ----------
        vaddr : int
            Kernel virtual address, any alignment.
        n : int
            Number of bytes, ``n >= 0``.

        Returns
        -------
        bytes

        Raises
        ------
        emu.PageFault
            Some byte's page has no translation; nothing is loaded.
        """
        vaddr, n = self._check_span(vaddr, n)
        io = int(self._S[K.H_B_IO])
        out = bytearray()
        for o in range(0, n, IO_BYTES):
            k = min(IO_BYTES, n - o)
            self._call(K.R_CPU_READ, vaddr + o, k, io)
            out += self._B[io:io + k].tobytes()
        return bytes(out)

    def _check_phys(self, paddr, n, addr_name="paddr", n_name="n"):
        """``(paddr, n)`` as ints with ``[paddr, paddr + n)`` inside RAM; the error names
        ``n`` if it is more than all of RAM, else the address."""
        return _check_phys(self.memmap.npages * K.PAGE_SIZE, paddr, n, addr_name, n_name)

    def phys_read(self, paddr, n):
        """RAM as a bus master sees it: no cache, no oracle check.

        Parameters
        ----------
        paddr : int
            Physical address; ``[paddr, paddr + n)`` must lie in RAM.
        n : int
            Number of bytes.

        Returns
        -------
        bytes
        """
        return self._ram_bytes(*self._check_phys(paddr, n))

    def _ram_bytes(self, paddr, n):
        """RAM ``[paddr, paddr + n)``, checked by the caller."""
        return _ram_bytes(self._S, self._B, paddr, n)

    def phys_write(self, paddr, data):
        """Write RAM directly (no cache): what a bus master or a loader would do. The
        oracle takes the bytes as what memory should hold.

        Parameters
        ----------
        paddr : int
            Physical address; the bytes must fit in RAM.
        data : bytes, bytearray, memoryview or 1-D uint8 array
            The bytes to write (copied).
        """
        src = _as_bytes(data)
        paddr, n = self._check_phys(paddr, len(src), n_name="len(data)")
        if n:
            _kernel.phys_write(self._S, self._B, paddr, src)

    # -- streaming DMA (arch/arm/mm/dma-mapping.c) --------------------------------------------------
    def _dir(self, direction):
        if isinstance(direction, bool) or not isinstance(direction, (int, np.integer)) \
                or direction not in (0, 1, 2):
            raise ValueError(f"direction={direction!r}: not a valid DMA direction "
                             f"(valid_dma_direction() accepts DMA_BIDIRECTIONAL=0, "
                             f"DMA_TO_DEVICE=1, DMA_FROM_DEVICE=2)")
        return int(direction)

    def _dma_span(self, arg, value, start, size, size_name="size"):
        """``size`` as an int: positive, and the buffer at physical ``start`` (given by
        argument ``arg`` = ``value``) inside RAM; the error names the argument at fault."""
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"{size_name}={size!r}: must be a positive number of bytes")
        size = int(size)                    # a numpy int would overflow in the sum below
        end = self.memmap.npages * K.PAGE_SIZE
        if start >= end:
            raise ValueError(f"{arg}={value:#x}: the buffer would start at {start:#x}, past "
                             f"the end of RAM ({end:#x})")
        if start + size > end:
            raise ValueError(f"{size_name}={size}: the buffer [{start:#x}, {start + size:#x}) "
                             f"passes the end of RAM ({end:#x})")
        return size

    def dma_map_page(self, pfn, offset, size, direction):
        """``dma_map_page(dev, page, offset, size, dir)``: the cache maintenance that hands
        ``[offset, offset + size)`` of page ``pfn`` to the device.

        A highmem page is reached through its pkmap mapping, pinned as the machine's
        ``dma_pinning`` says (``kmap_high_get``, or 2.6.30's racy ``page_address``).

        Parameters
        ----------
        pfn : int
            Page frame number, in ``lowmem_pfns`` or ``highmem_pfns``.
        offset : int
            Offset of the buffer in the page.
        size : int
            Bytes, ``size > 0``; the buffer must end inside RAM.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Returns
        -------
        int
            The DMA (bus) address, which is the buffer's physical address.

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        if type(pfn) is type(offset) is type(size) is type(direction) is int:
            try:                                        # the kernel checks the ranges
                r = self._direct(self._S, self._B, _R_DMA_MAP_PAGE, pfn, offset, size, direction)
            except OverflowError:                       # past int64: out of range too
                r = _BAD_ARGS
            if r >= 0:
                return r
            if r != _BAD_ARGS:
                raise_for(self, -1 - r)
        pfn = self._pfn(pfn)                            # the slow path says what is wrong
        offset = check_int("offset", offset, 0)
        direction = self._dir(direction)
        size = self._dma_span("offset", offset, (pfn << K.PAGE_SHIFT) + offset, size)
        return self._call(K.R_DMA_MAP_PAGE, pfn, offset, size, direction)

    def _handle(self, dma_addr, size, direction):
        dma_addr = check_int("dma_addr", dma_addr, 0)
        d = self._dir(direction)
        return dma_addr, self._dma_span("dma_addr", dma_addr, dma_addr, size), d

    def dma_unmap_page(self, dma_addr, size, direction):
        """``dma_unmap_page``: no cache operation in 2.6.30; v3 invalidates FROM_DEVICE and
        BIDIRECTIONAL buffers again. dma-debug checks and frees the mapping.

        Parameters
        ----------
        dma_addr : int
            The address :meth:`dma_map_page` returned.
        size : int
            Bytes, as mapped.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        self._call(K.R_DMA_UNMAP_PAGE, *self._handle(dma_addr, size, direction))

    def dma_sync_single_for_cpu(self, dma_addr, size, direction):
        """``dma_sync_single_for_cpu``: no cache operation in 2.6.30; v3 as unmap.

        Parameters
        ----------
        dma_addr : int
            The address :meth:`dma_map_page` returned.
        size : int
            Bytes, as mapped.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        self._call(K.R_DMA_SYNC_SINGLE_FOR_CPU, *self._handle(dma_addr, size, direction))

    def dma_sync_single_for_device(self, dma_addr, size, direction):
        """``dma_sync_single_for_device``: 2.6.30 maintains through the linear map and BUGs
        for a highmem buffer (spec §3.5); v3 maintains by page.

        Parameters
        ----------
        dma_addr : int
            The address :meth:`dma_map_page` returned.
        size : int
            Bytes, as mapped.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Raises
        ------
        emu.KernelBug
            2.6.30 and a highmem buffer (``BUG_ON(!virt_addr_valid(start) || ...)``).
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        self._call(K.R_DMA_SYNC_SINGLE_FOR_DEVICE, *self._handle(dma_addr, size, direction))

    def _sg(self, sg):
        try:
            entries = [tuple(e) for e in sg]
        except TypeError:
            raise ValueError("sg: must be a list of (pfn, offset, length) tuples") from None
        out = []
        for i, e in enumerate(entries):
            if len(e) != 3:
                raise ValueError(f"sg[{i}]={e!r}: must be a (pfn, offset, length) tuple")
            pfn = self._pfn(e[0], f"sg[{i}] pfn")
            off = check_int(f"sg[{i}] offset", e[1], 0)
            n = self._dma_span(f"sg[{i}] offset", off, (pfn << K.PAGE_SHIFT) + off, e[2],
                               f"sg[{i}] length")
            out.append((pfn, off, n))
        return out

    def dma_map_sg(self, sg, direction):
        """``dma_map_sg``: ``dma_map_page`` for each entry in turn. dma-debug records the
        entries as scatter-gather ones, which only :meth:`dma_unmap_sg` frees without a
        "wrong function" error.

        Parameters
        ----------
        sg : list of (pfn, offset, length)
            The scatterlist's entries, each inside one page's reach of RAM.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Returns
        -------
        list of int
            The entries' DMA addresses.

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        d = self._dir(direction)
        return [self._call(K.R_DMA_MAP_SG, p, o, n, d) for p, o, n in self._sg(sg)]

    def dma_unmap_sg(self, sg, direction):
        """``dma_unmap_sg``: ``dma_unmap_page`` per entry.

        Parameters
        ----------
        sg : list of (pfn, offset, length)
            The scatterlist's entries, each inside one page's reach of RAM.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        d = self._dir(direction)
        for p, o, n in self._sg(sg):
            self._call(K.R_DMA_UNMAP_SG, (p << K.PAGE_SHIFT) + o, n, d)

    def dma_sync_sg_for_cpu(self, sg, direction):
        """``dma_sync_sg_for_cpu``: per entry as ``dma_sync_single_for_cpu``.

        Parameters
        ----------
        sg : list of (pfn, offset, length)
            The scatterlist's entries, each inside one page's reach of RAM.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        d = self._dir(direction)
        for p, o, n in self._sg(sg):
            self._call(K.R_DMA_SYNC_SINGLE_FOR_CPU, (p << K.PAGE_SHIFT) + o, n, d)

    def dma_sync_sg_for_device(self, sg, direction):
        """``dma_sync_sg_for_device``: 2.6.30 maintains each entry by page
        (``dma_cache_maint_page``), so highmem entries work here (spec §3.5).

        Parameters
        ----------
        sg : list of (pfn, offset, length)
            The scatterlist's entries, each inside one page's reach of RAM.
        direction : int
            ``emu.DMA_BIDIRECTIONAL`` (0), ``emu.DMA_TO_DEVICE`` (1) or
            ``emu.DMA_FROM_DEVICE`` (2).

        Raises
        ------
        emu.DmaDebugError
            dma-debug's check of the mapping fails (with ``dma_debug_strict=True``).
        """
        d = self._dir(direction)
        for p, o, n in self._sg(sg):
            self._call(K.R_DMA_SYNC_SINGLE_FOR_DEVICE, (p << K.PAGE_SHIFT) + o, n, d, 1)

    @property
    def outer_calls(self):
        """Calls of the outer-cache hook: counts per op and the last physical range."""
        v = s_view(self._S, K.H_R_OUTER, K.NOUTER)
        return {"inv": int(v[K.OUTER_INV]), "clean": int(v[K.OUTER_CLEAN]),
                "flush": int(v[K.OUTER_FLUSH]),
                "last_range": (int(v[K.OUTER_LAST_LO]), int(v[K.OUTER_LAST_HI]))}

    @property
    def dma_debug_errors(self):
        """dma-debug errors reported so far (also counted when not strict)."""
        return int(self._S[int(self._S[K.H_R_DMADBG]) + K.DD_ERRORS])

    @property
    def dma_debug_disabled(self):
        """True once dma-debug ran out of entries (more than ``DMADBG_CAPACITY`` live
        mappings) and switched itself off, as lib/dma-debug.c does ("DMA-API: debugging
        out of memory - disabling"): later maps, unmaps and syncs are not checked."""
        return bool(self._S[int(self._S[K.H_R_DMADBG]) + K.DD_OFF])

    # -- oracle ------------------------------------------------------------------------------------
    def findings(self):
        """Every integrity finding so far (lost writes, stale reads), oldest first."""
        S, B = self._S, self._B
        fr = int(S[K.H_R_FIND])
        n = min(int(S[fr + K.FIND_COUNT]), int(S[fr + K.FIND_CAP]))
        out = []
        for i in range(n):
            r = fr + K.FIND_HDR + i * K.FIND_W
            m = int(S[r + K.FD_N])
            d = int(S[K.H_B_FINDDATA]) + i * 2 * K.FIND_MAXB
            lo, hi = int(S[r + K.FD_DMA_LO]), int(S[r + K.FD_DMA_HI])
            pa = int(S[r + K.FD_PA])
            out.append(Finding(K.FIND_KIND_NAMES[int(S[r + K.FD_KIND])], pa,
                               int(S[r + K.FD_VA]), pa >> K.PAGE_SHIFT,
                               B[d:d + m].tobytes(),
                               B[d + K.FIND_MAXB:d + K.FIND_MAXB + m].tobytes(),
                               int(S[r + K.FD_BAD]), int(S[r + K.FD_CTX]),
                               K.SITE_NAMES[int(S[r + K.FD_SITE])], int(S[r + K.FD_STEP]),
                               None if lo < 0 else (lo, hi)))
        return out

    def lost_writes(self):
        """CPU stores that memory lost: dropped from the cache while dirty
        (``lost-write``) or missing at the final check (``lost-at-end``)."""
        return [f for f in self.findings() if f.kind in ("lost-write", "lost-at-end")]

    def stale_reads(self):
        """CPU loads and device reads that got bytes memory should not hold, and CPU loads of
        bytes a device transfer in flight had yet to write."""
        kinds = {K.FIND_KIND_NAMES[k] for k in K.FIND_STALE_KINDS}
        return [f for f in self.findings() if f.kind in kinds]

    def check_integrity(self):
        """Final check: every CPU store must be in the cache or in RAM. Logs findings and
        returns the number of bytes that differ (0 when all is well); changes nothing else."""
        return int(final_check(self._S, self._B))

    # -- accounting ----------------------------------------------------------------------------------
    @property
    def cycles(self):
        """Cycle clock of each CPU (a list, CPU 0 first)."""
        S = self._S
        cur = int(S[K.H_CUR_CPU])
        return [int(S[K.H_NOW]) if c == cur
                else int(S[int(S[K.H_R_CPU]) + c * K.CPU_W + K.CPU_CLOCK])
                for c in range(self.ncpus)]

    def uop_counts(self):
        """Micro-op counts as an array ``[site][kind][uop]`` (kind 0 task, 1 IRQ)."""
        return uop_counts(self._S).copy()

    def breakdown(self):
        """Where the cycles went: ``{routine: {"task"|"irq": {micro-op: (count, cycles)}}}``
        for every non-zero entry, priced with this machine's cost table; and, if a CPU
        waited with nothing to run (all its tasks asleep or waiting for an IRQ, until a
        timed IRQ or another CPU's wake-up), ``{"idle": {"task": {"idle": (periods,
        cycles)}}}``. The cycles add up to the CPUs' clocks together."""
        counts = uop_counts(self._S)
        out = {}
        for s, site in enumerate(K.SITE_NAMES):
            for kind, kname in enumerate(("task", "irq")):
                row = {K.UOP_NAMES[u]: (int(n), int(n) * int(self._costs[u]))
                       for u, n in enumerate(counts[s, kind]) if n}
                if row:
                    out.setdefault(site, {})[kname] = row
        n, cycles = idle_counts(self._S)
        if n:
            out["idle"] = {"task": {"idle": (n, cycles)}}
        return out

    def __repr__(self):
        mm = self.memmap
        return (f"Machine(cpu={self.cpu!r}, lowmem_mb={mm.lowmem_mb}, "
                f"highmem_mb={mm.highmem_mb}, last_pkmap={mm.last_pkmap}, "
                f"kmap_high_get={self.kmap_high_get_enabled}, dma_pinning={self.dma_pinning!r}, "
                f"ncpus={self.ncpus}, seed={self.seed})")


def _check_phys(size, paddr, n, addr_name, n_name):
    """``(paddr, n)`` as ints with ``[paddr, paddr + n)`` inside RAM of ``size`` bytes; the
    error names ``n`` if it is more than all of RAM, else the address."""
    paddr = check_int(addr_name, paddr, 0)
    n = check_int(n_name, n, 0, size)
    if paddr + n > size:
        raise ValueError(f"{addr_name}={paddr:#x}: {addr_name} + {n_name} ({n:#x}) must "
                         f"lie within RAM [0, {size:#x})")
    return paddr, n


def _ram_bytes(S, B, paddr, n):
    """RAM ``[paddr, paddr + n)`` of the state arrays ``S``, ``B``, checked by the caller."""
    r = int(S[K.H_B_RAM]) + paddr
    return (B[r:r + n] ^ K.RAM_POISON).tobytes()


class Device:
    """The bus-master DMA engine of a machine: moves bytes to and from RAM by DMA address,
    never through the CPU cache. It holds the machine's state arrays, not the machine (which
    holds it: no reference cycle, and it keeps working after the machine is dropped).

    Parameters
    ----------
    machine : Machine
        The machine whose RAM it reaches (``Machine.device`` is the one it has).
    """

    def __init__(self, machine):
        self._S, self._B = machine._S, machine._B
        self._ram = machine.memmap.npages * K.PAGE_SIZE

    def write(self, dma_addr, data):
        """The device writes ``data`` to RAM at ``dma_addr`` (not through the cache).

        Parameters
        ----------
        dma_addr : int
            Bus address; the bytes must fit in RAM.
        data : bytes, bytearray, memoryview or 1-D uint8 array
            The bytes (copied).
        """
        src = _as_bytes(data)
        addr, n = _check_phys(self._ram, dma_addr, len(src), "dma_addr", "len(data)")
        if n:
            _kernel.device_write_direct(self._S, self._B, addr, src)

    def read(self, dma_addr, n):
        """The device reads ``n`` bytes of RAM at ``dma_addr``; RAM bytes older than the
        CPU's latest stores (still dirty in the cache) are a ``stale-device-read`` finding.

        Parameters
        ----------
        dma_addr : int
            Bus address; ``[dma_addr, dma_addr + n)`` must lie in RAM.
        n : int
            Number of bytes.

        Returns
        -------
        bytes
            What RAM holds (what the device gets).
        """
        addr, n = _check_phys(self._ram, dma_addr, n, "dma_addr", "n")
        if n:
            _kernel.device_read_check(self._S, self._B, addr, n)
        return _ram_bytes(self._S, self._B, addr, n)


#: What ``Machine.__setattr__`` refuses: each setting and ``Machine()`` argument, with the
#: constructor argument(s) a new value goes to.
_FIXED = {p: p for p in inspect.signature(Machine.__init__).parameters
          if p != "self" and not p.startswith("_")} | {
    "kmap_high_get_enabled": "kmap_high_get", "cache": "cpu",
    "memmap": "lowmem_mb, highmem_mb, last_pkmap, page_offset"}
