"""Temporal GAN (Saito et al., ICCV 2017): temporal + image generators, a 3-D critic, singular value
clipping, bouncing-digit data, `TGANPipeline` and `export_videos` (its clips as a looping GIF or mp4)."""

from .clipping import layer_spectral_norms, singular_value_clip_, weight_clip_
from .data import ClipFolder, IdentitySwappedDigits, MovingDigits
from .export import export_videos
from .modeling import TGANCritic, TGANImageGenerator, TGANTemporalGenerator, generate_videos
from .pipeline import TGANPipeline, TGANPipelineOutput

__all__ = [
    "ClipFolder",
    "IdentitySwappedDigits",
    "MovingDigits",
    "TGANCritic",
    "TGANImageGenerator",
    "TGANPipeline",
    "TGANPipelineOutput",
    "TGANTemporalGenerator",
    "export_videos",
    "generate_videos",
    "layer_spectral_norms",
    "singular_value_clip_",
    "weight_clip_",
]
