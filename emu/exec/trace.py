"""The event trace: what happened, when, on which CPU and context.

Off by default (one header test per event); replays and profiles switch it on. Readable
traces (``emu replay``) and the Chrome trace export (``emu profile --trace``) read it.
"""

from .. import consts as K
from .._jit import tiny


@tiny
def trace(S, kind, a, b):
    """Append event ``kind`` with arguments ``a``, ``b`` if tracing is on."""
    t = S[K.H_R_TRACE]
    if S[t + K.TR_ON] == 0:
        return
    n = S[t + K.TR_COUNT]
    S[t + K.TR_COUNT] = n + 1
    if n >= S[t + K.TR_CAP]:
        return
    r = t + K.TR_HDR + n * K.TR_W
    S[r + K.TE_KIND] = kind
    S[r + K.TE_CLOCK] = S[K.H_NOW]
    S[r + K.TE_CPU] = S[K.H_CUR_CPU]
    S[r + K.TE_CTX] = S[K.H_CUR_CTX]
    S[r + K.TE_A] = a
    S[r + K.TE_B] = b


def trace_counts(S):
    """How many events of the last traced run were kept and recorded.

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array.

    Returns
    -------
    tuple of int
        ``(kept, recorded)``: more are recorded than kept once the buffer filled (later ones
        are lost).
    """
    t = int(S[K.H_R_TRACE])
    n = int(S[t + K.TR_COUNT])
    return min(n, int(S[t + K.TR_CAP])), n


def trace_events(S):
    """The kept events of the last traced run.

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array.

    Returns
    -------
    list of tuple
        ``(kind, clock, cpu, ctx, a, b)`` of Python ints.
    """
    kept, _ = trace_counts(S)
    base = int(S[K.H_R_TRACE]) + K.TR_HDR
    rows = S[base:base + kept * K.TR_W].reshape(kept, K.TR_W)
    return [tuple(int(x) for x in r) for r in rows]
