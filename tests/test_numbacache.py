"""emu._numbacache: numba's on-disk cache with several processes compiling at once."""

import multiprocessing
import types

import pytest
from numba.core.caching import IndexDataCacheFile

from emu import _jit
from emu._numbacache import _save, data_name, safe_cache

STAMP = ("emu-test", 1)


def _file(path, safe):
    f = IndexDataCacheFile(str(path), "kernels.find-209.py311", STAMP)
    if safe:
        f.save = types.MethodType(_save, f)
    return f


def _race(f, key_a, key_b):
    """Two writers that both read the index before either wrote it (the second one's read
    is stale): what two processes compiling two versions at once do."""
    f.save(key_a, "code of A")
    stale = f._load_index
    f._load_index = lambda: {}
    try:
        f.save(key_b, "code of B")
    finally:
        f._load_index = stale


def test_numbas_own_save_gives_one_key_the_other_keys_code(tmp_path):
    """Why emu replaces it: the same race with numba's save mixes the versions up."""
    f = _file(tmp_path, safe=False)
    _race(f, ("sig", "ways=4"), ("sig", "ways=0"))
    assert f.load(("sig", "ways=0")) == "code of B"
    _race(f, ("sig", "ways=0"), ("sig", "ways=4"))
    g = _file(tmp_path, safe=False)
    loaded = {g.load(("sig", "ways=4")), g.load(("sig", "ways=0"))}
    assert loaded != {"code of A", "code of B"}         # one key now has the other's code


def test_safe_save_never_returns_another_keys_code(tmp_path):
    f = _file(tmp_path, safe=True)
    _race(f, ("sig", "ways=4"), ("sig", "ways=0"))
    assert f.load(("sig", "ways=4")) in (None, "code of A")  # lost from the index at worst
    assert f.load(("sig", "ways=0")) == "code of B"
    f.save(("sig", "ways=4"), "code of A")
    assert f.load(("sig", "ways=4")) == "code of A" and f.load(("sig", "ways=0")) == "code of B"
    assert data_name(f, ("sig", "ways=4")) != data_name(f, ("sig", "ways=0"))


def _writer(path, who, n):
    f = _file(path, safe=True)
    for i in range(n):
        f.save(("sig", who, i), f"code of {who} {i}")


def test_two_processes_saving_at_once_keep_every_key_and_its_own_code(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    f = _file(tmp_path, safe=True)
    index = f._load_index()
    assert len(index) == 80
    for key in index:
        assert f.load(key) == f"code of {key[1]} {key[2]}"


@pytest.mark.skipif(_jit._dir is None or _jit.numba.config.DISABLE_JIT,
                    reason="needs numba's on-disk cache")
def test_emu_kernels_use_the_safe_save():
    from emu.cache import kernels
    from emu.exec import dfs
    for disp in (dfs.explore_dfs, kernels._findg, kernels._find4, kernels.find):
        assert disp._cache._cache_file.save.__func__ is _save
    assert safe_cache(object()) is not None             # nothing to patch: unchanged


def test_no_two_emu_kernels_share_a_qualified_name():
    """numba names a function's machine code after its module, qualified name and a
    per-process counter. Two kernels sharing a qualified name (the ``_make_kernels``
    variants did) can get one symbol in two processes (the warm-up and its helper); a third
    process loading both from the cache then links one's callers to the other's code."""
    import gc
    import importlib
    import pkgutil

    import emu
    from numba.core.dispatcher import Dispatcher

    if _jit.numba.config.DISABLE_JIT:
        pytest.skip("no dispatchers under NUMBA_DISABLE_JIT")
    for mod in pkgutil.walk_packages(emu.__path__, "emu."):
        if not mod.name.endswith(("plot", "chrome")):      # matplotlib-only modules
            importlib.import_module(mod.name)
    seen = {}
    for obj in gc.get_objects():
        if issubclass(type(obj), Dispatcher) and obj.py_func.__module__.startswith("emu."):
            name = (obj.py_func.__module__, obj.py_func.__qualname__)
            assert seen.setdefault(name, obj) is obj, f"two kernels named {name}"
    kernels = [n for n in seen if n[0] == "emu.cache.kernels"]
    assert ("emu.cache.kernels", "_make_kernels.<locals>.victim_4way") in kernels
    assert ("emu.cache.kernels", "_make_kernels.<locals>.victim_anyway") in kernels
    assert len(seen) > 100


def test_importing_emu_leaves_the_programs_own_numba_cache_dir(tmp_path):
    """emu set numba's global CACHE_DIR to its own directory on import, so the importing
    program's own ``cache=True`` functions were cached inside emu's package (and deleted
    with emu's stale caches); emu's kernels alone use it now."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "userfn.py").write_text(
        "import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
    code = ("import sys, numba.core.config as c; before = c.CACHE_DIR; import emu, userfn; "
            "from emu.cache import kernels; "
            "print(before == c.CACHE_DIR, userfn.f._cache._cache_path, "
            "kernels.find._cache._cache_path)")
    user = tmp_path / "user-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(user),
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(Path(emu_root()).parent)]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.split()
    assert out[0] == "True"
    assert Path(out[1]).parent == user                      # numba's own layout, not emu's
    assert Path(out[2]).is_relative_to(user / "emu")


def emu_root():
    import os

    import emu
    return os.path.dirname(emu.__file__)
