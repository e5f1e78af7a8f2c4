"""A scenario loaded on a machine: setup done, programs compiled, ready to run schedules."""

import copy
import functools
from dataclasses import dataclass, field

import numpy as np

from .. import consts as K
from .._args import check_choice, check_int, check_int_array, kernel_array
from .._jit import entry
from ..dma.oracle import final_check
from ..machine import SCHED_SALT
from ..rng import seed_state
from ..errors import EmuError
from .frames import push
from .program import bad_op_arg, no_handler_message, op_arg_message
from .scenario import (DEFAULTS, OPS, SG_OPS, expand, irq_count, make_machine, parse_data,
                       parse_direction, parse_sg, parse_value, sg_names)
from .dfs import explore_dfs
from .snapshot import Snapshot, empty_log
from .sched import run as _run

OUTCOMES = ("done", "deadlock", "irq-deadlock", "error", "step-limit", "log-full")
assert len(OUTCOMES) == K.NRUN
DEFAULT_MAX_STEPS = 200_000
DEFAULT_LOG = K.DECISION_LOG
#: Largest ``max_steps``: int64-safe (the scheduler adds decision counts to it). A run has a
#: step per decision, so it ends at the decision log's end (``DEFAULT_LOG``) long before.
MAX_STEPS_LIMIT = 1 << 62
#: Largest preemption bound: a schedule has at most ``DEFAULT_LOG`` decisions, so this bound
#: already lets every decision be a preemption (no bound).
MAX_BOUND = DEFAULT_LOG
MODES = (K.SCHED_DFS, K.SCHED_RANDOM, K.SCHED_TIMED)
_DFS_SIG = ("int64(int64[::1], uint8[::1], int64[::1], uint8[::1], int64[::1], uint8[::1], "
            "int64[::1], int64[::1], int64[::1], int64, int64, int64, int64, int64[::1], "
            "int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], "
            "int64[::1])")


@functools.cache
def _explore_dfs():
    """explore_dfs's compiled entry point: no type resolution per call (~1.5 us of 15 args)."""
    return entry(explore_dfs, _DFS_SIG)


def check_choices(choices, name="choices"):
    """A schedule's choices (the alternative taken at each decision) as an int64 array.

    Parameters
    ----------
    choices : sequence of int or numpy.ndarray
        Each an int in ``[0, MAXALT)`` (no decision has more alternatives); whether its
        decision has that many is known only when the run gets there. An int64 array is
        taken as it is: the run rejects a choice out of range when it gets to its decision.
    name : str
        Argument name for the message (a bad element is ``name[k]``).

    Returns
    -------
    numpy.ndarray
        1-D, contiguous, int64.
    """
    c = choices
    if isinstance(c, np.ndarray) and c.ndim == 1 and c.dtype == np.int64:
        # a logged schedule (run_raw's hot path): the scheduler rejects a choice out of
        # range when its decision comes (choices past the run's end are never read)
        return kernel_array(c)
    if not isinstance(c, (list, tuple, range, np.ndarray)):
        raise ValueError(f"{name}={c!r}: must be a sequence of ints in [0, {K.MAXALT})")
    return check_int_array(name, c, 0, K.MAXALT)


@dataclass
class RunResult:
    """What one schedule did.

    Attributes
    ----------
    outcome : str
        ``"done"``, ``"deadlock"``, ``"irq-deadlock"``, ``"error"``, ``"step-limit"`` or
        ``"log-full"``.
    decisions : int
        Scheduling points.
    preemptions : int
        Involuntary switches among them.
    choices : list of int
        The index chosen at each scheduling point.
    actions : list of int
        The context (or IRQ line + ``ACT_IRQ``) run at each point.
    lost_bytes : int
        Bytes lost (every lost-write and lost-at-end finding's).
    findings : list of emu.Finding
        The oracle's findings, oldest first.
    deadlock : bool
        It ended in a deadlock.
    message : str
        The deadlock or error, described; ``""`` otherwise.
    lockdep : str
        A lockdep-style splat if kmap_lock's IRQ usage is unsafe, else ``""``.
    trace : list of str
        The readable trace, if the run was traced.
    stale_reads : int
        Bytes reads got wrong, CPU loads' and devices' (every stale-read,
        read-during-dma and stale-device-read finding's, past the log's capacity too).
    pending_irqs : list of dict
        Timed runs: the IRQ lines still raised or armed when the run ended (see
        :meth:`Loaded.pending_irqs`); empty for DFS and random runs, whose schedules choose
        the raises.
    merged_irqs : int
        Raises of a line while it was still pending (raised, not yet delivered), each merged
        into that interrupt rather than delivered again (timed runs; DFS and random runs
        raise a line only where its handler runs at once).
    data_lost, failed : bool
        Properties: it lost data; it failed in any way.
    """

    outcome: str
    decisions: int
    preemptions: int
    choices: list
    actions: list
    lost_bytes: int
    findings: list
    deadlock: bool
    message: str
    lockdep: str
    trace: list = field(default_factory=list)
    stale_reads: int = 0
    pending_irqs: list = field(default_factory=list)
    merged_irqs: int = 0

    @property
    def data_lost(self):
        """Whether the run lost data (``lost_bytes > 0``)."""
        return self.lost_bytes > 0

    @property
    def failed(self):
        """Whether the run lost data, read stale data, deadlocked or did not finish."""
        return (self.data_lost or self.deadlock or self.stale_reads > 0
                or self.outcome != "done")


