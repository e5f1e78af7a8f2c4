"""Scenarios (emu.exec.scenario): the Python API and TOML files describe the same thing; result
references, ``fill``, setup ops with ``repeat``; validation errors name the task, op and field.
"""

import copy
import re
import textwrap

import pytest

from emu import consts as K
from emu.exec.scenario import Scenario

PKMAP_BASE = 0xBFE00000

# The module docstring's example, plus a description and a second task.
DOC_TOML = textwrap.dedent("""\
    name = "docs example"
    description = "the example of the scenario module docstring"

    [machine]
    last_pkmap = 8
    dma_pinning = "page_address"
    kmap_high_get = false

    [[setup]]
    op = "kmap"
    pfn = 300
    repeat = 3

    [[task]]
    name = "writer"
    cpu = 0
    ops = [
      { op = "kmap", pfn = 400, as = "v" },
      { op = "fill", va = "v", n = 64, byte = 0xAB },
      { op = "write", va = "v+2048", data = "c0ffee" },
      { op = "kunmap", pfn = 400 },
    ]

    [[task]]
    name = "reader"
    ops = [ { op = "read", va = 0xC0001000, n = 8 } ]

    [[irq]]
    name = "nic"
    line = 0
    cpu = 0
    ops = [ { op = "dma_map_page", pfn = 500, size = 4096, direction = "FROM_DEVICE" } ]
    """)


def doc_python():
    """The same scenario through the Python API."""
    sc = Scenario(name="docs example", machine={"last_pkmap": 8, "dma_pinning": "page_address",
                                                "kmap_high_get": False},
                  setup=[{"op": "kmap", "pfn": 300, "repeat": 3}],
                  description="the example of the scenario module docstring")
    sc.task("writer", [
        {"op": "kmap", "pfn": 400, "as": "v"},
        {"op": "fill", "va": "v", "n": 64, "byte": 0xAB},
        {"op": "write", "va": "v+2048", "data": "c0ffee"},
        {"op": "kunmap", "pfn": 400},
    ], cpu=0)
    sc.task("reader", [{"op": "read", "va": 0xC0001000, "n": 8}])
    sc.irq("nic", [{"op": "dma_map_page", "pfn": 500, "size": 4096,
                    "direction": "FROM_DEVICE"}], line=0, cpu=0)
    return sc


