"""Every constant emu's kernels use, in one place.

numba treats module-level ints as compile-time constants, so everything here is fixed for the
life of the process. Anything a user can change (geometry, LAST_PKMAP, cycle costs) lives in the
machine's state arrays instead, written there at construction.

Machine state is two flat arrays: ``S`` (int64, every integer) and ``B`` (uint8, every byte:
cache line data, RAM, the oracle's shadow of RAM). ``S`` starts with a header of fixed slots
(``H_*``). Some slots hold parameters; the ``H_R_*`` / ``H_B_*`` slots hold the offset at which a
variable-sized region starts in ``S`` / ``B`` (see :mod:`emu.layout`).
"""


class _Counter:
    """Hands out consecutive integers; keeps the numbering below free of hand-kept gaps."""

    def __init__(self, start=0):
        self.n = start

    def __call__(self):
        self.n += 1
        return self.n - 1


# ---------------------------------------------------------------------------------------------
# Header slots of S
# ---------------------------------------------------------------------------------------------
_h = _Counter()
H_MAGIC = _h()            # STATE_MAGIC: catches a wrong array passed to a kernel
H_S_SIZE = _h()           # len(S)
H_B_SIZE = _h()           # len(B)
H_YIELD = _h()            # 1: return to the executor at every scheduling point; 0: run through
H_STEP = _h()             # global step counter (ordering of events)
H_S_TAIL = _h()           # S[H_S_TAIL:]: program rows, scratch, logs (restores copy their headers)
# -- cache geometry and policy (emu.cache) --
H_C_NSETS = _h()
H_C_WAYS = _h()
H_C_LSHIFT = _h()         # log2(line size)
H_C_LINE = _h()           # line size in bytes
H_C_SETMASK = _h()        # nsets - 1
H_C_REPL = _h()           # REPL_*
H_C_WB = _h()             # 1 write-back, 0 write-through
H_C_WA = _h()             # 1 allocate on write miss, 0 read-allocate only
H_C_STYLE = _h()          # STYLE_*: which Linux proc-*.S routines the core runs
H_C_DGSHIFT = _h()        # log2(bytes per dirty bit)
H_C_CLOCK = _h()          # access clock for LRU / FIFO stamps
H_C_RNG = _h()            # xorshift64 state for random replacement
H_C_TOGGLE = _h()         # which of the two clean windows flush_all uses next (XScale, v4wb)
H_C_WIN_VA = _h()         # flush_all window base (XScale clean area / v4wb FLUSH_BASE)
H_C_WIN_SIZE = _h()       # bytes per window (the D-cache size)
H_C_NLINES = _h()
# -- cache regions --
H_R_TAG = _h()            # [nlines] line virtual address, TAG_INVALID if the line is invalid
H_R_LPA = _h()            # [nlines] line physical address (the PA tag used for write-back)
H_R_DIRTY = _h()          # [nlines] bit mask of dirty granules, 0 = clean
H_R_STAMP = _h()          # [nlines] LRU: last use; FIFO: fill time
H_R_RR = _h()             # [nsets] round-robin victim pointer
H_R_CSTAT = _h()          # [NCSTAT] cache counters
H_R_EV = _h()             # discard events: [EV_HDR] header then [cap][EV_W] records
H_B_CDATA = _h()          # [nlines * line] line data
H_B_EVDATA = _h()         # [cap * line] bytes of each discarded line
# -- RAM and the integrity oracle --
H_B_RAM = _h()            # RAM bytes, stored XOR RAM_POISON so fresh (zero) pages read as poison
H_RAM_SIZE = _h()
H_B_SHADOW = _h()         # what each RAM byte should hold (also XOR RAM_POISON)
H_B_TOUCHED = _h()        # [npages] 1 if a CPU store or device write touched the page
H_ORACLE = _h()           # 1: keep the shadow and check loads and discards
H_DMA_LO = _h()           # physical range the running maintenance hands to the device
H_DMA_HI = _h()
H_EV_SEEN = _h()          # discard events the oracle has already judged
# -- accounting --
H_R_UOPS = _h()           # [NSITES][NKINDS][NUOPS] micro-op counts, then the idle pair (ACC_*)
H_UOPCUR = _h()           # offset of the counts row of the running site and context kind
H_NOW = _h()              # cycle clock of the running CPU (its record holds it otherwise)
H_CUR_SITE = _h()         # routine the running code is attributed to
H_CUR_CPU = _h()
H_CUR_CTX = _h()
H_CUR_KIND = _h()         # KIND_TASK or KIND_IRQ
# -- errors raised out of kernels --
H_ERR = _h()              # ERR_* code, 0 = none
H_ERR_A = _h()            # up to four arguments for the message
H_ERR_B = _h()
H_ERR_C = _h()
H_ERR_D = _h()
H_COST = _h()             # H_COST + u: cycles of micro-op u (the core's table, NUOPS slots)
del _h
_COST_SLOTS = 64          # room for the cost table in the header
HDR_FIXED_END = H_COST + _COST_SLOTS   # header slots used by emu.mm and up start here

STATE_MAGIC = 0x656D7531  # "emu1"

# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------
TAG_INVALID = -1
NO_PA = -1                # a line with no backing RAM (XScale line-allocate window)

REPL_RR = 0               # round-robin per set (ARM default)
REPL_LRU = 1
REPL_FIFO = 2
REPL_RANDOM = 3
REPL_NAMES = ("round-robin", "lru", "fifo", "random")

# Which Linux 2.6.30 cache routines a core runs (spec §4).
STYLE_V4WB = 0            # cache-v4wb.S (SA-110/SA-1100)
STYLE_ARM926 = 1          # proc-arm926.S
STYLE_FEROCEON = 2        # proc-feroceon.S, feroceon_range_cache_fns (88FR131 / 88FR571)
STYLE_XSCALE = 3          # proc-xscale.S
STYLE_NAMES = ("v4wb", "arm926", "feroceon", "xscale")
DEFAULT_CPU = "arm926"      # the core preset when none is given (emu profile, its file)

