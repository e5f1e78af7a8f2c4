"""Exploration on several CPUs, with the serial result.

The depth-first search visits schedules in lexicographic order of their choice vectors. The
default run (every choice 0) splits that order into subtrees: the default schedule itself,
then, for each decision ``k`` of it from the last to the first and each other choice ``c``
the bound allows there, the schedules that start ``[0] * k + [c]`` (until ``k`` they ran as
the default run did, so its log says how many choices there were and whether one is a
preemption). The calling process and ``jobs - 1`` worker processes search the subtrees
(largest first: those that branch earliest), each claiming the next one from a shared
counter: the caller starts at once while the workers start up (about a second: a fresh
interpreter, numpy, numba and the cached kernels), so a search that ends before they are
ready costs what the serial one does. The results merge in search order, which is what makes
counts, the order of outcomes, the best failure (ties go to the earlier schedule) and the
lockdep report the serial search's, whoever searched which subtree.

A worker that fails or dies leaves its claimed subtree to the caller, which searches it
again and says so (a ``RuntimeWarning``); nothing waits on a process that is gone.
"""

import multiprocessing
import os
import queue
import signal
import time
import traceback
import warnings
from contextlib import contextmanager

import numpy as np

from .. import consts as K

#: Seconds to wait for the claim counter's lock; it is held for a few instructions, so
#: running out means a process died holding it.
CLAIM_TIMEOUT = 30
#: Seconds between checks that the workers are alive while waiting for their results.
POLL = 0.2


def subtree_keys(ld, bound):
    """Every subtree of the search, in search order (see the module docstring).

    Their prefixes, held at once, would take memory quadratic in the default run's length, so
    subtrees are named by keys.

    Parameters
    ----------
    ld : Loaded
    bound : int
        Preemption bound.

    Returns
    -------
    list of tuple
        ``(k, c)``: the schedules that start ``[0] * k + [c]``; ``(-1, 0)`` is the default
        schedule alone.
    """
    outcome, d, npre, lost = ld.run_raw(())
    nalt, choice, lon, _ = ld.last_log(d)
    out = [(-1, 0)]
    for k in range(d - 1, -1, -1):
        if lon[k] > bound:                          # a preemption, with a bound of 0
            continue
        out.extend((k, c) for c in range(1, int(nalt[k])))
    return out


def subtree(key):
    """The prefix and floor of a subtree.

    Parameters
    ----------
    key : tuple
        A key of :func:`subtree_keys`.

    Returns
    -------
    tuple
        ``(prefix, floor)`` for :func:`emu.exec.explore.walk`.
    """
    from .loaded import DEFAULT_LOG
    k, c = key
    if k < 0:
        return (), DEFAULT_LOG                      # floor past every decision: this one only
    prefix = np.zeros(k + 1, np.int64)
    prefix[k] = c
    return prefix, k + 1


def merge(walks):
    """One search result from the subtrees' results.

    Parameters
    ----------
    walks : list of emu.exec.explore.Walk
        The subtrees' walks, in search order.

    Returns
    -------
    emu.exec.explore.Walk
        Counts summed; the best failure and the first lockdep report as a serial search
        would have found them.
    """
    from .explore import Walk
    x = np.zeros(K.X_W, np.int64)
    for k in (K.X_RUNS, K.X_FAILURES, K.X_DEADLOCKS, K.X_DECISIONS, K.X_EXECUTED, K.X_STALE):
        x[k] = sum(int(w.x[k]) for w in walks)
    x[K.X_MAX_LOST] = max(int(w.x[K.X_MAX_LOST]) for w in walks)
    for pos, w in enumerate(walks):
        for o in range(K.NRUN):
            if w.x[K.X_COUNT + o] and not x[K.X_COUNT + o]:
                x[K.X_SEEN + o] = (pos << 40) + int(w.x[K.X_SEEN + o])   # first in search order
            x[K.X_COUNT + o] += w.x[K.X_COUNT + o]
    failed = [(w.best_key, pos) for pos, w in enumerate(walks) if w.best is not None]
    best = walks[min(failed)[1]] if failed else None
    lockdep = next((w.lockdep for w in walks if w.lockdep), "")
    return Walk(x, best.best if best else None, best.best_key if best else None, lockdep)