# The argument of a program operation that is a data-pool offset: data it writes (or the
# device does), or its buffer for what it reads.
SOURCE_ARG = {"write": 2, "device_write": 2, "device_start": 3}
DEST_ARG = {"read": 2, "device_read": 2}


#: The argument of a program operation that is an IRQ line.
LINE_ARG = {"device_start": 2, "wait_irq": 0}


def _check_constants(S, rows, where, lines=None):
    """The program ops whose arguments are all constants, checked as they would be when they
    run (:func:`emu.exec.program.bad_op_arg`), so a bad value is reported before any run;
    ``kmap_high_get`` only where the machine has it; and a constant IRQ line of
    ``device_start`` / ``wait_irq`` only where an ``[[irq]]`` handles it (``lines``: the
    handlers' lines): a line without one is never raised, so the device would never write
    and a wait would never end (it was a silent deadlock)."""
    for i, r in enumerate(rows):
        kind = K.PROG_NAMES[r[0]]
        if kind == "kmap_high_get" and not S[K.H_KHG]:
            raise ValueError(f"{where[i]}: kmap_high_get() does not exist without "
                             f"ARCH_NEEDS_KMAP_HIGH_GET (the machine has kmap_high_get=False)")
        if all(ref < 0 for ref in r[1 + K.NARGS:]):
            k = bad_op_arg(S, r[0], *r[1:1 + K.NARGS])
            if k >= 0:
                raise ValueError(f"{where[i]}: {op_arg_message(S, kind, k, r[1 + k])}")
        k = LINE_ARG.get(kind)
        if k is not None and lines is not None and r[1 + K.NARGS + k] < 0 \
                and r[1 + k] not in lines:
            raise ValueError(f"{where[i]}: {no_handler_message(kind, r[1 + k], lines)}")


