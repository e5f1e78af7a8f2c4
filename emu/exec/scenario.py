"""Scenarios: tasks and IRQ handlers, each a program of emu operations, on one machine.

A scenario is plain data (a dict, or a TOML file of the same shape), so it can be saved,
embedded in a replay token and loaded again::

    [machine]
    last_pkmap = 8
    dma_pinning = "page_address"

    [[setup]]                      # direct calls before any task runs
    op = "kmap"
    pfn = 300
    repeat = 3                     # pfn 300, 301, 302

    [[task]]
    name = "writer"
    cpu = 0
    ops = [
      { op = "kmap", pfn = 400, as = "v" },           # "v" names the result
      { op = "fill", va = "v", n = 64, byte = 0xAB },  # read, then write (dirty lines)
      { op = "kunmap", pfn = 400 },
    ]

    [[irq]]
    name = "nic"
    line = 0
    cpu = 0
    ops = [ { op = "dma_map_page", pfn = 500, size = 4096, direction = "FROM_DEVICE" } ]

An integer argument may be a name of an earlier result, optionally plus or minus a constant
(``"v+64"``). Data is ``data = "hex"`` or ``byte = N`` with ``n = LENGTH``. Scatter-gather ops
take ``sg = [[pfn, offset, length], ...]``; ``dma_map_sg``'s ``as = "s"`` names the entries'
dma addresses ``s``, ``s_1``, ``s_2``, ...::

    { op = "dma_map_sg", sg = [[300, 0, 4096], [301, 0, 4096]], direction = "FROM_DEVICE", as = "s" }
"""

import copy
import os
import re
import tomllib
from dataclasses import dataclass, field

import numpy as np

from .. import consts as K
from .._args import check_bool, check_int, is_int
from ..machine import MAX_BUFFER, Machine

# field kinds: "pfn", "int", "dir", "line", "data", "n"
OPS = {
    "kmap": ("pfn",),
    "kunmap": ("pfn",),
    "kmap_high": ("pfn",),
    "kunmap_high": ("pfn",),
    "kmap_high_get": ("pfn",),
    "kmap_flush_unused": (),
    "read": ("va", "n"),
    "write": ("va", "data"),
    "fill": ("va", "data"),
    "dma_map_page": ("pfn", "offset", "size", "direction"),
    "dma_unmap_page": ("dma_addr", "size", "direction"),
    "dma_sync_single_for_cpu": ("dma_addr", "size", "direction"),
    "dma_sync_single_for_device": ("dma_addr", "size", "direction"),
    "device_write": ("dma_addr", "data"),
    "device_read": ("dma_addr", "n"),
    "device_start": ("dma_addr", "data", "line", "cycles"),
    "wait_irq": ("line", "count"),
    "dma_map_sg": ("sg", "direction"),
    "dma_unmap_sg": ("sg", "direction"),
    "dma_sync_sg_for_cpu": ("sg", "direction"),
    "dma_sync_sg_for_device": ("sg", "direction"),
}
#: Ops whose result an ``as`` name can keep: an address or a DMA handle (``dma_map_sg``: one
#: per entry, named as ``repeat`` names its results: ``NAME``, ``NAME_1``, ``NAME_2``, ...).
RESULT_OPS = ("kmap", "kmap_high", "kmap_high_get", "dma_map_page", "dma_map_sg")
#: The scatter-gather ops: ``sg`` is a list of ``[pfn, offset, length]`` entries (ints), each
#: run as the page op (a program row) in turn.
SG_OPS = ("dma_map_sg", "dma_unmap_sg", "dma_sync_sg_for_cpu", "dma_sync_sg_for_device")
DEFAULTS = {"offset": 0, "size": K.PAGE_SIZE, "count": 1, "cycles": 1000}
_DIRS = {"BIDIRECTIONAL": 0, "DMA_BIDIRECTIONAL": 0, "TO_DEVICE": 1, "DMA_TO_DEVICE": 1,
         "FROM_DEVICE": 2, "DMA_FROM_DEVICE": 2}
