"""Errors of the streaming DMA API: invalid arguments, dma-debug reports, kernel BUGs, and the
2.6.30 defects emu reproduces or fixes (spec §3.4, §3.5, §6.6, §6.7; API.md "Errors").

* Invalid arguments raise ``ValueError`` naming the argument, before anything runs: the
  machine (pkmap, cache, RAM, counters, dma-debug mappings) is exactly as before.
* dma-debug (lib/dma-debug.c ``check_unmap``/``check_sync``) reports misuse with the kernel's
  wording as ``emu.DmaDebugError``; with ``dma_debug_strict=False`` errors are only counted.
* 2.6.30 ``dma_sync_single_for_device`` on a highmem buffer hits
  ``BUG_ON(!virt_addr_valid(...))`` in ``dma_cache_maint``; v3 maintains by page, and
  ``dma_sync_sg_for_device`` (``dma_cache_maint_page``) works for highmem in both.
* The ``offset >= PAGE_SIZE`` length underflow of 2.6.30 ``dma_cache_maint_page`` is fixed:
  page and offset are normalised first, as later kernels do.
"""

import numpy as np
import pytest

import emu

LOW, HIGH = 10, 100                     # pages 0-63 lowmem, 64-319 highmem (1.25 MiB of RAM)
NPAGES = 320


def machine(**kw):
    args = dict(lowmem_mb=0.25, highmem_mb=1, last_pkmap=8)
    args.update(kw)
    return emu.Machine(**args)


def busy_machine(**kw):
    """A machine with some state everywhere: a kmapped and a lazily mapped highmem page,
    dirty lines in lowmem and highmem, device data in RAM, one live DMA mapping."""
    m = machine(**kw)
    va = m.kmap(HIGH)
    m.read(va, 128)
    m.write(va + 8, b"highmem dirty")
    lazy = m.kmap(HIGH + 1)
    m.read(lazy, 64)
    m.write(lazy, b"lazy dirty")
    m.kunmap(HIGH + 1)
    low = m.page_address(LOW)
    m.read(low, 256)
    m.write(low + 40, b"lowmem dirty")
    m.device.write(0x50000, b"device bytes")
    h = m.dma_map_page(LOW + 1, 0, 512, emu.DMA_TO_DEVICE)
    return m, h


def snapshot(m):
    st = m.cache.state()
    return {
        "pkmap_count": m.pkmap_count.tolist(),
        "last_pkmap_nr": m.last_pkmap_nr,
        "pkmap_page": [m.pkmap_page(i) for i in range(m.LAST_PKMAP)],
        "page_address": [m.page_address(p) for p in range(NPAGES)],
        "cache": {k: v.tobytes() for k, v in st.items()},
        "cache_stats": m.cache.stats,
        "mm_stats": m.mm_stats,
        "ram": m.phys_read(0, NPAGES * 4096),
        "outer": m.outer_calls,
        "findings": m.findings(),
        "dma_debug_errors": m.dma_debug_errors,
    }


def assert_unchanged(m, before, h):
    after = snapshot(m)
    for k in before:
        assert after[k] == before[k], k
    # the live mapping is still there (dma-debug accepts exactly its unmap) and nothing new
    m.dma_unmap_page(h, 512, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.DmaDebugError, match="has not allocated"):
        m.dma_unmap_page(h, 512, emu.DMA_TO_DEVICE)


# ---------------------------------------------------------------------------------------------
# invalid arguments: ValueError naming the argument, nothing changed
# ---------------------------------------------------------------------------------------------

MAP_BAD = {
    "direction 3": ((LOW, 0, 16, 3), r"direction=3.*valid_dma_direction"),
    "direction -1": ((LOW, 0, 16, -1), r"direction=-1.*valid_dma_direction"),
    "direction DMA_NONE-like name": ((LOW, 0, 16, "TO_DEVICE"), r"valid_dma_direction"),
    "direction bool": ((LOW, 0, 16, True), r"direction=True.*valid_dma_direction"),
    "size 0": ((LOW, 0, 0, 1), r"^size=0"),
    "size negative": ((LOW, 0, -4, 1), r"^size=-4"),
    "size float": ((LOW, 0, 1.5, 1), r"^size=1.5"),
    "offset negative": ((LOW, -1, 16, 1), r"^offset=-1"),
    "offset float": ((LOW, 0.5, 16, 1), r"^offset=0.5"),
    "range past end of RAM": ((NPAGES - 1, 100, 4000, 1), r"^size=4000.*end of RAM"),
    "offset past end of RAM": ((NPAGES - 1, 4096, 1, 1), r"^offset=0x1000: .*end of RAM"),
    "pfn = number of pages": ((NPAGES, 0, 16, 1), r"^pfn=320"),
    "pfn negative": ((-1, 0, 16, 1), r"^pfn=-1"),
    "pfn str": (("10", 0, 16, 1), r"^pfn='10'"),
    "range one byte past end of RAM": ((NPAGES - 1, 0, 4097, 1), r"^size=4097.*end of RAM"),
    # ints the kernel entry cannot take (past int64), or whose sum would overflow int64
    "pfn past int64": ((1 << 64, 0, 16, 1), r"^pfn=18446744073709551616"),
    "pfn below int64": ((-(1 << 64), 0, 16, 1), r"^pfn=-18446744073709551616"),
    "offset past int64": ((LOW, 1 << 63, 16, 1), r"^offset=0x8000000000000000: .*end of RAM"),
    "size past int64": ((LOW, 0, 1 << 63, 1), r"^size=9223372036854775808.*end of RAM"),
    "offset + size past int64": ((LOW, 1 << 62, 1 << 62, 1), r"^offset=0x4000000000000000: "),
    "direction past int64": ((LOW, 0, 16, 1 << 64), r"direction=18446744073709551616"),
}


