"""Reserving and initialising the cache's part of the machine arrays."""

from .. import consts as K
from ..rng import seed_state

#: Discarded dirty lines kept for the oracle before the oldest are counted but not stored.
DEFAULT_EVENT_CAPACITY = 4096
#: A standalone Cache's ``events`` at most (an event holds 64 bytes and a line of data).
MAX_EVENT_CAPACITY = 1 << 24


def add_cache(layout, cfg, seed=0):
    """Reserve the regions of a cache in a state layout and set its header parameters.

    Parameters
    ----------
    layout : emu.layout.Layout
        The layout being built.
    cfg : CacheConfig
        The cache's geometry and policies.
    seed : int
        Seed of the random replacement policy's generator.
    """
    p = layout.param
    p(K.H_C_NSETS, cfg.nsets)
    p(K.H_C_WAYS, cfg.ways)
    p(K.H_C_LSHIFT, cfg.line.bit_length() - 1)
    p(K.H_C_LINE, cfg.line)
    p(K.H_C_SETMASK, cfg.nsets - 1)
    p(K.H_C_REPL, cfg.repl_id)
    p(K.H_C_WB, int(cfg.write_back))
    p(K.H_C_WA, int(cfg.write_allocate))
    p(K.H_C_STYLE, cfg.style_id)
    p(K.H_C_DGSHIFT, cfg.dirty_granule.bit_length() - 1)
    p(K.H_C_NLINES, cfg.nlines)
    p(K.H_C_WIN_VA, cfg.window)
    p(K.H_C_WIN_SIZE, cfg.size)
    p(K.H_C_RNG, seed_state(seed, 0x2545F4914F6CDD1D))
    # TAG, LPA, DIRTY and STAMP in this order, then RR: restores copy [H_R_TAG, H_R_RR) by line
    layout.s_region(K.H_R_TAG, cfg.nlines, fill=K.TAG_INVALID)
    layout.s_region(K.H_R_LPA, cfg.nlines, fill=K.NO_PA)
    layout.s_region(K.H_R_DIRTY, cfg.nlines)
    layout.s_region(K.H_R_STAMP, cfg.nlines)
    layout.s_region(K.H_R_RR, cfg.nsets)
    layout.s_region(K.H_R_CSTAT, K.NCSTAT)
    layout.b_region(K.H_B_CDATA, cfg.nlines * cfg.line)
    layout.b_region(K.H_B_CMARK, cfg.nlines)
    layout.param(K.H_DMA_LO, -1)
    layout.param(K.H_DMA_HI, -1)


def add_events(layout, cfg, event_capacity=DEFAULT_EVENT_CAPACITY):
    """Reserve the discard event log (a tail region: call after every other ``S`` region).

    Parameters
    ----------
    layout : emu.layout.Layout
        The layout being built.
    cfg : CacheConfig
        The cache (each event keeps one line of dropped data).
    event_capacity : int
        Events the log holds; later ones are counted, not kept.
    """
    ev = layout.s_region(K.H_R_EV, K.EV_HDR + event_capacity * K.EV_W)
    layout.s_fill.append((ev + K.EV_CAP, 1, event_capacity))
    layout.b_region(K.H_B_EVDATA, event_capacity * cfg.line)

