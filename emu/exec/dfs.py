"""Preemption-bounded depth-first exploration in one jitted loop.

:func:`explore_dfs` runs schedule after schedule without returning to Python: restore the
snapshot, run the choice prefix (then the non-preemptive default), judge the run, keep the
counts, step to the DFS successor within the bound. Schedules that share their first
preemption go on from a checkpoint saved there instead of running the shared decisions again
(:func:`run_schedule`). It returns when the exploration is over or has run the schedules
asked for, and when Python has something to record: a new best failure (whose choices are
still in the decision log), lockdep's first inconsistent run, or any failure under
``stop_at_first``. :func:`emu.exec.explore.explore` drives it;
``Loaded.run_raw`` runs one schedule through it.
"""

from .. import consts as K
from .._bytes import copy_bytes, next_nonzero
from .._jit import flat, inline, njit
from ..dma.oracle import final_check, finding_bytes, stale_bytes
from .sched import run
from .snapshot import copy_page, copy_regions, restore_state, revert_pages


@inline
def first_choice(prefix, plen):
    """Index of the first non-default choice of ``prefix[:plen]``, or -1."""
    for i in range(plen):
        if prefix[i] != 0:
            return i
    return -1


@flat
def save_checkpoint(S, B, CS, CB, cpp):
    """``(CS, CB)`` := the machine's state now but its counters, of RAM only the blocks written
    since the last restore from the snapshot (``cpp[1:cpp[0]+1]`` lists each such page with
    its block mask in the low ``PAGE_BLOCKS`` bits)."""
    copy_regions(CS, CB, S, B, False, True)
    mk = S[K.H_B_CMARK]
    copy_bytes(CB, mk, B, mk, S[K.H_C_NLINES])     # the lines changed since the snapshot
    rd = S[K.H_B_RAMDIRTY]
    npages = S[K.H_NPAGES]
    n = 0
    p = next_nonzero(B, rd, npages, 0)
    while p < npages:
        mask = B[rd + p]
        copy_page(S, CB, B, p, mask)
        # int(): with NUMBA_DISABLE_JIT=1 the mask is a numpy uint8, which numpy refuses
        # to OR with a Python int >= 256 (OverflowError); numba widens it to int64 anyway
        cpp[1 + n] = (p << K.PAGE_BLOCKS) | int(mask)
        n += 1
        p = next_nonzero(B, rd, npages, p + 1)
    cpp[0] = n


@flat
def restore_checkpoint(S, B, B0, CS, CB, cpp):
    """The state :func:`save_checkpoint` saved: pages written since then go back to the
    snapshot's ``B0``, the checkpoint's own pages come from ``CB`` and stay marked written
    (they differ from the snapshot, so its next restore puts them back)."""
    copy_regions(S, B, CS, CB, False, False)
    mk = S[K.H_B_CMARK]
    copy_bytes(B, mk, CB, mk, S[K.H_C_NLINES])     # they differ from the snapshot's
    revert_pages(S, B, B0)
    rd = S[K.H_B_RAMDIRTY]
    for i in range(cpp[0]):
        p = cpp[1 + i] >> K.PAGE_BLOCKS
        mask = cpp[1 + i] & ((1 << K.PAGE_BLOCKS) - 1)
        copy_page(S, B, CB, p, mask)
        B[rd + p] = mask


