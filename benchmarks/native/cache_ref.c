/*
 * Straightforward C99 reference of emu's cache kernels (emu/cache/kernels.py, emu/cache/maint.py,
 * emu/cost/account.py), on the same machine arrays.
 *
 * Every function takes the machine arrays ``int64_t *S`` and ``uint8_t *B`` and finds each region
 * through its header slot exactly as the numba code does (``S[S[H_R_TAG] + i]``). The number of
 * ways is read from S at run time (no specialisation): this is the honest "plain C at -O2"
 * baseline the numba kernels are measured against. ``bench_cache.py::test_native_matches_numba``
 * checks that both produce byte-identical S and B for the same operations.
 *
 * The constants come from ``emu_consts.h``, generated from emu.consts by build.py.
 */
#include <stdint.h>
#include <stddef.h>

#include "emu_consts.h"

typedef int64_t i64;
typedef uint8_t u8;

#define RANGE_START (-1)
#define RANGE_HALF 1
#define RANGE_DONE (-2)

static inline i64 imin(i64 a, i64 b) { return a < b ? a : b; }

/* ------------------------------------------------------------------------------------------- */
/* Accounting (emu/cost/account.py uop(): the running row's count and the CPU clock)             */
/* ------------------------------------------------------------------------------------------- */

static inline void uop(i64 *S, i64 u, i64 n)
{
    S[S[H_UOPCUR] + u] += n;
    S[H_NOW] += n * S[H_COST + u];
}

/* account.py loop_back: a bottom-tested loop's backward branches, the last not taken if it ended */
static inline void loop_back(i64 *S, i64 n, int ended)
{
    if (ended && n > 0) {
        uop(S, UOP_BRANCH_NT, 1);
        n -= 1;
    }
    uop(S, UOP_BRANCH, n);
}

static inline void cstat(i64 *S, i64 c, i64 n) { S[S[H_R_CSTAT] + c] += n; }

/* ------------------------------------------------------------------------------------------- */
/* Event trace (emu/exec/trace.py)                                                              */
/* ------------------------------------------------------------------------------------------- */

static inline void trace(i64 *S, i64 kind, i64 a, i64 b)
{
    i64 t = S[H_R_TRACE];
    if (S[t + TR_ON] == 0)
        return;
    i64 n = S[t + TR_COUNT];
    S[t + TR_COUNT] = n + 1;
    if (n >= S[t + TR_CAP])
        return;
    i64 r = t + TR_HDR + n * TR_W;
    S[r + TE_KIND] = kind;
    S[r + TE_CLOCK] = S[H_NOW];
    S[r + TE_CPU] = S[H_CUR_CPU];
    S[r + TE_CTX] = S[H_CUR_CTX];
    S[r + TE_A] = a;
    S[r + TE_B] = b;
}

/* ------------------------------------------------------------------------------------------- */
/* Sites (emu/cost/account.py)                                                                   */
/* ------------------------------------------------------------------------------------------- */

static inline void set_site(i64 *S, i64 site)
{
    S[H_CUR_SITE] = site;
    S[H_UOPCUR] = S[H_R_UOPS] + (site * NKINDS + S[H_CUR_KIND]) * NUOPS;
}

/* ------------------------------------------------------------------------------------------- */
/* The CPU: IRQ mask, preempt count, irqsoff tracer (emu/exec/cpu.py)                           */
/* ------------------------------------------------------------------------------------------- */

static inline i64 log2_bucket(i64 x)
{
    if (x <= 0)
        return 0;
    return imin(64 - __builtin_clzll((unsigned long long)x), NHIST - 1);   /* bit length */
}

static inline void irqs_masked(i64 *S, i64 cr)
{
    S[cr + CPU_IRQOFF] = 1;
    if (S[H_PROFILE]) {
        S[cr + CPU_IRQOFF_AT] = S[H_NOW];
        S[cr + CPU_IRQOFF_SITE] = S[H_CUR_SITE];
        trace(S, T_IRQS_OFF, S[H_CUR_SITE], 0);
    }
}

/* cpu.py _watch_passed: go past the watched raise clocks before now; the section into the
   ring if it covered one (the watches themselves are set by the timed scheduler only) */
