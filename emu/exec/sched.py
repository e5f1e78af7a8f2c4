"""The interleaving executor: who runs next, IRQ delivery, and one whole run of a scenario.

At every scheduling point the engine lists the enabled *actions* — run a context (a task or
the IRQ handler a CPU is in), or raise an interrupt line — with the non-preemptive default
first: the context that ran last, if it can go on. Choosing anything else while it could go
on is a preemption (CHESS counts the same way). The kernel's rules decide what is enabled:

* a CPU in an IRQ handler runs only that handler; a CPU whose current task has preemption or
  IRQs disabled runs only that task; otherwise any runnable task bound to the CPU may run;
* a context spinning on ``kmap_lock`` is disabled until the lock is free; a sleeping task
  until ``wake_up``; a task in ``wait_irq`` until the handler has run;
* a line may be raised when its CPU has IRQs enabled and is not in a handler.

SMP is N CPUs sharing the one VIVT cache (the abstraction the seed patch reasons with), each
with its own TLB, IRQ mask, preempt count and clock.

Modes: ``SCHED_DFS`` follows a prefix of alternative indices then takes defaults (systematic
exploration and replay); ``SCHED_RANDOM`` picks with a seeded generator (both end once every
task has finished and no device's transfer is in flight: a completion handler that runs
after the last task is explored too); ``SCHED_TIMED`` runs
the CPU with the lowest clock, fires timed IRQs (device completions, periodic lines) and
rotates tasks every time slice (profiles); once every task has finished it goes on while a
timed line it waits for (:func:`awaited`) is still due, idle CPUs catching up with it.
"""


from .. import consts as K
from .._jit import flat, inline, njit, tiny
from ..cost.account import idle_until, set_site, uop
from ..dma.engine import device_write
from ..dma.oracle import judge_discards
from ..rng import next_random
from .core import enter_context, run_step, switch_cpu
from .cpu import (_irqs_masked, _irqs_unmasked, blocked_since, cpu_rec, log2_bucket,
                  watch_irqs, xfer_due)
from .frames import ctx_rec, push
from .trace import trace


@inline
def irq_rec(S, line):
    return S[K.H_R_IRQ] + line * K.IRQ_W


@inline
def enabled(S, c):
    """Can context ``c`` take a step now?"""
    cr = ctx_rec(S, c)
    if S[cr + K.CTX_STATE] != K.CTX_RUNNABLE or S[cr + K.CTX_SP] == 0:
        return False
    if S[cr + K.CTX_SPIN]:
        return S[S[K.H_R_LOCK] + K.LK_OWNER] < 0
    return True


@inline
def preemptible(S, cpu):
    r = cpu_rec(S, cpu)
    return S[r + K.CPU_PREEMPT] == 0 and S[r + K.CPU_IRQOFF] == 0 and S[r + K.CPU_HARDIRQ] == 0


@inline
def _add(alts, n, a):
    if n < K.MAXALT:
        alts[n] = a
        return n + 1
    return n


@flat
def alternatives(S, alts, with_irqs):
    """Fill ``alts`` with the enabled actions, default first; returns (count, last_enabled)."""
    n = 0
    last = S[K.H_LAST_CTX]
    last_on = last >= 0 and enabled(S, last)
    if last_on:
        cpu = S[ctx_rec(S, last) + K.CTX_CPU]
        if S[cpu_rec(S, cpu) + K.CPU_CUR] == last:
            n = _add(alts, n, last)
        else:
            last_on = False
    for cpu in range(S[K.H_NCPUS]):
        r = cpu_rec(S, cpu)
        cur = S[r + K.CPU_CUR]
        if S[r + K.CPU_HARDIRQ]:
            if cur != last and enabled(S, cur):
                n = _add(alts, n, cur)
            continue
        cur_holds = cur >= 0 and S[ctx_rec(S, cur) + K.CTX_STATE] == K.CTX_RUNNABLE \
            and S[ctx_rec(S, cur) + K.CTX_SP] > 0
        if cur >= 0 and cur != last and enabled(S, cur):
            n = _add(alts, n, cur)
        if cur_holds and not preemptible(S, cpu):
            continue
        for t in range(1, S[K.H_NTASKS] + 1):
            if t != cur and t != last and S[ctx_rec(S, t) + K.CTX_CPU] == cpu \
                    and enabled(S, t):
                n = _add(alts, n, t)
    if with_irqs:
        for line in range(K.MAXIRQ):
            ir = irq_rec(S, line)
            if S[ir + K.IRQ_CTX] < 0:             # no handler on the line
                continue
            own = S[ir + K.IRQ_BUDGET] > 0
            dev = S[ir + K.IRQ_XFER_LEN] > 0
            if not (own or dev):
                continue
            r = cpu_rec(S, S[ir + K.IRQ_CPU])
            if S[r + K.CPU_IRQOFF] == 0 and S[r + K.CPU_HARDIRQ] == 0:
                n = _add(alts, n, K.ACT_IRQ + line)
                if own and dev:                 # its own raise, the transfer still in flight
                    n = _add(alts, n, K.ACT_IRQ_OWN + line)
    return n, last_on