@flat
def run_schedule(S, B, S0, B0, CS, CB, cpp, cpx, prefix, plen, max_steps, nalt, choice, pre,
                 act, arow, alts, full):
    """From the snapshot ``(S0, B0)``, run the DFS schedule ``prefix[:plen]`` and judge it.
    Returns ``(outcome, decisions, preemptions, lost bytes, decisions run here)``; the
    decision log holds the run.

    The schedules of a DFS share long prefixes: all those whose first non-default choice is
    ``c`` at decision ``k`` (``cpx[0]``, ``cpx[1]``) run the same first ``k + 1`` decisions.
    The first of them saves the state there (``CS``, ``CB``, ``cpp``; ``cpx[2:4]`` the
    decision count and preemptions), the others go on from it: same runs, fewer steps.

    Restores copy only the cache lines the kernels marked changed since the last one; with
    ``full`` (a call's first schedule: what ran since the last call is not known) every line.
    """
    k = first_choice(prefix, plen)
    d0 = K.RUN_START            # K constants, not literal 0s: numba would compile run() again
    pre0 = K.RUN_START          # for Literal[int](0) arguments
    skipped = 0                                 # decisions taken over from the checkpoint
    if k >= 0 and cpx[0] == k and cpx[1] == prefix[k]:
        restore_checkpoint(S, B, B0, CS, CB, cpp)
        d0 = cpx[2]
        pre0 = cpx[3]
        skipped = d0
    else:
        restore_state(S, B, S0, B0, False, full)
        S[S[K.H_R_TRACE] + K.TR_ON] = 0
        S[K.H_YIELD] = 1
        if k >= 0:
            e = k + 1
            outcome, d, npre = run(S, B, K.SCHED_DFS, prefix, plen, K.P_SWITCH_NONE,
                                   max_steps, d0, pre0, nalt[:e], choice[:e], pre[:e],
                                   act[:e], arow[:e], alts[:e * K.MAXALT])
            if outcome != K.RUN_LOG_FULL or d != e:     # over within those k + 1 decisions
                return _judged(S, B, outcome, d, npre, d)
            save_checkpoint(S, B, CS, CB, cpp)
            cpx[0], cpx[1], cpx[2], cpx[3] = k, prefix[k], d, npre
            d0, pre0 = d, npre
    outcome, d, npre = run(S, B, K.SCHED_DFS, prefix, plen, K.P_SWITCH_NONE, max_steps, d0,
                           pre0, nalt, choice, pre, act, arow, alts)
    return _judged(S, B, outcome, d, npre, d - skipped)


@flat
def _judged(S, B, outcome, d, npre, ran):
    S[K.H_YIELD] = 0
    lost = final_check(S, B) if outcome == K.RUN_DONE else finding_bytes(S, K.FIND_LOST)
    return outcome, d, npre, lost, ran


@inline
def next_prefix(nalt, choice, lon, d, npre, bound, floor, prefix, lv, x):
    """The DFS successor of the run logged in ``choice[:d]`` (``npre`` preemptions), written
    to ``prefix``; returns its length, or -1 if there is none. The last decision from
    ``floor`` on with an untried alternative whose preemptions (those before it, plus its
    own if it is a preemption point) stay within ``bound`` takes its next alternative; the
    decisions before it are kept. Searched from the end: it is usually among the last.

    A decision passed over because its alternatives would exceed ``bound`` is left for
    good: its preemptions are where the schedules with ``bound + 1`` start
    (:func:`emit_roots`)."""
    last = -1
    after = 0                                   # preemptions after decision i
    for i in range(d - 1, floor - 1, -1):
        here = 1 if lon[i] != 0 and choice[i] != 0 else 0
        if choice[i] + 1 < nalt[i]:
            if npre - after - here + lon[i] <= bound:
                last = i
                break
            emit_roots(lv, x, choice, i, nalt[i])   # (a preemption point, choice 0)
        after += here
    if last < 0:
        return -1
    for i in range(last):
        prefix[i] = choice[i]
    prefix[last] = choice[last] + 1
    x[K.X_EMIT_KEEP] = min(x[K.X_EMIT_KEEP], last)  # the next run differs from decision last
    return last + 1


@inline
def emit_roots(lv, x, choice, i, n):
    """Record ``choice[:i] + [c]`` for ``c`` in ``1..n-1`` (each one preemption past the
    bound) in the level buffer at ``x[X_EMIT_AT]``, unless recording is off (-1). Out of
    room, recording stops: ``X_EMIT_AT`` becomes -1.

    In a search within bound ``k`` each decision is passed over once, when the search has
    covered every schedule below it (the DFS goes back through it), in the search's order;
    and each schedule with ``k + 1`` preemptions is one of these prefixes (at its last
    preemption) followed by choices that add none. So the records, searched in order
    (:func:`next_root`), are the schedules with ``k + 1`` preemptions in the order a DFS
    within ``k + 1`` meets them, without the schedules with fewer that such a DFS runs.

    A record is ``[i, n, keep, choice[keep:i]]``: its first ``keep`` choices are the
    previous record's (``X_EMIT_KEEP``, at most what the run shares with it), so records
    take a few words each."""
    at = x[K.X_EMIT_AT]
    if at < 0:
        return
    keep = min(x[K.X_EMIT_KEEP], i)
    if at + 3 + i - keep > x[K.X_EMIT_END]:
        x[K.X_EMIT_AT] = -1
        return
    lv[at] = i
    lv[at + 1] = n
    lv[at + 2] = keep
    for j in range(keep, i):
        lv[at + 3 + j - keep] = choice[j]
    x[K.X_EMIT_AT] = at + 3 + i - keep
    x[K.X_EMIT_KEEP] = i


