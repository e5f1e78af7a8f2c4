"""emu.exec.parallel: explorations split over worker processes give the serial result."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import astuple

import numba
import pytest

from emu import consts as K
from emu.exec import builtin
from emu.exec.explore import explore
from emu.exec.loaded import DEFAULT_MAX_STEPS
from emu.exec.parallel import _Search, merge, subtree, subtree_keys

from naive_explore import naive_explore


def subtrees(ld, bound):
    """``(prefix, floor)`` of every subtree, in search order."""
    return [(tuple(int(v) for v in prefix), floor)
            for prefix, floor in map(subtree, subtree_keys(ld, bound))]

JIT = not numba.config.DISABLE_JIT
needs_jit = pytest.mark.skipif(not JIT, reason="slow as plain Python (NUMBA_DISABLE_JIT=1)")


def _as_dict(ex):
    d = dict(vars(ex))
    d.pop("seconds")
    d["minimal"] = astuple(ex.minimal) if ex.minimal else None
    return d


def _schedules(ld, bound, prefix=(), floor=0):
    """The schedules a search visits, in order (one jitted call per schedule)."""
    x = ld.dfs_state(prefix, floor)
    out = []
    while True:
        out.append(tuple(ld.next_prefix(x)))        # the schedule about to run
        if ld.dfs(bound, DEFAULT_MAX_STEPS, 1, 0, x) & K.DFS_DONE:
            return out


@needs_jit
@pytest.mark.parametrize("bound", [0, 1, 2])
@pytest.mark.parametrize("make", [lambda: builtin.race(4, 1, "page_address"),
                                  lambda: builtin.race(4, 2, "page_address"),
                                  lambda: builtin.irq_getter(False, 4)],
                         ids=["i", "ii", "iii-plain"])
def test_the_subtrees_are_the_search_cut_in_order(make, bound):
    ld = make().build()
    whole = _schedules(ld, bound)
    parts = [s for prefix, floor in subtrees(ld, bound)
             for s in _schedules(ld, bound, prefix, floor)]
    assert parts == whole and len(whole) > 1


@needs_jit
@pytest.mark.parametrize("name,make,bound", [
    ("i", lambda: builtin.race(4, 1, "page_address"), 2),
    ("i-fixed", lambda: builtin.race(4, 1, "kmap_high_get"), 1),
    ("ii", lambda: builtin.race(4, 2, "page_address"), 1),
    ("iii-plain", lambda: builtin.irq_getter(False, 4), 2),
])
def test_two_workers_give_the_serial_exploration(name, make, bound):
    sc = make()
    serial = _as_dict(explore(sc, bound))
    assert _as_dict(explore(sc, bound, jobs=2)) == serial
    naive = naive_explore(sc.build(), bound)
    assert serial["schedules"] == naive["schedules"] and serial["lockdep"] == naive["lockdep"]


def test_merge_keeps_search_order_for_ties_and_first_appearances():
    from emu.exec.explore import Failure, Walk
    import numpy as np

    def w(runs, counts, seen, best=None, key=None, lockdep=""):
        x = np.zeros(K.X_W, np.int64)
        x[K.X_RUNS] = runs
        for o, (n, s) in enumerate(zip(counts, seen)):
            x[K.X_COUNT + o], x[K.X_SEEN + o] = n, s
        x[K.X_FAILURES] = runs - counts[K.RUN_DONE]
        return Walk(x, best, key, lockdep)

    a = Failure([0, 1], 1, 9, "done", 64, False)
    b = Failure([1], 1, 9, "done", 64, False)               # same key, later in the search
    walks = [w(3, [3, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]),
             w(4, [2, 2, 0, 0, 0, 0], [3, 1, 0, 0, 0, 0], a, (1, 9, -64, 1), "first"),
             w(5, [1, 0, 0, 4, 0, 0], [5, 0, 0, 1, 0, 0], b, (1, 9, -64, 1), "second")]
    m = merge(walks)
    assert m.x[K.X_RUNS] == 12 and m.best is a and m.lockdep == "first"
    order = sorted((o for o in range(K.NRUN) if m.x[K.X_COUNT + o]),
                   key=lambda o: m.x[K.X_SEEN + o])
    assert order == [K.RUN_DONE, K.RUN_DEADLOCK, K.RUN_ERROR]
    assert list(m.x[K.X_COUNT:K.X_COUNT + K.NRUN]) == [6, 2, 0, 4, 0, 0]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", K.MAX_JOBS + 1])
def test_jobs_is_checked(bad):
    with pytest.raises(ValueError, match="jobs"):
        explore(builtin.race(4, 1, "page_address"), 1, jobs=bad)


@needs_jit
def test_a_cap_or_stop_at_first_searches_serially():
    sc = builtin.race(4, 1, "page_address")
    assert _as_dict(explore(sc, 2, max_schedules=50, jobs=2)) == \
        _as_dict(explore(sc, 2, max_schedules=50))
    assert _as_dict(explore(sc, 2, stop_at_first=True, jobs=2)) == \
        _as_dict(explore(sc, 2, stop_at_first=True))


@needs_jit
@pytest.mark.parametrize("fault", ["exit-after-claim", "raise-after-claim"])
def test_a_subtree_a_worker_lost_is_searched_by_the_caller(fault):
    """A worker that dies (or raises) holding a subtree: the caller searches it again and the
    result is still the serial one; nothing waits for the lost worker."""
    from emu.exec.explore import walk
    ld = builtin.race(4, 1, "page_address").build()
    serial = merge([walk(ld, 2, DEFAULT_MAX_STEPS, prefix, floor)    # explore()'s result: as
                    for prefix, floor in subtrees(ld, 2)])          # the test above shows
    s = _Search(ld, 2, DEFAULT_MAX_STEPS, None)
    try:
        s.start(1, fault)
        with pytest.warns(RuntimeWarning, match="worker 1 stopped .*(exit code 3|injected)"):
            w = s.run()
        claimed = [i for i in range(len(s.tasks)) if s.owner[i] == 2]
        assert claimed == [s.order[0]]                # the worker took the first, then failed
        assert not s.procs[1].is_alive() or fault == "raise-after-claim"
    finally:
        s.stop()
    assert list(w.x) == list(serial.x)
    assert (w.best, w.best_key, w.lockdep) == (serial.best, serial.best_key, serial.lockdep)


@needs_jit
def test_the_caller_searches_alongside_its_workers():
    """jobs=2 is this process and one worker; every subtree is claimed once, by one of them."""
    ld = builtin.race(4, 1, "page_address").build()
    s = _Search(ld, 3, DEFAULT_MAX_STEPS, None)
    try:
        s.start(1)
        assert len(s.procs) == 1
        s.run()
    finally:
        s.stop()
    assert set(s.owner) <= {1, 2} and 1 in set(s.owner)
    assert not any(p.is_alive() for p in s.procs.values())


def _explore_in_daemon(q):
    """A daemonic process's exploration with jobs=2 (a multiprocessing.Pool worker's)."""
    try:
        q.put(_as_dict(explore(builtin.race(4, 1, "page_address"), 2, jobs=2)))
    except BaseException as e:                              # sent back to the test
        q.put(f"{type(e).__name__}: {e}")


@needs_jit
def test_a_daemonic_process_explores_alone():
    """In a Pool worker (daemonic: no children allowed) explore(jobs=2) raised
    'AssertionError: daemonic processes are not allowed to have children'."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_explore_in_daemon, args=(q,), daemon=True)
    p.start()
    got = q.get(timeout=120)
    p.join(60)
    assert got == _as_dict(explore(builtin.race(4, 1, "page_address"), 2))


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