# ---------------------------------------------------------------------------------------------
# Interrupts
# ---------------------------------------------------------------------------------------------


@njit
def device_done(S, B, ir):
    """The transfer in flight on line record ``ir`` (if any) completes: its bytes land in
    RAM. Returns how many."""
    n = S[ir + K.IRQ_XFER_LEN]
    if n > 0:
        device_write(S, B, S[ir + K.IRQ_XFER_ADDR], B, S[ir + K.IRQ_XFER_SRC], n)
        S[ir + K.IRQ_XFER_LEN] = 0
        S[K.H_XFERS] -= 1
    S[ir + K.IRQ_XFER_DUE] = -1
    return n


@njit
def raise_irq(S, line, n, at):
    """The line is raised at clock ``at`` on its CPU (``n``: bytes its device wrote, for the
    trace): it is pending until delivered. A raise while it is pending is the same
    interrupt: it merges (``IRQ_MERGED``), and the latency stays the first raise's."""
    ir = irq_rec(S, line)
    switch_cpu(S, S[ir + K.IRQ_CPU])
    if S[ir + K.IRQ_PENDING]:
        # one pending bit per line (the interrupt controller's; kernel/irq/chip.c
        # handle_edge_irq keeps one IRQ_PENDING flag): a second raise adds no interrupt
        S[ir + K.IRQ_MERGED] += 1
        trace(S, K.T_IRQ_MERGE, line, n)
        return
    S[ir + K.IRQ_PENDING] = 1
    S[ir + K.IRQ_RAISED_AT] = at
    trace(S, K.T_IRQ_RAISE, line, n)


@njit
def deliver_irq(S, line):
    """Enter the line's handler on its CPU (IRQ entry masks IRQs, ARM's CPSR I bit)."""
    ir = irq_rec(S, line)
    cpu = S[ir + K.IRQ_CPU]
    h = S[ir + K.IRQ_CTX]
    r = cpu_rec(S, cpu)
    hr = ctx_rec(S, h)
    S[ir + K.IRQ_PENDING] = 0
    S[hr + K.CTX_STATE] = K.CTX_RUNNABLE
    S[hr + K.CTX_SP] = 0
    S[hr + K.CTX_SPIN] = 0
    S[r + K.CPU_INTERRUPTED] = S[r + K.CPU_CUR]
    S[r + K.CPU_CUR] = h
    S[r + K.CPU_HARDIRQ] = 1
    enter_context(S, h)
    # raised by a device on another CPU's clock (timed runs): an idle CPU behind it catches up
    idle_until(S, S[ir + K.IRQ_RAISED_AT])
    push(S, h, K.R_PROGRAM, 0, 0, 0, 0)
    lat = blocked_since(S, r, S[ir + K.IRQ_RAISED_AT])
    set_site(S, K.SITE_IRQ_ENTRY)
    uop(S, K.UOP_IRQ_ENTRY, 1)
    _irqs_masked(S, r)
    trace(S, K.T_IRQ_ENTER, line, lat)
    if S[K.H_PROFILE] == 0:
        return
    p = S[K.H_R_PROF]
    S[p + K.PROF_IRQLAT_COUNT] += 1
    S[p + K.PROF_IRQLAT_TOTAL] += lat
    if lat > S[p + K.PROF_IRQLAT_MAX]:
        S[p + K.PROF_IRQLAT_MAX] = lat
    if S[p + K.PROF_IRQLAT_COUNT] == 1 or lat < S[p + K.PROF_IRQLAT_MIN]:
        S[p + K.PROF_IRQLAT_MIN] = lat
    S[p + K.PROF_H_IRQLAT + log2_bucket(lat)] += 1


