"""`ZeroToHeroPipeline`: reference-based video appearance transfer (Zero-to-Hero, Su et al. 2025).

    pipe = ZeroToHeroPipeline.from_pretrained("checkpoints/zero2hero-lite")
    result = pipe(video="clip.mp4", edited_frame="frame0_edited.png", frame_index=0, output_type="np")
    result.frames  # (T, H, W, 3) in [0, 1]: the edit carried through the video

The user edits one frame (the anchor) in any image editor. The Zero stage turns the edit into a
full-resolution local colour map (+ remainder) and finds, for every frame, where its pixels sit in the
anchor: correspondence-restricted cross-image attention, copying of the previous frame's confident
matches, and re-anchoring (`modeling.py`); it then reads the edit from the anchor at those positions
and applies it to each frame's own full-resolution pixels. The Hero stage's restorer corrects the
frame where the Zero stage could not read the edit from the anchor (content the anchor does not show)
and an edit is nearby; everywhere else the Zero stage's output passes through exactly. The restorer can
first be fine-tuned on proxy pairs made from the anchor alone (`finetune_steps`).

Frames stream: the video is read twice (once to fetch the anchor, then frame by frame), memory holds
the anchor and the previous frame only, and with `output_path` frames go straight to the mp4.
"""

from __future__ import annotations

import copy
import os
import random
import warnings
from collections.abc import Callable

import numpy as np
import torch

from ..core.colour import apply_colour_lookup, frame_to_tensor, tensor_to_frame
from ..core.hub import HueflowPipeline
from ..core.outputs import VideoPipelineOutput, check_output_type, frames_to_output
from ..core.resize import processing_shape, resize
from ..core.video import VideoReader, load_image, output_writer
from .data import random_proxy_clip, restoration_loss, zero_stage_batch
from .modeling import (
    AppearanceFeatureEncoder,
    FrameState,
    HeroRestorer,
    ZeroStageConfig,
    anchor_state,
    encode_anchor,
    zero_stage_step,
)

# An edited frame whose aspect ratio differs from the video's by more than this is refused.
ASPECT_TOLERANCE = 0.01


class EditedFrameError(ValueError):
    """The edited frame or its index cannot be used with this video."""