static void watch_passed(i64 *S, i64 cr, i64 w)
{
    i64 now = S[H_NOW], a = S[cr + CPU_IRQOFF_AT], k = S[cr + CPU_WATCH_AT];
    int hit = 0;
    while (0 <= w && w < now) {
        hit = hit || w >= a;
        k += 1;
        w = k < NWATCH ? S[cr + CPU_WATCHES + k] : -1;
    }
    S[cr + CPU_WATCH_AT] = k;
    S[cr + CPU_IRQ_WATCH] = w;
    if (hit) {
        i64 j = S[cr + CPU_RING_AT];
        S[cr + CPU_RING + 2 * j] = a;
        S[cr + CPU_RING + 2 * j + 1] = now;
        S[cr + CPU_RING_AT] = (j + 1) % NRING;
    }
}

/* Close an irqs-off section: the irqsoff tracer's max and histogram, a watched IRQ's wait. */
static inline void irqs_unmasked(i64 *S, i64 cr)
{
    S[cr + CPU_IRQOFF] = 0;
    if (S[H_PROFILE] == 0)
        return;
    trace(S, T_IRQS_ON, S[H_CUR_SITE], 0);
    i64 p = S[H_R_PROF];
    i64 now = S[H_NOW];
    i64 at = S[cr + CPU_IRQOFF_AT];
    i64 d = now - at;
    i64 start = S[cr + CPU_IRQOFF_SITE];
    S[p + PROF_IRQOFF_COUNT] += 1;
    S[p + PROF_IRQOFF_TOTAL] += d;
    S[p + PROF_H_IRQOFF + start * NHIST + log2_bucket(d)] += 1;
    i64 w = S[cr + CPU_IRQ_WATCH];
    if (0 <= w && w < now)                  /* a watched raise clock has passed (-1: none) */
        watch_passed(S, cr, w);
    if (d > S[p + PROF_IRQOFF_MAX]) {
        S[p + PROF_IRQOFF_MAX] = d;
        S[p + PROF_IRQOFF_MAX_START] = start;
        S[p + PROF_IRQOFF_MAX_END] = S[H_CUR_SITE];
        S[p + PROF_IRQOFF_MAX_CPU] = S[H_CUR_CPU];
        S[p + PROF_IRQOFF_MAX_AT] = at;
    }
}

/* ------------------------------------------------------------------------------------------- */
/* RAM (stored XOR RAM_POISON)                                                                  */
/* ------------------------------------------------------------------------------------------- */

/* Note that the RAM block of pa changed (snapshots restore only such blocks: one bit per
 * 512-byte block in the page's flag byte); slot 0 = no map.
 * A negative index wraps around the end of B as numba's indexing does. */
static inline void mark_ram_dirty(i64 *S, u8 *B, i64 pa)
{
    i64 m = S[H_B_RAMDIRTY];
    if (m) {
        i64 b = pa >> BLOCK_SHIFT;
        i64 j = m + (b >> 3);
        if (j < 0)
            j += S[H_B_SIZE];
        B[j] |= (u8)(1 << (b & 7));
    }
}

static inline void ram_to_line(i64 *S, u8 *B, i64 pa, i64 d, i64 n)
{
    if (pa == NO_PA) {
        for (i64 k = 0; k < n; k++)
            B[d + k] = 0;
        return;
    }
    i64 r = S[H_B_RAM] + pa;
    for (i64 k = 0; k < n; k++)
        B[d + k] = (u8)(B[r + k] ^ RAM_POISON);
}

static inline void line_to_ram(i64 *S, u8 *B, i64 pa, i64 d, i64 line, i64 gshift, i64 mask)
{
    if (pa == NO_PA)
        return;
    mark_ram_dirty(S, B, pa);
    i64 r = S[H_B_RAM] + pa;
    i64 g = (i64)1 << gshift;
    for (i64 j = 0; j < (line >> gshift); j++) {
        if (mask & ((i64)1 << j)) {
            i64 o = j * g;
            for (i64 k = 0; k < g; k++)
                B[r + o + k] = (u8)(B[d + o + k] ^ RAM_POISON);
            S[S[H_R_CSTAT] + CS_BYTES_WRITTEN] += g;
        }
    }
}

static inline void bytes_to_ram(i64 *S, u8 *B, i64 pa, const u8 *src, i64 so, i64 n)
{
    mark_ram_dirty(S, B, pa);
    i64 r = S[H_B_RAM] + pa;
    for (i64 k = 0; k < n; k++)
        B[r + k] = (u8)(src[so + k] ^ RAM_POISON);
    S[S[H_R_CSTAT] + CS_BYTES_WRITTEN] += n;
    S[S[H_R_CSTAT] + CS_WRITETHROUGHS] += 1;
}

