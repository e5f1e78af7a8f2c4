/*
 * Plain C99 reference of emu's kmap_lock fast path and of dma_map_page on a pinned highmem page
 * (emu/mm/highmem.py, emu/mm/page_address.py, emu/exec/{locks,cpu,frames,core}.py,
 * emu/dma/mapping.py), on the same machine arrays as emu, compiled -O2.
 *
 * The routines are written as the kernel writes them (mm/highmem.c, arch/arm/mm/dma-mapping.c):
 * straight-line code that takes the lock, looks the page up, updates the count and unlocks;
 * no resume points, no step functions. What makes the result comparable with emu is that every
 * side effect emu keeps in S is made here too, with the same values:
 *
 *   - micro-op accounting: uop() into the running row (H_UOPCUR) and the CPU clock H_NOW with
 *     the core's costs, at the same sites (set_site per routine, page_address's own site);
 *   - IRQ mask, preempt count, lockdep usage bits, kmap_lock owner and acquisition records;
 *   - with S[H_PROFILE]: irqs-off sections (tracer max, histogram, ring), lock_stat hold times
 *     and the per-routine inclusive cycles;
 *   - the event trace (S[H_R_TRACE] + TR_ON; off unless a scenario asks for it);
 *   - what the executor does around one direct call (emu/exec/core.py direct_call/run_step and
 *     emu/exec/frames.py push/routine_returned): the frame pushed on the direct-call context
 *     and its slots, the context's step and cycle counters, H_STEP, H_STEP_T0, H_YIELD/H_ERR.
 *     A frame slot emu writes during a routine (F_PC, F_LOCKST, F_FLAGS, call arguments
 *     updated by dma_cache_maint_page) is written here with the value it ends with.
 *
 * Covered: kmap_high of a page that already has a pkmap mapping, kunmap_high (including its
 * wake_up), kmap_high_get, their BUG paths and a contended kmap_lock (ST_SPIN), and
 * dma_map_page / dma_cache_maint_page with the 2.6.30 API (any direction, lowmem or highmem,
 * several pages, either pinning scheme). Not covered (the functions return REF_UNSUPPORTED and
 * leave S unspecified): kmap_high of an unmapped page (map_new_virtual), the v3 DMA API, a full
 * frame stack, and the oracle's judge_discards that emu.exec.kernel.direct_call runs when a
 * call dropped dirty lines.
 *
 * bench_mm.py / bench_dma.py check that emu and this file leave S and B byte-identical.
 */
#include "cache_ref.c"

#define REF_UNSUPPORTED (-100)

static inline void local_irq_disable(i64 *S)
{
    uop(S, UOP_IRQ_DISABLE, 1);                 /* mrs; orr #PSR_I_BIT; msr cpsr_c */
    i64 cr = S[H_CPUREC];
    if (S[cr + CPU_IRQOFF] == 0)
        irqs_masked(S, cr);
}

static inline void local_irq_enable(i64 *S)
{
    uop(S, UOP_IRQ_ENABLE, 1);
    i64 cr = S[H_CPUREC];
    if (S[cr + CPU_IRQOFF] != 0)
        irqs_unmasked(S, cr);
}

static inline i64 local_irq_save(i64 *S)
{
    uop(S, UOP_IRQ_SAVE, 1);
    i64 cr = S[H_CPUREC];
    i64 flags = S[cr + CPU_IRQOFF];
    if (flags == 0)
        irqs_masked(S, cr);
    return flags;
}

static inline void local_irq_restore(i64 *S, i64 flags)
{
    uop(S, UOP_IRQ_RESTORE, 1);                 /* msr cpsr_c, flags */
    i64 cr = S[H_CPUREC];
    if (flags == 0 && S[cr + CPU_IRQOFF] != 0)
        irqs_unmasked(S, cr);
    else if (flags != 0 && S[cr + CPU_IRQOFF] == 0)
        irqs_masked(S, cr);
}

static inline void preempt_disable(i64 *S)
{
    if (S[H_PREEMPT])
        uop(S, UOP_PREEMPT_DISABLE, 1);
    S[S[H_CPUREC] + CPU_PREEMPT] += 1;
}

static inline void preempt_enable(i64 *S)
{
    if (S[H_PREEMPT])
        uop(S, UOP_PREEMPT_ENABLE, 1);
    S[S[H_CPUREC] + CPU_PREEMPT] -= 1;
}

/* ------------------------------------------------------------------------------------------- */
/* Spinlocks: kmap_lock with lock_stat and lockdep usage (emu/exec/locks.py)                    */
/* ------------------------------------------------------------------------------------------- */

