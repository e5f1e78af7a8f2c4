"""The kmap_lock profiler: what ARCH_NEEDS_KMAP_HIGH_GET's IRQ-disabling locks cost, per core.

Each workload runs twice on the same core preset, deterministic for a seed: ``irq`` (ARM 2.6.30:
``lock_kmap`` = ``spin_lock_irq``, ``lock_kmap_any`` = ``spin_lock_irqsave``, DMA pins with
``kmap_high_get``) and ``plain`` (the same kernel without ARCH_NEEDS_KMAP_HIGH_GET: plain
``spin_lock``, DMA maintenance through ``page_address``). Reported per variant: cycles per
routine (in all, and in task and IRQ-handler context apart), lock statistics in
/proc/lock_stat's shape, irqs-off sections in the ftrace irqsoff tracer's shape, and the IRQ
latency distribution, in cycles and in µs at the core's clock.

Workloads:

``fastpath``  kmap_high + kunmap_high of a page that stays mapped (the kmap_lock fast path)
``churn``     kmap/kunmap over a working set of 4 x LAST_PKMAP pages: wraps, flushes
``dma-irq``   the churn, plus a periodic IRQ whose handler maps a 4 KiB buffer for DMA
FILE.toml     any user scenario (its tasks and IRQs, timed); its own ``[machine]`` ``cpu``,
              ``seed`` and ``ncpus`` apply unless given, given cost overrides apply over its
              own ``costs`` key by key (:func:`settings`)
"""

import os

import numpy as np

from .. import consts as K
from .._args import check_int, check_real
from ..exec.loaded import merged_irqs
from ..exec.report import pending_irq_text
from ..exec.scenario import Scenario
from ..errors import EmuError
from .tables import CLOCKS, CORES, IRQ_ENTRY_WORST, clocks, validate_overrides

WORKLOADS = ("fastpath", "churn", "dma-irq")
FAST_PAGE = 300
DMA_PAGE = 301
WSET_BASE = 400
LAST_PKMAP = 512
MAX_STEPS = 20_000_000
TRACE_EVENTS = 1 << 21      # emu profile --trace: room for this many events per variant
MIN_SCALE = 0.0005          # scale: a built-in workload's 2,000 operations per task times it
MAX_SCALE = 100
PAIR = ("kmap_high", "kunmap_high")     # the routines pair_cycles adds (tasks' calls)
UNPIN = "kunmap_high_unpin"             # the record of kunmap_high releasing a DMA pin
#: What a core's report leaves out, said under it.
NOT_MODELLED = {
    "feroceon": "Not modelled: Kirkwood's L2 (outer cache). Its range ops, which 2.6.30 runs "
                "for every DMA chunk (spec §3.2b; about 10 + 6 cycles per line, up to 1 KiB at "
                "a time with IRQs off, arm-cycle-costs §2.2), are missing from the DMA figures; "
                "the kmap_lock figures do not involve it.",
}


def _machine(cpu, kmap_high_get, ncpus, seed, costs):
    return {"cpu": cpu, "lowmem_mb": 1, "highmem_mb": 12, "last_pkmap": LAST_PKMAP,
            "kmap_high_get": kmap_high_get, "ncpus": ncpus, "seed": seed,
            "dma_pinning": "kmap_high_get" if kmap_high_get else "page_address",
            "costs": dict(costs or {})}


def _churn_ops(rng, n, window=16):
    """kmap a random page of the working set, kunmap the one mapped ``window`` ops ago."""
    live, ops = [], []
    for _ in range(n):
        p = WSET_BASE + int(rng.integers(0, 4 * LAST_PKMAP))
        ops.append({"op": "kmap", "pfn": p})
        live.append(p)
        if len(live) > window:
            ops.append({"op": "kunmap", "pfn": live.pop(0)})
    ops += [{"op": "kunmap", "pfn": p} for p in live]
    return ops


def _check_workload(name):
    if name in WORKLOADS or isinstance(name, (str, os.PathLike)) and os.path.isfile(name):
        return
    raise ValueError(f"workload_name={name!r} (emu profile --workload): accepted values are "
                     f"{', '.join(WORKLOADS)} or the path of a scenario TOML file")