/* ------------------------------------------------------------------------------------------- */
/* Line bookkeeping                                                                             */
/* ------------------------------------------------------------------------------------------- */

static inline i64 granule_mask(i64 *S, i64 off, i64 n)
{
    i64 gs = S[H_C_DGSHIFT];
    i64 first = off >> gs;
    i64 last = (off + n - 1) >> gs;
    return (((i64)1 << (last + 1)) - 1) ^ (((i64)1 << first) - 1);
}

/* kernels.py mark_line: line i changed (the exploration loop restores only marked lines) */
static inline void mark_line(i64 *S, u8 *B, i64 i)
{
    B[S[H_B_CMARK] + i] = 1;
}

static inline int write_back(i64 *S, u8 *B, i64 i)
{
    i64 dm = S[S[H_R_DIRTY] + i];
    if (dm == 0)
        return 0;
    i64 line = S[H_C_LINE];
    line_to_ram(S, B, S[S[H_R_LPA] + i], S[H_B_CDATA] + i * line, line, S[H_C_DGSHIFT], dm);
    S[S[H_R_DIRTY] + i] = 0;
    mark_line(S, B, i);
    cstat(S, CS_WRITEBACKS, 1);
    return 1;
}

static inline void record_discard(i64 *S, u8 *B, i64 i)
{
    i64 ev = S[H_R_EV];
    i64 n = S[ev + EV_COUNT];
    if (n < S[ev + EV_CAP]) {
        i64 line = S[H_C_LINE];
        i64 r = ev + EV_HDR + n * EV_W;
        S[r + EV_VA] = S[S[H_R_TAG] + i];
        S[r + EV_PA] = S[S[H_R_LPA] + i];
        S[r + EV_MASK] = S[S[H_R_DIRTY] + i];
        S[r + EV_CTX] = S[H_CUR_CTX];
        S[r + EV_SITE] = S[H_CUR_SITE];
        S[r + EV_STEP] = S[H_STEP];
        S[r + EV_DMA_LO] = S[H_DMA_LO];
        S[r + EV_DMA_HI] = S[H_DMA_HI];
        i64 d = S[H_B_CDATA] + i * line;
        i64 e = S[H_B_EVDATA] + n * line;
        for (i64 k = 0; k < line; k++)
            B[e + k] = B[d + k];
    }
    S[ev + EV_COUNT] = n + 1;
}

static inline int drop(i64 *S, u8 *B, i64 i)
{
    int dirty = S[S[H_R_DIRTY] + i] != 0;
    if (dirty) {
        record_discard(S, B, i);
        cstat(S, CS_DIRTY_DISCARDS, 1);
    }
    S[S[H_R_TAG] + i] = TAG_INVALID;
    S[S[H_R_DIRTY] + i] = 0;
    mark_line(S, B, i);
    return dirty;
}

static inline int flush_index(i64 *S, u8 *B, i64 i)
{
    int dirty = write_back(S, B, i);
    S[S[H_R_TAG] + i] = TAG_INVALID;
    mark_line(S, B, i);
    return dirty;
}

static inline void evict(i64 *S, u8 *B, i64 i)
{
    if (S[S[H_R_TAG] + i] != TAG_INVALID) {
        cstat(S, CS_EVICTIONS, 1);
        if (write_back(S, B, i))
            uop(S, UOP_WRITEBACK, 1);
    }
}

/* fetch: read RAM into the line; count: count that as a line fill (a replayed full-line store
 * copies without one). */
static inline void install(i64 *S, u8 *B, i64 i, i64 lva, i64 lpa, int fetch, int count)
{
    i64 line = S[H_C_LINE];
    S[S[H_R_TAG] + i] = lva;
    S[S[H_R_LPA] + i] = lpa;
    S[S[H_R_DIRTY] + i] = 0;
    i64 clk = S[H_C_CLOCK];
    S[S[H_R_STAMP] + i] = clk;
    S[H_C_CLOCK] = clk + 1;
    mark_line(S, B, i);
    i64 d = S[H_B_CDATA] + i * line;
    if (fetch) {
        ram_to_line(S, B, lpa, d, line);
        if (count) {
            cstat(S, CS_LINE_FILLS, 1);
            cstat(S, CS_BYTES_READ, line);
        }
    } else {
        for (i64 k = 0; k < line; k++)
            B[d + k] = 0;
    }
}

