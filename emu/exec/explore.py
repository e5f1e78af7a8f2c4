"""Schedules: systematic exploration, seeded random runs, explicit switch lists, replays.

Exploration is depth-first search over the choice made at each scheduling point
(CHESS-style): every schedule with at most ``bound`` preemptions, each run from the same
snapshot (or from a checkpoint of the decisions it shares with the schedules before it, with
the same result: emu.exec.dfs). A failing schedule (data lost, deadlock, kernel BUG) is kept
if it beats the best so far on (preemptions, length); its replay token carries the scenario
and the choices, so ``emu replay TOKEN`` reproduces it exactly anywhere.
"""

import base64
import json
import re
import reprlib
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import consts as K
from .._args import check_int, check_int_array, check_real, is_int
from .loaded import (DEFAULT_LOG, DEFAULT_MAX_STEPS, MAX_BOUND, MAX_STEPS_LIMIT, OUTCOMES,
                     Loaded, check_choices)
from ..warmup import available_cpus
from .parallel import walk_parallel
from .scenario import Scenario, irq_count

TOKEN_PREFIX = "emu1:"
#: Largest decompressed token body read (a scenario and its choices are far smaller).
TOKEN_MAX_BYTES = 1 << 24


@dataclass
class Failure:
    """A failing schedule: enough to replay it and say what went wrong.

    Attributes
    ----------
    choices : list of int
        The schedule: the choice made at each decision.
    preemptions : int
        Its involuntary switches.
    decisions : int
        Its scheduling points.
    outcome : str
        How the run ended: ``"done"`` (every task finished; it failed on data),
        ``"deadlock"``, ``"irq-deadlock"``, ``"error"``, ``"step-limit"`` or ``"log-full"``.
    lost_bytes : int
        Bytes it lost.
    deadlock : bool
        It ended in a deadlock (all tasks asleep, or a CPU spinning on a lock its own
        interrupted context holds).
    """

    choices: list
    preemptions: int
    decisions: int
    outcome: str
    lost_bytes: int
    deadlock: bool


@dataclass
class Exploration:
    """Result of :func:`explore`.

    Attributes
    ----------
    scenario : str
        The scenario's name.
    bound : int
        The preemption bound.
    schedules : int
        Schedules run.
    complete : bool
        False if ``max_schedules`` (or ``stop_at_first``) stopped it early.
    seconds : float
        Wall-clock time (the one field that differs between runs).
    failures : int
        Failing schedules: lost data, stale reads, a deadlock, an error, the step limit or a
        full decision log.
    outcomes : dict
        Schedules per outcome (``"done"``, ``"deadlock"``, ...), in order of appearance.
    max_lost_bytes : int
        The most any one schedule lost.
    deadlocks : int
        Schedules that deadlocked.
    minimal : Failure or None
        The minimal failing schedule: fewest preemptions, then shortest.
    lockdep : str
        The first lockdep-style report, or ``""``.
    stale_reads : int
        Schedules in which a CPU load or a device read got stale bytes, or a CPU load took
        bytes a device's transfer in flight was still to write (``read-during-dma``).
    replay : str
        The replay token of ``minimal`` (``""`` if nothing failed).
    switches : list of str
        ``minimal`` as switch directives (``"after step 1 of dma run writer"``).
    covered_bound : int
        Every schedule with at most this many preemptions was run: ``bound`` when complete;
        for a search that stopped early, the last preemption count it covered entirely
        (-1: not even the schedules with none).
    data_lost : bool
        Some schedule lost data.
    """

    scenario: str
    bound: int
    schedules: int
    complete: bool
    seconds: float
    failures: int
    outcomes: dict
    max_lost_bytes: int
    deadlocks: int
    minimal: Failure = None
    lockdep: str = ""
    stale_reads: int = 0
    replay: str = ""
    switches: list = field(default_factory=list)
    covered_bound: int = -1

    @property
    def data_lost(self):
        """Whether some schedule lost data (``max_lost_bytes > 0``)."""
        return self.max_lost_bytes > 0


def describe_choices(ld, choices):
    """The schedule as explicit switches, which :func:`explicit_choices` takes back.

    Parameters
    ----------
    ld : Loaded
    choices : sequence of int
        A DFS choice vector (``Failure.choices``, ``RunResult.choices``).

    Returns
    -------
    list of str
        ``"after step N of TASK run OTHER"`` / ``"... raise IRQ HANDLER"`` (and first, if
        not the default, ``"at start run OTHER"``), one per non-default choice.
    """
    r = ld.run(K.SCHED_DFS, choices, final=False)
    nalt, choice, lon, act = ld.last_log(r.decisions)
    steps = {}
    last = None                 # the last step: (its context, which step of it)
    out = []
    for d in range(r.decisions):
        a = int(act[d])
        if choice[d] != 0:      # preemptions, and free choices: who starts, who runs next
            what = action_text(ld, a)
            out.append(f"at start {what}" if last is None else
                       f"after step {last[1]} of {ld.names[last[0]]} {what}")
        if a < K.ACT_IRQ:       # raising a line is a decision, not a step of a context
            steps[a] = steps.get(a, 0) + 1
            last = (a, steps[a])
    return out


