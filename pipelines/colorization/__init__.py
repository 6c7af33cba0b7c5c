"""Exemplar-based video colorization (ColorMNet, Yang et al., ECCV 2024): `ColorMNetPipeline`, its three
components, its memory, and the per-frame stepper that inference and training share."""

from .memory import ColorMemory, MemoryConfig
from .modeling import ColorMNetDecoder, ColorMNetFeatureEncoder, ColorMNetValueEncoder
from .pipeline import ColorMNetPipeline, ExemplarError
from .stepper import ColorMNetStepper

__all__ = [
    "ColorMemory",
    "MemoryConfig",
    "ColorMNetDecoder",
    "ColorMNetFeatureEncoder",
    "ColorMNetValueEncoder",
    "ColorMNetPipeline",
    "ColorMNetStepper",
    "ExemplarError",
]
