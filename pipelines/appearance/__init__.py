"""Reference-based video appearance transfer: Zero-to-Hero (Su et al., 2025)."""

from .modeling import AppearanceFeatureEncoder, HeroRestorer, ZeroStageConfig
from .pipeline import EditedFrameError, ZeroToHeroPipeline

__all__ = [
    "AppearanceFeatureEncoder",
    "EditedFrameError",
    "HeroRestorer",
    "ZeroStageConfig",
    "ZeroToHeroPipeline",
]
