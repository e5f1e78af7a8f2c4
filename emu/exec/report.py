"""Human-readable reports of a run: outcome, lockdep-style splats, and the step trace."""

from .. import consts as K
from .errors import bug_message, dma_debug_message
from .program import op_arg_message
from .scenario import OPS, SG_OPS, expand_indexed
from .trace import trace_events


def count_of(n, word):
    """A count with its noun: ``1 preemption``, ``2 preemptions``.

    Parameters
    ----------
    n : int
    word : str
        The singular noun.

    Returns
    -------
    str
    """
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ctx_name(ld, c):
    return ld.names[c] if 0 <= c < len(ld.names) else f"ctx{c}"


def _rec(S, c):
    return int(S[K.H_R_CTX]) + c * K.CTX_W


def _routine(S, c):
    """Innermost routine of context ``c`` (or 'idle')."""
    cr = _rec(S, c)
    sp = int(S[cr + K.CTX_SP])
    if sp == 0:
        return "idle"
    f = cr + K.CTX_FRAMES + (sp - 1) * K.FW
    return K.ROUTINE_LABELS[int(S[f + K.F_ROUTINE])]


def irq_deadlock_lines(cpu="CPU0", lock="kmap_lock"):
    """lockdep's "Possible unsafe locking scenario" for a lock taken in and out of IRQs.

    Parameters
    ----------
    cpu : str
        The CPU's name as lockdep prints it.
    lock : str
        The lock's name.

    Returns
    -------
    list of str
    """
    return [f"       {cpu}", "       ----", f"  lock({lock});", "  <Interrupt>",
            f"    lock({lock});", "", " *** DEADLOCK ***"]