static inline void smp_lock_uops(i64 *S)
{
    if (S[H_SMP])
        uop(S, UOP_SMP_LOCK, 1);
}

static inline void smp_unlock_uops(i64 *S)
{
    if (S[H_SMP])
        uop(S, UOP_SMP_UNLOCK, 1);
}

/* spin_lock_irqsave on an uncontended inner lock (hash bucket, pool, wait queue) */
static inline i64 raw_lock_irqsave(i64 *S)
{
    i64 flags = local_irq_save(S);
    preempt_disable(S);
    smp_lock_uops(S);
    return flags;
}

static inline void raw_unlock_irqrestore(i64 *S, i64 flags)
{
    smp_unlock_uops(S);
    local_irq_restore(S, flags);
    preempt_enable(S);
}

static inline i64 lock_begin(i64 *S, i64 flavour)
{
    i64 flags = 0;
    if (flavour == LOCK_IRQ)
        local_irq_disable(S);
    else if (flavour == LOCK_IRQSAVE)
        flags = local_irq_save(S);
    preempt_disable(S);
    return flags;
}

static inline void lockdep_usage(i64 *S, i64 lk)
{
    i64 cr = S[H_CPUREC];
    if (S[cr + CPU_HARDIRQ] != 0) {
        if ((S[lk + LK_USAGE] & USAGE_IN_HARDIRQ) == 0) {
            S[lk + LK_USAGE] |= USAGE_IN_HARDIRQ;
            S[lk + LK_IN_IRQ_SITE] = S[H_CUR_SITE];
            S[lk + LK_IN_IRQ_CTX] = S[H_CUR_CTX];
            S[lk + LK_IN_IRQ_STEP] = S[H_STEP];
        }
    } else if (S[cr + CPU_IRQOFF] == 0) {
        if ((S[lk + LK_USAGE] & USAGE_HARDIRQ_ON) == 0) {
            S[lk + LK_USAGE] |= USAGE_HARDIRQ_ON;
            S[lk + LK_IRQ_ON_SITE] = S[H_CUR_SITE];
            S[lk + LK_IRQ_ON_CTX] = S[H_CUR_CTX];
            S[lk + LK_IRQ_ON_STEP] = S[H_STEP];
        }
    }
}

static inline void stat_minmax(i64 *S, i64 lk, i64 mn, i64 mx, i64 total, i64 d)
{
    S[lk + total] += d;
    if (d > S[lk + mx])
        S[lk + mx] = d;
    if (d > 0 && (S[lk + mn] == 0 || d < S[lk + mn]))
        S[lk + mn] = d;
}

/* spin_lock(&kmap_lock) from a fresh frame f: 1 taken; 0 contended (emu spins: ST_SPIN). The
 * frame's F_FLAGS / F_LOCKST / F_SPIN_AT end as emu's acquire() leaves them. */
static inline int kmap_lock_acquire(i64 *S, i64 lk, i64 f, i64 flavour)
{
    S[f + F_FLAGS] = lock_begin(S, flavour);
    lockdep_usage(S, lk);
    if (S[lk + LK_OWNER] >= 0) {
        S[f + F_LOCKST] = LOCKST_SPINNING;
        S[f + F_SPIN_AT] = S[H_NOW];
        S[lk + LK_CONTENTIONS] += 1;
        uop(S, UOP_SPIN_WAIT, 1);
        trace(S, T_SPIN, S[H_CUR_SITE], S[lk + LK_OWNER]);
        return 0;
    }
    int waited = 0;
    if (S[H_NOW] < S[lk + LK_FREE_AT]) {
        /* released later in emulated time (another CPU): spin passes until then */
        S[f + F_LOCKST] = LOCKST_SPINNING;
        S[f + F_SPIN_AT] = S[H_NOW];
        S[lk + LK_CONTENTIONS] += 1;
        i64 cost = S[H_COST + UOP_SPIN_WAIT], t = S[lk + LK_FREE_AT];
        if (cost > 0)
            uop(S, UOP_SPIN_WAIT, (t - S[H_NOW] + cost - 1) / cost);
        if (S[H_NOW] < t)
            S[H_NOW] = t;
        waited = 1;
    }
    smp_lock_uops(S);
    if (waited && S[H_PROFILE]) {
        i64 d = S[H_NOW] - S[f + F_SPIN_AT];
        stat_minmax(S, lk, LK_WAIT_MIN, LK_WAIT_MAX, LK_WAIT_TOTAL, d);
        S[S[H_R_PROF] + PROF_H_WAIT + log2_bucket(d)] += 1;
    }
    S[f + F_LOCKST] = LOCKST_IDLE;
    S[lk + LK_OWNER] = S[H_CUR_CTX];
    S[lk + LK_OWNER_CPU] = S[H_CUR_CPU];
    S[lk + LK_ACQ_AT] = S[H_NOW];
    S[lk + LK_ACQ_SITE] = S[H_CUR_SITE];
    S[lk + LK_ACQUISITIONS] += 1;
    trace(S, T_LOCK, S[H_CUR_SITE], 0);
    return 1;
}