def _irq_ctx(ld, a):
    line = (a - K.ACT_IRQ) % K.MAXIRQ
    return int(ld.machine._S[int(ld.machine._S[K.H_R_IRQ]) + line * K.IRQ_W + K.IRQ_CTX])


def action_text(ld, a):
    """An action as a schedule entry says it.

    Parameters
    ----------
    ld : Loaded
    a : int
        A context id, ``ACT_IRQ + line`` or ``ACT_IRQ_OWN + line``.

    Returns
    -------
    str
        ``run TASK``, ``raise IRQ HANDLER`` (its device's completion if a transfer is in
        flight on the line), or ``raise spurious IRQ HANDLER`` (one of the line's own raises
        while its device's transfer is in flight).
    """
    if a < K.ACT_IRQ:
        return f"run {ld.names[a]}"
    return f"raise {'spurious ' if a >= K.ACT_IRQ_OWN else ''}IRQ {ld.names[_irq_ctx(ld, a)]}"


def make_token(sc, choices, max_steps=DEFAULT_MAX_STEPS):
    """A self-contained replay token.

    Parameters
    ----------
    sc : Scenario
        The scenario (a built-in one is named, not copied).
    choices : sequence of int
        The schedule: one choice per decision; only the non-default ones are stored.
    max_steps : int
        The step limit, stored if not the default (so a ``step-limit`` failure replays as
        one).

    Returns
    -------
    str
        ``emu1:`` followed by URL-safe base64 of the compressed body.
    """
    max_steps = _max_steps(max_steps)
    choices = check_choices(choices)
    if not ((choices >= 0) & (choices < K.MAXALT)).all():      # an int64 array, unchecked
        check_int_array("choices", choices, 0, K.MAXALT)
    if len(choices) > DEFAULT_LOG:              # read_token's cap: no run has more decisions
        raise ValueError(f"choices: {len(choices)} of them, more than a run's {DEFAULT_LOG} "
                         f"decisions")
    sparse = [[int(i), int(choices[i])] for i in np.flatnonzero(choices)]
    body = {"b": sc.builtin} if _still_builtin(sc) else {"s": sc.to_dict()}
    body |= {"c": sparse, "n": len(choices)}
    if max_steps != DEFAULT_MAX_STEPS:
        body["m"] = max_steps
    blob = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(zlib.compress(blob, 9)).decode().rstrip("=")


def _still_builtin(sc):
    """True if ``sc`` is the built-in scenario its ``builtin`` names, unchanged: one built by
    ``race()`` and then given a task or handler, or its ``machine`` edited in place, must go
    into the token in full (its name alone would replay the unchanged built-in)."""
    if not sc.builtin:
        return False
    from .builtin import from_builtin
    try:
        return from_builtin(sc.builtin).to_dict() == sc.to_dict()
    except ValueError:
        return False


def read_token(token):
    """The scenario and schedule of a replay token.

    Parameters
    ----------
    token : str
        A token :func:`make_token` could have made: at most ``DEFAULT_LOG`` choices, each in
        ``[0, MAXALT)``, a body of at most ``TOKEN_MAX_BYTES``. Whether each decision has its
        choice is known when it replays.

    Returns
    -------
    tuple
        ``(scenario, choices)``.

    Raises
    ------
    ValueError
        ``token`` is not one emu could have made (the message says what is wrong).
    """
    return read_token_steps(token)[:2]