_REF = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|\d+))?\s*$")
MACHINE_KEYS = ("cpu", "lowmem_mb", "highmem_mb", "last_pkmap", "kmap_high_get", "dma_pinning",
                "ncpus", "seed", "dma_api", "page_offset", "preempt", "oracle",
                "dma_debug_strict", "costs", "timeslice", "stats", "force_kmap_high_get")
#: Machine arguments whose default is None (``to_dict`` leaves a None out: same machine).
_NONE_DEFAULTS = ("dma_pinning", "costs")
TASK_KEYS = ("name", "cpu", "ops")                      #: the keys of a [[task]] table
IRQ_KEYS = ("name", "line", "cpu", "count", "period", "first", "ops")   #: of an [[irq]]


def _where(where, msg):
    return ValueError(f"{where}: {msg}")


def parse_value(v, names, where, name):
    """An int argument of an op: an int, or the name of an earlier op's result with an optional
    offset (``"v"``, ``"v+8"``).

    Parameters
    ----------
    v : int or str
        The value as written.
    names : dict
        The results named so far: name to result slot.
    where : str
        The op, for error messages.
    name : str
        The argument, for error messages.

    Returns
    -------
    tuple
        ``(value, slot)``: the int and -1, or the offset and the named result's slot.

    Raises
    ------
    ValueError
        ``v`` is neither (the message lists the names known).
    """
    if isinstance(v, (bool, np.bool_)):
        raise _where(where, f"{name}={v!r}: must be an int or the name of an earlier result")
    if is_int(v):
        return _int64(int(v), where, name), -1
    if isinstance(v, str):
        m = _REF.match(v)
        if m and m.group(1) in names:
            off = int(m.group(3), 0) if m.group(3) else 0
            if off >= K.ADDR_SPACE:             # a result (an address, a handle) plus this
                raise _where(where, f"{name}={v!r}: the offset must be below 2**32")
            return (-off if m.group(2) == "-" else off), names[m.group(1)]
        iv = _const_n(v)                        # a string of an int: that int
        if is_int(iv):
            return _int64(iv, where, name), -1
    raise _where(where, f"{name}={v!r}: must be an int or the name of an earlier result "
                        f"({', '.join(sorted(names)) or 'none yet'})")


def _int64(v, where, name):
    """``v`` if it fits the program's 64-bit words (the op's own range is checked later)."""
    if not -(1 << 63) <= v < 1 << 63:
        raise _where(where, f"{name}={v}: must fit in 64 bits (and in the op's range)")
    return v


def parse_direction(v, where):
    """A DMA direction, as ``valid_dma_direction()`` accepts it.

    Parameters
    ----------
    v : str or int
        ``"BIDIRECTIONAL"``, ``"TO_DEVICE"``, ``"FROM_DEVICE"`` (any case), or 0, 1, 2.
    where : str
        The op, for error messages.

    Returns
    -------
    int
        ``DMA_*``.
    """
    if isinstance(v, str) and v.upper() in _DIRS:
        return _DIRS[v.upper()]
    if is_int(v) and v in (0, 1, 2):
        return int(v)
    raise _where(where, f"direction={v!r}: not a valid DMA direction (valid_dma_direction() "
                        f"accepts BIDIRECTIONAL/0, TO_DEVICE/1, FROM_DEVICE/2)")


def parse_data(op, where):
    """The bytes an op writes.

    Parameters
    ----------
    op : dict
        An op with ``data`` (hex string or bytes) or ``byte`` and ``n`` (``n`` copies).
    where : str
        The op, for error messages.

    Returns
    -------
    bytes
    """
    if "data" in op:
        d = op["data"]
        if isinstance(d, (bytes, bytearray)):
            return bytes(d)
        if isinstance(d, str):
            try:
                return bytes.fromhex(d)
            except ValueError:
                raise _where(where, f"data={d!r}: must be a hex string") from None
        raise _where(where, f"data={d!r}: must be a hex string or bytes")
    if "byte" in op:
        b, n = op["byte"], _const_n(op.get("n"))
        if not is_int(b) or not 0 <= b <= 255:
            raise _where(where, f"byte={b!r}: must be an int 0..255")
        if n is None:                           # its range: expand() checked it
            raise _where(where, f"n={n!r}: byte = N needs n = LENGTH (bytes to write)")
        return bytes([int(b)]) * int(n)
    raise _where(where, f"{op.get('op', 'the op')} needs data = \"hex\" or byte = N with "
                        f"n = LENGTH")