def write_toml(tmp_path, text, name="sc.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# ---------------------------------------------------------------------------------------------
# Python API and TOML
# ---------------------------------------------------------------------------------------------


def test_toml_and_python_api_load_the_same_scenario(tmp_path):
    from_file = Scenario.from_toml(write_toml(tmp_path, DOC_TOML))
    assert from_file.to_dict() == doc_python().validate().to_dict()


def test_to_dict_round_trips_through_from_dict():
    d = doc_python().to_dict()
    assert Scenario.from_dict(copy.deepcopy(d)).to_dict() == d


def test_toml_without_a_name_is_named_after_its_file(tmp_path, monkeypatch):
    """Its file name, not the path as typed: the name is in replay tokens, and the same file
    must give the same token from any working directory."""
    p = write_toml(tmp_path, DOC_TOML.replace('name = "docs example"\n', ""), "mine.toml")
    assert Scenario.from_toml(p).name == "mine.toml"
    monkeypatch.chdir(tmp_path)
    assert Scenario.from_toml("mine.toml").to_dict() == Scenario.from_toml(p).to_dict()


def test_toml_and_python_scenarios_run_identically(tmp_path):
    """Same dict, same machine, same run (same trace)."""
    a = Scenario.from_toml(write_toml(tmp_path, DOC_TOML)).build(trace_events=1 << 14)
    b = doc_python().build(trace_events=1 << 14)
    ra, rb = a.run(trace=True), b.run(trace=True)
    assert ra.outcome == "done"
    assert ra == rb


def test_invalid_toml_syntax_is_a_value_error(tmp_path):
    p = write_toml(tmp_path, "[[task]\nname = 'x'\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        Scenario.from_toml(p)


# ---------------------------------------------------------------------------------------------
# Result references, fill, setup
# ---------------------------------------------------------------------------------------------


def _one_task(ops, setup=(), **machine):
    sc = Scenario("t", machine={"last_pkmap": 8, **machine}, setup=list(setup))
    sc.task("t", ops)
    return sc


def test_result_references_name_an_earlier_result_plus_an_offset():
    sc = _one_task([
        {"op": "kmap_high", "pfn": 300, "as": "v"},
        {"op": "write", "va": "v", "data": "01"},
        {"op": "write", "va": "v+2048", "data": "c0ffee"},
        {"op": "write", "va": "v + 0x10", "data": "77"},
        {"op": "kmap_high", "pfn": 301, "as": "w"},
        {"op": "write", "va": "w-1", "data": "99"},           # last byte of page 300's slot
    ])
    ld = sc.build()
    assert ld.run().outcome == "done"
    m = ld.machine
    v, w = m.page_address(300), m.page_address(301)
    assert v == PKMAP_BASE + 1 * 4096 and w == PKMAP_BASE + 2 * 4096
    assert m.read(v, 1) == b"\x01"
    assert m.read(v + 2048, 3) == bytes.fromhex("c0ffee")
    assert m.read(v + 0x10, 1) == b"\x77"
    assert m.read(w - 1, 1) == b"\x99"
    assert m.read(v + 1, 1) != b"\x01"                       # nothing else was written


def test_result_reference_to_dma_handle():
    """``dma_addr = "h"`` is what dma_map_page returned (the page's bus address)."""
    sc = _one_task([
        {"op": "dma_map_page", "pfn": 40, "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_write", "dma_addr": "h+16", "data": "a5a5"},
        {"op": "dma_unmap_page", "dma_addr": "h", "direction": "FROM_DEVICE"},
    ])
    ld = sc.build()
    r = ld.run()
    assert r.outcome == "done", r.message
    m = ld.machine
    assert m.phys_read(m.pfn_to_phys(40) + 16, 2) == bytes.fromhex("a5a5")


def test_fill_is_a_read_then_a_write():
    """fill loads the lines (ARM926 allocates on read misses only), then stores into them: the
    lines end up cached and dirty. A plain write to uncached lines goes around the cache."""
    fill = _one_task([{"op": "kmap_high", "pfn": 300, "as": "v"},
                      {"op": "fill", "va": "v", "byte": 0xAB, "n": 64}]).build(1 << 14)
    rw = _one_task([{"op": "kmap_high", "pfn": 300, "as": "v"},
                    {"op": "read", "va": "v", "n": 64},
                    {"op": "write", "va": "v", "byte": 0xAB, "n": 64}]).build(1 << 14)
    wr = _one_task([{"op": "kmap_high", "pfn": 300, "as": "v"},
                    {"op": "write", "va": "v", "byte": 0xAB, "n": 64}]).build(1 << 14)

    def accesses(ld):
        r = ld.run(trace=True)
        assert r.outcome == "done"
        return [ln.split(":", 1)[1].strip() for ln in r.trace
                if ": load " in ln or ": store " in ln]

    fa, rwa, wra = accesses(fill), accesses(rw), accesses(wr)
    assert fa == rwa
    assert [a.split()[0] for a in fa] == ["load"] * 2 + ["store"] * 2
    assert [a.split()[0] for a in wra] == ["store"] * 2

    v = PKMAP_BASE + 4096
    for line in (v, v + 32):
        rec = fill.machine.cache.probe(line)
        assert rec is not None and rec.dirty
        assert rec.data == b"\xab" * 32
        assert wr.machine.cache.probe(line) is None          # no write-allocate
    assert fill.machine.read(v, 64) == b"\xab" * 64
    assert wr.machine.read(v, 64) == b"\xab" * 64


def test_data_pool_read_buffers_first_restored_for_every_run():
    """The data pool holds the read buffers first (``H_DATA_RW`` bytes, what a run can
    write, restored with the snapshot) and then the data that operations write (left
    alone by restores): a read sees what the write before it stored, every run."""
    ld = _one_task([{"op": "kmap_high", "pfn": 300, "as": "v"},
                    {"op": "write", "va": "v+8", "data": "a1a2a3a4"},
                    {"op": "read", "va": "v+6", "n": 6},
                    {"op": "fill", "va": "v+64", "byte": 0x5C, "n": 3}]).build()
    S, B = ld.machine._S, ld.machine._B
    dp, rw, size = int(S[K.H_B_DATA]), int(S[K.H_DATA_RW]), int(S[K.H_DATA_SIZE])
    assert (rw, size) == (6 + 3, 6 + 3 + 4 + 3)
    assert bytes(B[dp + rw:dp + size]) == bytes.fromhex("a1a2a3a4") + b"\x5c" * 3
    for _ in range(2):
        assert bytes(B[dp:dp + rw]) == bytes(rw)
        assert ld.run().outcome == "done"
        fresh = bytes([K.RAM_POISON])                       # never-written RAM
        assert bytes(B[dp:dp + 6]) == fresh * 2 + bytes.fromhex("a1a2a3a4")
        assert bytes(B[dp + 6:dp + rw]) == fresh * 3            # what the fill read
        assert bytes(B[dp + rw:dp + size]) == bytes.fromhex("a1a2a3a4") + b"\x5c" * 3
        ld.snapshot.restore(ld.machine)


def test_setup_repeat_advances_the_pfn():
    ld = _one_task([{"op": "kmap_flush_unused"}],
                   setup=[{"op": "kmap", "pfn": 300, "repeat": 3}]).build()
    m = ld.machine
    assert [m.pkmap_page(i) for i in range(4)] == [-1, 300, 301, 302]
    assert [int(c) for c in m.pkmap_count[:5]] == [0, 2, 2, 2, 0]
    assert m.last_pkmap_nr == 3


def test_setup_repeat_with_step_and_numbered_results():
    """``step`` spaces the pfns; ``as`` names the k-th repetition ``name_k``."""
    ld = _one_task([{"op": "kmap_flush_unused"}], setup=[
        {"op": "kmap", "pfn": 300, "repeat": 3, "step": 2, "as": "p"},
        {"op": "write", "va": "p_2+8", "data": "5a5b"},
        {"op": "write", "va": "p", "data": "01"},
    ]).build()
    m = ld.machine
    assert [m.pkmap_page(i) for i in range(1, 4)] == [300, 302, 304]
    assert m.read(m.page_address(304) + 8, 2) == bytes.fromhex("5a5b")
    assert m.read(m.page_address(300), 1) == b"\x01"


def test_setup_runs_before_any_task_and_is_restored_for_every_run():
    """Setup is done once at build; every run starts from that state."""
    sc = _one_task([{"op": "kunmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}],
                   setup=[{"op": "kmap", "pfn": 300}, {"op": "kmap", "pfn": 300}])
    ld = sc.build()
    assert int(ld.machine.pkmap_count[1]) == 3
    for _ in range(2):
        r = ld.run()
        assert r.outcome == "done", r.message
        assert int(ld.machine.pkmap_count[1]) == 1


def test_task_and_irq_defaults():
    sc = Scenario("d")
    sc.task("a", [{"op": "kmap_flush_unused"}])
    sc.irq("x", [{"op": "kmap_flush_unused"}])
    sc.irq("y", [{"op": "kmap_flush_unused"}])
    d = sc.validate().to_dict()
    assert d["task"][0]["cpu"] == 0
    assert [(q["line"], q["cpu"], q["count"]) for q in d["irq"]] == [(0, 0, 1), (1, 0, 1)]


# ---------------------------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------------------------


def base():
    return {
        "name": "v",
        "machine": {"last_pkmap": 8},
        "task": [{"name": "t", "ops": [
            {"op": "kmap_high", "pfn": 300, "as": "v"},
            {"op": "write", "va": "v", "data": "00ff"},
            {"op": "dma_map_page", "pfn": 301, "direction": "TO_DEVICE", "as": "h"},
        ]}],
        "irq": [{"name": "nic", "line": 0, "ops": [{"op": "kmap_high_get", "pfn": 300}]}],
    }


def load(d):
    """Everything a user's scenario goes through before it runs."""
    return Scenario.from_dict(d).build()


def test_the_base_scenario_is_valid():
    assert load(base()).run().outcome == "done"


def _set(path, value):
    """A mutation of base(): set the item at ``path`` (keys/indices) to ``value``."""
    def mut(d):
        x = d
        for k in path[:-1]:
            x = x[k]
        x[path[-1]] = value
        return d
    return mut


def _del(path):
    def mut(d):
        x = d
        for k in path[:-1]:
            x = x[k]
        del x[path[-1]]
        return d
    return mut


def _add_irq(**q):
    def mut(d):
        d["irq"].append({"ops": [{"op": "kmap_flush_unused"}], **q})
        return d
    return mut


BAD = [
    ("unknown op", _set(("task", 0, "ops", 1, "op"), "frob"),
     ["task 't' op 1", "op='frob'", "unknown", "kmap_high"]),
    ("unknown op in irq", _set(("irq", 0, "ops", 0, "op"), "frob"),
     ["irq 'nic' op 0", "op='frob'"]),
    ("unknown field", _set(("task", 0, "ops", 0, "pfm"), 301),
     ["task 't' op 0", "unknown field", "pfm", "kmap_high"]),
    ("bad direction", _set(("task", 0, "ops", 2, "direction"), "SIDEWAYS"),
     ["task 't' op 2", "direction='SIDEWAYS'", "FROM_DEVICE"]),
    ("direction out of range", _set(("task", 0, "ops", 2, "direction"), 3),
     ["task 't' op 2", "direction=3"]),
    ("bad hex data", _set(("task", 0, "ops", 1, "data"), "zz"),
     ["task 't' op 1", "data='zz'", "hex"]),
    ("byte out of range", _set(("task", 0, "ops", 1),
                               {"op": "write", "va": "v", "byte": 256, "n": 4}),
     ["task 't' op 1", "byte=256"]),
    ("byte without n", _set(("task", 0, "ops", 1), {"op": "write", "va": "v", "byte": 1}),
     ["task 't' op 1", "n=None"]),
    ("write without data", _set(("task", 0, "ops", 1), {"op": "write", "va": "v"}),
     ["task 't' op 1", "data"]),
    ("unknown result name", _set(("task", 0, "ops", 1, "va"), "w+8"),
     ["task 't' op 1", "va='w+8'", "earlier result", "v"]),
    ("forward reference", _set(("task", 0, "ops", 0, "pfn"), "h"),
     ["task 't' op 0", "pfn='h'"]),
    ("missing argument", _del(("task", 0, "ops", 0, "pfn")),
     ["task 't' op 0", "needs pfn"]),
    ("bool argument", _set(("task", 0, "ops", 0, "pfn"), True),
     ["task 't' op 0", "pfn=True"]),
    ("bad repeat", _set(("task", 0, "ops", 0, "repeat"), 0),
     ["task 't' op 0", "repeat=0"]),
    ("op without op key", _set(("task", 0, "ops", 1), {"va": "v"}),
     ["task 't' op 1", "'op'"]),
    ("unknown machine key", _set(("machine", "lastpkmap"), 8),
     ["machine", "unknown key", "lastpkmap", "last_pkmap"]),
    ("bad machine value", _set(("machine", "last_pkmap"), 3),
     ["last_pkmap"]),
    ("duplicate task names", lambda d: d["task"].append(copy.deepcopy(d["task"][0])) or d,
     ["unique", "'t'"]),
    ("task and irq share a name", _set(("irq", 0, "name"), "t"),
     ["unique", "'t'"]),
    ("task on a missing cpu", _set(("task", 0, "cpu"), 1),
     ["'t'", "cpu=1", "ncpus=1"]),
    ("irq on a missing cpu", _set(("irq", 0, "cpu"), 2),
     ["'nic'", "cpu=2"]),
    ("irq line out of range", _set(("irq", 0, "line"), K.MAXIRQ),
     ["irq line", str(K.MAXIRQ)]),
    ("negative irq line", _set(("irq", 0, "line"), -1),
     ["irq line", "-1"]),
    ("duplicate irq lines", _add_irq(name="nic2", line=0),
     ["irq line", "distinct"]),
    ("no task", _set(("task",), []),
     ["at least one [[task]]"]),
    ("task without ops", _set(("task", 0), {"name": "t"}),
     ["task 0", "ops"]),
    ("unknown section", _set(("tasks",), []),
     ["unknown section", "tasks"]),
    ("setup op error", _set(("setup",), [{"op": "kmap", "pfn": 10 ** 7}]),
     ["setup op 0", "pfn"]),
    ("setup op that cannot run in setup", _set(("setup",), [{"op": "wait_irq", "line": 0}]),
     ["setup op 0", "wait_irq"]),
    # constant arguments out of the machine's range: reported when the scenario loads
    ("pfn past RAM", _set(("task", 0, "ops", 0, "pfn"), 10 ** 9),
     ["task 't' op 0", "kmap_high: pfn=1000000000", "highmem", "range(256, 512)"]),
    ("lowmem pfn to kmap_high", _set(("task", 0, "ops", 0, "pfn"), 5),
     ["task 't' op 0", "pfn=5", "range(256, 512)"]),
    ("kmap of a pfn past RAM", _set(("task", 0, "ops", 0), {"op": "kmap", "pfn": 512, "as": "v"}),
     ["task 't' op 0", "kmap: pfn=512", "range(0, 512)"]),
    ("negative dma size", _set(("task", 0, "ops", 2, "size"), -4096),
     ["task 't' op 2", "size=-4096", "positive"]),
    ("dma page past RAM", _set(("task", 0, "ops", 2, "pfn"), 100000),
     ["task 't' op 2", "dma_map_page: pfn=100000"]),
    ("dma offset past RAM", _set(("task", 0, "ops", 2, "offset"), 1 << 40),
     ["task 't' op 2", "offset="]),
    ("unmap past RAM", lambda d: d["task"][0]["ops"].append(
        {"op": "dma_unmap_page", "dma_addr": 1 << 40, "direction": 1}) or d,
     ["task 't' op 3", "dma_addr=0x10000000000", "inside RAM"]),
    ("device write past RAM", lambda d: d["task"][0]["ops"].append(
        {"op": "device_write", "dma_addr": 1 << 40, "data": "aa"}) or d,
     ["task 't' op 3", "device_write: dma_addr=0x10000000000"]),
    ("device read past RAM", lambda d: d["task"][0]["ops"].append(
        {"op": "device_read", "dma_addr": (512 << 12) - 2, "n": 4}) or d,
     ["task 't' op 3", "device_read: dma_addr"]),
    ("device_start on a missing line", lambda d: d["task"][0]["ops"].append(
        {"op": "device_start", "dma_addr": 0, "data": "aa", "line": 99}) or d,
     ["task 't' op 3", "line=99", f"0..{K.MAXIRQ - 1}"]),
    ("wait_irq on a missing line", lambda d: d["task"][0]["ops"].append(
        {"op": "wait_irq", "line": 99}) or d,
     ["task 't' op 3", "wait_irq: line=99"]),
    ("wait_irq for no interrupt", lambda d: d["task"][0]["ops"].append(
        {"op": "wait_irq", "line": 0, "count": 0}) or d,
     ["task 't' op 3", "count=0", ">= 1"]),
    ("kmap_high_get without ARCH_NEEDS_KMAP_HIGH_GET", _set(("machine", "kmap_high_get"), False),
     ["irq 'nic' op 0", "kmap_high_get", "kmap_high_get=False"]),
    ("read at a negative address", lambda d: d["task"][0]["ops"].append(
        {"op": "read", "va": -1, "n": 4}) or d,
     ["task 't' op 3", "read: va=-0x1", "kernel virtual address in [0, 0x100000000)"]),
    ("read at an address past 32 bits", lambda d: d["task"][0]["ops"].append(
        {"op": "read", "va": (1 << 63) - 1, "n": 4}) or d,
     ["task 't' op 3", "read: va=0x7fffffffffffffff"]),
    ("read past the end of the address space", lambda d: d["task"][0]["ops"].append(
        {"op": "read", "va": 0xFFFFFFFE, "n": 4}) or d,
     ["task 't' op 3", "read: n=4", "32-bit address space"]),
    ("fill past the end of the address space", lambda d: d["task"][0]["ops"].append(
        {"op": "fill", "va": 0xFFFFFFFF, "byte": 1, "n": 2}) or d,
     ["task 't' op 3", "n=2", "32-bit address space"]),     # a fill reads, then writes
    # ints the program's 64-bit words cannot hold
    ("pfn of 2**64", _set(("task", 0, "ops", 0, "pfn"), 1 << 64),
     ["task 't' op 0", "pfn=18446744073709551616: must fit in 64 bits"]),
    ("pfn of -2**64 as a string", _set(("task", 0, "ops", 0, "pfn"), str(-(1 << 64))),
     ["task 't' op 0", "must fit in 64 bits"]),
    ("result plus 2**64", _set(("task", 0, "ops", 1), {"op": "read", "va": f"v+{1 << 64}", "n": 4}),
     ["task 't' op 1", "va='v+18446744073709551616'", "below 2**32"]),
    ("result minus 2**63", _set(("task", 0, "ops", 1), {"op": "read", "va": f"v-{1 << 63}", "n": 4}),
     ["task 't' op 1", "below 2**32"]),
    # sizes that would take the machine's memory or time
    ("huge repeat", _set(("task", 0, "ops", 0, "repeat"), 10 ** 9),
     ["task 't' op 0", "repeat=1000000000", str(K.MAX_REPEAT)]),
    ("huge fill", _set(("task", 0, "ops", 1), {"op": "fill", "va": "v", "byte": 1, "n": 10 ** 11}),
     ["task 't' op 1", "n=100000000000", str(K.MAX_OP_BYTES)]),
    ("huge read", _set(("task", 0, "ops", 1), {"op": "read", "va": "v", "n": 10 ** 11}),
     ["task 't' op 1", "n=100000000000"]),
    # repeats of the largest op: the data was made before any limit (2 TiB: MemoryError, or
    # the host's memory until the OOM killer came)
    ("op data past the machine's limit", _set(("task", 0, "ops", 1), {
        "op": "fill", "va": "v", "byte": 1, "n": K.MAX_OP_BYTES, "repeat": K.MAX_REPEAT,
        "step": 0}),
     ["task 't' op 1", "read and write 4328521728 bytes", "at most 4294967296"]),
    # a length given as a string of an int: it passed unchecked (MemoryError, or a bare
    # "invalid literal for int()" for byte = N)
    ("huge read length as a string", _set(("task", 0, "ops", 1),
                                          {"op": "read", "va": "v", "n": "0x100000000"}),
     ["task 't' op 1", "n='0x100000000'", str(K.MAX_OP_BYTES)]),
    ("huge fill length as a string", _set(("task", 0, "ops", 1),
                                          {"op": "fill", "va": "v", "byte": 1, "n": "99999999999"}),
     ["task 't' op 1", "n='99999999999'", str(K.MAX_OP_BYTES)]),
    ("fill length naming a result", _set(("task", 0, "ops", 1),
                                          {"op": "fill", "va": "v", "byte": 1, "n": "v"}),
     ["task 't' op 1", "n='v'", "byte = N takes n = LENGTH"]),
    ("setup write length naming a result", _set(("setup",), [
        {"op": "kmap", "pfn": 300, "as": "v"}, {"op": "write", "va": "v", "byte": 1, "n": "v"}]),
     ["setup op 1", "n='v'", "byte = N takes n = LENGTH"]),
    # shapes and types
    ("machine not a table", _set(("machine",), 5), ["machine=5", "table"]),
    ("machine a string", _set(("machine",), "ab"), ["machine='ab'", "table"]),
    ("task not a list", _set(("task",), 5), ["task=5", "list"]),
    ("irq not a list", _set(("irq",), 5), ["irq=5", "list"]),
    ("setup not a list", _set(("setup",), 5), ["setup=5", "list"]),
    ("ops not a list", _set(("task", 0, "ops"), 5), ["task 't'", "ops=5", "list"]),
    ("task name not a string", _set(("task", 0, "name"), [1]), ["names", "strings"]),
    ("irq line not an int", _set(("irq", 0, "line"), [1]), ["irq line", "[1]"]),
    ("op name not a string", _set(("task", 0, "ops", 1, "op"), ["kmap"]),
     ["task 't' op 1", "op=['kmap']", "unknown"]),
    ("result name not a name", _set(("task", 0, "ops", 0, "as"), ["v"]),
     ["task 't' op 0", "as=['v']"]),
    ("repeat step not an int", _set(("task", 0, "ops", 0),
                                    {"op": "kmap_high", "pfn": 300, "repeat": 2, "step": "x"}),
     ["task 't' op 0", "step='x'"]),
    ("negative irq count", _set(("irq", 0, "count"), -1), ["irq 'nic'", "count=-1"]),
    ("fractional irq count", _set(("irq", 0, "count"), 1.5), ["irq 'nic'", "count=1.5"]),
    ("huge irq count", _set(("irq", 0, "count"), 10 ** 20), ["irq 'nic'", "count="]),
    ("irq period a string", _set(("irq", 0, "period"), "x"), ["irq 'nic'", "period='x'"]),
    ("irq first before time", _set(("irq", 0, "first"), -5), ["irq 'nic'", "first=-5"]),
    # its firings passed the int64 clock: the timed run reported 'deadlock: ... waits for IRQ
    # line 0, which will not fire again' with 2**40 firings left
    ("irq firings past the clock", _set(("irq", 0), {
        "name": "nic", "line": 0, "count": 1 << 40, "period": 1 << 48, "first": 0,
        "ops": [{"op": "kmap_high_get", "pfn": 300}]}),
     ["irq 'nic'", "count=1099511627776", "past 4611686018427387904"]),
    ("ncpus a string", _set(("machine", "ncpus"), "2"), ["ncpus='2'"]),
    # the key emu scenario iii --toml prints: a TypeError / OverflowError traceback, or 1.5
    # taken as True
    ("force_kmap_high_get not a bool", _set(("machine", "force_kmap_high_get"), None),
     ["force_kmap_high_get=None", "True or False"]),
    ("force_kmap_high_get a float", _set(("machine", "force_kmap_high_get"), 1.5),
     ["force_kmap_high_get=1.5", "True or False"]),
    ("force_kmap_high_get a table", _set(("machine", "force_kmap_high_get"), {"a": 1}),
     ["force_kmap_high_get={'a': 1}", "True or False"]),
    # keys no table has: a typo used to be ignored
    ("unknown task key", _set(("task", 0, "cpus"), 1),
     ["task 't'", "unknown key(s) ['cpus']", "accepted: name, cpu, ops"]),
    ("unknown irq key", _set(("irq", 0, "lines"), 1),
     ["irq 'nic'", "unknown key(s) ['lines']", "accepted: name, line, cpu, count, period, "
      "first, ops"]),
    ("unknown key of an unnamed task", lambda d: d["task"].append(
        {"ops": [{"op": "kmap", "pfn": 10}], "prio": 1}) or d,
     ["task 1", "['prio']"]),
    # a name for a result an op does not have
    ("as on kunmap_high", lambda d: d["task"][0]["ops"].append(
        {"op": "kunmap_high", "pfn": 300, "as": "z"}) or d,
     ["task 't' op 3", "as='z'", "kunmap_high returns nothing", "kmap, kmap_high"]),
    ("as on fill", _set(("task", 0, "ops", 1), {"op": "fill", "va": "v", "byte": 1, "n": 4,
                                               "as": "f"}),
     ["task 't' op 1", "fill returns nothing"]),
    ("as on a setup write", _set(("setup",), [{"op": "write", "va": 0xC0000000, "data": "aa",
                                               "as": "w"}]),
     ["setup op 0", "write returns nothing"]),
    ("device_start without data", lambda d: d["task"][0]["ops"].append(
        {"op": "device_start", "dma_addr": 0, "line": 0}) or d,
     ["task 't' op 3", "device_start needs data"]),
    # a delay past 2**63 - now wrapped the due clock negative: 'will not fire again'
    ("device_start delay past 2**48", lambda d: d["task"][0]["ops"].append(
        {"op": "device_start", "dma_addr": 0, "data": "aa", "line": 0,
         "cycles": (1 << 63) - 1}) or d,
     ["task 't' op 3", "device_start: cycles=9223372036854775807", "[0, 281474976710656]"]),
]


@pytest.mark.parametrize("mutate, parts", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validation_errors_name_the_problem(mutate, parts):
    d = mutate(base())
    with pytest.raises(ValueError) as ei:
        load(d)
    msg = str(ei.value)
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


def test_a_length_given_as_a_string_of_an_int_is_that_int():
    """``n = "0x10"`` is 16, as other int fields read a string of an int (byte = N's n used
    to raise a bare "invalid literal for int()")."""
    d = base()
    d["setup"] = [{"op": "kmap", "pfn": 302, "as": "s"},
                  {"op": "write", "va": "s", "byte": 7, "n": "0x10"}]
    d["task"][0]["ops"][1:2] = [{"op": "fill", "va": "v", "byte": 9, "n": " 0x10 "},
                                {"op": "read", "va": "v", "n": "16"}]
    ld = load(d)
    assert ld.run().outcome == "done"
    m = ld.machine
    assert m.read(m.page_address(302), 17) == bytes([7]) * 16 + b"Z"
    assert m.read(m.page_address(300), 17) == bytes([9]) * 16 + b"Z"


def test_a_scenario_built_in_code_is_validated_when_it_builds():
    sc = Scenario("x", {"last_pkmap": 8})
    sc.task("a", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}])
    sc.irq("q", [{"op": "kmap_high_get", "pfn": 300}], line=99)
    with pytest.raises(ValueError, match="irq lines"):
        sc.build()
    with pytest.raises(ValueError, match="unique"):
        Scenario("y").task("a", []).task("a", []).build()
    with pytest.raises(ValueError, match="at least one"):
        Scenario("z").build()
    with pytest.raises(ValueError, match="machine: unknown key.*contexts"):
        Scenario("w", {"contexts": 1}).task("a", []).build()
    with pytest.raises(ValueError, match=r"task 'b': ops=None: must be a list"):
        Scenario("v").task("b", None)


def test_a_setup_op_that_fails_in_the_kernel_says_which_op():
    """A setup op runs as a direct call; its KernelBug / PageFault / WouldSleep keeps its
    type and says which setup op it was."""
    from emu import KernelBug, PageFault, WouldSleep
    for setup, err, text in [
            ([{"op": "kunmap", "pfn": 300}], KernelBug, "setup op 0: kunmap_high: page 300"),
            ([{"op": "write", "va": 0, "data": "00"}], PageFault, "setup op 0: Unable to handle"),
            ([{"op": "kmap", "pfn": 300, "repeat": 3}], WouldSleep, "setup op 0: kmap_high")]:
        d = base()
        d["machine"]["last_pkmap"] = 2
        d["setup"] = setup
        with pytest.raises(err) as ei:
            load(d)
        assert str(ei.value).startswith(text), str(ei.value)


def test_a_setup_ops_bad_field_names_the_op_once():
    """The field parsers say which op; the setup runner added it again ('setup op 1: setup
    op 1: n='abc': ...')."""
    for op in ({"op": "read", "va": "v", "n": "abc"},
               {"op": "dma_map_page", "pfn": 300, "direction": "SIDEWAYS"},
               {"op": "write", "va": "v", "data": "zz"}):
        d = base()
        d["setup"] = [{"op": "kmap", "pfn": 302, "as": "v"}, op]
        with pytest.raises(ValueError) as ei:
            load(d)
        assert str(ei.value).startswith("setup op 1: ") and str(ei.value).count("op 1") == 1, \
            str(ei.value)


def test_a_device_chain_past_the_clock_ends_the_timed_run_as_an_error():
    """A handler re-arming its own line with the longest delay ran the clock towards 2**63:
    the due clock wrapped negative and the timed run reported a deadlock ('t waits for IRQ
    line 0, which will not fire again'). The device_start that would pass the clock's end
    stops the run as an error naming it."""
    big = K.MAX_IRQ_TIME
    sc = Scenario("chain", {"last_pkmap": 8})
    sc.task("t", [{"op": "device_start", "dma_addr": 0x100000, "byte": 1, "n": 16, "line": 0,
                   "cycles": big},
                  {"op": "wait_irq", "line": 0, "count": 1_000_000}])
    sc.irq("again", [{"op": "device_start", "dma_addr": 0x100000, "byte": 2, "n": 16,
                      "line": 0, "cycles": big}], line=0)
    r = sc.build().run(K.SCHED_TIMED, [])
    assert r.outcome == "error" and not r.deadlock, r.message
    assert r.message.startswith("irq 'again' op 0: device_start on line 0 at cycle ")
    assert str(K.MAX_TIMED_CLOCK) in r.message


def test_an_argument_computed_out_of_range_stops_the_run_with_a_finding():
    """A result plus a constant is known only when the op runs: the run stops there as an
    error naming the task, op and argument, and nothing reaches the kernel routine."""
    d = base()
    d["task"][0]["ops"].insert(1, {"op": "kmap", "pfn": "v+100000"})
    ld = load(d)
    r = ld.run()
    assert r.outcome == "error" and r.failed
    assert "task 't' op 1: kmap: pfn=" in r.message and "range(0, 512)" in r.message
    d["task"][0]["ops"][1] = {"op": "device_write", "dma_addr": "h+0xF0000000", "data": "aa"}
    d["task"][0]["ops"].append(d["task"][0]["ops"].pop(1))      # after the map that sets h
    r = load(d).run()
    assert r.outcome == "error" and "task 't' op 3: device_write: dma_addr=0x" in r.message
    d = base()
    d["task"][0]["ops"].insert(1, {"op": "read", "va": f"v-{0xC0000000}", "n": 4})
    r = load(d).run()
    assert r.outcome == "error" and "task 't' op 1: read: va=-0x" in r.message
    assert "kernel virtual address" in r.message
    ok = load(base()).run()
    assert ok.outcome == "done"


def test_validation_errors_in_a_toml_file(tmp_path):
    p = write_toml(tmp_path, DOC_TOML.replace('op = "fill"', 'op = "fil"'))
    with pytest.raises(ValueError, match=r"task 'writer' op 1: op='fil': unknown"):
        Scenario.from_toml(p)


def test_bytes_data_serialises_in_ops_and_in_setup():
    """Python callers may give ``data`` as bytes; the scenario's dict form (saved as TOML,
    embedded in replay tokens) must still be plain data, with the bytes as hex."""
    import json

    from emu.exec.explore import make_token, read_token
    sc = _one_task([{"op": "kmap_high", "pfn": 301, "as": "w"},
                    {"op": "write", "va": "w", "data": b"\x03\x04"}],
                   setup=[{"op": "kmap", "pfn": 300, "as": "v"},
                          {"op": "write", "va": "v", "data": b"\x01\x02"}])
    ld = sc.build()
    assert ld.machine.read(ld.machine.page_address(300), 2) == b"\x01\x02"
    d = sc.to_dict()
    assert d["task"][0]["ops"][1]["data"] == "0304"
    assert d["setup"][1]["data"] == "0102"
    json.dumps(d)
    sc2, ch = read_token(make_token(sc, [0, 1]))
    assert sc2.to_dict() == d and ch == [0, 1]


def test_a_handler_that_would_sleep_in_kmap_high_is_a_bug_not_a_deadlock():
    """schedule() in hardirq context is "BUG: scheduling while atomic": with every slot
    pinned a handler's kmap_high cannot wait for a kunmap (nothing would ever run it again)."""
    from emu.exec.explore import explicit_choices, explore
    sc = Scenario("sleeping handler", {"last_pkmap": 2, "lowmem_mb": 1, "highmem_mb": 4})
    sc.task("t", [{"op": "kmap", "pfn": 400}, {"op": "kmap", "pfn": 401},
                  {"op": "kunmap", "pfn": 401}, {"op": "kunmap", "pfn": 400}])
    sc.irq("h", [{"op": "kmap_high", "pfn": 500}, {"op": "kunmap_high", "pfn": 500}], line=3)
    ld = sc.build()
    # t's fourth step ends its second kmap: both slots pinned (the handler's kmap_high wraps)
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 4 of t raise IRQ h"]))
    assert r.outcome == "error" and not r.deadlock
    assert "h: kernel BUG: kmap_high: page 500: scheduling while atomic" in r.message
    ex = explore(sc, bound=1)
    assert ex.deadlocks == 0 and ex.outcomes == {"done": 5, "error": 1}
    assert ex.switches == ["after step 4 of t raise IRQ h"]
    with pytest.raises(ValueError, match="step 9 of t ends the run here; nothing comes after"):
        explicit_choices(ld, ["after step 9 of t raise IRQ h"])


DEVICE_COMPLETION = """
name = "completion irq"
[machine]
last_pkmap = 4
lowmem_mb = 1
highmem_mb = 4
[[task]]
name = "drv"
ops = [
  { op = "dma_map_page", pfn = 300, size = 512, direction = "FROM_DEVICE", as = "h" },
  { op = "device_start", dma_addr = "h", byte = 0x5C, n = 512, line = 0 },
  { op = "wait_irq", line = 0 },
  { op = "dma_unmap_page", dma_addr = "h", size = 512, direction = "FROM_DEVICE" },
]
[[irq]]
name = "done"
line = 0
%s
ops = [ { op = "read", va = 0xc0001000, n = 4 } ]
"""


def test_a_device_completion_line_fires_only_when_its_transfer_ends(tmp_path):
    """Without a count, a line some device_start raises gets no spontaneous raise: an early
    "raise IRQ" would satisfy wait_irq before the device wrote anything (a hunt found the
    transfer then never landed, silently). An explicit count still allows them."""
    from emu.exec.explore import explicit_choices, explore
    p = tmp_path / "dev.toml"
    p.write_text(DEVICE_COMPLETION % "")
    sc = Scenario.from_toml(p)
    assert "count" not in sc.to_dict()["irq"][0]
    ld = sc.build()
    with pytest.raises(ValueError, match="done has been raised as often as its count allows"):
        explicit_choices(ld, ["at start raise IRQ done"])
    r = ld.run(K.SCHED_DFS, [])
    assert r.outcome == "done"
    assert ld.machine.phys_read(300 << 12, 512) == bytes([0x5C]) * 512
    ex = explore(sc, bound=2)
    assert ex.failures == 0 and ex.outcomes == {"done": ex.schedules}
    p.write_text(DEVICE_COMPLETION % "count = 1")
    ld = Scenario.from_toml(p).build()
    assert explicit_choices(ld, ["at start raise IRQ done"]) == [1]



@pytest.mark.parametrize("line", ['"0"', '"0x0"'])
def test_a_device_completion_line_given_as_a_string_of_an_int_is_one_too(tmp_path, line):
    """A device_start's line = "0" runs on line 0 (a string of an int is that int), but the
    line did not count as a device's completion line: its handler got a raise of its own
    (count 1), which satisfied wait_irq before the device wrote anything (explore: 28
    schedules at bound 1 instead of 2), and to_dict wrote count = 1 into the scenario."""
    from emu.exec.explore import explicit_choices, explore
    p = tmp_path / "dev.toml"
    p.write_text((DEVICE_COMPLETION % "").replace("line = 0 }", f"line = {line} }}"))
    sc = Scenario.from_toml(p)
    assert sc.tasks[0].ops[1]["line"] == line.strip('"')
    assert "count" not in sc.to_dict()["irq"][0]
    ld = sc.build()
    with pytest.raises(ValueError, match="done has been raised as often as its count allows"):
        explicit_choices(ld, ["at start raise IRQ done"])
    p.write_text(DEVICE_COMPLETION % "")
    assert explore(ld, bound=1).schedules == explore(Scenario.from_toml(p), bound=1).schedules

def test_more_contexts_than_a_decision_keeps_alternatives_is_refused():
    """Every task and handler can be an alternative of one decision; a decision keeps at most
    MAXALT of them, so a larger scenario would silently lose schedules (and 'at start run'
    of the last tasks would say they cannot run)."""
    sc = Scenario("many", {"last_pkmap": 8})
    for i in range(K.MAXALT):
        sc.task(f"t{i}", [{"op": "kmap_flush_unused"}])
    ld = sc.build()
    ld.run()
    assert ld.alternatives_at(0)[0] == K.MAXALT        # all of them offered at the start
    sc.irq("q", [{"op": "kmap_flush_unused"}])
    with pytest.raises(ValueError, match=rf"{K.MAXALT} tasks and 1 irqs; at most {K.MAXALT}"):
        sc.build()
    with pytest.raises(ValueError, match="at most"):
        Scenario.from_dict(sc.to_dict())


def test_repeat_advances_a_pfn_given_as_a_string_of_an_int():
    """``pfn = "0x12c"`` is an int like ``pfn = 300`` everywhere else: a repeat used to map
    page 300 three times (count 4) instead of 300, 301, 302."""
    ld = _one_task([{"op": "kmap_flush_unused"}],
                   setup=[{"op": "kmap", "pfn": "0x12c", "repeat": 3}]).build()
    m = ld.machine
    assert [m.pkmap_page(i) for i in range(4)] == [-1, 300, 301, 302]
    ld = _one_task([{"op": "kmap", "pfn": "300", "repeat": 2, "step": 2},
                    {"op": "kunmap", "pfn": 300}, {"op": "kunmap", "pfn": 302}]).build()
    r = ld.run()
    assert r.outcome == "done", r.message
    assert [ld.machine.pkmap_page(i) for i in range(3)] == [-1, 300, 302]


BAD_MORE = [
    ("repeat of a pfn that names a result", lambda d: d["task"][0]["ops"].append(
        {"op": "kunmap_high", "pfn": "v", "repeat": 2}) or d,
     ["task 't' op 3", "pfn='v' with repeat=2", "cannot be advanced", "step = 0"]),
    ("data bytes on an op without data", _set(("task", 0, "ops", 0, "byte"), 3),
     ["task 't' op 0", "unknown field(s) ['byte'] for op 'kmap_high'", "accepted: op, pfn"]),
    ("n on kmap_flush_unused", lambda d: d["task"][0]["ops"].append(
        {"op": "kmap_flush_unused", "n": 4}) or d,
     ["task 't' op 3", "unknown field(s) ['n']"]),
    ("data and byte", _set(("task", 0, "ops", 1), {"op": "write", "va": "v", "data": "00ff",
                                                   "byte": 1, "n": 2}),
     ["task 't' op 1", "data= and byte/n=", "one way"]),
    ("device_start on a line no irq handles", lambda d: d["task"][0]["ops"].append(
        {"op": "device_start", "dma_addr": 0, "data": "aa", "line": 3}) or d,
     ["task 't' op 3", "device_start: line=3", "no [[irq]] handles line 3",
      "device would never write", "handlers' lines: 0"]),
    ("wait_irq on a line no irq handles", lambda d: d["task"][0]["ops"].append(
        {"op": "wait_irq", "line": 5}) or d,
     ["task 't' op 3", "wait_irq: line=5", "no [[irq]] handles line 5", "never end"]),
]


@pytest.mark.parametrize("mutate, parts", [b[1:] for b in BAD_MORE],
                         ids=[b[0] for b in BAD_MORE])
def test_more_validation_errors_name_the_problem(mutate, parts):
    test_validation_errors_name_the_problem(mutate, parts)


def test_a_top_level_key_written_after_machine_says_where_it_belongs(tmp_path):
    """TOML puts ``setup = [...]`` written after ``[machine]`` into the machine table; the
    error says so instead of only listing the Machine arguments."""
    p = write_toml(tmp_path, '[machine]\nlast_pkmap = 4\nsetup = [ { op = "kmap", pfn = 300 } ]\n'
                             '[[task]]\nname = "t"\nops = [ { op = "kmap_flush_unused" } ]\n')
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['setup'\].*before \[machine\], or "
                                         r"write \[\[setup\]\] tables"):
        Scenario.from_toml(p)


def test_numpy_ints_in_a_scenario_act_and_serialise_as_python_ints():
    """A scenario built in code with numpy ints: ``repeat`` did not advance a numpy ``pfn``
    (three kmaps of page 300), and ``to_dict()`` kept ``np.int64`` values, so an exploration
    that found a failure crashed making its replay token (json: 'Object of type int64 is
    not JSON serializable')."""
    import json

    import numpy as np

    from emu.exec.builtin import race
    from emu.exec.explore import explore
    from emu.exec.scenario import expand

    ops = [{"op": "kmap", "pfn": np.int64(300), "repeat": 3}]
    assert [o["pfn"] for _w, o in expand(ops, "t")] == [300, 301, 302]
    d = race(4, 1, "page_address").to_dict()
    d["machine"] |= {"last_pkmap": np.int64(4), "costs": {"mrs": np.uint8(2)}}
    d["task"][0]["ops"][0]["pfn"] = np.int64(d["task"][0]["ops"][0]["pfn"])
    sc = Scenario.from_dict(d)
    plain = sc.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert type(plain["machine"]["costs"]["mrs"]) is int
    ex = explore(sc, bound=1)
    assert ex.failures and ex.replay


def test_a_machine_default_given_as_none_round_trips_through_toml():
    """dma_pinning=None (Machine's default) made to_dict() something TOML cannot write
    ("Object of type 'NoneType' is not TOML serializable")."""
    import tomllib

    import tomli_w

    sc = Scenario("n", {"dma_pinning": None, "costs": None, "last_pkmap": 4})
    sc.task("t", [{"op": "kmap", "pfn": 300}])
    d = sc.to_dict()
    assert d["machine"] == {"last_pkmap": 4}
    back = Scenario.from_dict(tomllib.loads(tomli_w.dumps(d)))
    assert back.build().machine.dma_pinning == sc.build().machine.dma_pinning


def test_a_built_scenario_keeps_what_it_was_built_from():
    """Loaded kept the caller's Scenario: edited after build(), it went into the replay
    tokens (and the exploration workers) of runs made with the old machine, so a failing
    schedule's token was 'corrupted' or replayed another scenario."""
    from emu.exec.builtin import race
    from emu.exec.explore import explore, replay

    sc = Scenario.from_dict(race(4, 1, "page_address").to_dict())
    ld = sc.build()
    sc.machine.update(dma_pinning="kmap_high_get", kmap_high_get=True)
    sc.tasks[0].ops.clear()
    ex = explore(ld, bound=2)
    assert ex.failures and ld.scenario.machine["dma_pinning"] == "page_address"
    _, r = replay(ex.replay, trace=False)
    assert r.lost_bytes == ex.minimal.lost_bytes > 0


def test_a_handler_that_would_sleep_in_wait_irq_is_a_bug_not_a_deadlock():
    """A handler's wait_irq that would sleep is schedule() in hardirq context, "BUG:
    scheduling while atomic", as a handler's sleeping kmap_high is (it ended as a deadlock
    report: nothing wakes a handler)."""
    from emu.exec.explore import explore
    sc = Scenario("waiting handler", {"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}])
    sc.irq("h", [{"op": "wait_irq", "line": 1}], line=0)
    sc.irq("other", [{"op": "kmap_flush_unused"}], line=1)
    ld = sc.build()
    r = ld.run(K.SCHED_DFS, [1])                # h is raised first
    assert r.outcome == "error" and not r.deadlock
    assert r.message == ("h: kernel BUG: wait_irq: line 1: scheduling while atomic (the IRQ "
                         "handler would sleep until the line's handler has run 1 time, it has "
                         "run 0; an IRQ handler cannot sleep)")
    ex = explore(sc, bound=2)
    assert ex.deadlocks == 0 and "error" in ex.outcomes
    # a wait that is already satisfied does not sleep, so it is no bug
    r = ld.run(K.SCHED_DFS, [2, 0, 0])
    assert r.outcome == "done", (r.outcome, r.message, ld.alternatives_at(0))


def test_numpy_scalars_are_taken_wherever_a_scenario_takes_an_int_or_a_bool():
    """np.int64 for repeat, step, n, byte, line, cpu and direction, np.bool_ for the
    machine's bool keys, as pfn and the rest already were; a numpy float or str stays a
    clear error naming the field."""
    import numpy as np
    i = np.int64
    sc = Scenario("np", {"last_pkmap": 8, "kmap_high_get": np.True_, "preempt": np.True_,
                         "oracle": np.bool_(True), "ncpus": i(2)})
    sc.task("t", [{"op": "kmap", "pfn": i(300), "repeat": i(3), "step": i(2)},
                  {"op": "write", "va": 0xC0001000, "byte": np.uint8(7), "n": i(64)},
                  {"op": "read", "va": 0xC0001000, "n": np.int32(64)},
                  {"op": "dma_map_page", "pfn": 5, "direction": i(1)}], cpu=i(1))
    sc.irq("h", [{"op": "kmap_high_get", "pfn": 300}], line=i(2), cpu=i(0))
    ld = sc.build()
    r = ld.run(K.SCHED_DFS)
    assert r.outcome == "done"
    assert ld.machine.kmap_high_get_enabled is True
    assert ld.machine.read(0xC0001000, 64) == b"\x07" * 64
    d = sc.to_dict()
    assert type(d["task"][0]["cpu"]) is int and type(d["irq"][0]["line"]) is int
    assert d["machine"]["kmap_high_get"] is True
    for field, bad, msg in (("repeat", np.float64(2), "repeat=np.float64(2.0): must be an int"),
                            ("n", np.float32(3), "n=np.float32(3.0): must be an int"),
                            ("repeat", np.True_, "repeat=np.True_: must be an int")):
        op = {"op": "read", "va": 0xC0001000, "n": 4} | {field: bad}
        with pytest.raises(ValueError, match=re.escape(msg)):
            Scenario("bad").task("t", [op]).validate()
    with pytest.raises(ValueError, match=r"kmap_high_get=np.int64\(1\): must be True or False"):
        Scenario("bad", {"kmap_high_get": i(1)}).task("t", [{"op": "kmap_flush_unused"}]).build()
    with pytest.raises(ValueError, match=r"^task 't': cpu=np.float64\(0.0\) must be in range"):
        Scenario("bad").task("t", [{"op": "kmap_flush_unused"}], cpu=np.float64(0)).build()


def test_a_cpu_past_ncpus_names_the_task_or_the_irq_handler():
    sc = Scenario("bad", {"ncpus": 1}).task("t", [{"op": "kmap_flush_unused"}])
    sc.irq("done", [{"op": "kmap_flush_unused"}], cpu=1)
    with pytest.raises(ValueError, match=r"^irq 'done': cpu=1 must be in range\(0, ncpus=1\) "
                                         r"\(the scenario's \[machine\] ncpus\)$"):
        sc.build()


SG_TOML = """
name = "sg"
[machine]
last_pkmap = 8
highmem_mb = 2
[[setup]]
op = "dma_map_sg"
sg = [[10, 0, 4096], [300, 128, 256]]
direction = "TO_DEVICE"
as = "pre"
[[task]]
name = "drv"
ops = [
  { op = "dma_unmap_sg", sg = [[10, 0, 4096], [300, 128, 256]], direction = "TO_DEVICE" },
  { op = "dma_map_sg", sg = [[11, 0, 4096], [301, 0, 4096]], direction = "FROM_DEVICE", as = "s" },
  { op = "device_write", dma_addr = "s_1", byte = 0x5C, n = 4096 },
  { op = "dma_sync_sg_for_cpu", sg = [[11, 0, 4096], [301, 0, 4096]], direction = "FROM_DEVICE" },
  { op = "dma_sync_sg_for_device", sg = [[11, 0, 4096], [301, 0, 4096]], direction = "FROM_DEVICE" },
  { op = "dma_unmap_sg", sg = [[11, 0, 4096], [301, 0, 4096]], direction = "FROM_DEVICE" },
]
"""


def test_scatter_gather_ops_in_a_scenario():
    """The sg ops from TOML, in setup and in a task: dma_map_sg's results are the entries'
    dma addresses (s, s_1, as repeat names them), the trace names each entry, and the
    scenario goes through to_dict / from_dict (a replay token) unchanged."""
    import tomllib
    sc = Scenario.from_dict(tomllib.loads(SG_TOML))
    assert Scenario.from_dict(sc.to_dict()).to_dict() == sc.to_dict()
    ld = sc.build(trace_events=1 << 14)
    r = ld.run(K.SCHED_DFS, trace=True)
    assert r.outcome == "done", r.message
    assert ld.machine.phys_read(301 << 12, 4096) == b"\x5c" * 4096
    assert ld.machine.dma_debug_errors == 0
    labels = [t for t in r.trace if "dma_map_sg(" in t]
    for k in (0, 1):                            # each entry starts a step of its own
        assert sum(f"op 1 dma_map_sg(sg=[(11, 0, 4096), (301, 0, 4096)], "
                   f"direction=FROM_DEVICE) -> s: sg[{k}]  [cycle" in t for t in labels) == 1
    assert sum(": sg[1]  [cycle" in t for t in r.trace) == 5     # the five sg ops


def _two_pages(sg_op):
    sc = Scenario("two pages", {"last_pkmap": 8, "highmem_mb": 2},
                  setup=[{"op": "kmap", "pfn": 300}, {"op": "kunmap", "pfn": 300}])
    if sg_op:
        ops = [{"op": "dma_map_sg", "sg": [[12, 64, 1000], [300, 0, 4096]],
                "direction": "BIDIRECTIONAL", "as": "s"},
               {"op": "dma_unmap_sg", "sg": [[12, 64, 1000], [300, 0, 4096]],
                "direction": "BIDIRECTIONAL"}]
    else:
        ops = [{"op": "dma_map_page", "pfn": 12, "offset": 64, "size": 1000,
                "direction": "BIDIRECTIONAL", "as": "s"},
               {"op": "dma_map_page", "pfn": 300, "size": 4096, "direction": "BIDIRECTIONAL"},
               {"op": "dma_unmap_page", "dma_addr": "s", "size": 1000,
                "direction": "BIDIRECTIONAL"},
               {"op": "dma_unmap_page", "dma_addr": 300 << 12, "size": 4096,
                "direction": "BIDIRECTIONAL"}]
    sc.task("drv", ops)
    sc.task("other", [{"op": "kmap_flush_unused"}])
    return sc.build()


def test_dma_map_sg_runs_dma_map_page_per_entry_with_its_scheduling_points():
    """An sg op is the page routine per entry, nothing else: the same decisions (a switch
    can come between the entries and inside each one's maintenance), cycles and cache."""
    a, b = _two_pages(True), _two_pages(False)
    ra, rb = a.run(K.SCHED_DFS), b.run(K.SCHED_DFS)
    assert ra.outcome == rb.outcome == "done"
    assert ra.decisions == rb.decisions > 10
    assert [a.alternatives_at(d) for d in range(ra.decisions)] == \
        [b.alternatives_at(d) for d in range(rb.decisions)]
    assert a.machine.cycles == b.machine.cycles
    assert a.machine.cache.stats == b.machine.cache.stats


def test_a_repeated_named_scatter_gather_map_of_several_entries_is_refused():
    """Its entries are named s, s_1, ... and its repeat 1 would be named s_1 as well: one
    name for two dma addresses. One entry (s, then s_1) is fine."""
    sg2 = {"op": "dma_map_sg", "sg": [[300, 0, 64], [301, 0, 64]], "direction": "TO_DEVICE",
           "as": "s", "repeat": 2}
    with pytest.raises(ValueError, match=r"task 't' op 0: repeat=2 with as='s': dma_map_sg "
                                         r"names its entries s, s_1, \.\.\. and its repeat 1 "
                                         r"would be s_1 too"):
        Scenario("x", {"last_pkmap": 8}).task("t", [sg2]).validate()
    one = dict(sg2, sg=[[300, 0, 64]])
    Scenario("x", {"last_pkmap": 8}).task("t", [one]).validate()
    Scenario("x", {"last_pkmap": 8}).task("t", [{k: v for k, v in sg2.items() if k != "as"}]
                                           ).validate()


def test_scatter_gather_entries_are_checked_and_dma_debug_knows_them():
    sc = Scenario("bad sg", {"last_pkmap": 8})
    for sg, msg in ((None, "sg=None: dma_map_sg needs sg = a list of 1 to"),
                    ([], "sg=[]: dma_map_sg needs sg"),
                    ([[1, 2]], "sg[0]=[1, 2]: must be [pfn, offset, length]"),
                    ([[1, 0, 0]], "sg[0]=[1, 0, 0]: must be [pfn, offset, length]"),
                    ([[1, 0, 8], [2, "x", 8]], "sg[1]=[2, 'x', 8]: must be")):
        op = {"op": "dma_map_sg", "direction": "FROM_DEVICE"} | ({} if sg is None else {"sg": sg})
        with pytest.raises(ValueError, match=re.escape(f"task 't' op 0: {msg}")):
            Scenario("bad").task("t", [op]).validate()
    # ranges are the machine's, checked at load, naming the entry
    sc.task("t", [{"op": "dma_map_sg", "sg": [[1, 0, 8], [99999, 0, 8]],
                   "direction": "FROM_DEVICE"}])
    with pytest.raises(ValueError, match=re.escape("task 't' op 0 sg[1]: dma_map_sg: "
                                                   "pfn=99999: must be")):
        sc.build()
    # an sg entry unmapped with dma_unmap_page is dma-debug's "wrong function"
    sc = Scenario("wrong unmap", {"last_pkmap": 8})
    sc.task("t", [{"op": "dma_map_sg", "sg": [[12, 0, 64]], "direction": "TO_DEVICE", "as": "s"},
                  {"op": "dma_unmap_page", "dma_addr": "s", "size": 64,
                   "direction": "TO_DEVICE"}])
    r = sc.build().run(K.SCHED_DFS)
    assert r.outcome == "error"
    assert "[mapped as scather-gather] [unmapped as page]" in r.message, r.message


def test_device_start_on_a_result_line_without_a_handler_is_an_error_naming_op_and_line():
    """A device_start whose line is an earlier op's result is not known at load; run on a
    line no [[irq]] handles, the transfer could never land: the run ends in an error that
    names the op and the line, as the load-time check does for a constant line."""
    from emu.exec.explore import explore
    sc = Scenario("result line", {"last_pkmap": 8})
    # kmap of lowmem page 3 returns 0xC0003000: minus that, line 3 (no handler; h is on 0)
    sc.task("t", [{"op": "kmap", "pfn": 3, "as": "v"},
                  {"op": "device_start", "dma_addr": 0xA000, "byte": 1, "n": 64,
                   "line": "v-3221237757"}])
    sc.irq("h", [{"op": "read", "va": 0xC000A000, "n": 4}], line=0)
    r = sc.build().run()
    assert r.outcome == "error"
    assert r.message == ("task 't' op 1: device_start: line=3: no [[irq]] handles line 3, so "
                         "it is never raised (the device would never write and raise it; "
                         "handlers' lines: 0)")
    assert set(explore(sc, bound=0).outcomes) == {"error"}


def test_wait_irq_on_a_result_line_without_a_handler_is_an_error_naming_op_and_line():
    """The same for a wait on such a line: it would never end, and the run ended in a
    deadlock that did not say why; now the error names the op and the line."""
    sc = Scenario("result wait", {"last_pkmap": 8})
    sc.task("t", [{"op": "kmap", "pfn": 3, "as": "v"},
                  {"op": "wait_irq", "line": "v-3221237757"}])
    sc.irq("h", [{"op": "read", "va": 0xC000A000, "n": 4}], line=0)
    r = sc.build().run()
    assert r.outcome == "error"
    assert r.message == ("task 't' op 1: wait_irq: line=3: no [[irq]] handles line 3, so "
                         "it is never raised (the wait would never end; handlers' lines: 0)")
