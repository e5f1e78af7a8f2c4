"""Jitted VIVT D-cache kernels over the machine arrays ``S`` (int64) and ``B`` (uint8).

A line ``i = set * ways + way`` has a virtual tag (the line's virtual address, or
``TAG_INVALID``), the physical address it was filled from (the ARM926 keeps this PA tag for
write-back), a dirty-granule mask, a replacement stamp and ``line`` data bytes in ``B``.
Lookups compare virtual tags only: that is what makes the cache VIVT, and why an invalidate
through a recycled virtual address drops another page's data. Every kernel that changes any of
a line's fields marks the line (:func:`mark_line`, ``H_B_CMARK``): the exploration loop restores
only marked lines between schedules (the C references mark the same lines).

The hot kernels are built by :func:`_make_kernels` twice: for 4 ways and a generic one reading
``ways`` from ``S``: with ``ways`` a compile-time constant numba unrolls the tag
scan, which is worth ~1.7x on the invalidate loop. Each public entry point picks the variant
with one branch per call.
"""


from .. import consts as K
from .._bytes import copy_bytes, copy_xor, fill_bytes
from .._jit import flat, hot, inline, njit, tiny
from ..rng import next_random
from ..cost.account import uop

# ---------------------------------------------------------------------------------------------
# RAM (stored XOR RAM_POISON: an untouched, OS-zeroed page reads back as poison)
# ---------------------------------------------------------------------------------------------


@inline
def mark_blocks(B, flags, pa, n):
    """Set the bits of the 512-byte blocks of ``[pa, pa + n)`` in the page flag bytes at
    ``B[flags:]`` (one byte a page, one bit a block)."""
    if n > 0:
        for b in range(pa >> K.BLOCK_SHIFT, ((pa + n - 1) >> K.BLOCK_SHIFT) + 1):
            B[flags + (b >> 3)] |= 1 << (b & 7)


@inline
def mark_ram_dirty(S, B, pa):
    """Note that the RAM block of ``pa`` changed (snapshots restore only such blocks). A
    machine without the map (a standalone cache) has the slot at 0."""
    m = S[K.H_B_RAMDIRTY]
    if m:
        b = pa >> K.BLOCK_SHIFT
        B[m + (b >> 3)] |= 1 << (b & 7)


@inline
def mark_ram_range(S, B, pa, n):
    """:func:`mark_ram_dirty` for every block of ``[pa, pa + n)``."""
    if S[K.H_B_RAMDIRTY]:
        mark_blocks(B, S[K.H_B_RAMDIRTY], pa, n)


@tiny
def mark_line(S, B, i):
    """Note that line ``i`` changed (the exploration loop restores only such lines)."""
    B[S[K.H_B_CMARK] + i] = 1


@inline
def ram_to_line(S, B, pa, d, n):
    """Copy ``n`` RAM bytes at ``pa`` into ``B[d:]``; a line with no backing RAM reads zeros."""
    if pa == K.NO_PA:
        fill_bytes(B, d, n, 0)
        return
    copy_xor(B, d, B, S[K.H_B_RAM] + pa, n, K.RAM_POISON)


@inline
def line_to_ram(S, B, pa, d, line, gshift, mask):
    """Write the dirty granules (``mask``) of the line data at ``B[d:]`` to RAM at ``pa``."""
    if pa == K.NO_PA:
        return
    mark_ram_dirty(S, B, pa)
    r = S[K.H_B_RAM] + pa
    g = 1 << gshift
    for j in range(line >> gshift):
        if mask & (1 << j):
            o = j * g
            copy_xor(B, r + o, B, d + o, g, K.RAM_POISON)
            S[S[K.H_R_CSTAT] + K.CS_BYTES_WRITTEN] += g


@inline
def bytes_to_ram(S, B, pa, src, so, n):
    """Write ``n`` bytes of ``src[so:]`` to RAM at ``pa`` (write-through / no-allocate store)."""
    mark_ram_dirty(S, B, pa)
    copy_xor(B, S[K.H_B_RAM] + pa, src, so, n, K.RAM_POISON)
    S[S[K.H_R_CSTAT] + K.CS_BYTES_WRITTEN] += n
    S[S[K.H_R_CSTAT] + K.CS_WRITETHROUGHS] += 1


