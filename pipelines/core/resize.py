"""The size a pipeline processes frames at, and resizing to it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Small videos are upscaled, at most this much, before processing: a model's strides (8 for
# colorization's memory keys, 2 for its output) leave too few positions on a 176x144 clip.
MAX_PROCESSING_UPSCALE = 2.0


def processing_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Size (h, w) a frame is processed at: short side about `short_side` (upscaled at most
    `MAX_PROCESSING_UPSCALE` times), aspect kept, both multiples of 16 (the backbone's stride)."""
    scale = min(MAX_PROCESSING_UPSCALE, short_side / min(height, width))
    return max(16, round(height * scale / 16) * 16), max(16, round(width * scale / 16) * 16)


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