def describe_outcome(ld, outcome):
    """One paragraph on why a run ended.

    Parameters
    ----------
    ld : Loaded
        The machine, as the run left it.
    outcome : int
        The run's outcome (``RUN_*``).

    Returns
    -------
    str
        Empty when every task finished.
    """
    S = ld.machine._S
    if outcome == K.RUN_DONE:
        return ""
    if outcome == K.RUN_IRQ_DEADLOCK:
        h = int(S[K.H_FAIL_CTX])
        cpu = int(S[_rec(S, h) + K.CTX_CPU])
        lk = int(S[K.H_R_LOCK])
        owner = int(S[lk + K.LK_OWNER])
        site = K.SITE_NAMES[int(S[lk + K.LK_ACQ_SITE])]
        return (f"CPU{cpu}: lock(kmap_lock); <Interrupt> lock(kmap_lock); *** DEADLOCK ***\n"
                f"  {_ctx_name(ld, owner)} holds kmap_lock (taken in {site}) with IRQs "
                f"enabled; the IRQ handler {_ctx_name(ld, h)} interrupted it on CPU{cpu} and "
                f"spins in {_routine(S, h)} for the same lock, which can never be released.\n"
                + "\n".join(irq_deadlock_lines(f"CPU{cpu}")))
    if outcome == K.RUN_DEADLOCK:
        parts = []
        owner = int(S[int(S[K.H_R_LOCK]) + K.LK_OWNER])
        for c in range(1, len(ld.names)):
            cr = _rec(S, c)
            st = int(S[cr + K.CTX_STATE])
            name = _ctx_name(ld, c)
            if st == K.CTX_SLEEPING:
                parts.append(f"{name} sleeps on pkmap_map_wait in {_routine(S, c)} "
                             f"(every pkmap slot pinned, nobody left to kunmap)")
            elif st == K.CTX_WAIT_IRQ:
                parts.append(f"{name} waits for IRQ line {int(S[cr + K.CTX_WAIT_LINE])}, "
                             f"which will not fire again")
            elif st == K.CTX_RUNNABLE and int(S[cr + K.CTX_SPIN]):
                parts.append(f"{name} spins on kmap_lock held by {_ctx_name(ld, owner)}")
        return "deadlock: no context can run: " + "; ".join(parts)
    if outcome == K.RUN_ERROR:
        c = int(S[K.H_FAIL_CTX])
        who = _ctx_name(ld, c) if c < K.ACT_IRQ else f"irq line {c - K.ACT_IRQ}"
        err = int(S[K.H_ERR])
        a, b, cc, d = (int(S[x]) for x in (K.H_ERR_A, K.H_ERR_B, K.H_ERR_C, K.H_ERR_D))
        if err == K.ERR_PAGE_FAULT:
            msg = f"Unable to handle kernel paging request at virtual address {a:08x}"
        elif err == K.ERR_BUG:
            msg = "kernel BUG: " + bug_message(a, b, cc, d)
        elif err == K.ERR_DMA_DEBUG:
            msg = dma_debug_message(a, b, cc, d)
        elif err == K.ERR_BAD_ARG:                  # a: program row, b: argument, cc: value
            kind = K.PROG_NAMES[int(S[int(S[K.H_R_PROG]) + a * K.PW + K.PO_OP])]
            return f"{ld.row_where[a]}: {op_arg_message(S, kind, b, cc)}"
        elif err == K.ERR_DEVICE_BUSY:              # a: row, b: line, cc: address, d: bytes
            return (f"{ld.row_where[a]}: device_start on line {b} while the line's previous "
                    f"transfer ({d} bytes to {cc:#x}) is still in flight: a line has one "
                    f"transfer at a time (wait_irq for it first, or use another line)")
        elif err == K.ERR_CLOCK_END:                # a: row, b: line, cc: clock, d: delay
            return (f"{ld.row_where[a]}: device_start on line {b} at cycle {cc}: its completion "
                    f"{d} cycles later would come past cycle {K.MAX_TIMED_CLOCK} "
                    f"(K.MAX_TIMED_CLOCK: the cycle clocks are 64-bit)")
        else:
            msg = f"error {err}"
        return f"{who}: {msg}"
    if _tasks_done(S):                          # the handlers went on alone
        return ("the IRQ handlers kept the run going after every task had finished (a "
                "handler that starts its line's device again on every completion never lets "
                "a run end, and scenarios have no conditionals to stop it): "
                + ("the step limit was reached" if outcome == K.RUN_LIMIT else
                   f"it reached {K.DECISION_LOG:,} scheduling decisions, the most one run can "
                   f"log"))
    if outcome == K.RUN_LIMIT:
        return "no progress: the step limit was reached (a livelock, or raise max_steps)"
    return (f"the run reached {K.DECISION_LOG:,} scheduling decisions, the most one run can log: "
            f"shorten the scenario (every step is one: each op, IRQ raise, line of a cache "
            f"maintenance loop and 32-byte piece of a CPU read or write, so about 1 MiB of "
            f"copying fills it)")


def _tasks_done(S):
    """Every task of the run has finished."""
    return all(int(S[_rec(S, t) + K.CTX_STATE]) == K.CTX_DONE
               for t in range(1, int(S[K.H_NTASKS]) + 1))


def pending_irq_text(p):
    """One of a timed run's pending IRQs in words.

    Parameters
    ----------
    p : dict
        An entry of :meth:`~emu.exec.loaded.Loaded.pending_irqs`.

    Returns
    -------
    str
    """
    who = f"IRQ line {p['line']} ({p['handler']}, cpu{p['cpu']})"
    if p["state"] == "raised":
        return (f"{who} raised and never delivered: cpu{p['cpu']} kept IRQs masked to the "
                f"end")
    left = p["firings_left"]
    return (f"{who} still armed: due at cycle {p['due']:,}, "
            f"{left:,} firing{'' if left == 1 else 's'} left (the run ended before it was due)")


def _usage_chars(usage):
    if usage & K.USAGE_IN_HARDIRQ and usage & K.USAGE_HARDIRQ_ON:
        return "{?.+.}"
    if usage & K.USAGE_IN_HARDIRQ:
        return "{-...}"
    if usage & K.USAGE_HARDIRQ_ON:
        return "{+.+.}"
    return "{....}"