def parse_sg(op, where):
    """The entries of a scatter-gather op (their ranges are the machine's, checked when the
    scenario loads).

    Parameters
    ----------
    op : dict
        An op with ``sg = [[pfn, offset, length], ...]``.
    where : str
        The op, for error messages.

    Returns
    -------
    list of tuple
        ``(pfn, offset, length)`` int triples.
    """
    sg = op.get("sg")
    if not isinstance(sg, (list, tuple)) or not 1 <= len(sg) <= K.MAX_REPEAT:
        raise _where(where, f"sg={sg!r}: {op['op']} needs sg = a list of 1 to "
                            f"{K.MAX_REPEAT} [pfn, offset, length] entries")
    out = []
    for i, e in enumerate(sg):
        if not (isinstance(e, (list, tuple)) and len(e) == 3 and all(map(is_int, e))
                and 0 <= e[0] < K.ADDR_SPACE >> K.PAGE_SHIFT and 0 <= e[1] < K.ADDR_SPACE
                and 0 < e[2] <= K.ADDR_SPACE):
            raise _where(where, f"sg[{i}]={e!r}: must be [pfn, offset, length]: ints, "
                                f"pfn and offset >= 0, length > 0 (and inside RAM)")
        out.append(tuple(int(x) for x in e))
    return out


def sg_names(name, n):
    """The names of a ``dma_map_sg``'s results.

    Parameters
    ----------
    name : str
        Its ``as``.
    n : int
        Its entries.

    Returns
    -------
    list of str
        ``name``, ``name_1``, ... ``name_{n-1}``.
    """
    return [name] + [f"{name}_{k}" for k in range(1, n)]


def expand(ops, where):
    """Normalise a list of op dicts, repeats expanded.

    ``repeat = K`` (with ``step``, default 1) repeats an op with its ``pfn`` advanced by
    ``step`` each time and its ``as`` name suffixed ``_1``, ``_2``, ... after the first.

    Parameters
    ----------
    ops : list of dict
        A program.
    where : str
        The program's owner (``task 'writer'``), for error messages.

    Returns
    -------
    list of tuple
        ``(where, op)`` pairs, ``where`` naming the op.
    """
    return [(w, o) for w, _i, o in expand_indexed(ops, where)]


def expand_indexed(ops, where):
    """:func:`expand` with each op's index in ``ops``.

    Parameters
    ----------
    ops : list of dict
        A program.
    where : str
        The program's owner, for error messages.

    Returns
    -------
    list of tuple
        ``(where, index, op)`` triples.
    """
    ops = _ops_list(ops, where)
    out = []
    for i, op in enumerate(ops):
        w = f"{where} op {i}"
        _check_op(op, w)
        rep = op.get("repeat", 1)
        if not is_int(rep) or not 1 <= rep <= K.MAX_REPEAT:
            raise _where(w, f"repeat={rep!r}: must be an int in [1, {K.MAX_REPEAT}]")
        step = op.get("step", 1)
        if not is_int(step):
            raise _where(w, f"step={step!r}: must be an int (added to pfn on each repeat)")
        rep, step = int(rep), int(step)
        sg = op.get("sg")
        if rep > 1 and "as" in op and isinstance(sg, (list, tuple)) and len(sg) > 1:
            raise _where(w, f"repeat={rep} with as={op['as']!r}: {op['op']} names its entries "
                            f"{op['as']}, {op['as']}_1, ... and its repeat 1 would be "
                            f"{op['as']}_1 too; write the ops out, each with its own as")
        pfn = _repeat_pfn(op, rep, step, w)
        for k in range(rep):
            o = {key: v for key, v in op.items() if key not in ("repeat", "step")}
            if k and pfn is not None:
                o["pfn"] = pfn + k * step
            if k and "as" in o:
                o["as"] = f"{o['as']}_{k}"
            out.append((w, i, o))
    return out