# Range operations (dmac_*_range)
OP_INV = 0
OP_CLEAN = 1
OP_FLUSH = 2
OP_NAMES = ("inv", "clean", "flush")
RANGE_ALL = 1 << 62       # range_lines' line limit when the loop runs to its end (no yields)

# Access kinds (trace replay; the Dinero IV din labels)
ACC_LOAD = 0              # read
ACC_STORE = 1             # write
ACC_IFETCH = 2            # instruction fetch: never reaches a D-cache
ACC_MISC = 3              # read that would not trigger a prefetch
ACC_COPYBACK = 4          # write back one line, keep it
ACC_INVALIDATE = 5        # invalidate one line, dropping dirty data

# Cache counters, S[H_R_CSTAT + CS_*]
_c = _Counter()
CS_LOADS = _c()
CS_STORES = _c()
CS_LOAD_HITS = _c()
CS_LOAD_MISSES = _c()
CS_STORE_HITS = _c()
CS_STORE_MISSES = _c()
CS_LINE_FILLS = _c()
CS_WRITEBACKS = _c()
CS_EVICTIONS = _c()
CS_DIRTY_DISCARDS = _c()
CS_LINE_INVALIDATES = _c()   # invalidate-by-MVA line ops (c7,c6,1 and range-op lines)
CS_LINE_CLEANS = _c()        # clean-by-MVA line ops (c7,c10,1 and range-op lines)
CS_LINE_FLUSHES = _c()       # clean+invalidate line ops (c7,c14,1, set/way, range-op lines)
CS_RANGE_OPS = _c()          # dma_*_range calls
CS_FLUSH_ALLS = _c()         # flush_kern_cache_all calls
CS_DRAINS = _c()             # drain write buffer (c7,c10,4)
CS_WRITETHROUGHS = _c()      # stores written to RAM by a write-through or no-allocate path
CS_BYTES_READ = _c()         # bytes fetched from memory (Dinero IV "Bytes From Memory")
CS_BYTES_WRITTEN = _c()      # bytes written to memory (Dinero IV "Bytes To Memory")
NCSTAT = _c.n
del _c
CSTAT_NAMES = (
    "loads", "stores", "load_hits", "load_misses", "store_hits", "store_misses", "line_fills",
    "writebacks", "evictions", "dirty_discards", "line_invalidates", "line_cleans",
    "line_flushes", "range_ops", "flush_alls", "drains", "memory_writes", "bytes_read",
    "bytes_written",
)
assert len(CSTAT_NAMES) == NCSTAT

# Discard event records, S[H_R_EV + EV_HDR + i*EV_W + EV_*]
EV_COUNT = 0              # header: events recorded (may exceed capacity)
EV_CAP = 1                # header: capacity
EV_HDR = 2
_e = _Counter()
EV_VA = _e()
EV_PA = _e()
EV_MASK = _e()            # dirty granule mask of the dropped line
EV_CTX = _e()
EV_SITE = _e()
EV_STEP = _e()
EV_DMA_LO = _e()          # the range the maintenance was for (-1: none)
EV_DMA_HI = _e()
EV_W = _e.n
del _e

# RAM
RAM_POISON = 0x5A         # POISON_INUSE (include/linux/poison.h): never-written RAM reads as this
# A page's written and touched flags (H_B_RAMDIRTY, H_B_TOUCHED) are masks of its 512-byte
# blocks: restores and the final check then copy and compare only the blocks a run wrote.
BLOCK_SHIFT = 9
BLOCK_SIZE = 1 << BLOCK_SHIFT
PAGE_BLOCKS = 8           # PAGE_SIZE // BLOCK_SIZE: one bit each in the page's flag byte

# ---------------------------------------------------------------------------------------------
# Accounting: contexts, sites (routines) and micro-ops
# ---------------------------------------------------------------------------------------------
KIND_TASK = 0
KIND_IRQ = 1
NKINDS = 2

# Sites: the routine a micro-op is charged to (kernel names).
SITE_NAMES = (
    "user",                    # direct cache / memory calls outside any kernel routine
    "kmap_high", "kunmap_high", "kmap_high_get", "kmap_flush_unused", "map_new_virtual",
    "flush_all_zero_pkmaps", "flush_cache_all", "flush_tlb_kernel_range", "page_address",
    "set_page_address", "kmap", "kunmap", "dma_map_page", "dma_unmap_page",
    "dma_sync_single_for_cpu", "dma_sync_single_for_device", "dma_cache_maint_page",
    "dmac_range", "cpu_access", "tlb_walk", "irq_entry", "schedule", "program",
)
NSITES = len(SITE_NAMES)
for _i, _n in enumerate(SITE_NAMES):
    globals()["SITE_" + _n.upper()] = _i
del _i, _n

# Micro-ops: what one step executed, at instruction level. The cost layer prices them.
UOP_NAMES = (
    "alu", "branch", "branch_nt", "load", "store",
    "mrs", "msr_c", "cpsid", "cpsie",
    "preempt_disable", "preempt_enable",
    "ldrex", "strex", "dmb", "dsb_sev", "spin_wait",
    "ld_hit", "ld_miss", "st_hit", "st_miss", "writeback",
    "dline_inv", "dline_clean", "dline_clean_dirty", "dline_flush", "dline_flush_dirty",
    "drange_start", "drange_line", "drain_wb", "icache_inv",
    "tci_iter", "dcache_scan", "dcache_inv_all", "setway_op", "line_alloc", "displace_load",
    "tlb_inv_page", "tlb_walk", "pte_write",
    "hash_step", "irq_entry", "irq_exit", "context_switch",
    # composites: one record for a fixed instruction sequence, priced as the sum of its parts
    "irq_disable", "irq_enable", "irq_save", "irq_restore", "smp_lock", "smp_unlock",
)
NUOPS = len(UOP_NAMES)
for _i, _n in enumerate(UOP_NAMES):
    globals()["UOP_" + _n.upper()] = _i
