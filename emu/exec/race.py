"""``emu race``: explore every built-in scenario and variant, report data loss and deadlocks."""

import time
from dataclasses import asdict, dataclass

from .builtin import all_variants
from .explore import explore


@dataclass
class RaceResult:
    """One row of ``emu race`` (the JSON fields of API.md, plus a few more)."""

    scenario: str
    dma_pinning: str
    kmap_high_get: bool
    ncpus: int
    last_pkmap: int
    data_lost: bool
    lost_bytes: int
    deadlock: bool
    schedules_explored: int
    complete: bool
    seconds: float
    minimal_schedule: list
    preemptions: int
    replay: str
    lockdep: bool
    name: str

    def to_json(self):
        """The JSON row: deterministic for the same inputs, so wall-clock time is left out."""
        d = asdict(self)
        del d["seconds"]
        return d


def run_race(bound=2, sizes=(8, 512), smp_sizes=(8,), max_schedules=None, progress=False,
             only=None):
    """Explore each built-in variant with preemption bound ``bound``.

    Returns a list of :class:`RaceResult`, in the order of ``emu race``'s table.
    """
    out = []
    for sid, sc in all_variants(sizes, smp_sizes):
        if only and sid not in only:
            continue
        t0 = time.perf_counter()
        ex = explore(sc, bound=bound, max_schedules=max_schedules, progress=progress)
        out.append(race_result(sid, sc, ex, time.perf_counter() - t0))
    return out


def race_result(sid, sc, ex, seconds):
    """The :class:`RaceResult` of built-in scenario ``sid`` (``sc``) explored as ``ex``."""
    mc = sc.machine
    best = ex.minimal
    return RaceResult(
        scenario=sid, dma_pinning=mc["dma_pinning"], kmap_high_get=mc["kmap_high_get"],
        ncpus=mc.get("ncpus", 1), last_pkmap=mc["last_pkmap"], data_lost=ex.data_lost,
        lost_bytes=ex.max_lost_bytes, deadlock=ex.deadlocks > 0,
        schedules_explored=ex.schedules, complete=ex.complete, seconds=round(seconds, 3),
        minimal_schedule=ex.switches if best else [],
        preemptions=best.preemptions if best else 0, replay=ex.replay,
        lockdep=bool(ex.lockdep), name=sc.name)
