"""The built-in scenarios of ``emu race``: the 2009 highmem DMA race and its fix.

(i)   UP: task ``dma`` runs ``dma_map_page(DMA_FROM_DEVICE)`` on a lazily-mapped highmem page
      (pkmap count 1) while task ``writer`` maps another page. The setup leaves every other
      slot pinned and the cursor where the writer's ``kmap_high`` wraps, so
      ``flush_all_zero_pkmaps`` frees the DMA page's slot and hands the same virtual address to
      the writer's page, which it then dirties (read, then write: ARM926 allocates on read
      misses only). With ``dma_pinning="page_address"`` an invalidate loop preempted before
      those lines discards the writer's data; with ``"kmap_high_get"`` the slot stays pinned
      and the writer sleeps until the loop is done.
(ii)  SMP: the setup and tasks of (i) on two CPUs (``dma`` on CPU0 maps the lazily-mapped
      page for DMA_FROM_DEVICE; ``writer`` on CPU1 wraps the window and recycles that page's
      slot), with no preemption: the CPUs interleave. With ``"page_address"`` the invalidate
      loop on CPU0 can discard what the writer dirties through the recycled address; with
      ``"kmap_high_get"`` the slot stays pinned while the loop runs.
(iii) ``kmap_high_get`` from an IRQ handler (a driver mapping a buffer for DMA in its
      interrupt handler) while a task uses ``kmap``: with plain ``spin_lock`` (the non-ARM
      configuration, kmap_high_get compiled in anyway) an IRQ taken while the task holds
      ``kmap_lock`` deadlocks; with the IRQ-disabling locks of ARCH_NEEDS_KMAP_HIGH_GET it
      cannot happen.
"""

from .. import consts as K
from .._args import check_bool, check_choice, check_int
from ..mm.memmap import MemoryMap
from .scenario import Scenario

SCENARIO_IDS = ("i", "ii", "iii")      #: the built-in scenarios, as ``emu race`` names them
DMA_PAGE = 300          # highmem page the device writes (lowmem is pages 0..255)
WRITER_PAGE = 1200
PIN_BASE = 301          # pages that keep the other pkmap slots busy
FILL_OFFSET = 2048      # where the writer dirties its page (mid-page: the loop has not got there)


def _description(sid):
    """The module docstring's first line and its paragraph on scenario ``sid``."""
    head, _, rest = __doc__.partition("\n\n")
    marks = [f"({x})" for x in SCENARIO_IDS]
    i = marks.index(f"({sid})")
    part = rest[rest.index(marks[i]):rest.index(marks[i + 1]) if i + 1 < len(marks) else None]
    return f"{head.strip()}\n\n{part.strip()}"


def _pinned_setup(last_pkmap):
    """Slot 1 lazily maps DMA_PAGE (count 1, with dirty lines of its user); every other slot
    is pinned (count 2); the cursor is at 0, so the next new mapping scans 1..L-1, wraps,
    flushes, and takes slot 1."""
    pin = [{"op": "kmap", "pfn": PIN_BASE, "repeat": last_pkmap - 2}]     # slots 2..L-1
    return [
        {"op": "kmap", "pfn": DMA_PAGE, "as": "buf"},                        # slot 1
        {"op": "fill", "va": "buf", "byte": 0x11, "n": 256},                 # its user wrote
        *(pin if last_pkmap > 2 else []),
        {"op": "kmap", "pfn": PIN_BASE + last_pkmap - 2},                    # wraps: slot 0
        {"op": "kunmap", "pfn": DMA_PAGE},                                   # count 1: lazy
    ]


def writer_page(last_pkmap):
    """The writer's page in scenarios (i)/(ii): ``WRITER_PAGE``, or past the pinned pages of a
    window above 512 slots.

    Parameters
    ----------
    last_pkmap : int
        LAST_PKMAP.

    Returns
    -------
    int
        A highmem pfn.
    """
    return max(WRITER_PAGE, PIN_BASE + last_pkmap + 64)