def read_token_steps(token):
    """The scenario, schedule and step limit of a replay token.

    Parameters
    ----------
    token : str
        As for :func:`read_token`.

    Returns
    -------
    tuple
        ``(scenario, choices, max_steps)``.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise ValueError(f"token: must start with {TOKEN_PREFIX!r} (as emu race/explore print)")
    body = token[len(TOKEN_PREFIX):]
    bad = trailing = ValueError("token: corrupted (not a replay token emu printed)")
    try:
        z = zlib.decompressobj()
        # validate: no character outside the alphabet is skipped (b64decode's default)
        blob = z.decompress(base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_",
                                             validate=True), TOKEN_MAX_BYTES)
        if z.unconsumed_tail or not z.eof:
            raise bad                           # larger than any token emu prints, or cut
        if z.unused_data:                       # zlib stops at its end and ignores the rest
            n = len(z.unused_data)
            trailing = ValueError(f"token: corrupted ({n} byte{'' if n == 1 else 's'} after "
                                  f"the end of the replay token's data: was something "
                                  f"appended to it?)")
            raise trailing
        d = json.loads(blob)
        n = d["n"]
        if type(n) is not int or not 0 <= n <= DEFAULT_LOG:   # a run's decisions at most
            raise bad
        choices = [0] * n
        for i, c in d["c"]:
            if not (type(i) is type(c) is int and 0 <= i < n and 0 <= c < K.MAXALT):
                raise bad
            choices[i] = c
        steps = d.get("m", DEFAULT_MAX_STEPS)
        if type(steps) is not int or not 1 <= steps <= MAX_STEPS_LIMIT:
            raise bad
        if "b" in d:
            from .builtin import from_builtin
            return from_builtin(d["b"]), choices, steps
        return Scenario.from_dict(d["s"]), choices, steps
    except (ValueError, zlib.error, KeyError, TypeError, IndexError) as e:
        raise (trailing if e is trailing else bad) from None


def replay(token, trace=True):
    """Run the schedule of a replay token again, exactly.

    Parameters
    ----------
    token : str
        An ``emu1:...`` token (``Exploration.replay``, or printed by ``emu race`` / ``explore``).
    trace : bool
        Record the readable trace (``RunResult.trace``).

    Returns
    -------
    (Loaded, RunResult)
        The loaded scenario (its ``names`` name the contexts of findings) and what the run did.
    """
    sc, choices, max_steps = read_token_steps(token)
    ld = sc.build(trace_events=(1 << 20) if trace else 0)
    try:
        return ld, ld.run(K.SCHED_DFS, choices, trace=bool(trace), max_steps=max_steps)
    except ValueError as e:                     # a choice its decision does not have
        raise ValueError(f"token: corrupted ({e})") from None


#: Schedules per call of the jitted loop: between two calls Python updates the progress bar
#: and Ctrl-C takes effect (numba code does not look at signals), a few ms apart.
CHUNK = 256


def _failure(ld, x):
    """The last run of ``ld`` (still in its decision log) as a :class:`Failure`."""
    outcome, d = int(x[K.X_OUTCOME]), int(x[K.X_D])
    choice = ld.last_log(d)[1]
    return Failure(choice.tolist(), int(x[K.X_NPRE]), d, OUTCOMES[outcome], int(x[K.X_LOST]),
                   outcome in (K.RUN_DEADLOCK, K.RUN_IRQ_DEADLOCK))


@dataclass
class Walk:
    """What a depth-first search over some schedules found.

    Attributes
    ----------
    x : numpy.ndarray
        The jitted loop's ``X_*`` counts and state.
    best : Failure or None
        The best failure: fewest preemptions, shortest, most lost, earliest first preemption.
    best_key : tuple or None
        Its ranking key, in that order.
    lockdep : str
        The first lockdep report, or ``""``.
    complete : bool
        It covered every schedule it was given.
    covered : int
        A search by level (:func:`walk_levels`) that stopped early: it covered every
        schedule with at most this many preemptions (-1: not even those with none).
    """

    x: object
    best: Failure = None
    best_key: tuple = None
    lockdep: str = ""
    complete: bool = True
    covered: int = -1


def walk(ld, bound, max_steps, prefix=(), floor=0, max_schedules=None, stop_at_first=False,
         bar=None, min_pre=0, state=None):
    """Depth-first search from a schedule, handing back to Python every :data:`CHUNK`
    schedules.

    Parameters
    ----------
    ld : Loaded
        The scenario, loaded.
    bound : int
        Preemption bound.
    max_steps : int
        Step limit of each schedule.
    prefix : sequence of int
        The schedule the search starts from.
    floor : int
        Decisions from ``floor`` on vary: 0 gives every schedule within ``bound``,
        ``len(prefix)`` those that start with ``prefix``.
    max_schedules : int, optional
        Stop after this many schedules.
    stop_at_first : bool
        Stop at the first failing schedule.
    bar : object, optional
        A progress bar; its ``update(n)`` gets the schedules run.
    min_pre : int
        Schedules with fewer preemptions run (the search goes on from them) but are not
        counted or judged (see :func:`walk_levels`).
    state : numpy.ndarray, optional
        The search state to go on with (:meth:`Loaded.dfs_state`), instead of one made from
        ``prefix``, ``floor`` and ``min_pre``.

    Returns
    -------
    Walk
    """
    w = Walk(_level_state(ld, min_pre, prefix, floor) if state is None else state)
    x = w.x
    ask = K.DFS_FAILED if stop_at_first else 0
    while True:
        limit = CHUNK
        if max_schedules is not None:
            limit = min(limit, max_schedules - int(x[K.X_RUNS]))
        ran = int(x[K.X_RUNS])
        why = ld.search(bound, max_steps, limit, ask | (0 if w.lockdep else K.DFS_LOCKDEP), x)
        if bar is not None:
            bar.update(int(x[K.X_RUNS]) - ran)
        if why & K.DFS_BEST:
            w.best = _failure(ld, x)
            w.best_key = tuple(int(v) for v in x[K.X_BEST_NPRE:K.X_BEST_FIRST + 1])
        if why & K.DFS_LOCKDEP:
            w.lockdep = ld.lockdep()
        if why & K.DFS_FAILED and stop_at_first:
            w.complete = False
            return w
        if why & K.DFS_DONE:
            return w
        if max_schedules is not None and x[K.X_RUNS] >= max_schedules:
            # what is left may all be uncounted (min_pre): then the search was complete
            # (x's own X_MINPRE: a state handed in carries it, min_pre is then unused)
            w.complete = bool(x[K.X_MINPRE]) and not _counts_more(ld, bound, max_steps, x)
            return w


def _level_state(ld, min_pre, prefix=(), floor=0, roots=None, half=None):
    """A fresh search state (:meth:`Loaded.dfs_state`) that counts only the schedules with at
    least ``min_pre`` preemptions; that searches from ``roots`` (``(at, end)`` in
    ``ld.levels``) if given; and that records the roots of the level above in level
    ``half``'s half of ``ld.levels`` (:func:`_half`) if given."""
    x = ld.dfs_state(prefix, floor)
    x[K.X_MINPRE] = min_pre
    if roots is not None:
        x[K.X_ROOT_AT], x[K.X_ROOT_END] = roots
        x[K.X_PLEN] = -1                        # from the first root
    if half is not None:
        x[K.X_EMIT_AT], x[K.X_EMIT_END] = _half(half)
    return x


