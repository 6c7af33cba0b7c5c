"""Exemplar-based video colorization (ColorMNet, Yang et al., ECCV 2024): `ColorMNetPipeline`, its three
components, its memory, the per-frame stepper that inference and training share, and its output, which
says how each exemplar was placed (`ColorizationPipelineOutput`, `describe_placement`)."""

from .memory import ColorMemory, MemoryConfig
from .modeling import ColorMNetDecoder, ColorMNetFeatureEncoder, ColorMNetValueEncoder
from .pipeline import (
    ColorizationPipelineOutput,
    ColorMNetPipeline,
    ExemplarError,
    describe_placement,
)
from .stepper import ColorMNetStepper

__all__ = [
    "ColorMemory",
    "MemoryConfig",
    "ColorMNetDecoder",
    "ColorMNetFeatureEncoder",
    "ColorMNetValueEncoder",
    "ColorMNetPipeline",
    "ColorMNetStepper",
    "ColorizationPipelineOutput",
    "ExemplarError",
    "describe_placement",
]