def _repeat_pfn(op, rep, step, w):
    """The constant ``pfn`` a ``repeat`` advances (an int, or a string of one: ``"0x12c"``),
    or None where there is none to advance. A pfn naming an earlier result has no value yet,
    so a repeat that would advance it (``step`` not 0) is refused rather than run on the
    same page each time."""
    if rep == 1 or "pfn" not in op:
        return None
    v = op["pfn"]
    if is_int(v):                                   # numpy ints too
        return int(v)
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            pass
        if step and _REF.match(v):
            raise _where(w, f"pfn={v!r} with repeat={rep}: repeat advances a constant pfn "
                            f"by step ({step}); a pfn that names a result cannot be advanced "
                            f"(give an int, or step = 0 to repeat the same page)")
    return None


def _check_op(op, w):
    """An op's name and fields (before any machine exists)."""
    if not isinstance(op, dict) or "op" not in op:
        raise _where(w, f"{op!r}: must be a table with an 'op' key")
    if not isinstance(op["op"], str) or op["op"] not in OPS:
        raise _where(w, f"op={op['op']!r}: unknown; accepted: {', '.join(OPS)}")
    data_keys = {"byte", "n", "data"} if "data" in OPS[op["op"]] else set()
    unknown = set(op) - set(OPS[op["op"]]) - {"op", "as", "repeat", "step"} - data_keys
    if unknown:
        raise _where(w, f"unknown field(s) {sorted(unknown)} for op {op['op']!r}; accepted: "
                        + ", ".join(["op", *OPS[op["op"]], *sorted(data_keys - {"data"}),
                                     *(["as"] if op["op"] in RESULT_OPS else []),
                                     "repeat", "step"]))
    if "data" in op and ({"byte", "n"} & set(op)):
        raise _where(w, f"data= and {'/'.join(sorted({'byte', 'n'} & set(op)))}=: give the "
                        f"bytes one way, data = \"hex\" or byte = N with n = LENGTH")
    if "as" in op and op["op"] not in RESULT_OPS:
        raise _where(w, f"as={op['as']!r}: {op['op']} returns nothing to name; only "
                        f"{', '.join(RESULT_OPS)} have a result")
    _check_op_fields(op, w)


def _check_op_fields(op, w):
    """The fields whose type a program needs before any machine exists."""
    if "as" in op and (not isinstance(op["as"], str) or not _REF.match(op["as"])
                       or "+" in op["as"] or "-" in op["as"]):
        raise _where(w, f"as={op['as']!r}: must be a name (letters, digits, _)")
    n = _const_n(op.get("n"))
    if n is not None and not isinstance(n, str) and (
            not is_int(n) or not 0 < n <= K.MAX_OP_BYTES):
        raise _where(w, f"n={op['n']!r}: must be an int in [1, {K.MAX_OP_BYTES}]")
    if "byte" in op and isinstance(n, str):     # the length of constant data: no result's
        raise _where(w, f"n={n!r}: byte = N takes n = LENGTH, an int in "
                        f"[1, {K.MAX_OP_BYTES}]")
    if op["op"] in SG_OPS:
        parse_sg(op, w)
    d = op.get("data")
    if isinstance(d, (str, bytes, bytearray)) and len(d) > 2 * K.MAX_OP_BYTES:
        raise _where(w, f"data: {len(d)} characters; at most {K.MAX_OP_BYTES} bytes an op")


def _const_n(n):
    """An op's int argument (``n``, ``line``, ...) as the int it stands for where it is one
    (a string of an int, ``"0x10"``), else as given (a result's name, a bad value)."""
    if isinstance(n, str):
        try:
            return int(n, 0)
        except ValueError:
            pass
    return n


