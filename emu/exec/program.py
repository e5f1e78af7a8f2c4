"""Task programs: a scenario's list of operations, interpreted as the bottom frame of a task.

Each operation is a row of ``PW`` words: an opcode (``P_*``) and ``NARGS`` arguments, each an
immediate plus, optionally, the result of an earlier operation of the same program (so a
``write`` can go through the address ``kmap`` returned). Kernel operations push the routine
and store its return value in the program's register for that row.

An argument is checked when the operation runs (:func:`bad_op_arg`; a result plus a constant
can land anywhere), so no value reaches a routine that would index outside the machine;
``Loaded`` checks the constant ones when it loads the scenario.
"""

from .. import consts as K
from .._jit import inline, njit
from ..dma.engine import device_read, device_write
from ..dma.mapping import dma_map_page_bad_arg
from .frames import bug, ctx_rec, fail, push
from .trace import trace


#: What each argument of a row means (``ARG_NAMES[op][k]``; None: a data-pool offset).
ARG_NAMES = {
    "kmap": ("pfn",), "kunmap": ("pfn",), "kmap_high": ("pfn",), "kunmap_high": ("pfn",),
    "kmap_high_get": ("pfn",), "kmap_flush_unused": (), "read": ("va", "n"),
    "write": ("va", "n"), "dma_map_page": ("pfn", "offset", "size", "direction"),
    "dma_unmap_page": ("dma_addr", "size", "direction"),
    "dma_sync_single_for_cpu": ("dma_addr", "size", "direction"),
    "dma_sync_single_for_device": ("dma_addr", "size", "direction"),
    "device_write": ("dma_addr", "n"), "device_read": ("dma_addr", "n"),
    "device_start": ("dma_addr", "n", "line", None, "cycles"), "wait_irq": ("line", "count"),
    "dma_map_sg": ("pfn", "offset", "length", "direction"),
    "dma_unmap_sg": ("dma_addr", "length", "direction"),
    "dma_sync_sg_for_cpu": ("dma_addr", "length", "direction"),
    "dma_sync_sg_for_device": ("dma_addr", "length", "direction"),
}


@inline
def _in_ram(S, addr, n):
    """``[addr, addr + n)`` non-empty and inside RAM (no sum here can overflow)."""
    ram = S[K.H_NPAGES] << K.PAGE_SHIFT
    return 0 <= addr <= ram and 0 < n <= ram - addr


@njit
def bad_op_arg(S, op, a0, a1, a2, a3, a4):
    """The first argument of program operation ``op`` that is out of range (its index), or -1.
    The ranges are the Machine API's for the same calls (see :func:`op_arg_accepts`)."""
    npages = S[K.H_NPAGES]
    if op == K.P_KMAP or op == K.P_KUNMAP:
        return -1 if 0 <= a0 < npages else 0
    if op == K.P_KMAP_HIGH or op == K.P_KUNMAP_HIGH or op == K.P_KMAP_HIGH_GET:
        return -1 if S[K.H_LOWMEM_PAGES] <= a0 < npages else 0
    if op == K.P_DMA_MAP_PAGE or op == K.P_DMA_MAP_SG:
        return dma_map_page_bad_arg(S, a0, a1, a2, a3)
    if op == K.P_DMA_UNMAP_PAGE or op == K.P_DMA_SYNC_SINGLE_FOR_CPU \
            or op == K.P_DMA_SYNC_SINGLE_FOR_DEVICE or op == K.P_DMA_UNMAP_SG \
            or op == K.P_DMA_SYNC_SG_FOR_CPU or op == K.P_DMA_SYNC_SG_FOR_DEVICE:
        if not _in_ram(S, a0, 1):
            return 0
        if not _in_ram(S, a0, a1):
            return 1
        return -1 if K.DMA_BIDIRECTIONAL <= a2 <= K.DMA_FROM_DEVICE else 2
    if op == K.P_DEVICE_WRITE or op == K.P_DEVICE_READ or op == K.P_DEVICE_START:
        if not _in_ram(S, a0, a1):
            return 0
        if op == K.P_DEVICE_START:
            if not 0 <= a2 < K.MAXIRQ:
                return 2
            return -1 if 0 <= a4 <= K.MAX_IRQ_TIME else 4     # as a timed line's first
        return -1
    if op == K.P_WAIT_IRQ:
        if not 0 <= a0 < K.MAXIRQ:
            return 0
        return -1 if a1 >= 1 else 1
    if op == K.P_READ or op == K.P_WRITE:       # an unmapped address faults as in the kernel;
        if not 0 <= a0 < K.ADDR_SPACE:          # one outside 32 bits is no address at all
            return 0
        return -1 if 0 <= a1 <= K.ADDR_SPACE - a0 else 1
    return -1                                   # kmap_flush_unused


