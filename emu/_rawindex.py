"""C-like integer indexing of arrays inside emu's kernels.

numba follows Python for ``a[i]`` with a signed ``i``: a negative index counts from the end, so
every load and store through a computed index carries a compare and a select before its
address. emu's machine arrays are only ever indexed with offsets ``>= 0`` (record offsets are
built from header slots), so in the functions emu compiles an integer index is used as it is,
as C does; an out-of-range index is then as undefined as it is in C, and
``NUMBA_BOUNDSCHECK=1`` still catches one (including a negative one). The kmap_high +
kunmap_high pair went from ~113 to ~86 ns, the scheduler from ~10 to ~12 M steps/s.

Scope: only code lowered by :class:`EmuCompiler` (every decorator in :mod:`emu._jit`),
including what it inlines at numba's IR level. Every other function in the process, and
numba's own helpers compiled while an emu kernel is lowered, keep Python's semantics: the
lowering below checks that the code library being built is one an emu lowering opened. (The
two lowerings are registered with numba process-wide, for ``types.Array``; outside emu's
functions they hand over to numba's own, so other code compiles exactly as before.)
"""

import operator
import threading

from numba.core import lowering, types
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import PassManager, register_pass
from numba.core.imputils import lower_builtin
from numba.core.typed_passes import NativeLowering
from numba.core.typing import signature
from numba.np.arrayobj import getitem_arraynd_intp, setitem_array

_lowering = threading.local()


def _raw(context):
    """True while an emu function's own body is being lowered (outside any emu lowering this
    touches nothing of numba's)."""
    lib = getattr(_lowering, "library", None)
    return lib is not None and context.active_code_library is lib


def _unsigned(context, builder, idxty, idx):
    """The index as numba's unsigned ``uintp`` (no wrap-around), same bits as ``intp``."""
    return types.uintp, context.cast(builder, idx, idxty, types.intp)


@lower_builtin(operator.getitem, types.Array, types.Integer)
def _getitem(context, builder, sig, args):
    aryty, idxty = sig.args
    if idxty.signed and _raw(context):
        idxty, idx = _unsigned(context, builder, idxty, args[1])
        sig, args = signature(sig.return_type, aryty, idxty), (args[0], idx)
    return getitem_arraynd_intp(context, builder, sig, args)


@lower_builtin(operator.setitem, types.Array, types.Integer, types.Any)
def _setitem(context, builder, sig, args):
    aryty, idxty, valty = sig.args
    if idxty.signed and _raw(context):
        idxty, idx = _unsigned(context, builder, idxty, args[1])
        sig, args = signature(sig.return_type, aryty, idxty, valty), (args[0], idx, args[2])
    return setitem_array(context, builder, sig, args)


class _RawLower(lowering.Lower):
    """numba's lowering, marking the library it fills as an emu function's."""

    def lower(self):
        prev = getattr(_lowering, "library", None)
        _lowering.library = self.library
        try:
            super().lower()
        finally:
            _lowering.library = prev


@register_pass(mutates_CFG=True, analysis_only=False)
class _RawNativeLowering(NativeLowering):
    _name = "emu_native_lowering"

    @property
    def lowering_class(self):
        return _RawLower


class EmuCompiler(CompilerBase):
    """numba's nopython pipeline with :class:`_RawNativeLowering` as its lowering pass."""

    def define_pipelines(self):
        state = self.state
        if state.flags.force_pyobject or state.flags.auto_parallel.enabled:
            raise TypeError("emu kernels are nopython, non-parallel functions")
        pm = PassManager("emu_nopython")
        for part in (DefaultPassBuilder.define_untyped_pipeline(state),
                     DefaultPassBuilder.define_typed_pipeline(state),
                     DefaultPassBuilder.define_nopython_lowering_pipeline(state)):
            pm.passes.extend((_RawNativeLowering if p is NativeLowering else p, d)
                             for p, d in part.passes)
        pm.finalize()
        return [pm]