@inline
def next_root(lv, x, prefix):
    """Put the next root of ``x``'s roots (``[X_ROOT_AT, X_ROOT_END)`` of the level buffer,
    see :func:`emit_roots`) in ``prefix`` and search from it: only its later decisions vary.
    ``prefix`` holds the previous root's first choices (the search from it varied only
    later ones). False if there is none left."""
    at = x[K.X_ROOT_AT]
    if at >= x[K.X_ROOT_END]:
        return False
    i = lv[at]
    keep = lv[at + 2]
    c = x[K.X_ROOT_C]
    if c == 0:                                  # the record's first root
        c = 1
        for j in range(keep, i):
            prefix[j] = lv[at + 3 + j - keep]
        x[K.X_EMIT_KEEP] = min(x[K.X_EMIT_KEEP], keep)
    else:
        x[K.X_EMIT_KEEP] = min(x[K.X_EMIT_KEEP], i)
    prefix[i] = c
    x[K.X_PLEN] = i + 1
    x[K.X_FLOOR] = i + 1
    if c + 1 < lv[at + 1]:
        x[K.X_ROOT_C] = c + 1
    else:
        x[K.X_ROOT_AT] = at + 3 + i - keep
        x[K.X_ROOT_C] = 0
    return True


@inline
def first_preemption(choice, lon, d):
    for i in range(d):
        if lon[i] != 0 and choice[i] != 0:
            return i
    return 0


@inline
def _record_failure(x, outcome, d, npre, lost, choice, lon):
    """Count a failing run; True if it is the best so far: fewest preemptions, then shortest,
    then most bytes lost, then earliest first preemption."""
    x[K.X_FAILURES] += 1
    if lost > x[K.X_MAX_LOST]:
        x[K.X_MAX_LOST] = lost
    if outcome == K.RUN_DEADLOCK or outcome == K.RUN_IRQ_DEADLOCK:
        x[K.X_DEADLOCKS] += 1
    first = first_preemption(choice, lon, d) if npre else 0
    key = (npre, d, -lost, first)
    if x[K.X_BEST_NPRE] >= 0 and key >= (x[K.X_BEST_NPRE], x[K.X_BEST_D],
                                          x[K.X_BEST_NEGLOST], x[K.X_BEST_FIRST]):
        return False
    x[K.X_BEST_NPRE], x[K.X_BEST_D], x[K.X_BEST_NEGLOST], x[K.X_BEST_FIRST] = key
    return True


@inline
def lockdep_inconsistent(S):
    """kmap_lock was taken in hardirq context and elsewhere with IRQs enabled."""
    usage = S[S[K.H_R_LOCK] + K.LK_USAGE]
    return (usage & K.USAGE_IN_HARDIRQ) != 0 and (usage & K.USAGE_HARDIRQ_ON) != 0


@inline
def _judge(S, x, outcome, d, npre, lost, choice, pre, ask):
    """Count the schedule just run in ``x`` and judge it: returns ``DFS_FAILED`` (it failed),
    ``DFS_BEST`` (the best failure so far) and ``DFS_LOCKDEP`` (lockdep objects, if asked)."""
    x[K.X_RUNS] += 1
    x[K.X_DECISIONS] += d
    if x[K.X_COUNT + outcome] == 0:
        x[K.X_SEEN + outcome] = x[K.X_RUNS]
    x[K.X_COUNT + outcome] += 1
    x[K.X_OUTCOME], x[K.X_D], x[K.X_NPRE], x[K.X_LOST] = outcome, d, npre, lost
    why = 0
    stale = stale_bytes(S) > 0
    x[K.X_STALE] += stale
    if lost > 0 or outcome != K.RUN_DONE or stale:
        why |= K.DFS_FAILED
        if _record_failure(x, outcome, d, npre, lost, choice, pre):
            why |= K.DFS_BEST
    if ask & K.DFS_LOCKDEP and lockdep_inconsistent(S):
        why |= K.DFS_LOCKDEP
    return why