def _own_machine(name):
    """The ``[machine]`` table of scenario file ``name`` and the prefix naming it in errors;
    nothing for a built-in workload."""
    _check_workload(name)
    if name in WORKLOADS:
        return {}, ""
    return Scenario.from_toml(name).machine, f"{os.fspath(name)}: [machine] "


def _check_core(name, cpu):
    """``cpu`` if it is a core preset, else ValueError naming ``name`` and the presets."""
    if not isinstance(cpu, str) or cpu not in CLOCKS:
        raise ValueError(f"{name}={cpu!r}: accepted values are {', '.join(CORES)}")
    return cpu


def settings(workload_name, cpu=None, seed=None, ncpus=None, costs=None):
    """The core, seed, CPU count and cost overrides a workload runs with.

    Parameters
    ----------
    workload_name : str or os.PathLike
        A built-in workload (:data:`WORKLOADS`) or a scenario TOML file.
    cpu, seed, ncpus : optional
        Given: used. None: the scenario file's own ``[machine]`` value, else ``arm926``
        (``K.DEFAULT_CPU``), seed 0, 1 CPU.
    costs : Mapping or None
        Cost overrides, applied key by key over the file's own ``[machine] costs``.

    Returns
    -------
    dict
        ``cpu``, ``seed``, ``ncpus``, ``costs`` (a dict), checked: ``ValueError`` names the
        argument (or the file's key) and what is accepted.
    """
    own, where = _own_machine(workload_name)

    def pick(key, given, default):
        """(the name an error gives it, value): given, else the file's own, else default."""
        return (key, given) if given is not None else (where + key, own.get(key, default))

    return {"cpu": _check_core(*pick("cpu", cpu, K.DEFAULT_CPU)),
            "seed": check_int(*pick("seed", seed, 0), 0),
            "ncpus": check_int(*pick("ncpus", ncpus, 1), 1, K.MAXCPUS),
            "costs": validate_overrides(own.get("costs"), where=f"{where}costs")
            | validate_overrides(costs)}


def workload(name, cpu=None, kmap_high_get=True, seed=None, ncpus=None, costs=None,
             scale=1.0):
    """The :class:`Scenario` of a named workload (or a TOML file) for one variant.

    Parameters
    ----------
    name : str or os.PathLike
        ``"fastpath"``, ``"churn"``, ``"dma-irq"`` or a scenario TOML file.
    cpu, seed, ncpus, costs : optional
        As :func:`settings` resolves them: a file's own ``[machine]`` values unless given,
        given costs over its own key by key.
    kmap_high_get : bool
        The irq variant (``ARCH_NEEDS_KMAP_HIGH_GET``, irq-disabling kmap_lock) if True, the
        plain ``spin_lock`` one if False.
    scale : float
        Multiplies the built-in workloads' operation counts.

    Returns
    -------
    Scenario
    """
    s = settings(name, cpu, seed, ncpus, costs)
    cpu, seed, ncpus, costs = s["cpu"], s["seed"], s["ncpus"], s["costs"]
    mc = _machine(cpu, kmap_high_get, ncpus, seed, costs)
    rng = np.random.default_rng(seed)
    n = max(1, int(2000 * scale))
    if name == "fastpath":
        sc = Scenario("fastpath", mc, [{"op": "kmap", "pfn": FAST_PAGE}])
        ops = [{"op": "kmap_high", "pfn": FAST_PAGE}, {"op": "kunmap_high", "pfn": FAST_PAGE}]
        for c in range(ncpus):
            sc.task(f"fast{c}", ops * n, cpu=c)
        return sc
    if name in ("churn", "dma-irq"):
        sc = Scenario(name, mc, [{"op": "kmap", "pfn": DMA_PAGE}])
        for c in range(ncpus):
            sc.task(f"churn{c}", _churn_ops(rng, n), cpu=c)
        if name == "dma-irq":
            sc.irq("nic", [
                {"op": "dma_map_page", "pfn": DMA_PAGE, "offset": 0, "size": 4096,
                 "direction": "FROM_DEVICE", "as": "h"},
                {"op": "dma_unmap_page", "dma_addr": "h", "size": 4096,
                 "direction": "FROM_DEVICE"},
            ], line=0, cpu=0, count=10 ** 9, period=50_000, first=50_000)
        return sc
    sc = Scenario.from_toml(name)
    # the DMA pinning follows the variant, whatever the file's own dma_pinning says (a
    # page_address file, as `emu scenario i --toml` writes, would otherwise profile the irq
    # locks with the racy pinning)
    sc.machine.update({"cpu": cpu, "kmap_high_get": kmap_high_get, "seed": seed,
                       "ncpus": ncpus, "costs": costs,
                       "dma_pinning": "kmap_high_get" if kmap_high_get else "page_address"})
    if not kmap_high_get:
        # the plain-lock variant keeps the scenario's own kmap_high_get() calls, compiled in
        # as built-in scenario (iii) has them
        sc.machine["force_kmap_high_get"] = True
    return sc


