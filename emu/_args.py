"""Argument checks shared by the public entry points: the error names the argument and what
is accepted, and nothing has run yet."""

import numbers

import numpy as np

INT64_MAX = (1 << 63) - 1


def is_int(value):
    """An int or numpy integer, not a bool."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def check_bool(name, value):
    """``value`` as a bool (a numpy bool too), else ValueError: ints (0, 1) are not bools."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r}: must be True or False")
    return bool(value)


def check_int(name, value, lo, hi=None):
    """``value`` as an int in ``[lo, hi]`` (``hi`` None: no upper bound), else ValueError."""
    if not is_int(value):
        raise ValueError(f"{name}={value!r}: must be an int")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name}={value!r}: must be {rng}")
    return int(value)


def check_real(name, value, lo, hi):
    """``value`` as an int or float in ``[lo, hi]`` (finite: NaN and infinities fail).

    Parameters
    ----------
    name : str
        Argument name for the message.
    value : object
        The value to check (bools are refused).
    lo, hi : int or float
        Inclusive bounds.

    Returns
    -------
    int or float
        ``int(value)`` for an integral value, else ``float(value)``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not lo <= value <= hi:          # NaN fails every comparison
        raise ValueError(f"{name}={value!r}: must be a number in [{lo}, {hi}]")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def check_choice(name, value, choices):
    """The choice equal to ``value`` and of its kind (an int matches only ints, a str only
    strs: ``1.0`` or ``True`` is not ``1``), else ValueError listing the choices."""
    for c in choices:
        same_kind = is_int(value) if is_int(c) else isinstance(value, type(c))
        if same_kind and value == c:
            return c
    raise ValueError(f"{name}={value!r}: accepted values are "
                     + ", ".join(repr(c) for c in choices))


def check_int_array(name, values, lo, hi, as_hex=False):
    """``values`` as a 1-D contiguous int64 array with every element an int in ``[lo, hi)``.

    Parameters
    ----------
    name : str
        Argument name; a bad element is named ``name[i]``.
    values : array_like
        A 1-D sequence or array of ints (any integer dtype; no floats, bools or strings).
    lo, hi : int
        Accepted range, ``hi`` exclusive (``hi`` at most ``2**63``).
    as_hex : bool
        Show values and bounds in hex (addresses).

    Returns
    -------
    numpy.ndarray
    """
    f = (lambda v: f"{v:#x}") if as_hex else str
    rng = f"[{f(lo)}, {f(hi)})"
    arr = _array_1d(values)
    if arr is None:
        raise ValueError(f"{name}: must be a 1-D array of ints in {rng}")
    seq = isinstance(values, (list, tuple))         # numpy turns [0, True] into ints
    if arr.size and (arr.dtype.kind not in "iu"
                     or seq and any(isinstance(v, (bool, np.bool_)) for v in values)):
        items = list(values) if seq else arr.tolist()
        for i, v in enumerate(items):
            if not (is_int(v) and lo <= v < hi):
                shown = f(int(v)) if is_int(v) else repr(v)
                raise ValueError(f"{name}[{i}]={shown}: must be an int in {rng}")
        arr = np.array(items, dtype=np.int64)
    bad = (arr < lo) | (arr >= hi)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}]={f(int(arr[i]))}: must be in {rng}")
    return kernel_array(arr)


def kernel_array(arr):
    """``arr`` as the one array type emu's kernels are compiled for: 1-D, C-contiguous,
    writeable int64 (a copy only where ``arr`` is not that already). numba compiles a kernel
    again for each new argument type, so a read-only array (``np.frombuffer``, a
    ``np.load(mmap_mode="r")`` trace) would otherwise stall its first call for seconds (the
    scheduler: ~17 s) and add a version to the on-disk cache."""
    return np.require(arr, np.int64, ["C", "W"])


def _array_1d(values):
    """``values`` as a 1-D numpy array, or None (a str, mapping, set, scalar, ragged list)."""
    if isinstance(values, (str, bytes, dict, set)):
        return None
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None