static inline void touch(i64 *S, u8 *B, i64 i)
{
    if (S[H_C_REPL] == REPL_LRU) {
        i64 clk = S[H_C_CLOCK];
        S[S[H_R_STAMP] + i] = clk;
        S[H_C_CLOCK] = clk + 1;
        mark_line(S, B, i);
    }
}

static inline i64 xorshift(i64 *S)
{
    /* 63-bit xorshift as in kernels.py; unsigned shifts avoid C's signed-overflow UB. */
    const uint64_t M = UINT64_C(0x7FFFFFFFFFFFFFFF);
    uint64_t x = (uint64_t)S[H_C_RNG];
    x ^= (x << 13) & M;
    x ^= x >> 7;
    x ^= (x << 17) & M;
    S[H_C_RNG] = (i64)x;
    return (i64)x;
}

/* ------------------------------------------------------------------------------------------- */
/* find / victim / accesses (the ways-generic kernels)                                          */
/* ------------------------------------------------------------------------------------------- */

static inline i64 find(i64 *S, i64 lva)
{
    i64 ways = S[H_C_WAYS];
    i64 st = (lva >> S[H_C_LSHIFT]) & S[H_C_SETMASK];
    i64 base = st * ways;
    i64 tag = S[H_R_TAG] + base;
    for (i64 w = 0; w < ways; w++)
        if (S[tag + w] == lva)
            return base + w;
    return -1;
}

static inline i64 victim(i64 *S, i64 lva)
{
    i64 ways = S[H_C_WAYS];
    i64 st = (lva >> S[H_C_LSHIFT]) & S[H_C_SETMASK];
    i64 base = st * ways;
    i64 repl = S[H_C_REPL];
    if (repl == REPL_RR) {
        i64 rr = S[H_R_RR] + st;
        i64 w = S[rr];
        S[rr] = (w + 1) & (ways - 1);
        return base + w;
    }
    i64 tag = S[H_R_TAG] + base;
    for (i64 w = 0; w < ways; w++)
        if (S[tag + w] == TAG_INVALID)
            return base + w;
    if (repl == REPL_RANDOM)
        return base + (xorshift(S) >> 11) % ways;
    i64 stamp = S[H_R_STAMP] + base;
    i64 best = 0;
    for (i64 w = 1; w < ways; w++)
        if (S[stamp + w] < S[stamp + best])
            best = w;
    return base + best;
}

/* Line holding lva after a miss fill; *hit tells whether it was there. */
static inline i64 lookup_or_fill(i64 *S, u8 *B, i64 lva, i64 lpa, int *hit)
{
    i64 i = find(S, lva);
    if (i >= 0) {
        touch(S, B, i);
        *hit = 1;
        return i;
    }
    i = victim(S, lva);
    evict(S, B, i);
    install(S, B, i, lva, lpa, 1, 1);
    *hit = 0;
    return i;
}

int ref_load(i64 *S, u8 *B, i64 va, i64 pa, i64 n, u8 *out, i64 oo)
{
    i64 lmask = S[H_C_LINE] - 1;
    i64 off = va & lmask;
    int hit;
    cstat(S, CS_LOADS, 1);
    i64 i = lookup_or_fill(S, B, va - off, pa != NO_PA ? pa - off : pa, &hit);
    cstat(S, hit ? CS_LOAD_HITS : CS_LOAD_MISSES, 1);
    i64 d = S[H_B_CDATA] + i * (lmask + 1) + off;
    for (i64 k = 0; k < n; k++)
        out[oo + k] = B[d + k];
    return hit;
}

/* A CPU store; has_data 0 (trace replay) marks bytes dirty without new data. A write-allocate
 * miss fetches the line unless the store covers all of it; a read-allocate miss writes straight
 * to memory and allocates nothing. */