def _half(k):
    """``(start, end)`` of the half of the level buffer that level ``k``'s roots go in."""
    h = K.LEVEL_WORDS // 2
    return (k % 2) * h, (k % 2) * h + h


def _counts_more(ld, bound, max_steps, x):
    """Whether the search ``x`` stopped in has another schedule it would count (it runs the
    search on a copy of ``x``; the prefix buffer is spent)."""
    y = x.copy()
    while True:
        why = ld.search(bound, max_steps, 1, 0, y)
        if y[K.X_RUNS] > x[K.X_RUNS]:
            return True
        if why & K.DFS_DONE:
            return False


def walk_levels(ld, bound, max_steps, max_schedules=None, stop_at_first=False, bar=None):
    """Every schedule within ``bound``, by preemption count: those with none, then those with
    exactly one, and so on (CHESS's iterative context bounding).

    A search that stops early (``max_schedules``, ``stop_at_first``) has then covered every
    schedule with fewer preemptions than where it stopped, and its first failure is one with
    the fewest preemptions; a depth-first search within ``bound`` varies the last decisions
    first, so it could spend millions of schedules on preemptions late in the run. A level
    with no schedule ends the search: dropping the last preemption of a schedule with ``k+1``
    leaves one with ``k``.

    Each level's search records where the next level's schedules start (the decisions it
    passed over because a preemption there would exceed its bound: ``emu.exec.dfs.
    emit_roots``), and the next level searches from those roots only, in the order a DFS
    would meet them. Should the records outgrow the level buffer (``LEVEL_WORDS``), that
    level is searched as a DFS within its bound that runs the schedules with fewer
    preemptions again, uncounted.

    Parameters
    ----------
    ld : Loaded
    bound : int
        Preemption bound.
    max_steps : int
        Step limit of each schedule.
    max_schedules : int, optional
        Stop after this many schedules.
    stop_at_first : bool
        Stop at the first failing schedule.
    bar : object, optional
        A progress bar (``update(n)``).

    Returns
    -------
    Walk
        As one search within ``bound`` would count it (the same schedules, failures and
        outcomes when it completes).
    """
    from .parallel import merge
    walks, runs, covered = [], 0, -1
    roots = None                # where level k's schedules start in ld.levels: (at, end)
    ld.levels = np.zeros(K.LEVEL_WORDS, np.int64)
    try:
        for k in range(bound + 1):
            left = None if max_schedules is None else max_schedules - runs
            x = _level_state(ld, k, roots=roots, half=k + 1)
            if left == 0:                       # complete if the next level is empty
                walks[-1].complete = not _counts_more(ld, k, max_steps, x)
                break
            w = walk(ld, k, max_steps, max_schedules=left, stop_at_first=stop_at_first,
                     bar=bar, state=x)
            walks.append(w)
            covered = k if w.complete else k - 1
            runs += int(w.x[K.X_RUNS])
            if not w.complete or not w.x[K.X_RUNS]:
                break
            at = int(x[K.X_EMIT_AT])
            roots = None if at < 0 else (_half(k + 1)[0], at)
    finally:
        ld.levels = None
    out = merge(walks)
    out.complete = walks[-1].complete
    out.covered = covered
    return out


