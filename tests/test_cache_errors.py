"""Bad input to emu.cache raises ValueError naming the argument, and changes nothing."""

import numpy as np
import pytest

from emu.cache import Cache, CacheConfig

RAM = 1 << 16


def busy_cache():
    """A cache with valid, dirty and discarded lines, so 'unchanged' means something."""
    c = Cache(size=1024, ways=4, line=32, ram_size=RAM, dirty_granule=16)
    for k in range(6):
        c.load(0x1000 + 0x120 * k, 8)
        c.store(0x1004 + 0x120 * k, bytes([k]) * 4)
    c.inv_line(0x1000)
    c.load(0x4000, 4, pa=0x2000)
    return c


def snapshot(c, ram=RAM):
    st = c.state()
    return ({k: v.tobytes() for k, v in st.items()}, c.stats, c.discards(),
            c.ram_read(0, ram), c.lines())


def assert_rejected(c, fn, *args, name, ram=RAM):
    before = snapshot(c, ram)
    with pytest.raises(ValueError) as e:
        fn(*args)
    assert name in str(e.value), f"message {str(e.value)!r} does not name {name!r}"
    assert snapshot(c, ram) == before, "a rejected call changed the cache"
    return str(e.value)


# ---------------------------------------------------------------------------------------------
# construction
# ---------------------------------------------------------------------------------------------

BAD_CONFIGS = [
    (dict(size=1000), "size"),
    (dict(size=0), "size"),
    (dict(size=-1024), "size"),
    (dict(size=True), "size"),
    (dict(size=1024.0), "size"),
    (dict(ways=3), "ways"),
    (dict(ways=0), "ways"),
    (dict(ways=64), "ways"),                  # 1024 / 32 = 32 lines
    (dict(line=24), "line"),
    (dict(line=2), "line"),
    (dict(line=512), "line"),
    (dict(line=2048), "line"),                # bigger than the cache
    (dict(replacement="lfu"), "replacement"),
    (dict(replacement=None), "replacement"),
    (dict(style="v7"), "style"),
    (dict(dirty_granule=3), "dirty_granule"),
    (dict(dirty_granule=64), "dirty_granule"),
    (dict(write_back="yes"), "write_back"),
    (dict(write_allocate=1), "write_allocate"),
    (dict(window=-32), "window"),
    (dict(window=0xFFFFFF00), "window"),      # no room for two 1 KiB windows above it
    (dict(window=1 << 32), "window"),
    (dict(ram_size=0), "ram_size"),
    (dict(ram_size=(1 << 32) + 1), "ram_size"),
    (dict(ram_size=-1), "ram_size"),
    (dict(events=-1), "events"),
    # too large: the window check named window, numpy's allocation no argument
    (dict(size=1 << 31), "size"),
    (dict(size=1 << 64), "size"),
    (dict(events=1 << 64), "events"),
    (dict(events=(1 << 24) + 1), "events"),
]


@pytest.mark.parametrize("kw, name", BAD_CONFIGS, ids=[f"{n}={kw[n]!r}" for kw, n in BAD_CONFIGS])
def test_bad_geometry_or_policy_names_the_argument(kw, name):
    args = dict(size=1024, ways=4, line=32, ram_size=RAM)
    args.update(kw)
    with pytest.raises(ValueError) as e:
        Cache(**args)
    assert name in str(e.value)


@pytest.mark.parametrize("kw, accepted", [
    (dict(replacement="lfu"), ["round-robin", "lru", "fifo", "random"]),
    (dict(style="v7"), ["arm926", "feroceon", "xscale", "v4wb"]),
])
def test_unknown_names_list_the_accepted_values(kw, accepted):
    with pytest.raises(ValueError) as e:
        CacheConfig(**kw)
    assert all(a in str(e.value) for a in accepted)


def test_unknown_preset():
    with pytest.raises(ValueError) as e:
        Cache.from_preset("cortex-a9", ram_size=RAM)
    msg = str(e.value)
    assert "cortex-a9" in msg and "preset" in msg
    assert all(n in msg for n in ("arm926", "feroceon", "xscale", "sa110"))


def test_preset_overrides_are_validated():
    with pytest.raises(ValueError, match="ways"):
        Cache.from_preset("arm926", ways=5, ram_size=RAM)


# ---------------------------------------------------------------------------------------------
# accesses and maintenance on a live cache
# ---------------------------------------------------------------------------------------------