@njit
def irq_exit(S, h):
    """The handler returned: unmask, resume the interrupted context, wake its waiters."""
    hr = ctx_rec(S, h)
    line = S[hr + K.CTX_IRQ_LINE]
    cpu = S[hr + K.CTX_CPU]
    r = cpu_rec(S, cpu)
    set_site(S, K.SITE_IRQ_ENTRY)
    uop(S, K.UOP_IRQ_EXIT, 1)
    _irqs_unmasked(S, r)
    S[r + K.CPU_HARDIRQ] = 0
    S[r + K.CPU_CUR] = S[r + K.CPU_INTERRUPTED]
    S[r + K.CPU_INTERRUPTED] = -1
    S[hr + K.CTX_STATE] = K.CTX_STATE_FREE
    ir = irq_rec(S, line)
    S[ir + K.IRQ_DONE] += 1
    trace(S, K.T_IRQ_EXIT, line, 0)
    for t in range(1, S[K.H_NTASKS] + 1):
        tr = ctx_rec(S, t)
        if (S[tr + K.CTX_STATE] == K.CTX_WAIT_IRQ and S[tr + K.CTX_WAIT_LINE] == line
                and S[ir + K.IRQ_DONE] >= S[tr + K.CTX_WAIT_COUNT]):
            S[tr + K.CTX_STATE] = K.CTX_RUNNABLE
            S[tr + K.CTX_READY_AT] = S[K.H_NOW]
            trace(S, K.T_WAKE, t, line)
    S[K.H_LAST_CTX] = S[r + K.CPU_CUR]


@inline
def cpu_clock(S, cpu):
    """CPU ``cpu``'s clock (``H_NOW`` if it is the running CPU)."""
    return S[K.H_NOW] if cpu == S[K.H_CUR_CPU] else S[cpu_rec(S, cpu) + K.CPU_CLOCK]


@inline
def _next_firing(S, ir, now):
    """The line's next timed firing due by now: ``(clock, from its device)``, clock -1 if
    none; the device's transfer first at the same clock. ``now``: the clock of the line's
    CPU, which the line's own firings are due by."""
    # a transfer is due by the clock it was set in, its starting CPU's, or the line CPU's if
    # later: an idle CPU's clock lags (it moves at its next step), the device does not wait
    xnow = max(now, cpu_clock(S, S[ir + K.IRQ_XFER_CPU]))
    x = xfer_due(S, ir)
    d = S[ir + K.IRQ_DUE]
    if x > xnow:
        x = -1
    if d > now:
        d = -1
    if x >= 0 and (d < 0 or x <= d):
        return x, True
    return d, False


@njit
def _rearm(S, ir):
    """The line's own firing at ``IRQ_DUE`` came: a periodic line with firings left is due
    again a period later, else it is disarmed."""
    if S[ir + K.IRQ_PERIOD] > 0 and S[ir + K.IRQ_BUDGET] > 1:
        S[ir + K.IRQ_DUE] += S[ir + K.IRQ_PERIOD]
    else:
        S[ir + K.IRQ_DUE] = -1
    S[ir + K.IRQ_BUDGET] -= 1


@inline
def _pending_until(S, cr, t):
    """The clock until which a raise at ``t`` on CPU record ``cr`` stays pending, as the
    CPU sees it: the end of the irqs-off section that covers ``t`` (no end yet if that
    section is still open), else ``t`` itself (taken at once)."""
    if S[cr + K.CPU_IRQOFF] and S[cr + K.CPU_IRQOFF_AT] <= t:
        return K.NEVER
    return t + blocked_since(S, cr, t)