@pytest.mark.parametrize("case", list(MAP_BAD))
def test_dma_map_page_rejects_bad_arguments_and_changes_nothing(case):
    args, msg = MAP_BAD[case]
    m, h = busy_machine()
    before = snapshot(m)
    with pytest.raises(ValueError, match=msg):
        m.dma_map_page(*args)
    assert_unchanged(m, before, h)


def test_dma_map_page_takes_numpy_ints_and_a_range_ending_at_the_end_of_ram():
    """Arguments that are not plain ints go the checked slow path: same result and state."""
    m1, m2 = machine(), machine()
    for m, conv in ((m1, int), (m2, np.int64)):
        assert m.dma_map_page(conv(NPAGES - 1), conv(96), conv(4000), conv(2)) \
            == (NPAGES - 1) * 4096 + 96
        assert m.dma_map_page(conv(LOW), conv(4096), conv(16), conv(0)) == (LOW + 1) * 4096
    assert snapshot(m1) == snapshot(m2)


HANDLE_BAD = {
    "direction": ((0xB000, 512, 7), r"direction=7.*valid_dma_direction"),
    "size 0": ((0xB000, 0, 1), r"^size=0"),
    "size negative": ((0xB000, -1, 1), r"^size=-1"),
    "dma_addr negative": ((-4096, 512, 1), r"^dma_addr=-4096"),
    "past end of RAM": ((NPAGES * 4096 - 16, 32, 1), r"^size=32.*end of RAM"),
}


@pytest.mark.parametrize("call", ["dma_unmap_page", "dma_sync_single_for_cpu",
                                  "dma_sync_single_for_device"])
@pytest.mark.parametrize("case", list(HANDLE_BAD))
def test_unmap_and_sync_reject_bad_arguments_and_change_nothing(call, case):
    args, msg = HANDLE_BAD[case]
    m, h = busy_machine()
    assert h == 0xB000
    before = snapshot(m)
    with pytest.raises(ValueError, match=msg):
        getattr(m, call)(*args)
    assert_unchanged(m, before, h)


SG_BAD = {
    "not a list": (5, r"^sg"),
    "short entry": ([(LOW, 0, 16), (HIGH, 0)], r"^sg\[1\]"),
    "bad pfn": ([(LOW, 0, 16), (NPAGES, 0, 16)], r"^sg\[1\] pfn=320"),
    "bad offset": ([(LOW, -2, 16)], r"^sg\[0\] offset=-2"),
    "offset past RAM": ([(LOW, 1 << 40, 16)], r"^sg\[0\] offset=0x10000000000: "),
    "bad length": ([(LOW, 0, 16), (HIGH, 0, 0)], r"sg\[1\].*=0|=0.*sg\[1\]"),
    "length past end of RAM": ([(LOW, 0, 16), (NPAGES - 1, 0, 8192)], r"sg\[1\].*end of RAM"),
}


@pytest.mark.parametrize("call", ["dma_map_sg", "dma_unmap_sg", "dma_sync_sg_for_cpu",
                                  "dma_sync_sg_for_device"])
@pytest.mark.parametrize("case", list(SG_BAD))
def test_sg_calls_reject_bad_entries_before_touching_any(call, case):
    """A bad entry anywhere rejects the whole list: the good entries before it are not
    mapped / unmapped / synced either."""
    sg, msg = SG_BAD[case]
    m, h = busy_machine()
    before = snapshot(m)
    with pytest.raises(ValueError, match=msg):
        getattr(m, call)(sg, emu.DMA_TO_DEVICE)
    assert_unchanged(m, before, h)


@pytest.mark.parametrize("call", ["dma_map_sg", "dma_unmap_sg", "dma_sync_sg_for_cpu",
                                  "dma_sync_sg_for_device"])
def test_sg_calls_reject_a_bad_direction(call):
    m, h = busy_machine()
    before = snapshot(m)
    with pytest.raises(ValueError, match=r"direction=5.*valid_dma_direction"):
        getattr(m, call)([(LOW, 0, 16)], 5)
    assert_unchanged(m, before, h)


# ---------------------------------------------------------------------------------------------
# dma-debug
# ---------------------------------------------------------------------------------------------


def test_unmap_of_an_address_that_is_not_mapped():
    m = machine()
    before = snapshot(m)
    with pytest.raises(emu.DmaDebugError) as e:
        m.dma_unmap_page(0xA000, 64, emu.DMA_FROM_DEVICE)
    assert str(e.value) == (
        "DMA-API: device driver tries to free DMA memory it has not allocated "
        "[device address=0x000000000000a000] [size=64 bytes]")
    assert m.dma_debug_errors == 1
    after = snapshot(m)
    assert {k: v for k, v in after.items() if k != "dma_debug_errors"} == \
        {k: v for k, v in before.items() if k != "dma_debug_errors"}


def test_unmap_twice_and_unmap_inside_a_mapping():
    m = machine()
    h = m.dma_map_page(LOW, 0, 256, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.DmaDebugError, match=r"has not allocated \[device address="
                                                r"0x000000000000a020\] \[size=32 bytes\]"):
        m.dma_unmap_page(h + 32, 32, emu.DMA_TO_DEVICE)
    m.dma_unmap_page(h, 256, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.DmaDebugError, match="tries to free DMA memory it has not"):
        m.dma_unmap_page(h, 256, emu.DMA_TO_DEVICE)
    assert m.dma_debug_errors == 2


