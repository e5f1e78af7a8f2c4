"""Compile every kernel once, saying so if it takes a while.

The first run of emu on a machine compiles its numba kernels (about a minute); the compiled
code is cached on disk, so later runs start in about a second. Commands call :func:`warmup`
up front so the compile happens in one visible place rather than inside a measurement.
"""

from ._jit import compile_notice

_done = []


def warmup():
    """Run a tiny workload through every kernel (no-op after the first call)."""
    if _done:
        return
    with compile_notice():
        from . import consts as K
        from .exec.builtin import irq_getter, race
        from .exec.explore import explore, run_random
        from .machine import Machine
        m = Machine(lowmem_mb=0.25, highmem_mb=1, last_pkmap=4)
        hp = m.highmem_pfns[0]
        v = m.kmap(hp)
        m.write(v, b"emu")
        m.read(v, 3)
        m.kunmap(hp)
        m.kmap_high_get(hp)
        m.kunmap_high(hp)
        m.kmap_flush_unused()
        h = m.dma_map_page(hp, 0, 64, K.DMA_FROM_DEVICE)
        m.device.write(h, b"x")
        m.dma_sync_single_for_cpu(h, 64, K.DMA_FROM_DEVICE)
        m.dma_unmap_page(h, 64, K.DMA_FROM_DEVICE)
        m.cache.flush_all()
        m.check_integrity()
        explore(race(4, 1, "page_address"), bound=1, max_schedules=3)
        explore(irq_getter(False, 4), bound=1, max_schedules=3)
        run_random(race(4, 2, "kmap_high_get"), seed=1)
    _done.append(True)
