"""``emu race``: explore every built-in scenario and variant, report data loss and deadlocks."""

import time
from dataclasses import asdict, dataclass

from .builtin import all_variants
from .explore import explore


@dataclass
class RaceResult:
    """One row of ``emu race`` (the JSON fields of API.md, plus a few more).

    Attributes
    ----------
    scenario : str
        ``"i"``, ``"ii"`` or ``"iii"``.
    dma_pinning : str
        ``"page_address"`` or ``"kmap_high_get"``.
    kmap_high_get : bool
        kmap_lock disables IRQs (``ARCH_NEEDS_KMAP_HIGH_GET``).
    ncpus, last_pkmap : int
        The machine's.
    data_lost : bool
        Some schedule lost data.
    lost_bytes : int
        The most any one schedule lost.
    deadlock : bool
        Some schedule deadlocked.
    schedules_explored : int
    complete : bool
        Every schedule within the bound ran.
    seconds : float
        Wall-clock time (left out of :meth:`to_json`).
    minimal_schedule : list of str
        The minimal failing schedule as switch directives; empty if none failed.
    preemptions : int
        Its preemptions.
    replay : str
        Its replay token, or ``""``.
    lockdep : bool
        A lockdep-style irq-safety report was made.
    name : str
        The scenario's full name.
    covered_bound : int
        Every schedule with at most this many preemptions ran: the bound when complete
        (-1 when a cap stopped it before every schedule without one); see
        :attr:`emu.exec.explore.Exploration.covered_bound`.
    """

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
    covered_bound: int = -1

    def to_json(self, capped=False):
        """The JSON row: deterministic for the same inputs, so wall-clock time is left out.

        Parameters
        ----------
        capped : bool
            The exploration had a cap (``max_schedules``): the row says up to which
            preemption count it covered (``covered_bound``); without one it is left out, the
            row as it always was.

        Returns
        -------
        dict
        """
        d = asdict(self)
        del d["seconds"]
        if not capped:
            del d["covered_bound"]
        return d


def run_race(bound=2, sizes=(8, 512), smp_sizes=(8,), max_schedules=None, progress=False,
             only=None):
    """Explore each built-in variant (``emu race``).

    Parameters
    ----------
    bound : int
        Preemption bound.
    sizes : sequence of int
        LAST_PKMAP values of scenario (i).
    smp_sizes : sequence of int
        LAST_PKMAP values of scenario (ii).
    max_schedules : int, optional
        Stop each exploration after this many schedules.
    progress : bool
        Show a progress bar.
    only : set of str, optional
        Scenario ids to run (``"i"``, ``"ii"``, ``"iii"``); default all.

    Returns
    -------
    list of RaceResult
        In the order of ``emu race``'s table.
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
    """The :class:`RaceResult` row of an explored built-in scenario.

    Parameters
    ----------
    sid : str
        Scenario id (``"i"``, ``"ii"``, ``"iii"``).
    sc : Scenario
    ex : Exploration
        What :func:`emu.exec.explore.explore` returned for ``sc``.
    seconds : float
        Wall-clock time of the exploration.

    Returns
    -------
    RaceResult
    """
    mc = sc.machine
    best = ex.minimal
    return RaceResult(
        scenario=sid, dma_pinning=mc["dma_pinning"], kmap_high_get=mc["kmap_high_get"],
        ncpus=mc.get("ncpus", 1), last_pkmap=mc["last_pkmap"], data_lost=ex.data_lost,
        lost_bytes=ex.max_lost_bytes, deadlock=ex.deadlocks > 0,
        schedules_explored=ex.schedules, complete=ex.complete, seconds=round(seconds, 3),
        minimal_schedule=ex.switches if best else [],
        preemptions=best.preemptions if best else 0, replay=ex.replay,
        lockdep=bool(ex.lockdep), name=sc.name, covered_bound=ex.covered_bound)