del _i, _n
# The accounting region H_R_UOPS: the micro-op counts, then the idle time (a CPU with nothing
# to run until a timed IRQ or a wake-up from another CPU: clock advanced, nothing executed).
ACC_IDLE_N = NSITES * NKINDS * NUOPS    # idle periods
ACC_IDLE_CYCLES = ACC_IDLE_N + 1        # their cycles, all CPUs together
ACC_W = ACC_IDLE_N + 2

# ---------------------------------------------------------------------------------------------
# Errors raised out of kernels (S[H_ERR])
# ---------------------------------------------------------------------------------------------
ERR_NONE = 0
ERR_PAGE_FAULT = 1        # A = virtual address
ERR_BUG = 2               # A = BUG_* id, B.. = details
ERR_WOULD_SLEEP = 3
ERR_DEADLOCK = 4
ERR_DMA_DEBUG = 5
ERR_BAD_ARG = 6           # a program op's argument out of range: A = row, B = argument, C = value
ERR_DEVICE_BUSY = 7       # a device_start on a line whose transfer is in flight: A = row, B = line,
                          # C = the transfer's bus address, D = its bytes
ERR_CLOCK_END = 8         # a device_start whose completion would pass MAX_TIMED_CLOCK: A = row,
                          # B = line, C = the clock, D = the delay

# ---------------------------------------------------------------------------------------------
# Machine header slots (emu.mm, emu.exec, emu.dma): continue after HDR_FIXED_END
# ---------------------------------------------------------------------------------------------
_h = _Counter(HDR_FIXED_END)
H_PAGE_OFFSET = _h()      # PAGE_OFFSET (0xC0000000)
H_PKMAP_BASE = _h()       # PAGE_OFFSET - PMD_SIZE (0xBFE00000)
H_LAST_PKMAP = _h()       # LAST_PKMAP
H_LOWMEM_PAGES = _h()     # first highmem pfn
H_NPAGES = _h()           # pfns in RAM
H_PKMAP_NR = _h()         # last_pkmap_nr, the round-robin cursor (hm:63)
H_KMAP_IRQ = _h()         # 1: lock_kmap() is spin_lock_irq (ARCH_NEEDS_KMAP_HIGH_GET)
H_KHG = _h()              # 1: kmap_high_get() exists
H_R_PKMAP_COUNT = _h()    # [LAST_PKMAP] pkmap_count (hm:62)
H_R_PKMAP_PTE = _h()      # [LAST_PKMAP] pfn each pkmap PTE maps, or PTE_NONE
H_R_TLB = _h()            # [ncpus][LAST_PKMAP] pfn each CPU's TLB caches for a pkmap page
H_R_PAM = _h()            # page_address_map nodes: [LAST_PKMAP + PA_HASH_SIZE + 1][PAM_W]
H_R_MMSTAT = _h()         # [NMMSTAT] mm counters
H_NCPUS = _h()
H_R_CPU = _h()            # [ncpus][CPU_W]
H_NCTX = _h()
H_R_CTX = _h()            # [nctx][CTX_W]
H_R_LOCK = _h()           # [LOCK_W] kmap_lock
H_R_WAITQ = _h()          # [1 + nctx] pkmap_map_wait: count, then ctx ids, most recent first
H_SMP = _h()              # 1: SMP lock sequences (ldrex/strex, barriers)
H_PREEMPT = _h()          # 1: CONFIG_PREEMPT (preempt_disable/enable cost instructions)
H_DIRECT_CTX = _h()       # context that runs direct API calls
H_KHG_FORCED = _h()       # 1: kmap_high_get() compiled with plain locks (scenario (iii))
H_R_PROF = _h()           # [PROF_W] profiling records
H_B_IO = _h()             # byte buffer for direct-call reads and writes
H_IO_SIZE = _h()
H_R_FIND = _h()           # integrity findings: [FIND_HDR] then [cap][FIND_W]
H_B_FINDDATA = _h()       # expected/found bytes of each finding
H_B_SCRATCH = _h()        # SCRATCH_BYTES of kernel scratch space
H_DMA_PIN = _h()          # PIN_*: how highmem DMA maintenance finds the page's address
H_DMA_API = _h()          # API_*: which streaming-DMA cache policy
H_DMA_STRICT = _h()       # 1: dma-debug errors stop the call
H_R_DMADBG = _h()         # dma-debug: [DD_HDR] then [cap][DD_W] live mappings
H_R_OUTER = _h()          # [NOUTER] outer-cache hook calls and last range
H_R_PROG = _h()           # scenario programs: rows of PW words
H_R_REGS = _h()           # one result register per program row
H_R_IRQ = _h()            # [MAXIRQ][IRQ_W] interrupt lines
H_XFERS = _h()            # device_start transfers in flight (lines with IRQ_XFER_LEN > 0)
H_R_TRACE = _h()          # trace event buffer
H_LAST_CTX = _h()         # context that ran the last step (-1 none)
H_SAME_SET = _h()         # 1: the last step only went on with a line loop (sched.run)
H_TIMESLICE = _h()        # timed mode: cycles a task runs before a preemptible point switches
H_SCHED_RNG = _h()        # xorshift state of random schedules
H_NTASKS = _h()           # contexts 1..H_NTASKS are tasks (0 is the direct-call task)
H_FAIL_CTX = _h()         # context whose step ended a run with an error or deadlock
H_B_RAMDIRTY = _h()       # [npages] mask of the page's 512-byte blocks written since a restore
H_B_DATA = _h()           # scenario data pool (bytes programs write and read)
H_DATA_SIZE = _h()
H_STEP_T0 = _h()          # H_NOW when the running step began (inclusive routine cycles)
H_R_PROFR = _h()          # [nroutines][PR_W] calls and inclusive cycles per routine
H_R_ISCRATCH = _h()       # [2 nlines + lines per page] int scratch (kernels never allocate: they run without NRT)
H_CPUREC = _h()           # offset of the running CPU's record
H_PROFILE = _h()          # 1: keep lock_stat, irqsoff, IRQ latency and per-routine records
# New slots go here, at the end: inserting H_BATCH, H_BATCHED and H_DATA_RW among the others
# (shifting the later hot slots by two and three words) slowed the kmap pair from ~52 to
# 75-150 ns, varying from process to process (not explained; kept out of the way since)
H_BATCH = _h()            # same-yields run_step may still pass through as steps of their own
H_BATCHED = _h()          # steps run_step passed through so (sched.run logs their decisions)
H_DATA_RW = _h()          # bytes at the data pool's start that runs may write (restored)
H_S_COUNTERS = _h()       # S[H_S_COUNTERS:H_S_TAIL]: cost and profile counters, which no kernel
                          # decision reads (the exploration loop does not restore them)