# ---------------------------------------------------------------------------------------------
# Reading the records
# ---------------------------------------------------------------------------------------------


def core_mhz(ld):
    """The core clock a Loaded machine ran at: its preset's, or its scenario's ``core_mhz``
    cost override.

    Parameters
    ----------
    ld : emu.exec.loaded.Loaded

    Returns
    -------
    int or float
        MHz.
    """
    return clocks(ld.machine.cpu, ld.scenario.machine.get("costs"))["core_mhz"]


def _us(mhz, cycles):
    """``cycles`` in µs at ``mhz`` MHz, rounded to 3 decimals."""
    return round(cycles / mhz, 3)


def bucket_label(b):
    """The label of a log2 histogram bucket in the profile document.

    Parameters
    ----------
    b : int
        The bucket: 0 holds 0 cycles, ``b > 0`` holds ``2**(b-1)`` to ``2**b - 1``.

    Returns
    -------
    str
        ``"0"``, ``"1-1"``, ``"2-3"``, ...
    """
    return "0" if b == 0 else f"{1 << (b - 1)}-{(1 << b) - 1}"


def _hist(counts):
    """The non-empty log2 buckets as ``{bucket_label(b): n}``."""
    return {bucket_label(b): int(n) for b, n in enumerate(counts) if n}


def _routine_rows(S, ctx):
    """{name: (calls, total, min, max)} of the routines called in ``ctx`` ("task" or "irq")."""
    p = int(S[K.H_R_PROFR]) + (K.PR_IRQ if ctx == "irq" else 0)
    rows = {}
    for r, name in enumerate(K.ROUTINE_NAMES):
        calls, total, mn, mx = (int(x) for x in S[p + r * K.PR_W:p + (r + 1) * K.PR_W])
        if calls and name not in ("none", "program"):
            rows[name] = (calls, total, mn, mx)
    return rows


def _merged(a, b):
    """Two contexts' rows of one routine as one."""
    if a is None or b is None:
        return a or b
    return a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])


def _routine_doc(rows, mhz):
    out = {}
    for name, (calls, total, mn, mx) in rows.items():
        avg = total / calls
        out[name] = {"calls": calls, "cycles_avg": round(avg, 2), "cycles_min": mn,
                     "cycles_max": mx, "us_avg": _us(mhz, avg)}
    return out


def _as_called(rows):
    """``rows`` with the DMA unpins' record merged into kunmap_high's (the routine they run)."""
    out = {}
    for n in K.ROUTINE_NAMES:
        r = _merged(rows.get(n), rows.get(UNPIN)) if n == PAIR[1] else rows.get(n)
        if r is not None and n != UNPIN:
            out[n] = r
    return out


def _routines(S, mhz):
    """Per-routine records: all calls, and split into task and IRQ-handler context (a DMA
    unpin's kunmap_high counted as kunmap_high); the DMA unpins apart, per context; and the
    tasks' pair (:func:`_pair_cycles`, from their kmap_high and kunmap_high calls but the
    unpins)."""
    raw = {ctx: _routine_rows(S, ctx) for ctx in ("task", "irq")}
    task, irq = _as_called(raw["task"]), _as_called(raw["irq"])
    every = {n: _merged(task.get(n), irq.get(n)) for n in K.ROUTINE_NAMES
             if n in task or n in irq}
    unpins = {ctx: _routine_doc({PAIR[1]: rows[UNPIN]}, mhz)[PAIR[1]]
              for ctx, rows in raw.items() if UNPIN in rows}
    return (_routine_doc(every, mhz),
            {"task": _routine_doc(task, mhz), "irq": _routine_doc(irq, mhz)}, unpins,
            _pair_cycles(_routine_doc(raw["task"], mhz)))


