"""emu.exec.cpu: the irqsoff histogram's bucket function against Python's int.bit_length."""

import numpy as np

from emu import consts as K
from emu._jit import njit
from emu.exec.cpu import log2_bucket


@njit
def _buckets(xs, out):
    for i in range(len(xs)):
        out[i] = log2_bucket(xs[i])


def _expected(x):
    return 0 if x <= 0 else min(int(x).bit_length(), K.NHIST - 1)


def test_log2_bucket_is_the_capped_bit_length():
    xs = [-(1 << 63), -5, -1, 0, 1, 2, 3, 4, 7, 8, 255, 256, 1000, (1 << 62) + 1, (1 << 63) - 1]
    xs += [(1 << k) + d for k in range(0, 62) for d in (-1, 0, 1)]
    xs = np.array(xs, np.int64)
    out = np.zeros(len(xs), np.int64)
    _buckets(xs, out)
    assert [int(v) for v in out] == [_expected(int(x)) for x in xs]
    assert out.max() == K.NHIST - 1 and _expected(1 << 40) == min(41, K.NHIST - 1)
