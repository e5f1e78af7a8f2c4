"""A naive, obviously-correct reference model of ``emu.cache.Cache`` (pure Python, slow).

Written from the semantics, not from emu's kernels:

* spec ``linux-highmem-dma-semantics.md`` §4 (the per-core ``dma_*_range`` and
  ``flush_kern_cache_all`` routines of Linux 2.6.30 ``arch/arm/mm/*.S``);
* the Dinero IV counting rules (``/tmp/dinero_findings.md``) for ``replay``;
* the policy choices emu documents (round-robin pointer per set that does not prefer invalid
  ways; LRU / FIFO / random take the lowest-numbered invalid way first; emu's seeded xorshift).

Each set is a list of :class:`Line` objects, way 0 first, so the model's state lines up with
``Cache.state()`` index by index (line ``i = set * ways + way``). RAM is a ``bytearray`` that
starts out as the poison byte 0x5A. A line with no backing RAM (the XScale / v4wb flush window)
has ``pa = None``: it is filled with zeros and its write-backs go nowhere.

Also here: :func:`dinero_counts`, an independent model of Dinero IV's own bookkeeping (a stack
of blocks per set, MRU first) used as an oracle for ``Cache.dinero_stats()``.
"""

POISON = 0x5A
NO_PA = -1                                   # what Cache.state() shows for "no backing RAM"
TAG_INVALID = -1

STAT_NAMES = (
    "loads", "stores", "load_hits", "load_misses", "store_hits", "store_misses", "line_fills",
    "writebacks", "evictions", "dirty_discards", "line_invalidates", "line_cleans",
    "line_flushes", "range_ops", "flush_alls", "drains", "memory_writes", "bytes_read",
    "bytes_written",
)

MASK63 = (1 << 63) - 1


class Line:
    """One cache line (one way of one set)."""

    def __init__(self, size):
        self.valid = False
        self.vtag = None        # virtual address of the line
        self.pa = None          # physical address it was filled from; None = no backing RAM
        self.dirty = 0          # bit j set: granule j holds data RAM has not seen
        self.data = bytearray(size)
        self.last_used = 0      # LRU: time of the fill or latest hit
        self.filled_at = 0      # FIFO: time of the fill