def lockdep_splat(ld):
    """lockdep's "inconsistent lock state" report, if kmap_lock was taken both in hardirq
    context and elsewhere with IRQs enabled (even on a schedule that did not deadlock).

    Parameters
    ----------
    ld : Loaded
        The machine after a run.

    Returns
    -------
    str
        The report naming both sites, or ``""`` if kmap_lock's usage is consistent.
    """
    S = ld.machine._S
    lk = int(S[K.H_R_LOCK])
    usage = int(S[lk + K.LK_USAGE])
    if not (usage & K.USAGE_IN_HARDIRQ and usage & K.USAGE_HARDIRQ_ON):
        return ""
    irq_site = K.SITE_NAMES[int(S[lk + K.LK_IN_IRQ_SITE])]
    on_site = K.SITE_NAMES[int(S[lk + K.LK_IRQ_ON_SITE])]
    irq_ctx = _ctx_name(ld, int(S[lk + K.LK_IN_IRQ_CTX]))
    on_ctx = _ctx_name(ld, int(S[lk + K.LK_IRQ_ON_CTX]))
    irq_first = int(S[lk + K.LK_IN_IRQ_STEP]) <= int(S[lk + K.LK_IRQ_ON_STEP])
    if irq_first:
        head = "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage."
        taker = f"{on_ctx} [HC0[0]:SC0[0]:HE1:SE1] takes:"
        at, reg, reg_at = on_site, "{IN-HARDIRQ-W}", f"{irq_site} (in IRQ handler {irq_ctx})"
    else:
        head = "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage."
        taker = f"{irq_ctx} [HC1[1]:SC0[0]:HE0:SE1] takes:"
        at, reg, reg_at = irq_site, "{HARDIRQ-ON-W}", f"{on_site} (in task {on_ctx})"
    lines = ["================================", "WARNING: inconsistent lock state",
             "--------------------------------", head, taker,
             f" (kmap_lock){_usage_chars(usage)}, at: {at}", f"{reg} state was registered at:",
             f"  {reg_at}", "other info that might help us debug this:",
             " Possible unsafe locking scenario:", ""] + irq_deadlock_lines()
    return "\n".join(lines)


def _discards(S):
    ev = int(S[K.H_R_EV])
    n = min(int(S[ev + K.EV_COUNT]), int(S[ev + K.EV_CAP]))
    out = {}
    for i in range(n):
        r = ev + K.EV_HDR + i * K.EV_W
        out.setdefault(int(S[r + K.EV_STEP]), []).append(
            (int(S[r + K.EV_VA]), int(S[r + K.EV_PA]), int(S[r + K.EV_DMA_LO]),
             int(S[r + K.EV_DMA_HI])))
    return out


def _site(x):
    return K.SITE_NAMES[x] if 0 <= x < len(K.SITE_NAMES) else str(x)


def _show(key, v):
    """An op field as the scenario gave it (addresses in hex)."""
    if isinstance(v, int) and not isinstance(v, bool) and key in ("va", "dma_addr"):
        return f"{v:#x}"
    return str(v)


def op_text(op):
    """A normalised scenario op as one call: ``kmap_high(pfn=1200) -> v``.

    Parameters
    ----------
    op : dict
        An op as :func:`emu.exec.scenario.expand` returns it.

    Returns
    -------
    str
    """
    parts = []
    for key in OPS[op["op"]]:
        if key == "data" and "data" in op:
            d = op["data"]
            n = len(d) if isinstance(d, (bytes, bytearray)) else len(d) // 2
            parts.append(f"data=<{count_of(n, 'byte')}>")
        elif key == "data" and "byte" in op:
            parts.append(f"byte={op['byte']:#04x}, n={op.get('n')}")
        elif key == "sg" and "sg" in op:
            parts.append("sg=[" + ", ".join(f"({p}, {o}, {n})" for p, o, n in op["sg"]) + "]")
        elif key in op:
            parts.append(f"{key}={_show(key, op[key])}")
    return f"{op['op']}({', '.join(parts)})" + (f" -> {op['as']}" if "as" in op else "")


