"""Dense optical flow without learned weights: OpenCV's DIS (Kroeger et al. 2016) on luminance."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .resize import resize


def luminance_to_u8(luminance: torch.Tensor) -> np.ndarray:
    """L (1, 1, H, W) or (H, W) in [0, 100] -> uint8 (H, W), the input DIS takes."""
    return (luminance.squeeze().cpu().numpy() * 2.55).round().clip(0, 255).astype(np.uint8)


def dis_flow(source: np.ndarray, target: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
    """Flow (H, W, 2) in pixels from uint8 (H, W) `source` to `target`: source(x) ~ target(x + flow(x))."""
    return cv2.DISOpticalFlow_create(preset).calc(source, target, None)


def warp_back(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` (H, W[, C]) float32 at x + flow(x), with `flow` (H, W, 2) from `dis_flow(current,
    previous)`: brings the previous frame's values onto the current frame's pixel grid. Bilinear; outside
    the frame the border repeats, so disoccluded pixels take their neighbours' values."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def luminance_flow(
    luminance: torch.Tensor,
    other: torch.Tensor,
    max_short_side: int | None = None,
    preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
) -> torch.Tensor:
    """Displacement (1, 2, H, W), (dx, dy) in pixels, with luminance(x) ~ other(x + D(x)), for L (1, 1, H, W)
    in [0, 100]: DIS on the 8-bit luminance. With `max_short_side`, larger frames are matched at that
    short side and the flow is scaled back up (DIS's cost grows with the pixel count; flow is smooth)."""
    height, width = luminance.shape[-2:]
    scale = 1.0 if max_short_side is None else min(1.0, max_short_side / min(height, width))
    size = (max(8, round(height * scale)), max(8, round(width * scale)))
    flow = dis_flow(luminance_to_u8(resize(luminance, size)), luminance_to_u8(resize(other, size)), preset)
    displacement = torch.from_numpy(flow).to(luminance.device).permute(2, 0, 1)[None].float()
    if size == (height, width):
        return displacement
    gain = torch.tensor([width / size[1], height / size[0]], device=luminance.device)
    return resize(displacement, (height, width)) * gain[None, :, None, None]
