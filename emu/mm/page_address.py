"""``page_address()`` / ``set_page_address()`` with HASHED_PAGE_VIRTUAL (mm/highmem.c, spec §1.10).

ARM does not define WANT_PAGE_VIRTUAL, so a highmem page's pkmap address lives in a hash of
``PA_HASH_SIZE`` (128) buckets of ``page_address_map`` entries, taken from a pool of LAST_PKMAP
entries. Lists are doubly linked like ``struct list_head``; node ``i < LAST_PKMAP`` is
``page_address_maps[i]``, then come the 128 bucket heads and the pool head.
"""

from .. import consts as K
from .._jit import hot, inline, tiny
from ..cost.account import enter_site, leave_site, uop
from ..exec.locks import raw_lock_irqsave, raw_unlock_irqrestore
from .pgtable import lowmem_address, page_is_highmem


@tiny
def _node(S, n):
    return S[K.H_R_PAM] + n * K.PAM_W


@inline
def _bucket_head(S, pfn):
    """``page_slot(page)``: bucket ``hash_ptr(page, PA_HASH_ORDER)`` of the page's struct page."""
    page = K.MEM_MAP_BASE + pfn * K.STRUCT_PAGE_SIZE
    h = ((page * K.GOLDEN_RATIO_PRIME_32) & 0xFFFFFFFF) >> (32 - K.PA_HASH_ORDER)
    return S[K.H_LAST_PKMAP] + h


@tiny
def _pool_head(S):
    return S[K.H_LAST_PKMAP] + K.PA_HASH_SIZE


@inline
def list_del(S, n):
    a = _node(S, n)
    nxt = S[a + K.PAM_NEXT]
    prv = S[a + K.PAM_PREV]
    S[_node(S, prv) + K.PAM_NEXT] = nxt
    S[_node(S, nxt) + K.PAM_PREV] = prv


@inline
def _list_insert(S, n, prv, nxt):
    a = _node(S, n)
    S[a + K.PAM_NEXT] = nxt
    S[a + K.PAM_PREV] = prv
    S[_node(S, prv) + K.PAM_NEXT] = n
    S[_node(S, nxt) + K.PAM_PREV] = n


@inline
def list_add(S, n, head):
    """Insert ``n`` right after ``head`` (at the front)."""
    _list_insert(S, n, head, S[_node(S, head) + K.PAM_NEXT])


@inline
def list_add_tail(S, n, head):
    """Insert ``n`` right before ``head`` (at the back)."""
    _list_insert(S, n, S[_node(S, head) + K.PAM_PREV], head)


def init_page_address(S):
    """``page_address_init()``: empty buckets; the pool filled by ``list_add`` (head
    insertion), so the first entry handed out is the last one added. Plain Python, once.

    Parameters
    ----------
    S : numpy.ndarray
        The machine's int64 state array.
    """
    last = int(S[K.H_LAST_PKMAP])
    base = int(S[K.H_R_PAM])
    for head in range(last, last + K.PA_HASH_SIZE + 1):
        a = base + head * K.PAM_W
        S[a + K.PAM_NEXT] = head
        S[a + K.PAM_PREV] = head
        S[a + K.PAM_PAGE] = -1
    pool = last + K.PA_HASH_SIZE
    for n in range(last):
        a = base + n * K.PAM_W
        S[a + K.PAM_PAGE] = -1
        S[a + K.PAM_VIRT] = 0
        first = int(S[base + pool * K.PAM_W + K.PAM_NEXT])
        S[a + K.PAM_NEXT] = first
        S[a + K.PAM_PREV] = pool
        S[base + first * K.PAM_W + K.PAM_PREV] = n
        S[base + pool * K.PAM_W + K.PAM_NEXT] = n


@inline
def _find(S, head, pfn, charge):
    """Walk bucket ``head`` for ``pfn``'s entry (``list_for_each_entry``); -1 if absent.
    ``charge`` False: an inspection from Python, no micro-ops recorded."""
    n = S[_node(S, head) + K.PAM_NEXT]
    if charge:
        uop(S, K.UOP_ALU, 3)                    # hash_ptr: mul, shift, add
    while n != head:
        if charge:
            uop(S, K.UOP_HASH_STEP, 1)
        if S[_node(S, n) + K.PAM_PAGE] == pfn:
            return n
        n = S[_node(S, n) + K.PAM_NEXT]
    if charge:
        uop(S, K.UOP_HASH_STEP, 1)              # the test that ends the walk
    return -1


@inline
def peek_page_address(S, pfn):
    """What ``page_address(pfn)`` would return, without executing (or charging) anything."""
    if not page_is_highmem(S, pfn):
        return lowmem_address(S, pfn)
    n = _find(S, _bucket_head(S, pfn), pfn, False)
    return 0 if n < 0 else S[_node(S, n) + K.PAM_VIRT]


@tiny
def page_address(S, pfn):
    """Kernel virtual address of page ``pfn``, or 0 if it is a highmem page with no mapping."""
    if not page_is_highmem(S, pfn):
        uop(S, K.UOP_ALU, 3)                    # PageHighMem test; __va(page_to_phys(page))
        return lowmem_address(S, pfn)
    return _page_address_high(S, pfn)


@hot
def _page_address_high(S, pfn):
    """The hash walk of ``page_address()`` for a highmem page."""
    prev = enter_site(S, K.SITE_PAGE_ADDRESS)
    head = _bucket_head(S, pfn)
    flags = raw_lock_irqsave(S)                 # spin_lock_irqsave(&pas->lock, flags)
    n = _find(S, head, pfn, True)
    raw_unlock_irqrestore(S, flags)
    leave_site(S, prev)
    if n < 0:
        return 0
    return S[_node(S, n) + K.PAM_VIRT]


@inline
def pool_empty(S):
    pool = _pool_head(S)
    return S[_node(S, pool) + K.PAM_NEXT] == pool


@inline
def set_page_address(S, pfn, virtual):
    """Add (``virtual != 0``) or remove the page's hash entry.

    Callers check ``PageHighMem`` and pool exhaustion first (both BUG_ONs, hm:378-385), so this
    never fails halfway.
    """
    prev = enter_site(S, K.SITE_SET_PAGE_ADDRESS)
    head = _bucket_head(S, pfn)
    pool = _pool_head(S)
    if virtual != 0:
        flags = raw_lock_irqsave(S)             # pool_lock
        n = S[_node(S, pool) + K.PAM_NEXT]
        list_del(S, n)
        raw_unlock_irqrestore(S, flags)
        a = _node(S, n)
        S[a + K.PAM_PAGE] = pfn
        S[a + K.PAM_VIRT] = virtual
        uop(S, K.UOP_STORE, 2)
        flags = raw_lock_irqsave(S)             # pas->lock
        list_add_tail(S, n, head)
        uop(S, K.UOP_STORE, 4)
        raw_unlock_irqrestore(S, flags)
    else:
        flags = raw_lock_irqsave(S)
        n = _find(S, head, pfn, True)
        if n >= 0:
            list_del(S, n)
            raw_unlock_irqrestore(S, flags)
            flags = raw_lock_irqsave(S)         # pool_lock
            list_add_tail(S, n, pool)
            uop(S, K.UOP_STORE, 4)
        raw_unlock_irqrestore(S, flags)
    leave_site(S, prev)
