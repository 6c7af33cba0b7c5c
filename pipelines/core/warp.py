"""Warping by position fields: a pixel grid and bilinear reads of an image at absolute positions.

Used wherever a frame is brought onto another frame's grid by a dense correspondence (the colorization
pipeline's motion-compensated hold, the appearance pipeline's Zero stage). `core/flow.py` computes the
correspondences (DIS optical flow) and has the NumPy/OpenCV counterpart for flow fields (`warp_back`).

Conventions: a displacement field D (B, 2, H, W) holds (dx, dy) in pixels and says that the query
frame's pixel x looks like the other frame's x + D(x), so `sample_at(other, pixel_grid(H, W) + D)`
brings `other` onto the query's grid. A position field P (B, 2, H, W) holds absolute (x, y) pixel
coordinates in another frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, 2, H, W): each pixel's own (x, y)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None]


def sample_at(image: torch.Tensor, positions: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """image (B, C, h, w) read at positions (B, 2, H, W), absolute (x, y) pixel coordinates of `image`
    -> (B, C, H, W). Outside the image the border is repeated."""
    height, width = image.shape[-2:]
    scale = torch.tensor(
        [2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=positions.device, dtype=positions.dtype
    )
    grid = (positions * scale[None, :, None, None] - 1).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def inside_image(positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """positions (B, 2, H, W) -> (B, 1, H, W) bool: whether each lies in an image of `height` x `width`
    (where `sample_at` reads the image itself rather than its repeated border)."""
    x, y = positions[:, :1], positions[:, 1:]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
