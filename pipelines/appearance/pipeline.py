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
first be fine-tuned on proxy pairs made from the anchor alone (`finetune_steps`, `finetune.py`).

`check_inputs` checks a call's inputs without decoding a frame (an app calls it before loading the
model) and returns the warnings the call would give.

Frames stream: the video is read twice (once to fetch the anchor, then frame by frame), memory holds
the anchor and the previous frame only, and with `output_path` frames go straight to the mp4.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import torch
from tqdm.auto import tqdm

from ..core.colour import apply_colour_lookup, frame_to_tensor, tensor_to_frame
from ..core.hub import HueflowPipeline, PipelineInputError
from ..core.outputs import FrameCallback, VideoPipelineOutput, check_output_type, frames_to_output
from ..core.resize import processing_shape, resize
from ..core.video import VideoInfo, VideoReader, as_video_reader, load_image, output_writer
from . import finetune
from .modeling import (
    AppearanceFeatureEncoder,
    FrameState,
    HeroRestorer,
    ZeroStageConfig,
    anchor_state,
    encode_anchor,
    zero_stage_step,
)

# An edited frame whose aspect ratio differs from the video's by more than this is refused; within it,
# one of another size is resized to the video's, with a warning (image editors round odd sizes).
ASPECT_TOLERANCE = 0.01

# What `edited_frame` may be: anything `core.video.load_image` takes.
EditedFrame = str | os.PathLike | PIL.Image.Image | np.ndarray

# `callback_on_finetune_step_end(pipeline, step, callback_kwargs)`: after each fine-tuning step (0-based),
# with the keys of `ZeroToHeroPipeline.callback_finetune_outputs`.
FinetuneStepCallback = Callable[["ZeroToHeroPipeline", int, dict[str, Any]], None]


class EditedFrameError(PipelineInputError):
    """The edited frame or its index cannot be used with this video; `argument` is "edited_frame" or
    "frame_index"."""


