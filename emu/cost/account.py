"""Micro-op accounting: the only thing a kernel routine does about cost.

A routine records what it executed (``uop(S, UOP_IRQ_DISABLE, 1)``); the core's cost table
(header slots ``H_COST + u``) turns that into cycles on the running CPU's clock ``H_NOW``.
Routines never contain cycle numbers. Counts go to the row of the running site (routine) and
context kind, whose offset ``H_UOPCUR`` is kept current by :func:`set_site` / :func:`set_kind`,
so recording one micro-op is two read-modify-writes.
"""

from .. import consts as K
from .._jit import tiny


@tiny
def uop(S, u, n):
    """Record ``n`` micro-ops of kind ``u`` for the running site and context kind."""
    S[S[K.H_UOPCUR] + u] += n
    S[K.H_NOW] += n * S[K.H_COST + u]


@tiny
def loop_back(S, n, ended):
    """The backward branches of ``n`` passes of a bottom-tested loop (``...; blo 1b``): taken
    each time, except the last pass's when the loop ``ended`` here (it falls through:
    ``branch_nt``, spec §2.1 branch_not_taken)."""
    if ended and n > 0:
        uop(S, K.UOP_BRANCH_NT, 1)
        n -= 1
    uop(S, K.UOP_BRANCH, n)


@tiny
def uops4(S, load, alu, store, branch):
    """:func:`uop` of a load/ALU/store/branch mix at once (one clock update)."""
    r = S[K.H_UOPCUR]
    S[r + K.UOP_LOAD] += load
    S[r + K.UOP_ALU] += alu
    S[r + K.UOP_STORE] += store
    S[r + K.UOP_BRANCH] += branch
    S[K.H_NOW] += (load * S[K.H_COST + K.UOP_LOAD] + alu * S[K.H_COST + K.UOP_ALU]
                   + store * S[K.H_COST + K.UOP_STORE] + branch * S[K.H_COST + K.UOP_BRANCH])


@tiny
def idle_until(S, t):
    """The running CPU has nothing to run until clock ``t``: its clock catches up, and the
    cycles go to the idle count (no micro-op: nothing executes)."""
    d = t - S[K.H_NOW]
    if d > 0:
        S[S[K.H_R_UOPS] + K.ACC_IDLE_N] += 1
        S[S[K.H_R_UOPS] + K.ACC_IDLE_CYCLES] += d
        S[K.H_NOW] = t


@tiny
def _row(S):
    S[K.H_UOPCUR] = S[K.H_R_UOPS] + (S[K.H_CUR_SITE] * K.NKINDS + S[K.H_CUR_KIND]) * K.NUOPS


@tiny
def set_site(S, site):
    """Charge what follows to ``site``."""
    S[K.H_CUR_SITE] = site
    _row(S)


@tiny
def set_kind(S, kind):
    """The running context is a task (``KIND_TASK``) or an IRQ handler (``KIND_IRQ``)."""
    S[K.H_CUR_KIND] = kind
    _row(S)


@tiny
def enter_site(S, site):
    """Charge what follows to ``site``; returns the previous site for :func:`leave_site`."""
    prev = S[K.H_CUR_SITE]
    set_site(S, site)
    return prev


@tiny
def leave_site(S, prev):
    set_site(S, prev)


def add_regions(layout):
    """Reserve the accounting region every state array carries; counts start at site 0.

    Parameters
    ----------
    layout : emu.layout.Layout
        The layout being built.
    """
    off = layout.s_region(K.H_R_UOPS, K.ACC_W)
    layout.param(K.H_UOPCUR, off)


def uop_counts(S):
    """The micro-op counts of machine arrays ``S``.

    Parameters
    ----------
    S : numpy.ndarray
        A machine's int64 state array.

    Returns
    -------
    numpy.ndarray
        A view shaped ``[site][kind][uop]`` (``NSITES``, ``NKINDS``, ``NUOPS``).
    """
    off = int(S[K.H_R_UOPS])
    return S[off:off + K.ACC_IDLE_N].reshape(K.NSITES, K.NKINDS, K.NUOPS)


def idle_counts(S):
    """The time the CPUs spent idle (see :func:`idle_until`).

    Parameters
    ----------
    S : numpy.ndarray
        A machine's int64 state array.

    Returns
    -------
    tuple of int
        ``(periods, cycles)``.
    """
    off = int(S[K.H_R_UOPS])
    return int(S[off + K.ACC_IDLE_N]), int(S[off + K.ACC_IDLE_CYCLES])