def _lock_stat(S, mhz):
    """kmap_lock's record in /proc/lock_stat's columns. As lock_stat, a hold time is taken at
    the release: a hold that never ended (a run stopped with the lock held, a deadlock) counts
    in ``acquisitions`` but not in the hold times, their average included."""
    lk = int(S[K.H_R_LOCK])
    g = (lambda f: int(S[lk + f]))
    acq, con = g(K.LK_ACQUISITIONS), g(K.LK_CONTENTIONS)
    held = acq - (1 if g(K.LK_OWNER) >= 0 else 0)       # holds that ended
    out = {"class": "kmap_lock", "con-bounces": 0, "contentions": con,
           "waittime-min": g(K.LK_WAIT_MIN), "waittime-max": g(K.LK_WAIT_MAX),
           "waittime-total": g(K.LK_WAIT_TOTAL),
           "waittime-avg": round(g(K.LK_WAIT_TOTAL) / con, 2) if con else 0.0,
           "acq-bounces": 0, "acquisitions": acq,
           "holdtime-min": g(K.LK_HOLD_MIN), "holdtime-max": g(K.LK_HOLD_MAX),
           "holdtime-total": g(K.LK_HOLD_TOTAL),
           "holdtime-avg": round(g(K.LK_HOLD_TOTAL) / held, 2) if held else 0.0,
           "unit": "cycles"}
    out["us"] = {k: _us(mhz, v) for k, v in out.items()
                 if k.startswith(("waittime", "holdtime"))}
    pr = int(S[K.H_R_PROF])
    out["holdtime-histogram"] = _hist(S[pr + K.PROF_H_HOLD:pr + K.PROF_H_HOLD + K.NHIST])
    out["waittime-histogram"] = _hist(S[pr + K.PROF_H_WAIT:pr + K.PROF_H_WAIT + K.NHIST])
    return out


def _irqsoff(S, cpu, mhz, cpu_cycles, costs):
    """The irqsoff tracer's records; ``cpu_cycles``: the cycles of every CPU together (the
    sections of all CPUs are summed, so the fraction is of their total time)."""
    pr = int(S[K.H_R_PROF])
    mx = int(S[pr + K.PROF_IRQOFF_MAX])
    by_site = {}
    for s, name in enumerate(K.SITE_NAMES):
        o = pr + K.PROF_H_IRQOFF + s * K.NHIST
        h = _hist(S[o:o + K.NHIST])
        if h:
            by_site[name] = h
    allh = np.zeros(K.NHIST, np.int64)
    for s in range(K.NSITES):
        o = pr + K.PROF_H_IRQOFF + s * K.NHIST
        allh += S[o:o + K.NHIST]
    tot = int(S[pr + K.PROF_IRQOFF_TOTAL])
    entry = IRQ_ENTRY_WORST.get(cpu)
    basis = f"IRQ entry, worst case {entry} cycles (ARM9E-S TRM)"
    if entry is None:
        entry = int(costs[K.UOP_IRQ_ENTRY])
        basis = f"IRQ entry, best case {entry} cycles (no worst-case figure for this core)"
    return {"max_cycles": mx, "max_us": _us(mhz, mx),
            "started_at": K.SITE_NAMES[int(S[pr + K.PROF_IRQOFF_MAX_START])] if mx else None,
            "ended_at": K.SITE_NAMES[int(S[pr + K.PROF_IRQOFF_MAX_END])] if mx else None,
            "cpu": int(S[pr + K.PROF_IRQOFF_MAX_CPU]),
            "sections": int(S[pr + K.PROF_IRQOFF_COUNT]), "total_cycles": tot,
            "fraction": round(tot / cpu_cycles, 6) if cpu_cycles else 0.0,
            "histogram": _hist(allh), "by_start_site": by_site,
            "worst_irq_response_cycles": mx + entry, "worst_irq_response_basis": basis}