def test_unmap_with_another_size():
    m = machine()
    h = m.dma_map_page(HIGH, 16, 100, emu.DMA_FROM_DEVICE)
    with pytest.raises(emu.DmaDebugError) as e:
        m.dma_unmap_page(h, 64, emu.DMA_FROM_DEVICE)
    assert str(e.value) == (
        "DMA-API: device driver frees DMA memory with different size "
        "[device address=0x0000000000064010] [map size=100 bytes] [unmap size=64 bytes]")
    m.dma_unmap_page(h, 100, emu.DMA_FROM_DEVICE)        # strict: the mapping was kept
    assert m.dma_debug_errors == 1


def test_unmap_with_another_direction_uses_the_kernel_wording():
    """lib/dma-debug.c check_unmap(): "DMA-API: device driver frees DMA memory with different
    direction [device address=0x%016llx] [size=%llu bytes] [mapped with %s] [unmapped with
    %s]" (size = the unmap's size; dir2name[] = DMA_BIDIRECTIONAL, DMA_TO_DEVICE, ...)."""
    m = machine()
    h = m.dma_map_page(LOW, 0, 64, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.DmaDebugError, match="frees DMA memory with different direction"):
        m.dma_unmap_page(h, 64, emu.DMA_FROM_DEVICE)
    m2 = machine()
    h = m2.dma_map_page(LOW, 0, 64, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.DmaDebugError) as e:
        m2.dma_unmap_page(h, 64, emu.DMA_FROM_DEVICE)
    assert str(e.value) == (
        "DMA-API: device driver frees DMA memory with different direction "
        "[device address=0x000000000000a000] [size=64 bytes] "
        "[mapped with DMA_TO_DEVICE] [unmapped with DMA_FROM_DEVICE]")


def test_sync_errors():
    m = machine()
    with pytest.raises(emu.DmaDebugError, match=r"^DMA-API: device driver tries to sync DMA "
                                                r"memory it has not allocated \[device "
                                                r"address=0x000000000000a000\] \[size=64 bytes\]$"):
        m.dma_sync_single_for_cpu(0xA000, 64, emu.DMA_FROM_DEVICE)
    h = m.dma_map_page(LOW, 0, 64, emu.DMA_FROM_DEVICE)
    with pytest.raises(emu.DmaDebugError, match="syncs DMA memory outside allocated range"):
        m.dma_sync_single_for_device(h, 128, emu.DMA_FROM_DEVICE)
    with pytest.raises(emu.DmaDebugError, match="syncs DMA memory with different direction"):
        m.dma_sync_single_for_cpu(h, 64, emu.DMA_TO_DEVICE)
    m.dma_sync_single_for_cpu(h, 64, emu.DMA_FROM_DEVICE)
    m.dma_sync_single_for_device(h, 64, emu.DMA_FROM_DEVICE)
    m.dma_unmap_page(h, 64, emu.DMA_FROM_DEVICE)
    assert m.dma_debug_errors == 3


@pytest.mark.parametrize("sync", ["dma_sync_single_for_cpu", "dma_sync_single_for_device"])
@pytest.mark.parametrize("d", [emu.DMA_TO_DEVICE, emu.DMA_FROM_DEVICE])
def test_a_bidirectional_mapping_synced_one_way_is_reported_as_in_2630(sync, d):
    """lib/dma-debug.c of 2.6.30 checks the direction before it lets bidirectional mappings
    through (later kernels accept them either way)."""
    m = machine()
    h = m.dma_map_page(LOW, 0, 256, emu.DMA_BIDIRECTIONAL)
    with pytest.raises(emu.DmaDebugError, match=r"syncs DMA memory with different direction .*"
                                                r"\[mapped with DMA_BIDIRECTIONAL\]"):
        getattr(m, sync)(h, 256, d)
    getattr(m, sync)(h, 256, emu.DMA_BIDIRECTIONAL)
    assert m.dma_debug_errors == 1
    # the v3 model's dma-debug is a later kernel's: a bidirectional mapping syncs either way
    m = emu.Machine(lowmem_mb=1, highmem_mb=1, dma_api="v3")
    h = m.dma_map_page(LOW, 0, 256, emu.DMA_BIDIRECTIONAL)
    getattr(m, sync)(h, 256, d)
    assert m.dma_debug_errors == 0


def test_strict_errors_leave_the_cache_alone_under_v3():
    """A rejected v3 unmap does not run its invalidate."""
    m = machine(dma_api="v3")
    va = m.kmap(HIGH)
    h = m.dma_map_page(HIGH, 0, 4096, emu.DMA_FROM_DEVICE)
    m.read(va, 64)                                   # lines cached while the device owns it
    before = snapshot(m)
    with pytest.raises(emu.DmaDebugError, match="different size"):
        m.dma_unmap_page(h, 2048, emu.DMA_FROM_DEVICE)
    after = snapshot(m)
    assert after["cache"] == before["cache"] and after["cache_stats"] == before["cache_stats"]
    assert after["pkmap_count"] == before["pkmap_count"]
    m.dma_unmap_page(h, 4096, emu.DMA_FROM_DEVICE)
    assert m.cache.probe(va) is None                 # the correct unmap invalidates


def test_non_strict_mode_only_counts():
    m = machine(dma_debug_strict=False)
    m.dma_unmap_page(0xA000, 64, emu.DMA_FROM_DEVICE)            # not mapped
    assert m.dma_debug_errors == 1
    h = m.dma_map_page(LOW, 0, 64, emu.DMA_TO_DEVICE)
    m.dma_sync_single_for_cpu(h, 64, emu.DMA_FROM_DEVICE)        # other direction, and
    assert m.dma_debug_errors == 3                               # read-only memory for cpu
    m.dma_sync_single_for_cpu(h, 128, emu.DMA_TO_DEVICE)         # outside the mapping
    assert m.dma_debug_errors == 4
    m.dma_unmap_page(h, 64, emu.DMA_TO_DEVICE)                   # fine
    assert m.dma_debug_errors == 4


