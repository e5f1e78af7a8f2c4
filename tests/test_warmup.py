"""emu.warmup and emu._jit: the parallel first-run compile and kernel-only helpers.

The compile itself is exercised by every other test; here, with the cache warm, the
plumbing: the helper process starts from a plain interpreter, takes exactly the jobs nobody
claimed and finishes them; the jobs compile the signatures the executors use; a warm cache
is recognised; a kernel helper called from Python says what it is instead of crashing.
"""

import glob
from functools import partial

import numba.core.config
import pytest

from emu import _jit
from emu import consts as K
from emu.warmup import _jobs, _start_helper, warmup

JIT = not numba.core.config.DISABLE_JIT


def _helper_run(claims):
    helper = _start_helper(str(claims))
    if helper is None:
        pytest.skip("one CPU: warm-up compiles in one process")
    assert helper.wait(timeout=600) == 0


@pytest.mark.skipif(not JIT, reason="no compiled kernels with NUMBA_DISABLE_JIT=1")
def test_helper_process_runs_every_unclaimed_job(tmp_path):
    warmup()
    _helper_run(tmp_path)
    n = len(_jobs())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [str(i) for i in range(n)] + [f"{i}.done" for i in range(n)])


@pytest.mark.skipif(not JIT, reason="no compiled kernels with NUMBA_DISABLE_JIT=1")
def test_helper_process_leaves_claimed_jobs_alone(tmp_path):
    n = len(_jobs())
    for i in range(n - 1):
        (tmp_path / str(i)).touch()
    _helper_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [str(i) for i in range(n)] + [f"{n - 1}.done"])


@pytest.mark.skipif(not JIT or _jit._dir is None, reason="needs numba's on-disk cache")
def test_cache_is_warm_after_warmup():
    warmup()
    assert not _jit.cold_cache()


@pytest.mark.skipif(not JIT, reason="helpers are plain Python with NUMBA_DISABLE_JIT=1")
def test_kernel_helper_called_from_python_raises():
    from emu.mm import pgtable
    with pytest.raises(TypeError, match=r"emu\.mm\.pgtable\.pte_clear is an emu kernel helper"):
        pgtable.pte_clear(None, 1)


@pytest.mark.skipif(not JIT or _jit._dir is None, reason="needs numba's on-disk cache")
def test_compile_jobs_use_the_signatures_their_callers_use():
    """Each kernel a job compiles has one version in the cache: the executors call it with the
    job's signature (else a first run would compile it twice, once per signature)."""
    warmup()
    kernels = [job.func.__self__ for job in _jobs() if isinstance(job, partial)]
    assert len(kernels) == len(_jobs()) - 1
    from emu.exec import sched
    for k in kernels + [sched.run]:                     # explore_dfs's callee, and Loaded.run's
        index = k._cache._cache_file._index_path
        versions = glob.glob(index[:-len(".nbi")] + ".*.nbc")
        assert len(versions) == 1, (k.py_func.__qualname__, versions)


@pytest.mark.skipif(not JIT, reason="no compile jobs with NUMBA_DISABLE_JIT=1")
def test_every_routine_the_executor_dispatches_has_a_compile_job():
    """warmup._jobs lists the step functions by hand; a routine added to core.dispatch but not
    there would compile inside the executors only, without the parallel warm-up."""
    from emu.exec import core
    steps = {getattr(core, n) for n in core.dispatch.py_func.__code__.co_names
             if n.endswith("_step")}
    jobs = {job.func.__self__ for job in _jobs() if isinstance(job, partial)}
    # every routine but R_USER's slot; kunmap_high_unpin runs kunmap_high's step
    assert len(steps) == len(set(K.ROUTINE_LABELS)) - 1
    assert steps <= jobs


@pytest.mark.skipif(not JIT or _jit._dir is None, reason="needs numba's on-disk cache")
def test_warmup_loads_the_cache_api_kernels_too():
    """The warm-up left the Cache API's range ops, load/store, replay, page_address and
    phys_write to their first call: ~9 s of silent compiling after a first run that said
    it had compiled everything. In a fresh process, warmup() alone loads each of them."""
    import os
    import subprocess
    import sys
    code = ("import emu.warmup as w; w.warmup(); "
            "from emu.cache import kernels as k, maint as m; from emu.exec import kernel as x; "
            "print(all(d.signatures for d in (k.cache_load, k.cache_store, k.replay, "
            "m.dma_range, x.page_address_of, x.phys_write)))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(_jit.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    assert out.split() == ["True"]


def test_compile_notice_is_said_for_a_compile_not_for_a_slow_load(monkeypatch, tmp_path):
    """A warm-cache load that a busy host makes slower than COMPILE_NOTICE_AFTER said
    "compiling emu kernels" (a timer decided); the notice now waits for numba to compile."""
    import io
    import time

    import numba
    monkeypatch.setattr(_jit, "COMPILE_NOTICE_AFTER", 0.05)
    out = io.StringIO()
    with _jit.compile_notice(stream=out):
        time.sleep(0.3)                             # slow, compiling nothing
    assert out.getvalue() == ""
    if not JIT:
        return
    with _jit.compile_notice(stream=out):
        time.sleep(0.2)
        numba.njit(lambda x: x + 1)(1)              # compiled in every process: no notice
    assert out.getvalue() == ""
    with _jit.compile_notice(stream=out):
        time.sleep(0.2)
        monkeypatch.setattr(_jit, "_dir", str(tmp_path))     # an empty on-disk cache
        _jit.njit(lambda x: x + 2)(1)               # a cached kernel's first compile
    assert out.getvalue() == ("emu: compiling emu kernels (first run only; cached "
                              "afterwards)...\nemu: compiled.\n")
