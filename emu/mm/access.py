"""CPU loads and stores through the MMU, TLB and D-cache, as resumable routines.

An access is split into line-sized pieces as the CPU would issue them; each piece is a
scheduling point, so another task can run between two stores of one ``memcpy``. Data moves
between the cache and a byte buffer in ``B`` (``F_A2``): the direct API's I/O area or a
scenario program's data pool.
"""

from .. import consts as K
from .._jit import njit
from ..cache.kernels import cache_load, cache_store
from ..cost.account import uop
from ..exec.frames import fail, set_ret, yield_same
from ..exec.trace import trace
from .pgtable import translate
from .ram import check_load, shadow_store


@njit
def cpu_access_step(S, B, c, f, write):
    """Move the next line-sized piece of ``[F_A0, F_A0 + F_A1)`` (cursor ``F_A3``)."""
    va0 = S[f + K.F_A0]
    n = S[f + K.F_A1]
    buf = S[f + K.F_A2]
    line = S[K.H_C_LINE]
    resumed = S[f + K.F_A3] > 0                 # this step goes on with the same access
    while True:
        done = S[f + K.F_A3]
        if done >= n:
            set_ret(S, c, n)
            return K.ST_RET_YIELD
        va = va0 + done
        k = min(line - (va & (line - 1)), n - done)
        page_left = K.PAGE_SIZE - (va & (K.PAGE_SIZE - 1))
        k = min(k, page_left)
        pa = translate(S, va)
        if pa < 0:
            return fail(S, K.ERR_PAGE_FAULT, va, write, 0, 0)
        trace(S, K.T_STORE if write else K.T_LOAD, va, pa)
        words = (k + 3) >> 2                    # ldm/stm of the piece: one word per cycle
        if write:
            hit = cache_store(S, B, va, pa, k, B, buf + done)
            shadow_store(S, B, pa, B, buf + done, k)
            uop(S, K.UOP_ST_HIT if hit else K.UOP_ST_MISS, 1)
            uop(S, K.UOP_STORE, words - 1)
        else:
            hit = cache_load(S, B, va, pa, k, B, buf + done)
            check_load(S, B, va, pa, buf + done, k)
            uop(S, K.UOP_LD_HIT if hit else K.UOP_LD_MISS, 1)
            uop(S, K.UOP_LOAD, words - 1)
        S[f + K.F_A3] = done + k
        if S[f + K.F_A3] < n and S[K.H_YIELD]:
            return yield_same(S) if resumed else K.ST_YIELD


@njit
def cpu_read_step(S, B, c, f):
    """Load ``F_A1`` bytes at virtual ``F_A0`` into ``B[F_A2:]``."""
    return cpu_access_step(S, B, c, f, False)


@njit
def cpu_write_step(S, B, c, f):
    """Store ``F_A1`` bytes from ``B[F_A2:]`` at virtual ``F_A0``."""
    return cpu_access_step(S, B, c, f, True)