static inline void kmap_lock_release(i64 *S, i64 lk, i64 flavour, i64 flags)
{
    smp_unlock_uops(S);
    S[lk + LK_OWNER] = -1;
    S[lk + LK_OWNER_CPU] = -1;
    S[lk + LK_FREE_AT] = S[H_NOW];
    if (S[H_PROFILE]) {
        i64 d = S[H_NOW] - S[lk + LK_ACQ_AT];
        stat_minmax(S, lk, LK_HOLD_MIN, LK_HOLD_MAX, LK_HOLD_TOTAL, d);
        S[S[H_R_PROF] + PROF_H_HOLD + log2_bucket(d)] += 1;
        trace(S, T_UNLOCK, S[H_CUR_SITE], d);
    }
    if (flavour == LOCK_IRQ)
        local_irq_enable(S);
    else if (flavour == LOCK_IRQSAVE)
        local_irq_restore(S, flags);
    preempt_enable(S);
}

/* lock_kmap(): spin_lock_irq with ARCH_NEEDS_KMAP_HIGH_GET, else spin_lock */
static inline i64 lock_kmap_flavour(i64 *S) { return S[H_KMAP_IRQ] ? LOCK_IRQ : LOCK_PLAIN; }

/* lock_kmap_any(flags): spin_lock_irqsave with ARCH_NEEDS_KMAP_HIGH_GET, else spin_lock */
static inline i64 lock_kmap_any_flavour(i64 *S)
{
    return S[H_KMAP_IRQ] ? LOCK_IRQSAVE : LOCK_PLAIN;
}

/* ------------------------------------------------------------------------------------------- */
/* page_address() with HASHED_PAGE_VIRTUAL (emu/mm/page_address.py)                            */
/* ------------------------------------------------------------------------------------------- */

static inline i64 pam_node(i64 *S, i64 n) { return S[H_R_PAM] + n * PAM_W; }

static inline i64 page_address(i64 *S, i64 pfn)
{
    if (pfn < S[H_LOWMEM_PAGES]) {
        uop(S, UOP_ALU, 3);                     /* PageHighMem; __va(page_to_phys(page)) */
        return S[H_PAGE_OFFSET] + (pfn << PAGE_SHIFT);
    }
    i64 prev = S[H_CUR_SITE];
    set_site(S, SITE_PAGE_ADDRESS);
    /* page_slot(page): hash_ptr(page, PA_HASH_ORDER) of the struct page address */
    uint64_t page = (uint64_t)(MEM_MAP_BASE + pfn * STRUCT_PAGE_SIZE);
    i64 h = (i64)(((page * (uint64_t)GOLDEN_RATIO_PRIME_32) & 0xFFFFFFFFu) >> (32 - PA_HASH_ORDER));
    i64 head = S[H_LAST_PKMAP] + h;
    i64 flags = raw_lock_irqsave(S);            /* spin_lock_irqsave(&pas->lock, flags) */
    i64 n = S[pam_node(S, head) + PAM_NEXT];
    uop(S, UOP_ALU, 3);                         /* hash_ptr: mul, shift, add */
    i64 found = -1;
    while (n != head) {                         /* list_for_each_entry(pam, &pas->lh, list) */
        uop(S, UOP_HASH_STEP, 1);
        if (S[pam_node(S, n) + PAM_PAGE] == pfn) {
            found = n;
            break;
        }
        n = S[pam_node(S, n) + PAM_NEXT];
    }
    if (found < 0)
        uop(S, UOP_HASH_STEP, 1);               /* the test that ends the walk */
    raw_unlock_irqrestore(S, flags);
    set_site(S, prev);
    return found < 0 ? 0 : S[pam_node(S, found) + PAM_VIRT];
}

static inline i64 pkmap_nr(i64 *S, i64 va) { return (va - S[H_PKMAP_BASE]) >> PAGE_SHIFT; }

/* ------------------------------------------------------------------------------------------- */
/* The executor around a call (emu/exec/frames.py push/routine_returned, core.py run_step)      */
/* ------------------------------------------------------------------------------------------- */

