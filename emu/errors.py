"""emu's exceptions. All derive from :class:`EmuError`."""


class EmuError(Exception):
    """Base class of every error emu raises on purpose."""


class KernelBug(EmuError):
    """A kernel ``BUG()`` / ``BUG_ON()`` would fire. The machine state is unchanged."""


class PageFault(EmuError):
    """Access to an unmapped kernel virtual address."""


class WouldSleep(EmuError):
    """A direct call would block forever (nobody left to wake it)."""


class Deadlock(EmuError):
    """A run can make no further progress."""


class DmaDebugError(EmuError):
    """The DMA API was misused, as CONFIG_DMA_API_DEBUG reports it."""