class NaiveCache:
    """Same constructor and public operations as :class:`emu.cache.Cache`."""

    def __init__(self, size=16384, ways=4, line=32, replacement="round-robin", write_back=True,
                 write_allocate=False, style="arm926", dirty_granule=0, window=0, seed=0,
                 ram_size=1 << 16):
        self.size, self.ways, self.line = size, ways, line
        self.nsets = size // line // ways
        self.replacement = replacement
        self.write_back = write_back
        self.write_allocate = write_allocate
        self.style = style
        self.granule = dirty_granule or line
        self.window = window
        self.sets = [[Line(line) for _ in range(ways)] for _ in range(self.nsets)]
        self.rr = [0] * self.nsets                  # round-robin victim pointer per set
        self.time = 0                               # event counter for LRU / FIFO
        # emu's seed mixing: nearby seeds differ in every bit, and xorshift state is never 0
        self.rng = ((seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & MASK63) or 1
        self.toggle = 0                             # which flush window comes next
        self.ram = bytearray([POISON]) * ram_size
        self.stats = {name: 0 for name in STAT_NAMES}
        self.discard_log = []                       # (va, pa, dirty mask, data)

    # -------------------------------------------------------------------------------------
    # helpers
    # -------------------------------------------------------------------------------------
    def _count(self, name, n=1):
        self.stats[name] += n

    def _tick(self):
        self.time += 1
        return self.time

    def _set_index(self, lva):
        return (lva // self.line) % self.nsets

    def _lookup(self, lva):
        """The valid line whose virtual tag is ``lva`` (VIVT: the PA plays no part), or None."""
        for ln in self.sets[self._set_index(lva)]:
            if ln.valid and ln.vtag == lva:
                return ln
        return None

    def _xorshift(self):
        x = self.rng
        x ^= (x << 13) & MASK63
        x ^= x >> 7
        x ^= (x << 17) & MASK63
        self.rng = x
        return x

    def _choose_victim(self, lva):
        s = self._set_index(lva)
        ways = self.sets[s]
        if self.replacement == "round-robin":
            w = self.rr[s]                           # does not look for an invalid way
            self.rr[s] = (w + 1) % self.ways
            return ways[w]
        for ln in ways:
            if not ln.valid:
                return ln
        if self.replacement == "random":
            return ways[(self._xorshift() >> 11) % self.ways]
        if self.replacement == "lru":
            return min(ways, key=lambda ln: ln.last_used)
        return min(ways, key=lambda ln: ln.filled_at)        # fifo

    def _granules(self, mask):
        return [j for j in range(self.line // self.granule) if mask >> j & 1]

    def _dirty_mask(self, off, n):
        first, last = off // self.granule, (off + n - 1) // self.granule
        return sum(1 << j for j in range(first, last + 1))

    def _write_back(self, ln):
        """Copy the dirty granules of ``ln`` to RAM; True if there were any."""
        if not ln.dirty:
            return False
        for j in self._granules(ln.dirty):
            if ln.pa is not None:
                a, b = j * self.granule, (j + 1) * self.granule
                self.ram[ln.pa + a:ln.pa + b] = ln.data[a:b]
                self._count("bytes_written", self.granule)
        ln.dirty = 0
        self._count("writebacks")
        return True

    def _drop(self, ln):
        """Invalidate ``ln`` without writing it back; dirty data is lost (and logged)."""
        if ln.dirty:
            self.discard_log.append((ln.vtag, ln.pa, ln.dirty, bytes(ln.data)))
            self._count("dirty_discards")
        ln.valid = False
        ln.dirty = 0

    def _allocate(self, lva, lpa, fetch):
        """Pick a victim for line ``lva``, evict it, refill it from ``lpa`` (or zeros)."""
        ln = self._choose_victim(lva)
        if ln.valid:
            self._count("evictions")
            self._write_back(ln)
        ln.valid, ln.vtag, ln.pa, ln.dirty = True, lva, lpa, 0
        ln.last_used = ln.filled_at = self._tick()
        if fetch:
            if lpa is None:
                ln.data[:] = bytes(self.line)
            else:
                ln.data[:] = self.ram[lpa:lpa + self.line]
            self._count("line_fills")
            self._count("bytes_read", self.line)
        else:
            ln.data[:] = bytes(self.line)
        return ln

    def _hit(self, ln):
        if self.replacement == "lru":
            ln.last_used = self._tick()

    def _pieces(self, va, n):
        """(offset into the access, length) of each line-sized piece of ``[va, va+n)``."""
        o = 0
        while o < n:
            k = min(self.line - (va + o) % self.line, n - o)
            yield o, k
            o += k

    # -------------------------------------------------------------------------------------
    # CPU accesses
    # -------------------------------------------------------------------------------------
    def _load_piece(self, va, pa, n):
        """One load within one line. ``pa`` None: no backing RAM (v4wb displacement)."""
        off = va % self.line
        lva = va - off
        self._count("loads")
        ln = self._lookup(lva)
        if ln is not None:
            self._count("load_hits")
            self._hit(ln)
        else:
            self._count("load_misses")
            ln = self._allocate(lva, None if pa is None else pa - off, True)
        return bytes(ln.data[off:off + n])

    def _store_piece(self, va, pa, n, data):
        """One store within one line; ``data`` None (trace replay) marks dirty, keeps data."""
        off = va % self.line
        lva = va - off
        self._count("stores")
        ln = self._lookup(lva)
        if ln is not None:
            self._count("store_hits")
            self._hit(ln)
        else:
            self._count("store_misses")
            if not self.write_allocate:                # straight to memory, nothing cached
                self._memory_write(pa, n, data)
                return
            # Dinero: a write-allocate miss that covers the whole line fetches nothing; a
            # replayed store (no data) still copies RAM in, uncounted, so data stays coherent
            ln = self._allocate(lva, pa - off, n < self.line)
            if data is None and n == self.line:
                ln.data[:] = self.ram[pa - off:pa - off + self.line]
        if data is not None:
            ln.data[off:off + n] = data
        if self.write_back:
            ln.dirty |= self._dirty_mask(off, n)
        else:
            self._memory_write(pa, n, data)

    def _memory_write(self, pa, n, data):
        if data is not None:
            self.ram[pa:pa + n] = data
        self._count("memory_writes")
        self._count("bytes_written", n)

    def load(self, va, n, pa=None):
        pa = va if pa is None else pa
        return b"".join(self._load_piece(va + o, pa + o, k) for o, k in self._pieces(va, n))

    def store(self, va, data, pa=None):
        pa = va if pa is None else pa
        data = bytes(data)
        for o, k in self._pieces(va, len(data)):
            self._store_piece(va + o, pa + o, k, data[o:o + k])

    # -------------------------------------------------------------------------------------
    # line operations by MVA (mcr c7,c6,1 / c7,c10,1 / c7,c14,1)
    # -------------------------------------------------------------------------------------
    def _lva(self, va):
        return va - va % self.line

    def inv_line(self, va):
        self._count("line_invalidates")
        ln = self._lookup(self._lva(va))
        if ln is not None:
            self._drop(ln)

    def clean_line(self, va):
        self._count("line_cleans")
        ln = self._lookup(self._lva(va))
        if ln is not None:
            self._write_back(ln)

    def flush_line(self, va):
        self._count("line_flushes")
        ln = self._lookup(self._lva(va))
        if ln is not None:
            self._write_back(ln)
            ln.valid = False

    # -------------------------------------------------------------------------------------
    # dma_*_range (spec §4.1-4.5)
    # -------------------------------------------------------------------------------------
    def _range_lines(self, start, end):
        """Line addresses a bottom-tested loop visits: from start aligned down, at least one,
        then while the line address is below ``end``."""
        va = self._lva(start)
        out = [va]
        va += self.line
        while va < end:
            out.append(va)
            va += self.line
        return out

    def _clean_partial_edges(self, start, end):
        if start % self.line:
            self.clean_line(start)                 # mcrne c7,c10,1: partial first line
        if end % self.line:
            self.clean_line(end)                   # mcrne c7,c10,1: partial last line

    def _wt926(self):
        """ARM926 built with CONFIG_CPU_DCACHE_WRITETHROUGH: no edge cleans, clean_range only
        drains, flush_range invalidates each line (arm926:248-300)."""
        return self.style == "arm926" and not self.write_back

    def inv_range(self, start, end):
        self._count("range_ops")
        if not self._wt926():
            self._clean_partial_edges(start, end)
        for va in self._range_lines(start, end):
            self.inv_line(va)
        if self.style != "feroceon":              # feroceon's range invalidate: no drain
            self._count("drains")

    def clean_range(self, start, end):
        self._count("range_ops")
        if not self._wt926():
            for va in self._range_lines(start, end):
                self.clean_line(va)
        self._count("drains")

    def flush_range(self, start, end):
        self._count("range_ops")
        for va in self._range_lines(start, end):
            if self._wt926():                      # c7,c6,1
                self.inv_line(va)
            elif self.style in ("xscale", "v4wb"):   # c7,c10,1 then c7,c6,1 per line
                self.clean_line(va)
                self.inv_line(va)
            else:                                  # c7,c14,1 (arm926) / c15,c15 range (feroceon)
                self.flush_line(va)
        self._count("drains")

    # -------------------------------------------------------------------------------------
    # flush_kern_cache_all
    # -------------------------------------------------------------------------------------
    def _all_lines(self):
        """Every line in index order (set-major)."""
        return [ln for ways in self.sets for ln in ways]

    def _next_window(self):
        self.toggle ^= 1                           # eor rd, rd, #CACHESIZE (first: base+size)
        return self.window + self.toggle * self.size

    def flush_all(self):
        self._count("flush_alls")
        if self.style == "arm926":
            # test, clean and invalidate: one dirty line per iteration, then all invalid
            for ln in self._all_lines():
                if ln.valid and ln.dirty:
                    self._write_back(ln)
                    self._count("line_flushes")
            for ln in self._all_lines():
                ln.valid = False
        elif self.style == "feroceon":
            # clean+invalidate by set/way, from the last set/way down
            for s in reversed(range(self.nsets)):
                for ln in reversed(self.sets[s]):
                    self._count("line_flushes")
                    if ln.valid:
                        self._write_back(ln)
                        ln.valid = False
        elif self.style == "xscale":
            # allocate (mcr c7,c2,5) every line of the window: no fetch, no backing RAM
            base = self._next_window()
            for j in range(self.size // self.line):
                lva = base + j * self.line
                if self._lookup(lva) is None:
                    self._allocate(lva, None, False)
        else:
            # v4wb: read the window, one load per line; the fills bring zeros
            base = self._next_window()
            for j in range(self.size // self.line):
                self._load_piece(base + j * self.line, None, 0)
        self._count("drains")

    # -------------------------------------------------------------------------------------
    # Dinero IV trace replay (identity mapped)
    # -------------------------------------------------------------------------------------
    def replay(self, kinds, addrs, sizes=None):
        kinds, addrs = list(kinds), list(addrs)
        sizes = [1] * len(kinds) if sizes is None else list(sizes)
        for kind, a, size in zip(kinds, addrs, sizes):
            kind, a, size = int(kind), int(a), int(size)
            if kind == 2:                          # instruction fetch: not this cache
                continue
            if kind == 4:
                self.clean_line(a)
                continue
            if kind == 5:
                self.inv_line(a)
                continue
            for o, k in self._pieces(a, max(size, 1)):
                if kind == 1:
                    self._store_piece(a + o, a + o, k, None)
                else:                              # 0 read, 3 misc read
                    self._load_piece(a + o, a + o, 0)
        return len(kinds)

    # -------------------------------------------------------------------------------------
    # inspection, in Cache's shapes
    # -------------------------------------------------------------------------------------
    def ram_read(self, pa, n):
        return bytes(self.ram[pa:pa + n])

    def ram_write(self, pa, data):
        self.ram[pa:pa + len(data)] = bytes(data)

    def discards(self):
        return list(self.discard_log)

    def lines(self):
        """[(index, vtag, pa or NO_PA, dirty mask, data)] of every valid line."""
        return [(i, ln.vtag, NO_PA if ln.pa is None else ln.pa, ln.dirty, bytes(ln.data))
                for i, ln in enumerate(self._all_lines()) if ln.valid]

    def probe(self, va):
        return self._lookup(self._lva(va))


# ---------------------------------------------------------------------------------------------
# Dinero IV's own bookkeeping, as an oracle for Cache.dinero_stats()
# ---------------------------------------------------------------------------------------------


def dinero_counts(trace, size, assoc, bsize, repl="l", wback=True, walloc=True):
    """Counters Dinero IV (d4-7) prints for a d-cache-only run of ``trace``.

    ``trace`` is a list of (label, address, size) with labels 0 read, 1 write, 2 ifetch,
    3 misc, 4 copy-back, 5 invalidate. Each set is a list of ``[block, dirty]``, most recently
    used (LRU) or most recently inserted (FIFO) first; no sub-blocks, demand fetch.
    """
    nsets = size // (bsize * assoc)
    stacks = [[] for _ in range(nsets)]
    c = dict(read_fetches=0, write_fetches=0, read_misses=0, write_misses=0,
             bytes_from_memory=0, bytes_to_memory=0)

    def find(stack, blk):
        for pos, node in enumerate(stack):
            if node[0] == blk:
                return pos
        return -1

    def insert(stack, blk):
        stack.insert(0, [blk, False])
        if len(stack) > assoc:                     # the bottom block is the victim
            _, dirty = stack.pop()
            if dirty:
                c["bytes_to_memory"] += bsize

    for label, addr, sz in trace:
        if label == 2:                             # goes to the (absent) i-cache
            continue
        if label in (4, 5):                        # one block, no fetch or miss counts
            blk = addr // bsize
            stack = stacks[blk % nsets]
            pos = find(stack, blk)
            if pos >= 0:
                if label == 4:
                    if stack[pos][1]:
                        c["bytes_to_memory"] += bsize
                        stack[pos][1] = False
                else:
                    del stack[pos]                 # dirty data discarded
            continue
        # d4_splitm: each block piece is its own reference
        while sz > 0:
            n = min(bsize - addr % bsize, sz)
            blk = addr // bsize
            stack = stacks[blk % nsets]
            pos = find(stack, blk)
            if label == 1:
                c["write_fetches"] += 1
                if pos >= 0:
                    node = stack[pos]
                    if repl == "l":                # LRU: a hit moves the block to the top
                        stack.insert(0, stack.pop(pos))
                    if wback:
                        node[1] = True
                    else:
                        c["bytes_to_memory"] += n
                else:
                    c["write_misses"] += 1
                    if walloc:
                        insert(stack, blk)
                        if n != bsize:
                            c["bytes_from_memory"] += bsize
                        if wback:
                            stack[0][1] = True
                        else:
                            c["bytes_to_memory"] += n
                    else:
                        c["bytes_to_memory"] += n
            else:
                c["read_fetches"] += 1
                if pos >= 0:
                    if repl == "l":
                        stack.insert(0, stack.pop(pos))
                else:
                    c["read_misses"] += 1
                    insert(stack, blk)
                    c["bytes_from_memory"] += bsize
            addr += n
            sz -= n
    # cmdmain.c done: a size-0 copy-back of the whole d-cache
    c["bytes_to_memory"] += bsize * sum(dirty for stack in stacks for _, dirty in stack)
    c["demand_fetches"] = c["read_fetches"] + c["write_fetches"]
    c["demand_misses"] = c["read_misses"] + c["write_misses"]
    return c