def claim(counter, owner, who, order):
    """The next unclaimed subtree for a process.

    Parameters
    ----------
    counter : multiprocessing.Value
        Shared int: claims so far.
    owner : multiprocessing.Array
        Shared: the claimant of each subtree, ``who + 1``.
    who : int
        The claiming process (0: the caller).
    order : sequence of int
        Subtree indices in claiming order.

    Returns
    -------
    int or None
        The subtree's index, or None when all are claimed.

    Raises
    ------
    RuntimeError
        The claim lock stayed held for ``CLAIM_TIMEOUT`` seconds (a worker died holding it).
    """
    lock = counter.get_lock()
    if not lock.acquire(timeout=CLAIM_TIMEOUT):
        raise RuntimeError(f"exploration: no claim on a subtree in {CLAIM_TIMEOUT} s "
                           "(a worker process died holding the claim lock)")
    try:
        k = counter.value
        if k >= len(order):
            return None
        counter.value = k + 1
        owner[order[k]] = who + 1
        return order[k]
    finally:
        lock.release()


@contextmanager
def _sigint_blocked():
    """SIGINT blocked in this thread meanwhile, so that processes started here inherit it
    blocked: a terminal's Ctrl-C goes to the whole process group, and a worker interrupted
    while its interpreter starts dies with "Fatal Python error: init_import_site". The caller
    takes the Ctrl-C (delivered once unblocked) and stops its workers."""
    if not hasattr(signal, "pthread_sigmask"):          # (not POSIX)
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _ParentWatch:
    """A worker's progress callback (``walk`` calls it every chunk, a few ms apart): when the
    caller is gone (killed by SIGTERM or SIGKILL, which skip its cleanup), the worker ends
    at once instead of searching on alone."""

    def __init__(self):
        parent = multiprocessing.parent_process()       # (the caller's pid even if it is gone)
        self.parent = parent.pid if parent is not None else os.getppid()

    def update(self, n):
        if os.getppid() != self.parent:                 # reparented: the caller died
            os._exit(1)


def _worker(who, scenario_dict, tasks, order, bound, max_steps, counter, owner, results,
            fault):
    """A worker process: search subtrees until none is left, sending ``(who, i, walk)`` for
    each, or ``(who, None, traceback)`` if it cannot go on (the caller then searches what it
    claimed)."""
    try:
        from .explore import walk
        from .scenario import Scenario
        watch = _ParentWatch()
        ld = Scenario.from_dict(scenario_dict).build()
        while (i := claim(counter, owner, who, order)) is not None:
            if fault == "exit-after-claim":             # tests: die holding a claimed subtree
                os._exit(3)
            if fault == "raise-after-claim":
                raise RuntimeError("injected fault")
            prefix, floor = subtree(tasks[i])
            results.put((who, i, walk(ld, bound, max_steps, prefix, floor, bar=watch)))
    except BaseException:                               # reported, then the process ends
        results.put((who, None, traceback.format_exc()))


