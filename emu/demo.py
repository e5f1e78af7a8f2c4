"""``emu demo``: the 2009 highmem DMA race, its fix, and what the fix costs, in a minute."""

import time

from . import consts as K
from .exec.builtin import irq_getter, race
from .exec.explore import explore, read_token
from .exec.report import count_of
from .warmup import warmup

KEY_EVENTS = ("<-- switch", "pte_clear", "set_pte", "flush_cache", "flush_tlb", "!!",
              "store 0xbfe01800", "sleeps", "wakes")


def _excerpt(token, limit=14):
    sc, choices = read_token(token)
    ld = sc.build(trace_events=1 << 18)
    r = ld.run(K.SCHED_DFS, choices, trace=True)
    lines, prev = [], None
    for line in r.trace:
        if line.startswith("step"):
            prev = line
            if "<-- switch" in line:
                lines.append(line)
                prev = None
            continue
        if any(k in line for k in KEY_EVENTS):
            if prev is not None:
                lines.append(prev)
                prev = None
            lines.append(line)
    return lines[:limit] + (["             ..."] if len(lines) > limit else [])


def _runs():
    """The demo's four explorations: (scenario id, Scenario, Exploration) each."""
    scs = (("i", race(8, 1, "page_address")), ("i", race(8, 1, "kmap_high_get")),
           ("iii", irq_getter(False)), ("iii", irq_getter(True)))
    return [(sid, sc, explore(sc, bound=2)) for sid, sc in scs]


def demo_json(cpu):
    """``emu demo --json``: the four explorations as ``emu race --json`` rows and the
    ``emu profile --json`` document (no wall-clock times: same inputs, same bytes).

    Parameters
    ----------
    cpu : str
        The core the profile runs on.

    Returns
    -------
    dict
        ``{"results": [...], "profile": {...}}``.
    """
    from .cost.profile import profile
    from .exec.race import race_result
    rows = [race_result(sid, sc, ex, ex.seconds).to_json() for sid, sc, ex in _runs()]
    doc, _ = profile(cpu, "dma-irq", scale=0.5)
    return {"results": rows, "profile": doc}


def run_demo(a, out=print):
    """``emu demo``: the race, its fix, the deadlock, and what the fix costs, as prose.

    Parameters
    ----------
    a : argparse.Namespace
        The parsed command line (``cpu``, ``json``).
    out : callable
        Prints one block of text.

    Returns
    -------
    int
        The exit status.
    """
    t0 = time.perf_counter()
    warmup()
    if a.json:
        import json
        out(json.dumps(demo_json(a.cpu), indent=2))
        return 0
    (_, _, bad), (_, _, good), (_, _, plain), (_, _, safe) = _runs()
    out("emu demo: Nicolas Pitre's 2009 highmem DMA race on a VIVT ARM cache, its fix "
        "(kmap_high_get), and what the fix costs.\n")

    out("[1/3] dma_map_page(DMA_FROM_DEVICE) on a lazily-mapped highmem page, preempted by a "
        "task whose kmap_high wraps the pkmap cursor (UP, LAST_PKMAP 8):")
    out(f"  unpinned (page_address): {bad.schedules} schedules with <= 2 preemptions explored "
        f"in {bad.seconds:.2f} s: {bad.failures} lose data, up to {bad.max_lost_bytes} bytes.")
    if bad.minimal:
        out(f"  minimal failing schedule ({count_of(bad.minimal.preemptions, 'preemption')}): "
            f"{'; '.join(bad.switches)}")
        for line in _excerpt(bad.replay):
            out("    " + line)
    out(f"  pinned (kmap_high_get):   {good.schedules} schedules, "
        f"{'no data lost' if not good.data_lost else f'{good.max_lost_bytes} bytes LOST'}: "
        f"the slot stays at count 2, so the other task's kmap_high sleeps until the "
        f"invalidate loop is done.\n")

    out("[2/3] kmap_high_get() from an IRQ handler needs kmap_lock taken with IRQs off:")
    out(f"  plain spin_lock: {plain.schedules} schedules, "
        f"{'DEADLOCK' if plain.deadlocks else 'no deadlock'} "
        f"({plain.switches[0] if plain.switches else ''}):")
    if plain.minimal:
        sc, ch = read_token(plain.replay)
        r = sc.build().run(K.SCHED_DFS, ch)
        out("    " + r.message.splitlines()[0])
    if plain.lockdep:
        out("    lockdep: " + plain.lockdep.splitlines()[3])
    out(f"  spin_lock_irq:   {safe.schedules} schedules, "
        f"{'no deadlock' if not safe.deadlocks else 'DEADLOCK'}.\n")

    from .cost.profile import format_report, profile
    out(f"[3/3] The price, on {a.cpu}: every kmap_high/kunmap_high masks IRQs, and a pkmap "
        f"wrap-around runs flush_cache_all, a LAST_PKMAP scan and a TLB flush with IRQs off:")
    doc, _ = profile(a.cpu, "dma-irq", scale=0.5)
    for line in format_report(doc).splitlines():
        out("  " + line)
    out(f"\nIn 2009 the cost was argued without numbers (\"rather big cost\" / \"negligible\"). "
        f"Per pair it is {doc['irq_overhead_cycles_per_pair']} cycles; the real exposure is the "
        f"irqs-off window of a wrap, {doc['irqs_off_max_cycles']} cycles "
        f"({doc['irqs_off_max_us']} us).")
    out(f"\nemu demo finished in {time.perf_counter() - t0:.1f} s. Next: emu race, "
        f"emu profile --cpu feroceon, emu replay <token>, emu scenario i --toml.")
    return 0