H_B_CMARK = _h()          # [nlines] 1: the line's tag, pa, dirty mask, stamp or data changed since
                          # the exploration loop's last restore (it restores only those lines)
HDR_SIZE = _h()
del _h

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PMD_SIZE = 2 << 20        # arch/arm/include/asm/pgtable.h: PMD_SHIFT 21
PTE_NONE = -1
ADDR_SPACE = 1 << 32

# struct page addresses only feed hash_ptr(); the bucket choice is not observable (spec §1.10)
MEM_MAP_BASE = 0xC0400000
STRUCT_PAGE_SIZE = 32     # sizeof(struct page) on ARM 2.6.30
PA_HASH_ORDER = 7         # mm/highmem.c
PA_HASH_SIZE = 1 << PA_HASH_ORDER
GOLDEN_RATIO_PRIME_32 = 0x9E370001   # include/linux/hash.h

# page_address_map nodes (doubly linked lists, like struct list_head)
PAM_NEXT = 0
PAM_PREV = 1
PAM_PAGE = 2              # pfn, or -1
PAM_VIRT = 3
PAM_W = 4

# mm counters, S[H_R_MMSTAT + MM_*]
_c = _Counter()
MM_FLUSH_ALL_ZERO = _c()  # flush_all_zero_pkmaps() calls
MM_CACHE_FLUSHES = _c()   # flush_cache_kmaps() calls
MM_TLB_FLUSHES = _c()     # flush_tlb_kernel_range() calls
MM_SET_PTE = _c()
MM_PTE_CLEAR = _c()
MM_SLEEPS = _c()
MM_WAKEUPS = _c()         # wake_up(&pkmap_map_wait) calls
MM_TLB_WALKS = _c()
MM_TLB_HITS = _c()
NMMSTAT = _c.n
del _c
MMSTAT_NAMES = ("flush_all_zero_pkmaps", "cache_flushes", "tlb_flushes", "set_pte",
                "pte_clear", "sleeps", "wakeups", "tlb_walks", "tlb_hits")
assert len(MMSTAT_NAMES) == NMMSTAT

# ---------------------------------------------------------------------------------------------
# Executor: CPUs, contexts, frames, locks
# ---------------------------------------------------------------------------------------------
_c = _Counter()
CPU_CUR = _c()            # context running on this CPU
CPU_IRQOFF = _c()         # 1: IRQs masked (CPSR I bit)
CPU_PREEMPT = _c()        # preempt_count (without the hardirq part)
CPU_HARDIRQ = _c()        # 1: in an IRQ handler
CPU_CLOCK = _c()          # cycles
CPU_PENDING = _c()        # bit mask of raised, undelivered IRQ lines
CPU_INTERRUPTED = _c()    # context an IRQ handler interrupted, or -1
CPU_IRQOFF_AT = _c()      # clock when IRQs were last masked
CPU_IRQOFF_SITE = _c()    # site that masked them
CPU_IRQ_WATCH = _c()      # profiling, timed runs: the next raise clock of this CPU's lines
                          # to watch (CPU_WATCHES[CPU_WATCH_AT]), or -1 (emu.exec.cpu)
CPU_WATCH_AT = _c()
CPU_WATCHES = _c.n        # [NWATCH] the next raise clocks, in order (-1: none), from the
NWATCH = 8                # last scheduling point (emu.exec.cpu.watch_irqs)
_c.n += NWATCH
CPU_RING_AT = _c()        # next slot of the ring of recent irqs-off sections that covered one
CPU_RING = _c.n           # [NRING][2] (start, end) clocks of those sections
NRING = 32                # a power of two (the ring index wraps with a mask)
assert NRING & (NRING - 1) == 0
CPU_W = CPU_RING + 2 * NRING
del _c

CTX_STATE_FREE = 0
CTX_RUNNABLE = 1
CTX_SLEEPING = 2          # TASK_UNINTERRUPTIBLE on pkmap_map_wait
CTX_WAIT_IRQ = 3          # waiting for an IRQ handler to complete
CTX_DONE = 4
CTX_FAILED = 5
CTX_STATE_NAMES = ("free", "runnable", "sleeping", "wait-irq", "done", "failed")

MAXDEPTH = 8              # frames per context
_c = _Counter()
F_ROUTINE = _c()
F_PC = _c()
F_LOCKST = _c()           # lock acquisition progress (LOCKST_*)
F_FLAGS = _c()            # saved CPSR I bit for *_irqsave / lock_kmap_any
F_SPIN_AT = _c()          # CPU clock of the first attempt on a contended lock
F_T0 = _c()               # the context's cycle total when the routine was called
F_A0 = _c()               # arguments and locals
F_A1 = _c()
F_A2 = _c()
F_A3 = _c()
F_A4 = _c()
F_A5 = _c()
F_A6 = _c()
F_A7 = _c()
F_A8 = _c()
FW = _c.n
del _c

