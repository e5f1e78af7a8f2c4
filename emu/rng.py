"""The seeded generator behind every random choice (random replacement, random schedules).

A 63-bit xorshift kept in a header slot of ``S``, so a machine's randomness is part of its state:
same seed, same run, and a snapshot restores it.
"""

from ._jit import inline

MASK63 = 0x7FFFFFFFFFFFFFFF


def seed_state(seed, salt):
    """Initial generator state for ``seed`` (never 0; nearby seeds differ in every bit)."""
    return ((int(seed) * 0x9E3779B97F4A7C15 + salt) & MASK63) or 1


@inline
def next_random(S, slot):
    """Advance the generator whose state is ``S[slot]``; returns a non-negative value."""
    x = S[slot]
    x ^= (x << 13) & MASK63
    x ^= x >> 7
    x ^= (x << 17) & MASK63
    S[slot] = x
    return x
