"""Differential tests: emu.cache.Cache against the naive model in tests/naive_cache.py.

Random geometries, every replacement policy, write-back/through, write-allocate on/off, all four
maintenance styles, and random operation sequences over a few virtual pages that map onto fewer
physical pages (so one PA is cached under two VAs: VIVT aliasing). After every operation the
returned data and the counters must agree; after every sequence the whole cache (every line's
tag, PA, dirty mask and data), all of RAM and the discard log must agree.

A second oracle checks ``Cache.dinero_stats()`` against Dinero IV's own bookkeeping
(``naive_cache.dinero_counts``) for random load/store traces.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.cache import Cache

from naive_cache import NO_PA, TAG_INVALID, NaiveCache, dinero_counts

RAM_SIZE = 1 << 16
MAP = 256                    # VA -> PA mapping granularity (>= every line size: offsets agree)
TOP = 1 << 32

# Totals over the session, printed at the end with `pytest -s` (how much was checked).
TOTALS = {"examples": 0, "ops": 0, "dinero_examples": 0, "dinero_refs": 0}

SETTINGS = dict(deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def _report_totals():
    yield
    print(f"\n[cache differential] {TOTALS['examples']} sequences, {TOTALS['ops']} ops; "
          f"dinero oracle: {TOTALS['dinero_examples']} traces, {TOTALS['dinero_refs']} refs")


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------


def _log2(x):
    return x.bit_length() - 1


@st.composite
def geometries(draw, max_size_log=16):
    line = draw(st.sampled_from([16, 32, 64]))
    size = 1 << draw(st.integers(max(6, _log2(line)), max_size_log))
    nlines = size // line
    ways = 1 << draw(st.integers(0, min(5, _log2(nlines))))
    granule = 1 << draw(st.integers(max(0, _log2(line) - 5), _log2(line)))
    return dict(size=size, ways=ways, line=line, dirty_granule=granule)


@st.composite
def configs(draw, max_size_log=16):
    cfg = draw(geometries(max_size_log))
    cfg.update(
        replacement=draw(st.sampled_from(["round-robin", "lru", "fifo", "random"])),
        write_back=draw(st.booleans()),
        write_allocate=draw(st.booleans()),
        style=draw(st.sampled_from(["arm926", "feroceon", "xscale", "v4wb"])),
        seed=draw(st.integers(0, 2**32)),
        # the flush window overlaps the addresses the ops use, or sits far away
        window=draw(st.one_of(st.just(0),
                              st.integers(0, 0x40000 // 64).map(lambda k: k * 64),
                              st.just(0x80000000))),
    )
    return cfg


def _op(line):
    page = st.integers(0, 63)                       # index into the page table (mod its size)
    off = st.integers(0, MAP - 1)
    return st.one_of(
        st.tuples(st.just("load"), page, off, st.integers(0, 3 * line)),
        st.tuples(st.just("store"), page, off, st.binary(max_size=3 * line)),
        st.tuples(st.sampled_from(["inv_line", "clean_line", "flush_line"]), page, off),
        st.tuples(st.sampled_from(["inv_range", "clean_range", "flush_range"]), page, off,
                  st.one_of(st.just(0), st.integers(0, 4 * line + 7),
                            st.integers(0, 4).map(lambda k: k * line))),
        st.tuples(st.just("flush_all")),
        st.tuples(st.just("replay"),
                  st.lists(st.tuples(st.integers(0, 5), st.integers(0, 0xFFF),
                                     st.integers(0, 9)), min_size=1, max_size=8)),
    )


@st.composite
def scenarios(draw, min_ops=8, max_ops=40, max_size_log=16):
    cfg = draw(configs(max_size_log))
    # virtual pages: mostly low (shared with identity-mapped replays), some anywhere, maybe the
    # very top of the address space (ranges ending at 2**32)
    vpages = draw(st.lists(st.one_of(st.integers(0, 15), st.integers(0, 0x3FF),
                                     st.just(TOP // MAP - 1)),
                           min_size=1, max_size=8, unique=True))
    ppages = draw(st.lists(st.integers(0, 15), min_size=len(vpages), max_size=len(vpages)))
    ops = draw(st.lists(_op(cfg["line"]), min_size=min_ops, max_size=max_ops))
    return cfg, list(zip(vpages, ppages)), ops


# ---------------------------------------------------------------------------------------------
# running and comparing
# ---------------------------------------------------------------------------------------------


def _addr(pages, p, off):
    vp, pp = pages[p % len(pages)]
    return vp * MAP + off, pp * MAP + off


def apply(target, op, pages):
    """Run one op on a Cache or a NaiveCache; returns what the op returns."""
    kind = op[0]
    if kind == "load":
        va, pa = _addr(pages, op[1], op[2])
        n = min(op[3], TOP - va, RAM_SIZE - pa)
        return target.load(va, n, pa)
    if kind == "store":
        va, pa = _addr(pages, op[1], op[2])
        data = op[3][:min(len(op[3]), TOP - va, RAM_SIZE - pa)]
        return target.store(va, data, pa)
    if kind.endswith("_line"):
        va, _ = _addr(pages, op[1], op[2])
        return getattr(target, kind)(va)
    if kind.endswith("_range"):
        start, _ = _addr(pages, op[1], op[2])
        return getattr(target, kind)(start, min(start + op[3], TOP))
    if kind == "flush_all":
        return target.flush_all()
    recs = op[1]
    kinds = np.array([r[0] for r in recs], np.int64)
    addrs = np.array([r[1] for r in recs], np.int64)
    sizes = np.array([r[2] for r in recs], np.int64)
    return target.replay(kinds, addrs, sizes)


def assert_same_lines(cache, model):
    """Every line: valid lines agree in tag, PA, dirty mask and data; the rest are invalid."""
    st_ = cache.state()
    want = {i: rest for i, *rest in model.lines()}
    for i in range(len(st_["tag"])):
        got = (int(st_["tag"][i]), int(st_["pa"][i]), int(st_["dirty"][i]),
               st_["data"][i].tobytes())
        if i in want:
            assert got == tuple(want[i]), f"line {i} (set {i // model.ways}, way {i % model.ways})"
        else:
            assert got[0] == TAG_INVALID and got[2] == 0, f"line {i} should be invalid and clean"


def assert_same_everything(cache, model):
    assert_same_lines(cache, model)
    assert cache.stats == model.stats
    assert cache.ram_read(0, RAM_SIZE) == model.ram_read(0, RAM_SIZE)
    got = [(d.va, NO_PA if d.pa is None else d.pa, d.dirty_mask, d.data)
           for d in cache.discards()]
    want = [(va, NO_PA if pa is None else pa, m, data) for va, pa, m, data in model.discards()]
    assert got == want
    # probe agrees with the model's view of a few lines
    for i, vtag, pa, dirty, data in model.lines()[:8]:
        rec = cache.probe(vtag)
        assert rec is not None and (rec.vtag, rec.dirty_mask, rec.data) == (vtag, dirty, data)
        assert rec.set * model.ways + rec.way == i


def run_scenario(cfg, pages, ops):
    cache = Cache(ram_size=RAM_SIZE, **cfg)
    model = NaiveCache(ram_size=RAM_SIZE, **cfg)
    for k, op in enumerate(ops):
        got, want = apply(cache, op, pages), apply(model, op, pages)
        assert got == want, f"op {k} {op!r} returned {got!r}, model {want!r}"
        assert cache.stats == model.stats, f"counters differ after op {k} {op!r}"
    assert_same_everything(cache, model)
    TOTALS["examples"] += 1
    TOTALS["ops"] += len(ops)
    return cache, model


@settings(max_examples=500, **SETTINGS)
@given(scenarios())
def test_random_sequences_match_model(sc):
    run_scenario(*sc)


@settings(max_examples=300, **SETTINGS)
@given(scenarios(min_ops=20, max_ops=80, max_size_log=9))
def test_small_caches_long_sequences_match_model(sc):
    """Tiny caches (64..512 bytes): constant eviction, aliasing and window collisions."""
    run_scenario(*sc)


@settings(max_examples=120, **SETTINGS)
@given(configs(max_size_log=11), st.lists(st.sampled_from(
    ["load", "store", "store", "flush_all", "inv_range", "replay"]), min_size=4, max_size=16),
    st.randoms(use_true_random=False))
def test_flush_all_heavy_sequences_match_model(cfg, kinds, rnd):
    """Repeated flush_all with dirty aliased lines in between: window toggling, window lines
    hit by later accesses, and the order in which each style writes back two dirty aliases of
    one PA (the later write-back wins in RAM)."""
    line = cfg["line"]
    # four VAs in different sets/ways, three of them on PA page 0
    pages = [(0, 0), (1, 0), (cfg["size"] // MAP + 1, 0), (2, 1)]
    offs = [0, 3, line // 2, line - 1, line, 2 * line + 1]
    ops = []
    for kind in kinds:
        p, off = rnd.randrange(4), rnd.choice(offs)
        if kind == "load":
            ops.append(("load", p, off, rnd.randrange(2 * line)))
        elif kind == "store":
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
            ops += [("load", p, off, 1), ("store", p, off, data)]
        elif kind == "inv_range":
            ops.append(("inv_range", p, off, rnd.randrange(3 * line)))
        elif kind == "replay":
            ops.append(("replay", [(rnd.randrange(6), rnd.randrange(0x400), rnd.randrange(9))
                                   for _ in range(4)]))
        else:
            ops.append(("flush_all",))
    run_scenario(cfg, pages, ops)


@pytest.mark.parametrize("style", ["arm926", "feroceon", "xscale", "v4wb"])
@settings(max_examples=60, **SETTINGS)
@given(configs(max_size_log=12),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.binary(min_size=1, max_size=4)),
                min_size=2, max_size=8),
       st.sampled_from(["flush_all", "flush_range", "clean_range", "inv_range"]))
def test_dirty_aliases_of_one_pa_reach_ram_in_the_styles_order(style, cfg, stores, final):
    """Four VAs (different sets and ways) on one PA page, each made dirty at overlapping
    offsets, then one whole-cache or range operation: which alias's bytes end up in RAM
    depends on the order the style visits lines (arm926 index order, feroceon set/way from the
    top, xscale/v4wb replacement order)."""
    cfg.update(style=style, write_back=True)
    pages = [(0, 0), (1, 0), (3, 0), (cfg["size"] // MAP + 5, 0)]
    ops = []
    for p, o, data in stores:
        ops += [("load", p, 8 * o, 1), ("store", p, 8 * o, data)]
    if final == "flush_all":
        ops += [("flush_all",), ("flush_all",)]
    else:
        ops += [(final, 0, 0, 4 * MAP)]
    ops += [("load", p, 0, 40) for p in range(4)]
    run_scenario(cfg, pages, ops)


def test_model_and_cache_agree_on_a_fixed_aliasing_sequence():
    """A readable example of what the property tests do (also runs without hypothesis luck)."""
    cfg = dict(size=256, ways=2, line=32, replacement="lru", write_back=True,
               write_allocate=False, style="arm926", dirty_granule=16, window=0, seed=0)
    pages = [(0x10, 3), (0x11, 3), (0x1, 4)]      # VA 0x1000 and 0x1100 both map PA 0x300
    ops = [("load", 0, 0, 8), ("load", 1, 0, 8), ("store", 0, 4, b"\x01\x02"),
           ("store", 1, 20, b"\x03"), ("load", 0, 0, 32), ("load", 1, 0, 32),
           ("inv_range", 0, 2, 20), ("flush_all",), ("load", 1, 0, 32)]
    cache, model = run_scenario(cfg, pages, ops)
    assert cache.stats["dirty_discards"] == 0      # the partial edge line was cleaned first
    assert cache.ram_read(0x300, 32)[4:6] == b"\x01\x02"
    assert cache.ram_read(0x300, 32)[20] == 3


# ---------------------------------------------------------------------------------------------
# Dinero IV oracle
# ---------------------------------------------------------------------------------------------


@st.composite
def dinero_runs(draw):
    geo = draw(geometries(max_size_log=12))
    repl = draw(st.sampled_from(["lru", "fifo"]))
    wb, wa = draw(st.booleans()), draw(st.booleans())
    span = draw(st.sampled_from([geo["size"] // 2, geo["size"] * 2, geo["size"] * 8]))
    ref = st.tuples(
        st.sampled_from([0, 0, 0, 1, 1, 1, 3, 2, 4, 5]),
        st.integers(0, max(span, 64) - 1),
        st.integers(1, 8))
    trace = draw(st.lists(ref, min_size=20, max_size=300))
    return geo, repl, wb, wa, trace


@settings(max_examples=300, **SETTINGS)
@given(dinero_runs())
def test_dinero_stats_match_dinero_bookkeeping(run):
    geo, repl, wb, wa, trace = run
    # Dinero has one dirty bit per block: the oracle applies to dirty_granule == line
    cache = Cache(size=geo["size"], ways=geo["ways"], line=geo["line"], replacement=repl,
                  write_back=wb, write_allocate=wa, ram_size=RAM_SIZE)
    kinds = np.array([t[0] for t in trace], np.int64)
    addrs = np.array([t[1] for t in trace], np.int64)
    sizes = np.array([t[2] for t in trace], np.int64)
    assert cache.replay(kinds, addrs, sizes) == len(trace)
    want = dinero_counts(trace, geo["size"], geo["ways"], geo["line"],
                         "l" if repl == "lru" else "f", wb, wa)
    got = cache.dinero_stats()
    for key in ("demand_fetches", "read_fetches", "write_fetches", "demand_misses",
                "read_misses", "write_misses", "bytes_from_memory", "bytes_to_memory"):
        assert got[key] == want[key], (key, got, want)
    # dinero_stats reports; it does not copy anything back
    assert cache.dinero_stats() == got
    TOTALS["dinero_examples"] += 1
    TOTALS["dinero_refs"] += len(trace)


def test_dinero_oracle_agrees_with_naive_model_on_a_fixed_trace():
    """The two oracles agree with each other (LRU, write-back, write-allocate)."""
    trace = [(0, 0x10, 4), (1, 0x1e, 4), (1, 0x40, 32), (0, 0x110, 8), (0, 0x210, 1),
             (4, 0x20, 4), (1, 0x20, 2), (5, 0x20, 1), (0, 0x20, 4), (3, 0x400, 2)]
    want = dinero_counts(trace, 256, 2, 32, "l", True, True)
    model = NaiveCache(size=256, ways=2, line=32, replacement="lru", write_allocate=True)
    model.replay(*zip(*trace))
    st_ = model.stats
    assert want["read_fetches"] == st_["loads"] and want["write_fetches"] == st_["stores"]
    assert want["demand_misses"] == st_["load_misses"] + st_["store_misses"]
    assert want["bytes_from_memory"] == st_["bytes_read"]
    pending = sum(bin(d).count("1") * 32 for _, _, _, d, _ in model.lines())
    assert want["bytes_to_memory"] == st_["bytes_written"] + pending
