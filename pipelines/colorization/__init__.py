from .memory import ColorMemory, MemoryConfig
from .modeling import ColorMNetDecoder, ColorMNetFeatureEncoder, ColorMNetValueEncoder
from .pipeline import ColorMNetPipeline, ExemplarError

__all__ = [
    "ColorMemory",
    "MemoryConfig",
    "ColorMNetDecoder",
    "ColorMNetFeatureEncoder",
    "ColorMNetValueEncoder",
    "ColorMNetPipeline",
    "ExemplarError",
]
