"""Motion-aware self-supervised video correspondence (Zhou et al. 2025) and label propagation.

Importing this package registers its encoder as the "mer-correspondence" backbone of the other
systems (`backbone.py`, `core.backbones.build_backbone`).
"""

from .backbone import CorrespondenceBackbone
from .modeling import MotionCorrespondenceEncoder
from .overlay import PALETTE, draw_tracks
from .pipeline import CorrespondenceOutput, CorrespondencePipeline
from .propagation import PropagationConfig, track

__all__ = [
    "PALETTE",
    "CorrespondenceBackbone",
    "CorrespondenceOutput",
    "CorrespondencePipeline",
    "MotionCorrespondenceEncoder",
    "PropagationConfig",
    "draw_tracks",
    "track",
]