# ---------------------------------------------------------------------------------------------
# Line bookkeeping shared by every variant
# ---------------------------------------------------------------------------------------------


@tiny
def _stat(S, c, n):
    S[S[K.H_R_CSTAT] + c] += n


@inline
def granule_mask(S, off, n):
    """Dirty-granule bits covering bytes ``[off, off+n)`` of a line."""
    gs = S[K.H_C_DGSHIFT]
    first = off >> gs
    last = (off + n - 1) >> gs
    return ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)


@inline
def write_back(S, B, i):
    """Write line ``i``'s dirty granules to RAM and mark it clean; True if it was dirty."""
    dm = S[S[K.H_R_DIRTY] + i]
    if dm == 0:
        return False
    line = S[K.H_C_LINE]
    line_to_ram(S, B, S[S[K.H_R_LPA] + i], S[K.H_B_CDATA] + i * line, line,
                S[K.H_C_DGSHIFT], dm)
    S[S[K.H_R_DIRTY] + i] = 0
    mark_line(S, B, i)
    _stat(S, K.CS_WRITEBACKS, 1)
    return True


@inline
def record_discard(S, B, i):
    """Log dirty line ``i`` that an invalidate is about to drop (for the integrity oracle)."""
    ev = S[K.H_R_EV]
    n = S[ev + K.EV_COUNT]
    if n < S[ev + K.EV_CAP]:
        line = S[K.H_C_LINE]
        r = ev + K.EV_HDR + n * K.EV_W
        S[r + K.EV_VA] = S[S[K.H_R_TAG] + i]
        S[r + K.EV_PA] = S[S[K.H_R_LPA] + i]
        S[r + K.EV_MASK] = S[S[K.H_R_DIRTY] + i]
        S[r + K.EV_CTX] = S[K.H_CUR_CTX]
        S[r + K.EV_SITE] = S[K.H_CUR_SITE]
        S[r + K.EV_STEP] = S[K.H_STEP]
        S[r + K.EV_DMA_LO] = S[K.H_DMA_LO]
        S[r + K.EV_DMA_HI] = S[K.H_DMA_HI]
        copy_bytes(B, S[K.H_B_EVDATA] + n * line, B, S[K.H_B_CDATA] + i * line, line)
    S[ev + K.EV_COUNT] = n + 1


@inline
def drop(S, B, i):
    """Invalidate line ``i`` without writing it back; True if dirty data was discarded."""
    dirty = S[S[K.H_R_DIRTY] + i] != 0
    if dirty:
        record_discard(S, B, i)
        _stat(S, K.CS_DIRTY_DISCARDS, 1)
    S[S[K.H_R_TAG] + i] = K.TAG_INVALID
    S[S[K.H_R_DIRTY] + i] = 0
    mark_line(S, B, i)
    return dirty


@inline
def flush_index(S, B, i):
    """Clean and invalidate line ``i`` by index (set/way ops); True if it was dirty."""
    dirty = write_back(S, B, i)
    S[S[K.H_R_TAG] + i] = K.TAG_INVALID
    mark_line(S, B, i)
    return dirty


@inline
def evict(S, B, i):
    """Make room in line ``i`` for a fill: write back if dirty, count a valid victim."""
    if S[S[K.H_R_TAG] + i] != K.TAG_INVALID:
        _stat(S, K.CS_EVICTIONS, 1)
        if write_back(S, B, i):
            uop(S, K.UOP_WRITEBACK, 1)


@inline
def install(S, B, i, lva, lpa, fetch, count):
    """Put line ``lva`` (filled from ``lpa``) in slot ``i``; ``fetch`` reads RAM into it,
    ``count`` counts that as a line fill (a replayed full-line store copies without one)."""
    line = S[K.H_C_LINE]
    S[S[K.H_R_TAG] + i] = lva
    S[S[K.H_R_LPA] + i] = lpa
    S[S[K.H_R_DIRTY] + i] = 0
    clk = S[K.H_C_CLOCK]
    S[S[K.H_R_STAMP] + i] = clk
    S[K.H_C_CLOCK] = clk + 1
    mark_line(S, B, i)
    d = S[K.H_B_CDATA] + i * line
    if fetch:
        ram_to_line(S, B, lpa, d, line)
        if count:
            _stat(S, K.CS_LINE_FILLS, 1)
            _stat(S, K.CS_BYTES_READ, line)
    else:
        fill_bytes(B, d, line, 0)