static inline int store_core(i64 *S, u8 *B, i64 va, i64 pa, i64 n, const u8 *src, i64 so, int has_data)
{
    i64 line = S[H_C_LINE];
    i64 off = va & (line - 1);
    cstat(S, CS_STORES, 1);
    i64 i = find(S, va - off);
    int hit = i >= 0;
    if (hit) {
        touch(S, B, i);
        cstat(S, CS_STORE_HITS, 1);
    } else {
        cstat(S, CS_STORE_MISSES, 1);
        if (S[H_C_WA] == 0) {
            if (has_data)
                bytes_to_ram(S, B, pa, src, so, n);
            else {
                cstat(S, CS_BYTES_WRITTEN, n);
                cstat(S, CS_WRITETHROUGHS, 1);
            }
            return 0;
        }
        i = victim(S, va - off);
        evict(S, B, i);
        /* a store covering the whole line needs no fetch (Dinero IV); a replayed one carries
         * no data, so it copies RAM into the line without counting a fetch */
        install(S, B, i, va - off, pa - off, n < line || !has_data, n < line);
    }
    mark_line(S, B, i);
    if (has_data) {
        i64 d = S[H_B_CDATA] + i * line + off;
        for (i64 k = 0; k < n; k++)
            B[d + k] = src[so + k];
    }
    if (S[H_C_WB])
        S[S[H_R_DIRTY] + i] |= granule_mask(S, off, n);
    else if (has_data)
        bytes_to_ram(S, B, pa, src, so, n);
    else {
        cstat(S, CS_BYTES_WRITTEN, n);
        cstat(S, CS_WRITETHROUGHS, 1);
    }
    return hit;
}

int ref_store(i64 *S, u8 *B, i64 va, i64 pa, i64 n, const u8 *src, i64 so)
{
    return store_core(S, B, va, pa, n, src, so, 1);
}

i64 ref_find(i64 *S, i64 lva) { return find(S, lva); }

i64 ref_line_op(i64 *S, u8 *B, i64 op, i64 va)
{
    i64 lmask = S[H_C_LINE] - 1;
    i64 i = find(S, va & ~lmask);
    if (op == OP_INV) {
        cstat(S, CS_LINE_INVALIDATES, 1);
        if (i < 0)
            return 0;
        return drop(S, B, i) ? 2 : 1;
    }
    cstat(S, op == OP_CLEAN ? CS_LINE_CLEANS : CS_LINE_FLUSHES, 1);
    if (i < 0)
        return 0;
    int dirty = write_back(S, B, i);
    if (op == OP_FLUSH) {
        S[S[H_R_TAG] + i] = TAG_INVALID;
        mark_line(S, B, i);
    }
    return dirty ? 2 : 1;
}

void ref_line_alloc(i64 *S, u8 *B, i64 va)
{
    i64 lva = va & ~(S[H_C_LINE] - 1);
    if (find(S, lva) >= 0)
        return;
    i64 i = victim(S, lva);
    evict(S, B, i);
    install(S, B, i, lva, NO_PA, 0, 0);
}

/* Trace identity-mapped (pa = va), accesses split at line boundaries (Dinero IV d4_splitm). */
i64 ref_replay(i64 *S, u8 *B, const i64 *kinds, const i64 *addrs, const i64 *sizes, i64 len)
{
    i64 line = S[H_C_LINE];
    i64 lmask = line - 1;
    for (i64 t = 0; t < len; t++) {
        i64 kind = kinds[t];
        i64 a = addrs[t];
        if (kind == ACC_IFETCH)
            continue;
        if (kind == ACC_COPYBACK || kind == ACC_INVALIDATE) {
            ref_line_op(S, B, kind == ACC_COPYBACK ? OP_CLEAN : OP_INV, a);
            continue;
        }
        i64 end = a + (sizes[t] > 1 ? sizes[t] : 1);
        for (;;) {
            i64 off = a & lmask;
            i64 n = imin(line - off, end - a);
            if (kind == ACC_STORE)
                store_core(S, B, a, a, n, NULL, 0, 0);
            else
                ref_load(S, B, a, a, 0, NULL, 0);
            a += n;
            if (a >= end)
                break;
        }
    }
    return len;
}

/* ------------------------------------------------------------------------------------------- */
/* Maintenance routines (emu/cache/maint.py)                                                    */
/* ------------------------------------------------------------------------------------------- */

static inline void account_line(i64 *S, i64 op, i64 r)
{
    if (op == OP_INV)
        uop(S, UOP_DLINE_INV, 1);
    else if (op == OP_CLEAN)
        uop(S, r == 2 ? UOP_DLINE_CLEAN_DIRTY : UOP_DLINE_CLEAN, 1);
    else
        uop(S, r == 2 ? UOP_DLINE_FLUSH_DIRTY : UOP_DLINE_FLUSH, 1);
}

