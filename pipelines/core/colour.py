"""Lab colour conversion (kornia), small frame <-> tensor helpers shared by every pipeline, and a global
colour lookup fitted from an image and its edit."""

from __future__ import annotations

import itertools

import kornia
import numpy as np
import torch
import torch.nn.functional as F

# ab is scaled by this before it enters a network so that typical values sit in [-1, 1].
AB_SCALE = 110.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) Lab with L in [0, 100] and ab in about [-128, 127]."""
    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) Lab -> (B, 3, H, W) RGB in [0, 1] (out-of-gamut colours are clipped)."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def luminance_and_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) RGB in [0, 1] -> L (B, 1, H, W) in [0, 100] and ab (B, 2, H, W)."""
    lab = rgb_to_lab(rgb)
    return lab[:, :1], lab[:, 1:]


def compose_lab(luminance: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """L (B, 1, H, W) + ab (B, 2, H, W) -> RGB (B, 3, H, W) in [0, 1]."""
    return lab_to_rgb(torch.cat([luminance, ab], dim=1))


def frame_to_tensor(frame: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    # Copied only when read-only (Pillow's np.asarray(image)) or not contiguous: torch warns about sharing
    # a read-only array's memory.
    tensor = torch.from_numpy(np.require(frame, requirements=("C", "W"))).to(device)
    return tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_frame(rgb: torch.Tensor) -> np.ndarray:
    """float (1, 3, H, W) or (3, H, W) in [0, 1] -> RGB uint8 (H, W, 3)."""
    rgb = rgb.squeeze(0) if rgb.dim() == 4 else rgb
    return rgb.clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()


# -- a global colour function, fitted from one image pair --------------------------------------------
# Hand-written: kornia applies 3-D LUTs but does not fit one from example pixels. The lookup is a
# (1, 3, B, B, B) volume of RGB *changes* indexed [blue, green, red], so that `F.grid_sample` with
# (x, y, z) = (r, g, b) reads it trilinearly.


def fit_colour_lookup(original: torch.Tensor, edited: torch.Tensor, bins: int = 17) -> torch.Tensor:
    """original, edited (1, 3, H, W) RGB in [0, 1] -> (1, 3, bins, bins, bins) change volume: the edit
    as one colour function (edited - original as a function of the original colour), each pixel
    splatted trilinearly into its 8 neighbouring bins. Bins no pixel reached are filled from their
    neighbours by a few rounds of normalized 3x3x3 averaging (colours far from every example keep a
    zero change)."""
    rgb = original[0].reshape(3, -1).T * (bins - 1)  # (N, 3) in bin units
    change = (edited - original)[0].reshape(3, -1).T  # (N, 3)
    low = rgb.floor().clamp(0, bins - 2)
    fraction, low = rgb - low, low.long()
    total = torch.zeros(bins**3, 3, dtype=rgb.dtype, device=rgb.device)
    weight = torch.zeros(bins**3, dtype=rgb.dtype, device=rgb.device)
    for corner in itertools.product((0, 1), repeat=3):  # (dr, dg, db)
        offset = torch.tensor(corner, device=rgb.device)
        corner_weight = torch.where(offset.bool(), fraction, 1 - fraction).prod(dim=1)  # (N,)
        r, g, b = (low + offset).unbind(dim=1)
        index = (b * bins + g) * bins + r
        total.index_add_(0, index, corner_weight[:, None] * change)
        weight.index_add_(0, index, corner_weight)
    total = total.T.reshape(1, 3, bins, bins, bins)
    weight = weight.reshape(1, 1, bins, bins, bins)
    lookup = total / weight.clamp_min(1e-6)
    known = weight > 0.5  # bins with at least half a pixel's evidence
    lookup = torch.where(known, lookup, torch.zeros_like(lookup))
    for _ in range(bins // 2):
        total = F.avg_pool3d(total, 3, 1, 1, count_include_pad=False)
        weight = F.avg_pool3d(weight, 3, 1, 1, count_include_pad=False)
        reached = ~known & (weight > 1e-3)
        lookup = torch.where(reached, total / weight.clamp_min(1e-6), lookup)
        known = known | reached
    return lookup


def apply_colour_lookup(lookup: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """lookup (1, 3, B, B, B) from `fit_colour_lookup`, rgb (N, 3, H, W) in [0, 1] -> (N, 3, H, W) the
    colour function applied to every pixel, in [0, 1]."""
    grid = (rgb * 2 - 1).permute(0, 2, 3, 1)[:, None]  # (N, 1, H, W, 3): (x, y, z) = (r, g, b)
    volume = lookup.expand(rgb.shape[0], -1, -1, -1, -1)
    change = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return (rgb + change[:, :, 0]).clamp(0, 1)
