"""`CorrespondencePipeline`: track a mask or points drawn on frame 0 through a video.

    pipe = CorrespondencePipeline.from_pretrained("checkpoints/mer-correspondence")
    result = pipe("clip.mp4", points=[[120, 80], [200, 96]], masks=label_map)
    result.points  # (T, N, 2) x, y in pixels
    result.masks   # (T, H, W) label ids

Frames are encoded by the motion-aware encoder (luminance + DIS flow to the previous frame) at
`processing_size`, and labels are propagated by feature affinity from frame 0 and the last few
frames (`propagation.py`). Frames stream: memory holds the context, not the video, and with
`output_path` an mp4 of the video with the tracked mask and points drawn on it is written as it goes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from diffusers.utils import BaseOutput

from ..core.colour import frame_to_tensor, luminance_and_ab
from ..core.flow import luminance_to_u8
from ..core.hub import HueflowPipeline
from ..core.resize import processing_shape, resize
from ..core.video import VideoReader, output_writer
from .modeling import MotionCorrespondenceEncoder, frame_flow
from .propagation import PropagationConfig, iter_tracks


@dataclass
class CorrespondenceOutput(BaseOutput):
    """`points`: (T, N, 2) x, y pixels (or None); `masks`: (T, H, W) label ids (or None);
    `video_path`: the overlay mp4 when the call was given `output_path`."""

    points: np.ndarray | torch.Tensor | None
    masks: np.ndarray | torch.Tensor | None
    video_path: str | None = None


class EncoderFeatures:
    """The encoder as a `FeatureExtractor`: frames of one video in order, each with its motion input
    (`modeling.frame_flow`): the flow to the previous frame, and for the first frame the reverse of
    its flow to the next one, so the labelled first frame is encoded like every other frame."""

    def __init__(self, encoder: MotionCorrespondenceEncoder, processing_size: int, device: torch.device):
        self.encoder, self.processing_size, self.device = encoder, processing_size, device
        self.previous: np.ndarray | None = None

    def reset(self) -> None:
        self.previous = None

    def _lab(self, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """frame (H, W, 3) -> L (1, 1, h, w) and ab (1, 2, h, w) at the processing size; ab is None
        for an encoder without colour input (not resized for nothing)."""
        size = processing_shape(*frame.shape[:2], self.processing_size)
        luminance, ab = luminance_and_ab(frame_to_tensor(frame, self.device))
        return resize(luminance, size), resize(ab, size) if self.encoder.config.use_colour else None

    @torch.no_grad()
    def __call__(self, frame: np.ndarray, next_frame: np.ndarray | None = None) -> torch.Tensor:
        luminance, ab = self._lab(frame)
        current = luminance_to_u8(luminance)
        flow = None
        if self.encoder.config.use_motion:
            following = None
            if self.previous is None and next_frame is not None:
                following = luminance_to_u8(self._lab(next_frame)[0])
            flow = frame_flow(current, self.previous, following)
        if flow is not None:
            flow = torch.from_numpy(flow).permute(2, 0, 1)[None].to(self.device)
        self.previous = current
        return self.encoder(luminance, flow, ab)[0]


# Overlay colours of mask ids 1, 2, ... (id 0, the background, is left as it is).
PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
    dtype=np.float32,
)  # fmt: skip


def draw_tracks(frame: np.ndarray, points: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """The frame with each object of `mask` tinted and outlined, and `points` drawn as dots."""
    out = frame.astype(np.float32)
    if mask is not None:
        for label in np.unique(mask):
            if label != 0:  # coloured by id, so an object keeps its colour when another leaves the frame
                region = mask == label
                out[region] = 0.5 * out[region] + 0.5 * PALETTE[(int(label) - 1) % len(PALETTE)]
    out = out.round().astype(np.uint8)
    if mask is not None:
        edges = cv2.morphologyEx((mask != 0).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        out[edges > 0] = 255
    if points is not None:
        radius = max(2, round(min(frame.shape[:2]) / 120))
        for index, (x, y) in enumerate(points):
            colour = tuple(int(c) for c in PALETTE[index % len(PALETTE)])
            cv2.circle(out, (round(float(x)), round(float(y))), radius + 1, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)
    return out


class CorrespondencePipeline(HueflowPipeline):
    def __init__(
        self,
        encoder: MotionCorrespondenceEncoder,
        processing_size: int = 256,
        context_frames: int = PropagationConfig.context_frames,
        radius: int = PropagationConfig.radius,
        top_k: int = PropagationConfig.top_k,
        temperature: float = PropagationConfig.temperature,
    ) -> None:
        super().__init__()
        self.register_modules(encoder=encoder)
        self.register_to_config(
            processing_size=processing_size,
            context_frames=context_frames,
            radius=radius,
            top_k=top_k,
            temperature=temperature,
        )

    def propagation_config(self) -> PropagationConfig:
        return PropagationConfig(
            context_frames=self.config.context_frames,
            radius=self.config.radius,
            top_k=self.config.top_k,
            temperature=self.config.temperature,
        )

    def feature_extractor(self, processing_size: int | None = None) -> EncoderFeatures:
        """The encoder as a `propagation.FeatureExtractor` (for `propagation.track` and evaluation)."""
        return EncoderFeatures(self.encoder, processing_size or self.config.processing_size, self.device)

    @staticmethod
    def _check_inputs(points, masks, height: int, width: int):
        if points is None and masks is None:
            raise ValueError(
                "Nothing to track: give `points` (N, 2) and/or `masks` (a label map of frame 0)."
            )
        if points is not None:
            points = np.asarray(points, dtype=np.float32)
            if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
                raise ValueError(f"points must be an (N, 2) array of x, y pixels, got shape {points.shape}.")
            outside = (
                (points[:, 0] < 0) | (points[:, 0] >= width) | (points[:, 1] < 0) | (points[:, 1] >= height)
            )
            if outside.any():
                raise ValueError(
                    f"Points {np.flatnonzero(outside).tolist()} lie outside frame 0 ({width}x{height})."
                )
        if masks is not None:
            masks = np.asarray(masks)
            if masks.ndim == 3 and masks.shape[-1] in (3, 4):
                raise ValueError("masks must be a label map (H, W) of integer ids, not an RGB image.")
            if masks.shape != (height, width):
                raise ValueError(
                    f"masks has shape {masks.shape}, but the video's frames are {height}x{width} (H, W)."
                )
            if masks.dtype == bool:
                masks = masks.astype(np.uint8)
            if not np.issubdtype(masks.dtype, np.integer):
                raise ValueError(f"masks must hold integer label ids, got dtype {masks.dtype}.")
            if not (masks != 0).any():
                raise ValueError("masks is empty: label at least one object (non-zero id) on frame 0.")
        return points, masks

    @torch.no_grad()
    def __call__(
        self,
        video,
        points: np.ndarray | None = None,
        masks: np.ndarray | None = None,
        max_frames: int | None = None,
        processing_size: int | None = None,
        output_type: str = "np",
        output_path: str | os.PathLike | None = None,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
        callback_on_frame_end: Callable[[CorrespondencePipeline, int], None] | None = None,
    ):
        """Track `points` and/or the objects of `masks`, both given on frame 0, through `video`.

        Args:
            video: a video file, a folder of frames, a list of RGB arrays or PIL images, or an array.
            points: (N, 2) x, y pixel positions on frame 0.
            masks: (H, W) integer label map of frame 0 (0 = background; one id per object).
            max_frames: stop after this many frames.
            processing_size: short side the encoder runs at (default from the config).
            output_type: "np" (arrays) or "pt" (tensors).
            output_path: also write an H.264 mp4 of the video with the tracks drawn on it.
            generator: accepted for the common pipeline signature; tracking is deterministic.
            callback_on_frame_end: called as `fn(pipeline, frame_index)` after each frame.
        """
        if output_type not in ("np", "pt"):
            raise ValueError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        reader = VideoReader(video, max_frames=max_frames)
        height, width = reader.info.height, reader.info.width
        points, masks = self._check_inputs(points, masks, height, width)
        extractor = self.feature_extractor(processing_size)
        tracked_points, tracked_masks = [], []
        with (
            output_writer(output_path, reader.info) as writer,
            self.progress_bar(total=len(reader)) as progress,
        ):
            tracks = iter_tracks(reader, extractor, points, masks, self.propagation_config())
            for index, (frame, frame_points, frame_mask) in enumerate(tracks):
                if frame_points is not None:
                    tracked_points.append(frame_points)
                if frame_mask is not None:
                    tracked_masks.append(frame_mask.astype(masks.dtype, copy=False))
                if writer is not None:
                    writer.write(draw_tracks(frame, frame_points, frame_mask))
                if callback_on_frame_end is not None:
                    callback_on_frame_end(self, index)
                progress.update()
        if output_path is not None:
            output_path = str(output_path)
        result_points = np.stack(tracked_points) if tracked_points else None
        result_masks = np.stack(tracked_masks) if tracked_masks else None
        if output_type == "pt":
            result_points = None if result_points is None else torch.from_numpy(result_points)
            result_masks = None if result_masks is None else torch.from_numpy(result_masks)
        if not return_dict:
            return (result_points, result_masks, output_path)
        return CorrespondenceOutput(points=result_points, masks=result_masks, video_path=output_path)
