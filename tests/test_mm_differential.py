"""Differential tests: ``emu.Machine``'s pkmap window against the naive model in
``tests/naive_pkmap.py`` (written from spec §1-§2).

Random sequences of kmap / kunmap / kmap_high / kunmap_high / kmap_high_get (and the kunmap_high
that balances it) / kmap_flush_unused / CPU reads and writes, over a page set larger than
LAST_PKMAP (so the cursor wraps, slots are recycled and kmap_high can find every slot pinned),
for LAST_PKMAP 4, 8 and 512 (and 2, 16, 64), every core preset, one or two CPUs, the three
PAGE_OFFSET choices. Invalid operations (unbalanced
kunmap, kunmap of an unmapped page, accesses to unmapped addresses) must fail the same way in
both and change nothing (pkmap state, counters, the whole D-cache).

After every operation: the return value (or exception), ``last_pkmap_nr``, every
``pkmap_count``, the predicted ``mm_stats`` counters; and (every operation for LAST_PKMAP 4/8,
every operation after the initial burst for 512) every slot's ``pkmap_page``, every CPU's
``tlb_page`` and ``page_address`` of every page in the set. Data read through the MMU must be
the last data written; whenever ``flush_cache_kmaps()`` ran, RAM must hold what the CPU wrote.

With LAST_PKMAP < 512 the addresses between the last slot and PAGE_OFFSET are unmapped too:
accesses run into them from the last slot and start there.

The number of sequences and operations checked is printed at the end of the module.
"""

import os
import random

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import emu

import naive_pkmap as nv

LOWMEM_MB = 0.25                  # pages 0-63 lowmem, as in the spec's page model
HIGHMEM_MB = 4                    # pages 64-1087 highmem
PRESETS = ("arm926", "feroceon", "xscale", "sa110")
LOW_PAGES = (0, 1, 37, 63)

TOTALS = {}

# Shrinking a failing sequence can take minutes (every example runs a machine); it is off
# unless EMU_TEST_SHRINK=1. The failure message names the operation that diverged either way.
SETTINGS = dict(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much],
                phases=[Phase.explicit, Phase.reuse, Phase.generate]
                + ([Phase.shrink] if os.environ.get("EMU_TEST_SHRINK") == "1" else []))


@pytest.fixture(scope="module", autouse=True)
def _report_totals(pytestconfig):
    """Print how much was checked (also without ``-s``)."""
    yield
    lines = [f"[mm differential] LAST_PKMAP={key}: {t['sequences']} sequences, {t['ops']} ops "
             f"({t['errors']} failing as expected: {t['bugs']} KernelBug, {t['sleeps']} "
             f"WouldSleep, {t['faults']} PageFault), {t['flushes']} flush_cache_kmaps, "
             f"{t['tlb_flushes']} TLB flushes, {t['wraps']} wraps, {t['full']} full-state "
             f"comparisons" for key, t in sorted(TOTALS.items())]
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    tr = pytestconfig.pluginmanager.getplugin("terminalreporter")
    if capman is None or tr is None:
        print("\n" + "\n".join(lines))
        return
    with capman.global_and_fixture_disabled():
        tr.write_line("")
        for line in lines:
            tr.write_line(line)


def _ranges(nrs):
    out, i = [], 0
    while i < len(nrs):
        j = i
        while j + 1 < len(nrs) and nrs[j + 1] == nrs[j] + 1:
            j += 1
        out.append(f"{nrs[i]}-{nrs[j]}" if j > i else f"{nrs[i]}")
        i = j + 1
    return ", ".join(out)


