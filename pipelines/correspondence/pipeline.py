"""`CorrespondencePipeline`: track a mask or points drawn on frame 0 through a video.

    pipe = CorrespondencePipeline.from_pretrained("checkpoints/mer-correspondence")
    result = pipe("clip.mp4", points=[[120, 80], [200, 96]], masks=label_map)
    result.points  # (T, N, 2) x, y in pixels
    result.masks   # (T, H, W) label ids

Frames are encoded by the motion-aware encoder (luminance + DIS flow to the previous frame) at
`processing_size`, and labels are propagated by feature affinity from frame 0 and the last few
frames (`propagation.py`). Frames stream: memory holds the context, not the video, and with
`output_path` an mp4 of the video with the tracked mask and points drawn on it (`overlay.py`) is
written as it goes.

`CorrespondencePipeline.check_inputs(height, width, points=..., masks=...)` raises every problem with
the inputs that can be seen without reading a frame or loading the model (an app validates its form
with it), and `callback_on_frame_end(pipe, frame_index, callback_kwargs)` (`core.outputs.FrameCallback`)
sees each frame's tracked points and mask as they are made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils import BaseOutput

from ..core.colour import frame_to_tensor, luminance_and_ab
from ..core.flow import luminance_to_u8
from ..core.hub import HueflowPipeline
from ..core.outputs import FrameCallback
from ..core.resize import processing_shape, resize
from ..core.video import VideoReader, output_writer
from .modeling import MotionCorrespondenceEncoder, frame_flow
from .overlay import draw_tracks
from .propagation import PropagationConfig, iter_tracks

OUTPUT_TYPES = ("np", "pt")


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


class CorrespondencePipeline(HueflowPipeline):
    """Label propagation with the motion-aware correspondence encoder (see the module docstring)."""

    # The names in `callback_kwargs` of `callback_on_frame_end` (`core.outputs.FrameCallback`).
    callback_frame_outputs = ("points", "masks")
    dtype_note = (
        "Its optical flow and label propagation are float32 code around a small encoder (about 1 M "
        "parameters), so half precision would not make it faster."
    )

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

    @classmethod
    def check_inputs(
        cls,
        height: int,
        width: int,
        points: np.ndarray | None = None,
        masks: np.ndarray | None = None,
        processing_size: int | None = None,
        output_type: str = "np",
        callback_on_frame_end: FrameCallback | None = None,
    ) -> None:
        """Raise a ValueError that says what to change for any argument of `__call__` that cannot be
        tracked, given the video's frame size (`VideoReader(video).info.height` / `.width`): nothing
        to track, points that are not (N, 2) finite pixels inside frame 0, a mask that is not an
        integer (or boolean) label map of frame 0's size with at least one object, a processing size
        that is not a positive integer, an output type other than "np" / "pt", a callback that is not
        callable.

        Cheap: no frame is read and no model runs, and it is a classmethod, so an app can call it
        before loading the model (`CorrespondencePipeline.check_inputs(info.height, info.width, ...)`).
        The other arguments are those of `__call__`; `max_frames` and the video itself are checked by
        `VideoReader`, which also gives the size (`VideoReader(video).info`)."""
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be 'np' or 'pt', got {output_type!r}")
        if points is None and masks is None:
            raise ValueError(
                "Nothing to track: give `points` (N, 2) and/or `masks` (a label map of frame 0)."
            )
        if points is not None:
            points = np.asarray(points, dtype=np.float32)
            if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
                raise ValueError(f"points must be an (N, 2) array of x, y pixels, got shape {points.shape}.")
            not_finite = ~np.isfinite(points).all(axis=1)
            if not_finite.any():
                raise ValueError(
                    f"{_numbered_points(points, not_finite)}: x and y must be finite numbers of pixels."
                )
            outside = (
                (points[:, 0] < 0) | (points[:, 0] >= width) | (points[:, 1] < 0) | (points[:, 1] >= height)
            )
            if outside.any():
                verb = "lies" if outside.sum() == 1 else "lie"
                raise ValueError(
                    f"{_numbered_points(points, outside)} {verb} outside frame 0, which is "
                    f"{width}x{height} px (x from 0 to {width - 1}, y from 0 to {height - 1})."
                )
        if masks is not None:
            masks = np.asarray(masks)
            if masks.ndim == 3 and masks.shape[-1] in (3, 4):
                raise ValueError("masks must be a label map (H, W) of integer ids, not an RGB image.")
            if masks.shape != (height, width):
                raise ValueError(
                    f"masks has shape {masks.shape}, but the video's frames are {height}x{width} (H, W)."
                )
            if masks.dtype != bool and not np.issubdtype(masks.dtype, np.integer):
                raise ValueError(f"masks must hold integer label ids, got dtype {masks.dtype}.")
            if not (masks != 0).any():
                raise ValueError("masks is empty: label at least one object (non-zero id) on frame 0.")
        if processing_size is not None and (
            isinstance(processing_size, bool)
            or not isinstance(processing_size, (int, np.integer))
            or processing_size < 1
        ):
            raise ValueError(
                f"processing_size must be a positive integer (the short side, in pixels) or None, "
                f"got {processing_size!r}."
            )
        if callback_on_frame_end is not None and not callable(callback_on_frame_end):
            raise ValueError(
                "callback_on_frame_end must be callable as fn(pipe, frame_index, callback_kwargs), "
                f"got {type(callback_on_frame_end).__name__}."
            )

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
        callback_on_frame_end: FrameCallback | None = None,
    ):
        """Track `points` and/or the objects of `masks`, both given on frame 0, through `video`.

        Args:
            video: a video file, a folder of frames, a list of RGB arrays or PIL images, or an array.
            points: (N, 2) x, y pixel positions on frame 0.
            masks: (H, W) integer label map of frame 0 (0 = background; one id per object); a boolean
                mask is one object, id 1.
            max_frames: stop after this many frames.
            processing_size: short side the encoder runs at (default from the config).
            output_type: "np" (arrays) or "pt" (tensors).
            output_path: also write an H.264 mp4 of the video with the tracks drawn on it.
            generator: not used: tracking is deterministic (the same inputs give the same tracks); a
                generator given warns that it has no effect.
            callback_on_frame_end: called as `fn(pipe, frame_index, callback_kwargs)` after each frame
                (`core.outputs.FrameCallback`), with `callback_kwargs` holding the names of
                `callback_frame_outputs`: "points", the frame's tracked points (N, 2) float32 x, y
                pixels, and "masks", its label map (H, W) in the dtype of the output's masks; each None
                when it is not tracked.
        """
        # 1. Open the video (the size the inputs are checked against) and check the inputs.
        self.models_dtype()  # float32 only: refused here, not as a dtype mismatch inside the encoder
        self.warn_unused_generator(generator, "tracking is deterministic")
        reader = VideoReader(video, max_frames=max_frames)
        height, width = reader.info.height, reader.info.width
        self.check_inputs(height, width, points, masks, processing_size, output_type, callback_on_frame_end)

        # 2. Prepare the labels of frame 0 and the encoder as a feature extractor.
        if points is not None:
            points = np.asarray(points, dtype=np.float32)
        if masks is not None:
            masks = np.asarray(masks)
            if masks.dtype == bool:
                masks = masks.astype(np.uint8)
        extractor = self.feature_extractor(processing_size)

        # 3. Track frame by frame: propagate the labels, draw the overlay, call back.
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
                    frame_mask = frame_mask.astype(masks.dtype, copy=False)
                    tracked_masks.append(frame_mask)
                if writer is not None:
                    writer.write(draw_tracks(frame, frame_points, frame_mask))
                if callback_on_frame_end is not None:
                    callback_on_frame_end(self, index, {"points": frame_points, "masks": frame_mask})
                progress.update()

        # 4. Collect the tracks in the output type.
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


def _numbered_points(points: np.ndarray, chosen: np.ndarray) -> str:
    """ "Point 2 (80, 10)" / "Points 2 (80, 10) and 5 (-1, 3)": the chosen rows of `points`, numbered
    from 1 as a user counts them (the app's one point per line)."""
    rows = [f"{index + 1} ({points[index, 0]:g}, {points[index, 1]:g})" for index in np.flatnonzero(chosen)]
    if len(rows) == 1:
        return f"Point {rows[0]}"
    return f"Points {', '.join(rows[:-1])} and {rows[-1]}"