static inline i64 ctx_rec(i64 *S, i64 c) { return S[H_R_CTX] + c * CTX_W; }

static inline i64 ctx_cycles_now(i64 *S, i64 cr)
{
    if (S[H_CUR_CTX] == (cr - S[H_R_CTX]) / CTX_W)
        return S[cr + CTX_CYCLES] + S[H_NOW] - S[H_STEP_T0];
    return S[cr + CTX_CYCLES];
}

static inline i64 fail(i64 *S, i64 code, i64 a, i64 b, i64 c, i64 d)
{
    S[H_ERR] = code;
    S[H_ERR_A] = a;
    S[H_ERR_B] = b;
    S[H_ERR_C] = c;
    S[H_ERR_D] = d;
    return ST_ERROR;
}

static inline i64 bug(i64 *S, i64 which, i64 a, i64 b, i64 c) { return fail(S, ERR_BUG, which, a, b, c); }

/* A new frame at f of context record cr (frames.push without the stack pointer). */
static inline void frame_init(i64 *S, i64 cr, i64 f, i64 routine, i64 a0, i64 a1, i64 a2,
                              i64 a3)
{
    S[f + F_ROUTINE] = routine;
    S[f + F_PC] = 0;
    S[f + F_LOCKST] = LOCKST_IDLE;
    S[f + F_FLAGS] = 0;
    S[f + F_SPIN_AT] = 0;
    S[f + F_A0] = a0;
    S[f + F_A1] = a1;
    S[f + F_A2] = a2;
    S[f + F_A3] = a3;
    S[f + F_A7] = 0;
    S[f + F_A8] = 0;
    if (S[H_PROFILE]) {
        S[f + F_T0] = ctx_cycles_now(S, cr);
        trace(S, T_CALL, routine, a0);
    }
}

/* Call `routine` from context c: its frame (or -1 if the stack is full), and the runner's
 * set_site for the routine (dispatch). */
static inline i64 call(i64 *S, i64 c, i64 routine, i64 site, i64 a0, i64 a1, i64 a2, i64 a3)
{
    i64 cr = ctx_rec(S, c);
    i64 sp = S[cr + CTX_SP];
    if (sp >= MAXDEPTH)
        return -1;
    i64 f = cr + CTX_FRAMES + sp * FW;
    frame_init(S, cr, f, routine, a0, a1, a2, a3);
    S[cr + CTX_SP] = sp + 1;
    set_site(S, site);
    return f;
}

/* The routine of frame f returned: its inclusive cycles, then pop. */
static inline void ret(i64 *S, i64 c, i64 f)
{
    i64 cr = ctx_rec(S, c);
    if (S[H_PROFILE]) {
        i64 r = S[f + F_ROUTINE];
        i64 d = ctx_cycles_now(S, cr) - S[f + F_T0];
        i64 p = S[H_R_PROFR] + r * PR_W;
        if (S[cr + CTX_IRQ_LINE] >= 0)
            p += PR_IRQ;
        S[p + PR_CALLS] += 1;
        S[p + PR_TOTAL] += d;
        if (S[p + PR_CALLS] == 1 || d < S[p + PR_MIN])
            S[p + PR_MIN] = d;
        if (d > S[p + PR_MAX])
            S[p + PR_MAX] = d;
        trace(S, T_RET, r, d);
    }
    S[cr + CTX_SP] -= 1;
}

static inline void set_ret(i64 *S, i64 c, i64 v) { S[ctx_rec(S, c) + CTX_RET] = v; }

/* One direct call (core.direct_call): the direct-call task on its CPU, scheduling points
 * passed through. */
typedef struct {
    i64 c, cr, f, yield, t0;
} direct_t;