def test_non_strict_mismatched_unmap_still_frees_the_mapping():
    """check_unmap() reports a size mismatch and then a direction mismatch and frees the
    entry in any case (hash_bucket_del; dma_entry_free): a second unmap of the same address
    is "tries to free DMA memory it has not allocated"."""
    m = machine(dma_debug_strict=False)
    h = m.dma_map_page(LOW, 0, 64, emu.DMA_TO_DEVICE)
    m.dma_unmap_page(h, 32, emu.DMA_TO_DEVICE)                   # size mismatch: 1 report
    assert m.dma_debug_errors == 1
    m.dma_unmap_page(h, 64, emu.DMA_TO_DEVICE)                   # the entry is gone
    assert m.dma_debug_errors == 2

    m = machine(dma_debug_strict=False)
    h = m.dma_map_page(LOW, 0, 64, emu.DMA_TO_DEVICE)
    m.dma_unmap_page(h, 32, emu.DMA_FROM_DEVICE)                 # size and direction: 2
    assert m.dma_debug_errors == 2


def test_dma_map_sg_entries_are_tracked_and_unmapped_per_entry():
    m = machine()
    sg = [(LOW, 0, 64), (HIGH, 100, 200)]
    hs = m.dma_map_sg(sg, emu.DMA_TO_DEVICE)
    assert hs == [0xA000, 0x64064]
    with pytest.raises(emu.DmaDebugError, match="different direction"):
        m.dma_unmap_sg(sg, emu.DMA_FROM_DEVICE)
    m.dma_unmap_sg(sg, emu.DMA_TO_DEVICE)
    assert m.dma_debug_errors == 1


@pytest.mark.parametrize("mapped,unmapped", [("sg", "page"), ("page", "sg")])
def test_unmap_with_the_other_function_is_reported(mapped, unmapped):
    """check_unmap() compares how the buffer was mapped: an sg entry freed with
    dma_unmap_page (or a page mapping with dma_unmap_sg) is "frees DMA memory with wrong
    function", in lib/dma-debug.c's wording (its "scather-gather" included)."""
    names = {"sg": "scather-gather", "page": "page"}
    m = machine()
    if mapped == "sg":
        (h,) = m.dma_map_sg([(LOW, 0, 64)], emu.DMA_TO_DEVICE)
    else:
        h = m.dma_map_page(LOW, 0, 64, emu.DMA_TO_DEVICE)
    before = m._S.copy()
    msg = (f"DMA-API: device driver frees DMA memory with wrong function [device address="
           f"0x000000000000a000] [size=64 bytes] [mapped as {names[mapped]}] "
           f"[unmapped as {names[unmapped]}]")
    with pytest.raises(emu.DmaDebugError) as e:
        if unmapped == "sg":
            m.dma_unmap_sg([(LOW, 0, 64)], emu.DMA_TO_DEVICE)
        else:
            m.dma_unmap_page(h, 64, emu.DMA_TO_DEVICE)
    assert msg in str(e.value)
    K = emu.consts
    e = int(m._S[K.H_R_DMADBG]) + K.DD_HDR                          # strict: the mapping stays
    assert m._S[e - K.DD_HDR + K.DD_COUNT] == 1
    assert (m._S[e:e + K.DD_W] == before[e:e + K.DD_W]).all()


def test_non_strict_unmap_reports_size_type_and_direction_in_order():
    m = machine(dma_debug_strict=False)
    m.dma_map_sg([(LOW, 0, 64)], emu.DMA_TO_DEVICE)
    m.dma_unmap_page(0xA000, 32, emu.DMA_FROM_DEVICE)             # size, type, direction
    assert m.dma_debug_errors == 3
    m.dma_unmap_page(0xA000, 32, emu.DMA_FROM_DEVICE)             # freed: not allocated
    assert m.dma_debug_errors == 4
    m.dma_map_sg([(LOW, 0, 64), (LOW + 1, 0, 64)], emu.DMA_FROM_DEVICE)
    m.dma_unmap_sg([(LOW, 0, 64), (LOW + 1, 0, 64)], emu.DMA_FROM_DEVICE)
    assert m.dma_debug_errors == 4                                # matched: no report


def test_the_sg_mark_is_no_direction_a_caller_can_pass():
    m = machine()
    for d in (emu.consts.DMA_FLAG_SG, emu.consts.DMA_FLAG_SG | emu.DMA_TO_DEVICE):
        with pytest.raises(ValueError, match="direction"):
            m.dma_map_page(LOW, 0, 64, d)
        with pytest.raises(ValueError, match="direction"):
            m.dma_unmap_page(0xA000, 64, d)
    assert m._S[int(m._S[emu.consts.H_R_DMADBG]) + emu.consts.DD_COUNT] == 0


# ---------------------------------------------------------------------------------------------
# 2.6.30 dma_sync_single_for_device on highmem (spec §3.5, §6.7)
# ---------------------------------------------------------------------------------------------


def _mapped_highmem_to_device(api):
    m = machine(dma_api=api)
    va = m.kmap(HIGH)
    m.read(va, 4096)
    m.write(va, b"A" * 4096)
    h = m.dma_map_page(HIGH, 0, 4096, emu.DMA_TO_DEVICE)
    assert m.device.read(h, 4096) == b"A" * 4096
    m.write(va + 64, b"second round")                 # hits a cached line: dirty again
    return m, va, h


