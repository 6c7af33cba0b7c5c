"""Pseudo-video image generation (Chen et al. 2024, "Your Image is Secretly the Last Frame of a Pseudo
Video"): pseudo-video builders, an image generator and its video counterpart with the same backbone,
offline data and `PseudoVideoPipeline`."""

from .builders import (
    BUILDER_KINDS,
    RICH_KINDS,
    build_pseudo_video,
    degrade,
    frame_levels,
    markov_pseudo_video,
    rich_pseudo_video,
)
from .data import ImageTensorDataset, digit_images, load_images, photo_crops
from .modeling import (
    MODES,
    PseudoVideoGenerator,
    PseudoVideoScheduler,
    generate,
    imle_loss,
    scheduler_for_mode,
)
from .pipeline import PseudoVideoPipeline, PseudoVideoPipelineOutput

__all__ = [
    "BUILDER_KINDS",
    "MODES",
    "RICH_KINDS",
    "ImageTensorDataset",
    "PseudoVideoGenerator",
    "PseudoVideoPipeline",
    "PseudoVideoPipelineOutput",
    "PseudoVideoScheduler",
    "build_pseudo_video",
    "degrade",
    "digit_images",
    "frame_levels",
    "generate",
    "imle_loss",
    "load_images",
    "markov_pseudo_video",
    "photo_crops",
    "rich_pseudo_video",
    "scheduler_for_mode",
]