static inline int direct_begin(i64 *S, direct_t *k, i64 routine, i64 site, i64 a0, i64 a1,
                               i64 a2, i64 a3)
{
    i64 c = S[H_DIRECT_CTX];
    i64 cr = ctx_rec(S, c);
    if (S[cr + CTX_SP] >= MAXDEPTH || S[cr + CTX_SP] != 0)
        return 0;                               /* only a call on an idle direct context */
    k->c = c;
    k->cr = cr;
    k->yield = S[H_YIELD];
    S[H_YIELD] = 0;
    S[H_ERR] = ERR_NONE;
    /* push (its set_site comes after run_step's enter_context, as in dispatch) */
    i64 sp = S[cr + CTX_SP];
    i64 f = cr + CTX_FRAMES + sp * FW;
    frame_init(S, cr, f, routine, a0, a1, a2, a3);
    S[cr + CTX_SP] = sp + 1;
    k->f = f;
    /* run_step: enter_context (switch_cpu, current context, its kind) */
    i64 cpu = S[cr + CTX_CPU];
    i64 old = S[H_CUR_CPU];
    if (old != cpu) {
        S[S[H_R_CPU] + old * CPU_W + CPU_CLOCK] = S[H_NOW];
        S[H_NOW] = S[S[H_R_CPU] + cpu * CPU_W + CPU_CLOCK];
        S[H_CUR_CPU] = cpu;
        S[H_CPUREC] = S[H_R_CPU] + cpu * CPU_W;
    }
    S[H_CUR_CTX] = c;
    S[H_CUR_KIND] = S[cr + CTX_KIND];              /* its row: set_site below */
    S[cr + CTX_STEPS] += 1;
    S[H_STEP] += 1;
    k->t0 = S[H_NOW];
    S[H_STEP_T0] = k->t0;
    set_site(S, site);                          /* dispatch: the routine's site */
    return 1;
}

/* End of the direct call with the routine's status: returned (pop, ST_DONE) or stopped
 * (error / spin: the frame stays, as in emu). */
static inline i64 direct_end(i64 *S, direct_t *k, i64 st)
{
    if (st == ST_RET || st == ST_RET_YIELD) {
        ret(S, k->c, k->f);
        st = ST_DONE;
    }
    S[k->cr + CTX_CYCLES] += S[H_NOW] - k->t0;
    S[H_STEP_T0] = S[H_NOW];
    S[H_YIELD] = k->yield;
    set_site(S, SITE_USER);                     /* back in the caller */
    return st;
}

/* ------------------------------------------------------------------------------------------- */
/* mm/highmem.c                                                                                 */
/* ------------------------------------------------------------------------------------------- */

/* kmap_high(page) for a page that already has a pkmap mapping (hm:198-214) */
static i64 kmap_high(i64 *S, i64 c, i64 f, i64 pfn)
{
    i64 lk = S[H_R_LOCK];
    i64 flavour = lock_kmap_flavour(S);
    if (!kmap_lock_acquire(S, lk, f, flavour))          /* lock_kmap() */
        return ST_SPIN;
    S[f + F_PC] = 1;
    i64 vaddr = page_address(S, pfn);
    if (vaddr == 0)
        return REF_UNSUPPORTED;                         /* map_new_virtual: not here */
    i64 cnt = S[H_R_PKMAP_COUNT] + pkmap_nr(S, vaddr);
    uop(S, UOP_LOAD, 1);
    uop(S, UOP_ALU, 3);                                 /* add; PKMAP_NR; cmp */
    uop(S, UOP_STORE, 1);
    uop(S, UOP_BRANCH, 1);
    if (S[cnt] + 1 < 2) {                               /* BUG_ON(pkmap_count[...] < 2) */
        kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);
        return bug(S, BUG_KMAP_COUNT, pfn, pkmap_nr(S, vaddr), S[cnt]);
    }
    S[cnt] += 1;                                        /* pkmap_count[PKMAP_NR(vaddr)]++ */
    kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);  /* unlock_kmap() */
    set_ret(S, c, vaddr);
    return ST_RET_YIELD;
}

/* wake_up(&pkmap_map_wait) */
static void wake_up(i64 *S)
{
    i64 q = S[H_R_WAITQ];
    i64 flags = raw_lock_irqsave(S);
    for (i64 j = 0; j < S[q]; j++) {
        i64 cr = ctx_rec(S, S[q + 1 + j]);
        if (S[cr + CTX_STATE] == CTX_SLEEPING) {
            S[cr + CTX_STATE] = CTX_RUNNABLE;
            S[cr + CTX_READY_AT] = S[H_NOW];            /* it runs no earlier than this */
            trace(S, T_WAKE, S[q + 1 + j], 0);
        }
        uop(S, UOP_ALU, 4);
    }
    raw_unlock_irqrestore(S, flags);
    S[S[H_R_MMSTAT] + MM_WAKEUPS] += 1;
}