def test_2630_sync_single_for_device_on_highmem_is_a_kernel_bug():
    m, va, h = _mapped_highmem_to_device("2.6.30")
    before = snapshot(m)
    with pytest.raises(emu.KernelBug) as e:
        m.dma_sync_single_for_device(h, 4096, emu.DMA_TO_DEVICE)
    msg = str(e.value)
    assert "BUG_ON(!virt_addr_valid" in msg and "dma_cache_maint" in msg
    assert "0x64000" in msg
    after = snapshot(m)
    assert after == before                             # machine state unchanged
    m.dma_unmap_page(h, 4096, emu.DMA_TO_DEVICE)       # the mapping is intact


def test_2630_sync_single_for_device_on_a_lowmem_buffer_running_into_highmem_bugs():
    """virt_addr_valid(start + size - 1) fails too when only the end lies past lowmem."""
    m = machine()
    h = m.dma_map_page(63, 4000, 200, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.KernelBug, match=r"BUG_ON\(!virt_addr_valid"):
        m.dma_sync_single_for_device(h, 200, emu.DMA_TO_DEVICE)


def test_2630_sync_single_for_device_on_lowmem_maintains():
    m = machine()
    va = m.page_address(LOW)
    m.read(va, 128)
    h = m.dma_map_page(LOW, 0, 128, emu.DMA_TO_DEVICE)
    m.write(va + 32, b"update")
    before = m.cache.stats["line_cleans"]
    m.dma_sync_single_for_device(h, 128, emu.DMA_TO_DEVICE)
    assert m.cache.stats["line_cleans"] - before == 4
    assert m.device.read(h + 32, 6) == b"update"


def test_v3_sync_single_for_device_on_highmem_maintains_by_page():
    m, va, h = _mapped_highmem_to_device("v3")
    before = m.cache.stats
    m.dma_sync_single_for_device(h, 4096, emu.DMA_TO_DEVICE)
    assert m.cache.stats["line_cleans"] - before["line_cleans"] == 128
    assert m.cache.stats["writebacks"] - before["writebacks"] == 1
    assert m.device.read(h + 64, 12) == b"second round"
    assert m.pkmap_count[1] == 2                       # pinned and released again
    m.dma_unmap_page(h, 4096, emu.DMA_TO_DEVICE)
    assert m.findings() == [] and m.check_integrity() == 0


@pytest.mark.parametrize("api", ["2.6.30", "v3"])
def test_sync_sg_for_device_works_for_highmem(api):
    m = machine(dma_api=api)
    va = m.kmap(HIGH)
    m.read(va, 4096)
    m.write(va, b"B" * 4096)
    m.kunmap(HIGH)                                     # lazily mapped: count 1
    sg = [(HIGH, 0, 4096), (LOW, 0, 64)]
    hs = m.dma_map_sg(sg, emu.DMA_TO_DEVICE)
    assert m.device.read(hs[0], 4096) == b"B" * 4096
    v2 = m.kmap(HIGH)
    assert v2 == va
    m.write(va + 100, b"sg second round")
    m.kunmap(HIGH)
    before = m.cache.stats
    m.dma_sync_sg_for_device(sg, emu.DMA_TO_DEVICE)
    assert m.cache.stats["line_cleans"] - before["line_cleans"] == 128 + 2
    assert m.device.read(hs[0] + 100, 15) == b"sg second round"
    assert m.pkmap_count[1] == 1
    m.dma_sync_sg_for_cpu(sg, emu.DMA_TO_DEVICE)
    m.dma_unmap_sg(sg, emu.DMA_TO_DEVICE)
    assert m.dma_debug_errors == 0
    assert m.findings() == [] and m.check_integrity() == 0


# ---------------------------------------------------------------------------------------------
# the offset >= PAGE_SIZE underflow of 2.6.30 dma_cache_maint_page is fixed (spec §3.4, §6.6)
# ---------------------------------------------------------------------------------------------