def _op_bytes(op):
    """Bytes of a loaded scenario's data an op of a task or handler takes: its read buffer
    and the data it writes (a fill both); 0 for a length that is not a constant, which the
    op's own checks refuse."""
    d, n = op.get("data"), _const_n(op.get("n"))
    size = len(d) // 2 if isinstance(d, str) else len(d) if isinstance(d, (bytes, bytearray)) \
        else int(n) if is_int(n) else 0
    return 2 * size if op["op"] == "fill" else size


def _check_int_field(where, name, value, lo, hi):
    try:
        check_int(name, value, lo, hi)
    except ValueError as e:
        raise _where(where, str(e)) from None


@dataclass
class Task:
    """A task of a scenario: a program of ops, bound to one CPU.

    Parameters
    ----------
    name : str
        Unique among the scenario's tasks and handlers; schedules and traces use it.
    ops : list of dict
        The program (see the module docstring for the ops and their fields).
    cpu : int
        The CPU it runs on, ``0 <= cpu < ncpus``.
    """

    name: str
    ops: list
    cpu: int = 0


@dataclass
class Irq:
    """An IRQ handler of a scenario: a program run in IRQ context when its line fires on its
    CPU with IRQs enabled.

    Parameters
    ----------
    name : str
        Unique among the scenario's tasks and handlers.
    ops : list of dict
        The handler's program.
    line : int
        Its IRQ line, ``0 <= line < MAXIRQ``, distinct per handler.
    cpu : int
        The CPU the line interrupts.
    count : int or None
        Raises an exploration may make, or firings of a timed line; None: 1, or 0 on a line
        only a ``device_start`` raises.
    period, first : int
        Timed runs: the first firing at clock ``first`` (-1: not timed), then one every
        ``period`` cycles (0: once).
    """

    name: str
    ops: list
    line: int = 0
    cpu: int = 0
    count: int = None       #: raises allowed (exploration) / periodic firings (timed);
                            #: None: 1, or 0 on a line a device_start raises (device-only)
    period: int = 0         #: timed runs: fire every ``period`` cycles
    first: int = -1         #: timed runs: first firing at this clock (-1: never timed)


