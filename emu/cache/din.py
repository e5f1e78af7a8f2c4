"""Reading Dinero IV traces: ``din`` (``-informat d``) and extended ``xdin`` (``-informat D``).

din (dinfmt.c ``tracein_din``): ``LABEL ADDRESS [ignored...]``, both hex; every reference
becomes the aligned 4-byte word ``address & ~3`` (Dinero III was word oriented). xdin
(xdinfmt.c): ``r|w|i|m|c|v ADDRESS SIZE``, hex, unaligned, size kept. Labels: 0 read, 1 write,
2 instruction fetch, 3 misc read, 4 copy-back, 5 invalidate; label 8 ends the trace.

Unlike Dinero, blank lines and lines starting with ``#`` are skipped (Dinero stops on them);
this changes no counter.
"""

import numpy as np

_XDIN = {"r": 0, "w": 1, "i": 2, "m": 3, "c": 4, "v": 5}
_END = 8


def _hex(field, what, where):
    try:
        return int(field, 16)
    except ValueError:
        raise ValueError(f"{where}: {what} {field!r} is not a hex number") from None


def _parse(line, where):
    """(label, address, size) of one trace line, or None for the end-of-trace label."""
    fields = line.split()
    if len(fields) < 2:
        raise ValueError(f"{where}: expected 'LABEL ADDRESS', got {line.strip()!r}")
    head = fields[0].lower()
    if head in _XDIN:
        if len(fields) < 3:
            raise ValueError(f"{where}: xdin record {line.strip()!r} has no size")
        return _XDIN[head], _hex(fields[1], "address", where), _hex(fields[2], "size", where)
    label = _hex(fields[0], "label", where)
    if label == _END:
        return None
    if label > 5:
        raise ValueError(f"{where}: label {label} is not supported (0-5, or 8 to end)")
    return label, _hex(fields[1], "address", where) & ~3, 4


def read_din(path):
    """Read a Dinero IV ``din`` or ``xdin`` trace.

    Parameters
    ----------
    path : str or os.PathLike
        Trace file; each line is ``LABEL ADDRESS`` (din) or ``r|w|i|m|c|v ADDRESS SIZE`` (xdin).

    Returns
    -------
    kinds, addrs, sizes : numpy.ndarray of int64
        Ready for :meth:`emu.cache.Cache.replay` (kinds are the Dinero labels 0-5).
    """
    kinds, addrs, sizes = [], [], []
    with open(path, "r", encoding="ascii", errors="replace") as f:
        for no, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            rec = _parse(s, f"{path}:{no}")
            if rec is None:
                break
            if not 0 <= rec[1] < 1 << 32:
                raise ValueError(f"{path}:{no}: address {rec[1]:#x} is outside 32 bits")
            kinds.append(rec[0])
            addrs.append(rec[1])
            sizes.append(rec[2])
    return (np.array(kinds, dtype=np.int64), np.array(addrs, dtype=np.int64),
            np.array(sizes, dtype=np.int64))