TOP = 1 << 32

BAD_CALLS = [
    ("load", (-1, 4), "va"),
    ("load", (TOP, 1), "va"),
    ("load", ("0x100", 4), "va"),
    ("load", (0x100, -1), "n"),
    ("load", (0x100, 2.0), "n"),
    ("load", (TOP - 2, 4, 0), "n"),           # runs past the end of the 32-bit space
    ("load", (0x100, 4, RAM), "pa"),          # outside RAM
    ("load", (0x100, 4, RAM - 2), "pa"),      # ends outside RAM
    ("load", (0x100, 4, -32), "pa"),
    ("store", (-1, b"x"), "va"),
    ("store", (TOP, b"x"), "va"),
    ("store", (TOP - 1, b"xy", 0), "n"),
    ("store", (0x100, [1, 2, 3]), "data"),
    ("store", (0x100, np.zeros((2, 2), np.uint8)), "data"),
    ("store", (0x100, b"x", RAM), "pa"),
    ("inv_line", (-1,), "va"),
    ("inv_line", (TOP,), "va"),
    ("clean_line", (TOP + 5,), "va"),
    ("flush_line", (-32,), "va"),
    ("probe", (TOP,), "va"),
    ("inv_range", (-1, 0x10), "start"),
    ("inv_range", (0x1100, 0x1080), "end"),   # end < start
    ("clean_range", (0x1000, TOP + 1), "end"),
    ("flush_range", (TOP, TOP), "start"),
    ("flush_range", (0x1000, -1), "end"),
    ("inv_range", (4096.0, 0x1020), "start"),
    ("ram_read", (RAM, 1), "pa"),
    ("ram_read", (0, -1), "n"),
    ("ram_write", (RAM - 1, b"ab"), "pa"),
]


@pytest.mark.parametrize("method, args, name", BAD_CALLS,
                         ids=[f"{m}{a!r}"[:60] for m, a, _ in BAD_CALLS])
def test_bad_call_names_the_argument_and_changes_nothing(method, args, name):
    c = busy_cache()
    assert_rejected(c, getattr(c, method), *args, name=name)


def test_load_and_store_with_pa_at_another_offset_in_the_line():
    """BUG if it fails. The line's PA is ``pa - (va % line)``: with ``pa`` at a different
    offset in the line than ``va`` that is not the start of a line (it can be negative and
    fills read bytes outside RAM). A physical address keeps the virtual address's offset
    (at least within the line), so such a call must be refused."""
    c = busy_cache()
    assert_rejected(c, c.load, 0x2004, 4, 0x3000, name="pa")
    assert_rejected(c, c.load, 0x2001, 4, 0x0, name="pa")
    assert_rejected(c, c.store, 0x2004, b"abcd", 0x3000, name="pa")


def test_ram_that_ends_inside_a_line():
    """BUG if it fails. With ram_size not a multiple of the line, a fill of the last line reads
    (and its write-back writes) bytes past the end of RAM. Either the size is refused, or the
    access that would need those bytes is."""
    try:
        c = Cache(size=1024, ways=4, line=32, ram_size=100)
    except ValueError as e:
        assert "ram_size" in str(e)
        return
    assert_rejected(c, c.load, 96, 4, name="pa", ram=100)


# ---------------------------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------------------------

A = np.array


BAD_REPLAYS = [
    ((A([0, 1]), A([0x100]), A([4, 4])), "kinds"),          # lengths differ
    ((A([0]), A([0x100]), A([4, 4])), "sizes"),
    ((A([[0, 1]]), A([[0x100, 0x104]]), A([[4, 4]])), "kinds"),   # not 1-D
    ((A([6]), A([0x100]), A([4])), "kinds"),
    ((A([8]), A([0x100]), A([4])), "kinds"),
    ((A([-1]), A([0x100]), A([4])), "kinds"),
    ((A([0]), A([-4]), A([4])), "addrs"),
    ((A([0]), A([RAM]), A([1])), "addrs"),
    ((A([1]), A([RAM - 2]), A([4])), "addrs"),               # runs past the end of RAM
    ((A([0]), A([0x100]), A([-1])), "sizes"),
]