@njit
def _fire_line(S, B, line, now):
    """Timed mode: the firings of ``line`` due by clock ``now`` of its CPU (its device's
    transfer: see :func:`_next_firing`), in clock order:
    a device's transfer lands, its own firings re-arm, and each raises the line. A firing
    while the line is still pending merges into it when the CPU kept IRQs masked from the
    pending raise to that firing (:func:`_pending_until`: a section that ended before the
    scheduling point is known when profiling, from the watch's ring); else the pending raise
    was taken first, as the CPU would have, and this firing waits for its delivery."""
    ir = irq_rec(S, line)
    while True:
        t, dev = _next_firing(S, ir, now)
        if t < 0:
            return
        switch_cpu(S, S[ir + K.IRQ_CPU])
        if S[ir + K.IRQ_PENDING] and t >= _pending_until(S, S[K.H_CPUREC],
                                                          S[ir + K.IRQ_RAISED_AT]):
            return
        n = 0
        if dev:
            n = device_done(S, B, ir)
        else:
            _rearm(S, ir)
        raise_irq(S, line, n, t)


@njit
def fire_timed(S, B):
    """Timed mode: raise every line whose due clock has passed on its CPU (:func:`_fire_line`);
    deliver pending lines to CPUs that can take them. Profiling, each CPU then watches
    the next raise clock of its lines (``watch_irqs``): the irqs-off section that covers it,
    however many sections the next step closes, goes into the CPU's ring for the IRQ's
    latency (``blocked_since``)."""
    for line in range(K.MAXIRQ):
        ir = irq_rec(S, line)
        if S[ir + K.IRQ_CTX] < 0:
            continue
        _fire_line(S, B, line, cpu_clock(S, S[ir + K.IRQ_CPU]))
    for line in range(K.MAXIRQ):
        ir = irq_rec(S, line)
        if S[ir + K.IRQ_PENDING] and S[ir + K.IRQ_CTX] >= 0:
            r = cpu_rec(S, S[ir + K.IRQ_CPU])
            if S[r + K.CPU_IRQOFF] == 0 and S[r + K.CPU_HARDIRQ] == 0:
                deliver_irq(S, line)
    if S[K.H_PROFILE] == 0:
        return
    for cpu in range(S[K.H_NCPUS]):
        r = cpu_rec(S, cpu)
        # a raise clock can still be covered by the open section, or by one to come
        since = S[r + K.CPU_IRQOFF_AT] if S[r + K.CPU_IRQOFF] else cpu_clock(S, cpu)
        watch_irqs(S, r, since)


@inline
def _own_awaited(S, ir):
    """Is the line's own firing armed with a bounded number left: a one-shot (``first``
    without ``period``), or a periodic line with at most ``DRAIN_MAX_FIRINGS`` left (more:
    a tick that runs alongside the tasks)?"""
    return S[ir + K.IRQ_DUE] >= 0 and (S[ir + K.IRQ_PERIOD] == 0
                                       or S[ir + K.IRQ_BUDGET] <= K.DRAIN_MAX_FIRINGS)


@inline
def awaited(S, line):
    """Timed mode, once every task has finished: does the run still wait for ``line``? For
    one raised and not yet delivered, one whose device's transfer is in flight, and one
    whose own firing is armed with a bounded number left (:func:`_own_awaited`)."""
    ir = irq_rec(S, line)
    if S[ir + K.IRQ_CTX] < 0:
        return False
    return S[ir + K.IRQ_PENDING] != 0 or xfer_due(S, ir) >= 0 or _own_awaited(S, ir)


@njit
def any_awaited(S):
    for line in range(K.MAXIRQ):
        if awaited(S, line):
            return True
    return False


@tiny
def any_in_flight(S):
    """DFS and random runs, once every task has finished: is a device's transfer still in
    flight on a line with a handler? The run goes on until the device completes (its raise
    is then the one alternative, or one of the line's own spurious ones)."""
    return S[K.H_XFERS] > 0                     # (device_start needs a line with a handler)