/* kunmap_high(page) (hm:251-289) */
static i64 kunmap_high(i64 *S, i64 c, i64 f, i64 pfn)
{
    i64 lk = S[H_R_LOCK];
    i64 flavour = lock_kmap_any_flavour(S);
    if (!kmap_lock_acquire(S, lk, f, flavour))          /* lock_kmap_any(flags) */
        return ST_SPIN;
    S[f + F_PC] = 1;
    i64 vaddr = page_address(S, pfn);
    if (vaddr == 0) {                                   /* BUG_ON(!vaddr) */
        kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);
        return bug(S, BUG_KUNMAP_NO_VADDR, pfn, 0, 0);
    }
    i64 nr = pkmap_nr(S, vaddr);
    i64 cnt = S[H_R_PKMAP_COUNT] + nr;
    uop(S, UOP_LOAD, 1);
    uop(S, UOP_ALU, 3);
    uop(S, UOP_STORE, 1);
    uop(S, UOP_BRANCH, 2);
    if (S[cnt] <= 1) {                                  /* case 0: BUG() */
        kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);
        return bug(S, BUG_KUNMAP_UNBALANCED, pfn, nr, S[cnt]);
    }
    S[cnt] -= 1;
    int need_wakeup = S[cnt] == 1 && S[S[H_R_WAITQ]] > 0;
    kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);  /* unlock_kmap_any(flags) */
    set_ret(S, c, 0);
    if (need_wakeup)
        wake_up(S);                                     /* outside the lock (hm:287) */
    return ST_RET_YIELD;
}

/* kmap_high_get(page) (hm:218-243): pin an existing mapping, never create one */
static i64 kmap_high_get(i64 *S, i64 c, i64 f, i64 pfn)
{
    i64 lk = S[H_R_LOCK];
    i64 flavour = lock_kmap_any_flavour(S);
    if (!kmap_lock_acquire(S, lk, f, flavour))
        return ST_SPIN;
    S[f + F_PC] = 1;
    i64 vaddr = page_address(S, pfn);
    uop(S, UOP_BRANCH, 1);
    if (vaddr != 0) {
        i64 cnt = S[H_R_PKMAP_COUNT] + pkmap_nr(S, vaddr);
        uop(S, UOP_LOAD, 1);
        uop(S, UOP_ALU, 3);
        uop(S, UOP_STORE, 1);
        uop(S, UOP_BRANCH, 1);
        if (S[cnt] < 1) {                               /* BUG_ON(pkmap_count[...] < 1) */
            kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);
            return bug(S, BUG_KHG_COUNT, pfn, pkmap_nr(S, vaddr), S[cnt]);
        }
        S[cnt] += 1;
    }
    kmap_lock_release(S, lk, flavour, S[f + F_FLAGS]);
    set_ret(S, c, vaddr);
    return ST_RET_YIELD;
}

/* ------------------------------------------------------------------------------------------- */
/* Direct calls (what emu.exec.core.direct_call returns: ST_DONE, ST_ERROR, ST_SPIN)            */
/* ------------------------------------------------------------------------------------------- */

i64 ref_kmap_high(i64 *S, uint8_t *B, i64 pfn)
{
    direct_t k;
    (void)B;
    if (!direct_begin(S, &k, R_KMAP_HIGH, SITE_KMAP_HIGH, pfn, 0, 0, 0))
        return REF_UNSUPPORTED;
    i64 st = kmap_high(S, k.c, k.f, pfn);
    if (st == REF_UNSUPPORTED)
        return st;
    return direct_end(S, &k, st);
}

i64 ref_kunmap_high(i64 *S, uint8_t *B, i64 pfn)
{
    direct_t k;
    (void)B;
    if (!direct_begin(S, &k, R_KUNMAP_HIGH, SITE_KUNMAP_HIGH, pfn, 0, 0, 0))
        return REF_UNSUPPORTED;
    return direct_end(S, &k, kunmap_high(S, k.c, k.f, pfn));
}

i64 ref_kmap_high_get(i64 *S, uint8_t *B, i64 pfn)
{
    direct_t k;
    (void)B;
    if (!direct_begin(S, &k, R_KMAP_HIGH_GET, SITE_KMAP_HIGH_GET, pfn, 0, 0, 0))
        return REF_UNSUPPORTED;
    return direct_end(S, &k, kmap_high_get(S, k.c, k.f, pfn));
}

/* What emu.exec.kernel.direct_call returns to the Python API: the routine's result, or
 * -1 - status. (It would also run the oracle's judge_discards after a call that dropped dirty
 * lines; the fast path drops none, and this reference does not implement it.) */
static inline i64 api_result(i64 *S, i64 st)
{
    if (st == REF_UNSUPPORTED || S[S[H_R_EV] + EV_COUNT] != S[H_EV_SEEN])
        return REF_UNSUPPORTED;
    if (st != ST_DONE)
        return -1 - st;
    return S[ctx_rec(S, S[H_DIRECT_CTX]) + CTX_RET];
}

i64 ref_api_kmap_high(i64 *S, uint8_t *B, i64 pfn) { return api_result(S, ref_kmap_high(S, B, pfn)); }

