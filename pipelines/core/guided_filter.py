"""Guided upsampling: lift a low-resolution prediction to full resolution along the edges of a
full-resolution guide (He et al.'s fast guided filter).

Written by hand because kornia's `guided_blur` filters at one resolution; the fast variant fits
the linear model at low resolution and applies it at full resolution, which is what keeps
colour edges sharp at little cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import box_blur


def guided_upsample(
    source: torch.Tensor,
    guide_low: torch.Tensor,
    guide_high: torch.Tensor,
    radius: int = 2,
    eps: float = 1e-2,
) -> torch.Tensor:
    """source (B, C, h, w), guide_low (B, 1, h, w), guide_high (B, 1, H, W) -> (B, C, H, W).

    Guides should be scaled to about [0, 1] for `eps` to mean what it says.
    """
    kernel = (2 * radius + 1, 2 * radius + 1)
    mean_guide = box_blur(guide_low, kernel, border_type="replicate")
    mean_source = box_blur(source, kernel, border_type="replicate")
    covariance = box_blur(guide_low * source, kernel, border_type="replicate") - mean_guide * mean_source
    variance = box_blur(guide_low * guide_low, kernel, border_type="replicate") - mean_guide * mean_guide
    slope = covariance / (variance + eps)
    offset = mean_source - slope * mean_guide
    size = guide_high.shape[-2:]
    slope = F.interpolate(box_blur(slope, kernel, border_type="replicate"), size=size, mode="bilinear")
    offset = F.interpolate(box_blur(offset, kernel, border_type="replicate"), size=size, mode="bilinear")
    return slope * guide_high + offset