static inline void mcr_line(i64 *S, u8 *B, i64 op, i64 va)
{
    i64 r = ref_line_op(S, B, op, va);
    account_line(S, op, r);
}

/* kernels.py range_lines: the line ops of a range loop, at least one line; one only if `one`
 * (numba's nmax of 1; the references run no executor, so never the H_BATCH lines after it) */
static inline i64 range_lines(i64 *S, u8 *B, i64 op, i64 va, i64 end, int one, i64 *pn,
                              i64 *pnd)
{
    i64 lshift = S[H_C_LSHIFT], setmask = S[H_C_SETMASK], ways = S[H_C_WAYS];
    i64 tagb = S[H_R_TAG], dirtyb = S[H_R_DIRTY];
    i64 n = 0, nd = 0;
    for (;;) {
        i64 base = ((va >> lshift) & setmask) * ways, i = -1;
        for (i64 w = 0; w < ways; w++)
            if (S[tagb + base + w] == va) { i = base + w; break; }
        if (i >= 0) {
            if (op == OP_INV) {
                if (drop(S, B, i))
                    nd += 1;
            } else if (S[dirtyb + i] != 0) {
                write_back(S, B, i);
                nd += 1;
            }
            if (op == OP_FLUSH) {
                S[tagb + i] = TAG_INVALID;
                mark_line(S, B, i);
            }
        }
        n += 1;
        va += (i64)1 << lshift;
        if (va >= end || one)
            break;
    }
    if (op == OP_INV)
        cstat(S, CS_LINE_INVALIDATES, n);
    else if (op == OP_CLEAN)
        cstat(S, CS_LINE_CLEANS, n);
    else
        cstat(S, CS_LINE_FLUSHES, n);
    *pn = n;
    *pnd = nd;
    return va;
}

/* maint.py _account_loop */
static inline void account_loop(i64 *S, i64 op, i64 n, i64 nd, int ended)
{
    if (op == OP_INV)
        uop(S, UOP_DLINE_INV, n);
    else if (op == OP_CLEAN) {
        uop(S, UOP_DLINE_CLEAN, n - nd);
        uop(S, UOP_DLINE_CLEAN_DIRTY, nd);
    } else {
        uop(S, UOP_DLINE_FLUSH, n - nd);
        uop(S, UOP_DLINE_FLUSH_DIRTY, nd);
    }
    uop(S, UOP_ALU, 2 * n);
    loop_back(S, n, ended);
}

static inline void epilogue(i64 *S, i64 op, i64 style)
{
    if (op == OP_FLUSH && style == STYLE_V4WB)
        uop(S, UOP_ICACHE_INV, 1);
    uop(S, UOP_DRAIN_WB, 1);
    cstat(S, CS_DRAINS, 1);
    uop(S, UOP_BRANCH, 1);
}

/* up to the range op: an invalidate's partial edge lines (IRQs on); 1 if it cleaned one */
/* maint.py _clean_edges: an invalidate cleans its partial first and last lines; 1 if any */
static inline int clean_edges(i64 *S, u8 *B, i64 start, i64 end)
{
    i64 lmask = S[H_C_LINE] - 1;
    if (start & lmask)
        mcr_line(S, B, OP_CLEAN, start);
    if (end & lmask)
        mcr_line(S, B, OP_CLEAN, end);
    return ((start | end) & lmask) != 0;
}

static inline int feroceon_edges(i64 *S, u8 *B, i64 op, i64 start, i64 end)
{
    uop(S, UOP_MRS, 1);
    if (op != OP_INV)
        return 0;
    uop(S, UOP_ALU, 2);
    return clean_edges(S, B, start, end);
}

static inline void feroceon_range(i64 *S, u8 *B, i64 op, i64 start, i64 end)
{
    i64 lmask = S[H_C_LINE] - 1;
    i64 top = end != start ? end - 1 : end;
    uop(S, UOP_ALU, 3);
    uop(S, UOP_MSR_C, 1);
    i64 cr = S[H_CPUREC];
    int masked = S[H_R_CPU] != 0 && S[cr + CPU_IRQOFF] == 0;   /* a standalone cache has no CPU */
    if (masked)
        irqs_masked(S, cr);
    uop(S, UOP_DRANGE_START, 2);
    i64 va = start & ~lmask;
    i64 n = 0;
    for (;;) {
        i64 r = ref_line_op(S, B, op, va);
        if (r == 2 && op != OP_INV)
            uop(S, UOP_WRITEBACK, 1);
        n += 1;
        va += lmask + 1;
        if (va > top)
            break;
    }
    uop(S, UOP_DRANGE_LINE, n);
    uop(S, UOP_MSR_C, 1);
    if (masked)
        irqs_unmasked(S, cr);
    if (op != OP_INV) {
        uop(S, UOP_DRAIN_WB, 1);
        cstat(S, CS_DRAINS, 1);
    }
    uop(S, UOP_BRANCH, 1);
}