_c = _Counter()
CTX_STATE = _c()
CTX_KIND = _c()           # KIND_TASK / KIND_IRQ
CTX_CPU = _c()
CTX_SP = _c()             # frames in use
CTX_RET = _c()            # return value of the last routine that returned
CTX_CYCLES = _c()
CTX_STEPS = _c()
CTX_PROG = _c()           # offset of the program in S, or -1
CTX_PROG_LEN = _c()
CTX_IRQ_LINE = _c()       # IRQ handler: its line; task: -1
CTX_WAIT_LINE = _c()      # CTX_WAIT_IRQ: line waited for
CTX_WAIT_COUNT = _c()     # ... and the handler completions needed
CTX_REGS = _c()           # offset of the register file (one per program op)
CTX_SPIN = _c()           # 1: the last step ended spinning on a lock
CTX_SLICE_AT = _c()       # clock when the task last got its CPU (time slices)
CTX_READY_AT = _c()       # the waker's clock when it was woken (it cannot run before); or 0
CTX_FRAMES = _c.n
CTX_W = CTX_FRAMES + MAXDEPTH * FW
del _c

# Routines that own a frame (resumable at their scheduling points)
ROUTINE_NAMES = (
    "none", "program", "kmap_high", "kunmap_high", "kmap_high_get", "kmap_flush_unused",
    "kmap", "kunmap", "cpu_read", "cpu_write", "dma_map_page", "dma_unmap_page",
    "dma_sync_single_for_cpu", "dma_sync_single_for_device", "dma_cache_maint_page",
    "kunmap_high_unpin",    # kunmap_high releasing the DMA layer's kmap_high_get pin: its
                            # own profile record (not a kmap_high + kunmap_high pair's)
)
for _i, _n in enumerate(ROUTINE_NAMES):
    globals()["R_" + _n.upper()] = _i
del _i, _n
#: The kernel function each routine id runs, as traces name it.
ROUTINE_LABELS = tuple("kunmap_high" if n == "kunmap_high_unpin" else n for n in ROUTINE_NAMES)
# direct-call aliases (emu.exec.kernel.direct_call): dma_{,un}map_page for one entry of
# Machine.dma_{,un}map_sg, whose direction then carries DMA_FLAG_SG (dma-debug's entry type)
R_DMA_MAP_SG = len(ROUTINE_NAMES)
R_DMA_UNMAP_SG = R_DMA_MAP_SG + 1

# What a routine's step returns to the context runner
ST_CALL = 0               # pushed a callee frame: run it now
ST_RET = 1                # finished: pop, resume the caller now
ST_YIELD = 2              # a scheduling point: the executor may switch here
ST_RET_YIELD = 3          # finished, and the return is a scheduling point (preempt_enable)
ST_SPIN = 4               # waiting for a spinlock held elsewhere
ST_SLEEP = 5              # went to sleep (schedule())
ST_DONE = 6               # the context has no frames left
ST_ERROR = 7              # S[H_ERR] says what

#: What the Python API's direct entry returns, having run nothing, when a dma_map_page call's
#: arguments are out of range (Machine then says which one). Below every ``-1 - status``.
DIRECT_BAD_ARGS = -(1 << 62)

# Lock flavours
LOCK_PLAIN = 0            # spin_lock / spin_unlock
LOCK_IRQ = 1              # spin_lock_irq / spin_unlock_irq
LOCK_IRQSAVE = 2          # spin_lock_irqsave / spin_unlock_irqrestore
LOCKST_IDLE = 0          # not begun
LOCKST_BEGUN = 1         # IRQ/preempt half done, first attempt pending
LOCKST_SPINNING = 2      # contended: F_SPIN_AT holds when the wait began

# kmap_lock record
_c = _Counter()
LK_OWNER = _c()           # owning context, or -1
LK_OWNER_CPU = _c()
LK_ACQ_AT = _c()          # owner CPU clock at acquisition
LK_ACQ_SITE = _c()
LK_ACQUISITIONS = _c()
LK_CONTENTIONS = _c()
LK_WAIT_MIN = _c()
LK_WAIT_MAX = _c()
LK_WAIT_TOTAL = _c()
LK_HOLD_MIN = _c()
LK_HOLD_MAX = _c()
LK_HOLD_TOTAL = _c()
LK_USAGE = _c()           # lockdep usage bits (USAGE_*)
LK_IN_IRQ_SITE = _c()     # first site that took it in hardirq context
LK_IN_IRQ_CTX = _c()
LK_IRQ_ON_SITE = _c()     # first site that took it with IRQs enabled
LK_IRQ_ON_CTX = _c()
LK_FREE_AT = _c()         # owner CPU clock at the last release
LK_IN_IRQ_STEP = _c()     # step of those first uses (which came first decides the splat)
LK_IRQ_ON_STEP = _c()
LOCK_W = _c.n
del _c
USAGE_IN_HARDIRQ = 1      # {IN-HARDIRQ-W}
USAGE_HARDIRQ_ON = 2      # {HARDIRQ-ON-W}

# BUG ids (S[H_ERR_A] when S[H_ERR] == ERR_BUG)
BUG_KUNMAP_NO_VADDR = 1   # kunmap_high: BUG_ON(!vaddr)
BUG_KUNMAP_UNBALANCED = 2 # kunmap_high: case 0: BUG()
BUG_KMAP_COUNT = 3        # kmap_high: BUG_ON(pkmap_count[...] < 2)
BUG_KHG_COUNT = 4         # kmap_high_get: BUG_ON(pkmap_count[...] < 1)
BUG_PTE_NONE = 5          # flush_all_zero_pkmaps: BUG_ON(pte_none(...))
BUG_PAM_POOL_EMPTY = 6    # set_page_address: BUG_ON(list_empty(&page_address_pool))
BUG_NOT_HIGHMEM = 7       # set_page_address: BUG_ON(!PageHighMem(page))
BUG_KUNMAP_IN_IRQ = 8     # kunmap: BUG_ON(in_interrupt())
BUG_DMA_DIRECTION = 9     # BUG_ON(!valid_dma_direction(dir))
BUG_DMA_VIRT_INVALID = 10 # dma_cache_maint: BUG_ON(!virt_addr_valid(...))
BUG_MIGHT_SLEEP = 11      # kmap from atomic context: might_sleep() (a warning in Linux)
BUG_SCHED_ATOMIC = 12     # kmap_high sleeping in an IRQ handler: "scheduling while atomic"
BUG_WAIT_IRQ_ATOMIC = 13  # wait_irq sleeping in an IRQ handler: "scheduling while atomic"