def op_arg_accepts(S, kind, name):
    """What an argument of a program operation accepts, in words (for error messages).

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array (its RAM size and lowmem boundary).
    kind : str
        The operation (``"kmap_high"``, ``"read"``, ...).
    name : str
        The argument (``"pfn"``, ``"va"``, ``"n"``, ...).

    Returns
    -------
    str
    """
    npages, low = int(S[K.H_NPAGES]), int(S[K.H_LOWMEM_PAGES])
    ram = npages << K.PAGE_SHIFT
    if name == "pfn":
        if kind in ("kmap_high", "kunmap_high", "kmap_high_get"):
            return f"a highmem page frame number, in range({low}, {npages})"
        return f"a page frame number, in range(0, {npages})"
    if name == "dma_addr":
        return f"a bus address whose buffer lies inside RAM [0, {ram:#x})"
    if name == "va":
        return f"a kernel virtual address in [0, {K.ADDR_SPACE:#x})"
    if kind in ("read", "write"):
        return "a byte count with va + n inside the 32-bit address space"
    if name in ("size", "n", "length"):
        return f"a positive byte count whose buffer lies inside RAM [0, {ram:#x})"
    accepts = {"offset": "an offset >= 0 from the page's start that stays inside RAM",
               "direction": "0, 1 or 2 (BIDIRECTIONAL, TO_DEVICE, FROM_DEVICE)",
               "line": f"an IRQ line, 0..{K.MAXIRQ - 1}",
               "cycles": f"a delay in [0, {K.MAX_IRQ_TIME}] (2**48, as a timed line's first)",
               "count": "a number of interrupts >= 1"}
    return accepts.get(name, "a valid value")


def op_arg_message(S, kind, k, value):
    """``kind: name=value: must be ...`` for a bad argument of a program row.

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array.
    kind : str
        The operation.
    k : int
        The argument's position in ``ARG_NAMES[kind]``.
    value : int
        The value it had.

    Returns
    -------
    str
    """
    name = ARG_NAMES[kind][k]
    if kind in ("device_start", "wait_irq") and name == "line" and 0 <= value < K.MAXIRQ:
        # in range, so refused as it ran: no handler (a constant line is checked at load)
        base = int(S[K.H_R_IRQ])
        return no_handler_message(kind, value, [x for x in range(K.MAXIRQ)
                                                if S[base + x * K.IRQ_W + K.IRQ_CTX] >= 0])
    shown = f"{value:#x}" if name in ("dma_addr", "va") else f"{value}"
    return f"{kind}: {name}={shown}: must be {op_arg_accepts(S, kind, name)}"


