"""emu.rng: every bit of a seed counts."""

import emu
from emu import consts as K
from emu.cache import Cache
from emu.rng import MASK63, seed_state


def test_seeds_past_63_bits_are_not_folded_onto_small_ones():
    """Seeds were taken modulo 2**63: seed 2**64 (or 2**63, 2**70) ran what seed 0 ran, and
    2**63 + k what k ran; a fuzzer's 64-bit seeds could repeat each other's runs."""
    seeds = [0, 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64, 2**70, 2**126, 2**200 + 5]
    assert len({seed_state(s, 7) for s in seeds}) == len(seeds)
    assert all(0 < seed_state(s, 7) <= MASK63 for s in seeds)
    machines = [emu.Machine(lowmem_mb=0.25, highmem_mb=0.25, seed=s) for s in (0, 2**64)]
    assert machines[0]._S[K.H_SCHED_RNG] != machines[1]._S[K.H_SCHED_RNG]
    assert machines[0]._S[K.H_C_RNG] != machines[1]._S[K.H_C_RNG]
    caches = [Cache(size=1024, ways=4, replacement="random", ram_size=4096, seed=s)
              for s in (3, 2**63 + 3)]
    assert caches[0]._S[K.H_C_RNG] != caches[1]._S[K.H_C_RNG]


def test_seeds_below_2_63_keep_their_state():
    """Replay of seeded runs made before: the state of a 63-bit seed is unchanged."""
    for s in (0, 1, 12345, 2**63 - 1):
        assert seed_state(s, 0x2545F4914F6CDD1D) == \
            ((s * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & MASK63) or 1