i64 ref_api_kunmap_high(i64 *S, uint8_t *B, i64 pfn)
{
    return api_result(S, ref_kunmap_high(S, B, pfn));
}

/* n pairs kmap_high + kunmap_high of one page; returns how many calls did not end ST_DONE */
i64 ref_bench_kmap_pair(i64 *S, uint8_t *B, i64 pfn, i64 n)
{
    i64 bad = 0;
    for (i64 i = 0; i < n; i++) {
        bad += ref_kmap_high(S, B, pfn) != ST_DONE;
        bad += ref_kunmap_high(S, B, pfn) != ST_DONE;
    }
    return bad;
}

/* ------------------------------------------------------------------------------------------- */
/* arch/arm/mm/dma-mapping.c (2.6.30): dma_map_page -> dma_cache_maint_page                      */
/* ------------------------------------------------------------------------------------------- */

static inline void outer_op(i64 *S, i64 op, i64 lo, i64 hi)
{
    i64 o = S[H_R_OUTER];
    S[o + op] += 1;
    S[o + OUTER_LAST_LO] = lo;
    S[o + OUTER_LAST_HI] = hi;
}

static inline i64 dir2op(i64 d) { return d == DMA_BIDIRECTIONAL ? OP_FLUSH : d == DMA_TO_DEVICE ? OP_CLEAN : OP_INV; }

/* dma_cache_maint_page(page, offset, size, dir) (dm:562-586): per page-sized chunk, find a
 * virtual address for the L1 op (lowmem: linear map; highmem: kmap_high_get pins the pkmap
 * mapping, or the unpinned page_address of the racy scheme), run dmac_*_range, unpin, then the
 * outer-cache hook. Returns ST_RET, or the status of a callee that stopped. The frame's slots
 * end as emu's step function leaves them (A0 page, A1 offset, A2 left, A4 chunk, A5 cursor,
 * A6 base vaddr, A7/A8 the whole buffer). */
static i64 dma_cache_maint_page(i64 *S, uint8_t *B, i64 c, i64 pfn, i64 off, i64 size, i64 dir)
{
    i64 f = call(S, c, R_DMA_CACHE_MAINT_PAGE, SITE_DMA_CACHE_MAINT_PAGE, pfn, off, size, dir);
    if (f < 0)
        return REF_UNSUPPORTED;
    i64 op = dir2op(dir);
    i64 left = size;
    for (;;) {
        if (S[f + F_A7] == 0 && S[f + F_A8] == 0) {     /* first chunk (emu's test) */
            S[f + F_A7] = (pfn << PAGE_SHIFT) + off;
            S[f + F_A8] = left;
        }
        if (left <= 0)
            break;
        if (off >= PAGE_SIZE) {                         /* normalise, as later kernels do */
            pfn += off >> PAGE_SHIFT;
            off &= PAGE_SIZE - 1;
        }
        i64 n = left;
        int high = pfn >= S[H_LOWMEM_PAGES];
        if (high && n + off > PAGE_SIZE)
            n = PAGE_SIZE - off;                        /* a highmem chunk ends at its page */
        S[f + F_A0] = pfn;                              /* frame: this chunk */
        S[f + F_A1] = off;
        S[f + F_A2] = left;
        S[f + F_A4] = n;
        S[f + F_A5] = RANGE_START;
        uop(S, UOP_ALU, 4);
        uop(S, UOP_BRANCH, 2);
        i64 vaddr;
        int pinned = 0;
        if (!high) {
            vaddr = S[H_PAGE_OFFSET] + (pfn << PAGE_SHIFT);
        } else if (S[H_DMA_PIN] == PIN_KMAP_HIGH_GET) {
            S[f + F_PC] = 1;                            /* _PINNED */
            i64 g = call(S, c, R_KMAP_HIGH_GET, SITE_KMAP_HIGH_GET, pfn, 0, 0, 0);
            if (g < 0)
                return REF_UNSUPPORTED;
            i64 st = kmap_high_get(S, c, g, pfn);
            if (st != ST_RET_YIELD)
                return st;
            ret(S, c, g);
            set_site(S, SITE_DMA_CACHE_MAINT_PAGE);
            vaddr = S[ctx_rec(S, c) + CTX_RET];
            pinned = vaddr != 0;
        } else {
            vaddr = page_address(S, pfn);               /* unpinned: may be recycled under us */
            trace(S, T_PAGE_ADDRESS, vaddr, pfn);
        }
        S[f + F_A6] = vaddr;
        if (vaddr != 0) {                               /* no mapping: no lines to maintain */
            i64 start = vaddr + off;
            i64 pa = (pfn << PAGE_SHIFT) + off;
            S[H_DMA_LO] = pa;
            S[H_DMA_HI] = pa + n;
            trace(S, T_MAINT, start, pa);
            S[f + F_A5] = ref_dma_range_step(S, B, op, start, start + n, RANGE_START);
            S[H_DMA_LO] = -1;                           /* (dmac_*_range; cursor: RANGE_DONE) */
            S[H_DMA_HI] = -1;
            if (pinned) {                   /* kunmap_high(page): the unpin's own record */
                S[f + F_PC] = 4;                        /* _OUTER */
                i64 u = call(S, c, R_KUNMAP_HIGH_UNPIN, SITE_KUNMAP_HIGH, pfn, 0, 0, 0);
                if (u < 0)
                    return REF_UNSUPPORTED;
                i64 st = kunmap_high(S, c, u, pfn);
                if (st != ST_RET_YIELD)
                    return st;
                ret(S, c, u);
                set_site(S, SITE_DMA_CACHE_MAINT_PAGE);
            }
        }
        i64 pa = (pfn << PAGE_SHIFT) + off;
        outer_op(S, op, pa, pa + n);                    /* outer_*_range(paddr, paddr + size) */
        left -= n;
        pfn += 1;
        off = 0;
    }
    S[f + F_A0] = pfn;
    S[f + F_A1] = off;
    S[f + F_A2] = left;
    S[f + F_PC] = 0;                                    /* _CHUNK */
    ret(S, c, f);
    return ST_RET;
}

