"""numba's on-disk cache, made safe for several processes compiling at once.

numba keeps one index file per function and names each compiled version ``<base>.N.nbc``, N
the lowest number free in the index *as it read it*. Two processes that compile different
versions of one function at the same time (emu's first-run warm-up and the helper process
it starts, or exploration workers: a function compiled for two signatures, or the two
``_make_kernels`` variants, which share a name) can pick the same N: one data file
overwrites the other and the index points a key at the other version's machine code, which
numba loads without checking. A 2-way cache then ran the 4-way kernel. (The same symptom has
a second cause, kernels sharing a qualified name, which emu.cache.kernels avoids and
tests/test_numbacache.py checks.)

:func:`safe_cache` gives a dispatcher's cache a ``save`` that names the data file after the
key (so two keys never share a file and two writers of one key write the same bytes), writes
it before the index names it, and updates the index under a lock (``fcntl`` where there is
one; elsewhere the last index writer wins, which loses an entry, a recompile later, never
mixes code).
"""

import hashlib
import types
from contextlib import contextmanager

try:
    import fcntl
except ImportError:                                 # not POSIX
    fcntl = None


@contextmanager
def _locked(path):
    if fcntl is None:
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def data_name(cache_file, key):
    """The data file of ``key`` in ``cache_file`` (a numba ``IndexDataCacheFile``)."""
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
    return "%s.%s.nbc" % (cache_file._index_name[:-len(".nbi")], digest)


def _save(self, key, data):
    """``IndexDataCacheFile.save`` for several processes (see the module docstring)."""
    name = data_name(self, key)
    self._save_data(name, data)
    with _locked(self._index_path + ".lock"):
        overloads = self._load_index()
        overloads[key] = name
        self._save_index(overloads)


def safe_cache(disp):
    """Give ``disp``'s on-disk cache (if it has one) the multi-process ``save``."""
    cache_file = getattr(getattr(disp, "_cache", None), "_cache_file", None)
    if cache_file is not None:
        cache_file.save = types.MethodType(_save, cache_file)
    return disp