@inline
def touch(S, B, i):
    """A hit: LRU moves the line to most recently used; FIFO and round-robin ignore hits."""
    if S[K.H_C_REPL] == K.REPL_LRU:
        clk = S[K.H_C_CLOCK]
        S[S[K.H_R_STAMP] + i] = clk
        S[K.H_C_CLOCK] = clk + 1
        mark_line(S, B, i)


@inline
def xorshift(S):
    """Next value of the random-replacement generator (emu.rng, state in ``H_C_RNG``)."""
    return next_random(S, K.H_C_RNG)


# ---------------------------------------------------------------------------------------------
# Variants specialised on the number of ways
# ---------------------------------------------------------------------------------------------


def _make_kernels(WAYS):
    """Build find/victim/access/range/replay kernels for ``WAYS`` ways (0: read from S)."""

    def variant(fn):
        # Each variant's functions get their own qualified name. numba names machine code
        # after the qualified name and a per-process counter, so with shared names two
        # processes (the first run's warm-up and its helper) could give the 4-way and the
        # generic victim() the same symbol; a process loading both from the cache then linked
        # one variant's callers to the other's code (a 2-way cache ran 4-way code).
        fn.__qualname__ = f"{fn.__qualname__}_{WAYS or 'any'}way"
        return fn

    @inline
    @variant
    def nways(S):
        if WAYS:
            return WAYS
        return S[K.H_C_WAYS]

    @inline
    @variant
    def find(S, lva):
        """Index of the valid line tagged ``lva``, or -1."""
        ways = nways(S)
        st = (lva >> S[K.H_C_LSHIFT]) & S[K.H_C_SETMASK]
        base = st * ways
        tag = S[K.H_R_TAG] + base
        tags = S[tag:tag + ways]
        for w in range(ways):
            if tags[w] == lva:
                return base + w
        return -1

    @inline
    @variant
    def victim(S, lva):
        """The line a miss on ``lva`` fills (not yet evicted)."""
        ways = nways(S)
        st = (lva >> S[K.H_C_LSHIFT]) & S[K.H_C_SETMASK]
        base = st * ways
        repl = S[K.H_C_REPL]
        if repl == K.REPL_RR:
            # ARM round-robin: the victim counter does not prefer invalid lines [E].
            rr = S[K.H_R_RR] + st
            w = S[rr]
            S[rr] = (w + 1) & (ways - 1)
            return base + w
        tag = S[K.H_R_TAG] + base
        for w in range(ways):
            if S[tag + w] == K.TAG_INVALID:
                return base + w
        if repl == K.REPL_RANDOM:
            return base + (xorshift(S) >> 11) % ways
        stamp = S[K.H_R_STAMP] + base
        best = 0
        for w in range(1, ways):
            if S[stamp + w] < S[stamp + best]:
                best = w
        return base + best

    @inline
    @variant
    def lookup_or_fill(S, B, lva, lpa):
        """Line holding ``lva`` after a miss fill; returns (index, hit)."""
        i = find(S, lva)
        if i >= 0:
            touch(S, B, i)
            return i, True
        i = victim(S, lva)
        evict(S, B, i)
        install(S, B, i, lva, lpa, True, True)
        return i, False

    @njit
    @variant
    def load(S, B, va, pa, n, out, oo):
        """CPU load of ``n`` bytes (within one line) at ``va``/``pa`` into ``out[oo:]``."""
        lmask = S[K.H_C_LINE] - 1
        off = va & lmask
        _stat(S, K.CS_LOADS, 1)
        i, hit = lookup_or_fill(S, B, va - off, pa - off if pa != K.NO_PA else pa)
        _stat(S, K.CS_LOAD_HITS if hit else K.CS_LOAD_MISSES, 1)
        copy_bytes(out, oo, B, S[K.H_B_CDATA] + i * (lmask + 1) + off, n)
        return hit

    @inline
    @variant
    def store_core(S, B, va, pa, n, src, so, has_data):
        """A CPU store; ``has_data`` False (trace replay) marks bytes dirty without new data.

        A write-allocate miss fetches the line unless the store covers all of it (as Dinero
        IV does); a read-allocate miss writes straight to memory and allocates nothing.
        """
        line = S[K.H_C_LINE]
        off = va & (line - 1)
        _stat(S, K.CS_STORES, 1)
        i = find(S, va - off)
        hit = i >= 0
        if hit:
            touch(S, B, i)
            _stat(S, K.CS_STORE_HITS, 1)
        else:
            _stat(S, K.CS_STORE_MISSES, 1)
            if S[K.H_C_WA] == 0:
                if has_data:
                    bytes_to_ram(S, B, pa, src, so, n)
                else:
                    _stat(S, K.CS_BYTES_WRITTEN, n)
                    _stat(S, K.CS_WRITETHROUGHS, 1)
                return False
            i = victim(S, va - off)
            evict(S, B, i)
            # a store covering the whole line needs no fetch (Dinero IV); a replayed one
            # carries no data, so it copies RAM into the line without counting a fetch
            install(S, B, i, va - off, pa - off, n < line or not has_data, n < line)
        mark_line(S, B, i)                          # its data or dirty mask changes
        if has_data:
            copy_bytes(B, S[K.H_B_CDATA] + i * line + off, src, so, n)
        if S[K.H_C_WB]:
            S[S[K.H_R_DIRTY] + i] |= granule_mask(S, off, n)
        elif has_data:
            bytes_to_ram(S, B, pa, src, so, n)
        else:
            _stat(S, K.CS_BYTES_WRITTEN, n)
            _stat(S, K.CS_WRITETHROUGHS, 1)
        return hit

    @njit
    @variant
    def store(S, B, va, pa, n, src, so):
        """CPU store of ``n`` bytes (within one line) from ``src[so:]`` at ``va``/``pa``."""
        return store_core(S, B, va, pa, n, src, so, True)

    @njit
    @variant
    def line_op(S, B, op, va):
        """One CP15 operation by MVA on the line holding ``va``.

        Returns 0 if the line was absent, 1 present and clean, 2 present and dirty (written
        back for clean/flush, discarded for inv).
        """
        lmask = S[K.H_C_LINE] - 1
        i = find(S, va & ~lmask)
        if op == K.OP_INV:
            _stat(S, K.CS_LINE_INVALIDATES, 1)
            if i < 0:
                return 0
            return 2 if drop(S, B, i) else 1
        _stat(S, K.CS_LINE_CLEANS if op == K.OP_CLEAN else K.CS_LINE_FLUSHES, 1)
        if i < 0:
            return 0
        dirty = write_back(S, B, i)
        if op == K.OP_FLUSH:
            S[S[K.H_R_TAG] + i] = K.TAG_INVALID
            mark_line(S, B, i)
        return 2 if dirty else 1

    @hot
    @variant
    def range_lines(S, B, op, va, end, nmax):
        """The body of a ``dma_*_range`` loop: line op ``op`` by MVA on each line from ``va``
        (line-aligned) while below ``end``, at least once and at most ``nmax`` lines (one
        CP15 op a line; XScale's and v4wb's two-op flush is ``maint._two_op_step``). Returns
        the next line address, lines visited and dirty lines met (written back, or discarded
        by OP_INV).

        ``nmax`` below ``RANGE_ALL``: each line after the first is a scheduling point the
        schedule goes on through (``sched.run``'s ``H_BATCH``), a step of its own: ``H_STEP``
        counts it, and the loop stops after a discard (the oracle judges it between steps)."""
        lshift = S[K.H_C_LSHIFT]
        setmask = S[K.H_C_SETMASK]
        tagb = S[K.H_R_TAG]
        dirtyb = S[K.H_R_DIRTY]
        ways = nways(S)
        n = 0
        nd = 0
        while True:
            base = ((va >> lshift) & setmask) * ways
            tags = S[tagb + base:tagb + base + ways]     # a view: range indices need no
            i = -1                                      # negative-index check
            for w in range(ways):
                if tags[w] == va:
                    i = base + w
                    break
            if i >= 0:
                if op == K.OP_INV:
                    if drop(S, B, i):
                        nd += 1
                elif S[dirtyb + i] != 0:
                    write_back(S, B, i)
                    nd += 1
                if op == K.OP_FLUSH:
                    S[tagb + i] = K.TAG_INVALID
                    mark_line(S, B, i)
            n += 1
            va += 1 << lshift
            if va >= end or n >= nmax:
                break
            if nmax != K.RANGE_ALL:
                if op == K.OP_INV and nd:
                    break
                S[K.H_STEP] += 1
        if op == K.OP_INV:
            _stat(S, K.CS_LINE_INVALIDATES, n)
        elif op == K.OP_CLEAN:
            _stat(S, K.CS_LINE_CLEANS, n)
        else:
            _stat(S, K.CS_LINE_FLUSHES, n)
        return va, n, nd

    @njit
    @variant
    def line_alloc(S, B, va):
        """XScale ``mcr c7,c2,5``: allocate the line for ``va`` without fetching (evicts)."""
        lva = va & ~(S[K.H_C_LINE] - 1)
        if find(S, lva) >= 0:
            return
        i = victim(S, lva)
        evict(S, B, i)
        install(S, B, i, lva, K.NO_PA, False, False)

    @njit
    @variant
    def _replay_miss(S, B, lva, off, n, store):
        """The miss path of a replayed access (fills, evictions, write-through)."""
        if store:
            _stat(S, K.CS_STORE_MISSES, 1)
            if S[K.H_C_WA] == 0:
                _stat(S, K.CS_BYTES_WRITTEN, n)
                _stat(S, K.CS_WRITETHROUGHS, 1)
                return
            i = victim(S, lva)
            evict(S, B, i)
            line = S[K.H_C_LINE]
            install(S, B, i, lva, lva, True, n < line)   # a full-line store fetches nothing
            if S[K.H_C_WB]:
                S[S[K.H_R_DIRTY] + i] |= granule_mask(S, off, n)
            else:
                _stat(S, K.CS_BYTES_WRITTEN, n)
                _stat(S, K.CS_WRITETHROUGHS, 1)
        else:
            _stat(S, K.CS_LOAD_MISSES, 1)
            i = victim(S, lva)
            evict(S, B, i)
            install(S, B, i, lva, lva, True, True)

    @njit
    @variant
    def replay(S, B, kinds, addrs, sizes, scratch):
        """Run a trace identity-mapped (pa = va), splitting accesses at line boundaries as
        Dinero IV's ``d4_splitm`` does; returns the number of records replayed. The hit path
        is written out here (hits are most of a trace); misses go to ``_replay_miss``. It
        counts exactly as ``load`` / ``store_core`` with no data would."""
        line = S[K.H_C_LINE]
        lmask = line - 1
        lshift = S[K.H_C_LSHIFT]
        setmask = S[K.H_C_SETMASK]
        tagb = S[K.H_R_TAG]
        dirtyb = S[K.H_R_DIRTY]
        stampb = S[K.H_R_STAMP]
        markb = S[K.H_B_CMARK]
        ways = WAYS if WAYS else S[K.H_C_WAYS]
        lru = S[K.H_C_REPL] == K.REPL_LRU
        wb = S[K.H_C_WB]
        gshift = S[K.H_C_DGSHIFT]
        loads = 0
        stores = 0
        lhits = 0
        shits = 0
        for t in range(len(kinds)):
            kind = kinds[t]
            a = addrs[t]
            if kind == K.ACC_IFETCH:
                continue                            # goes to the I-cache
            if kind == K.ACC_COPYBACK or kind == K.ACC_INVALIDATE:
                line_op(S, B, K.OP_CLEAN if kind == K.ACC_COPYBACK else K.OP_INV, a)
                continue
            st = 1 if kind == K.ACC_STORE else 0
            end = a + max(sizes[t], 1)
            while True:
                off = a & lmask
                n = min(line - off, end - a)
                lva = a - off
                base = ((lva >> lshift) & setmask) * ways
                tags = S[tagb + base:tagb + base + ways]
                i = -1
                for w in range(ways):
                    if tags[w] == lva:
                        i = base + w
                        break
                stores += st                        # branch-free counting: loads and
                loads += 1 - st                     # stores are interleaved at random
                if i >= 0:
                    shits += st
                    lhits += 1 - st
                    if lru:
                        clk = S[K.H_C_CLOCK]
                        S[stampb + i] = clk
                        S[K.H_C_CLOCK] = clk + 1
                        B[markb + i] = 1
                    B[markb + i] |= st                  # as store_core marks a store's line
                    if wb:
                        last = (off + n - 1) >> gshift
                        S[dirtyb + i] |= (((1 << (last + 1)) - 1) ^ ((1 << (off >> gshift)) - 1)) * st
                    elif st:
                        _stat(S, K.CS_BYTES_WRITTEN, n)
                        _stat(S, K.CS_WRITETHROUGHS, 1)
                else:
                    _replay_miss(S, B, lva, off, n, st == 1)
                a += n
                if a >= end:
                    break
        _stat(S, K.CS_LOADS, loads)
        _stat(S, K.CS_STORES, stores)
        _stat(S, K.CS_LOAD_HITS, lhits)
        _stat(S, K.CS_STORE_HITS, shits)
        return len(kinds)

    return find, load, store, line_op, line_alloc, replay, range_lines