def explore(scenario, bound=2, max_schedules=None, progress=False, stop_at_first=False,
            max_steps=None, jobs=1):
    """Run every schedule of ``scenario`` with at most ``bound`` preemptions.

    Parameters
    ----------
    scenario : Scenario or Loaded
    bound : int
        Preemption bound (involuntary switches: preempting a task, interleaving another CPU,
        raising an IRQ in the middle of a task), in ``[0, MAX_BOUND]`` (``MAX_BOUND``: no
        bound). Raising an IRQ where no task is preempted (at the start, or when a handler
        has returned) is a free choice, as who runs next is: an IRQ line with a large
        ``count`` multiplies the schedules even at bound 0.
    max_schedules : int, optional
        Stop after this many schedules (the result says it is incomplete). A search that
        may stop early goes by preemption count (:func:`walk_levels`): every schedule with
        no preemption, then every one with exactly one, and so on, so the schedules it
        covers are those with the fewest preemptions.
    progress : bool
        Show a progress bar (tqdm) on stderr when stderr is a terminal.
    stop_at_first : bool
        Stop at the first failing schedule: one with the fewest preemptions any failing
        schedule has.
    max_steps : int, optional
        Steps after which a schedule counts as livelocked (outcome ``step-limit``), in
        ``[1, MAX_STEPS_LIMIT]``; default ``DEFAULT_MAX_STEPS``.
    jobs : int
        Processes to search with, in ``[0, MAX_JOBS]`` (0: one per CPU; more than the CPUs
        this process may run on only cost memory, ~200 MB each). With more than one, the
        schedules are split
        into subtrees that this process and ``jobs - 1`` workers search (see
        :mod:`emu.exec.parallel`); this one starts at once, so a search that ends before the
        workers are up (about a second) takes what a serial one does. The result is the same
        as with one, ``seconds`` aside. ``max_schedules`` and ``stop_at_first`` are orders of
        the serial search, so with either of them the search is serial, as it is in a
        daemonic process (a ``multiprocessing.Pool`` worker), which cannot start workers. The
        workers start with multiprocessing's ``spawn`` method, so a script calling this needs
        the usual ``if __name__ == "__main__":`` guard.

    Returns
    -------
    Exploration

    Raises
    ------
    ValueError
        A bad argument (nothing has run).
    """
    bound = check_int("bound", bound, 0, MAX_BOUND)
    if max_schedules is not None and (not is_int(max_schedules) or max_schedules < 1):
        raise ValueError(f"max_schedules={max_schedules!r}: must be a positive int or None")
    max_schedules = None if max_schedules is None else int(max_schedules)
    max_steps = _max_steps(max_steps)
    jobs = check_int("jobs", jobs, 0, K.MAX_JOBS) or available_cpus()
    ld = _loaded(scenario)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc=f"exploring {ld.scenario.name} (bound {bound})", unit=" schedules",
                   leave=False, disable=None)          # None: no bar when stderr is no TTY
    t0 = time.perf_counter()
    try:
        if jobs > 1 and max_schedules is None and not stop_at_first:
            w = walk_parallel(ld, bound, max_steps, jobs, bar)
        elif max_schedules is None and not stop_at_first:
            w = walk(ld, bound, max_steps, bar=bar)
        else:                                   # it may stop early: fewest preemptions first
            w = walk_levels(ld, bound, max_steps, max_schedules, stop_at_first, bar)
    finally:
        if bar is not None:
            bar.close()
    secs = time.perf_counter() - t0
    x = w.x
    seen = sorted((o for o in range(K.NRUN) if x[K.X_COUNT + o]), key=lambda o: x[K.X_SEEN + o])
    outcomes = {OUTCOMES[o]: int(x[K.X_COUNT + o]) for o in seen}      # in order of appearance
    ex = Exploration(ld.scenario.name, bound, int(x[K.X_RUNS]), w.complete, secs,
                     int(x[K.X_FAILURES]), outcomes, int(x[K.X_MAX_LOST]),
                     int(x[K.X_DEADLOCKS]), w.best, w.lockdep, stale_reads=int(x[K.X_STALE]),
                     covered_bound=bound if w.complete else w.covered)
    if w.best is not None:
        ex.replay = make_token(ld.scenario, w.best.choices, max_steps)
        ex.switches = describe_choices(ld, w.best.choices)
    return ex


