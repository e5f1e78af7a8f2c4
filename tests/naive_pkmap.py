"""A naive, obviously-correct model of the Linux 2.6.30 pkmap window (pure Python, slow).

Written from ``spec/linux-highmem-dma-semantics.md`` §1-§2 (mm/highmem.c of 2.6.30.4 with
ARCH_NEEDS_KMAP_HIGH_GET, ARM constants), not from emu's kernels:

* ``pkmap_count[LAST_PKMAP]``: 0 = free and PTE clear; 1 = still mapped, unused (lazy unmap);
  n >= 2 = mapped with n-1 users (§1.2).
* ``last_pkmap_nr``: the round-robin cursor, pre-incremented, so the first mapping is slot 1;
  every step onto slot 0 runs ``flush_all_zero_pkmaps()`` (§1.6).
* ``flush_all_zero_pkmaps()``: ``flush_cache_kmaps()`` always and first; each count-1 slot goes
  to 0, its PTE is cleared and its page loses its address; one TLB flush of the whole window
  at the end, only if a slot was freed (§1.4).
* PTE per slot (pfn or -1); the page -> vaddr hash as a dict (§1.10); a TLB per CPU per slot
  (pfn or -1), filled by a CPU access through a pkmap address on a TLB miss when the PTE is
  present, emptied on every CPU by the window TLB flush, *not* by ``pte_clear`` (§2 "TLB flush").
* CPU-visible memory: one bytearray per page that was ever written, fresh RAM reads as the
  poison byte 0x5A. A pkmap page has one virtual address at a time and the whole cache is
  flushed before any slot is reused, so through its current address a CPU always sees the
  last data stored to the page.

Errors, as emu's direct-call API defines them (API.md "Errors"):

* :class:`KernelBug` - a BUG()/BUG_ON() would fire; the model changes nothing (the kernel
  decrements before the BUG() of an unbalanced kunmap_high; a direct call leaves the state as
  it was).
* :class:`WouldSleep` - ``kmap_high`` found every slot pinned: the scan's effects stay (the
  cursor walked to the wrap, flush_all_zero_pkmaps ran, then a full pass: the cursor ends at
  LAST_PKMAP-1), the ``sleeps`` counter counts it, and the call fails instead of blocking.
* :class:`PageFault` - a CPU access to an address with no translation; nothing changes (the
  whole span is checked before any byte moves).
"""

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PMD_SIZE = 1 << 21
POISON = 0x5A
NONE = -1

#: The ``Machine.mm_stats`` keys this model predicts.
STAT_NAMES = ("flush_all_zero_pkmaps", "cache_flushes", "tlb_flushes", "set_pte", "pte_clear",
              "sleeps", "wakeups")


class KernelBug(Exception):
    pass


class WouldSleep(Exception):
    def __init__(self, pfn, pinned):
        super().__init__(f"kmap_high({pfn}) would sleep; pinned slots {pinned}")
        self.pfn = pfn
        self.pinned = pinned


class PageFault(Exception):
    def __init__(self, va):
        super().__init__(f"Unable to handle kernel paging request at virtual address {va:08x}")
        self.va = va


