"""Contexts and their frame stacks: what makes kernel routines resumable.

A context (a task, or an IRQ handler invocation) owns a stack of frames. A frame is one
routine's activation: its routine id, the resume point ``F_PC``, lock-acquisition progress
and a few argument/local slots. A routine's step function runs from ``F_PC`` to its next
scheduling point and says what happened (``ST_*``); the context runner in
:mod:`emu.exec.core` pops, pushes and dispatches.
"""

from .. import consts as K
from .._jit import inline, tiny
from .trace import trace


@tiny
def ctx_rec(S, c):
    """Offset of context ``c``'s record in ``S``."""
    return S[K.H_R_CTX] + c * K.CTX_W


@tiny
def push(S, c, routine, a0, a1, a2, a3):
    """Call ``routine`` from context ``c`` (the runner starts it right away).

    Returns the new frame's offset, or -1 if the stack is full (an emu limit, MAXDEPTH).
    """
    cr = ctx_rec(S, c)
    sp = S[cr + K.CTX_SP]
    if sp >= K.MAXDEPTH:
        return -1
    return push_at(S, cr, sp, routine, a0, a1, a2, a3)


@tiny
def push_at(S, cr, sp, routine, a0, a1, a2, a3):
    """:func:`push` onto context record ``cr`` whose stack depth the caller knows is ``sp``."""
    f = cr + K.CTX_FRAMES + sp * K.FW
    S[f + K.F_ROUTINE] = routine
    S[f + K.F_PC] = 0
    S[f + K.F_LOCKST] = K.LOCKST_IDLE
    S[f + K.F_FLAGS] = 0
    S[f + K.F_SPIN_AT] = 0
    S[f + K.F_A0] = a0
    S[f + K.F_A1] = a1
    S[f + K.F_A2] = a2
    S[f + K.F_A3] = a3
    S[f + K.F_A7] = 0
    S[f + K.F_A8] = 0
    if S[K.H_PROFILE]:
        S[f + K.F_T0] = ctx_cycles_now(S, cr)
        trace(S, K.T_CALL, routine, a0)
    S[cr + K.CTX_SP] = sp + 1
    return f


@tiny
def ctx_cycles_now(S, cr):
    """Cycles context ``cr`` has run so far, including the running step."""
    if ctx_rec(S, S[K.H_CUR_CTX]) == cr:
        return S[cr + K.CTX_CYCLES] + S[K.H_NOW] - S[K.H_STEP_T0]
    return S[cr + K.CTX_CYCLES]


@tiny
def routine_returned(S, cr, f):
    """Account a routine's inclusive cycles (its own context's, IRQs and other tasks
    excluded) when its frame returns; an IRQ handler's calls have records of their own."""
    if S[K.H_PROFILE] == 0:
        return
    r = S[f + K.F_ROUTINE]
    d = ctx_cycles_now(S, cr) - S[f + K.F_T0]
    p = S[K.H_R_PROFR] + r * K.PR_W
    if S[cr + K.CTX_IRQ_LINE] >= 0:
        p += K.PR_IRQ
    S[p + K.PR_CALLS] += 1
    S[p + K.PR_TOTAL] += d
    if S[p + K.PR_CALLS] == 1 or d < S[p + K.PR_MIN]:
        S[p + K.PR_MIN] = d
    if d > S[p + K.PR_MAX]:
        S[p + K.PR_MAX] = d
    trace(S, K.T_RET, r, d)


@tiny
def set_ret(S, c, value):
    S[ctx_rec(S, c) + K.CTX_RET] = value


@tiny
def yield_same(S):
    """``ST_YIELD`` from a step that only went on with a line loop (one more cache line or
    piece of an access, no lock, sleep or IRQ change): the executor keeps the last
    scheduling point's alternatives instead of listing them again."""
    S[K.H_SAME_SET] = 1
    return K.ST_YIELD


@tiny
def steps_passed(S, k):
    """The running context went on through ``k`` more scheduling points that ``sched.run``
    let it pass (``H_BATCH``): each is a step (``run_step``'s counts; ``H_STEP`` is the
    caller's, as it must be current during the step)."""
    S[K.H_BATCH] -= k
    S[K.H_BATCHED] += k
    S[ctx_rec(S, S[K.H_CUR_CTX]) + K.CTX_STEPS] += k


@inline
def fail(S, code, a, b, c, d):
    """Record an error for Python to raise; the routine then returns ``ST_ERROR``."""
    S[K.H_ERR] = code
    S[K.H_ERR_A] = a
    S[K.H_ERR_B] = b
    S[K.H_ERR_C] = c
    S[K.H_ERR_D] = d
    return K.ST_ERROR


@inline
def bug(S, which, a, b, c):
    """A kernel ``BUG()``; the routine must already have undone its changes."""
    return fail(S, K.ERR_BUG, which, a, b, c)