def no_handler_message(kind, line, lines):
    """Why a ``device_start`` or ``wait_irq`` on a line no handler is on cannot work.

    Parameters
    ----------
    kind : str
        ``"device_start"`` or ``"wait_irq"``.
    line : int
        The line.
    lines : iterable of int
        The handlers' lines.

    Returns
    -------
    str
    """
    return (f"{kind}: line={line}: no [[irq]] handles line {line}, so it is never raised ("
            + ("the device would never write and raise it" if kind == "device_start" else
               "the wait would never end")
            + "; handlers' lines: " + (", ".join(map(str, sorted(lines))) or "none") + ")")


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
        trace(S, K.T_OP, i, 0)              # the readable trace names the op it starts
        a0 = prog_arg(S, cr, row, 0)
        a1 = prog_arg(S, cr, row, 1)
        a2 = prog_arg(S, cr, row, 2)
        a3 = prog_arg(S, cr, row, 3)
        a4 = prog_arg(S, cr, row, 4)
        k = bad_op_arg(S, op, a0, a1, a2, a3, a4)
        if k >= 0:
            v = (a0, a1, a2, a3, a4)[k]
            return fail(S, K.ERR_BAD_ARG, (row - S[K.H_R_PROG]) // K.PW, k, v, 0)
        r = K.PROG2ROUTINE[op]
        if r >= 0:
            if op == K.P_READ or op == K.P_WRITE:
                a3 = 0                              # the access cursor
            elif op == K.P_DMA_MAP_SG:              # an sg entry, for dma-debug
                a3 |= K.DMA_FLAG_SG
            elif op == K.P_DMA_UNMAP_SG:
                a2 |= K.DMA_FLAG_SG
            elif op == K.P_DMA_SYNC_SG_FOR_DEVICE:
                a3 = 1                              # maintained by page (spec 3.5)
            S[f + K.F_A1] = 1
            push(S, c, r, a0, a1, a2, a3)
            return K.ST_CALL
        if op == K.P_DEVICE_WRITE:
            device_write(S, B, a0, B, a2, a1)
        elif op == K.P_DEVICE_READ:
            device_read(S, B, a0, B, a2, a1)
        elif op == K.P_DEVICE_START:
            # the device will write a1 bytes from B[a3:] at bus address a0 and raise line a2,
            # a4 cycles from now (timed runs) or whenever a schedule has the device complete;
            # the line's own firings (count, first, period) are left as they are
            ir = S[K.H_R_IRQ] + a2 * K.IRQ_W
            if S[ir + K.IRQ_CTX] < 0:               # a line from a result, with no handler:
                return fail(S, K.ERR_BAD_ARG, (row - S[K.H_R_PROG]) // K.PW, 2, a2, 0)
            if S[ir + K.IRQ_XFER_LEN] > 0:          # one transfer in flight per line
                return fail(S, K.ERR_DEVICE_BUSY, (row - S[K.H_R_PROG]) // K.PW, a2,
                            S[ir + K.IRQ_XFER_ADDR], S[ir + K.IRQ_XFER_LEN])
            if S[K.H_NOW] + a4 > K.MAX_TIMED_CLOCK:     # the due clock would wrap negative
                return fail(S, K.ERR_CLOCK_END, (row - S[K.H_R_PROG]) // K.PW, a2, S[K.H_NOW],
                            a4)
            S[ir + K.IRQ_XFER_ADDR] = a0
            S[ir + K.IRQ_XFER_LEN] = a1
            S[ir + K.IRQ_XFER_SRC] = a3
            S[ir + K.IRQ_XFER_DUE] = S[K.H_NOW] + a4
            S[ir + K.IRQ_XFER_CPU] = S[K.H_CUR_CPU]
            S[K.H_XFERS] += 1
            trace(S, K.T_DMA_START, a0, a1)
        elif op == K.P_WAIT_IRQ:
            ir = S[K.H_R_IRQ] + a0 * K.IRQ_W
            if S[ir + K.IRQ_CTX] < 0:               # a line from a result, with no handler:
                return fail(S, K.ERR_BAD_ARG, (row - S[K.H_R_PROG]) // K.PW, 0, a0, 0)
            if S[ir + K.IRQ_DONE] < a1:
                if S[cr + K.CTX_KIND] == K.KIND_IRQ:
                    # schedule() from a handler, as kmap_high's sleep there: kernel/sched.c's
                    # schedule_debug() reports "BUG: scheduling while atomic"
                    return bug(S, K.BUG_WAIT_IRQ_ATOMIC, a0, a1, S[ir + K.IRQ_DONE])
                S[cr + K.CTX_STATE] = K.CTX_WAIT_IRQ
                S[cr + K.CTX_WAIT_LINE] = a0
                S[cr + K.CTX_WAIT_COUNT] = a1
                return K.ST_SLEEP
        S[S[cr + K.CTX_REGS] + i] = 0
        S[f + K.F_A0] = i + 1
        return K.ST_YIELD