class ZeroToHeroPipeline(HueflowPipeline):
    model_cpu_offload_seq = "feature_encoder->restorer"
    # The keys of the `callback_kwargs` that `callback_on_frame_end` receives (`core.outputs.FrameCallback`).
    callback_frame_outputs = ("frame",)
    # The keys of the `callback_kwargs` that `callback_on_finetune_step_end` receives: the step's loss
    # (float) and the number of steps (so an app can show "fine-tuning step k/N").
    callback_finetune_outputs = ("loss", "num_steps")
    dtype_note = (
        "Its matching and colour transfer are float32 code around small models (about 1 M parameters), "
        "and the per-video fine-tuning would lose its small updates in half precision."
    )
    # How the fine-tuning's progress reads (in a terminal, and in an app that shows tqdm bars, e.g.
    # Gradio's track_tqdm): "fine-tuning step: 12/60", whatever the pipeline's own bar counts (frames).
    finetune_progress = {"desc": "fine-tuning step", "unit": ""}

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

    @classmethod
    def check_inputs(
        cls,
        video_info: VideoInfo,
        edited_frame: EditedFrame | None,
        frame_index: int = 0,
        max_frames: int | None = None,
        finetune_steps: int | None = None,
        output_type: str | None = "pil",
    ) -> list[str]:
        """Check a call's inputs before any frame is processed, as `__call__` does first: raises
        `EditedFrameError` (a ValueError) for a missing or unusable edited frame or frame index, and
        ValueError for the other arguments, each with a message that says what to change. Returns the
        warnings the call will give (messages, e.g. an edited frame of another size that is resized to
        the video's), so a caller can show them before running the model.

        Cheap: no video frame is decoded and no model runs; a class method, so an app can check a request
        before it loads the model (`ZeroToHeroPipeline.check_inputs(...)`, or `pipe.check_inputs(...)`).
        Arguments are those of `__call__`, except `video_info`: the video's `VideoInfo`
        (`VideoReader(video).info`). `edited_frame` is loaded to read its size: pass an array to avoid
        decoding a file twice. `finetune_steps` None stands for the config's value (not checked here).

        Rules: `frame_index` is an integer within the frames processed (the first `max_frames` of the
        video when given); an edited frame is given and loads as an image; its aspect ratio is within
        `ASPECT_TOLERANCE` (relative) of the video's (another size of that aspect is resized, with a
        warning); `finetune_steps` >= 0; `output_type` is "pil", "np", "pt" or None.
        """
        if output_type is not None:
            check_output_type(output_type)
        num_frames = video_info.num_frames if max_frames is None else min(video_info.num_frames, max_frames)
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)):
            raise EditedFrameError(f"frame_index must be an integer, got {frame_index!r}.", "frame_index")
        if not 0 <= frame_index < num_frames:
            frames = f"the video has {video_info.num_frames} frames"
            if num_frames < video_info.num_frames:
                frames += f", of which only the first {num_frames} are processed (max_frames={max_frames})"
            raise EditedFrameError(
                f"frame_index {frame_index} is out of range: {frames} (valid indices 0..{num_frames - 1}).",
                argument="frame_index",
            )
        if edited_frame is None:
            raise EditedFrameError(
                f"No edited frame given: pass your edited version of frame {frame_index} as edited_frame.",
                argument="edited_frame",
            )
        height, width = video_info.height, video_info.width
        edited_height, edited_width = load_image(edited_frame).shape[:2]
        messages = []
        if (edited_height, edited_width) != (height, width):
            aspect, edited_aspect = width / height, edited_width / edited_height
            if abs(edited_aspect / aspect - 1) > ASPECT_TOLERANCE:
                edited_size, size = f"{edited_width}x{edited_height}", f"{width}x{height}"
                raise EditedFrameError(
                    f"The edited frame is {edited_size} (aspect {edited_aspect:.3f}) but the video is {size} "
                    f"(aspect {aspect:.3f}): export the edited frame uncropped, at the video's size.",
                    argument="edited_frame",
                )
            messages.append(
                f"The edited frame is {edited_width}x{edited_height} and the video {width}x{height}: "
                "resizing the edited frame to the video's size."
            )
        if finetune_steps is not None and finetune_steps < 0:
            raise ValueError(f"finetune_steps must be 0 (skip) or positive, got {finetune_steps}.")
        return messages

    @staticmethod
    def _fit_edited_frame(image: np.ndarray, height: int, width: int) -> np.ndarray:
        """The edited frame (RGB uint8, checked by `check_inputs`) at the video's size."""
        if image.shape[:2] == (height, width):
            return image
        return tensor_to_frame(resize(frame_to_tensor(image), (height, width)))

    @staticmethod
    def _read_frame(reader: VideoReader, frame_index: int) -> np.ndarray:
        decoded = 0
        for index, frame in enumerate(reader):
            if index == frame_index:
                return frame
            decoded = index + 1
        raise EditedFrameError(
            f"frame_index {frame_index} is out of range: only {decoded} frames of the video could be "
            "decoded.",
            argument="frame_index",
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
        callback: Callable[[int, float], None] | None = None,
    ) -> HeroRestorer:
        """A copy of the restorer fine-tuned for `steps` steps on proxy pairs of this anchor and its edit
        (`finetune.finetune_restorer` with this pipeline's models and Zero-stage settings; `size` and
        `lr` default to the config's `finetune_size` and `finetune_lr`). The pipeline's own restorer is
        left unchanged. anchor, edited: RGB uint8 (H, W, 3) of the same size. `callback(step, loss)` runs
        after each step."""
        return finetune.finetune_restorer(
            self.feature_encoder,
            self.restorer,
            anchor,
            edited,
            self.zero_stage_config(),
            steps,
            size=size or self.config.finetune_size,
            lr=lr or self.config.finetune_lr,
            batch_size=batch_size,
            seed=seed,
            device=self.device,
            progress_bar=self._finetune_progress_bar,
            callback=callback,
        )

    def _finetune_progress_bar(self, total: int) -> tqdm:
        """The pipeline's progress bar settings (`set_progress_bar_config`: disable, ...) with the
        fine-tuning's own description and unit (`finetune_progress`)."""
        config = {**getattr(self, "_progress_bar_config", {}), **self.finetune_progress}
        return tqdm(total=total, **config)

    def _finetune_step_callback(
        self, callback: FinetuneStepCallback | None, num_steps: int
    ) -> Callable[[int, float], None] | None:
        """`finetune.finetune_restorer`'s `callback(step, loss)` that calls a `callback_on_finetune_step_end`
        as `callback(self, step, {"loss": loss, "num_steps": num_steps})`; None for None."""
        if callback is None:
            return None

        def step_end(step: int, loss: float) -> None:
            callback(self, step, {"loss": loss, "num_steps": num_steps})

        return step_end

    # -- call ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        video,
        edited_frame: EditedFrame | None = None,
        frame_index: int = 0,
        processing_size: int | None = None,
        max_frames: int | None = None,
        use_restorer: bool = True,
        finetune_steps: int | None = None,
        output_type: str | None = None,
        output_path: str | os.PathLike | None = None,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
        callback_on_frame_end: FrameCallback | None = None,
        callback_on_finetune_step_end: FinetuneStepCallback | None = None,
    ):
        """Carry the edit of one frame through `video`.

        Args:
            video: a video file (mp4, avi, mov, webm, gif...), a folder of frames, a list of PIL images
                or RGB uint8 arrays, an array (T, H, W, 3), or an open `VideoReader` (used as is, not
                opened again).
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
            generator: a CPU `torch.Generator` whose seed (`initial_seed()`) seeds the fine-tuning's random
                proxy pairs, so the same seed gives the same output. Inference itself is deterministic: with
                no fine-tuning (`finetune_steps=0` or `use_restorer=False`) a generator warns that it has
                no effect.
            callback_on_frame_end: called as `fn(pipeline, frame_index, callback_kwargs)` after each frame
                (`core.outputs.FrameCallback`), with `callback_kwargs = {"frame": the output frame, RGB
                uint8 (H, W, 3)}` (the keys in `callback_frame_outputs`). Its return value is ignored.
            callback_on_finetune_step_end: called as `fn(pipeline, step, callback_kwargs)` after each
                fine-tuning step (`step` 0-based; not called when nothing is fine-tuned), with
                `callback_kwargs = {"loss": that step's loss (float), "num_steps": the steps in all}` (the
                keys in `callback_finetune_outputs`), e.g. to show "fine-tuning step k/N" before the frames.

        Raises:
            EditedFrameError, ValueError: see `check_inputs`, which runs first; ValueError for models in a
            dtype other than float32 (`HueflowPipeline.check_dtype`) and a generator that is not a
            `torch.Generator`.
        """
        # 1. Check the inputs before any frame is decoded.
        self.models_dtype()  # float32 only: refused here, not as a dtype mismatch inside a model
        if output_type is None and output_path is None:
            output_type = "pil"
        finetune_steps = self.config.finetune_steps if finetune_steps is None else finetune_steps
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}.")
        if not (use_restorer and finetune_steps > 0):
            self.warn_unused_generator(generator, "it only seeds the per-video fine-tuning, which is off")
        reader = as_video_reader(video, max_frames)
        messages = self.check_inputs(
            reader.info, edited_frame, frame_index, max_frames, finetune_steps, output_type
        )
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=3)  # the caller's line (under no_grad's wrapper)
        frame_index = int(frame_index)
        num_frames = len(reader)
        height, width = reader.info.height, reader.info.width

        # 2. The anchor: the user's edit at the video's size, the original frame, the edit encoded.
        edited = self._fit_edited_frame(load_image(edited_frame), height, width)
        anchor = self._read_frame(reader, frame_index)
        device = self.device
        config = self.zero_stage_config()
        size = processing_shape(height, width, processing_size or self.config.processing_size)
        edited_full = frame_to_tensor(edited, device)
        anchor_edit = encode_anchor(
            self.feature_encoder, frame_to_tensor(anchor, device), edited_full, config, size
        )
        # 3. The Hero stage's restorer, fine-tuned on proxy pairs of the anchor when asked.
        restorer = None
        if use_restorer:
            restorer = self.restorer
            if finetune_steps > 0:
                seed = generator.initial_seed() if generator is not None else 0
                on_step = self._finetune_step_callback(callback_on_finetune_step_end, finetune_steps)
                restorer = self.finetune_restorer(anchor, edited, finetune_steps, seed=seed, callback=on_step)

        # 4. Every frame in order: the Zero stage from the anchor (and the previous frame), then the Hero
        # stage; the anchor itself takes the user's edit exactly. Frames stream to the mp4 and/or a list.
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
                    callback_on_frame_end(self, index, {"frame": output})
                progress.update()
        if output_path is not None:
            output_path = str(output_path)

        # 5. The output in the type asked for.
        output_frames = frames_to_output(frames, output_type) if output_type is not None else None
        if not return_dict:
            return (output_frames, output_path)
        return VideoPipelineOutput(frames=output_frames, video_path=output_path)
