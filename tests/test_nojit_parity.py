"""``NUMBA_DISABLE_JIT=1`` (the kernels as plain Python, for debugging) gives what the jitted
kernels give: each snippet runs in two subprocesses, one per mode, and prints JSON."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import emu

ROOT = str(Path(emu.__file__).resolve().parent.parent)


def _run(code, nojit):
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    if nojit:
        env["NUMBA_DISABLE_JIT"] = "1"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    mode = "NUMBA_DISABLE_JIT=1" if nojit else "jitted"
    assert r.returncode == 0, f"{mode}:\n{r.stderr}"
    return r.stdout


def _same_both_ways(code):
    jit = _run(code, False)
    assert _run(code, True) == jit
    return jit


def test_exploration_with_ram_writes_runs_as_plain_python():
    # save_checkpoint ORed a numpy uint8 block mask with (pfn << 8): an OverflowError in
    # plain Python as soon as a checkpointed schedule had written RAM above page 0
    out = _same_both_ways("""
        import json
        from emu.exec.builtin import race
        from emu.exec.explore import explore
        ex = explore(race(4, 1, "page_address"), bound=1)
        print(json.dumps([ex.schedules, ex.failures, ex.max_lost_bytes, ex.replay,
                          ex.switches]))
        """)
    assert '"after step 1 of dma run writer"' in out


def test_direct_calls_return_python_ints():
    # the jitted entry returns a Python int; plain Python returned numpy.int64 (json.dumps
    # refused it, and arithmetic on it wrapped around at 2**63)
    _same_both_ways("""
        import json
        import emu
        m = emu.Machine(lowmem_mb=1, highmem_mb=1, last_pkmap=4)
        p = m.highmem_pfns[0]
        out = [m.kmap(p), m.kmap_high(p), m.kmap_high_get(p), m.kmap(1),
               m.dma_map_page(p, 0, 64, emu.DMA_TO_DEVICE)]
        out += m.dma_map_sg([(p, 64, 64), (2, 0, 32)], emu.DMA_TO_DEVICE)
        assert all(type(v) is int for v in out), [type(v) for v in out]
        print(json.dumps(out))
        """)