class NaivePkmap:
    """The pkmap window of one machine (RAM from physical 0: ``lowmem_pages`` linearly mapped
    at ``page_offset``, then highmem up to ``npages``)."""

    def __init__(self, last_pkmap=512, lowmem_pages=64, npages=1088, ncpus=1,
                 page_offset=0xC0000000, line=32):
        assert last_pkmap >= 2 and last_pkmap & (last_pkmap - 1) == 0
        self.LAST_PKMAP = last_pkmap
        self.lowmem_pages = lowmem_pages
        self.npages = npages
        self.ncpus = ncpus
        self.PAGE_OFFSET = page_offset
        # ARM: one PMD below PAGE_OFFSET; emu lets a larger window (x86: 1024) grow downwards
        self.PKMAP_BASE = page_offset - max(PMD_SIZE, last_pkmap * PAGE_SIZE)
        self.line = line
        self.pkmap_count = [0] * last_pkmap
        self.last_pkmap_nr = 0
        self.pte = [NONE] * last_pkmap
        self.vaddr_of = {}                  # highmem pfn -> pkmap vaddr (page_address hash)
        self.tlb = [[NONE] * last_pkmap for _ in range(ncpus)]
        self.mem = {}                       # pfn -> bytearray(PAGE_SIZE), pages ever written
        self.stats = dict.fromkeys(STAT_NAMES, 0)
        self.cpu = 0                        # the CPU direct calls run on

    # -- constants --------------------------------------------------------------------------
    def pkmap_addr(self, nr):
        return self.PKMAP_BASE + nr * PAGE_SIZE

    def pkmap_nr(self, vaddr):
        return (vaddr - self.PKMAP_BASE) >> PAGE_SHIFT

    def is_highmem(self, pfn):
        return pfn >= self.lowmem_pages

    def _check_pfn(self, pfn, highmem=False):
        if isinstance(pfn, bool) or not isinstance(pfn, int) or not 0 <= pfn < self.npages:
            raise ValueError(f"pfn={pfn!r}")
        if highmem and not self.is_highmem(pfn):
            raise ValueError(f"pfn={pfn!r}: not highmem")

    # -- page_address / set_page_address (§1.10) --------------------------------------------
    def page_address(self, pfn):
        self._check_pfn(pfn)
        if not self.is_highmem(pfn):
            return self.PAGE_OFFSET + pfn * PAGE_SIZE
        return self.vaddr_of.get(pfn, 0)

    def pkmap_page(self, nr):
        return self.pte[nr]

    def tlb_page(self, nr, cpu=0):
        return self.tlb[cpu][nr]

    # -- flush_all_zero_pkmaps (§1.4) --------------------------------------------------------
    def _flush_all_zero_pkmaps(self):
        self.stats["flush_all_zero_pkmaps"] += 1
        self.stats["cache_flushes"] += 1            # flush_cache_kmaps(): always, first
        need_flush = False
        for i in range(self.LAST_PKMAP):
            if self.pkmap_count[i] != 1:
                continue
            self.pkmap_count[i] = 0
            assert self.pte[i] != NONE              # BUG_ON(pte_none(...)): cannot happen here
            page = self.pte[i]
            self.pte[i] = NONE                      # pte_clear: the TLB keeps its entries
            self.stats["pte_clear"] += 1
            del self.vaddr_of[page]                 # set_page_address(page, NULL)
            need_flush = True
        if need_flush:                              # flush_tlb_kernel_range(whole window)
            for t in self.tlb:
                t[:] = [NONE] * self.LAST_PKMAP
            self.stats["tlb_flushes"] += 1

    # -- map_new_virtual (§1.6) ---------------------------------------------------------------
    def _map_new_virtual(self, pfn):
        count = self.LAST_PKMAP
        while True:
            self.last_pkmap_nr = (self.last_pkmap_nr + 1) % self.LAST_PKMAP
            if self.last_pkmap_nr == 0:
                self._flush_all_zero_pkmaps()
                count = self.LAST_PKMAP
            if self.pkmap_count[self.last_pkmap_nr] == 0:
                break
            count -= 1
            if count == 0:
                # every slot pinned: the task would sleep and nobody can wake it
                self.stats["sleeps"] += 1
                pinned = [i for i, c in enumerate(self.pkmap_count) if c >= 2]
                raise WouldSleep(pfn, pinned)
        nr = self.last_pkmap_nr
        vaddr = self.pkmap_addr(nr)
        self.pte[nr] = pfn                          # set_pte_at
        self.stats["set_pte"] += 1
        self.pkmap_count[nr] = 1
        self.vaddr_of[pfn] = vaddr                  # set_page_address(page, vaddr)
        return vaddr

    # -- the API (§1.5, §1.7-§1.9, §1.11) ------------------------------------------------------
    def kmap_high(self, pfn):
        self._check_pfn(pfn, highmem=True)
        vaddr = self.vaddr_of.get(pfn, 0)
        if vaddr == 0:
            vaddr = self._map_new_virtual(pfn)
        nr = self.pkmap_nr(vaddr)
        if self.pkmap_count[nr] + 1 < 2:            # BUG_ON(pkmap_count < 2)
            raise KernelBug(f"kmap_high {pfn}")
        self.pkmap_count[nr] += 1
        return vaddr

    def kmap_high_get(self, pfn):
        self._check_pfn(pfn, highmem=True)
        vaddr = self.vaddr_of.get(pfn, 0)
        if vaddr:
            nr = self.pkmap_nr(vaddr)
            if self.pkmap_count[nr] < 1:            # BUG_ON(pkmap_count < 1)
                raise KernelBug(f"kmap_high_get {pfn}")
            self.pkmap_count[nr] += 1
        return vaddr

    def kunmap_high(self, pfn):
        self._check_pfn(pfn, highmem=True)
        vaddr = self.vaddr_of.get(pfn, 0)
        if not vaddr:                               # BUG_ON(!vaddr)
            raise KernelBug(f"kunmap_high: page {pfn} has no virtual address")
        nr = self.pkmap_nr(vaddr)
        if self.pkmap_count[nr] - 1 == 0:           # BUG() on the way to 0
            raise KernelBug(f"kunmap_high: unbalanced kunmap of page {pfn}")
        self.pkmap_count[nr] -= 1
        # a wakeup needs a queued waiter; a direct call never leaves one queued

    def kmap(self, pfn):
        self._check_pfn(pfn)
        if not self.is_highmem(pfn):
            return self.PAGE_OFFSET + pfn * PAGE_SIZE
        return self.kmap_high(pfn)

    def kunmap(self, pfn):
        self._check_pfn(pfn)
        if self.is_highmem(pfn):
            self.kunmap_high(pfn)

    def kmap_flush_unused(self):
        self._flush_all_zero_pkmaps()

    # -- CPU accesses through the MMU ----------------------------------------------------------
    def _peek_translate(self, va):
        """(pfn, nr) that ``va`` translates to for the running CPU without changing anything,
        nr = pkmap slot or None; pfn -1 = no translation."""
        po = self.PAGE_OFFSET
        if po <= va < po + self.lowmem_pages * PAGE_SIZE:
            return (va - po) >> PAGE_SHIFT, None
        if self.PKMAP_BASE <= va < self.pkmap_addr(self.LAST_PKMAP):
            nr = self.pkmap_nr(va)
            pfn = self.tlb[self.cpu][nr]
            if pfn == NONE:
                pfn = self.pte[nr]
            return pfn, nr
        return NONE, None          # user space, vmalloc/IO, past the window or past lowmem

    def _pages(self, va, n):
        """The (va, pfn, offset, length) pieces of an access, split at page boundaries; raises
        PageFault (before anything changes) at the first address with no translation."""
        pieces = []
        a, end = va, va + n
        while a < end:
            k = min(PAGE_SIZE - (a & (PAGE_SIZE - 1)), end - a)
            pfn, _ = self._peek_translate(a)
            if pfn == NONE:
                raise PageFault(a)
            pieces.append((a, pfn, a & (PAGE_SIZE - 1), k))
            a += k
        return pieces

    def _touch_tlb(self, va):
        _, nr = self._peek_translate(va)
        if nr is not None and self.tlb[self.cpu][nr] == NONE:
            self.tlb[self.cpu][nr] = self.pte[nr]   # table walk fills the TLB

    def page_bytes(self, pfn):
        m = self.mem.get(pfn)
        return bytes(m) if m is not None else bytes([POISON]) * PAGE_SIZE

    def read(self, va, n):
        out = bytearray()
        for a, pfn, off, k in self._pages(va, n):
            self._touch_tlb(a)
            m = self.mem.get(pfn)
            out += m[off:off + k] if m is not None else bytes([POISON]) * k
        return bytes(out)

    def write(self, va, data):
        data = bytes(data)
        o = 0
        for a, pfn, off, k in self._pages(va, len(data)):
            self._touch_tlb(a)
            m = self.mem.setdefault(pfn, bytearray([POISON]) * PAGE_SIZE)
            m[off:off + k] = data[o:o + k]
            o += k

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot(self, pfns):
        """Everything observable about the window, for 'nothing changed' checks."""
        return (tuple(self.pkmap_count), self.last_pkmap_nr, tuple(self.pte),
                tuple(tuple(t) for t in self.tlb), tuple(self.page_address(p) for p in pfns),
                tuple(sorted(self.stats.items())))
