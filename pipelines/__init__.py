"""hueflow: Diffusers-style pipelines for video colour and motion models."""

from .appearance import ZeroToHeroPipeline
from .colorization import ColorMNetPipeline
from .core.hub import PretrainedLoadError
from .core.video import VideoInputError
from .correspondence import CorrespondencePipeline
from .pseudo_video import PseudoVideoPipeline
from .tgan import TGANPipeline

__all__ = [
    "ColorMNetPipeline",
    "CorrespondencePipeline",
    "PretrainedLoadError",
    "PseudoVideoPipeline",
    "TGANPipeline",
    "VideoInputError",
    "ZeroToHeroPipeline",
]
