"""emu.dma: the ARM streaming-DMA API, the bus-master DMA engine and the integrity oracle."""

from ..consts import DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE

__all__ = ["DMA_BIDIRECTIONAL", "DMA_TO_DEVICE", "DMA_FROM_DEVICE"]
