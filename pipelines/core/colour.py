"""Lab colour conversion (kornia) and small frame <-> tensor helpers shared by every pipeline."""

from __future__ import annotations

import kornia
import numpy as np
import torch

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
    tensor = torch.from_numpy(np.ascontiguousarray(frame)).to(device)
    return tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_frame(rgb: torch.Tensor) -> np.ndarray:
    """float (1, 3, H, W) or (3, H, W) in [0, 1] -> RGB uint8 (H, W, 3)."""
    rgb = rgb.squeeze(0) if rgb.dim() == 4 else rgb
    return rgb.clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()
