"""Argument checks shared by the public entry points: the error names the argument and what
is accepted, and nothing has run yet."""

import numpy as np


def check_int(name, value, lo, hi=None):
    """``value`` as an int in ``[lo, hi]`` (``hi`` None: no upper bound), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: must be an int")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name}={value!r}: must be {rng}")
    return int(value)


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name}={value!r}: accepted values are "
                         + ", ".join(repr(c) for c in choices))
    return value