# ---------------------------------------------------------------------------------------------
# Profiling records (irqsoff tracer, IRQ latency, lock_stat histograms), S[H_R_PROF + PROF_*]
# ---------------------------------------------------------------------------------------------
NHIST = 40                # log2 buckets: bucket b holds durations in [2**(b-1), 2**b), b=0: 0
_c = _Counter()
PROF_IRQOFF_MAX = _c()
PROF_IRQOFF_MAX_START = _c()      # site that masked IRQs for the longest section
PROF_IRQOFF_MAX_END = _c()        # site that unmasked them
PROF_IRQOFF_MAX_CPU = _c()
PROF_IRQOFF_MAX_AT = _c()         # CPU clock when that section started
PROF_IRQOFF_COUNT = _c()
PROF_IRQOFF_TOTAL = _c()
PROF_IRQLAT_COUNT = _c()
PROF_IRQLAT_MIN = _c()
PROF_IRQLAT_MAX = _c()
PROF_IRQLAT_TOTAL = _c()
PROF_H_IRQOFF = _c.n              # [NSITES][NHIST] irqs-off sections by the site that began them
PROF_H_IRQLAT = PROF_H_IRQOFF + NSITES * NHIST
PROF_H_HOLD = PROF_H_IRQLAT + NHIST
PROF_H_WAIT = PROF_H_HOLD + NHIST
PROF_W = PROF_H_WAIT + NHIST
del _c

# ---------------------------------------------------------------------------------------------
# Integrity findings, S[H_R_FIND + FIND_HDR + i*FIND_W + FD_*]; bytes in B[H_B_FINDDATA]
# ---------------------------------------------------------------------------------------------
FIND_LOST = 1             # dirty CPU data dropped outside the range handed to the device
FIND_STALE = 2            # a CPU read returned bytes that are not what memory should hold
FIND_FINAL = 3            # at the final check: a write neither in the cache nor in RAM
FIND_STALE_DEVICE = 4     # a device read RAM bytes that are not what memory should hold
FIND_DMA_READ = 5         # a CPU read bytes a device transfer in flight has yet to write (emu's
                          # own check: the driver took old bytes for the device's)
FIND_KIND_NAMES = ("", "lost-write", "stale-read", "lost-at-end", "stale-device-read",
                   "read-during-dma")
FIND_STALE_KINDS = (FIND_STALE, FIND_STALE_DEVICE, FIND_DMA_READ)   # reads that got wrong bytes
FIND_COUNT = 0            # findings made (records past FIND_CAP are not kept)
FIND_CAP = 1
FIND_BYTES = 2            # [len(FIND_KIND_NAMES)]: bad bytes of all findings of each kind (index
                          # FIND_*), kept or not
FIND_HDR = FIND_BYTES + len(FIND_KIND_NAMES)
_c = _Counter()
FD_KIND = _c()
FD_PA = _c()
FD_VA = _c()
FD_N = _c()               # bytes in the record (<= FIND_MAXB)
FD_BAD = _c()             # bytes that differ
FD_CTX = _c()
FD_SITE = _c()
FD_STEP = _c()
FD_DMA_LO = _c()
FD_DMA_HI = _c()
FIND_W = _c.n
del _c
FIND_MAXB = 256           # bytes kept per finding (expected then found)
SCRATCH_BYTES = 1024

# ---------------------------------------------------------------------------------------------
# Streaming DMA (emu.dma)
# ---------------------------------------------------------------------------------------------
DMA_BIDIRECTIONAL = 0     # include/linux/dma-mapping.h
DMA_TO_DEVICE = 1
DMA_FROM_DEVICE = 2
DMA_NONE = 3
DMA_DIR_NAMES = ("DMA_BIDIRECTIONAL", "DMA_TO_DEVICE", "DMA_FROM_DEVICE", "DMA_NONE")
DMA_FLAG_SG = 1 << 9      # direction high bit of a map / unmap routine call: an sg entry
DIR2OP = (OP_FLUSH, OP_CLEAN, OP_INV)   # dma_cache_maint_contiguous (dm:521-560)

PIN_KMAP_HIGH_GET = 0     # 2.6.30: kmap_high_get() + kunmap_high() around the L1 op
PIN_PAGE_ADDRESS = 1      # the racy scheme of the seed patch: page_address(), no pin
PIN_NAMES = ("kmap_high_get", "page_address")
API_2630 = 0              # map maintains; unmap and sync_for_cpu do nothing (spec §3.5)
API_V3 = 1                # ownership model: unmap / sync_for_cpu invalidate again (spec §3.9)
API_NAMES = ("2.6.30", "v3")

DD_COUNT = 0              # dma-debug header: live entries
DD_CAP = 1
DD_OFF = 2                # 1: ran out of entries, tracking disabled (as dma-debug does)
DD_ERRORS = 3             # errors reported (also in non-strict mode)
DD_HDR = 4
DD_HANDLE = 0
DD_SIZE = 1
DD_DIR = 2
DD_PFN = 3
DD_TYPE = 4               # how it was mapped: lib/dma-debug.c's entry->type
DD_W = 5
DD_TYPE_PAGE = 1          # dma_debug_page (dma_debug_single = 0, coherent = 3: not modelled)
DD_TYPE_SG = 2            # dma_debug_sg
DD_TYPE_NAMES = ("single", "page", "scather-gather", "coherent")   # sic, lib/dma-debug.c
DD_ERR_NOT_MAPPED = 1     # "tries to free DMA memory it has not allocated"
DD_ERR_SIZE = 2           # "frees DMA memory with different size"
DD_ERR_DIR = 3            # "frees DMA memory with different direction"
DD_ERR_SYNC_NOT_MAPPED = 4
DD_ERR_SYNC_RANGE = 5     # "syncs DMA memory outside allocated range"
DD_ERR_SYNC_DIR = 6       # "syncs DMA memory with different direction"
DD_ERR_SYNC_RO = 7        # "syncs device read-only DMA memory for cpu"
DD_ERR_SYNC_WO = 8        # "syncs device write-only DMA memory to device"
DD_ERR_TYPE = 9           # "frees DMA memory with wrong function"
DD_ERR_IN_FLIGHT = 10     # emu's own (dma-debug cannot see the device): frees DMA memory a
                          # device_start's transfer in flight still writes