def run_random(scenario, seed=0, runs=1, p_switch=K.DEFAULT_P_SWITCH, max_steps=None):
    """Seeded random schedules.

    Parameters
    ----------
    scenario : Scenario or Loaded
    seed : int
        The first run's seed (``>= 0``); run ``i`` has ``seed + i``.
    runs : int
        How many (``>= 1``).
    p_switch : float
        The chance of switching at a scheduling point where the running context could go
        on, in ``[0, 1]``.
    max_steps : int, optional
        As for :func:`explore`.

    Returns
    -------
    list of RunResult
    """
    p_switch = check_real("p_switch", p_switch, 0, 1)
    seed = check_int("seed", seed, 0)
    runs = check_int("runs", runs, 1)
    max_steps = _max_steps(max_steps)
    ld = _loaded(scenario)
    return [ld.run(K.SCHED_RANDOM, (), int(p_switch * K.P_SWITCH_SCALE), seed + i,
                   max_steps=max_steps) for i in range(runs)]


def _max_steps(max_steps):
    return DEFAULT_MAX_STEPS if max_steps is None else \
        check_int("max_steps", max_steps, 1, MAX_STEPS_LIMIT)


def _loaded(scenario):
    """``scenario`` loaded (a Loaded one as it is)."""
    if isinstance(scenario, Loaded):
        return scenario
    if isinstance(scenario, Scenario):
        return scenario.build()
    raise ValueError(f"scenario={reprlib.repr(scenario)}: must be a Scenario or a Loaded "
                     f"scenario")


#: A string schedule entry's opening: ``at start`` or ``after step N of``; the rest (from
#: the whitespace after it) is ``[TASK] ACTION TARGET``.
_ENTRY_HEAD = re.compile(r"\s*(?:(?P<start>at\s+start)|after\s+step\s+(?P<n>\S+)\s+of)"
                         r"(?P<rest>[\s,].*)\Z", re.S)
#: An entry's action, after the context it follows (a comma may end that): ``run``,
#: ``raise IRQ`` or ``raise spurious IRQ``; the target's name is the rest.
_ENTRY_ACTION = re.compile(r"(?:\s*,\s*|\s+)(?:(?P<run>run)|raise\s+(?P<spurious>spurious\s+)?"
                           r"[Ii][Rr][Qq])(?P<target>\s.*)\Z", re.S)
_ENTRY_FORMS = ("'after step N of TASK run OTHER', 'after step N of TASK raise [spurious] IRQ "
                "HANDLER' or 'at start run OTHER' / 'at start raise [spurious] IRQ HANDLER'")


def _parse_directive(dv, names):
    """(TASK or None for "at start", step N, "run", "irq" or "spurious", OTHER) of a schedule
    entry; ``names``: the scenario's tasks and handlers."""
    if isinstance(dv, str):
        return _parse_words(dv, names)
    keys = [k for k in _DICT_ACTIONS if isinstance(dv, dict) and k in dv]
    if len(keys) == 1:
        key = keys[0]
        what, target = _DICT_ACTIONS[key], dv[key]
        if set(dv) == {"at", key} and dv["at"] == "start":
            return None, 0, what, target
        if set(dv) == {"after", "step", key}:
            return dv["after"], _step(dv, dv["step"]), what, target
    raise ValueError(f"schedule entry {dv!r}: expected {{'after': TASK, 'step': N, 'run': OTHER}}"
                     f", {{'after': TASK, 'step': N, 'irq': HANDLER}} ('spurious_irq': "
                     f"HANDLER) or {{'at': 'start', 'run': OTHER}} / {{'at': 'start', 'irq': "
                     f"HANDLER}}")


#: A dict entry's action keys (each takes the context it switches to) and what they do.
_DICT_ACTIONS = {"run": "run", "irq": "irq", "spurious_irq": "spurious"}