def _delta(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


@pytest.mark.parametrize("cpu", ["arm926", "feroceon", "xscale", "sa110"])
def test_offset_past_the_page_maintains_exactly_the_bytes_in_the_next_page(cpu):
    m = machine(cpu=cpu)
    v100 = m.kmap(HIGH)
    v101 = m.kmap(HIGH + 1)
    v102 = m.kmap(HIGH + 2)
    for va in (v100, v101, v102):
        m.read(va, 64)
        m.write(va, b"\x11" * 64)                     # two dirty lines at the start of each
    before = m.cache.stats
    h = m.dma_map_page(HIGH, 4100, 10, emu.DMA_FROM_DEVICE)
    assert h == (HIGH << 12) + 4100 == 0x65004
    # dma_inv_range(v101 + 4, v101 + 14): one line, both edges partial (cleaned twice)
    want = {"range_ops": 1, "line_cleans": 2, "line_invalidates": 1, "writebacks": 1,
            "bytes_written": 32}
    if cpu != "feroceon":
        want["drains"] = 1
    assert _delta(before, m.cache.stats) == want
    assert m.cache.probe(v101) is None
    assert m.phys_read(0x65000, 32) == b"\x11" * 32   # the partial line was written back
    assert m.cache.probe(v101 + 32).dirty              # the rest of page 101 untouched
    assert m.cache.probe(v100).dirty and m.cache.probe(v102).dirty
    assert m.outer_calls == {"inv": 1, "clean": 0, "flush": 0,
                             "last_range": (0x65004, 0x6500E)}
    assert m.pkmap_count.tolist()[1:4] == [2, 2, 2]
    m.device.write(h, b"0123456789")
    m.dma_unmap_page(h, 10, emu.DMA_FROM_DEVICE)
    assert m.read(v101, 16) == b"\x11" * 4 + b"0123456789" + b"\x11" * 2
    assert m.findings() == [] and m.check_integrity() == 0


def test_offset_past_the_page_unmapped_next_page_gets_only_the_outer_op():
    m = machine()
    m.kmap(HIGH)                                     # page 100 mapped, page 101 not
    before = m.cache.stats
    h = m.dma_map_page(HIGH, 4100, 10, emu.DMA_TO_DEVICE)
    assert h == 0x65004
    assert _delta(before, m.cache.stats) == {}
    assert m.outer_calls == {"inv": 0, "clean": 1, "flush": 0,
                             "last_range": (0x65004, 0x6500E)}


def test_offset_of_several_pages_spanning_two_more_pages():
    """offset 2*4096 + 4000, size 200: page 102 [4000, 4096) then page 103 [0, 104)."""
    m = machine()
    v102 = m.kmap(HIGH + 2)
    v103 = m.kmap(HIGH + 3)
    before = m.cache.stats
    h = m.dma_map_page(HIGH, 2 * 4096 + 4000, 200, emu.DMA_TO_DEVICE)
    assert h == ((HIGH + 2) << 12) + 4000
    # page 102: lines 0xfa0..0xfe0 (3); page 103: lines 0x00..0x60 (4)
    assert _delta(before, m.cache.stats) == {"range_ops": 2, "line_cleans": 7, "drains": 2}
    assert m.outer_calls["clean"] == 2
    assert m.outer_calls["last_range"] == (((HIGH + 3) << 12), ((HIGH + 3) << 12) + 104)
    assert (v102, v103) == (0xBFE01000, 0xBFE02000)
    m.dma_unmap_page(h, 200, emu.DMA_TO_DEVICE)
    assert m.dma_debug_errors == 0


def test_lowmem_offset_past_the_page_is_one_linear_range():
    m = machine()
    before = m.cache.stats
    h = m.dma_map_page(LOW, 4100, 10, emu.DMA_TO_DEVICE)
    assert h == 0xB004
    assert _delta(before, m.cache.stats) == {"range_ops": 1, "line_cleans": 1, "drains": 1}
    assert m.outer_calls["last_range"] == (0xB004, 0xB00E)


def test_ram_is_untouched_by_maintenance_of_clean_lines():
    """Sanity for the snapshots above: a map of lines that are not dirty writes nothing."""
    m = machine()
    ram = m.phys_read(0, NPAGES * 4096)
    m.dma_map_page(LOW, 0, 4096, emu.DMA_BIDIRECTIONAL)
    assert m.phys_read(0, NPAGES * 4096) == ram
    assert np.array_equal(m.pkmap_count, np.zeros(8, dtype=m.pkmap_count.dtype))


# ---------------------------------------------------------------------------------------------
# directions that compare equal to a valid one but are not ints, numpy sizes that would
# overflow, and the device naming its own argument: rejected, every byte of state unchanged
# ---------------------------------------------------------------------------------------------

def assert_raw_unchanged(m, raw):
    assert np.array_equal(raw[0], m._S) and np.array_equal(raw[1], m._B)


U64_MAX = np.uint64(2**64 - 1)
DIRECT_BAD = {
    "map direction 1.0": ("dma_map_page", (5, 0, 64, 1.0), r"^direction=1\.0.*valid_dma"),
    "map direction np.float64": ("dma_map_page", (LOW, 0, 16, np.float64(2)),
                                 r"direction=.*valid_dma_direction"),
    "map direction np.bool_": ("dma_map_page", (LOW, 0, 16, np.True_), r"direction=.*valid_dma"),
    "map size uint64 max": ("dma_map_page", (HIGH, 0, U64_MAX, 1),
                            r"^size=18446744073709551615.*end of RAM"),
    "map offset uint64 max": ("dma_map_page", (HIGH, U64_MAX, 16, 1),
                              r"^offset=0xffffffffffffffff: .*end of RAM"),
    "unmap direction 1.0": ("dma_unmap_page", (0xB000, 512, 1.0), r"^direction=1\.0"),
    "unmap size uint64 max": ("dma_unmap_page", (0xB000, U64_MAX, 1),
                              r"^size=18446744073709551615"),
    "unmap dma_addr uint64 max": ("dma_unmap_page", (U64_MAX, 512, 1),
                                  r"^dma_addr=0xffffffffffffffff: .*end of RAM"),
    "sync_for_cpu direction 2.0": ("dma_sync_single_for_cpu", (0xB000, 512, 2.0),
                                   r"^direction=2\.0"),
    "sync_for_device direction 0.0": ("dma_sync_single_for_device", (0xB000, 512, 0.0),
                                      r"^direction=0\.0"),
    "map_sg direction 1.0": ("dma_map_sg", ([(LOW, 0, 16)], 1.0), r"^direction=1\.0"),
    "unmap_sg direction 1.0": ("dma_unmap_sg", ([(LOW, 0, 16)], 1.0), r"^direction=1\.0"),
    "sync_sg_for_cpu direction 1.0": ("dma_sync_sg_for_cpu", ([(LOW, 0, 16)], 1.0),
                                      r"^direction=1\.0"),
    "sync_sg_for_device direction 1.0": ("dma_sync_sg_for_device", ([(LOW, 0, 16)], 1.0),
                                         r"^direction=1\.0"),
    "sg length uint64 max": ("dma_map_sg", ([(LOW, 0, U64_MAX)], 1),
                             r"^sg\[0\] length=18446744073709551615"),
    "device read negative": ("device.read", (-1, 4), r"^dma_addr=-1"),
    "device read past RAM": ("device.read", (NPAGES * 4096 - 2, 4), r"^dma_addr=0x13fffe"),
    "device read n": ("device.read", (0, 2**64), r"^n=18446744073709551616"),
    "device write past RAM": ("device.write", (2**40, b"x"), r"^dma_addr=0x10000000000"),
    "device write float": ("device.write", (4096.0, b"x"), r"^dma_addr=4096\.0"),
    "device write too long": ("device.write", (0, bytes(NPAGES * 4096 + 1)), r"^len\(data\)="),
}


@pytest.mark.filterwarnings("error::RuntimeWarning")    # no numpy overflow on the way
@pytest.mark.parametrize("case", list(DIRECT_BAD))
def test_non_int_directions_and_huge_numpy_sizes_are_rejected(case):
    call, args, msg = DIRECT_BAD[case]
    m, h = busy_machine()
    raw = (m._S.copy(), m._B.copy())
    before = snapshot(m)
    fn = m.device if call.startswith("device.") else m
    with pytest.raises(ValueError, match=msg):
        getattr(fn, call.split(".")[-1])(*args)
    assert_raw_unchanged(m, raw)
    assert_unchanged(m, before, h)


def test_numpy_int_directions_are_accepted():
    m = machine()
    h = m.dma_map_page(LOW, 0, 64, np.int8(1))
    m.dma_unmap_page(h, 64, np.uint64(1))
    assert m.dma_debug_errors == 0


def test_a_sync_checks_the_mapping_its_handle_belongs_to():
    """lib/dma-debug.c finds the entry by its handle, oldest first: a newer mapping
    overlapping an older one is synced against itself, whatever was unmapped before."""
    for unmap_first in (False, True):
        m = emu.Machine(lowmem_mb=1, highmem_mb=1, dma_debug_strict=False)
        x = m.dma_map_page(1, 0, 32, emu.DMA_TO_DEVICE)
        m.dma_map_page(5, 0, 4096, emu.DMA_BIDIRECTIONAL)          # 0x5000..0x6000
        b = m.dma_map_page(5, 2048, 4096, emu.DMA_TO_DEVICE)       # 0x5800..0x6800
        if unmap_first:
            m.dma_unmap_page(x, 32, emu.DMA_TO_DEVICE)
        m.dma_sync_single_for_cpu(b, 4096, emu.DMA_TO_DEVICE)
        m.dma_sync_single_for_cpu(b + 64, 128, emu.DMA_TO_DEVICE)  # a sub-range: still b's
        assert m.dma_debug_errors == 0
        # inside both, and no mapping in the sync's direction: the oldest, the bidirectional
        m.dma_sync_single_for_cpu(b + 64, 128, emu.DMA_FROM_DEVICE)
        assert m.dma_debug_errors == 1
    m = emu.Machine(lowmem_mb=1, highmem_mb=1, dma_debug_strict=True)
    m.dma_map_page(5, 0, 4096, emu.DMA_BIDIRECTIONAL)
    b = m.dma_map_page(5, 2048, 4096, emu.DMA_TO_DEVICE)
    with pytest.raises(emu.DmaDebugError, match=r"\[mapped with DMA_BIDIRECTIONAL\] "
                                                r"\[synced with DMA_FROM_DEVICE\]"):
        m.dma_sync_single_for_cpu(b + 64, 128, emu.DMA_FROM_DEVICE)


def test_a_handle_mapped_twice_is_unmapped_oldest_first():
    m = emu.Machine(lowmem_mb=1, highmem_mb=1, dma_debug_strict=True)
    x = m.dma_map_page(1, 0, 32, emu.DMA_TO_DEVICE)
    a = m.dma_map_page(5, 0, 64, emu.DMA_TO_DEVICE)
    b = m.dma_map_page(5, 0, 128, emu.DMA_FROM_DEVICE)
    assert a == b
    m.dma_unmap_page(x, 32, emu.DMA_TO_DEVICE)                     # reorders nothing
    m.dma_unmap_page(a, 64, emu.DMA_TO_DEVICE)                     # the older one: no error
    m.dma_unmap_page(b, 128, emu.DMA_FROM_DEVICE)
    assert m.dma_debug_errors == 0


# check_sync() of 2.6.30 lib/dma-debug.c: each check reports on its own and none stops the
# others (err_printk counts error_count and goes on): range, direction, then, unless the
# mapping is bidirectional, read-only memory synced for the CPU or write-only memory synced
# for the device
@pytest.mark.parametrize("api, mapped, sync, d, size, errors", [
    ("2.6.30", emu.DMA_TO_DEVICE, "dma_sync_single_for_cpu", emu.DMA_FROM_DEVICE, 64, 2),
    ("2.6.30", emu.DMA_TO_DEVICE, "dma_sync_single_for_cpu", emu.DMA_BIDIRECTIONAL, 64, 2),
    ("2.6.30", emu.DMA_FROM_DEVICE, "dma_sync_single_for_cpu", emu.DMA_TO_DEVICE, 64, 1),
    ("2.6.30", emu.DMA_FROM_DEVICE, "dma_sync_single_for_device", emu.DMA_TO_DEVICE, 64, 2),
    ("2.6.30", emu.DMA_FROM_DEVICE, "dma_sync_single_for_device", emu.DMA_TO_DEVICE, 128, 3),
    ("2.6.30", emu.DMA_TO_DEVICE, "dma_sync_single_for_device", emu.DMA_FROM_DEVICE, 128, 2),
    ("2.6.30", emu.DMA_BIDIRECTIONAL, "dma_sync_single_for_cpu", emu.DMA_TO_DEVICE, 128, 2),
    ("v3", emu.DMA_FROM_DEVICE, "dma_sync_single_for_device", emu.DMA_TO_DEVICE, 128, 3),
    ("v3", emu.DMA_BIDIRECTIONAL, "dma_sync_single_for_cpu", emu.DMA_TO_DEVICE, 128, 1),
])
def test_non_strict_sync_reports_each_failed_check(api, mapped, sync, d, size, errors):
    m = machine(dma_debug_strict=False, dma_api=api)
    h = m.dma_map_page(LOW, 0, 64, mapped)
    getattr(m, sync)(h, size, d)
    assert m.dma_debug_errors == errors


def test_sync_messages_use_the_kernel_fields():
    """"outside allocated range" names the mapping's address, its size, the sync's offset
    and size (no unit after it); "different direction" gives the mapping's size."""
    m = machine()
    h = m.dma_map_page(LOW, 256, 64, emu.DMA_FROM_DEVICE)
    with pytest.raises(emu.DmaDebugError, match=(
            r"^DMA-API: device driver syncs DMA memory outside allocated range \[device "
            r"address=0x000000000000a100\] \[allocation size=64 bytes\] \[sync offset=0\] "
            r"\[sync size=128\]$")):
        m.dma_sync_single_for_cpu(h, 128, emu.DMA_FROM_DEVICE)
    with pytest.raises(emu.DmaDebugError, match=r"\[sync offset=32\] \[sync size=64\]$"):
        m.dma_sync_single_for_cpu(h + 32, 64, emu.DMA_FROM_DEVICE)   # a sub-range sync
    with pytest.raises(emu.DmaDebugError, match=(
            r"^DMA-API: device driver syncs DMA memory with different direction \[device "
            r"address=0x000000000000a100\] \[size=64 bytes\] \[mapped with DMA_FROM_DEVICE\] "
            r"\[synced with DMA_TO_DEVICE\]$")):
        m.dma_sync_single_for_cpu(h, 16, emu.DMA_TO_DEVICE)
    assert m.dma_debug_errors == 3


def test_dma_debug_says_when_it_ran_out_of_entries():
    """lib/dma-debug.c disables itself when its entries run out ("debugging out of memory -
    disabling"); emu does too and says so: an unmap of the wrong size then goes unchecked."""
    from emu.machine import DMADBG_CAPACITY
    m = emu.Machine(lowmem_mb=32, highmem_mb=1)
    assert not m.dma_debug_disabled
    for p in range(DMADBG_CAPACITY):
        m.dma_map_page(p, 0, 64, emu.DMA_TO_DEVICE)
    assert not m.dma_debug_disabled
    m.dma_map_page(DMADBG_CAPACITY, 0, 64, emu.DMA_TO_DEVICE)
    assert m.dma_debug_disabled
    m.dma_unmap_page(0, 32, emu.DMA_TO_DEVICE)                     # wrong size: not checked
    assert m.dma_debug_errors == 0


def _spurious_completion():
    """A driver that maps a buffer, starts the device's transfer into it and waits for one
    run of its line's handler, then unmaps the buffer and reads it; the line also fires on
    its own once (``count = 1``), so a spurious IRQ can end the wait early."""
    from emu.exec.scenario import Scenario
    sc = Scenario("spurious completion", {"last_pkmap": 8})
    sc.task("drv", [
        {"op": "dma_map_page", "pfn": 10, "size": 64, "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_start", "dma_addr": "h", "byte": 0xC3, "n": 64, "line": 0},
        {"op": "wait_irq", "line": 0, "count": 1},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 64, "direction": "FROM_DEVICE"},
        {"op": "read", "va": 0xC000A000, "n": 4}])
    sc.irq("irqh", [{"op": "read", "va": 0xC000B000, "n": 4}], line=0, count=1)
    return sc