class ZeroToHeroPipeline(HueflowPipeline):
    model_cpu_offload_seq = "feature_encoder->restorer"

    def __init__(
        self,
        feature_encoder: AppearanceFeatureEncoder,
        restorer: HeroRestorer,
        processing_size: int = 256,
        top_k: int = ZeroStageConfig.top_k,
        temperature: float = ZeroStageConfig.temperature,
        previous_radius: int = ZeroStageConfig.previous_radius,
        previous_log_weight: float = ZeroStageConfig.previous_log_weight,
        colour_map_radius: int = ZeroStageConfig.colour_map_radius,
        colour_map_eps: float = ZeroStageConfig.colour_map_eps,
        edit_radius: int = ZeroStageConfig.edit_radius,
        edit_eps: float = ZeroStageConfig.edit_eps,
        matcher: str = ZeroStageConfig.matcher,
        match_radius: int = ZeroStageConfig.match_radius,
        match_block: int = ZeroStageConfig.match_block,
        match_patch: int = ZeroStageConfig.match_patch,
        match_threshold: float = ZeroStageConfig.match_threshold,
        fallback_threshold: float = ZeroStageConfig.fallback_threshold,
        border_margin: float = ZeroStageConfig.border_margin,
        finetune_steps: int = 0,
        finetune_size: int = 128,
        finetune_lr: float = 1e-4,
    ) -> None:
        super().__init__()
        self.register_modules(feature_encoder=feature_encoder, restorer=restorer)
        self.register_to_config(
            processing_size=processing_size,
            top_k=top_k,
            temperature=temperature,
            previous_radius=previous_radius,
            previous_log_weight=previous_log_weight,
            colour_map_radius=colour_map_radius,
            colour_map_eps=colour_map_eps,
            edit_radius=edit_radius,
            edit_eps=edit_eps,
            matcher=matcher,
            match_radius=match_radius,
            match_block=match_block,
            match_patch=match_patch,
            match_threshold=match_threshold,
            fallback_threshold=fallback_threshold,
            border_margin=border_margin,
            finetune_steps=finetune_steps,
            finetune_size=finetune_size,
            finetune_lr=finetune_lr,
        )

    def zero_stage_config(self) -> ZeroStageConfig:
        fields = ZeroStageConfig.__dataclass_fields__
        return ZeroStageConfig(**{name: self.config[name] for name in fields if name in self.config})

    # -- inputs -------------------------------------------------------------------------------------

    @staticmethod
    def _check_frame_index(frame_index: int, num_frames: int) -> int:
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)):
            raise EditedFrameError(f"frame_index must be an integer, got {frame_index!r}.")
        if not 0 <= frame_index < num_frames:
            raise EditedFrameError(
                f"frame_index {frame_index} is out of range: the video has {num_frames} frames "
                f"(valid indices 0..{num_frames - 1})."
            )
        return int(frame_index)

    @staticmethod
    def _prepare_edited_frame(edited_frame, height: int, width: int) -> np.ndarray:
        """The edited frame as RGB uint8 (height, width, 3): resized, with a warning, when it has the
        video's aspect ratio at another size; an error when the aspect ratio differs."""
        if edited_frame is None:
            raise EditedFrameError(
                "No edited frame given: pass edited_frame=<your edited version of the frame>."
            )
        image = load_image(edited_frame)
        edited_height, edited_width = image.shape[:2]
        if (edited_height, edited_width) == (height, width):
            return image
        aspect, edited_aspect = width / height, edited_width / edited_height
        if abs(edited_aspect / aspect - 1) > ASPECT_TOLERANCE:
            raise EditedFrameError(
                f"The edited frame is {edited_width}x{edited_height} (aspect {edited_aspect:.3f}) but the "
                f"video is {width}x{height} (aspect {aspect:.3f}): export the edited frame uncropped, at "
                "the video's size."
            )
        warnings.warn(
            f"The edited frame is {edited_width}x{edited_height} and the video {width}x{height}: "
            "resizing the edited frame to the video's size.",
            stacklevel=3,
        )
        resized = resize(frame_to_tensor(image), (height, width))
        return tensor_to_frame(resized)

    @staticmethod
    def _read_frame(reader: VideoReader, frame_index: int) -> np.ndarray:
        decoded = 0
        for index, frame in enumerate(reader):
            if index == frame_index:
                return frame
            decoded = index + 1
        raise EditedFrameError(
            f"frame_index {frame_index} is out of range: only {decoded} frames of the video could be decoded."
        )

    # -- Hero fine-tuning ---------------------------------------------------------------------------

    def finetune_restorer(
        self,
        anchor: np.ndarray,
        edited: np.ndarray,
        steps: int,
        size: int | None = None,
        lr: float | None = None,
        batch_size: int = 2,
        seed: int = 0,
    ) -> HeroRestorer:
        """A copy of the restorer fine-tuned for `steps` steps on proxy pairs of this anchor and its edit
        (random camera paths over the two; the Zero stage from the edited anchor onto the moved
        original; the target is the same move of the edited anchor). The pipeline's own restorer is
        left unchanged. anchor, edited: RGB uint8 (H, W, 3) of the same size."""
        size = size or self.config.finetune_size
        size = max(32, size // 16 * 16)
        restorer = copy.deepcopy(self.restorer).train()
        optimizer = torch.optim.Adam(restorer.parameters(), lr=lr or self.config.finetune_lr)
        config = self.zero_stage_config()
        original = frame_to_tensor(anchor, self.device)[0]
        edited_tensor = frame_to_tensor(edited, self.device)[0]
        # The camera window spans 45-90 % of the short side: bring that near the crop size.
        short = min(original.shape[-2:])
        if short > 2 * size:
            shape = tuple(round(side * 2 * size / short) for side in original.shape[-2:])
            original, edited_tensor = (resize(t[None], shape)[0] for t in (original, edited_tensor))
        python_state = random.getstate()
        random.seed(seed)
        with torch.random.fork_rng(devices=[]), self.progress_bar(total=steps) as progress:
            torch.manual_seed(seed)
            progress.set_description("fine-tuning the restorer")
            for _ in range(steps):
                clips = [
                    random_proxy_clip(original.cpu(), edited_tensor.cpu(), 3, size, random)
                    for _ in range(batch_size)
                ]
                originals = torch.stack([clip[0] for clip in clips]).to(self.device)
                editeds = torch.stack([clip[1] for clip in clips]).to(self.device)
                batch = zero_stage_batch(self.feature_encoder, originals, editeds, config)
                with torch.enable_grad():
                    loss = restoration_loss(restorer(*batch.restorer_inputs), batch.truths)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                progress.set_postfix(loss=f"{loss.item():.4f}")
                progress.update()
        random.setstate(python_state)
        return restorer.eval()

    # -- call ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        video,
        edited_frame=None,
        frame_index: int = 0,
        processing_size: int | None = None,
        max_frames: int | None = None,
        use_restorer: bool = True,
        finetune_steps: int | None = None,
        output_type: str | None = None,
        output_path: str | os.PathLike | None = None,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
        callback_on_frame_end: Callable[[ZeroToHeroPipeline, int], None] | None = None,
    ):
        """Carry the edit of one frame through `video`.

        Args:
            video: a video file (mp4, avi, mov, webm, gif...), a folder of frames, a list of PIL images
                or RGB uint8 arrays, or an array (T, H, W, 3).
            edited_frame: the user's edited version of frame `frame_index` (path, PIL image or RGB array),
                at the video's size (another size of the same aspect ratio is resized, with a warning).
            frame_index: the index of the frame that was edited (the anchor).
            processing_size: short side the Zero stage matches at (default from the config); the output
                is always at the input resolution.
            max_frames: stop after this many frames.
            use_restorer: apply the Hero stage (False gives the Zero stage alone).
            finetune_steps: steps of per-video fine-tuning of the restorer on proxy pairs of the anchor
                (default from the config; 0 skips it). The pipeline's restorer is not modified.
            output_type: "pil", "np" or "pt". Default "pil", or no frames kept when `output_path` is
                given (they are streamed to the file).
            output_path: write an H.264 mp4 here, with the input's audio when it has some.
            generator: seeds the fine-tuning's random proxy pairs (inference itself is deterministic).
            callback_on_frame_end: called as `fn(pipeline, frame_index)` after each frame.
        """
        if output_type is None:
            output_type = None if output_path is not None else "pil"
        else:
            check_output_type(output_type)
        reader = VideoReader(video, max_frames=max_frames)
        num_frames = len(reader)
        frame_index = self._check_frame_index(frame_index, num_frames)
        height, width = reader.info.height, reader.info.width
        edited = self._prepare_edited_frame(edited_frame, height, width)
        anchor = self._read_frame(reader, frame_index)
        finetune_steps = self.config.finetune_steps if finetune_steps is None else finetune_steps
        if finetune_steps < 0:
            raise ValueError(f"finetune_steps must be 0 (skip) or positive, got {finetune_steps}.")

        device = self.device
        config = self.zero_stage_config()
        size = processing_shape(height, width, processing_size or self.config.processing_size)
        edited_full = frame_to_tensor(edited, device)
        anchor_edit = encode_anchor(
            self.feature_encoder, frame_to_tensor(anchor, device), edited_full, config, size
        )
        restorer = None
        if use_restorer:
            restorer = self.restorer
            if finetune_steps > 0:
                seed = generator.initial_seed() if generator is not None else 0
                restorer = self.finetune_restorer(anchor, edited, finetune_steps, seed=seed)

        frames: list[np.ndarray] = []
        previous: FrameState | None = None
        with (
            output_writer(output_path, reader.info) as writer,
            self.progress_bar(total=num_frames) as progress,
        ):
            for index, frame in enumerate(reader):
                if index == frame_index:
                    output = edited  # the anchor takes the user's edit exactly
                    previous = anchor_state(anchor_edit)
                else:
                    target = frame_to_tensor(frame, device)
                    result, previous = zero_stage_step(
                        self.feature_encoder, target, anchor_edit, previous, config, size
                    )
                    if restorer is not None:
                        looked_up = apply_colour_lookup(anchor_edit.lookup, target)
                        result = restorer(result, target, previous.support, looked_up, previous.lookup_error)
                    output = tensor_to_frame(result)
                if writer is not None:
                    writer.write(output)
                if output_type is not None:
                    frames.append(output)
                if callback_on_frame_end is not None:
                    callback_on_frame_end(self, index)
                progress.update()
        if output_path is not None:
            output_path = str(output_path)

        output_frames = frames_to_output(frames, output_type) if output_type is not None else None
        if not return_dict:
            return (output_frames, output_path)
        return VideoPipelineOutput(frames=output_frames, video_path=output_path)