@pytest.mark.parametrize("args, name", BAD_REPLAYS, ids=[str(i) for i in range(len(BAD_REPLAYS))])
def test_bad_replay_names_the_argument_and_changes_nothing(args, name):
    c = busy_cache()
    if all(a.ndim == 1 for a in args):
        # a good store first: a bad array must reject the whole trace, not stop half way
        args = [np.concatenate([A([v]), a]) for a, v in zip(args, (1, 0x1004, 4))]
    assert_rejected(c, c.replay, *args, name=name)


def test_empty_replay_is_fine():
    c = busy_cache()
    before = snapshot(c)
    assert c.replay(A([], np.int64), A([], np.int64), A([], np.int64)) == 0
    assert snapshot(c) == before


# trace arrays that are not 1-D int arrays, hold values no int64 can, or whose addr + size
# would wrap around int64 (and pass a naive bounds check): refused, naming the element
BIG = 1 << 62
BAD_RAW_REPLAYS = [
    ((None, None), "kinds:"),
    (({}, {}), "kinds:"),
    (("01", [0, 0]), "kinds:"),
    (([[0], [1, 2]], [0, 0]), "kinds:"),                    # ragged
    ((["a"], [0]), "kinds[0]='a'"),
    (([0.7], [0]), "kinds[0]=0.7"),
    (([0, 1.0], [0, 0]), "kinds[1]=1.0"),
    (([0, True], [0, 0]), "kinds[1]=True"),
    (([0, 2**64], [0, 0]), "kinds[1]="),
    (([0], [2**64]), "addrs[0]=0x10000000000000000"),
    (([0], [-(2**70)]), "addrs[0]="),
    (([0], [None]), "addrs[0]=None"),
    (([0], A([2**64 - 1], np.uint64)), "addrs[0]=0xffffffffffffffff"),
    (([0, 1], [BIG, BIG], [BIG, BIG]), "addrs[0]=0x4000000000000000"),
    (([0, 1], [0x100, 0x100], [4, BIG]), "sizes[1]="),
    (([1, 0], [0x100, 0x104], [4, 2**64]), "sizes[1]="),
    (([0], [0x100], [1.0]), "sizes[0]=1.0"),
    (([0], [0x100], 5), "sizes:"),
    (([0, 1], [0x100, 0x100], [4]), "same length"),
]


@pytest.mark.parametrize("args, name", BAD_RAW_REPLAYS,
                         ids=[f"{i}-{n}" for i, (_, n) in enumerate(BAD_RAW_REPLAYS)])
def test_bad_raw_replay_names_the_element_and_changes_nothing(args, name):
    c = busy_cache()
    raw = (c._S.copy(), c._B.copy())
    assert_rejected(c, c.replay, *args, name=name)
    assert np.array_equal(raw[0], c._S) and np.array_equal(raw[1], c._B)
    c.flush_all()                                           # still usable


def test_replay_takes_lists_tuples_and_any_int_dtype():
    c1, c2 = busy_cache(), busy_cache()
    assert c1.replay([1, 0, 5], (0x1004, 0x2000, 0x1000), [4, 8, 1]) == 3
    assert c2.replay(A([1, 0, 5], np.uint8), A([0x1004, 0x2000, 0x1000], np.uint32),
                     A([4, 8, 1], np.int16)) == 3
    assert c1.replay([], []) == 0
    assert snapshot(c1) == snapshot(c2)


BAD_SEEDS = [None, [1], "x", -1, 1.5, True]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_bad_seed_names_it(seed):
    with pytest.raises(ValueError, match=r"^seed="):
        Cache(size=1024, ways=4, ram_size=RAM, seed=seed)


def test_good_seeds():
    assert Cache(size=1024, ram_size=RAM, replacement="random", seed=np.int64(3)) is not None
    assert Cache(size=1024, ram_size=RAM, seed=2**70) is not None


def test_preset_rejects_an_unknown_argument_naming_it():
    with pytest.raises(ValueError, match=r"^foo=1: not an argument of Cache.*ram_size"):
        Cache.from_preset("arm926", foo=1)


@pytest.mark.parametrize("method, args, name", [
    ("ram_read", (-1, 4), "pa=-0x1"),
    ("ram_read", (RAM - 2, 4), "pa=0xfffe"),
    ("ram_read", (TOP - 2, 4), "pa + n"),
    ("ram_write", (-1, b"ab"), "pa=-0x1"),
])
def test_ram_access_names_pa(method, args, name):
    c = busy_cache()
    assert_rejected(c, getattr(c, method), *args, name=name)
