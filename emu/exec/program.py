"""Task programs: a scenario's list of operations, interpreted as the bottom frame of a task.

Each operation is a row of ``PW`` words: an opcode (``P_*``) and ``NARGS`` arguments, each an
immediate plus, optionally, the result of an earlier operation of the same program (so a
``write`` can go through the address ``kmap`` returned). Kernel operations push the routine
and store its return value in the program's register for that row.
"""

from .. import consts as K
from .._jit import inline, njit
from ..dma.engine import device_read, device_write
from .frames import ctx_rec, push
from .trace import trace


@inline
def prog_arg(S, cr, row, k):
    """Argument ``k`` of program row ``row`` (immediate + referenced result)."""
    v = S[row + K.PO_A + k]
    ref = S[row + K.PO_REF + k]
    if ref >= 0:
        v += S[S[cr + K.CTX_REGS] + ref]
    return v


@njit
def program_step(S, B, c, f):
    """Run the program of context ``c``; ``F_A0`` = index of the next operation, ``F_A1`` = 1
    while that operation's routine is running."""
    cr = ctx_rec(S, c)
    while True:
        i = S[f + K.F_A0]
        if S[f + K.F_A1]:
            S[S[cr + K.CTX_REGS] + i] = S[cr + K.CTX_RET]
            S[f + K.F_A1] = 0
            i += 1
            S[f + K.F_A0] = i
        if i >= S[cr + K.CTX_PROG_LEN]:
            return K.ST_RET
        row = S[cr + K.CTX_PROG] + i * K.PW
        op = S[row + K.PO_OP]
        a0 = prog_arg(S, cr, row, 0)
        a1 = prog_arg(S, cr, row, 1)
        a2 = prog_arg(S, cr, row, 2)
        a3 = prog_arg(S, cr, row, 3)
        r = K.PROG2ROUTINE[op]
        if r >= 0:
            if op == K.P_READ or op == K.P_WRITE:
                a3 = 0                              # the access cursor
            S[f + K.F_A1] = 1
            push(S, c, r, a0, a1, a2, a3)
            return K.ST_CALL
        if op == K.P_DEVICE_WRITE:
            device_write(S, B, a0, B, a2, a1)
        elif op == K.P_DEVICE_READ:
            device_read(S, B, a0, B, a2, a1)
        elif op == K.P_DEVICE_START:
            # the device will write a1 bytes from B[a3:] at bus address a0 and raise line a2,
            # a4 cycles from now (timed runs) or whenever a schedule raises the line
            ir = S[K.H_R_IRQ] + a2 * K.IRQ_W
            S[ir + K.IRQ_XFER_ADDR] = a0
            S[ir + K.IRQ_XFER_LEN] = a1
            S[ir + K.IRQ_XFER_SRC] = a3
            S[ir + K.IRQ_DUE] = S[K.H_NOW] + prog_arg(S, cr, row, 4)
            S[ir + K.IRQ_PERIOD] = 0
            S[ir + K.IRQ_BUDGET] += 1
            trace(S, K.T_DMA_START, a0, a1)
        elif op == K.P_WAIT_IRQ:
            ir = S[K.H_R_IRQ] + a0 * K.IRQ_W
            if S[ir + K.IRQ_DONE] < a1:
                S[cr + K.CTX_STATE] = K.CTX_WAIT_IRQ
                S[cr + K.CTX_WAIT_LINE] = a0
                S[cr + K.CTX_WAIT_COUNT] = a1
                return K.ST_SLEEP
        S[S[cr + K.CTX_REGS] + i] = 0
        S[f + K.F_A0] = i + 1
        return K.ST_YIELD
