"""Reading images and resizing them by their short side: the one loader and the one resizer that the
data export, the training clips and the evaluations share.

Two resampling methods are kept on purpose, because the numbers depend on them:

- "area" (OpenCV): `cv2.INTER_AREA` when shrinking (it averages every source pixel, so no aliasing),
  `cv2.INTER_CUBIC` when enlarging (area averaging has nothing to average there). The evaluations
  resize their frames and photos this way.
- "pil_bicubic" (Pillow): Pillow's BICUBIC, whose filter widens with the shrink factor (antialiased).
  The training export was written this way; the shipped checkpoints were trained on its output, so
  `python -m pipelines.data prepare` must keep producing exactly those pixels.
"""

from __future__ import annotations

import os
from typing import Literal

import cv2
import numpy as np
import PIL.Image
import torch

ResizeMethod = Literal["area", "pil_bicubic"]


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3): grey and palette images become RGB, alpha is dropped.

    Unlike `core.video.load_image` (the user-facing loader) it does not apply EXIF rotation: the
    exported data was read this way, and the offline sources are stored upright."""
    with PIL.Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def resize_short_side(
    image: np.ndarray, short_side: int, upscale: bool = False, method: ResizeMethod = "area"
) -> np.ndarray:
    """Resize (H, W, C) or (H, W) so its short side is `short_side`, aspect kept (each side rounded).

    With `upscale=False` an image whose short side is already at most `short_side` is returned as it
    is (the same array, not a copy). `method` is "area" or "pil_bicubic" (see the module's docstring)."""
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    if scale >= 1 and not upscale:
        return image
    size = (round(width * scale), round(height * scale))  # (width, height), as both libraries take it
    if method == "pil_bicubic":
        return np.asarray(PIL.Image.fromarray(image).resize(size, PIL.Image.BICUBIC))
    if method == "area":
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    raise ValueError(f"method must be 'area' or 'pil_bicubic', got {method!r}.")


def is_colour(image: np.ndarray, threshold: float = 4.0) -> bool:
    """Whether an RGB uint8 image (H, W, 3) carries colour: its channels' mean distance from their
    per-pixel mean exceeds `threshold` grey levels (grey scans and near-grey pictures fail)."""
    chroma = np.abs(image.astype(np.int16) - image.mean(axis=2, keepdims=True)).mean()
    return chroma > threshold