@njit
def next_due(S, drain):
    """Earliest due clock of an armed timed line, its own firing or its device's transfer,
    or -1. ``drain`` (every task has finished): only the firings the run waits for, a
    transfer in flight or an :func:`_own_awaited` firing (a tick's, or that of a line only
    pending, would keep its masked CPU idling through them all)."""
    best = -1
    for line in range(K.MAXIRQ):
        ir = irq_rec(S, line)
        if S[ir + K.IRQ_CTX] < 0:
            continue
        t = _line_due(S, ir, not drain or _own_awaited(S, ir))
        if t >= 0 and (best < 0 or t < best):
            best = t
    return best


@inline
def _line_due(S, ir, own):
    """The earlier of line record ``ir``'s device transfer in flight and (with ``own``) its
    own next firing, or -1 if neither."""
    d = S[ir + K.IRQ_DUE] if own else -1
    x = xfer_due(S, ir)
    if x >= 0 and (d < 0 or x < d):
        return x
    return d


# ---------------------------------------------------------------------------------------------
# Running a step of a chosen context
# ---------------------------------------------------------------------------------------------


@njit
def _woken(S, c, cr):
    """A woken context runs no earlier than its waker's clock at the wake-up (another CPU's
    time, on SMP): its CPU idles until then."""
    enter_context(S, c)
    idle_until(S, S[cr + K.CTX_READY_AT])
    S[cr + K.CTX_READY_AT] = 0


@njit
def _schedule_raise(S, B, a):
    """A schedule raises a line (action ``a``, see ``K.ACT_IRQ``) and its handler is
    entered: the device's completion if a transfer is in flight on it (unless the action
    is one of the line's own raises), else one of its own raises (its ``count``)."""
    line = (a - K.ACT_IRQ) % K.MAXIRQ
    ir = irq_rec(S, line)
    switch_cpu(S, S[ir + K.IRQ_CPU])
    n = 0
    if a < K.ACT_IRQ_OWN and S[ir + K.IRQ_XFER_LEN] > 0:
        n = device_done(S, B, ir)
    else:
        S[ir + K.IRQ_BUDGET] -= 1
    raise_irq(S, line, n, S[K.H_NOW])
    deliver_irq(S, line)
    S[K.H_LAST_CTX] = S[ir + K.IRQ_CTX]


@flat
def run_action(S, B, a, tracing):
    """Perform action ``a``; returns the step's status (``ST_*``), or -1 for an IRQ raise.
    ``tracing``: the trace is on (read once a run: the step events need no test of S)."""
    if a >= K.ACT_IRQ:
        _schedule_raise(S, B, a)
        return -1
    c = a
    cr = ctx_rec(S, c)
    cpu = S[cr + K.CTX_CPU]
    r = cpu_rec(S, cpu)
    if S[cr + K.CTX_READY_AT] != 0:
        _woken(S, c, cr)
    if S[r + K.CPU_CUR] != c:
        enter_context(S, c)
        set_site(S, K.SITE_SCHEDULE)
        if S[r + K.CPU_CUR] >= 0:               # a CPU's first task was running already
            uop(S, K.UOP_CONTEXT_SWITCH, 1)
        S[r + K.CPU_CUR] = c
        S[cr + K.CTX_SLICE_AT] = S[K.H_NOW]
        trace(S, K.T_SWITCH, c, 0)
    if tracing:
        # the step's event carries its own context and CPU: enter it now (run_step does the
        # same first; the CPU may still be in another context, e.g. after an IRQ returned)
        enter_context(S, c)
        f = cr + K.CTX_FRAMES + (S[cr + K.CTX_SP] - 1) * K.FW
        trace(S, K.T_STEP, S[f + K.F_ROUTINE], S[f + K.F_A0])
    st = run_step(S, B, c)
    S[K.H_LAST_CTX] = c
    S[cr + K.CTX_SPIN] = 1 if st == K.ST_SPIN else 0
    if st == K.ST_DONE:
        S[cr + K.CTX_SP] = 0
        if S[cr + K.CTX_KIND] == K.KIND_IRQ:
            irq_exit(S, c)
        else:
            S[cr + K.CTX_STATE] = K.CTX_DONE
    if tracing:
        trace(S, K.T_STEP_END, st, 0)
    if S[S[K.H_R_EV] + K.EV_COUNT] != S[K.H_EV_SEEN]:
        judge_discards(S, B)
    return st


