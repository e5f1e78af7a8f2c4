"""emu.cache.read_din: Dinero IV din (-informat d) and xdin (-informat D) traces, and known
answers of Dinero IV itself run through read_din + Cache.replay + Cache.dinero_stats."""

import numpy as np
import pytest

from emu.cache import Cache, read_din


def trace(tmp_path, text, name="t.din"):
    p = tmp_path / name
    p.write_text(text)
    return p


def as_lists(arrays):
    assert all(a.dtype == np.int64 and a.ndim == 1 for a in arrays)
    return [a.tolist() for a in arrays]


# ---------------------------------------------------------------------------------------------
# din: LABEL ADDRESS [ignored ...], both hex; every reference is the aligned word
# ---------------------------------------------------------------------------------------------


def test_din_labels_addresses_aligned_down_to_a_word_size_4(tmp_path):
    p = trace(tmp_path, "0 1003\n1 0x2001\n2 3000\n3 4002\n4 5000\n5 6001\n")
    assert as_lists(read_din(p)) == [
        [0, 1, 2, 3, 4, 5],
        [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000],
        [4] * 6]


def test_din_hex_fields_and_extra_fields_ignored(tmp_path):
    p = trace(tmp_path, "0 ABCDEF\n1 0XdeadBEEF 8 with a comment\n0\t7fff\t\tfoo\n  3  10  \n")
    assert as_lists(read_din(p)) == [[0, 1, 0, 3], [0xABCDEC, 0xDEADBEEC, 0x7FFC, 0x10],
                                     [4, 4, 4, 4]]


def test_din_blank_and_comment_lines_are_skipped(tmp_path):
    p = trace(tmp_path, "# a Dinero trace\n\n0 100\n   \n# another\n1 200\n\n")
    assert as_lists(read_din(p)) == [[0, 1], [0x100, 0x200], [4, 4]]


def test_din_label_8_ends_the_trace(tmp_path):
    p = trace(tmp_path, "0 100\n8 0\n1 200\nthis is not a trace line\n")
    assert as_lists(read_din(p)) == [[0], [0x100], [4]]


def test_empty_trace(tmp_path):
    p = trace(tmp_path, "# nothing\n\n")
    assert as_lists(read_din(p)) == [[], [], []]


# ---------------------------------------------------------------------------------------------
# xdin: r|w|i|m|c|v ADDRESS SIZE, hex, unaligned, size kept
# ---------------------------------------------------------------------------------------------


def test_xdin_access_types_addresses_and_sizes_kept(tmp_path):
    p = trace(tmp_path, "r 1001 3\nw 0x2002 10\ni 3000 4\nm 4000 1\nc 5000 0\nv 6003 0\n"
                        "R 7001 2\nW 8000 0x20  # comment\n", "t.xdin")
    assert as_lists(read_din(p)) == [
        [0, 1, 2, 3, 4, 5, 0, 1],
        [0x1001, 0x2002, 0x3000, 0x4000, 0x5000, 0x6003, 0x7001, 0x8000],
        [3, 0x10, 4, 1, 0, 0, 2, 0x20]]


def test_din_and_xdin_lines_can_be_mixed(tmp_path):
    p = trace(tmp_path, "r 1001 3\n1 2001\n")
    assert as_lists(read_din(p)) == [[0, 1], [0x1001, 0x2000], [3, 4]]


# ---------------------------------------------------------------------------------------------
# errors name file:line (physical line numbers, counting skipped lines)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    "6 1000",                 # label 6: unsupported
    "7 1000",
    "9 1000",
    "10 1000",                # hex label 16
    "x 1000",                 # neither a hex label nor an xdin type
    "0 10g0",                 # address not hex
    "1",                      # no address
    "r 1000",                 # xdin without size
    "w 1000 zz",              # size not hex
    "0 100000000",            # address outside 32 bits
])
def test_bad_line_raises_value_error_naming_file_and_line(tmp_path, bad):
    p = trace(tmp_path, f"0 100\n\n{bad}\n0 200\n")
    with pytest.raises(ValueError) as e:
        read_din(p)
    assert f"{p}:3" in str(e.value)


# ---------------------------------------------------------------------------------------------
# known answers: atos-tools/dineroIV testing/simple.32.txt (13 xdin reads, all in one set)
# ---------------------------------------------------------------------------------------------

SIMPLE_32 = """\
r 0x1000 4  # comment for lru policy on a single set
r 0x2000 4  # with size 32 k, bsize 64 and assoc 8
r 0x3000 4
r 0x4000 4
r 0x5000 4
r 0x6000 4
r 0x7000 4
r 0x8000 4  # invalid misses up to there
r 0x9000 4  # miss, replace 0x1000
r 0x8000 4  # hit
r 0x1000 4  # miss, replace 0x2000
r 0x2000 4  # miss, replace 0x3000
r 0x4000 4  # hit
"""


# (size, block, assoc) -> (demand misses, bytes from memory), from the .good files
# simple.32.txt.good.{u8b16a4D, d32b64a8rlD, u8b16a512D, u8b4a1D}; all LRU, walloc a, wback a.
KNOWN = [
    ((8192, 16, 4), (12, 192)),
    ((32768, 64, 8), (11, 704)),
    ((8192, 16, 512), (9, 144)),
    ((8192, 4, 1), (12, 48)),
]


@pytest.mark.parametrize("geometry, answer", KNOWN, ids=[f"{s}b{b}a{a}" for (s, b, a), _ in KNOWN])
@pytest.mark.parametrize("fmt", ["xdin", "din"])
def test_dinero_known_answer(tmp_path, geometry, answer, fmt):
    size, block, assoc = geometry
    if fmt == "xdin":
        p = trace(tmp_path, SIMPLE_32, "simple.32.txt")
    else:
        lines = [ln.split()[1] for ln in SIMPLE_32.splitlines()]
        p = trace(tmp_path, "".join(f"0 {a}\n" for a in lines), "simple.32.din")
    kinds, addrs, sizes = read_din(p)
    c = Cache(size=size, ways=assoc, line=block, replacement="lru", write_back=True,
              write_allocate=True, ram_size=1 << 16)
    assert c.replay(kinds, addrs, sizes) == 13
    misses, from_mem = answer
    assert c.dinero_stats() == {
        "demand_fetches": 13, "read_fetches": 13, "write_fetches": 0,
        "demand_misses": misses, "read_misses": misses, "write_misses": 0,
        "bytes_from_memory": from_mem, "bytes_to_memory": 0}


def test_dinero_bytes_to_memory_counts_the_final_copy_back(tmp_path):
    """cmdmain.c done: every dirty block still cached is written back before the statistics
    are printed; dinero_stats() reports that without changing the cache."""
    p = trace(tmp_path, "w 100 4\nw 104 4\nr 200 4\nw 0x2100 4\n", "w.xdin")
    c = Cache(size=8192, ways=1, line=16, replacement="lru", write_allocate=True,
              ram_size=1 << 16)
    c.replay(*read_din(p))
    # 0x2100 maps to the set of 0x100 (direct mapped, 8 KiB): that eviction writes 16 bytes,
    # and 0x2100's own dirty block is copied back at the end: 32 in all
    st = c.dinero_stats()
    assert (st["demand_fetches"], st["demand_misses"], st["bytes_from_memory"],
            st["bytes_to_memory"]) == (4, 3, 48, 32)
    assert c.dinero_stats() == st
    assert c.probe(0x2100).dirty