@dataclass
class Scenario:
    """Tasks and IRQ handlers on one machine. See the module docstring for the format.

    Parameters
    ----------
    name : str
        Its name (in reports and replay tokens).
    machine : dict
        :class:`emu.Machine` arguments (``last_pkmap``, ``ncpus``, ``dma_pinning``, ...).
    setup : list of dict
        Ops run directly before any task, not part of any schedule.
    tasks : list of Task
        Usually added with :meth:`task`.
    irqs : list of Irq
        Usually added with :meth:`irq`.
    description : str
        Free text (``emu scenario`` prints it).
    builtin : list, optional
        For the built-in scenarios: the builder and its arguments (short replay tokens).

    Examples
    --------
    >>> sc = Scenario("mine", {"last_pkmap": 8, "lowmem_mb": 1})      # page 300: highmem
    >>> sc = sc.task("t", [{"op": "kmap_high", "pfn": 300, "as": "v"},
    ...                    {"op": "write", "va": "v", "data": b"hi"},
    ...                    {"op": "kunmap_high", "pfn": 300}])
    >>> sc.build().run().outcome
    'done'
    """

    name: str = "scenario"
    machine: dict = field(default_factory=dict)
    setup: list = field(default_factory=list)
    tasks: list = field(default_factory=list)
    irqs: list = field(default_factory=list)
    description: str = ""
    builtin: list = None      #: [builder, args...] for the built-in scenarios (short tokens)

    def task(self, name, ops, cpu=0):
        """Add a task running ``ops`` on ``cpu``.

        Parameters
        ----------
        name : str
            Unique among tasks and handlers.
        ops : list of dict
            Its program.
        cpu : int
            The CPU it runs on.

        Returns
        -------
        Scenario
            ``self``, for chaining.
        """
        self.tasks.append(Task(name, _ops_list(ops, f"task {name!r}"), cpu))
        return self

    def irq(self, name, ops, line=None, cpu=0, count=None, period=0, first=-1):
        """Add an IRQ handler running ``ops`` when ``line`` fires on ``cpu``.

        Parameters
        ----------
        name : str
            Unique among tasks and handlers.
        ops : list of dict
            Its program.
        line : int, optional
            Its IRQ line (default: the number of handlers before it).
        cpu, count, period, first
            As :class:`Irq`'s.

        Returns
        -------
        Scenario
            ``self``, for chaining.
        """
        line = len(self.irqs) if line is None else line
        self.irqs.append(Irq(name, _ops_list(ops, f"irq {name!r}"), line, cpu, count, period,
                             first))
        return self

    # -- data form ------------------------------------------------------------------------------
    def to_dict(self):
        """The scenario as plain data (the TOML file's shape; bytes as hex strings, numpy
        scalars as Python ones), which :meth:`from_dict` takes back."""
        return _plain_values({
            "name": self.name, "description": self.description,
            "machine": {k: v for k, v in self.machine.items()     # None: Machine's default,
                        if not (v is None and k in _NONE_DEFAULTS)},  # which TOML cannot say
            "setup": _plain(self.setup),
            "task": [{"name": t.name, "cpu": t.cpu, "ops": _plain(t.ops)} for t in self.tasks],
            "irq": [{"name": q.name, "line": q.line, "cpu": q.cpu}
                    | _count_field(self, q)
                    | {"period": q.period, "first": q.first, "ops": _plain(q.ops)}
                    for q in self.irqs],
        })

    @classmethod
    def from_dict(cls, d):
        """A scenario from plain data, as :meth:`to_dict` writes it and a TOML file holds it.

        Parameters
        ----------
        d : dict
            ``name``, ``description``, ``machine`` (a table), ``setup`` (a list of ops),
            ``task`` and ``irq`` (lists of tables).

        Returns
        -------
        Scenario
            Validated (:meth:`validate`); ValueError names what is wrong.
        """
        if not isinstance(d, dict):
            raise ValueError("scenario: must be a table")
        unknown = set(d) - {"name", "description", "machine", "setup", "task", "irq"}
        if unknown:
            raise ValueError(f"scenario: unknown section(s) {sorted(unknown)}; accepted: name, "
                             f"description, machine, setup, task, irq")
        for key, kind, what in (("machine", dict, "a table"), ("setup", list, "a list"),
                                ("task", list, "a list"), ("irq", list, "a list"),
                                ("name", str, "a string"), ("description", str, "a string")):
            if key in d and not isinstance(d[key], kind):
                raise ValueError(f"scenario: {key}={d[key]!r}: must be {what}")
        sc = cls(d.get("name", "scenario"), dict(d.get("machine", {})),
                 list(d.get("setup", [])), [], [], d.get("description", ""))
        for i, t in enumerate(d.get("task", [])):
            _check_table(t, "task", i, TASK_KEYS)
            sc.task(t.get("name", f"task{i}"), t["ops"], t.get("cpu", 0))
        for i, q in enumerate(d.get("irq", [])):
            _check_table(q, "irq", i, IRQ_KEYS)
            sc.irq(q.get("name", f"irq{i}"), q["ops"], q.get("line", i), q.get("cpu", 0),
                   q.get("count"), q.get("period", 0), q.get("first", -1))
        sc.validate()
        return sc

    @classmethod
    def from_toml(cls, path):
        """Load a scenario from a TOML file (see the module docstring).

        Parameters
        ----------
        path : str or os.PathLike
            The file; its base name is the scenario's name unless it sets ``name``.

        Returns
        -------
        Scenario
        """
        try:
            with open(path, "rb") as f:
                d = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
        d.setdefault("name", os.path.basename(os.fspath(path)))   # not the path as typed:
        # the name goes into replay tokens, which must not depend on the working directory
        return cls.from_dict(d)

    def validate(self):
        """Check the shape of everything that does not need the machine; ValueError names
        the task, op and field."""
        if not isinstance(self.machine, dict):
            raise ValueError(f"machine={self.machine!r}: must be a table (dict) of Machine "
                             f"arguments")
        bad = set(self.machine) - set(MACHINE_KEYS)
        if bad:
            top = sorted(bad & {"name", "description", "setup"})
            raise ValueError(f"machine: unknown key(s) {sorted(bad)}; accepted: "
                             + ", ".join(MACHINE_KEYS)
                             + (f" ({', '.join(top)} belong(s) at the top of the file: in TOML "
                                f"a key after [machine] is part of that table, so put it "
                                f"before [machine]" + (", or write [[setup]] tables"
                                                       if "setup" in top else "") + ")"
                                if top else ""))
        if not self.tasks:
            raise ValueError("scenario: needs at least one [[task]]")
        names = [t.name for t in self.tasks] + [q.name for q in self.irqs]
        if len(names) > K.MAXALT:               # a decision lists at most MAXALT of them
            raise ValueError(f"scenario: {len(self.tasks)} tasks and {len(self.irqs)} irqs; "
                             f"at most {K.MAXALT} in all (a scheduling decision can offer "
                             f"each of them, and keeps at most {K.MAXALT} alternatives)")
        if any(not isinstance(x, str) or not x for x in names):
            raise ValueError(f"scenario: task and irq names must be non-empty strings: {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"scenario: task and irq names must be unique: {names}")
        lines = [q.line for q in self.irqs]
        if any(not is_int(x) or not 0 <= x < K.MAXIRQ
               for x in lines) or len(set(lines)) != len(lines):
            raise ValueError(f"irq lines: must be distinct ints 0..{K.MAXIRQ - 1}: {lines}")
        for q in self.irqs:
            w = f"irq {q.name!r}"
            if q.count is not None:
                _check_int_field(w, "count", q.count, 0, K.MAX_IRQ_COUNT)
            _check_int_field(w, "period", q.period, 0, K.MAX_IRQ_TIME)
            _check_int_field(w, "first", q.first, -1, K.MAX_IRQ_TIME)
            n = 1 if q.count is None else int(q.count)
            last = int(q.first) + int(q.period) * (n - 1)
            if q.first >= 0 and q.period > 0 and last > K.MAX_TIMED_CLOCK:
                raise _where(w, f"first={q.first}, period={q.period}, count={n}: the last "
                                f"firing would come at cycle {last}, past "
                                f"{K.MAX_TIMED_CLOCK} (K.MAX_TIMED_CLOCK: the cycle clocks "
                                f"are 64-bit); give a smaller count or period")
        pool = 0                                # the programs' data, before any is made
        for where, ops in [(f"task {t.name!r}", t.ops) for t in self.tasks] + \
                [(f"irq {q.name!r}", q.ops) for q in self.irqs]:
            for w, op in expand(ops, where):
                pool += _op_bytes(op)
                if pool > MAX_BUFFER:
                    raise _where(w, f"the tasks' and handlers' ops up to here read and write "
                                    f"{pool} bytes (repeats included); at most {MAX_BUFFER} "
                                    f"in all (the scenario's data, held in the machine)")
        expand(self.setup, "setup")
        return self

    def variant(self, **machine):
        """A copy with some machine parameters changed.

        Parameters
        ----------
        **machine
            :class:`emu.Machine` arguments to set, e.g. ``dma_pinning="kmap_high_get"``.

        Returns
        -------
        Scenario
            A deep copy; it is no longer a built-in one (its tokens carry it in full).
        """
        sc = copy.deepcopy(self)
        sc.machine.update(machine)
        sc.builtin = None
        return sc

    def build(self, trace_events=0):
        """A :class:`~emu.exec.loaded.Loaded` machine: setup done, programs loaded (after
        :meth:`validate`; a scenario built in code is checked as a loaded one is).

        Parameters
        ----------
        trace_events : int
            Room for trace events (0: none; readable traces need them).

        Returns
        -------
        Loaded
            Holds a copy of the scenario: later edits of ``self`` do not reach it.
        """
        from .loaded import load
        return load(self.validate(), trace_events)


def device_lines(sc):
    """The IRQ lines some ``device_start`` of a task or handler raises (constant lines only).

    Parameters
    ----------
    sc : Scenario

    Returns
    -------
    set of int
    """
    progs = [(t.ops, f"task {t.name!r}") for t in sc.tasks] + \
        [(q.ops, f"irq {q.name!r}") for q in sc.irqs]
    lines = [_const_n(op.get("line")) for ops, where in progs for _w, op in expand(ops, where)
             if op["op"] == "device_start"]    # a string of an int ("0x1") is that line
    return {int(x) for x in lines if is_int(x)}


def _count_field(sc, q):
    """``{"count": N}`` for a handler's table; nothing for a device line's default (which
    its device_starts decide, so a scenario read back behaves the same)."""
    n = irq_count(sc, q)
    return {} if q.count is None and n == 0 else {"count": n}


def irq_count(sc, q):
    """The raises (timed: firings) a handler gets.

    Parameters
    ----------
    sc : Scenario
    q : Irq
        The handler.

    Returns
    -------
    int
        Its ``count``, or by default 1, and 0 on a device's completion line, which fires
        when the transfer ends, not on its own.
    """
    if q.count is not None:
        return q.count
    return 0 if q.line in device_lines(sc) else 1


def _check_table(t, kind, i, keys):
    """A ``[[task]]`` / ``[[irq]]`` table: has ``ops``, and no key outside ``keys``."""
    if not isinstance(t, dict) or "ops" not in t:
        raise ValueError(f"{kind} {i}: must be a table with 'ops'")
    unknown = set(t) - set(keys)
    if unknown:
        who = f"{kind} {t['name']!r}" if isinstance(t.get("name"), str) else f"{kind} {i}"
        raise ValueError(f"{who}: unknown key(s) {sorted(unknown)}; accepted: "
                         + ", ".join(keys))


def _ops_list(ops, where):
    if not isinstance(ops, (list, tuple)):
        raise _where(where, f"ops={ops!r}: must be a list of operations")
    return list(ops)


def _plain(ops):
    out = []
    for op in ops:
        o = dict(op)
        if isinstance(o.get("data"), (bytes, bytearray)):
            o["data"] = bytes(o["data"]).hex()
        out.append(o)
    return out


def _plain_values(v):
    """``v`` with numpy scalars (``np.int64(300)``, ``np.True_``) as the Python values they
    stand for, in nested dicts and lists too, so that JSON, TOML and replay tokens take it."""
    if isinstance(v, dict):
        return {k: _plain_values(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain_values(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def machine_kwargs(sc):
    """The Machine arguments of a scenario.

    Parameters
    ----------
    sc : Scenario

    Returns
    -------
    tuple
        ``(kwargs, force_kmap_high_get)``: the ``[machine]`` table without the emu-internal
        ``force_kmap_high_get`` (scenario (iii)'s plain variant calls ``kmap_high_get``
        anyway), and that flag.
    """
    kw = dict(sc.machine)
    force = check_bool("force_kmap_high_get", kw.pop("force_kmap_high_get", False))
    return kw, force


def make_machine(sc, rows, data, trace_events):
    """The scenario's :class:`emu.Machine`, sized for its programs.

    Parameters
    ----------
    sc : Scenario
    rows : int
        Program rows.
    data : int
        Bytes of op data.
    trace_events : int
        Trace slots.

    Returns
    -------
    emu.Machine

    Raises
    ------
    ValueError
        A task's or handler's ``cpu`` is not below the scenario's ``ncpus``.
    """
    kw, force = machine_kwargs(sc)
    kw.setdefault("lowmem_mb", 1)
    kw.setdefault("highmem_mb", 1)
    ncpus = check_int("ncpus", kw.get("ncpus", 1), 1, K.MAXCPUS)
    for kind, t in [("task", t) for t in sc.tasks] + [("irq", q) for q in sc.irqs]:
        if not is_int(t.cpu) or not 0 <= t.cpu < ncpus:
            raise ValueError(f"{kind} {t.name!r}: cpu={t.cpu!r} must be in range(0, "
                             f"ncpus={ncpus}) (the scenario's [machine] ncpus)")
    return Machine(contexts=1 + len(sc.tasks) + len(sc.irqs), program_rows=rows,
                   data_bytes=data, trace_events=trace_events, _force_kmap_high_get=force,
                   **kw)