def _compile(programs):
    """Program rows and data pool for every (where, ops) program. Returns the rows, the data
    pool, each program's (first row, row count) and how many bytes at the pool's start runs
    can write (the read buffers; the written data follows, and restores leave it alone);
    result references are made relative to the program's first row (its register file),
    data offsets relative to the pool; and, per row, the task and op it comes from."""
    rows, data, spans, row_where = [], bytearray(), [], []
    dst = bytearray()                           # read buffers (data: what is written)
    for where, ops in programs:
        names, start = {}, len(rows)

        def val(w, op, name):
            v = op.get(name, DEFAULTS.get(name))
            if v is None:
                raise ValueError(f"{w}: {op['op']} needs {name}")
            imm, ref = parse_value(v, names, w, name)
            return imm, (ref - start if ref >= 0 else -1)

        for w, op in expand(ops, where):
            kind = op["op"]
            nil = (0, -1)
            if kind in SG_OPS:                  # a row per entry, as for the page op
                d = parse_direction(op.get("direction"), w)
                sg = parse_sg(op, w)
                named = sg_names(op["as"], len(sg)) if "as" in op else []
                for k, (pfn, off, n) in enumerate(sg):
                    args = ([pfn, off, n, d, 0] if kind == "dma_map_sg"
                            else [(pfn << K.PAGE_SHIFT) + off, n, d, 0, 0])
                    rows.append([K.PROG_NAMES.index(kind)] + args + [-1] * K.NARGS)
                    row_where.append(f"{w} sg[{k}]")
                    if named:
                        names[named[k]] = len(rows) - 1
                continue
            if kind in ("read", "device_read"):
                n = val(w, op, "n")
                if n[1] >= 0 or n[0] <= 0:
                    raise ValueError(f"{w}: n={op.get('n')!r}: must be a positive int")
                args = [val(w, op, OPS[kind][0]), n, (len(dst), -1), nil, nil]
                dst += bytes(n[0])
            elif kind in ("write", "fill", "device_write", "device_start"):
                blob = parse_data(op, w)
                first = val(w, op, OPS[kind][0])
                buf = (len(data), -1)
                data += blob
                args = [first, (len(blob), -1), buf, nil, nil]
                if kind == "fill":                      # read the lines in, then write them
                    rd = [first, (len(blob), -1), (len(dst), -1), nil, nil]
                    dst += bytes(len(blob))              # the read's own buffer
                    rows.append([K.P_READ] + [a[0] for a in rd] + [a[1] for a in rd])
                    row_where.append(w)
                elif kind == "device_start":
                    args = [first, (len(blob), -1), val(w, op, "line"), buf,
                            val(w, op, "cycles")]
            elif kind == "dma_map_page":
                d = (parse_direction(op.get("direction"), w), -1)
                args = [val(w, op, "pfn"), val(w, op, "offset"), val(w, op, "size"), d, nil]
            elif kind.startswith("dma_"):
                d = (parse_direction(op.get("direction"), w), -1)
                args = [val(w, op, "dma_addr"), val(w, op, "size"), d, nil, nil]
            elif kind == "wait_irq":
                args = [val(w, op, "line"), val(w, op, "count"), nil, nil, nil]
            elif OPS[kind] == ("pfn",):
                args = [val(w, op, "pfn"), nil, nil, nil, nil]
            else:
                args = [nil] * K.NARGS
            code = K.PROG_NAMES.index("write" if kind == "fill" else kind)
            rows.append([code] + [a[0] for a in args] + [a[1] for a in args])
            row_where.append(w)
            if "as" in op:
                names[op["as"]] = len(rows) - 1
        spans.append((start, len(rows) - start))
    for r in rows:                              # the written data goes after the read buffers
        k = SOURCE_ARG.get(K.PROG_NAMES[r[0]])
        if k is not None:
            r[1 + k] += len(dst)
    return rows, bytes(dst + data), spans, len(dst), row_where