class Harness:
    """One emu machine and one naive model, driven in lockstep."""

    def __init__(self, last, cpu, ncpus, n_high, page_offset=0xC0000000):
        high_mb = max(HIGHMEM_MB, -(-(n_high + 64) // 256))     # whole MiB, room for n_high
        self.m = emu.Machine(cpu=cpu, lowmem_mb=LOWMEM_MB, highmem_mb=high_mb,
                             last_pkmap=last, ncpus=ncpus, page_offset=page_offset)
        self.L = last
        self.n = nv.NaivePkmap(last, self.m.highmem_pfns.start, self.m.highmem_pfns.stop, ncpus,
                               self.m.PAGE_OFFSET)
        self.ncpus = ncpus
        self.high = list(range(64, 64 + n_high))
        self.pages = list(LOW_PAGES) + self.high
        self.held = []                # highmem pfns with an outstanding kmap / get reference
        self.t = TOTALS.setdefault(last, dict.fromkeys(
            ("sequences", "ops", "errors", "bugs", "sleeps", "faults", "flushes", "tlb_flushes",
             "wraps", "full"), 0))
        self.t["sequences"] += 1
        self.window_end = self.n.pkmap_addr(last)
        bad = [0x0, 0x1000, 0x3FFFF000, 0x7FFFF000, 0xBFFFF000, self.m.PKMAP_BASE - 4096,
               self.m.PAGE_OFFSET + len(self.m.lowmem_pfns) * 4096, 0xD0000000, 0xFFFF0000,
               self.window_end, self.m.PAGE_OFFSET - 4096]
        # never mapped: outside the window [PKMAP_BASE, PKMAP_ADDR(LAST_PKMAP)) and lowmem
        self.bad = [a for a in bad if not self.m.PKMAP_BASE <= a < self.window_end
                    and self.n._peek_translate(a)[0] == nv.NONE]

    # -- one call on both sides ---------------------------------------------------------------
    def both(self, name, *args):
        self.t["ops"] += 1
        flushes0 = self.n.stats["cache_flushes"]
        zero0 = self.n.stats["flush_all_zero_pkmaps"]
        tlb0 = self.n.stats["tlb_flushes"]
        try:
            want, want_exc = getattr(self.n, name)(*args), None
        except (nv.KernelBug, nv.WouldSleep, nv.PageFault) as e:
            want, want_exc = None, e
        cache0 = self.m.cache.state() if isinstance(want_exc, (nv.KernelBug, nv.PageFault)) \
            else None
        try:
            got, got_exc = getattr(self.m, name)(*args), None
        except (emu.KernelBug, emu.WouldSleep, emu.PageFault) as e:
            got, got_exc = None, e
        where = f"{name}{tuple(hex(a) if a > 0xFFFF else a for a in args if isinstance(a, int))}"
        if want_exc is None:
            assert got_exc is None, f"{where}: emu raised {got_exc!r}, model returned {want!r}"
            assert got == want, f"{where}: emu returned {got!r}, model {want!r}"
        else:
            kind = {nv.KernelBug: emu.KernelBug, nv.WouldSleep: emu.WouldSleep,
                    nv.PageFault: emu.PageFault}[type(want_exc)]
            assert type(got_exc) is kind, f"{where}: model raised {want_exc!r}, emu {got_exc!r}"
            self.t["errors"] += 1
            if isinstance(want_exc, nv.WouldSleep):
                self.t["sleeps"] += 1
                assert str(got_exc).endswith(f"pinned slots: {_ranges(want_exc.pinned)}"), \
                    str(got_exc)
            elif isinstance(want_exc, nv.PageFault):
                self.t["faults"] += 1
                assert str(got_exc) == str(want_exc), (str(got_exc), str(want_exc))
            else:
                self.t["bugs"] += 1
            if cache0 is not None:
                cache1 = self.m.cache.state()
                for k in cache0:
                    assert (cache0[k] == cache1[k]).all(), f"{where} failed but changed cache {k}"
        if self.n.stats["cache_flushes"] != flushes0:
            self.t["flushes"] += self.n.stats["cache_flushes"] - flushes0
            self.check_ram()
        if name != "kmap_flush_unused":                 # every other flush is a wrap
            self.t["wraps"] += self.n.stats["flush_all_zero_pkmaps"] - zero0
        self.t["tlb_flushes"] += self.n.stats["tlb_flushes"] - tlb0
        return want

    # -- comparisons ----------------------------------------------------------------------------
    def compare(self, full):
        m, n = self.m, self.n
        assert m.last_pkmap_nr == n.last_pkmap_nr
        assert m.pkmap_count.tolist() == n.pkmap_count
        stats = m.mm_stats
        assert {k: stats[k] for k in nv.STAT_NAMES} == n.stats
        if full:
            self.t["full"] += 1
            assert [m.pkmap_page(i) for i in range(self.L)] == n.pte
            for cpu in range(self.ncpus):
                assert [m.tlb_page(i, cpu) for i in range(self.L)] == n.tlb[cpu], f"TLB cpu{cpu}"
            assert [m.page_address(p) for p in self.pages] == \
                [n.page_address(p) for p in self.pages]

    def check_ram(self, pfns=None):
        """After flush_cache_kmaps() (a full D-cache clean): RAM holds what the CPU wrote."""
        for pfn in (self.n.mem if pfns is None else pfns):
            assert self.m.phys_read(pfn * 4096, 4096) == self.n.page_bytes(pfn), f"RAM of {pfn}"

    # -- operations -----------------------------------------------------------------------------
    def kunmap_any(self, pfn, plain):
        name = "kunmap" if plain or pfn < 64 else "kunmap_high"
        pinned = pfn in self.n.vaddr_of and self.n.pkmap_count[self.n.pkmap_nr(
            self.n.vaddr_of[pfn])] >= 2
        self.both(name, pfn)
        if pinned:
            self.held.remove(pfn)     # it released somebody's reference

    def run(self, op):
        kind = op[0]
        if kind == "kmap":
            pfn = self.pages[op[1] % len(self.pages)]
            if self.both("kmap", pfn) is not None and pfn >= 64:
                self.held.append(pfn)
        elif kind == "kmap_high":
            pfn = self.high[op[1] % len(self.high)]
            if self.both("kmap_high", pfn) is not None:
                self.held.append(pfn)
        elif kind == "get":
            pfn = self.high[op[1] % len(self.high)]
            if self.both("kmap_high_get", pfn):
                self.held.append(pfn)
        elif kind == "release":
            if self.held:
                pfn = self.held.pop(op[1] % len(self.held))
                self.both("kunmap" if op[2] else "kunmap_high", pfn)
            else:
                self.kunmap_any(self.pages[op[1] % len(self.pages)], op[2])
        elif kind == "kunmap_any":
            self.kunmap_any(self.pages[op[1] % len(self.pages)], op[2])
        elif kind == "flush":
            self.both("kmap_flush_unused")
        elif kind == "access":
            self.access(*op[1:])
        else:
            raise AssertionError(op)

    def access(self, write, target, idx, off, length, seed):
        n = self.n
        if target == 0 and self.held:
            base = n.page_address(self.held[idx % len(self.held)])
        elif target <= 1:
            base = n.pkmap_addr(idx % self.L)
        elif target == 2:
            base = n.page_address(self.pages[idx % len(self.pages)]) or \
                n.pkmap_addr(idx % self.L)
        elif target == 3:
            base = n.PAGE_OFFSET + LOW_PAGES[idx % len(LOW_PAGES)] * 4096
        else:
            base = self.bad[idx % len(self.bad)]
        va = base + off
        if write:
            self.both("write", va, random.Random(seed).randbytes(length))
        else:
            self.both("read", va, length)

    def burst(self, count, release_pct, seed):
        """``count`` kmaps of consecutive pages of the set, each released again with
        probability ``release_pct`` %: walks the cursor through the window quickly."""
        rnd = random.Random(seed)
        for i in range(count):
            pfn = self.high[i % len(self.high)]
            if self.both("kmap_high", pfn) is not None:
                self.held.append(pfn)
            if self.held and rnd.randrange(100) < release_pct:
                self.both("kunmap_high", self.held.pop(rnd.randrange(len(self.held))))
            self.compare(full=False)

    def finish(self):
        """Release everything, flush, and check the whole state, RAM and the oracle."""
        while self.held:
            self.both("kunmap_high", self.held.pop())
        self.both("kmap_flush_unused")
        self.compare(full=True)
        assert not self.m.pkmap_count.any()
        assert all(p == -1 for p in self.n.pte)
        self.check_ram(set(self.pages) | set(self.n.mem))   # written pages; poison elsewhere
        assert self.m.findings() == [], self.m.findings()[:3]


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

IDX = st.integers(0, 1023)
OFFSETS = st.one_of(st.integers(0, 4095), st.sampled_from([0, 31, 32, 4064, 4080, 4095]))
LENGTHS = st.one_of(st.integers(0, 72), st.sampled_from([1, 32, 33, 4096, 4097]))


def ops(access=True):
    choices = [
        st.tuples(st.just("kmap"), IDX),
        st.tuples(st.just("kmap_high"), IDX),
        st.tuples(st.just("get"), IDX),
        st.tuples(st.just("release"), IDX, st.booleans()),
        st.tuples(st.just("release"), IDX, st.booleans()),
        st.tuples(st.just("kunmap_any"), IDX, st.booleans()),
        st.just(("flush",)),
    ]
    if access:
        choices.append(st.tuples(st.just("access"), st.booleans(), st.integers(0, 4), IDX,
                                 OFFSETS, LENGTHS, st.integers(0, 2**32 - 1)))
    return st.one_of(*choices)


machines = st.tuples(st.sampled_from(PRESETS), st.sampled_from([1, 2]),
                     st.sampled_from([0xC0000000, 0xC0000000, 0x80000000, 0x40000000]))


def bursts(max_count):
    return st.tuples(st.integers(0, max_count), st.sampled_from([0, 10, 50, 90, 100]),
                     st.integers(0, 2**32 - 1))


def _run(last, cfg, burst, seq, n_high):
    """A burst then the sequence, on ``n_high`` highmem pages, comparing after each op."""
    cpu, ncpus, page_offset = cfg
    h = Harness(last, cpu, ncpus, n_high, page_offset)
    h.compare(full=True)
    h.burst(*burst)
    h.compare(full=True)
    for op in seq:
        h.run(op)
        h.compare(full=True)
    h.finish()
    return h


def _run_small(last, cfg, burst, seq):
    _run(last, cfg, burst, seq, 2 * last + 3)


@settings(max_examples=300, **SETTINGS)
@given(cfg=machines, burst=bursts(16), seq=st.lists(ops(), min_size=30, max_size=200))
def test_differential_last_pkmap_4(cfg, burst, seq):
    _run_small(4, cfg, burst, seq)


@settings(max_examples=300, **SETTINGS)
@given(cfg=machines, burst=bursts(32), seq=st.lists(ops(), min_size=30, max_size=200))
def test_differential_last_pkmap_8(cfg, burst, seq):
    _run_small(8, cfg, burst, seq)


@settings(max_examples=40, **SETTINGS)
@given(cfg=machines,
       burst=bursts(1600),
       seq=st.lists(ops(), min_size=10, max_size=80))
def test_differential_last_pkmap_512(cfg, burst, seq):
    _run(512, cfg, burst, seq, 600)


@settings(max_examples=40, **SETTINGS)
@given(last=st.sampled_from([2, 16, 64]), cfg=machines, burst=bursts(200),
       seq=st.lists(ops(), min_size=30, max_size=200))
def test_differential_other_window_sizes(last, cfg, burst, seq):
    _run_small(last, cfg, burst, seq)


def test_differential_512_fixed_long_run():
    """A fixed long sequence for LAST_PKMAP 512: several full wraps with lazily unmapped slots,
    a full window (WouldSleep), and recovery."""
    h = Harness(512, "arm926", 1, n_high=600)
    h.burst(1400, 90, 1)          # ~2.5 wraps of mostly count-1 slots
    h.compare(full=True)
    h.burst(600, 0, 2)            # pins every slot; the rest would sleep
    h.compare(full=True)
    assert h.t["sleeps"] > 0
    for k in range(40):
        h.run(("release", k * 7, k % 2 == 0))
        h.run(("kmap_high", 600 - k))
        h.run(("access", True, 0, k, 4000, 200, k))
        h.compare(full=True)
    h.finish()


@settings(max_examples=8, **SETTINGS)
@given(last=st.sampled_from([1024, 4096]), cfg=machines, burst=bursts(6000),
       seq=st.lists(ops(), min_size=10, max_size=40))
def test_differential_windows_larger_than_arms(last, cfg, burst, seq):
    """LAST_PKMAP above ARM's 512 (x86 has 1024): the window starts LAST_PKMAP pages below
    PAGE_OFFSET and everything else is the same algorithm, wraps included."""
    h = _run(last, cfg, burst, seq, last + 100)
    assert h.m.PKMAP_BASE == cfg[2] - last * 4096