def test_unmapping_a_buffer_the_device_still_writes_is_an_error():
    """A handler run the device did not cause (an early raise of the line's own, or a
    spurious one during the transfer) ended the wait; the driver unmapped the buffer the
    device still owned, which nothing reported (dma-debug cannot see the device). emu now
    does, as a dma-debug error of its own, and the schedule fails; with the device's
    completion first (the default schedule) all is well."""
    from emu import consts as K
    from emu.exec.explore import explicit_choices, explore, replay
    sc = _spurious_completion()
    ex = explore(sc, 1)
    assert ex.failures > 0 and ex.minimal.outcome == "error"
    _, r = replay(ex.replay)
    assert r.outcome == "error" and "frees DMA memory a device is still writing" in r.message
    assert "[device address=0x000000000000a000] [size=64 bytes]" in r.message
    assert "transfer on IRQ line 0 has not completed" in r.message
    ld = sc.build()
    assert not ld.run(K.SCHED_DFS, []).failed
    spurious = explicit_choices(ld, ["after step 3 of drv raise spurious IRQ irqh"])  # (op 1)
    r = ld.run(K.SCHED_DFS, spurious)
    assert r.outcome == "error" and "still writing" in r.message


def test_unmapping_during_a_transfer_in_flight_is_counted_when_not_strict():
    from emu import consts as K
    from emu.exec.explore import explicit_choices
    sc = _spurious_completion()
    sc.machine["dma_debug_strict"] = False
    ld = sc.build()
    r = ld.run(K.SCHED_DFS, explicit_choices(ld, ["after step 3 of drv raise spurious IRQ irqh"]))
    assert r.outcome == "done" and ld.machine.dma_debug_errors == 1