def _irq_latency(S, mhz):
    """IRQ deliveries (``count``) and each one's latency from its (first) raise to the
    unmasking; ``merged``: raises of a line still pending, which added no delivery."""
    pr = int(S[K.H_R_PROF])
    n = int(S[pr + K.PROF_IRQLAT_COUNT])
    tot = int(S[pr + K.PROF_IRQLAT_TOTAL])
    return {"count": n, "min_cycles": int(S[pr + K.PROF_IRQLAT_MIN]) if n else 0,
            "max_cycles": int(S[pr + K.PROF_IRQLAT_MAX]),
            "avg_cycles": round(tot / n, 2) if n else 0.0,
            "max_us": _us(mhz, int(S[pr + K.PROF_IRQLAT_MAX])),
            "histogram": _hist(S[pr + K.PROF_H_IRQLAT:pr + K.PROF_H_IRQLAT + K.NHIST]),
            "merged": merged_irqs(S)}


def _masking_per_pair(costs, khg):
    """Cycles the IRQ masking instructions add to one kmap_high + kunmap_high pair."""
    if not khg:
        return 0
    return int(costs[K.UOP_IRQ_DISABLE] + costs[K.UOP_IRQ_ENABLE] + costs[K.UOP_IRQ_SAVE]
               + costs[K.UOP_IRQ_RESTORE])


def _pair_cycles(task):
    """One kmap_high + kunmap_high in task context: the average cycles of the tasks' kmap_high
    calls plus those of their kunmap_high calls, rounded; None where the tasks never called
    one of the two (no pair to price). A kunmap_high that releases the DMA layer's
    kmap_high_get pin is not one (it is part of the DMA call, which the plain variant makes
    without it: spec §1.4 prices the pair), nor is an IRQ handler's: ``task`` holds the
    tasks' routines only, the unpins in a record of their own."""
    if not all(n in task for n in PAIR):
        return None
    return round(sum(task[n]["cycles_avg"] for n in PAIR), 2)


def _missing_pair_calls(v):
    """The routines of the pair a variant's tasks never called (a DMA unpin's kunmap_high
    is not the pair's)."""
    unpins = v["dma_unpins"].get("task", {}).get("calls", 0)
    task = v["routines_by_context"]["task"]
    return [n for n in PAIR
            if task.get(n, {}).get("calls", 0) - (unpins if n == PAIR[1] else 0) == 0]


def profile_variant(sc, trace_events=0):
    """Run one workload variant under the timed schedule and report it.

    A run that does not finish (a deadlock, say) is reported as it stopped: ``outcome`` and
    ``message`` say why, and the figures cover what ran up to there.

    Parameters
    ----------
    sc : Scenario
        The variant (:func:`workload`).
    trace_events : int
        Trace slots to record (0: no trace; ``emu profile --trace`` records one).

    Returns
    -------
    tuple
        ``(report, loaded)``: the variant's dict of the profile document and the Loaded
        machine it ran on.
    """
    ld = sc.build(trace_events=trace_events)
    r = ld.run(K.SCHED_TIMED, trace=trace_events > 0, max_steps=MAX_STEPS, final=False,
               readable=False)
    m = ld.machine
    S = m._S
    mhz = core_mhz(ld)
    total = max(m.cycles)
    rout, by_ctx, unpins, pair = _routines(S, mhz)
    return {
        "kmap_high_get": m.kmap_high_get_enabled,
        "kmap_lock": "spin_lock_irq / spin_lock_irqsave" if m.kmap_high_get_enabled
        else "spin_lock",
        "dma_pinning": m.dma_pinning,
        "outcome": r.outcome, "message": r.message,
        "cycles": total, "us": _us(mhz, total),
        "routines": rout,
        "routines_by_context": by_ctx,
        "dma_unpins": unpins,
        "pair_cycles": pair,
        "masking_cycles_per_pair": _masking_per_pair(m._costs, m.kmap_high_get_enabled),
        "lock_stat": _lock_stat(S, mhz),
        "irqsoff": _irqsoff(S, m.cpu, mhz, sum(m.cycles), m._costs),
        "irq_latency": _irq_latency(S, mhz),
        "mm": m.mm_stats,
        "pending_irqs": r.pending_irqs,
    }, ld


def _stopped(v):
    """How a variant's run ended, in a few words."""
    return f"{v['outcome']} ({v['message']})" if v["message"] else v["outcome"]


