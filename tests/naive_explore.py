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


def naive_explore(ld, bound, max_schedules=None, stop_at_first=False):
    """What emu.exec.explore.explore reports, as a dict (seconds left out)."""
    prefix = np.zeros(0, np.int64)
    n = failures = deadlocks = max_lost = stale_runs = 0
    outcomes, best, best_key, lockdep, complete = {}, None, None, "", True
    while True:
        outcome, d, npre, lost = ld.run_raw(prefix)
        n += 1
        outcomes[OUTCOMES[outcome]] = outcomes.get(OUTCOMES[outcome], 0) + 1
        nalt, choice, lon, _ = ld.last_log(d)
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
        prefix = successor(nalt, choice, lon, bound)
        if max_schedules is not None and n >= max_schedules:
            complete = prefix is None
            break
        if prefix is None:
            break
    return dict(schedules=n, complete=complete, failures=failures, outcomes=outcomes,
                max_lost_bytes=max_lost, deadlocks=deadlocks, minimal=best, lockdep=lockdep,
                stale_reads=stale_runs)
