"""``emu demo``: the 2009 race (data lost with page_address pinning, none with kmap_high_get),
the plain-lock IRQ deadlock, and the kmap_lock profile's cycles per pair.

The demo runs once (a module-scoped fixture: a few seconds once the kernels are compiled);
each test reads its output.
"""

import io
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest

from emu.cli import main
from emu.cost.profile import profile
from emu.cost.tables import cost_vector
from emu import consts as K


@pytest.fixture(scope="module")
def demo():
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(["demo"])
        except SystemExit as e:          # argparse errors
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def test_demo_exits_0(demo):
    rc, out, err = demo
    assert rc == 0, err
    assert out.startswith("emu demo:")
    assert re.search(r"emu demo finished in \d+\.\d s", out)
    for part in ("[1/3]", "[2/3]", "[3/3]"):
        assert part in out


def test_demo_loses_data_with_page_address_pinning(demo):
    _, out, _ = demo
    m = re.search(r"unpinned \(page_address\): (\d+) schedules with <= 2 preemptions explored "
                  r"in [\d.]+ s: (\d+) lose data, up to (\d+) bytes", out)
    assert m, out
    schedules, failures, lost = (int(x) for x in m.groups())
    assert schedules > 0 and 0 < failures <= schedules and lost > 0
    # the minimal failing schedule needs one preemption (spec arm-cycle-costs §5.1)
    assert re.search(r"minimal failing schedule \(1 preemption\): after step \d+ of dma run "
                     r"writer", out)
    assert "discarded by the invalidate, OUTSIDE the DMA buffer" in out


def test_demo_loses_nothing_with_kmap_high_get(demo):
    _, out, _ = demo
    line = next(ln for ln in out.splitlines() if "pinned (kmap_high_get):" in ln
                and "unpinned" not in ln)
    assert re.search(r"\d+ schedules, no data lost", line), line
    assert "LOST" not in line


def test_demo_shows_the_plain_lock_irq_deadlock(demo):
    _, out, _ = demo
    plain = next(ln for ln in out.splitlines() if "plain spin_lock:" in ln)
    assert "DEADLOCK" in plain and "no deadlock" not in plain
    assert "lock(kmap_lock); <Interrupt> lock(kmap_lock)" in out
    assert "*** DEADLOCK ***" in out
    assert "lockdep: inconsistent" in out and "IN-HARDIRQ-W" in out
    safe = next(ln for ln in out.splitlines() if "spin_lock_irq:" in ln)
    assert "no deadlock" in safe


def test_demo_prints_the_profiles_cycles_per_pair(demo):
    _, out, _ = demo
    m = re.search(r"Per pair it is ([\d.]+) cycles; the real exposure is the irqs-off window "
                  r"of a wrap, (\d+) cycles \(([\d.]+) us\)", out)
    assert m, out
    per_pair, wrap, wrap_us = float(m.group(1)), int(m.group(2)), float(m.group(3))
    # the demo profiles dma-irq on arm926 at half scale, seed 0: the same numbers
    doc, _ = profile("arm926", "dma-irq", 0, scale=0.5)
    assert per_pair == doc["irq_overhead_cycles_per_pair"]
    assert wrap == doc["irqs_off_max_cycles"]
    assert wrap_us == doc["irqs_off_max_us"]
    # about the masking cost of spec §1.4 (21 cycles on ARM926) ...
    c = cost_vector("arm926")
    masking = int(c[K.UOP_IRQ_DISABLE] + c[K.UOP_IRQ_ENABLE] + c[K.UOP_IRQ_SAVE]
                  + c[K.UOP_IRQ_RESTORE])
    assert abs(per_pair - masking) < 1
    # ... and the wrap's window is orders of magnitude longer (spec §1.6)
    assert wrap > 100 * masking
    assert f"IRQ-disabling kmap_lock costs {doc['irq_overhead_cycles_per_pair']} cycles per " \
           f"kmap_high+kunmap_high pair" in out


def test_demo_json_is_one_deterministic_document(demo):
    """``emu demo --json``: the four explorations as ``emu race --json`` rows (same fields)
    and the ``emu profile --json`` document; no wall-clock time, so two runs are identical."""
    import json
    runs = []
    for _ in range(2):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            assert main(["demo", "--json"]) == 0
        runs.append(out.getvalue())
    assert runs[0] == runs[1]
    doc = json.loads(runs[0])
    rows = [(r["scenario"], r["dma_pinning"], r["kmap_high_get"], r["data_lost"], r["deadlock"])
            for r in doc["results"]]
    assert rows == [("i", "page_address", False, True, False),
                    ("i", "kmap_high_get", True, False, False),
                    ("iii", "kmap_high_get", False, False, True),
                    ("iii", "kmap_high_get", True, False, False)]
    assert doc["results"][0]["lost_bytes"] == 128 and doc["results"][0]["replay"]
    assert doc["profile"]["irq_overhead_cycles_per_pair"] == 21.0
    # the text demo says the same
    assert f"{doc['results'][0]['schedules_explored']} schedules" in demo[1]
