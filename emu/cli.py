"""The ``emu`` command: an ARM VIVT D-cache, the Linux 2.6.30 pkmap window and streaming DMA,
emulated; Nicolas Pitre's 2009 highmem DMA race, found and replayed, and its fix.

examples:
  emu demo                          the race, its fix, and what the fix costs (start here)
  emu race [--json]                 explore the built-in scenarios (data loss, deadlocks)
  emu explore FILE.toml --bound 2   explore a user scenario (TOML)
  emu run FILE.toml [--schedule S]  one schedule of a user scenario: explicit, random or default
  emu replay TOKEN                  replay a failing schedule with its trace
  emu scenario i --toml             print a built-in scenario (a starting point for your own)
  emu profile --cpu feroceon        kmap_lock cost with and without IRQ disabling
  emu presets [--costs]             the core presets, what in them is assumed, cycle tables
"""

import argparse
import dataclasses
import json
import os
import sys
import textwrap

from . import consts as K
from .exec.builtin import SCENARIO_IDS
from .errors import EmuError
from .exec.report import count_of
from .mm.memmap import MAX_LAST_PKMAP


def _int_in(s, low, top, what):
    """``s`` as an int in ``[low, top]`` (``top`` None: no upper limit), or argparse's error
    saying ``what`` it must be (not "invalid _int_in value")."""
    try:
        v = int(s)
    except ValueError:
        v = None
    if v is None or v < low or top is not None and v > top:
        raise argparse.ArgumentTypeError(f"{s}: must be {what}")
    return v


def _positive(s):
    return _int_in(s, 1, None, "a positive int")


def _nonneg(s):
    return _int_in(s, 0, None, "a non-negative int")


def _bound(s):
    """A preemption bound, checked before the warm-up (which takes a minute on a first run)."""
    return _int_in(s, 0, K.DECISION_LOG, f"an int in [0, {K.DECISION_LOG}] (the preemption "
                                         f"bound; {K.DECISION_LOG}: none)")


def _cpus(s):
    return _int_in(s, 0, K.MAX_JOBS, f"0 (one per CPU) or a positive int up to {K.MAX_JOBS}")


def _sizes(s):
    try:
        vals = tuple(int(x) for x in s.split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s}: must be comma-separated ints, e.g. 8,512")
    if not vals:
        raise argparse.ArgumentTypeError(f"{s!r}: give at least one LAST_PKMAP, e.g. 8 or 8,512")
    for v in vals:
        if v < 2 or v > MAX_LAST_PKMAP or v & (v - 1):
            raise argparse.ArgumentTypeError(f"{v}: LAST_PKMAP must be a power of two "
                                             f"2..{MAX_LAST_PKMAP}")
    return vals


def _only(s):
    ids = tuple(x.strip() for x in s.split(",") if x.strip())
    bad = [x for x in ids if x not in SCENARIO_IDS]
    if bad or not ids:
        raise argparse.ArgumentTypeError(f"{s!r}: must be comma-separated scenario ids from "
                                         f"{', '.join(SCENARIO_IDS)} (e.g. i,iii)")
    return ids