class Loaded:
    """Scenario ``sc`` on a fresh machine, with a snapshot to restore before each run
    (what :meth:`Scenario.build` returns).

    Parameters
    ----------
    sc : Scenario
        Copied: later edits of ``sc`` do not reach this machine or its replay tokens.
    trace_events : int
        Room for trace events (0: none).

    Attributes
    ----------
    scenario : Scenario
        The copy it was loaded from.
    machine : emu.Machine
        The machine the runs change (each run starts from the snapshot).
    names : list of str
        Context names by number: ``"direct"``, the tasks, then the IRQ handlers.
    snapshot : Snapshot
        The state after setup.
    """

    def __init__(self, sc, trace_events=0):
        # a copy: the scenario this machine was loaded with, whatever the caller does to
        # ``sc`` later (replay tokens and exploration workers are made from it)
        self.scenario = sc = copy.deepcopy(sc)
        progs = [(f"task {t.name!r}", t.ops) for t in sc.tasks] + \
                [(f"irq {q.name!r}", q.ops) for q in sc.irqs]
        rows, data, spans, writable, self.row_where = _compile(progs)
        self.machine = m = make_machine(sc, max(len(rows), 1), max(len(data), 1), trace_events)
        m._S[K.H_DATA_RW] = writable
        _check_constants(m._S, rows, self.row_where, {q.line for q in sc.irqs})
        self.names = ["direct"] + [t.name for t in sc.tasks] + [q.name for q in sc.irqs]
        m._ctx_names = self.names               # a direct call's errors name the contexts
        self._setup(m, sc)
        S, B = m._S, m._B
        if rows:
            S[int(S[K.H_R_PROG]):int(S[K.H_R_PROG]) + len(rows) * K.PW] = \
                np.array(rows, dtype=np.int64).ravel()
        dp = int(S[K.H_B_DATA])
        B[dp:dp + len(data)] = np.frombuffer(data, np.uint8)
        self._rebase_buffers(S, rows, dp)
        self._contexts(S, sc, spans)
        self._reset_measurements()
        self.snapshot = Snapshot(m)
        self._log = empty_log(DEFAULT_LOG)
        self._prefix = np.zeros(DEFAULT_LOG, np.int64)      # dfs(): the next schedule
        self._one = np.zeros(DEFAULT_LOG, np.int64)         # run_raw(): its schedule
        self._checkpoint = None                             # dfs(): see _checkpoint_arrays
        #: A search by level's buffer of roots (``LEVEL_WORDS`` int64; see
        #: :func:`emu.exec.explore.walk_levels`), None outside one.
        self.levels = None

    # -- construction -----------------------------------------------------------------------------
    def _rebase_buffers(self, S, rows, dp):
        """Data-pool offsets in rows are relative to the pool: make them absolute in B."""
        base = int(S[K.H_R_PROG])
        for i, r in enumerate(rows):
            op = K.PROG_NAMES[r[0]]
            k = SOURCE_ARG.get(op, DEST_ARG.get(op))
            if k is not None:
                S[base + i * K.PW + K.PO_A + k] += dp

    def _contexts(self, S, sc, spans):
        prog, regs = int(S[K.H_R_PROG]), int(S[K.H_R_REGS])
        ntasks = len(sc.tasks)
        S[K.H_NTASKS] = ntasks
        for i, who in enumerate(sc.tasks + sc.irqs):
            c = 1 + i
            start, n = spans[i]
            cr = int(S[K.H_R_CTX]) + c * K.CTX_W
            S[cr + K.CTX_KIND] = K.KIND_TASK if i < ntasks else K.KIND_IRQ
            S[cr + K.CTX_CPU] = who.cpu
            S[cr + K.CTX_PROG] = prog + start * K.PW
            S[cr + K.CTX_PROG_LEN] = n
            S[cr + K.CTX_REGS] = regs + start
            S[cr + K.CTX_SP] = 0
            if i < ntasks:
                S[cr + K.CTX_STATE] = K.CTX_RUNNABLE
                S[cr + K.CTX_IRQ_LINE] = -1
                push(S, c, K.R_PROGRAM, 0, 0, 0, 0)
            else:
                S[cr + K.CTX_STATE] = K.CTX_STATE_FREE
                S[cr + K.CTX_IRQ_LINE] = who.line
                ir = int(S[K.H_R_IRQ]) + who.line * K.IRQ_W
                S[ir + K.IRQ_CTX] = c
                S[ir + K.IRQ_CPU] = who.cpu
                budget = irq_count(sc, who)
                S[ir + K.IRQ_BUDGET] = budget
                S[ir + K.IRQ_PERIOD] = who.period
                # count = 0 (a device line's default too): no firings of its own at all, a
                # timed first one included
                S[ir + K.IRQ_DUE] = -1 if budget == 0 else who.first
        for cpu in range(self.machine.ncpus):
            S[int(S[K.H_R_CPU]) + cpu * K.CPU_W + K.CPU_CUR] = -1
        S[K.H_LAST_CTX] = -1

    def _setup(self, m, sc):
        """Run the setup ops as direct calls (pfns and directions checked by the Machine)."""
        names, results = {}, []
        for w, op in expand(sc.setup, "setup"):
            kind = op["op"]

            def v(name):
                imm, ref = parse_value(op.get(name, DEFAULTS.get(name)), names, w, name)
                return imm + (results[ref] if ref >= 0 else 0)
            try:
                if kind in ("kmap", "kunmap", "kmap_high", "kunmap_high", "kmap_high_get"):
                    r = getattr(m, kind)(v("pfn"))
                elif kind == "kmap_flush_unused":
                    r = m.kmap_flush_unused()
                elif kind == "read":
                    r = m.read(v("va"), v("n"))
                elif kind in ("write", "fill"):
                    blob = parse_data(op, w)
                    if kind == "fill":
                        m.read(v("va"), len(blob))
                    r = m.write(v("va"), blob)
                elif kind == "dma_map_page":
                    r = m.dma_map_page(v("pfn"), v("offset"), v("size"),
                                       parse_direction(op.get("direction"), w))
                elif kind in SG_OPS:
                    r = getattr(m, kind)(parse_sg(op, w), parse_direction(op.get("direction"),
                                                                          w))
                elif kind.startswith("dma_"):
                    r = getattr(m, kind)(v("dma_addr"), v("size"),
                                         parse_direction(op.get("direction"), w))
                elif kind == "device_write":
                    r = m.device.write(v("dma_addr"), parse_data(op, w))
                else:
                    raise ValueError(f"{kind} cannot run in setup (no task runs there)")
            except (ValueError, EmuError) as e:         # same type, saying which op (once:
                msg = str(e)                            # the op's own parsers say it too)
                raise type(e)(msg if msg.startswith(f"{w}: ") else f"{w}: {msg}") from None
            rs = r if kind == "dma_map_sg" else [r]            # a result per sg entry
            named = sg_names(op["as"], len(rs)) if "as" in op else [None] * len(rs)
            for x, name in zip(rs, named):
                results.append(int(x) if isinstance(x, (int, np.integer)) else 0)
                if name is not None:
                    names[name] = len(results) - 1

    def _reset_measurements(self):
        """Setup's cycles and counters do not belong to the runs."""
        S = self.machine._S
        for slot, n in ((K.H_R_UOPS, K.ACC_W), (K.H_R_PROF, K.PROF_W),
                        (K.H_R_CSTAT, K.NCSTAT), (K.H_R_MMSTAT, K.NMMSTAT),
                        (K.H_R_PROFR, K.PR_SIZE)):
            off = int(S[slot])
            S[off:off + n] = 0
        lk = int(S[K.H_R_LOCK])
        S[lk + K.LK_ACQUISITIONS:lk + K.LOCK_W] = 0
        S[lk + K.LK_IN_IRQ_SITE] = S[lk + K.LK_IRQ_ON_SITE] = -1
        fr = int(S[K.H_R_FIND])
        S[fr + K.FIND_COUNT] = 0
        S[fr + K.FIND_BYTES:fr + K.FIND_HDR] = 0
        S[int(S[K.H_R_EV]) + K.EV_COUNT] = 0
        S[K.H_EV_SEEN] = 0
        S[K.H_STEP] = 0
        for cpu in range(self.machine.ncpus):
            S[int(S[K.H_R_CPU]) + cpu * K.CPU_W + K.CPU_CLOCK] = 0
        S[K.H_NOW] = 0
        for c in range(int(S[K.H_NCTX])):
            cr = int(S[K.H_R_CTX]) + c * K.CTX_W
            S[cr + K.CTX_CYCLES] = 0
            S[cr + K.CTX_STEPS] = 0

    # -- running --------------------------------------------------------------------------------
    def run(self, mode=K.SCHED_DFS, choices=(), p_switch=0, seed=None, trace=False,
            max_steps=DEFAULT_MAX_STEPS, final=True, readable=True):
        """Restore the snapshot and run one schedule.

        Parameters
        ----------
        mode : int
            ``K.SCHED_DFS`` (``choices``, then the non-preemptive default), ``K.SCHED_RANDOM``
            (seeded draws) or ``K.SCHED_TIMED`` (clocks, timed IRQs, time slices). DFS and
            random runs end as ``log-full`` at the decision log's end (``DEFAULT_LOG``
            decisions); a timed run goes on, and its ``choices`` and ``actions`` then hold
            the first ``DEFAULT_LOG - 1`` decisions and the last one.
        choices : sequence of int
            DFS mode: the alternative taken at each decision from the first (see
            :func:`check_choices`); choices past the run's end are not used.
        p_switch : int
            Random mode: the chance of a switch where the running context could go on, per
            ``K.P_SWITCH_SCALE``.
        seed : int, optional
            Random mode's seed (default: the generator as the snapshot has it).
        trace : bool
            Record the event trace (:mod:`emu.exec.trace`) and, with ``readable``, return it
            as the readable trace (``RunResult.trace``).
        max_steps : int
            Steps after which the run ends as ``step-limit``, in ``[1, MAX_STEPS_LIMIT]``.
        final : bool
            Check a finished run's data (``lost_bytes``).
        readable : bool
            With ``trace``: build ``RunResult.trace`` (False: the events stay in the machine
            only, for :func:`emu.exec.trace.trace_events`; the Chrome export reads them so).

        Returns
        -------
        RunResult

        Raises
        ------
        ValueError
            A bad argument (nothing has run), or a choice its decision does not have (the run
            stops there and the machine goes back to the snapshot).
        """
        mode = check_choice("mode", mode, MODES)
        prefix = check_choices(choices)
        p_switch = check_int("p_switch", p_switch, 0, K.P_SWITCH_SCALE)
        max_steps = check_int("max_steps", max_steps, 1, MAX_STEPS_LIMIT)
        if seed is not None:
            seed = check_int("seed", seed, 0)
        m = self.machine
        self.snapshot.restore(m)
        S = m._S
        if seed is not None:
            S[K.H_SCHED_RNG] = seed_state(seed, SCHED_SALT)
        tr = int(S[K.H_R_TRACE])
        S[tr + K.TR_ON] = 1 if trace else 0
        S[K.H_YIELD] = 1
        nalt, choice, pre, act, arow, alts = self._log
        outcome, d, npre = _run(S, m._B, mode, prefix, len(prefix), p_switch, max_steps,
                                K.RUN_START, K.RUN_START, nalt, choice, pre, act, arow,
                                alts)
        S[K.H_YIELD] = 0
        if outcome == K.RUN_BAD_CHOICE:
            self._bad_choice("choices", prefix, int(d))
        lost = int(final_check(S, m._B)) if final and outcome == K.RUN_DONE else 0
        r = self._result(int(outcome), int(d), int(npre), lost, trace and readable)
        if mode == K.SCHED_TIMED:
            r.pending_irqs = self.pending_irqs()
        return r

    def pending_irqs(self):
        """The IRQ lines a timed run left raised or armed, as the machine stands.

        A timed run goes on after its tasks have finished while a line it waits for is due
        (:func:`emu.exec.sched.awaited`), idle CPUs catching up with it, so what is left here
        never fired: a line whose CPU has IRQs masked for good, or an armed one when the run
        ended early (an error, a deadlock, the step limit). A tick (a periodic line with more
        than ``K.DRAIN_MAX_FIRINGS`` firings left, which the run does not wait for) is not
        listed: being armed at the end is what a tick does.

        Returns
        -------
        list of dict
            ``{"line", "handler", "cpu", "state", "due", "firings_left"}`` per line:
            ``state`` is ``"raised"`` (pending, never delivered; ``due`` None) or ``"armed"``
            (``due`` the CPU clock it would fire at).
        """
        S = self.machine._S
        out = []
        for q in self.scenario.irqs:
            ir = int(S[K.H_R_IRQ]) + q.line * K.IRQ_W
            due, raised = int(S[ir + K.IRQ_DUE]), bool(S[ir + K.IRQ_PENDING])
            xfer = int(S[ir + K.IRQ_XFER_DUE]) if S[ir + K.IRQ_XFER_LEN] > 0 else -1
            if not raised and xfer < 0 and (due < 0 or (
                    S[ir + K.IRQ_PERIOD] > 0 and S[ir + K.IRQ_BUDGET] > K.DRAIN_MAX_FIRINGS)):
                continue                        # idle, or a tick
            # an armed line fires once more, a periodic one once per budget left, and once
            # more for its device's transfer in flight
            armed = 0 if due < 0 else (max(int(S[ir + K.IRQ_BUDGET]), 1)
                                       if S[ir + K.IRQ_PERIOD] > 0 else 1)
            armed += xfer >= 0
            due = min((d for d in (due, xfer) if d >= 0), default=-1)
            out.append({"line": int(q.line), "handler": q.name, "cpu": int(q.cpu),
                        "state": "raised" if raised else "armed",
                        "due": None if raised else due,
                        "firings_left": armed + 1 if raised else armed})
        return out

    def run_raw(self, choices, max_steps=DEFAULT_MAX_STEPS):
        """A DFS-mode run without building a report.

        One jitted call (:func:`emu.exec.dfs.explore_dfs` with a limit of one).

        Parameters
        ----------
        choices : sequence of int
            As for :meth:`run`; choices past the decision log's length are not used (the run
            ends there).
        max_steps : int
            As for :meth:`run`.

        Returns
        -------
        tuple of int
            (outcome, decisions, preemptions, lost bytes).
        """
        prefix = check_choices(choices)
        max_steps = check_int("max_steps", max_steps, 1, MAX_STEPS_LIMIT)
        buf = self._one                                     # not dfs()'s prefix buffer
        n = min(len(prefix), len(buf))
        buf[:n] = prefix[:n]
        x = _dfs_x(n, 0)
        if self._dfs(0, max_steps, 1, K.DFS_NO_NEXT, x, buf) & K.DFS_BAD_CHOICE:
            self._bad_choice("choices", buf, int(x[K.X_D]))
        return int(x[K.X_OUTCOME]), int(x[K.X_D]), int(x[K.X_NPRE]), int(x[K.X_LOST])

    def _bad_choice(self, name, prefix, d):
        """The run stopped at decision ``d``, which has no alternative ``prefix[d]``: the
        machine goes back to the snapshot, and ValueError says so."""
        j, n = int(prefix[d]), int(self._log[0][d])
        self.snapshot.restore(self.machine)
        if j < 0:                               # (only dfs()'s own buffer can hold one)
            raise ValueError(f"{name}[{d}]={j}: must be an int >= 0")
        raise ValueError(f"{name}[{d}]={j}: decision {d} has only {n} "
                         f"alternative{'' if n == 1 else 's'}")

    def dfs_state(self, prefix=(), floor=0):
        """A fresh ``X_*`` state for :meth:`dfs`, nothing counted.

        Parameters
        ----------
        prefix : sequence of int
            The next schedule (put in the prefix buffer; see :func:`check_choices`).
        floor : int
            Only decisions from ``floor`` on vary (in ``[0, DEFAULT_LOG]``): with
            ``floor = len(prefix)`` the search covers the schedules that start with
            ``prefix``.

        Returns
        -------
        numpy.ndarray
        """
        prefix = check_choices(prefix, "prefix")
        floor = check_int("floor", floor, 0, DEFAULT_LOG)
        n = min(len(prefix), len(self._prefix))
        self._prefix[:n] = prefix[:n]
        return _dfs_x(n, floor)

    def dfs(self, bound, max_steps, limit, ask, x, prefix=None):
        """Run DFS schedules from a prefix, leaving the next schedule in the prefix buffer.

        See :func:`emu.exec.dfs.explore_dfs`. A prefix choice its decision does not have raises
        ValueError (the machine goes back to the snapshot, nothing counted).

        Parameters
        ----------
        bound : int
            Preemption bound, in ``[0, MAX_BOUND]``.
        max_steps : int
            Step limit of each schedule, as for :meth:`run`.
        limit : int
            Schedules to run at most, ``>= 1``.
        ask : int
            The ``DFS_*`` bits to stop at.
        x : numpy.ndarray
            A search state from :meth:`dfs_state`, updated in place.
        prefix : numpy.ndarray, optional
            int64, at least as long as the decision log; the schedule is its first
            ``x[X_PLEN]`` entries (default: this scenario's prefix buffer, see
            :meth:`next_prefix`).

        Returns
        -------
        int
            Why it stopped (``DFS_*`` bits).
        """
        bound = check_int("bound", bound, 0, MAX_BOUND)
        max_steps = check_int("max_steps", max_steps, 1, MAX_STEPS_LIMIT)
        limit = check_int("limit", limit, 1, (1 << 63) - 1)
        ask = check_int("ask", ask, 0, K.DFS_LOCKDEP | K.DFS_FAILED | K.DFS_NO_NEXT)
        buf = self._prefix if prefix is None else prefix
        if not (isinstance(buf, np.ndarray) and buf.dtype == np.int64 and buf.ndim == 1
                and buf.flags.c_contiguous and len(buf) >= DEFAULT_LOG):
            raise ValueError(f"prefix: must be a contiguous int64 array of at least "
                             f"{DEFAULT_LOG} entries (the decision log's length)")
        if not (isinstance(x, np.ndarray) and x.dtype == np.int64 and x.shape == (K.X_W,)
                and x.flags.c_contiguous and x.flags.writeable
                and x[K.X_PLEN] <= len(buf) and x[K.X_FLOOR] >= 0
                and self._levels_ok(x)):
            raise ValueError("x: must be a state from dfs_state()")
        return self._search(bound, max_steps, limit, ask, x, buf)

    def _levels_ok(self, x):
        """``x``'s roots and room for them lie in the level buffer (none without one)."""
        n = 0 if self.levels is None else len(self.levels)
        return (0 <= x[K.X_ROOT_AT] <= x[K.X_ROOT_END] <= n and x[K.X_ROOT_C] >= 0
                and (x[K.X_EMIT_AT] == -1 or 0 <= x[K.X_EMIT_AT] <= x[K.X_EMIT_END] <= n))

    def search(self, bound, max_steps, limit, ask, x):
        """:meth:`dfs` on the prefix buffer with its arguments taken as checked: what ``explore()``
        calls, which comes back to Python at every new best failure, so checks would add up.

        Parameters
        ----------
        bound, max_steps, limit, ask : int
            As for :meth:`dfs`, checked once by the caller.
        x : numpy.ndarray
            A search state from :meth:`dfs_state`.

        Returns
        -------
        int
            Why it stopped (``DFS_*`` bits).
        """
        return self._search(bound, max_steps, limit, ask, x, self._prefix)

    def _search(self, bound, max_steps, limit, ask, x, buf):
        why = self._dfs(bound, max_steps, limit, ask, x, buf)
        if why & K.DFS_BAD_CHOICE:
            self._bad_choice("prefix", buf, int(x[K.X_D]))
        return why

    def _dfs(self, bound, max_steps, limit, ask, x, buf):
        """:meth:`dfs`, arguments unchecked."""
        m = self.machine
        return _explore_dfs()(m._S, m._B, self.snapshot.S, self.snapshot.B,
                              *self._checkpoint_arrays(), buf, bound, max_steps, limit, ask, x,
                              *self._log, _NO_LEVELS if self.levels is None else self.levels)

    def _checkpoint_arrays(self):
        """Where :meth:`dfs` keeps the state its schedules share a prefix of (see
        :func:`emu.exec.dfs.run_schedule`): ``S`` and ``B`` shaped arrays (zeroed lazily by
        the OS: only the parts a checkpoint holds are ever written), its RAM page list, and
        its key."""
        if self._checkpoint is None:
            S, B = self.machine._S, self.machine._B
            self._checkpoint = (np.zeros_like(S), np.zeros_like(B),
                                np.zeros(int(S[K.H_NPAGES]) + 1, np.int64),
                                np.full(4, -1, np.int64))
        return self._checkpoint

    def next_prefix(self, x):
        """The schedule :meth:`dfs` runs next.

        Parameters
        ----------
        x : numpy.ndarray
            The search state.

        Returns
        -------
        numpy.ndarray
            A copy of the choices.
        """
        return self._prefix[:max(int(x[K.X_PLEN]), 0)].copy()

    def lockdep(self):
        """lockdep's report on kmap_lock after the last run ("inconsistent {IN-HARDIRQ-W} ->
        {HARDIRQ-ON-W} usage" with both sites), or "" if its usage is consistent."""
        from .report import lockdep_splat
        return lockdep_splat(self)

    def ctx_rec(self, c):
        """Where a context's record (``CTX_*`` slots) starts in ``machine._S``.

        Parameters
        ----------
        c : int
            The context: 0 is the direct-call task, then the tasks, then the IRQ handlers.

        Returns
        -------
        int
        """
        return int(self.machine._S[K.H_R_CTX]) + c * K.CTX_W

    def _result(self, outcome, d, npre, lost, trace):
        m = self.machine
        nalt, choice, pre, act, arow, alts = self._log
        findings = m.findings()
        fr = int(m._S[K.H_R_FIND])
        if outcome != K.RUN_DONE:                   # every finding's bytes, kept or not
            lost = int(m._S[fr + K.FIND_BYTES + K.FIND_LOST])
        deadlock = outcome in (K.RUN_DEADLOCK, K.RUN_IRQ_DEADLOCK)
        from .report import describe_outcome, lockdep_splat, readable_trace
        msg = describe_outcome(self, outcome)
        actions = act[:d].tolist()
        return RunResult(OUTCOMES[outcome], d, npre, choice[:d].tolist(), actions,
                         lost, findings, deadlock, msg, lockdep_splat(self),
                         readable_trace(self, actions) if trace else [],
                         sum(int(m._S[fr + K.FIND_BYTES + k]) for k in K.FIND_STALE_KINDS),
                         merged_irqs=merged_irqs(m._S))

    def alternatives_at(self, d):
        """The alternatives of one decision of the last run.

        Parameters
        ----------
        d : int
            The decision's index.

        Returns
        -------
        tuple
            ``(count, alternatives)``; alternative 0 is the non-preemptive default when the last
            context could go on.
        """
        nalt, choice, pre, act, arow, alts = self._log
        n = int(nalt[d])
        r = int(arow[d])
        return n, alts[r * K.MAXALT:r * K.MAXALT + n].tolist()

    def last_log(self, d):
        """The decision log of the last run.

        Parameters
        ----------
        d : int
            How many decisions, from the first.

        Returns
        -------
        tuple of numpy.ndarray
            ``(nalt, choice, pre, act)``: alternatives, the choice made, whether it was a
            preemption, and the action taken, per decision (views).
        """
        nalt, choice, pre, act, arow, alts = self._log
        return nalt[:d], choice[:d], pre[:d], act[:d]


def merged_irqs(S):
    """Raises merged into a pending one in the last run, every line together.

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array.

    Returns
    -------
    int
    """
    base = int(S[K.H_R_IRQ])
    return int(sum(S[base + line * K.IRQ_W + K.IRQ_MERGED] for line in range(K.MAXIRQ)))


_NO_LEVELS = np.zeros(1, np.int64)     # dfs()'s level buffer outside a search by level


def _dfs_x(plen, floor):
    """A fresh ``X_*`` state: the next schedule is the prefix buffer's first ``plen``."""
    x = np.zeros(K.X_W, np.int64)
    x[K.X_BEST_NPRE] = -1
    x[K.X_PLEN] = plen
    x[K.X_FLOOR] = floor
    x[K.X_EMIT_AT] = -1                     # no roots recorded (see walk_levels)
    return x


def load(sc, trace_events=0):
    """Load a scenario onto a new machine (:meth:`Scenario.build`).

    Parameters
    ----------
    sc : Scenario
    trace_events : int
        Trace slots to record.

    Returns
    -------
    Loaded
    """
    return Loaded(sc, trace_events)

