"""Export a profile run's timeline in Chrome's trace event format (ui.perfetto.dev opens it).

One process per variant (irq, plain); per CPU a track of IRQ handlers, of irqs-off sections
and of kmap_lock hold times, and per task a track of its routine calls. Times are in µs at
the core's clock.
"""

import json

from .. import consts as K
from ..exec.trace import trace_counts, trace_events
from .profile import core_mhz


def chrome_events(ld, pid, label):
    """Chrome trace events of a Loaded machine's last (traced) run.

    Parameters
    ----------
    ld : emu.exec.loaded.Loaded
        The machine; its last run must have been traced.
    pid : int
        The process id the events go under (one per variant).
    label : str
        The process's name in the viewer.

    Returns
    -------
    list of dict
        Trace Event Format records, timestamps in microseconds of the core's clock.
    """
    S = ld.machine._S
    mhz = core_mhz(ld)
    us = (lambda c: c / mhz)
    out = [{"name": "process_name", "ph": "M", "pid": pid, "args": {"name": label}}]
    names = {}

    def tid(name):
        if name not in names:
            names[name] = len(names) + 1
            out.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": names[name],
                        "args": {"name": name}})
        return names[name]

    def span(track, name, t0, t1, args=None):
        out.append({"name": name, "ph": "X", "pid": pid, "tid": tid(track), "ts": us(t0),
                    "dur": max(us(t1 - t0), 0.001), "args": args or {}})

    calls, lock_at, off_at, irq_at = {}, {}, {}, {}
    for kind, clk, cpu, ctx, a, b in trace_events(S):
        who = ld.names[ctx] if 0 <= ctx < len(ld.names) else f"ctx{ctx}"
        if kind == K.T_CALL:
            calls.setdefault(ctx, []).append((a, clk))
        elif kind == K.T_RET and calls.get(ctx):
            r, t0 = calls[ctx].pop()
            if K.ROUTINE_LABELS[r] != "program":
                span(f"cpu{cpu} {who}", K.ROUTINE_LABELS[r], t0, clk, {"cycles": b})
        elif kind == K.T_LOCK:
            lock_at[cpu] = (clk, K.SITE_NAMES[a], who)
        elif kind == K.T_UNLOCK and cpu in lock_at:
            t0, site, holder = lock_at.pop(cpu)
            span(f"cpu{cpu} kmap_lock held", f"kmap_lock ({site})", t0, clk, {"by": holder})
        elif kind == K.T_IRQS_OFF:
            off_at[cpu] = (clk, K.SITE_NAMES[a])
        elif kind == K.T_IRQS_ON and cpu in off_at:
            t0, site = off_at.pop(cpu)
            span(f"cpu{cpu} irqs off", f"irqs off ({site} .. {K.SITE_NAMES[a]})", t0, clk,
                 {"cycles": clk - t0})
        elif kind == K.T_IRQ_ENTER:
            irq_at[cpu] = (clk, a, b)
        elif kind == K.T_IRQ_EXIT and cpu in irq_at:
            t0, line, lat = irq_at.pop(cpu)
            span(f"cpu{cpu} IRQ", f"IRQ line {line}", t0, clk, {"latency_cycles": lat})
        elif kind == K.T_IRQ_RAISE:
            # the event's CPU is the line's own; its context is whatever ran last, which on
            # SMP can be another CPU's task, so the raise goes on the CPU's IRQ track
            out.append({"name": K.TRACE_NAMES[kind], "ph": "i", "s": "t", "pid": pid,
                        "tid": tid(f"cpu{cpu} IRQ"), "ts": us(clk), "args": {"line": a}})
        elif kind in (K.T_FLUSH_CACHE, K.T_TLB_FLUSH, K.T_SLEEP, K.T_WAKE):
            out.append({"name": K.TRACE_NAMES[kind], "ph": "i", "s": "t", "pid": pid,
                        "tid": tid(f"cpu{cpu} {who}"), "ts": us(clk)})
    return out


def write_chrome_trace(path, loaded, doc):
    """Write the timelines of ``loaded`` ({"irq": Loaded, "plain": Loaded}) to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file to write.
    loaded : dict
        ``{"irq": Loaded, "plain": Loaded}`` whose last runs were traced.
    doc : dict
        The profile document (its ``cpu`` and ``workload`` label the timelines).

    Returns
    -------
    dict
        ``{variant: (kept, recorded)}`` for the variants whose trace buffer filled (their
        timelines end early; ``otherData.truncated`` in the file says the same), else empty.
    """
    ev = []
    truncated = {}
    for pid, (key, ld) in enumerate(loaded.items(), 1):
        ev += chrome_events(ld, pid, f"{doc['cpu']} {doc['workload']}: {key} kmap_lock")
        kept, recorded = trace_counts(ld.machine._S)
        if kept < recorded:
            truncated[key] = (kept, recorded)
    other = {"emu": "kmap_lock profile", "cpu": doc["cpu"], "workload": doc["workload"]}
    if truncated:
        other["truncated"] = {k: {"kept_events": a, "recorded_events": b}
                              for k, (a, b) in truncated.items()}
    with open(path, "w") as f:
        json.dump({"traceEvents": ev, "displayTimeUnit": "ns", "otherData": other}, f)
    return truncated