# 4 ways (ARM926, Feroceon: the benchmarked cores) and everything else; a 32-way variant was
# ~1.3x faster for XScale/SA-110 but cost a third more compile time on every first run.
(_find4, _load4, _store4, _line_op4, _line_alloc4, _replay4, _range4) = _make_kernels(4)
(_findg, _loadg, _storeg, _line_opg, _line_allocg, _replayg, _rangeg) = _make_kernels(0)


# ---------------------------------------------------------------------------------------------
# Entry points: one branch on the associativity, then the specialised kernel
# ---------------------------------------------------------------------------------------------


@njit
def find(S, lva):
    """Index of the valid line tagged ``lva`` (a line address), or -1."""
    w = S[K.H_C_WAYS]
    if w == 4:
        return _find4(S, lva)
    return _findg(S, lva)


# forceinline (callers get the dispatch, and LLVM may take the variant in too): the CPU access
# step with these, shadow_store and check_load inlined ran a 128-byte fill ~25 % faster, for
# ~4.5 s more first-run compile on two CPUs
@njit(forceinline=True)
def cache_load(S, B, va, pa, n, out, oo):
    """Load ``n`` bytes (within one line); True on a hit."""
    w = S[K.H_C_WAYS]
    if w == 4:
        return _load4(S, B, va, pa, n, out, oo)
    return _loadg(S, B, va, pa, n, out, oo)