OUTER_INV = 0             # outer_*_range calls (no-op hook by default), then last range
OUTER_CLEAN = 1
OUTER_FLUSH = 2
OUTER_LAST_LO = 3
OUTER_LAST_HI = 4
NOUTER = 5

# ---------------------------------------------------------------------------------------------
# Task programs (scenarios): rows of PW words in S
# ---------------------------------------------------------------------------------------------
NARGS = 5
_c = _Counter()
PO_OP = _c()
PO_A = _c.n               # PO_A + k: immediate part of argument k
PO_REF = PO_A + NARGS     # PO_REF + k: op index whose result is added to argument k, or -1
PW = PO_REF + NARGS
del _c
PROG_NAMES = (
    "kmap", "kunmap", "kmap_high", "kunmap_high", "kmap_high_get", "kmap_flush_unused",
    "read", "write", "dma_map_page", "dma_unmap_page", "dma_sync_single_for_cpu",
    "dma_sync_single_for_device", "device_write", "device_read", "device_start", "wait_irq",
    # one row per scatter-gather entry, each the page routine (spec: dma_map_sg maps each
    # entry with dma_map_page in turn); map and unmap mark the entry with DMA_FLAG_SG
    "dma_map_sg", "dma_unmap_sg", "dma_sync_sg_for_cpu", "dma_sync_sg_for_device",
)
for _i, _n in enumerate(PROG_NAMES):
    globals()["P_" + _n.upper()] = _i
del _i, _n
# program ops that are a kernel routine called with the op's arguments
PROG2ROUTINE = (
    R_KMAP, R_KUNMAP, R_KMAP_HIGH, R_KUNMAP_HIGH, R_KMAP_HIGH_GET, R_KMAP_FLUSH_UNUSED,
    R_CPU_READ, R_CPU_WRITE, R_DMA_MAP_PAGE, R_DMA_UNMAP_PAGE, R_DMA_SYNC_SINGLE_FOR_CPU,
    R_DMA_SYNC_SINGLE_FOR_DEVICE, -1, -1, -1, -1,
    R_DMA_MAP_PAGE, R_DMA_UNMAP_PAGE, R_DMA_SYNC_SINGLE_FOR_CPU, R_DMA_SYNC_SINGLE_FOR_DEVICE,
)
MAX_REPEAT = 1 << 16      # a scenario op's ``repeat``
MAX_IRQ_COUNT = 1 << 40   # an IRQ handler's ``count`` (raises or periodic firings)
MAX_IRQ_TIME = 1 << 48    # cycles: a timed IRQ's ``period`` and ``first``
MAX_TIMED_CLOCK = 1 << 62  # cycles: a periodic line's last firing, first + period * (count - 1)
#: Timed runs, once every task has finished: the run still waits for a one-shot timed line
#: (a device's completion, ``first`` without ``period``) and for a periodic line with at most
#: this many firings left; a periodic line with more is a tick that runs alongside the tasks
#: (the profiler's ``dma-irq``), and the run ends with it reported as still armed.
DRAIN_MAX_FIRINGS = 1024
MAXCPUS = 8               # ncpus
MAX_OP_BYTES = 1 << 24    # bytes one scenario op reads or writes (``n``, ``data``)
MAX_JOBS = 64             # explore(jobs=): processes (each holds its own machine, ~200 MB)

# ---------------------------------------------------------------------------------------------
# Interleaving executor (emu.exec.sched)
# ---------------------------------------------------------------------------------------------
MAXIRQ = 8
_c = _Counter()
IRQ_CPU = _c()            # CPU the line is routed to
IRQ_CTX = _c()            # handler context, or -1 (line not wired)
IRQ_BUDGET = _c()         # the line's own raises left: a schedule's (exploration), timed firings
IRQ_DUE = _c()            # the line's own timed firing: target CPU clock, -1 none
IRQ_PERIOD = _c()         # re-arm after firing (0: one-shot)
IRQ_RAISED_AT = _c()      # clock of the last raise (for the IRQ latency)
IRQ_PENDING = _c()        # raised, not yet delivered
IRQ_DONE = _c()           # handler completions
IRQ_XFER_LEN = _c()       # device transfer done when the line is raised: bytes (0 none)
IRQ_XFER_ADDR = _c()      # bus address
IRQ_XFER_SRC = _c()       # B offset of the bytes the device writes
IRQ_XFER_DUE = _c()       # timed runs: clock at which the transfer completes (IRQ_XFER_CPU's
                          # clock when it started, plus its delay), -1 none
IRQ_MERGED = _c()         # raises merged into one still pending (one interrupt, not two)
IRQ_XFER_CPU = _c()       # CPU that started the transfer in flight (its clock set IRQ_XFER_DUE)
IRQ_W = _c.n
del _c
NEVER = (1 << 63) - 1     # a clock later than any run reaches (a still-open section's end):
                          # past MAX_TIMED_CLOCK, the last cycle a firing can be due at