@njit
def explore_dfs(S, B, S0, B0, CS, CB, cpp, cpx, prefix, bound, max_steps, limit, ask, x, nalt,
                choice, pre, act, arow, alts, lv):
    """Run DFS schedules from ``prefix[:x[X_PLEN]]``, at most ``limit`` of them, varying only
    decisions from ``x[X_FLOOR]`` on (0: every schedule within the bound). A schedule with
    fewer than ``x[X_MINPRE]`` preemptions runs (the search goes on from it) but is not
    counted or judged, nor counted in ``limit``: explore's search level by level counted it
    at its own level; a call returns after ``DFS_UNCOUNTED_MAX`` of them in any case.

    The level buffer ``lv``: with ``x[X_EMIT_AT] >= 0`` the search records there where the
    schedules with one preemption more start (:func:`emit_roots`); with roots in
    ``x[X_ROOT_AT:X_ROOT_END]`` it searches from each of them in turn (:func:`next_root`;
    ``x[X_PLEN] = -1``: from the first).

    ``ask``: ``DFS_LOCKDEP`` to return after the first run lockdep objects to,
    ``DFS_FAILED`` to return after any failing run (stop_at_first), ``DFS_NO_NEXT`` to run
    one schedule and not look for the next (``Loaded.run_raw``). ``x`` (``X_*`` slots)
    carries the counts across calls and the last run's result; on return ``prefix[:x[X_PLEN]]``
    is the next schedule. Returns the ``DFS_*`` bits that say why it stopped
    (``DFS_BAD_CHOICE`` alone: a choice of the prefix that its decision does not have; only a
    prefix from outside can do that, the search's own successors come from the log).
    The caller (``Loaded.dfs``) guarantees ``0 <= x[X_FLOOR]``, ``x[X_PLEN] <= len(prefix)``
    and ``len(prefix) >= len(nalt)`` (the successor is written there).

    The schedules' runs do not restore the cost and profile counters (their outcomes do not
    depend on them): on return the counters are the snapshot's. ``Loaded.run`` and replays
    restore everything and report them.
    """
    why = _explore(S, B, S0, B0, CS, CB, cpp, cpx, prefix, bound, max_steps, limit, ask, x,
                   nalt, choice, pre, act, arow, alts, lv)
    c = S0[K.H_S_COUNTERS]
    copy_bytes(S, c, S0, c, S0[K.H_S_TAIL] - c)
    return why


@flat
def _explore(S, B, S0, B0, CS, CB, cpp, cpx, prefix, bound, max_steps, limit, ask, x, nalt,
             choice, pre, act, arow, alts, lv):
    n = 0                       # schedules run, and of them counted (X_MINPRE)
    counted = 0
    cpx[0] = -1                 # the decision log may have changed since the last call
    if x[K.X_PLEN] < 0 and not next_root(lv, x, prefix):
        return K.DFS_DONE
    while True:
        outcome, d, npre, lost, ran = run_schedule(S, B, S0, B0, CS, CB, cpp, cpx, prefix,
                                                   x[K.X_PLEN], max_steps, nalt, choice, pre,
                                                   act, arow, alts, n == 0)
        if outcome == K.RUN_BAD_CHOICE:           # prefix[d] is no alternative of decision d
            x[K.X_OUTCOME], x[K.X_D] = outcome, d
            return K.DFS_BAD_CHOICE
        n += 1
        x[K.X_EXECUTED] += ran
        why = 0
        if npre >= x[K.X_MINPRE]:                # else a lower level counted it already
            counted += 1
            why = _judge(S, x, outcome, d, npre, lost, choice, pre, ask)
            if why & K.DFS_FAILED and ask & K.DFS_FAILED:
                return why
            if ask & K.DFS_NO_NEXT:
                return why | K.DFS_LIMIT
        x[K.X_PLEN] = next_prefix(nalt, choice, pre, d, npre, bound, x[K.X_FLOOR], prefix,
                                  lv, x)
        if x[K.X_PLEN] < 0 and not next_root(lv, x, prefix):
            why |= K.DFS_DONE
        if counted >= limit or n - counted >= K.DFS_UNCOUNTED_MAX:
            why |= K.DFS_LIMIT
        if why & (K.DFS_DONE | K.DFS_LIMIT | K.DFS_BEST | K.DFS_LOCKDEP):
            return why
