"""Dense optical flow without learned weights: OpenCV's DIS (Kroeger et al. 2016) on luminance."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def luminance_to_u8(luminance: torch.Tensor) -> np.ndarray:
    """L (1, 1, H, W) or (H, W) in [0, 100] -> uint8 (H, W), the input DIS takes."""
    return (luminance.squeeze().cpu().numpy() * 2.55).round().clip(0, 255).astype(np.uint8)


def dis_flow(source: np.ndarray, target: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
    """Flow (H, W, 2) in pixels from uint8 (H, W) `source` to `target`: source(x) ~ target(x + flow(x))."""
    return cv2.DISOpticalFlow_create(preset).calc(source, target, None)
