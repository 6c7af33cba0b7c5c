"""Motion-aware self-supervised video correspondence (Zhou et al. 2025) and label propagation."""

from .modeling import MotionCorrespondenceEncoder
from .pipeline import CorrespondenceOutput, CorrespondencePipeline
from .propagation import PropagationConfig, track

__all__ = [
    "CorrespondenceOutput",
    "CorrespondencePipeline",
    "MotionCorrespondenceEncoder",
    "PropagationConfig",
    "track",
]