class _Search:
    """One parallel search, the caller's side: it claims and searches subtrees too, takes in
    the workers' results and searches again what a lost worker had claimed."""

    def __init__(self, ld, bound, max_steps, bar):
        self.ld, self.bound, self.max_steps, self.bar = ld, bound, max_steps, bar
        self.tasks = tasks = subtree_keys(ld, bound)    # in search order, as merge wants
        # earliest first: by floor (k + 1; the default schedule's is past every decision)
        self.order = sorted(range(len(tasks)), key=lambda i: (tasks[i][0] < 0, tasks[i][0]))
        self.walks = [None] * len(tasks)
        self.ctx = multiprocessing.get_context("spawn")  # no fork of a process holding numba
        with _sigint_blocked():                         # (may start the resource tracker)
            self.counter = self.ctx.Value("q", 0)
            self.owner = self.ctx.Array("i", len(tasks), lock=False)
            self.results = self.ctx.Queue()
        self.procs = {}
        self.lost = {}                                  # worker -> why it is gone

    def start(self, workers, fault=None):
        """Start up to ``workers`` worker processes (fewer if there are fewer subtrees or the
        system will not start more; none in a daemonic process, such as a
        ``multiprocessing.Pool`` worker, which may not have children: this process then
        searches alone). ``fault`` is for tests (see :func:`walk_parallel`)."""
        if multiprocessing.current_process().daemon:
            return
        args = (self.ld.scenario.to_dict(), self.tasks, self.order, self.bound, self.max_steps,
                self.counter, self.owner, self.results, fault)
        for who in range(1, min(workers + 1, len(self.tasks))):
            p = self.ctx.Process(target=_worker, args=(who, *args), daemon=True)
            try:
                with _sigint_blocked():
                    p.start()
            except OSError:                             # no process: fewer workers
                continue
            self.procs[who] = p
        if fault and self.procs:                        # tests: let a worker claim first
            deadline = time.monotonic() + CLAIM_TIMEOUT
            while self.counter.value == 0 and time.monotonic() < deadline:
                time.sleep(0.01)

    def update(self, n):
        """Progress of the caller's own search (``walk`` calls it every chunk); also takes in
        what the workers sent meanwhile."""
        if self.bar is not None:
            self.bar.update(n)
        self.drain(block=False)

    def drain(self, block):
        """Take in the workers' messages (waiting up to :data:`POLL` s for one if ``block``)."""
        while True:
            try:
                who, i, w = self.results.get(block, POLL)
            except queue.Empty:
                return
            block = False
            if i is None:
                self._lose(who, w.strip().splitlines()[-1])
            elif self.walks[i] is None:
                self.walks[i] = w
                if self.bar is not None:
                    self.bar.update(int(w.x[K.X_RUNS]))

    def search(self, i):
        from .explore import walk
        prefix, floor = subtree(self.tasks[i])
        self.walks[i] = walk(self.ld, self.bound, self.max_steps, prefix, floor, bar=self)

    def _lose(self, who, why):
        if who not in self.lost:
            self.lost[who] = why
            warnings.warn(f"explore: worker {who} stopped ({why}); this process searches "
                          f"what it had claimed", RuntimeWarning, stacklevel=2)

    def orphans(self):
        """Subtrees claimed by workers that are gone or gave up, with no result from them."""
        gone = [who for who, p in self.procs.items() if not p.is_alive()]
        if gone:
            self.drain(block=False)                     # what they sent before they went
        for who in gone:
            code = self.procs[who].exitcode
            if code or any(w is None and self.owner[i] == who + 1
                           for i, w in enumerate(self.walks)):
                self._lose(who, f"exit code {code}")
        lost = {who + 1 for who in self.lost}
        return [i for i, w in enumerate(self.walks) if w is None and self.owner[i] in lost]

    def run(self):
        while (i := claim(self.counter, self.owner, 0, self.order)) is not None:
            self.search(i)
        while any(w is None for w in self.walks):
            self.drain(block=True)
            for i in self.orphans():
                self.search(i)
        return merge(self.walks)

    def stop(self):
        for p in self.procs.values():
            if p.is_alive():
                p.terminate()                           # done, Ctrl-C or an error: stop now
        for p in self.procs.values():
            p.join()
        self.results.close()
        self.results.cancel_join_thread()


def walk_parallel(ld, bound, max_steps, jobs, bar=None, _fault=None):
    """The search :func:`emu.exec.explore.walk` does from the start, on several processes: this
    one and ``jobs - 1`` workers.

    Parameters
    ----------
    ld : Loaded
    bound : int
        Preemption bound.
    max_steps : int
        Step limit of each schedule.
    jobs : int
        Processes, ``>= 2``.
    bar : object, optional
        A progress bar (``update(n)``).
    _fault : str, optional
        For tests: ``"exit-after-claim"`` or ``"raise-after-claim"`` makes each worker fail
        once it holds a subtree (and the caller lets a worker claim first).

    Returns
    -------
    emu.exec.explore.Walk
        The serial search's result.
    """
    s = _Search(ld, bound, max_steps, bar)
    try:
        s.start(jobs - 1, _fault)
        return s.run()
    finally:
        s.stop()
