"""Pipeline output dataclasses and conversion to the `output_type` a caller asked for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

OUTPUT_TYPES = ("pil", "np", "pt")

# The one callback signature of every streaming video pipeline (colorization, appearance transfer,
# correspondence): `callback_on_frame_end(pipe, frame_index, callback_kwargs)`, called after each frame.
# It is Diffusers' `callback_on_step_end(pipe, step, timestep, callback_kwargs)` without the timestep, which
# a video pipeline does not have; `callback_kwargs` holds the frame's named results, listed per pipeline in
# its `callback_frame_outputs` (e.g. {"frame": (H, W, 3) uint8} and, for colorization, {"memory": ...}).
# The return value is ignored: a video pipeline's per-frame state is not the caller's to replace.
FrameCallback = Callable[[Any, int, dict[str, Any]], None]


@dataclass
class VideoPipelineOutput(BaseOutput):
    """`frames`: list of PIL images, float array (T, H, W, 3) in [0, 1], or tensor (T, 3, H, W) in [0, 1];
    `video_path`: the mp4 written when the call was given `output_path`, else None."""

    frames: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None
    video_path: str | None = None


def check_output_type(output_type: str) -> None:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")


def frames_to_output(frames: list[np.ndarray], output_type: str):
    """RGB uint8 frames (H, W, 3) -> the representation named by `output_type`."""
    check_output_type(output_type)
    if output_type == "pil":
        return [PIL.Image.fromarray(frame) for frame in frames]
    if not frames:
        return np.zeros((0, 0, 0, 3), np.float32) if output_type == "np" else torch.zeros(0, 3, 0, 0)
    stacked = np.stack(frames).astype(np.float32) / 255.0
    if output_type == "np":
        return stacked
    return torch.from_numpy(stacked).permute(0, 3, 1, 2)
