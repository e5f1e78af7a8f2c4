"""Exploration on several CPUs, with the serial result.

The depth-first search visits schedules in lexicographic order of their choice vectors. The
default run (every choice 0) splits that order into subtrees: the default schedule itself,
then, for each decision ``k`` of it from the last to the first and each other choice ``c``
the bound allows there, the schedules that start ``[0] * k + [c]`` (until ``k`` they ran as
the default run did, so its log says how many choices there were and whether one is a
preemption). Worker processes search the subtrees (largest first: those that branch
earliest); the results merge in search order, which is what makes counts, the order of
outcomes, the best failure (ties go to the earlier schedule) and the lockdep report the
serial search's.
"""

import multiprocessing

import numpy as np

from .. import consts as K
from .loaded import DEFAULT_LOG

_worker = {}                    # in a worker process: its Loaded scenario


def subtrees(ld, bound):
    """``(prefix, floor)`` of every subtree, in search order (see the module docstring)."""
    outcome, d, npre, lost = ld.run_raw(())
    nalt, choice, lon, _ = ld.last_log(d)
    out = [((), DEFAULT_LOG)]                       # floor past every decision: this one only
    for k in range(d - 1, -1, -1):
        if lon[k] > bound:                          # a preemption, with a bound of 0
            continue
        out.extend(((0,) * k + (c,), k + 1) for c in range(1, int(nalt[k])))
    return out


def _init(scenario_dict):
    from .scenario import Scenario
    _worker["ld"] = Scenario.from_dict(scenario_dict).build()


def _search(task):
    from .explore import walk
    i, prefix, floor, bound, max_steps = task
    return i, walk(_worker["ld"], bound, max_steps, prefix, floor)


def merge(walks):
    """One :class:`emu.exec.explore.Walk` from the subtrees' walks, given in search order."""
    from .explore import Walk
    x = np.zeros(K.X_W, np.int64)
    for k in (K.X_RUNS, K.X_FAILURES, K.X_DEADLOCKS, K.X_DECISIONS, K.X_EXECUTED):
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


def walk_parallel(ld, bound, max_steps, jobs, bar=None):
    """The search :func:`emu.exec.explore.walk` does from the start, on ``jobs`` processes."""
    tasks = subtrees(ld, bound)
    order = sorted(range(len(tasks)), key=lambda i: tasks[i][1])    # earliest branch first
    work = [(i, tasks[i][0], tasks[i][1], bound, max_steps) for i in order]
    walks = [None] * len(tasks)
    ctx = multiprocessing.get_context("spawn")      # no fork of a process that holds numba
    pool = ctx.Pool(min(jobs, len(tasks)), _init, (ld.scenario.to_dict(),))
    try:
        for i, w in pool.imap_unordered(_search, work):
            walks[i] = w
            if bar is not None:
                bar.update(int(w.x[K.X_RUNS]))
        pool.close()
    finally:
        pool.terminate()                            # Ctrl-C or an error: stop the workers now
        pool.join()
    return merge(walks)