@njit(forceinline=True)
def cache_store(S, B, va, pa, n, src, so):
    """Store ``n`` bytes (within one line); True on a hit."""
    w = S[K.H_C_WAYS]
    if w == 4:
        return _store4(S, B, va, pa, n, src, so)
    return _storeg(S, B, va, pa, n, src, so)


@njit
def line_op(S, B, op, va):
    """CP15 line operation by MVA (``OP_INV``/``OP_CLEAN``/``OP_FLUSH``); see ``_make_kernels``."""
    w = S[K.H_C_WAYS]
    if w == 4:
        return _line_op4(S, B, op, va)
    return _line_opg(S, B, op, va)


@flat
def range_lines(S, B, op, va, end, nmax):
    """Line ops of a range loop; see ``_make_kernels``. Returns (next va, lines, dirty)."""
    w = S[K.H_C_WAYS]
    if w == 4:
        return _range4(S, B, op, va, end, nmax)
    return _rangeg(S, B, op, va, end, nmax)


@njit
def line_alloc(S, B, va):
    w = S[K.H_C_WAYS]
    if w == 4:
        _line_alloc4(S, B, va)
    else:
        _line_allocg(S, B, va)


@njit
def replay(S, B, kinds, addrs, sizes):
    """Replay a load/store trace in one call (``kinds``: 0 load, 1 store)."""
    scratch = B                                     # loads of 0 bytes: nothing is copied
    w = S[K.H_C_WAYS]
    if w == 4:
        return _replay4(S, B, kinds, addrs, sizes, scratch)
    return _replayg(S, B, kinds, addrs, sizes, scratch)