/* maint.py _two_op_step: the clean of a line, or its invalidate and the loop's tail; a
 * scheduling point between the two (cursor | RANGE_HALF: cleaned, invalidate next) */
static i64 two_op_step(i64 *S, u8 *B, i64 style, i64 cursor, i64 end)
{
    i64 va = cursor & ~(i64)RANGE_HALF;
    if (cursor == va) {
        mcr_line(S, B, OP_CLEAN, va);
        return va | RANGE_HALF;
    }
    mcr_line(S, B, OP_INV, va);
    va += S[H_C_LINE];
    uop(S, UOP_ALU, 2);
    loop_back(S, 1, va >= end);
    if (va < end)
        return va;
    epilogue(S, OP_FLUSH, style);
    return RANGE_DONE;
}

i64 ref_dma_range_step(i64 *S, u8 *B, i64 op, i64 start, i64 end, i64 cursor)
{
    i64 style = S[H_C_STYLE];
    i64 lmask = S[H_C_LINE] - 1;
    if (style == STYLE_FEROCEON) {
        if (cursor == RANGE_START) {
            cstat(S, CS_RANGE_OPS, 1);
            if (feroceon_edges(S, B, op, start, end) && S[H_YIELD])
                return start & ~lmask;  /* scheduling point before the masked range op */
        }
        feroceon_range(S, B, op, start, end);
        return RANGE_DONE;
    }
    /* ARM926 with CONFIG_CPU_DCACHE_WRITETHROUGH: no edge cleans, clean only drains,
       flush invalidates each line (c7,c6,1) */
    int wt = style == STYLE_ARM926 && S[H_C_WB] == 0;
    if (wt && op == OP_FLUSH)
        op = OP_INV;
    if (cursor == RANGE_START) {
        cstat(S, CS_RANGE_OPS, 1);
        cursor = start & ~lmask;
        if (wt && op == OP_CLEAN) {
            epilogue(S, op, style);
            return RANGE_DONE;
        }
        if (op == OP_INV && !wt) {
            uop(S, UOP_ALU, 3);
            if (clean_edges(S, B, start, end) && S[H_YIELD])
                return cursor;      /* scheduling point: edge cleans done, loop not begun */
        } else {
            uop(S, UOP_ALU, 1);
        }
    }
    if (op == OP_FLUSH && (style == STYLE_XSCALE || style == STYLE_V4WB)) {
        /* clean then invalidate each line, an instruction a step (all here if none yields) */
        cursor = two_op_step(S, B, style, cursor, end);
        while (cursor != RANGE_DONE && S[H_YIELD] == 0)
            cursor = two_op_step(S, B, style, cursor, end);
        return cursor;
    }
    i64 n, nd;
    cursor = range_lines(S, B, op, cursor, end, S[H_YIELD] != 0, &n, &nd);
    account_loop(S, op, n, nd, cursor >= end);
    if (cursor < end)
        return cursor;
    epilogue(S, op, style);
    return RANGE_DONE;
}

void ref_dma_range(i64 *S, u8 *B, i64 op, i64 start, i64 end)
{
    i64 saved = S[H_YIELD];
    S[H_YIELD] = 0;
    ref_dma_range_step(S, B, op, start, end, RANGE_START);
    S[H_YIELD] = saved;
}

static inline void flush_all_arm926(i64 *S, u8 *B)
{
    i64 tag = S[H_R_TAG];
    i64 dirty = S[H_R_DIRTY];
    i64 iters = 1;
    int wt = S[H_C_WB] == 0;           /* CONFIG_CPU_DCACHE_WRITETHROUGH: mcr c7,c6,0 */
    for (i64 i = 0; i < S[H_C_NLINES] && !wt; i++) {
        if (S[tag + i] != TAG_INVALID && S[dirty + i] != 0) {
            flush_index(S, B, i);
            cstat(S, CS_LINE_FLUSHES, 1);
            uop(S, UOP_WRITEBACK, 1);
            iters += 1;
        }
    }
    for (i64 i = 0; i < S[H_C_NLINES]; i++)
        if (S[tag + i] != TAG_INVALID) {
            S[tag + i] = TAG_INVALID;
            mark_line(S, B, i);
        }
    if (wt) {
        uop(S, UOP_DCACHE_INV_ALL, 1);
        return;
    }
    uop(S, UOP_TCI_ITER, iters);
    uop(S, UOP_DCACHE_SCAN, S[H_C_NLINES]);
    loop_back(S, iters, 1);
}