@njit
def irq_deadlock(S, c):
    """Is ``c`` a handler spinning on a lock held by a context its own CPU interrupted?"""
    cr = ctx_rec(S, c)
    if S[cr + K.CTX_KIND] != K.KIND_IRQ:
        return False
    owner = S[S[K.H_R_LOCK] + K.LK_OWNER]
    r = cpu_rec(S, S[cr + K.CTX_CPU])
    return owner >= 0 and owner == S[r + K.CPU_INTERRUPTED]


@njit
def unfinished(S):
    for t in range(1, S[K.H_NTASKS] + 1):
        st = S[ctx_rec(S, t) + K.CTX_STATE]
        if st != K.CTX_DONE:
            return True
    for cpu in range(S[K.H_NCPUS]):
        if S[cpu_rec(S, cpu) + K.CPU_HARDIRQ]:
            return True
    return False


@inline
def _rand(S):
    return next_random(S, K.H_SCHED_RNG) >> 11


@njit
def _timed_pick(S, alts, n):
    """Timed mode: the enabled context on the CPU with the lowest clock; a task whose time
    slice is over yields to the next runnable task of its CPU at a preemptible point."""
    best = -1
    best_clock = 0
    for j in range(n):
        a = alts[j]
        if a >= K.ACT_IRQ:
            continue
        clk = max(cpu_clock(S, S[ctx_rec(S, a) + K.CTX_CPU]),
                  S[ctx_rec(S, a) + K.CTX_READY_AT])           # a woken task: once woken
        if best < 0 or clk < best_clock:
            best = j
            best_clock = clk
    if best < 0:
        return -1
    c = alts[best]
    cpu = S[ctx_rec(S, c) + K.CTX_CPU]
    cur = S[cpu_rec(S, cpu) + K.CPU_CUR]
    if c == cur and S[K.H_TIMESLICE] > 0 and preemptible(S, cpu) \
            and best_clock - S[ctx_rec(S, c) + K.CTX_SLICE_AT] >= S[K.H_TIMESLICE]:
        nxt = -1                                # round robin: the next task id after cur
        gap = 0
        for j in range(n):
            a = alts[j]
            if a < K.ACT_IRQ and a != c and S[ctx_rec(S, a) + K.CTX_CPU] == cpu \
                    and S[ctx_rec(S, a) + K.CTX_KIND] == K.KIND_TASK:
                g = a - c if a > c else a - c + S[K.H_NCTX]     # ids wrap around
                if nxt < 0 or g < gap:
                    nxt, gap = j, g
        S[ctx_rec(S, c) + K.CTX_SLICE_AT] = best_clock
        if nxt >= 0:
            return nxt
    return best


@njit
def _idle_catch_up(S, alts, n):
    """Timed mode: a CPU with nothing to run keeps its clock until it next steps, but its
    lines' own firings fall due in everyone's time. Where the earliest of them is due before
    the clock the next step runs at (:func:`_timed_pick`'s), that CPU idles until it, so
    that the firing comes first and its handler runs in clock order (it used to wait until
    every CPU was idle). Returns whether a clock moved. A device's transfer in flight on
    such a line counts too: :func:`_next_firing` has it due by its starting CPU's clock, but
    that CPU may be idle as well (it waits for the completion), its clock lagging, and the
    transfer would stay in flight while the others' clocks pass its due clock (a read of its
    buffer then a ``read-during-dma`` finding)."""
    busy = 0                                    # CPUs with a context to run (bit mask)
    tmin = -1
    for j in range(n):
        a = alts[j]
        if a >= K.ACT_IRQ:
            continue
        cr = ctx_rec(S, a)
        busy |= 1 << S[cr + K.CTX_CPU]
        clk = max(cpu_clock(S, S[cr + K.CTX_CPU]), S[cr + K.CTX_READY_AT])
        if tmin < 0 or clk < tmin:
            tmin = clk
    due = -1
    cpu = -1
    for line in range(K.MAXIRQ):
        ir = irq_rec(S, line)
        c = S[ir + K.IRQ_CPU]
        d = _line_due(S, ir, True)
        if S[ir + K.IRQ_CTX] < 0 or (busy >> c) & 1 or d < 0 or d > tmin \
                or cpu_clock(S, c) >= d:
            continue
        if due < 0 or d < due:
            due, cpu = d, c
    if due < 0:
        return False
    switch_cpu(S, cpu)
    idle_until(S, due)
    return True