SCHED_DFS = 0             # choices from a prefix, then the non-preemptive default
SCHED_RANDOM = 1          # seeded random choices
SCHED_TIMED = 2           # the CPU with the lowest clock runs; timed IRQs; time slices
BATCH_DRAWS = 32          # random mode: draws sched.run looks ahead to pass decisions
DECISION_LOG = 1 << 16    # scheduling decisions one run can log (DFS and random runs)
P_SWITCH_SCALE = 1_000_000  # random mode: p_switch is given per million decisions
DEFAULT_P_SWITCH = 0.05   # random mode: chance of a switch at each point, by default
P_SWITCH_NONE = 0         # run()'s p_switch where it is unused (DFS mode)
RUN_START = 0             # run()'s d0 and pre0 for a run from decision 0

# action encoding: a context id, or ACT_IRQ + line (the line raised: by its device if a
# transfer is in flight on it, which completes; else one of its own raises), or
# ACT_IRQ_OWN + line (one of the line's own raises while its device's transfer is still in
# flight: the handler runs, the transfer does not complete)
ACT_IRQ = 1 << 20
ACT_IRQ_OWN = ACT_IRQ + MAXIRQ
MAXALT = 24               # alternatives kept per decision point

# run outcome (what the engine returns)
RUN_DONE = 0              # every task finished
RUN_DEADLOCK = 1          # nothing can run, a task is unfinished
RUN_IRQ_DEADLOCK = 2      # a handler spins on a lock its interrupted context holds
RUN_ERROR = 3             # a kernel BUG / page fault / dma-debug error in some context
RUN_LIMIT = 4             # step limit reached (livelock or too long)
RUN_LOG_FULL = 5          # decision log full
NRUN = 6
RUN_BAD_CHOICE = NRUN     # not an outcome: a DFS prefix's choice its decision does not have
                          # (the run stops there; callers raise ValueError)

# emu.exec.dfs.explore_dfs: why it returned (bits), and its state/result slots X_*
DFS_DONE = 1              # no schedule left within the bound
DFS_LIMIT = 2             # ran as many schedules as asked
DFS_BEST = 4              # the last schedule is the best failure so far
DFS_LOCKDEP = 8           # the last schedule took kmap_lock in and outside hardirq (lockdep)
DFS_FAILED = 16           # the last schedule failed (returned at once under stop_at_first)
DFS_NO_NEXT = 32          # ask: one run, no successor (a replay of one schedule)
DFS_BAD_CHOICE = 64       # alone: the prefix's choice x[X_D] is no alternative of that decision
DFS_UNCOUNTED_MAX = 4096  # runs not counted (X_MINPRE) after which a call returns (Ctrl-C)
X_RUNS = 0                # schedules run, all calls
X_FAILURES = 1
X_DEADLOCKS = 2
X_MAX_LOST = 3
X_PLEN = 4                # length of the prefix buffer's next schedule
X_OUTCOME = 5             # the last schedule: outcome, decisions, preemptions, lost bytes
X_D = 6
X_NPRE = 7
X_LOST = 8
X_BEST_NPRE = 9           # the best failure's key (fewest preemptions, shortest, worst,
X_BEST_D = 10             # earliest first preemption); X_BEST_NPRE < 0: none yet
X_BEST_NEGLOST = 11
X_BEST_FIRST = 12
X_DECISIONS = 13          # scheduling decisions (steps) taken, all schedules
X_FLOOR = 14              # decisions before this one stay as the first prefix has them
X_COUNT = 15              # [NRUN] schedules per outcome
X_SEEN = X_COUNT + NRUN   # [NRUN] 1 + the schedule at which each outcome first appeared
X_EXECUTED = X_SEEN + NRUN  # decisions actually run: X_DECISIONS less those a schedule took
                            # over from a shared-prefix checkpoint (emu.exec.dfs.run_schedule),
                            # plus those of schedules run uncounted (X_MINPRE)
X_STALE = X_EXECUTED + 1    # schedules with a stale read
X_MINPRE = X_STALE + 1      # schedules with fewer preemptions run uncounted (explore by level)
# A search by level records where the next level starts (emu.exec.dfs.emit_roots) in the
# level buffer (LEVEL_WORDS int64), and the next level's search runs from those roots
X_EMIT_AT = X_MINPRE + 1    # where the next root record goes; -1: none are recorded
X_EMIT_END = X_EMIT_AT + 1  # the end of the room for them (past it: X_EMIT_AT becomes -1)
X_ROOT_AT = X_EMIT_END + 1  # the root record the search goes on with ...
X_ROOT_END = X_ROOT_AT + 1  # ... up to here (X_ROOT_AT == X_ROOT_END: no roots)
X_ROOT_C = X_ROOT_END + 1   # the record's next alternative (0: its first)
X_EMIT_KEEP = X_ROOT_C + 1  # decisions the run's log shares (at least) with the last record
X_W = X_EMIT_KEEP + 1
LEVEL_WORDS = 1 << 24       # the level buffer (two halves: roots read, roots written); lazily
                            # zeroed by the OS, so only what a search records takes memory

# trace events, S[H_R_TRACE + TR_HDR + i*TR_W + TE_*]
TR_COUNT = 0
TR_CAP = 1
TR_ON = 2
TR_HDR = 3
TE_KIND = 0
TE_CLOCK = 1
TE_CPU = 2
TE_CTX = 3
TE_A = 4
TE_B = 5
TR_W = 6
TRACE_NAMES = (
    "step", "step_end", "lock", "unlock", "irqs_off", "irqs_on", "irq_raise", "irq_enter",
    "irq_exit", "set_pte", "pte_clear", "flush_cache", "tlb_flush", "discard", "sleep",
    "wake", "switch", "spin", "load", "store", "dma_start", "maint", "call", "ret",
    "page_address", "maint_inv", "op", "irq_merge",
)
PR_CALLS = 0              # per-routine profile record
PR_TOTAL = 1
PR_MIN = 2
PR_MAX = 3
PR_W = 4
PR_IRQ = len(ROUTINE_NAMES) * PR_W  # IRQ-handler calls' records follow the tasks' ones
PR_SIZE = 2 * PR_IRQ      # the per-routine region: task context, then IRQ context
for _i, _n in enumerate(TRACE_NAMES):
    globals()["T_" + _n.upper()] = _i
del _i, _n