def _work_differs(irq, plain):
    """The pkmap counters (sleeps, flushes, PTE writes...) and task-context call counts that
    differ between the two variants: where the runs did different work, the cycle difference
    is more than the masking instructions."""
    out = {k: [irq["mm"][k], plain["mm"][k]] for k in K.MMSTAT_NAMES
           if irq["mm"][k] != plain["mm"][k]}
    a, b = irq["routines_by_context"]["task"], plain["routines_by_context"]["task"]
    for n in sorted(set(a) | set(b), key=K.ROUTINE_NAMES.index):
        ca, cb = a.get(n, {}).get("calls", 0), b.get(n, {}).get("calls", 0)
        if ca != cb:
            out[f"{n} calls"] = [ca, cb]
    return out


def _overhead(irq, plain):
    """Cycles the irq locks add per pair, and that as a percentage of the plain pair: None
    unless both runs finished and both have a pair (the percentage also needs a plain pair
    of more than 0 cycles)."""
    a, b = irq["pair_cycles"], plain["pair_cycles"]
    if irq["outcome"] != "done" or plain["outcome"] != "done" or a is None or b is None:
        return None, None
    over = round(a - b, 2)
    return over, (round(100 * over / b, 2) if b else None)


def profile(cpu=None, workload_name="dma-irq", seed=None, ncpus=None, costs=None, scale=1.0,
            trace_events=0):
    """Profile ``workload_name`` on core ``cpu`` with and without IRQ-disabling kmap_lock.

    Parameters
    ----------
    cpu : str or None
        Core preset; None: a scenario file's own ``[machine] cpu``, else ``"arm926"``.
    workload_name : str or os.PathLike
        ``"fastpath"``, ``"churn"``, ``"dma-irq"`` or a scenario TOML file.
    seed, ncpus : int or None
        None: a scenario file's own, else 0 and 1.
    costs : Mapping or None
        Cost overrides, applied key by key over a scenario file's own ``[machine] costs``.
    scale : float
        A built-in workload's length, relative to 2,000 operations per task.
    trace_events : int
        Room for trace events (for :func:`~emu.cost.chrome.write_chrome_trace`).

    Returns
    -------
    (dict, dict)
        The JSON document of ``emu profile --json`` (see API.md; its ``cpu``, ``seed``,
        ``ncpus`` and ``core_mhz`` are the ones the runs used) and the two Loaded machines
        (for traces and plots).
    """
    s = settings(workload_name, cpu, seed, ncpus, costs)   # checked before anything runs
    cpu, seed, costs = s["cpu"], s["seed"], s["costs"]
    scale = check_real("scale", scale, MIN_SCALE, MAX_SCALE)
    if scale != 1.0 and workload_name not in WORKLOADS:
        raise ValueError(f"scale={scale!r}: sets a built-in workload's length "
                         f"({', '.join(WORKLOADS)}); a scenario file runs as written")
    mhz = clocks(cpu, costs)["core_mhz"]
    variants, loaded = {}, {}
    for key, khg in (("irq", True), ("plain", False)):
        sc = workload(workload_name, cpu, khg, seed, s["ncpus"], costs, scale)
        variants[key], loaded[key] = profile_variant(sc, trace_events)
    irq, plain = variants["irq"], variants["plain"]
    if irq["outcome"] != "done" and plain["outcome"] != "done":
        raise EmuError(f"profile workload {workload_name!r} did not finish with either "
                       f"kmap_lock: {_stopped(irq)} with spin_lock_irq; {_stopped(plain)} "
                       f"with spin_lock")
    over, percent = _overhead(irq, plain)
    doc = {
        "cpu": cpu, "workload": os.fspath(workload_name), "seed": seed,
        "ncpus": loaded["irq"].machine.ncpus,          # a scenario file's own, if it sets one
        "core_mhz": mhz,
        "irq_overhead_cycles_per_pair": over,
        "irq_overhead_percent": percent,
        "irq_overhead_us_per_pair": None if over is None else _us(mhz, over),
        "work_differs": _work_differs(irq, plain),
        "masking_cycles_per_pair": irq["masking_cycles_per_pair"],
        "irqs_off_max_cycles": irq["irqsoff"]["max_cycles"],
        "irqs_off_max_us": irq["irqsoff"]["max_us"],
        "variants": variants,
    }
    return doc, loaded