@njit
def _idle_until(S, due):
    """No CPU can run: every CPU's clock catches up with the next timed interrupt. Returns
    whether a clock moved (if none did, the line is due and still not delivered: its CPU
    has IRQs masked, and waiting changes nothing)."""
    moved = False
    for cpu in range(S[K.H_NCPUS]):
        switch_cpu(S, cpu)
        if S[K.H_NOW] < due:
            idle_until(S, due)
            moved = True
    return moved


@tiny
def _switch(S, p_switch):
    """A random schedule's draw at a preemption point: switch (``p_switch`` per million)?"""
    return _rand(S) % K.P_SWITCH_SCALE < p_switch


@njit
def _quiet_draws(S, limit, p_switch):
    """How many of the next ``limit`` draws of a random schedule keep the running context
    (no switch at a preemption point); the generator is left as it was."""
    x0 = S[K.H_SCHED_RNG]
    k = 0
    while k < limit and not _switch(S, p_switch):
        k += 1
    S[K.H_SCHED_RNG] = x0
    return k


@tiny
def _log(log_nalt, log_choice, log_pre, log_act, log_arow, d, n, j, last_on, a, row):
    """Decision ``d``: ``n`` alternatives (in row ``row`` of the table), ``j`` chosen, action
    ``a``; a non-default choice there is a preemption if the last context could go on."""
    log_nalt[d] = n
    log_choice[d] = j
    log_pre[d] = 1 if last_on else 0
    log_act[d] = a
    log_arow[d] = row


@njit
def _next_choice(prefix, nprefix, d):
    """The first index ``>= d`` of ``prefix`` with a non-default choice (``nprefix`` if none)."""
    while d < nprefix and prefix[d] == 0:
        d += 1
    return d