_LONG_SEARCH = ("from emu.exec import builtin\nfrom emu.exec.explore import explore\n"
                "if __name__ == '__main__':\n"      # a bound-5 search of (i): about a minute
                "    explore(builtin.race(8, 1, 'page_address'), bound=5, jobs=2)\n")


def _workers_of(p, poll=0.2):
    """The worker processes of ``p`` (waiting until one has started)."""
    deadline = time.monotonic() + 120
    workers = []
    while not workers and time.monotonic() < deadline:
        time.sleep(poll)
        workers = [c for c in _children(p.pid) if "spawn_main" in
                   open(f"/proc/{c}/cmdline").read()]
    assert workers, "no worker started"
    return workers


@needs_jit
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_a_worker_stops_when_the_caller_is_killed():
    """SIGTERM or SIGKILL skip the caller's cleanup (``_Search.stop``): its workers must not
    go on searching alone."""
    p = subprocess.Popen([sys.executable, "-c", _LONG_SEARCH])
    try:
        workers = _workers_of(p)
        time.sleep(3)                                   # the worker is searching now
        assert p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.wait()
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
        for w in left:
            os.kill(w, signal.SIGKILL)
        assert not left, "a worker outlived its caller"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@needs_jit
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads /proc (Linux)")
def test_ctrl_c_goes_to_the_caller_not_to_a_starting_worker():
    """A terminal's Ctrl-C reaches the whole process group. A worker still starting its
    interpreter died of it with "Fatal Python error: init_import_site" (about one Ctrl-C in
    three in the first second); workers start with SIGINT blocked, and the caller stops them."""
    p = subprocess.Popen([sys.executable, "-c", _LONG_SEARCH], stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        workers = _workers_of(p, poll=0.002)
        with open(f"/proc/{workers[0]}/status") as f:
            blocked = int(f.read().split("SigBlk:")[1].split()[0], 16)
        assert blocked & (1 << (signal.SIGINT - 1)), "a worker takes SIGINT"
        os.killpg(p.pid, signal.SIGINT)
        err = p.communicate(timeout=60)[1].decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGINT and "KeyboardInterrupt" in err
    assert "Fatal Python error" not in err
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers))


def test_the_subtrees_of_a_long_run_are_held_compactly():
    """A run of d decisions has about d subtrees, the k-th starting with k + 1 choices: held
    as prefixes they took memory (and pickling to each worker) quadratic in d, gigabytes
    for a run near the decision log's 65,536 decisions."""
    from emu.exec.scenario import Scenario
    sc = Scenario("long", {"last_pkmap": 4, "lowmem_mb": 2})
    sc.task("big", [{"op": "fill", "va": 0xC0000000, "byte": 1, "n": 1 << 15}])
    sc.task("small", [{"op": "kmap_flush_unused"}])
    ld = sc.build()
    s = _Search(ld, 1, DEFAULT_MAX_STEPS, None)
    s.stop()
    assert len(s.tasks) > 2000
    assert all(len(t) == 2 and all(type(v) is int for v in t) for t in s.tasks)
    keys = subtree_keys(ld, 1)
    prefix, floor = subtree(keys[5])
    assert list(prefix[:-1]) == [0] * (floor - 1) and prefix[-1] >= 1