static inline void flush_all_feroceon(i64 *S, u8 *B)
{
    i64 ways = S[H_C_WAYS];
    i64 tag = S[H_R_TAG];
    for (i64 st = S[H_C_NSETS] - 1; st > -1; st--) {
        uop(S, UOP_ALU, 2);
        loop_back(S, 1, st == 0);
        loop_back(S, ways, 1);
        for (i64 w = ways - 1; w > -1; w--) {
            i64 i = st * ways + w;
            uop(S, UOP_SETWAY_OP, 1);
            uop(S, UOP_ALU, 1);
            cstat(S, CS_LINE_FLUSHES, 1);
            if (S[tag + i] != TAG_INVALID && flush_index(S, B, i))
                uop(S, UOP_WRITEBACK, 1);
        }
    }
}

static inline i64 window(i64 *S)
{
    i64 t = S[H_C_TOGGLE] ^ 1;
    S[H_C_TOGGLE] = t;
    uop(S, UOP_LOAD, 2);
    uop(S, UOP_ALU, 2);
    uop(S, UOP_STORE, 1);
    return S[H_C_WIN_VA] + t * S[H_C_WIN_SIZE];
}

static inline void flush_all_xscale(i64 *S, u8 *B)
{
    i64 base = window(S);
    i64 line = S[H_C_LINE];
    i64 n = S[H_C_WIN_SIZE] / line;
    for (i64 j = 0; j < n; j++)
        ref_line_alloc(S, B, base + j * line);
    uop(S, UOP_LINE_ALLOC, n);
    uop(S, UOP_ALU, n + n / 4);
    loop_back(S, n / 4, 1);
}

static inline void flush_all_v4wb(i64 *S, u8 *B)
{
    uop(S, UOP_ICACHE_INV, 1);
    i64 base = window(S);
    i64 line = S[H_C_LINE];
    i64 n = S[H_C_WIN_SIZE] / line;
    for (i64 j = 0; j < n; j++)
        ref_load(S, B, base + j * line, NO_PA, 0, B, 0);
    uop(S, UOP_DISPLACE_LOAD, n);
    uop(S, UOP_ALU, n);
    loop_back(S, n, 1);
}

void ref_flush_kern_cache_all(i64 *S, u8 *B)
{
    i64 style = S[H_C_STYLE];
    cstat(S, CS_FLUSH_ALLS, 1);
    if (style == STYLE_ARM926) {
        flush_all_arm926(S, B);
    } else if (style == STYLE_FEROCEON) {
        flush_all_feroceon(S, B);
    } else if (style == STYLE_XSCALE) {
        flush_all_xscale(S, B);
    } else {
        flush_all_v4wb(S, B);
        uop(S, UOP_DRAIN_WB, 1);
        cstat(S, CS_DRAINS, 1);
        uop(S, UOP_BRANCH, 1);
        return;
    }
    uop(S, UOP_ICACHE_INV, 1);
    uop(S, UOP_DRAIN_WB, 1);
    cstat(S, CS_DRAINS, 1);
    uop(S, UOP_BRANCH, 1);
}

/* ------------------------------------------------------------------------------------------- */
/* Batch loops: the timed region excludes the Python -> C call overhead                         */
/* ------------------------------------------------------------------------------------------- */

void ref_bench_inv(i64 *S, u8 *B, i64 start, i64 end, i64 reps)
{
    for (i64 r = 0; r < reps; r++)
        ref_dma_range(S, B, OP_INV, start, end);
}

i64 ref_bench_replay(i64 *S, u8 *B, const i64 *kinds, const i64 *addrs, const i64 *sizes,
                     i64 len, i64 reps)
{
    i64 total = 0;
    for (i64 r = 0; r < reps; r++)
        total += ref_replay(S, B, kinds, addrs, sizes, len);
    return total;
}