static inline void debug_add(i64 *S, i64 handle, i64 size, i64 d, i64 pfn)
{
    i64 t = S[H_R_DMADBG];
    if (S[t + DD_OFF])
        return;
    i64 n = S[t + DD_COUNT];
    if (n >= S[t + DD_CAP]) {
        S[t + DD_OFF] = 1;                              /* "DMA-API: debugging out of memory" */
        return;
    }
    i64 e = t + DD_HDR + n * DD_W;
    S[e + DD_HANDLE] = handle;
    S[e + DD_SIZE] = size;
    S[e + DD_DIR] = d;
    S[e + DD_PFN] = pfn;
    S[e + DD_TYPE] = DD_TYPE_PAGE;                      /* dma_map_page (no sg here) */
    S[t + DD_COUNT] = n + 1;
}

/* dma_map_page(dev, page, offset, size, dir) as a direct call; core.direct_call's status */
i64 ref_dma_map_page(i64 *S, uint8_t *B, i64 pfn, i64 off, i64 size, i64 dir)
{
    if (S[H_DMA_API] != API_2630)
        return REF_UNSUPPORTED;
    direct_t k;
    if (!direct_begin(S, &k, R_DMA_MAP_PAGE, SITE_DMA_MAP_PAGE, pfn, off, size, dir))
        return REF_UNSUPPORTED;
    if (!(dir == DMA_BIDIRECTIONAL || dir == DMA_TO_DEVICE || dir == DMA_FROM_DEVICE))
        return direct_end(S, &k, bug(S, BUG_DMA_DIRECTION, dir, 0, 0));
    S[k.f + F_PC] = 1;
    i64 st = dma_cache_maint_page(S, B, k.c, pfn, off, size, dir);
    if (st == REF_UNSUPPORTED)
        return st;
    if (st != ST_RET)
        return direct_end(S, &k, st);
    set_site(S, SITE_DMA_MAP_PAGE);                     /* back in the caller */
    i64 handle = (pfn << PAGE_SHIFT) + off;             /* page_to_dma(dev, page) + offset */
    debug_add(S, handle, size, dir, pfn);
    set_ret(S, k.c, handle);
    return direct_end(S, &k, ST_RET_YIELD);
}

i64 ref_api_dma_map_page(i64 *S, uint8_t *B, i64 pfn, i64 off, i64 size, i64 dir)
{
    return api_result(S, ref_dma_map_page(S, B, pfn, off, size, dir));
}

/* n maps of one buffer; dma-debug's table count is reset before each (as the numba loop does) */
i64 ref_bench_dma_map(i64 *S, uint8_t *B, i64 pfn, i64 off, i64 size, i64 dir, i64 n)
{
    i64 bad = 0;
    i64 dd = S[H_R_DMADBG];
    for (i64 i = 0; i < n; i++) {
        S[dd + DD_COUNT] = 0;
        bad += ref_dma_map_page(S, B, pfn, off, size, dir) != ST_DONE;
    }
    return bad;
}