def _parse_words(dv, names):
    """A string entry read by its grammar: the keywords where they stand, each name one of
    ``names`` (any string a scenario accepts: ``run``, ``of``, ``IRQ`` or one with spaces
    too). Where a name is not the scenario's, TASK is read as one word and the target as
    the rest, for the caller to name the unknown one."""
    m = _ENTRY_HEAD.match(dv)
    bad = ValueError(f"schedule entry {dv!r}: expected {_ENTRY_FORMS}")
    if m is None:
        raise bad
    rest = m["rest"]
    if m["start"]:
        heads = [(None, rest)]
    else:
        heads = [(t, rest[h.end():]) for t in names
                 if (h := re.match(r"\s+" + re.escape(t), rest))]
        if not any(_ENTRY_ACTION.match(tail) for _t, tail in heads):
            w = re.match(r"\s*([^\s,]+)", rest)
            heads = [(w[1], rest[w.end():])]
    acts = [(t, a) for t, tail in heads if (a := _ENTRY_ACTION.match(tail))]
    if not acts:
        raise bad
    n = 0 if m["start"] else _step(dv, _int_word(m["n"], bad))
    reads = {(t, _what(a), u) for t, a in acts for u in names
             if re.fullmatch(r"\s+" + re.escape(u) + r"\s*", a["target"])}
    if len(reads) > 1:
        raise ValueError(f"schedule entry {dv!r}: ambiguous with these names ("
                         + "; ".join(f"{t!r} {w} {u!r}" for t, w, u in sorted(reads))
                         + "); give it as a dict (see explicit_choices)")
    t, what, target = reads.pop() if reads else \
        (acts[0][0], _what(acts[0][1]), acts[0][1]["target"].strip())
    return t, n, what, target


def _what(a):
    """"run", "irq" or "spurious": the action :data:`_ENTRY_ACTION` matched."""
    return "run" if a["run"] else "spurious" if a["spurious"] else "irq"


def _int_word(n, bad):
    """The step number N of a string entry as an int (its range is :func:`_step`'s), else
    raise ``bad``."""
    try:
        return int(n)
    except ValueError:
        raise bad from None


def _step(dv, n):
    """A directive's step number N (steps count from 1)."""
    try:
        return check_int("step", n, 1, MAX_STEPS_LIMIT)
    except ValueError as e:
        raise ValueError(f"schedule entry {dv!r}: {e}") from None


def _after_step(act, tc, n):
    """(the decision right after context ``tc``'s step ``n`` or None, steps of ``tc`` seen);
    steps count from the start of the run."""
    count = 0
    for d in range(len(act)):
        if int(act[d]) == tc:
            count += 1
            if count == n:
                return d + 1, count
    return None, count


def explicit_choices(ld, directives):
    """Choice vector of an explicit schedule.

    Parameters
    ----------
    ld : Loaded
    directives : list
        Each switches right after step N of a task, to another context or by raising the
        line of an IRQ handler: ``"after step N of TASK run OTHER"``, ``"after step N of TASK
        raise IRQ HANDLER"``, or ``{"after": TASK, "step": N, "run": OTHER}`` (``"irq"``:
        HANDLER), in the order they happen; the first may be ``"at start run OTHER"`` /
        ``"at start raise IRQ HANDLER"`` (``{"at": "start", "run": OTHER}``): who runs first.
        ``raise spurious IRQ HANDLER`` (in a dict ``"spurious_irq": HANDLER``) is one of the
        line's own raises while its device's transfer is in flight: the handler runs, the
        transfer does not land.
        The same entry also picks who runs next where the running context cannot go on
        (it finished or sleeps), which is no preemption. A string entry is read by its
        grammar, so a name may be any the scenario accepts (``run``, ``of``, ``IRQ``, one
        with spaces); one that reads two ways with the scenario's names is refused (the
        dict form names each context on its own).

    Returns
    -------
    list of int
    """
    if not isinstance(ld, Loaded):
        raise ValueError(f"ld={reprlib.repr(ld)}: must be a Loaded scenario (Scenario.build())")
    if not isinstance(directives, (list, tuple)):
        raise ValueError(f"directives={reprlib.repr(directives)}: must be a list of schedule "
                         f"entries")
    prefix = []
    for dv in directives:
        t, n, what, target = _parse_directive(dv, ld.names[1:])
        for nm in (t, target):
            if nm is not None and nm not in ld.names[1:]:
                raise ValueError(f"schedule entry {dv!r}: unknown task or handler {nm!r}; "
                                 f"known: {', '.join(ld.names[1:])}")
        tc = -1 if t is None else ld.names.index(t, 1)     # (0: "direct", a name too)
        uc = ld.names.index(target, 1)
        _check_target(ld, dv, t, what, target)
        want = uc
        if what != "run":
            want = (K.ACT_IRQ_OWN if what == "spurious" else K.ACT_IRQ) \
                + int(ld.machine._S[ld.ctx_rec(uc) + K.CTX_IRQ_LINE])
        r = ld.run(K.SCHED_DFS, prefix, final=False)
        nalt, choice, lon, act = ld.last_log(r.decisions)
        at, count = (0, 0) if t is None else _after_step(act, tc, n)
        if at is None:
            raise ValueError(f"schedule entry {dv!r}: {t} does not reach step {n} "
                             f"({count} steps at most here)")
        if at >= r.decisions:
            raise ValueError(f"schedule entry {dv!r}: step {n} of {t} ends the run here; "
                             f"nothing comes after it to switch to")
        if at < len(prefix):
            # the same point as the entries before, if only IRQ raises came in between
            if any(int(x) < K.ACT_IRQ for x in act[at:len(prefix)]):
                raise ValueError(f"schedule entry {dv!r}: " + (
                    "'at start' may only open the schedule (after other 'at start raise "
                    "IRQ' entries at most)" if t is None else
                    "comes before the previous entry; list the switches in the order they "
                    "happen"))
            at = len(prefix)
        n_alt, alts = ld.alternatives_at(at)
        if what == "run" and target == t and alts[:1] == [want]:
            # (after a raise of another CPU's line, T going on instead of the handler is a
            # choice: describe_choices prints it so)
            raise ValueError(f"schedule entry {dv!r}: switches {t} to itself; name another "
                             f"context (without an entry, {t} goes on anyway)")
        if want not in alts:
            names = [action_text(ld, a) for a in alts]
            doing = f"{target} cannot run" if what == "run" else \
                f"{'spurious ' if what == 'spurious' else ''}IRQ {target} cannot be raised"
            why = _why_no_irq(ld, choice[:at], uc, what) if what != "run" else ""
            raise ValueError(f"schedule entry {dv!r}: {doing} there{why} "
                             f"(possible there: {', '.join(names)})")
        prefix = choice[:at].tolist() + [alts.index(want)]
    return prefix