def _print_json(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


# ---------------------------------------------------------------------------------------------
def _warm():
    from .warmup import warmup
    warmup()


def _lock_name(r):
    """How a race row's kmap_lock is taken: ARCH_NEEDS_KMAP_HIGH_GET makes lock_kmap()
    spin_lock_irq (mm/highmem.c), otherwise it is a plain spin_lock."""
    return "spin_lock_irq" if r.kmap_high_get else "spin_lock"


def _variant(r):
    """A race row's machine in words: ``page_address pinning, spin_lock kmap_lock, 1 cpu,
    L=8``."""
    return (f"{r.dma_pinning} pinning, {_lock_name(r)} kmap_lock, {r.ncpus} cpu, "
            f"L={r.last_pkmap}")


def _cmd_race(a):
    """``emu race``: explore the built-in scenarios; print the table and the replay tokens."""
    from .exec.race import run_race
    _warm()
    only = set(a.only) if a.only else None
    res = run_race(a.bound, a.sizes, a.smp_sizes, a.max_schedules, progress=not a.json,
                   only=only)
    if a.json:
        _print_json({"bound": a.bound, "results": [r.to_json(a.max_schedules is not None)
                                                   for r in res]})
        return 0
    print(f"emu race: every schedule with at most {a.bound} preemptions "
          f"(task preemptions, CPU interleavings and IRQs count)\n")
    hdr = (f"{'scn':4s} {'pinning':14s} {'kmap_lock':13s} {'cpus':>4s} {'L':>4s} "
           f"{'schedules':>9s} {'lost bytes':>10s} {'deadlock':>8s}  minimal failing schedule")
    print(hdr)
    print("-" * len(hdr))
    for r in res:
        sched = "; ".join(r.minimal_schedule) if r.minimal_schedule else "-"
        if r.minimal_schedule:
            sched += f"  ({count_of(r.preemptions, 'preemption')})"
        n = f"{r.schedules_explored}{'' if r.complete else '*'}"
        print(f"{r.scenario:4s} {r.dma_pinning:14s} {_lock_name(r):13s} {r.ncpus:4d} "
              f"{r.last_pkmap:4d} {n:>9s} {r.lost_bytes:10d} "
              f"{'yes' if r.deadlock else 'no':>8s}  {sched}")
    if not all(r.complete for r in res):
        print(f"* stopped at --max-schedules {a.max_schedules} before covering every schedule "
              f"within the bound (those with the fewest preemptions first):")
        for r in res:
            if not r.complete:
                print(f"  {r.scenario} ({_variant(r)}): {_covered(r.covered_bound)}")
    print()
    for r in res:
        if r.replay:
            print(f"replay {r.scenario} ({_variant(r)}):\n  emu replay {r.replay}")
        if r.lockdep:
            print(f"lockdep: {r.scenario} with a {_lock_name(r)} kmap_lock takes it in hardirq "
                  f"context and elsewhere with IRQs on (inconsistent lock state)")
    return 0


def _result_json(r):
    return {"outcome": r.outcome, "data_lost": r.data_lost, "lost_bytes": r.lost_bytes,
            "stale_read_bytes": r.stale_reads, "deadlock": r.deadlock, "message": r.message,
            "decisions": r.decisions,
            "preemptions": r.preemptions, "lockdep": r.lockdep,
            "findings": [f._asdict() | {"expected": f.expected.hex(), "found": f.found.hex()}
                         for f in r.findings],
            "pending_irqs": r.pending_irqs, "trace": r.trace}


def _finding_how(f, who):
    """How a finding came about, for ``emu run`` / ``emu replay``."""
    if f.kind == "lost-at-end":
        return "found by the final check"
    if f.kind == "stale-read":
        return f"read by {who} in {f.site}"
    if f.kind == "stale-device-read":
        return f"read by the device (device_read of {who})"
    if f.kind == "read-during-dma":
        lo, hi = f.dma_range
        return (f"read by {who} in {f.site} while the device's transfer to "
                f"[{lo:#x}, {hi:#x}) was in flight")
    return f"dropped by {f.site} of {who}"


def _pending_line(q):
    """A line a timed run left raised or armed (:meth:`Loaded.pending_irqs`), in words."""
    state = "raised, never delivered" if q["state"] == "raised" else \
        f"armed, due at cycle {q['due']}"
    return (f"IRQ line {q['line']} ({q['handler']}, cpu {q['cpu']}) {state}: "
            f"{count_of(q['firings_left'], 'firing')} left when the run ended")


def _print_result(r, ld):
    for line in r.trace:
        print(line)
    print()
    print(f"outcome: {r.outcome}; {count_of(r.decisions, 'scheduling decision')}, "
          f"{count_of(r.preemptions, 'preemption')}")
    if r.message:
        print(r.message)
    for f in r.findings:
        va = f"va {f.va:#010x}" if f.va >= 0 else "no va"
        who = ld.names[f.ctx] if 0 <= f.ctx < len(ld.names) else f.ctx
        print(f"{f.kind}: {f.bad_bytes} bytes at pa {f.pa:#x} (page {f.pfn}, {va}) "
              f"{_finding_how(f, who)}"
              f"\n    expected {f.expected.hex()}\n    found    {f.found.hex()}")
    for q in r.pending_irqs:
        print(_pending_line(q))
    if r.lockdep:
        print(r.lockdep)
    print(f"data lost: {r.lost_bytes} bytes" if r.data_lost else "no data lost")
    if r.stale_reads:
        print(f"stale reads: {count_of(r.stale_reads, 'byte')} read wrong")


def _cmd_explore(a):
    """``emu explore FILE.toml``: explore a scenario file (exit 1 on a failure with ``--fail``)."""
    from .exec.explore import explore
    from .exec.scenario import Scenario
    sc = Scenario.from_toml(a.file)
    _warm()
    ex = explore(sc, bound=a.bound, max_schedules=a.max_schedules, progress=not a.json,
                 jobs=a.jobs)
    out = {"scenario": ex.scenario, "bound": ex.bound, "schedules_explored": ex.schedules,
           "complete": ex.complete, "failures": ex.failures,
           "outcomes": ex.outcomes, "data_lost": ex.data_lost, "lost_bytes": ex.max_lost_bytes,
           "deadlock": ex.deadlocks > 0, "minimal_schedule": ex.switches,
           "preemptions": ex.minimal.preemptions if ex.minimal else 0, "replay": ex.replay,
           "lockdep": ex.lockdep, "stale_reads": ex.stale_reads,
           "covered_bound": ex.covered_bound}
    out["minimal_message"] = _minimal_message(ex)
    if a.json:
        _print_json(out)
    else:
        _print_exploration(ex, out["minimal_message"])
    return 1 if ex.failures and a.fail else 0


def _minimal_message(ex):
    """Why the minimal failing schedule failed (its error, BUG or deadlock), replayed; empty
    when it ran to the end (it lost data) or nothing failed."""
    if not ex.minimal or ex.minimal.outcome == "done":
        return ""
    from .exec.explore import replay
    return replay(ex.replay, trace=False)[1].message


def _stopped_early(ex):
    """What an exploration that stopped early covered, for its summary line."""
    if ex.covered_bound < 0:
        return ", stopped early"
    return f", stopped early; {_covered(ex.covered_bound)}"


def _covered(k):
    """What a search that stopped early covered: every schedule with at most ``k``
    preemptions (``k`` -1: not even those with none)."""
    if k < 0:
        return "not even every schedule without preemption covered"
    return f"every schedule with at most {count_of(k, 'preemption')} covered"


def _stale_what(ex):
    """What went wrong in the minimal failing schedule, which ran to the end and lost nothing
    (its findings: the schedule replayed)."""
    from .exec.explore import replay
    if {f.kind for f in replay(ex.replay, trace=False)[1].findings} == {"read-during-dma"}:
        return "a CPU read bytes a device transfer in flight was still to write"
    return "a CPU or device read got stale data"


def _print_exploration(ex, message):
    print(f"{ex.scenario}: {ex.schedules} schedules (bound {ex.bound}"
          f"{'' if ex.complete else _stopped_early(ex)}) in {ex.seconds:.2f} s; "
          f"{ex.failures} failing"
          + (f" ({ex.stale_reads} with stale reads)" if ex.stale_reads else "")
          + (f"; at most {count_of(ex.max_lost_bytes, 'byte')} lost in one schedule"
             if ex.max_lost_bytes else ""))
    if ex.minimal:
        m = ex.minimal
        what = _stale_what(ex) if m.outcome == "done" and not m.lost_bytes else \
            f"this schedule loses {count_of(m.lost_bytes, 'byte')}"
        print(f"minimal failing schedule ({count_of(m.preemptions, 'preemption')}, "
              f"outcome {m.outcome}, {what}):")
        for s in ex.switches or ["(no preemption)"]:
            print("  " + s)
        if message:
            print(textwrap.indent(message, "  "))     # (blank lines stay blank)
        print(f"replay: emu replay {ex.replay}")
    if ex.lockdep:
        print(ex.lockdep)


def _cmd_run(a):
    """``emu run FILE.toml``: one schedule (explicit, or seeded random) with its trace."""
    from .exec.explore import explicit_choices
    from .exec.scenario import Scenario
    if a.p_switch is not None and a.random is None:
        raise ValueError("--p-switch: only with --random SEED (an explicit, default or "
                         "timed schedule makes no random switches)")
    if a.p_switch is not None and not 0 <= a.p_switch <= 1:
        raise ValueError(f"p_switch={a.p_switch!r} (--p-switch): must be a probability in "
                         f"[0, 1]")
    sc = Scenario.from_toml(a.file)
    ld = sc.build(trace_events=1 << 20)
    if a.random is not None:
        p = K.DEFAULT_P_SWITCH if a.p_switch is None else a.p_switch
        r = ld.run(K.SCHED_RANDOM, (), int(p * K.P_SWITCH_SCALE), a.random, trace=True)
    elif a.timed:
        r = ld.run(K.SCHED_TIMED, trace=True)
    else:
        choices = explicit_choices(ld, a.schedule or [])
        r = ld.run(K.SCHED_DFS, choices, trace=True)
    if a.json:
        _print_json(_result_json(r))
    else:
        _print_result(r, ld)
    return 0


def _cmd_replay(a):
    """``emu replay TOKEN``: run the schedule a replay token holds and print its trace."""
    from .exec.explore import replay
    ld, r = replay(a.token)
    if a.json:
        _print_json(_result_json(r) | {"scenario": ld.scenario.name})
    else:
        print(f"replaying: {ld.scenario.name}\n")
        _print_result(r, ld)
    return 0


def _cmd_scenario(a):
    """``emu scenario ID``: print a built-in scenario (JSON, or TOML to start a file of
    one's own)."""
    from .exec import builtin
    sizes = a.last_pkmap
    if a.name in ("i", "ii"):
        sc = builtin.race(sizes, 1 if a.name == "i" else 2, a.pinning)
    else:
        sc = builtin.irq_getter(a.pinning == "kmap_high_get", sizes)
    d = sc.to_dict()
    if a.toml:
        import tomli_w
        sys.stdout.write(tomli_w.dumps(d))
    else:
        _print_json(d)
    return 0


def _cmd_presets(a):
    """``emu presets``: the core presets' caches, or with ``--costs`` their cost tables."""
    from .cache.config import PRESET_ASSUMPTIONS, PRESETS
    if a.costs_file and not a.costs:
        raise ValueError("--costs-file: only with --costs (it overrides the cycle tables, "
                         "not the cache geometry)")
    if a.costs:
        from .cost.tables import cost_json, describe, load_overrides
        cpus = [a.cpu] if a.cpu else list(PRESETS)
        over = {cpu: load_overrides(a.costs_file, cpu) if a.costs_file else None for cpu in cpus}
        if a.json:
            _print_json({"costs": {cpu: cost_json(cpu, over[cpu]) for cpu in cpus}})
            return 0
        for cpu in cpus:
            print(describe(cpu, over[cpu]))
            print()
        return 0
    shown = {a.cpu: PRESETS[a.cpu]} if a.cpu else PRESETS
    if a.json:
        _print_json({"presets": {name: dataclasses.asdict(c) | {
            "assumed": list(PRESET_ASSUMPTIONS[name])} for name, c in shown.items()}})
        return 0
    for name, c in shown.items():
        print(f"{name:9s} {c.size // 1024:3d} KiB {c.ways:2d}-way {c.line} B lines, "
              f"{c.replacement}, {'write-back' if c.write_back else 'write-through'}, "
              f"{'write' if c.write_allocate else 'read'}-allocate, Linux style {c.style}")
        print(f"          assumed: {'; '.join(PRESET_ASSUMPTIONS[name])}")
    return 0


def _cmd_profile(a):
    """``emu profile``: kmap_lock's cost with and without IRQ disabling
    (:func:`emu.cost.profile.main_profile`)."""
    from .cost.profile import main_profile
    return main_profile(a)


def _cmd_demo(a):
    """``emu demo``: the race, its fix, the deadlock and the fix's cost
    (:func:`emu.demo.run_demo`)."""
    from .demo import run_demo
    return run_demo(a)


def build_parser():
    """The ``emu`` command line: one subcommand per job, each dispatching to its ``_cmd_*``.

    Returns
    -------
    argparse.ArgumentParser
    """
    head, _, examples = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(prog="emu", description=head.replace("``", ""),
                                epilog=examples,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    from .cache.config import PRESETS
    cores = list(PRESETS)
    js = "print one JSON document instead of text"

    d = sub.add_parser("demo", help="the 2009 race, its fix, and what the fix costs")
    d.add_argument("--cpu", default="arm926", choices=cores,
                   help="core preset for the cost part (default arm926)")
    d.add_argument("--json", action="store_true", help=js)
    d.set_defaults(fn=_cmd_demo)

    r = sub.add_parser("race", help="explore the built-in scenarios")
    r.add_argument("--json", action="store_true", help=js)
    r.add_argument("--bound", type=_bound, default=2, help="preemption bound (default 2)")
    r.add_argument("--sizes", type=_sizes, default=(8, 512),
                   help="LAST_PKMAP values for scenario (i) (default 8,512)")
    r.add_argument("--smp-sizes", type=_sizes, default=(8,),
                   help="LAST_PKMAP values for scenario (ii) (default 8)")
    r.add_argument("--max-schedules", type=_positive, default=None, metavar="N",
                   help="stop each exploration after N schedules, covering those with the "
                        "fewest preemptions first (default: no cap)")
    r.add_argument("--only", type=_only, metavar="IDS",
                   help=f"comma-separated scenario ids from {', '.join(SCENARIO_IDS)} "
                        "(default: all)")
    r.set_defaults(fn=_cmd_race)

    e = sub.add_parser("explore", help="explore a TOML scenario")
    e.add_argument("file", metavar="FILE.toml", help="scenario file (see emu scenario i --toml)")
    e.add_argument("--bound", type=_bound, default=2, help="preemption bound (default 2)")
    e.add_argument("--max-schedules", type=_positive, default=None, metavar="N",
                   help="stop after N schedules, covering those with the fewest "
                        "preemptions first (default: no cap)")
    e.add_argument("--jobs", type=_cpus, default=1, metavar="N",
                   help="processes to search with, 0 for one per CPU (default 1; same "
                        "result, faster on long explorations; serial with --max-schedules)")
    e.add_argument("--json", action="store_true", help=js)
    e.add_argument("--fail", action="store_true", help="exit 1 if a schedule fails")
    e.set_defaults(fn=_cmd_explore)

    u = sub.add_parser("run", help="run one schedule of a TOML scenario with its trace")
    u.add_argument("file", metavar="FILE.toml", help="scenario file")
    how = u.add_mutually_exclusive_group()
    how.add_argument("--schedule", action="append", metavar="DIRECTIVE",
                   help="'after step N of TASK run OTHER' or '... raise IRQ HANDLER' ('... "
                        "raise spurious IRQ HANDLER': one of the line's own raises while its "
                        "device's transfer is in flight); the first may be 'at start run "
                        "OTHER' (repeatable; default: no preemption, the running task goes "
                        "on until it finishes or blocks)")
    how.add_argument("--random", type=_nonneg, metavar="SEED",
                     help="a seeded random schedule (instead of --schedule)")
    how.add_argument("--timed", action="store_true",
                     help="the timed schedule: each CPU's cycle clock decides, IRQs fire at "
                          "their clocks ([[irq]] first/period, device_start cycles), time "
                          "slices if the machine has them; lists the lines left raised or "
                          "armed (the profiler's schedule)")
    u.add_argument("--p-switch", type=float, default=None, metavar="P",
                   help="with --random: probability of a switch at each point "
                        f"(default {K.DEFAULT_P_SWITCH})")
    u.add_argument("--json", action="store_true", help=js)
    u.set_defaults(fn=_cmd_run)

    y = sub.add_parser("replay", help="replay a schedule from its token")
    y.add_argument("token", help="an emu1:... token printed by emu race or emu explore")
    y.add_argument("--json", action="store_true", help=js)
    y.set_defaults(fn=_cmd_replay)

    s = sub.add_parser("scenario", help="print a built-in scenario")
    s.add_argument("name", choices=list(SCENARIO_IDS), help="scenario id")
    s.add_argument("--pinning", default="page_address", choices=K.PIN_NAMES,
                   help="how dma_map_page pins a highmem page; for iii, kmap_high_get "
                        "means the IRQ-disabling kmap_lock (default page_address)")
    s.add_argument("--last-pkmap", type=int, default=8, metavar="L",
                   help=f"LAST_PKMAP, a power of two 2..{MAX_LAST_PKMAP} (default 8)")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (the default)")
    fmt.add_argument("--toml", action="store_true", help="print TOML instead of JSON")
    s.set_defaults(fn=_cmd_scenario)

    q = sub.add_parser("presets", help="core presets (and their cycle tables with --costs)")
    q.add_argument("--costs", action="store_true", help="print the cycle cost tables")
    q.add_argument("--cpu", choices=cores, help="only this core")
    q.add_argument("--costs-file", metavar="FILE.toml",
                   help="with --costs: the tables with these overrides applied")
    q.add_argument("--json", action="store_true", help=js)
    q.set_defaults(fn=_cmd_presets)

    f = sub.add_parser("profile", help="kmap_lock cost with and without IRQ disabling")
    f.add_argument("--cpu", choices=cores,
                   help=f"core preset (default: a scenario file's own [machine] cpu, else "
                        f"{K.DEFAULT_CPU})")
    f.add_argument("--workload", default="dma-irq",
                   help="fastpath, churn, dma-irq (default) or a scenario FILE.toml (its "
                        "[machine] cpu and seed apply unless --cpu / --seed are given; "
                        "--costs applies over its [machine] costs)")
    f.add_argument("--json", action="store_true", help=js)
    f.add_argument("--plot", metavar="FILE.png",
                   help="irq vs plain locks: cycles per routine, irqs-off sections, IRQ "
                        "latency (needs matplotlib: pip install 'emu[plot]')")
    f.add_argument("--trace", metavar="FILE.json",
                   help="write a Chrome / Perfetto timeline of both runs (irq and plain "
                        "kmap_lock)")
    f.add_argument("--costs", metavar="FILE.toml",
                   help="override cycle costs (the [costs] section, then the core's own; over a "
                        "scenario file's [machine] costs, key by key)")
    f.add_argument("--seed", type=_nonneg, default=None,
                   help="workload seed (default: a scenario file's own [machine] seed, else 0)")
    f.add_argument("--ncpus", type=int, default=None, metavar="N",
                   help="CPUs sharing the cache (default: a scenario file's own [machine] "
                        "ncpus, else 1)")
    f.add_argument("--scale", type=float, default=1.0, metavar="X",
                   help="a built-in workload's length, relative to 2,000 operations per task "
                        "(default 1)")
    f.set_defaults(fn=_cmd_profile)
    return p


def _quiet_stdout():
    """Point stdout at /dev/null, so that flushing it at exit does not fail again (Python's
    documented handling of SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):               # no file descriptor behind stdout
        pass


def _os_error(a, e):
    """An OSError's message, naming the command-line argument whose file it concerns."""
    if e.filename is None:
        return str(e)
    what = next((("FILE.toml" if k == "file" else "--" + k.replace("_", "-"))
                 for k, v in vars(a).items()
                 if isinstance(v, str) and k != "cmd" and v == str(e.filename)), None)
    where = f"{what} {e.filename}" if what else str(e.filename)
    return f"{where}: {e.strerror or e}"


def main(argv=None):
    """Run the ``emu`` command.

    Bad input, unreadable files and a failed setup print ``emu CMD: error: ...`` and exit 2;
    Ctrl-C exits 130; a reader leaving the pipe exits 1 quietly.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``emu`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    p = build_parser()
    a = p.parse_args(argv)
    try:
        rc = a.fn(a) or 0
        sys.stdout.flush()                      # a closed pipe shows here, not at exit
        return rc
    except BrokenPipeError:                     # `emu replay ... | head`: the reader left
        _quiet_stdout()
        return 1
    except OSError as e:
        print(f"emu {a.cmd}: error: {_os_error(a, e)}", file=sys.stderr)
        return 2
    except (ValueError, EmuError) as e:         # EmuError: a scenario's setup op failed
        print(f"emu {a.cmd}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:                   # Ctrl-C: explorations stop within a few ms
        print(f"emu {a.cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