def program_labels(ld):
    """What each program row runs, per context: ``op 1 fill(...): read``.

    A ``fill`` is two rows (it reads the lines in, then writes them); a repeated op is one
    per repeat; a scatter-gather op one per ``sg`` entry.

    Parameters
    ----------
    ld : Loaded

    Returns
    -------
    list of list of str
        Indexed by context (0, the direct-call task, has none), then by row.
    """
    sc = ld.scenario
    out = [[]]
    for kind, who in [("task", t) for t in sc.tasks] + [("irq", q) for q in sc.irqs]:
        labels, reps = [], {}
        for _w, i, op in expand_indexed(who.ops, f"{kind} {who.name!r}"):
            k = reps[i] = reps.get(i, -1) + 1
            head = f"op {i}" + (f" (repeat {k})" if k else "") + " " + op_text(op)
            if op["op"] == "fill":
                labels += [head + ": read", head + ": write"]
            elif op["op"] in SG_OPS:            # a row per entry
                labels += [f"{head}: sg[{e}]" for e in range(len(op["sg"]))]
            else:
                labels.append(head)
        out.append(labels)
    return out


def _program_rows(S, c):
    """Whether each program row of context ``c`` calls a routine (else it runs in place)."""
    cr = _rec(S, c)
    prog = int(S[cr + K.CTX_PROG])
    return [K.PROG2ROUTINE[int(S[prog + i * K.PW + K.PO_OP])] >= 0
            for i in range(int(S[cr + K.CTX_PROG_LEN]))]


def _program_op(calls, b, seen):
    """The row a program step starts, from ``F_A0`` (``b``) at the step's start. ``F_A0``
    stays at a row whose routine has returned until the program's next step moves on, so
    the step runs row ``b + 1`` when row ``b`` calls a routine that was already started:
    one the program went on to in the step that finished the row before (that row called a
    routine too), or one an earlier step of this run of the program started (``seen``)."""
    if b >= len(calls) or not calls[b]:
        return b                                # a row that runs in place, or the end
    started = b in seen or (b > 0 and calls[b - 1])
    seen.add(b)
    return b + 1 if started else b


class _ProgramSteps:
    """Names what each step of a program frame runs, context by context."""

    def __init__(self, ld):
        S = ld.machine._S
        self.labels = program_labels(ld)
        self.calls = [[]] + [_program_rows(S, c) for c in range(1, len(ld.names))]
        self.seen = {}

    def enter(self, c):
        """An IRQ handler's program starts again from its first op."""
        self.seen.pop(c, None)

    def what(self, c, b):
        if not 0 < c < len(self.calls):
            return "program"
        row = _program_op(self.calls[c], b, self.seen.setdefault(c, set()))
        if row >= len(self.calls[c]):
            return "program: returns (every op done)"
        return self.label(c, row)

    def label(self, c, row):
        """The label of program row ``row`` of context ``c``."""
        labels = self.labels[c]
        return labels[row] if len(labels) == len(self.calls[c]) else f"program: row {row}"


def _step_text(ld, progs, ctx, a, b):
    name = K.ROUTINE_LABELS[a]
    if name == "program":
        return progs.what(ctx, b)
    if name in ("kmap", "kunmap", "kmap_high", "kunmap_high", "kmap_high_get",
                "dma_map_page", "dma_cache_maint_page"):
        return f"{name}(page {b})"
    return name


