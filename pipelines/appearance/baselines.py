"""Non-learned appearance-transfer baselines, to put the Zero and Hero stages' scores in context.

Both have the call shape ``baseline(frames, edited_frame, frame_index) -> frames`` on RGB uint8 frames
``(H, W, 3)``, like `ZeroToHeroPipeline`, and leave a frame unchanged when the edit changed nothing.

- `flow_chain_edit`: the edit (edited minus original anchor, per pixel) carried from the anchor along a
  chain of DIS optical flow, frame to frame, and added to each frame (what a purely motion-based method
  gets: sharp while the flow is right, with drift and occlusion errors that accumulate).
- `global_colour_transfer`: Reinhard et al. (2001) colour transfer in Lab, with the statistics the edit
  changed: each frame's Lab is mapped by the per-channel affine map that takes the original anchor's
  mean and standard deviation to the edited anchor's. No correspondence at all.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..core.colour import frame_to_tensor, lab_to_rgb, rgb_to_lab, tensor_to_frame
from ..core.flow import dis_flow, warp_back


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def flow_chain_edit(
    frames: list[np.ndarray], edited_frame: np.ndarray, frame_index: int = 0
) -> list[np.ndarray]:
    """Carry the edit's per-pixel change from frame `frame_index` to the later frames (and, backwards, to
    the earlier ones) along DIS flow between consecutive frames, in float so rounding does not compound;
    disoccluded pixels take their neighbours' change (replicated border)."""
    if not frames:
        return []
    anchor_change = edited_frame.astype(np.float32) - frames[frame_index].astype(np.float32)  # (H, W, 3)
    outputs: list[np.ndarray | None] = [None] * len(frames)
    outputs[frame_index] = edited_frame.copy()
    for direction in (1, -1):
        change = anchor_change
        index = frame_index + direction
        while 0 <= index < len(frames):
            change = warp_back(change, dis_flow(_grey(frames[index]), _grey(frames[index - direction])))
            outputs[index] = (frames[index].astype(np.float32) + change).round().clip(0, 255).astype(np.uint8)
            index += direction
    return outputs  # type: ignore[return-value]


def global_colour_transfer(
    frames: list[np.ndarray], edited_frame: np.ndarray, frame_index: int = 0
) -> list[np.ndarray]:
    """Map every frame's Lab channels by the affine maps that take the original anchor's per-channel mean
    and standard deviation to the edited anchor's (Reinhard transfer of the edit's statistics)."""

    def lab(frame: np.ndarray) -> torch.Tensor:
        return rgb_to_lab(frame_to_tensor(frame))  # (1, 3, H, W)

    original, edited = lab(frames[frame_index]), lab(edited_frame)
    original_mean, edited_mean = (
        original.mean(dim=(2, 3), keepdim=True),
        edited.mean(dim=(2, 3), keepdim=True),
    )
    scale = edited.std(dim=(2, 3), keepdim=True) / original.std(dim=(2, 3), keepdim=True).clamp(min=1e-3)
    outputs = []
    for index, frame in enumerate(frames):
        if index == frame_index:
            outputs.append(edited_frame.copy())
            continue
        mapped = (lab(frame) - original_mean) * scale + edited_mean
        outputs.append(tensor_to_frame(lab_to_rgb(mapped)))
    return outputs
