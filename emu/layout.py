"""Lays out a machine's state in two flat arrays.

``S`` (int64) holds every integer of the machine; ``B`` (uint8) every byte. Kernels receive
just these two arrays, which keeps a call from Python into numba cheap (each extra array costs
about 50 ns) and makes a snapshot of the whole machine two ``memcpy``s.

Regions are appended in order; the offset of each is written into its header slot, so a
kernel finds, e.g., the tag array at ``S[S[H_R_TAG]:]``. ``B`` is allocated with ``np.zeros``,
which the OS backs lazily: a machine with 1 GiB of emulated RAM costs only the pages touched.
"""

import numpy as np

from . import consts as K


class Layout:
    """Collects regions, then allocates ``S`` and ``B``.

    Parameters
    ----------
    header_slots : int
        Number of header slots reserved at the start of ``S``.
    """

    def __init__(self, header_slots):
        self.s_size = header_slots
        self.b_size = 0
        self.params = {}
        self.s_fill = []          # (offset, length, value)
        self.s_regions = {}       # slot -> (offset, length)
        self.b_regions = {}

    def param(self, slot, value):
        """Set a header slot.

        Parameters
        ----------
        slot : int
            ``H_*``.
        value : int
        """
        self.params[slot] = int(value)

    def s_region(self, slot, length, fill=0):
        """Reserve words of ``S``; ``S[slot]`` will hold their offset.

        Parameters
        ----------
        slot : int
            The header slot.
        length : int
            Words.
        fill : int
            Their initial value (0 unless given).

        Returns
        -------
        int
            The offset.
        """
        off = self.s_size
        self.s_size += int(length)
        self.s_regions[slot] = (off, int(length))
        if fill:
            self.s_fill.append((off, int(length), int(fill)))
        return off

    def b_region(self, slot, length, align=64):
        """Reserve bytes of ``B``; ``S[slot]`` will hold their offset.

        Parameters
        ----------
        slot : int
            The header slot.
        length : int
            Bytes.
        align : int
            Alignment of the offset.

        Returns
        -------
        int
            The offset.
        """
        off = -(-self.b_size // align) * align
        self.b_size = off + int(length)
        self.b_regions[slot] = (off, int(length))
        return off

    def build(self):
        """Allocate and initialise ``(S, B)``."""
        S = np.zeros(self.s_size, dtype=np.int64)
        B = np.zeros(max(self.b_size, 1), dtype=np.uint8)
        S[K.H_MAGIC] = K.STATE_MAGIC
        S[K.H_S_SIZE] = len(S)
        S[K.H_B_SIZE] = len(B)
        for slot, value in self.params.items():
            S[slot] = value
        for slot, (off, _) in self.s_regions.items():
            S[slot] = off
        for slot, (off, _) in self.b_regions.items():
            S[slot] = off
        for off, length, value in self.s_fill:
            S[off:off + length] = value
        return S, B


def s_view(S, slot, length):
    """The words of an ``S`` region.

    Parameters
    ----------
    S : numpy.ndarray
    slot : int
        The header slot holding the region's offset.
    length : int
        Words.

    Returns
    -------
    numpy.ndarray
        A view.
    """
    off = int(S[slot])
    return S[off:off + length]


def b_view(S, B, slot, length):
    """The bytes of a ``B`` region.

    Parameters
    ----------
    S, B : numpy.ndarray
        The machine's arrays.
    slot : int
        The header slot holding the region's offset.
    length : int
        Bytes.

    Returns
    -------
    numpy.ndarray
        A view.
    """
    off = int(S[slot])
    return B[off:off + length]


#: Bytes of ``B`` that :func:`pack_bytes` keeps or drops together (a page).
PACK_BLOCK = 4096


def pack_bytes(B):
    """``B`` without its all-zero blocks (untouched RAM, which the OS backs lazily), for
    pickling a machine or cache: ``(length, block indices, their bytes, tail)``.

    Parameters
    ----------
    B : numpy.ndarray
        A 1-D uint8 array.

    Returns
    -------
    tuple
        What :func:`unpack_bytes` takes back.
    """
    full = len(B) - len(B) % PACK_BLOCK
    blocks = B[:full].reshape(-1, PACK_BLOCK)
    idx = np.flatnonzero(blocks.any(axis=1))        # reading a lazy zero page costs no memory
    return len(B), idx, blocks[idx], B[full:].copy()


def unpack_bytes(packed):
    """The array :func:`pack_bytes` packed.

    Parameters
    ----------
    packed : tuple
        What :func:`pack_bytes` returned.

    Returns
    -------
    numpy.ndarray
        A fresh uint8 array, lazily backed (untouched blocks cost no memory).
    """
    n, idx, data, tail = packed
    B = np.zeros(n, dtype=np.uint8)
    full = n - len(tail)
    B[:full].reshape(-1, PACK_BLOCK)[idx] = data
    B[full:] = tail
    return B