def readable_trace(ld, actions=()):
    """The last (traced) run, one line per step with its effects indented below it.

    A step's line reads ``step G  cpuC NAME  #N  WHAT``: ``G`` counts every step of the run,
    ``#N`` the steps of context NAME alone (the N of a schedule's "after step N of NAME");
    ``WHAT`` is the routine it runs, or for a step of the program itself the op it starts.
    An op a step starts after its first routine returned (the next op of the program, in the
    same step) is named below it: ``NAME: starts op 6 ...``.

    Parameters
    ----------
    ld : Loaded
        The machine after a traced run.
    actions : sequence of int
        The run's action per decision (``RunResult.actions``): a raise that was one of the
        line's own while its device's transfer was in flight (``ACT_IRQ_OWN``) is said to
        be spurious.

    Returns
    -------
    list of str
        The lines.
    """
    S = ld.machine._S
    spurious = iter([a >= K.ACT_IRQ_OWN for a in actions if a >= K.ACT_IRQ])   # per raise
    drops = _discards(S)
    progs = _ProgramSteps(ld)
    out, step, own = [], 0, {}
    last_ctx = -1
    what = None                                 # the running step's WHAT
    for kind, clk, cpu, ctx, a, b in trace_events(S):
        who = _ctx_name(ld, ctx)
        if kind == K.T_IRQ_ENTER:
            progs.enter(ctx)
        if kind == K.T_OP:
            if 0 < ctx < len(progs.calls) and (ctx != last_ctx or progs.label(ctx, a) != what):
                out.append(f"             {who}: starts {progs.label(ctx, a)}")
            continue
        if kind == K.T_STEP:
            step += 1
            own[ctx] = own.get(ctx, 0) + 1
            mark = "" if ctx == last_ctx or last_ctx < 0 else "   <-- switch"
            last_ctx = ctx
            what = _step_text(ld, progs, ctx, a, b)
            out.append(f"step {step:4d}  cpu{cpu} {who:<10s} #{own[ctx]:<4d} "
                       f"{what}  [cycle {clk}]{mark}")
            for va, pa, lo, hi in drops.get(step, []):
                where = "inside" if lo <= pa < hi else "OUTSIDE"
                out.append(f"             !! dirty line {va:#010x} (page {pa >> K.PAGE_SHIFT}, "
                           f"pa {pa:#x}) discarded by the invalidate, {where} the DMA buffer "
                           f"[{lo:#x}, {hi:#x})")
            continue
        text = {
            K.T_SET_PTE: lambda: f"set_pte slot {a} -> page {b} "
                                 f"(vaddr {ld.machine.PKMAP_BASE + (a << 12):#010x})",
            K.T_PTE_CLEAR: lambda: f"pte_clear slot {a} (was page {b})",
            K.T_FLUSH_CACHE: lambda: "flush_cache_kmaps(): flush_cache_all()",
            K.T_TLB_FLUSH: lambda: f"flush_tlb_kernel_range({a:#010x}, {b:#010x})",
            K.T_SLEEP: lambda: f"sleeps on pkmap_map_wait (kmap_high page {a})",
            K.T_WAKE: lambda: f"wakes {_ctx_name(ld, a)}",
            K.T_LOCK: lambda: f"lock(kmap_lock) in {_site(a)}",
            K.T_UNLOCK: lambda: f"unlock(kmap_lock) in {_site(a)}, held {b} cycles",
            K.T_SPIN: lambda: f"spins on kmap_lock held by {_ctx_name(ld, b)}",
            K.T_IRQ_RAISE: lambda: f"IRQ line {a} raised" + (f" (device wrote {b} bytes)"
                                                             if b else ""),
            K.T_IRQ_MERGE: lambda: f"IRQ line {a} raised again while pending" + (
                f" (device wrote {b} bytes)" if b else "") + ": merged, one interrupt",
            K.T_IRQ_ENTER: lambda: f"enters IRQ handler (line {a})",
            K.T_IRQ_EXIT: lambda: f"returns from IRQ handler (line {a})",
            K.T_LOAD: lambda: f"load  {a:#010x} -> pa {b:#x} (page {b >> K.PAGE_SHIFT})",
            K.T_STORE: lambda: f"store {a:#010x} -> pa {b:#x} (page {b >> K.PAGE_SHIFT})",
            K.T_MAINT: lambda: f"cache maintenance at {a:#010x} for pa {b:#x} "
                               f"(page {b >> K.PAGE_SHIFT})",
            K.T_MAINT_INV: lambda: f"cache maintenance at {a:#010x} for pa {b:#x} "
                                   f"(page {b >> K.PAGE_SHIFT}): the invalidate after its clean",
            K.T_DMA_START: lambda: f"starts a device transfer of {b} bytes to {a:#x}",
            K.T_PAGE_ADDRESS: lambda: (f"page_address(page {b}) = {a:#010x}, not pinned"
                                       if a else f"page_address(page {b}) = NULL: no L1 op"),
        }.get(kind)
        if kind in (K.T_IRQ_RAISE, K.T_IRQ_MERGE):   # not the running context's doing
            # (a schedule's raises are its IRQ actions, in order; a timed run has none)
            why = " (spurious: one of the line's own raises; the device's transfer stays " \
                "in flight)" if next(spurious, False) else ""
            out.append(f"             {text()}{why}, for cpu{cpu}")
        elif text is not None:
            out.append(f"             {who}: {text()}")
    return out