# ---------------------------------------------------------------------------------------------
# Text report and the CLI entry point
# ---------------------------------------------------------------------------------------------


def _no_pair_sentence(v, names):
    """Why there is no per-pair figure (both runs finished): the tasks of a run never called
    kmap_high or kunmap_high."""
    miss = {k: " or ".join(_missing_pair_calls(v[k])) for k in ("irq", "plain")}
    if miss["irq"] == miss["plain"]:
        why = f"no {miss['irq']} call in either run"
    else:
        why = ", ".join(f"no {miss[k]} call with the {names[k]} kmap_lock"
                        for k in ("irq", "plain") if miss[k])
    unpin = (" (a kunmap_high releasing a DMA pin is not one)"
             if any(v[k]["dma_unpins"].get("task") for k in ("irq", "plain")) else "")
    return (f"No per-pair comparison: the pair is the tasks' kmap_high + kunmap_high{unpin}, "
            f"and they made {why}.")


def _pair_sentence(doc):
    """What the IRQ-disabling locks cost per pair, and how far the runs can be compared."""
    v = doc["variants"]
    names = {"irq": "spin_lock_irq", "plain": "spin_lock"}
    stopped = [k for k in ("irq", "plain") if v[k]["outcome"] != "done"]
    if stopped:
        k = stopped[0]
        return (f"With the {names[k]} kmap_lock the workload did not finish "
                f"({v[k]['outcome']}); its column covers the run up to there (lock holds "
                f"and IRQ responses that ended), and there is no per-pair comparison."
                + (f"\n{v[k]['message']}" if v[k]["message"] else ""))
    if doc["irq_overhead_cycles_per_pair"] is None:
        return _no_pair_sentence(v, names)
    pct = "" if doc["irq_overhead_percent"] is None else f"{doc['irq_overhead_percent']}%, "
    text = (f"IRQ-disabling kmap_lock costs {doc['irq_overhead_cycles_per_pair']} cycles per "
            f"kmap_high+kunmap_high pair in task context ({pct}"
            f"{doc['irq_overhead_us_per_pair']} us); the masking instructions alone are "
            f"{doc['masking_cycles_per_pair']} cycles.")
    if doc["work_differs"]:
        what = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in doc["work_differs"].items())
        pin = ""
        if v["irq"]["dma_pinning"] != v["plain"]["dma_pinning"]:
            pin = (f"; DMA maintenance pins the page with {v['irq']['dma_pinning']} with "
                   f"the irq locks, uses {v['plain']['dma_pinning']} with plain ones")
        text += (f" But the two runs did different work ({what}{pin}), so the difference "
                 f"is more than the masking.")
    return text + _contended_sentence(doc)


def _contended_sentence(doc):
    """On SMP, a contended kmap_lock: the pairs' cycles include spinning for the other
    CPU's holds, which the masking (done outside the hold) overlaps."""
    ls = {k: doc["variants"][k]["lock_stat"] for k in ("irq", "plain")}
    if doc["ncpus"] < 2 or not any(s["contentions"] for s in ls.values()):
        return ""
    waited = "; ".join(f"{s['contentions']} of {s['acquisitions']} acquisitions with the "
                       f"{k} locks" for k, s in ls.items())
    return (f" On {doc['ncpus']} CPUs kmap_lock was contended ({waited} waited): a pair's "
            f"cycles include spinning for another CPU's hold, which overlaps the masking "
            f"done outside it, so the difference is not the masking alone.")


