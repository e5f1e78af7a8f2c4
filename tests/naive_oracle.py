"""A naive model of the integrity oracle's final check (``emu.dma.oracle.final_check``), read
straight off a machine's arrays: for every touched 512-byte block (a bit of its page's flag
byte) and every line of it, RAM with each dirty cache line holding that physical line laid
over it (in line-index order, dirty granules only) must equal the shadow."""

from emu import consts as K


def _dirty_lines(S):
    tag, dirty, lpa = int(S[K.H_R_TAG]), int(S[K.H_R_DIRTY]), int(S[K.H_R_LPA])
    return [i for i in range(int(S[K.H_C_NLINES]))
            if S[tag + i] != K.TAG_INVALID and S[dirty + i] != 0 and S[lpa + i] != K.NO_PA]


def naive_final_check(m):
    """``(total differing bytes, [(pa, va, expected, found, bad), ...])`` of the final check
    on machine ``m``, without changing it."""
    S, B = m._S, m._B
    line = int(S[K.H_C_LINE])
    granule = 1 << int(S[K.H_C_DGSHIFT])
    ram, sh, touched = int(S[K.H_B_RAM]), int(S[K.H_B_SHADOW]), int(S[K.H_B_TOUCHED])
    cdata = int(S[K.H_B_CDATA])
    dirty = _dirty_lines(S)
    total, out = 0, []
    for pfn in range(int(S[K.H_NPAGES])):
        if not B[touched + pfn]:
            continue
        for lpa in range(pfn * K.PAGE_SIZE, (pfn + 1) * K.PAGE_SIZE, line):
            if not B[touched + pfn] >> ((lpa % K.PAGE_SIZE) // K.BLOCK_SIZE) & 1:
                continue                        # a block nothing wrote (no bit in the mask)
            found = bytearray(b ^ K.RAM_POISON for b in B[ram + lpa:ram + lpa + line])
            expect = bytes(b ^ K.RAM_POISON for b in B[sh + lpa:sh + lpa + line])
            va = -1
            for i in dirty:
                if S[int(S[K.H_R_LPA]) + i] != lpa:
                    continue
                va = int(S[int(S[K.H_R_TAG]) + i])
                mask = int(S[int(S[K.H_R_DIRTY]) + i])
                for k in range(line):
                    if mask >> (k // granule) & 1:
                        found[k] = B[cdata + i * line + k]
            bad = sum(a != b for a, b in zip(expect, found))
            if bad:
                total += bad
                n = min(line, K.FIND_MAXB)
                out.append((lpa, va, expect[:n], bytes(found[:n]), bad))
    return total, out
