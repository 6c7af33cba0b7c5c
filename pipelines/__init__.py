"""hueflow: Diffusers-style pipelines for video colour and motion models.

The names below are the package's public face: the five pipelines, their base class and errors, and the
video I/O that the pipelines read and write with (so an app or a script opens a video the same way the
pipelines do). Each system's own public names are in its package (`pipelines.colorization`, ...).
"""

from .appearance import ZeroToHeroPipeline
from .colorization import ColorMNetPipeline
from .core.hub import HueflowPipeline, PipelineInputError, PretrainedLoadError
from .core.outputs import FrameCallback
from .core.video import VideoInfo, VideoInputError, VideoReader, is_cut_short, load_image, write_video
from .correspondence import CorrespondencePipeline
from .pseudo_video import PseudoVideoPipeline
from .tgan import TGANPipeline

__all__ = [
    "ColorMNetPipeline",
    "CorrespondencePipeline",
    "FrameCallback",
    "HueflowPipeline",
    "PipelineInputError",
    "PretrainedLoadError",
    "PseudoVideoPipeline",
    "TGANPipeline",
    "VideoInfo",
    "VideoInputError",
    "VideoReader",
    "ZeroToHeroPipeline",
    "is_cut_short",
    "load_image",
    "write_video",
]
