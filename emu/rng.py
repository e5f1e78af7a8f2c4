"""The seeded generator behind every random choice (random replacement, random schedules).

A 63-bit xorshift kept in a header slot of ``S``, so a machine's randomness is part of its state:
same seed, same run, and a snapshot restores it.
"""

from ._jit import inline

MASK63 = 0x7FFFFFFFFFFFFFFF


def seed_state(seed, salt):
    """Initial generator state for a seed (never 0; nearby seeds differ in every bit).

    A seed of 2**63 or more is taken 63 bits at a time, each part stirring the state before
    the next, so that its high bits count too (2**64 is not seed 0); a smaller seed gives
    the state it always has.

    Parameters
    ----------
    seed : int
        Any non-negative int.
    salt : int
        Separates the generators one seed starts (the cache's, the scheduler's, ...).

    Returns
    -------
    int
        A 63-bit state.
    """
    seed, x = int(seed), salt
    while True:
        x = ((seed & MASK63) * 0x9E3779B97F4A7C15 + x) & MASK63
        seed >>= 63
        if not seed:
            return x or 1
        x = (x * 0xBF58476D1CE4E5B9 + 1) & MASK63


@inline
def next_random(S, slot):
    """Advance the generator whose state is ``S[slot]``; returns a non-negative value."""
    x = S[slot]
    x ^= (x << 13) & MASK63
    x ^= x >> 7
    x ^= (x << 17) & MASK63
    S[slot] = x
    return x