def format_report(doc):
    """The profile as a few readable tables (``emu profile``'s text report).

    Parameters
    ----------
    doc : dict
        An ``emu profile --json`` document.

    Returns
    -------
    str
    """
    v = doc["variants"]
    lines = [f"kmap_lock profile: {doc['cpu']} at {doc['core_mhz']} MHz, workload "
             f"{doc['workload']} (seed {doc['seed']})", ""]
    lines.append(f"{'':44s}{'irq (ARM)':>16s}{'plain':>16s}")
    lines.append(f"{'':44s}{'spin_lock_irq':>16s}{'spin_lock':>16s}")
    for ctx, where in (("task", ""), ("irq", " in IRQ")):
        rows = [v[key]["routines_by_context"][ctx] for key in ("irq", "plain")]
        for n in sorted(set(rows[0]) | set(rows[1]), key=K.ROUTINE_NAMES.index):
            cells = "".join(f"{r[n]['cycles_avg']:16.1f}" if n in r else f"{'-':>16s}"
                            for r in rows)
            lines.append(f"  {n + where + ' (cycles/call)':42s}{cells}")
    for key, label in (("holdtime-avg", "kmap_lock hold avg (cycles)"),
                       ("holdtime-max", "kmap_lock hold max (cycles)"),
                       ("acquisitions", "kmap_lock acquisitions"), ("contentions", "contentions")):
        lines.append(f"  {label:42s}{v['irq']['lock_stat'][key]:16}"
                     f"{v['plain']['lock_stat'][key]:16}")
    for key, label in (("max_cycles", "longest irqs-off (cycles)"),
                       ("sections", "irqs-off sections")):
        lines.append(f"  {label:42s}{v['irq']['irqsoff'][key]:16}{v['plain']['irqsoff'][key]:16}")
    lines.append(f"  {'IRQ latency max (cycles)':42s}{v['irq']['irq_latency']['max_cycles']:16}"
                 f"{v['plain']['irq_latency']['max_cycles']:16}")
    io = v["irq"]["irqsoff"]
    lines += ["", _pair_sentence(doc),
              f"Longest irqs-off section: {io['max_cycles']} cycles ({io['max_us']} us), from "
              f"{io['started_at']} to {io['ended_at']}; worst IRQ response "
              f"{io['worst_irq_response_cycles']} cycles (irqs-off + "
              f"{io['worst_irq_response_basis']}).",
              f"IRQ latency (raise to unmasked): max {v['irq']['irq_latency']['max_cycles']} "
              f"cycles with the irq locks, {v['plain']['irq_latency']['max_cycles']} with "
              f"plain locks."]
    merged = [v[key]["irq_latency"]["merged"] for key in ("irq", "plain")]
    if any(merged):
        lines.append(f"IRQ raises merged into one still pending (a line holds one pending "
                     f"interrupt): {merged[0]} with the irq locks, {merged[1]} with plain "
                     f"locks.")
    for key, name in (("irq", "spin_lock_irq"), ("plain", "spin_lock")):
        if v[key]["pending_irqs"]:
            lines.append(f"IRQs pending at the end of the {name} run: "
                         + "; ".join(map(pending_irq_text, v[key]["pending_irqs"])) + ".")
    if doc["cpu"] in NOT_MODELLED:
        lines.append(NOT_MODELLED[doc["cpu"]])
    return "\n".join(lines)


def main_profile(a):
    """``emu profile``: run, print, and write the ``--trace`` / ``--plot`` files asked for.

    Parameters
    ----------
    a : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status.
    """
    import json
    import sys

    from ..warmup import warmup
    from .tables import load_overrides
    # the --costs file's per-core section is the core the run uses: a scenario file's own
    # cpu unless --cpu is given
    cpu = settings(a.workload, a.cpu)["cpu"] if a.costs else a.cpu
    costs = load_overrides(a.costs, cpu) if a.costs else None
    if a.plot:
        from .plot import check_plot_path
        check_plot_path(a.plot)                 # no matplotlib, or no such format: say so
                                                # before any run
    warmup()
    doc, loaded = profile(a.cpu, a.workload, a.seed, ncpus=a.ncpus, costs=costs,
                          scale=a.scale, trace_events=TRACE_EVENTS if a.trace else 0)
    if a.trace:
        from .chrome import write_chrome_trace
        for key, (kept, recorded) in write_chrome_trace(a.trace, loaded, doc).items():
            print(f"emu profile: warning: --trace {a.trace}: the {key} run's timeline holds "
                  f"its first {kept:,} of {recorded:,} events (it ends early; the report's "
                  f"figures cover the whole run)", file=sys.stderr)
    if a.plot:
        from .plot import plot_profile
        plot_profile(doc, a.plot)
    if a.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_report(doc))
        if a.trace:
            print(f"\ntimeline written to {a.trace} (open it in https://ui.perfetto.dev)")
        if a.plot:
            print(f"plot written to {a.plot}")
    return 0
