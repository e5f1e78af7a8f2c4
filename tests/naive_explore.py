"""A naive preemption-bounded DFS explorer: the reference for emu.exec.dfs.

Python and numpy over ``Loaded.run_raw`` (one schedule from the snapshot) and the decision log,
written from the CHESS-style definition: the successor of a run is its choice vector up to the
last decision that still has an untried alternative within the preemption bound, with that
decision's choice incremented.
"""

import numpy as np

from emu import consts as K
from emu.exec.loaded import OUTCOMES


def successor(nalt, choice, lon, bound):
    """The DFS successor of one run's log, or None."""
    pre = (lon != 0) & (choice != 0)
    before = np.cumsum(pre) - pre                       # preemptions before each decision
    ok = (choice + 1 < nalt) & (before + lon <= bound)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return None
    nxt = choice[:idx[-1] + 1].copy()
    nxt[-1] += 1
    return nxt


def _schedules(ld, bound, min_pre):
    """The DFS within ``bound``, in order: ``(outcome, d, npre, lost, nalt, choice, lon)`` of
    each schedule with at least ``min_pre`` preemptions, yielded while the machine still holds
    its run (the others run too: the search goes on from them)."""
    prefix = np.zeros(0, np.int64)
    while prefix is not None:
        outcome, d, npre, lost = ld.run_raw(prefix)
        nalt, choice, lon, _ = ld.last_log(d)
        if npre >= min_pre:
            yield outcome, d, npre, lost, nalt, choice, lon
        prefix = successor(nalt, choice, lon, bound)


def _by_level(ld, bound):
    """Every schedule within ``bound`` by preemption count (CHESS's iterative context
    bounding): those with none, then exactly one, ...; a level with none ends it."""
    for k in range(bound + 1):
        empty = True
        for run in _schedules(ld, k, k):
            empty = False
            yield run
        if empty:
            return


def naive_explore(ld, bound, max_schedules=None, stop_at_first=False):
    """What emu.exec.explore.explore reports, as a dict (seconds left out). A search that may
    stop early (a cap, stop_at_first) goes by preemption count."""
    early = max_schedules is not None or stop_at_first
    runs = _by_level(ld, bound) if early else _schedules(ld, bound, 0)
    n = failures = deadlocks = max_lost = stale_runs = 0
    outcomes, best, best_key, lockdep, complete = {}, None, None, "", True
    for outcome, d, npre, lost, nalt, choice, lon in runs:
        n += 1
        outcomes[OUTCOMES[outcome]] = outcomes.get(OUTCOMES[outcome], 0) + 1
        lockdep = lockdep or ld.lockdep()
        stale = bool(ld.machine.stale_reads())          # CPU loads and device reads
        stale_runs += stale
        if lost > 0 or outcome != K.RUN_DONE or stale:
            failures += 1
            max_lost = max(max_lost, lost)
            dead = outcome in (K.RUN_DEADLOCK, K.RUN_IRQ_DEADLOCK)
            deadlocks += dead
            first = int(np.flatnonzero((lon != 0) & (choice != 0))[0]) if npre else 0
            key = (npre, d, -lost, first)
            if best is None or key < best_key:
                best_key = key
                best = (choice.tolist(), npre, d, OUTCOMES[outcome], lost, dead)
            if stop_at_first:
                complete = False
                break
        if max_schedules is not None and n >= max_schedules:
            complete = next(runs, None) is None         # nothing left to cover
            break
    return dict(schedules=n, complete=complete, failures=failures, outcomes=outcomes,
                max_lost_bytes=max_lost, deadlocks=deadlocks, minimal=best, lockdep=lockdep,
                stale_reads=stale_runs)