def _check_target(ld, dv, t, what, target):
    """``raise IRQ`` names an IRQ handler."""
    ntasks = len(ld.scenario.tasks)
    if what != "run" and ld.names.index(target, 1) <= ntasks:
        handlers = ", ".join(ld.names[1 + ntasks:]) or "none in this scenario"
        raise ValueError(f"schedule entry {dv!r}: {target} is a task, not an IRQ handler; "
                         f"'raise IRQ' takes a handler ({handlers}), 'run' a task")


def _why_no_irq(ld, prefix, h, what="irq"):
    """Why handler ``h``'s line cannot be raised after the decisions ``prefix``: its CPU
    masks IRQs there, runs a handler, or the raises are used up (``what`` ``"spurious"``:
    or no transfer is in flight on it). The run stops there (``max_steps`` counts
    decisions); empty if it cannot (no decision yet)."""
    q = ld.scenario.irqs[h - 1 - len(ld.scenario.tasks)]
    none = irq_count(ld.scenario, q) == 0              # no raise of its own at the start
    used_up = (f": {ld.names[h]} has been raised as often as its count allows"
               + (" (a device's completion line: one raise per device_start, none of its "
                  "own unless the irq sets a count)" if none and q.count is None else ""))
    no_transfer = (f": no device transfer is in flight on its line there (a spurious raise "
                   f"is one of the line's own while its device is busy; say 'raise IRQ "
                   f"{ld.names[h]}')")
    if len(prefix) < 1:                         # (no device_start has run yet)
        return no_transfer if what == "spurious" else used_up if none else ""
    r = ld.run(K.SCHED_DFS, prefix, final=False, max_steps=len(prefix))
    if r.decisions != len(prefix):
        return ""
    S = ld.machine._S
    ir = int(S[K.H_R_IRQ]) + int(S[ld.ctx_rec(h) + K.CTX_IRQ_LINE]) * K.IRQ_W
    cpu = int(S[ir + K.IRQ_CPU])
    cr = int(S[K.H_R_CPU]) + cpu * K.CPU_W
    if S[ir + K.IRQ_BUDGET] <= 0 and (what == "spurious" or S[ir + K.IRQ_XFER_LEN] <= 0):
        return used_up
    if what == "spurious" and S[ir + K.IRQ_XFER_LEN] <= 0:
        return no_transfer
    if S[cr + K.CPU_HARDIRQ]:
        return f": CPU{cpu} is in an IRQ handler, with IRQs masked"
    if S[cr + K.CPU_IRQOFF]:
        return f": CPU{cpu} has IRQs masked at that point (local_irq_disable, as in an " \
               f"IRQ-disabling kmap_lock)"
    return ""