def _highmem_mb(last_pkmap):
    """4 MiB, or room for the writer's page and the one after it (lowmem is 1 MiB)."""
    return max(4, -(-(writer_page(last_pkmap) + 2) // 256) - 1)


def _check_last_pkmap(last_pkmap):
    """The machine's own check, run now: a bad value is reported before a scenario is built."""
    MemoryMap(lowmem_mb=1, highmem_mb=4, last_pkmap=last_pkmap)


def race(last_pkmap=8, ncpus=1, dma_pinning="page_address"):
    """Built-in scenario (i) (``ncpus=1``) or (ii) (``ncpus=2``): ``dma_map_page(DMA_FROM_DEVICE)``
    on a lazily-mapped highmem page against a task whose ``kmap_high`` wraps the pkmap cursor.

    Parameters
    ----------
    last_pkmap : int
        LAST_PKMAP, a power of two in ``[2, 4096]``.
    ncpus : int
        1: scenario (i), the writer preempts the DMA task; 2: scenario (ii), no preemption,
        the writer on the other CPU.
    dma_pinning : {"page_address", "kmap_high_get"}
        How the DMA layer finds (and pins) the page's mapping: the racy ``page_address()``, or
        the seed patch's ``kmap_high_get()``.

    Returns
    -------
    Scenario
    """
    _check_last_pkmap(last_pkmap)
    ncpus = check_int("ncpus", ncpus, 1, K.MAXCPUS)
    check_choice("dma_pinning", dma_pinning, K.PIN_NAMES)
    khg = dma_pinning == "kmap_high_get"
    sid = "i" if ncpus == 1 else "ii"
    sc = Scenario(
        name=f"{sid}: dma_map_page vs kmap_high ({'UP' if ncpus == 1 else f'{ncpus} CPUs'}, "
             f"LAST_PKMAP {last_pkmap}, {dma_pinning})",
        machine={"last_pkmap": last_pkmap, "lowmem_mb": 1,
                 "highmem_mb": _highmem_mb(last_pkmap), "ncpus": ncpus,
                 "kmap_high_get": khg, "dma_pinning": dma_pinning},
        setup=_pinned_setup(last_pkmap),
        description=_description(sid),
        builtin=["race", last_pkmap, ncpus, dma_pinning],
    )
    sc.task("dma", [
        {"op": "dma_map_page", "pfn": DMA_PAGE, "offset": 0, "size": 4096,
         "direction": "FROM_DEVICE", "as": "h"},
        {"op": "device_write", "dma_addr": "h", "byte": 0xD0, "n": 4096},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 4096, "direction": "FROM_DEVICE"},
    ], cpu=0)
    wp = writer_page(last_pkmap)
    sc.task("writer", [
        {"op": "kmap_high", "pfn": wp, "as": "v"},
        {"op": "fill", "va": f"v+{FILL_OFFSET}", "byte": 0xAB, "n": 128},
        {"op": "kunmap_high", "pfn": wp},
    ], cpu=ncpus - 1)
    return sc


def irq_getter(kmap_high_get=True, last_pkmap=8):
    """Built-in scenario (iii): ``kmap_high_get()`` in an IRQ handler.

    Parameters
    ----------
    kmap_high_get : bool
        True: kmap_lock taken with IRQs disabled (``ARCH_NEEDS_KMAP_HIGH_GET``); False: plain
        ``spin_lock``, which an IRQ landing while kmap_lock is held deadlocks.
    last_pkmap : int
        LAST_PKMAP, a power of two in ``[2, 4096]``.

    Returns
    -------
    Scenario
    """
    kmap_high_get = check_bool("kmap_high_get", kmap_high_get)
    _check_last_pkmap(last_pkmap)
    sc = Scenario(
        name=f"iii: kmap_high_get from an IRQ handler "
             f"({'irq-disabling kmap_lock' if kmap_high_get else 'plain spin_lock kmap_lock'})",
        machine={"last_pkmap": last_pkmap, "lowmem_mb": 1, "highmem_mb": 4,
                 "kmap_high_get": kmap_high_get, "dma_pinning": "kmap_high_get",
                 "force_kmap_high_get": not kmap_high_get},
        setup=[{"op": "kmap", "pfn": DMA_PAGE}, {"op": "kunmap", "pfn": DMA_PAGE}],
        description=_description("iii"),
        builtin=["irq_getter", kmap_high_get, last_pkmap],
    )
    sc.task("worker", [
        {"op": "kmap_high", "pfn": WRITER_PAGE},
        {"op": "kunmap_high", "pfn": WRITER_PAGE},
        {"op": "kmap_high", "pfn": WRITER_PAGE + 1},
        {"op": "kunmap_high", "pfn": WRITER_PAGE + 1},
    ])
    sc.irq("nic", [
        {"op": "dma_map_page", "pfn": DMA_PAGE, "offset": 0, "size": 4096,
         "direction": "FROM_DEVICE", "as": "h"},
        {"op": "dma_unmap_page", "dma_addr": "h", "size": 4096, "direction": "FROM_DEVICE"},
    ], line=0, cpu=0, count=1)
    return sc


def from_builtin(ref):
    """The built-in scenario a replay token names.

    Parameters
    ----------
    ref : list
        ``[builder, args...]``: ``["race", last_pkmap, ncpus, dma_pinning]`` or
        ``["irq_getter", kmap_high_get, last_pkmap]``.

    Returns
    -------
    Scenario

    Raises
    ------
    ValueError
        ``ref`` names no built-in scenario, or its arguments are not the builder's.
    """
    builders = {"race": (race, (int, int, str)), "irq_getter": (irq_getter, (bool, int))}
    if not isinstance(ref, list) or not ref or ref[0] not in builders:
        raise ValueError(f"token: unknown built-in scenario {ref!r}")
    fn, types = builders[ref[0]]
    args = ref[1:]
    if len(args) != len(types) or not all(isinstance(x, t) for x, t in zip(args, types)):
        raise ValueError(f"token: bad arguments for built-in scenario {ref!r}")
    return fn(*args)


def all_variants(sizes=(8, 512), smp_sizes=(8,)):
    """Every row of ``emu race``.

    Parameters
    ----------
    sizes : sequence of int
        LAST_PKMAP values of scenario (i).
    smp_sizes : sequence of int
        LAST_PKMAP values of scenario (ii).

    Returns
    -------
    list of tuple
        ``(scenario id, Scenario)``, in the table's order.
    """
    out = []
    for L in sizes:
        for pin in ("page_address", "kmap_high_get"):
            out.append(("i", race(L, 1, pin)))
    for L in smp_sizes:
        for pin in ("page_address", "kmap_high_get"):
            out.append(("ii", race(L, 2, pin)))
    for khg in (False, True):
        out.append(("iii", irq_getter(khg)))
    return out