@njit
def run(S, B, mode, prefix, nprefix, p_switch, max_steps, d0, pre0, log_nalt, log_choice,
        log_pre, log_act, log_arow, log_alts):
    """One run of the loaded scenario from the current state.

    Returns ``(outcome, decisions, preemptions)``. The decision log records, per scheduling
    point, the number of alternatives, the index chosen, whether a non-default choice there
    is a preemption, the action taken, and the row of ``log_alts`` that holds (up to
    ``MAXALT``) the alternatives themselves: row ``d`` if they were listed at decision ``d``,
    else the row the previous decision used (the default context's step only went on with a
    line loop, ``H_SAME_SET``, so they cannot have changed).
    Where a DFS-mode schedule takes the default at such decisions, the run does not come back
    here for each: ``H_BATCH`` lets ``run_step`` go on through that many of them as steps of
    their own (each counted as ``run_step`` counts one; it stops early at a discard event the
    oracle must judge), and they are logged afterwards, all alike. In random mode the draws
    are looked at ahead (``BATCH_DRAWS`` at a time) and made once those decisions are taken.
    Not with the trace on (its step events) nor in timed mode (a clock decides at each).
    ``d0``, ``pre0``: the run goes on from a state saved at decision ``d0`` with ``pre0``
    preemptions before it (the log holds decisions ``0 .. d0-1``); 0, 0 from the start. A run
    stops at the log's end (``RUN_LOG_FULL``), before taking that decision (a timed run, which
    no one replays, goes on: its log keeps the first ``cap - 1`` decisions and the latest one
    in its last slot, and ``decisions`` counts them all), and at a prefix
    choice its decision does not have (``K.RUN_BAD_CHOICE``, ``d`` that decision; the log
    holds its alternative count).
    ``nprefix`` must be at most ``len(prefix)``.
    """
    cap = len(log_nalt)
    d = d0
    pre = pre0
    steps = d0                                  # one step per decision
    timed = mode == K.SCHED_TIMED
    same = False
    row = 0
    n = 0
    last_on = False
    tracing = S[S[K.H_R_TRACE] + K.TR_ON] != 0
    S[K.H_SAME_SET] = 0
    nz = -1                                     # the next prefix index with a non-default choice
    while True:
        if timed:
            fire_timed(S, B)
        if not same and not unfinished(S) and not (any_awaited(S) if timed
                                                   else any_in_flight(S)):
            return K.RUN_DONE, d, pre
        slot = d
        if d >= cap:
            if not timed:
                return K.RUN_LOG_FULL, d, pre
            slot = cap - 1                      # (timed: no batching, so no run of decisions)
        if not same:                            # list them (else: the last row holds them)
            row = slot
            n, last_on = alternatives(S, log_alts[slot * K.MAXALT:(slot + 1) * K.MAXALT],
                                      not timed)
        alts = log_alts[row * K.MAXALT:(row + 1) * K.MAXALT]
        if n == 0:
            if timed:
                # idle CPUs catch up with the next timed line: while tasks sleep, or once
                # they have finished, with the lines the run still waits for (awaited())
                done = not unfinished(S)
                due = next_due(S, done)
                # waiting for a line once every task has finished, the other lines' firings
                # before it (a tick's) still come at their clocks on the way: jumping over
                # them left them to fire one after another behind the clock, the awaited
                # device's completion queued behind them
                # (not done: False, typed as the compiled signature's bool, not a literal)
                if due >= 0 and done and _idle_until(S, min(due, next_due(S, not done))):
                    continue
                if due >= 0 and _idle_until(S, due):
                    continue
                if done:                        # the lines left are reported as pending
                    return K.RUN_DONE, d, pre
            return K.RUN_DEADLOCK, d, pre
        if mode == K.SCHED_DFS:
            j = 0
            if d < nprefix:
                j = prefix[d]
                if j < 0 or j >= n:             # no such alternative: the caller reports it
                    log_nalt[d] = n
                    log_choice[d] = j
                    return K.RUN_BAD_CHOICE, d, pre
        elif mode == K.SCHED_RANDOM:
            j = 0
            if n > 1 and (not last_on or _switch(S, p_switch)):
                j = (1 + _rand(S) % (n - 1)) if last_on else _rand(S) % n
        else:
            if _idle_catch_up(S, alts, n):
                continue
            j = _timed_pick(S, alts, n)
            if j < 0:
                return K.RUN_DEADLOCK, d, pre
        a = alts[j]
        cost = 1 if (last_on and j != 0) else 0
        pre += cost
        _log(log_nalt, log_choice, log_pre, log_act, log_arow, slot, n, j, last_on, a, row)
        d += 1
        # the non-preemptive default: if this step only goes on with a line loop, the next
        # decisions have these alternatives, and where the schedule also takes the default
        # there the step goes on through them (H_BATCH)
        default = last_on and j == 0 and not timed
        k = 0
        if default and not tracing:
            lim = min(cap, d + max_steps - steps - 1) - d
            if mode == K.SCHED_DFS:
                if nz < d:
                    nz = _next_choice(prefix, nprefix, d)
                k = min(nz - d, lim) if nz < nprefix else lim
            elif n == 1:
                k = lim                         # no draw: the one context goes on
            else:
                k = _quiet_draws(S, min(lim, K.BATCH_DRAWS), p_switch)
        S[K.H_BATCH] = max(k, 0)                # (lim < 0: the step limit is reached)
        st = run_action(S, B, a, tracing)
        k = S[K.H_BATCHED]
        S[K.H_BATCH] = 0
        S[K.H_BATCHED] = 0
        for i in range(d, d + k):               # decisions run_step took: the default each
            _log(log_nalt, log_choice, log_pre, log_act, log_arow, i, n, 0, True, a, row)
            if mode == K.SCHED_RANDOM and n > 1:
                _rand(S)                        # the draw that decision made
        d += k
        steps += k
        same = default and S[K.H_SAME_SET] != 0   # (and the context is unfinished)
        S[K.H_SAME_SET] = 0
        if st == K.ST_ERROR:
            S[K.H_FAIL_CTX] = a
            return K.RUN_ERROR, d, pre
        if st == K.ST_SPIN and irq_deadlock(S, a):
            S[K.H_FAIL_CTX] = a
            return K.RUN_IRQ_DEADLOCK, d, pre
        steps += 1
        if steps >= max_steps:
            return K.RUN_LIMIT, d, pre
