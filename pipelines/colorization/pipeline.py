"""`ColorMNetPipeline`: exemplar-based video colorization, streamed frame by frame.

    pipe = ColorMNetPipeline.from_pretrained("checkpoints/colormnet-lite")
    result = pipe("film.mp4", exemplars="reference.jpg", output_path="film_colour.mp4")

Each frame is processed at `processing_size` (its short side), coloured from memory (exemplars +
past frames) and local attention to the previous frame, and its ab is lifted back to the input
resolution by guided upsampling on the full-resolution luminance. That prediction is the fallback of the
anchored colour (`core.reanchoring.AnchoredColour`), at the input resolution: every pixel takes the
colour of the anchors (keyframes, and free references aligned to the frame that shows their scene)
read at matched positions, or the previous output's colour along the optical flow, wherever the
luminance there agrees, and the model's colour only where nothing matches (new content, occlusions).
The model's memory then stores the frame with that final colour. The output keeps the input's L channel.
Memory is bounded (see `memory.py`), and with `output_path` frames go straight to the mp4, so memory
stays flat however long the video.

The model's per-frame state lives in `stepper.py` (`ColorMNetStepper`, shared with training).
`check_inputs` checks a call's inputs without running the model, so an app can call it first.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import PIL.Image
import torch

from ..core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from ..core.guided_filter import guided_upsample
from ..core.hub import HueflowPipeline, PipelineInputError
from ..core.outputs import FrameCallback, VideoPipelineOutput, check_output_type, frames_to_output
from ..core.reanchoring import (
    AnchoredColour,
    AnchoringConfig,
    align_to_frames,
    snap_to_identity,
    warp_to_frame,
)
from ..core.resize import processing_shape, resize
from ..core.video import (
    FrameSpool,
    VideoReader,
    as_video_reader,
    is_grayscale_image,
    load_image,
    output_writer,
)
from .memory import MemoryConfig
from .modeling import ColorMNetDecoder, ColorMNetFeatureEncoder, ColorMNetValueEncoder, LocalAttentionConfig
from .stepper import ColorMNetStepper

# What an exemplar may be: anything `core.video.load_image` takes.
Exemplar = str | os.PathLike | PIL.Image.Image | np.ndarray


class ExemplarError(PipelineInputError):
    """The exemplars given to the pipeline cannot be used (missing, grayscale, bad frame index);
    `argument` is "exemplars" or "exemplar_frames"."""


# A keyframe exemplar whose aspect ratio differs from the video's by more than this (relative) is refused:
# it is not that frame coloured (a crop, another frame), and stretching it puts its colours in the wrong
# places. Within it, another size is resized to the video's, with a warning (as the edited frame of
# `ZeroToHeroPipeline`: image editors round odd sizes).
KEYFRAME_ASPECT_TOLERANCE = 0.01
# `ColorMNetPipeline.matches_frame`: the most the mean luma of an exemplar may differ from a frame's (0-255)
# for it to count as that frame coloured (colouring a frame in an editor changes its luma a little).
KEYFRAME_LUMA_DIFFERENCE = 6.0
# A free reference is matched against this many frames spread over the video to find where it belongs.
MAX_ALIGNMENT_CANDIDATES = 24
# Luminance given to anchor pixels that a free reference does not cover: no frame matches it there.
UNCOVERED_LUMINANCE = -1000.0


@dataclass
class ColorizationPipelineOutput(VideoPipelineOutput):
    """`VideoPipelineOutput` plus `exemplar_placements`: per exemplar, how it was used, a dict with
    "mode" ("keyframe": tied to its frame by the caller; "aligned": a free reference that feature matching
    placed at "frame"; "memory": a free reference that no frame matched, used through the model's memory
    only), "frame" (an int, or None for "memory") and "matches" (the alignment's RANSAC inliers, or None);
    a free reference that was not even tried (matching off: `fallback_error` < 0, or the config's
    `align_free_references` False) has "not_aligned": "alignment off".

    `coloured_backwards_from`: the frame S that the frames 0..S-1 were coloured backwards from (the first
    keyframe or aligned reference, when it is not frame 0), or None when every frame was coloured forwards.
    """

    exemplar_placements: list[dict] | None = None
    coloured_backwards_from: int | None = None


def describe_placement(placement: dict) -> str:
    """One line for a user, e.g. "aligned to frame 37 (212 matching features)"."""
    if placement["mode"] == "keyframe":
        return f"keyframe: the colours of frame {placement['frame']}"
    if placement["mode"] == "aligned":
        frame, matches = placement["frame"], placement["matches"]
        return f"free reference, aligned to frame {frame} ({matches} matching features)"
    if placement.get("not_aligned"):
        return "free reference, not aligned (matching is off): colours found by the model's memory only"
    return "free reference, no frame showed its scene: colours found by the model's memory only"


def _as_list(exemplars: Exemplar | Sequence[Exemplar] | None) -> list[Exemplar]:
    if exemplars is None:
        return []
    return list(exemplars) if isinstance(exemplars, (list, tuple)) else [exemplars]


def _frame_list(exemplar_frames: Sequence[int | None] | int | None, count: int) -> list[int | None]:
    if exemplar_frames is None:
        return [None] * count
    if isinstance(exemplar_frames, (list, tuple, np.ndarray)):
        return list(exemplar_frames)
    # Any other single value stands for one exemplar's entry, so that 1.5 or "0" is refused in words
    # below (as [1.5] is), not with "object is not iterable".
    return [exemplar_frames]


def _luma(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float luma (H, W), ITU-R 601 weights (as Pillow's "L")."""
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _aspect_differs(size: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two (height, width) sizes differ in aspect ratio by more than `KEYFRAME_ASPECT_TOLERANCE`."""
    return abs((size[1] / size[0]) / (other[1] / other[0]) - 1) > KEYFRAME_ASPECT_TOLERANCE


class ColorMNetPipeline(HueflowPipeline):
    model_cpu_offload_seq = "feature_encoder->value_encoder->decoder"
    # The keys of the `callback_kwargs` that `callback_on_frame_end` receives (`core.outputs.FrameCallback`).
    callback_frame_outputs = ("frame", "memory")
    # The smallest `processing_size` a call may ask for: below it the backbone's stride-32 features are a
    # few positions wide, too few to match anything.
    min_processing_size = 64
    dtype_note = (
        "Its colour matching, optical flow and guided upsampling are float32 code around a small model "
        "(about 1 M parameters), so half precision would not make it faster."
    )

    def __init__(
        self,
        feature_encoder: ColorMNetFeatureEncoder,
        value_encoder: ColorMNetValueEncoder,
        decoder: ColorMNetDecoder,
        processing_size: int = 256,
        local_attention_radius: int = LocalAttentionConfig.radius,
        patch_attention_radius: int = LocalAttentionConfig.patch_radius,
        patch_attention_temperature: float = LocalAttentionConfig.patch_temperature,
        top_k: int = MemoryConfig.top_k,
        memory_every: int = MemoryConfig.memory_every,
        max_working_frames: int = MemoryConfig.max_working_frames,
        min_working_frames: int = MemoryConfig.min_working_frames,
        num_prototypes: int = MemoryConfig.num_prototypes,
        max_long_term_elements: int = MemoryConfig.max_long_term_elements,
        match_window: int = AnchoringConfig.window,
        fallback_error: float = AnchoringConfig.fallback_error,
        chain_penalty: float = AnchoringConfig.chain_penalty,
        direct_penalty: float = AnchoringConfig.direct_penalty,
        colour_change_weight: float = AnchoringConfig.colour_change_weight,
        blend_temperature: float = AnchoringConfig.blend_temperature,
        max_flow_short_side: int = AnchoringConfig.max_flow_short_side,
        hold_positions: bool = AnchoringConfig.hold_positions,
        direct_every: int = AnchoringConfig.direct_every,
        refine_flow_preset: str = AnchoringConfig.refine_flow_preset,
        colour_hysteresis: float = AnchoringConfig.colour_hysteresis,
        hysteresis_max_error: float = AnchoringConfig.hysteresis_max_error,
        hysteresis_ramp: float = AnchoringConfig.hysteresis_ramp,
        previous_inside_only: bool = AnchoringConfig.previous_inside_only,
        positions_follow_colour: bool = AnchoringConfig.positions_follow_colour,
        direct_min_chain_error: float = AnchoringConfig.direct_min_chain_error,
        inherited_error_decay: float = AnchoringConfig.inherited_error_decay,
        align_free_references: bool = True,
    ) -> None:
        super().__init__()
        self.register_modules(feature_encoder=feature_encoder, value_encoder=value_encoder, decoder=decoder)
        self.register_to_config(
            processing_size=processing_size,
            local_attention_radius=local_attention_radius,
            patch_attention_radius=patch_attention_radius,
            patch_attention_temperature=patch_attention_temperature,
            top_k=top_k,
            memory_every=memory_every,
            max_working_frames=max_working_frames,
            min_working_frames=min_working_frames,
            num_prototypes=num_prototypes,
            max_long_term_elements=max_long_term_elements,
            match_window=match_window,
            fallback_error=fallback_error,
            chain_penalty=chain_penalty,
            direct_penalty=direct_penalty,
            colour_change_weight=colour_change_weight,
            blend_temperature=blend_temperature,
            max_flow_short_side=max_flow_short_side,
            hold_positions=hold_positions,
            direct_every=direct_every,
            refine_flow_preset=refine_flow_preset,
            colour_hysteresis=colour_hysteresis,
            hysteresis_max_error=hysteresis_max_error,
            hysteresis_ramp=hysteresis_ramp,
            previous_inside_only=previous_inside_only,
            positions_follow_colour=positions_follow_colour,
            direct_min_chain_error=direct_min_chain_error,
            inherited_error_decay=inherited_error_decay,
            align_free_references=align_free_references,
        )

    def anchoring_config(self, fallback_error: float | None = None) -> AnchoringConfig:
        """The anchored colour's settings (`core.reanchoring`), `fallback_error` overridden if not None."""
        return AnchoringConfig(
            window=self.config.match_window,
            fallback_error=self.config.fallback_error if fallback_error is None else fallback_error,
            chain_penalty=self.config.chain_penalty,
            direct_penalty=self.config.direct_penalty,
            colour_change_weight=self.config.colour_change_weight,
            blend_temperature=self.config.blend_temperature,
            max_flow_short_side=self.config.max_flow_short_side,
            hold_positions=self.config.hold_positions,
            direct_every=self.config.direct_every,
            refine_flow_preset=self.config.refine_flow_preset,
            colour_hysteresis=self.config.colour_hysteresis,
            hysteresis_max_error=self.config.hysteresis_max_error,
            hysteresis_ramp=self.config.hysteresis_ramp,
            previous_inside_only=self.config.previous_inside_only,
            positions_follow_colour=self.config.positions_follow_colour,
            direct_min_chain_error=self.config.direct_min_chain_error,
            inherited_error_decay=self.config.inherited_error_decay,
        )

    def local_attention_config(self) -> LocalAttentionConfig:
        return LocalAttentionConfig(
            radius=self.config.local_attention_radius,
            patch_radius=self.config.patch_attention_radius,
            patch_temperature=self.config.patch_attention_temperature,
        )

    def memory_config(self, **overrides: int | None) -> MemoryConfig:
        """The config's memory settings, with the `overrides` that are not None; raises ValueError (from
        `MemoryConfig`) for an invalid combination."""
        fields = MemoryConfig.__dataclass_fields__
        values = {name: self.config[name] for name in fields}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return MemoryConfig(**values)

    def prepare_stepper(self, **memory_overrides: int | None) -> ColorMNetStepper:
        """A fresh `ColorMNetStepper` (empty memory) on this pipeline's components, with the config's memory
        and local-attention settings; `memory_overrides` that are not None replace memory settings."""
        return ColorMNetStepper(
            self.feature_encoder,
            self.value_encoder,
            self.decoder,
            self.memory_config(**memory_overrides),
            self.local_attention_config(),
        )

    # -- inputs -------------------------------------------------------------------------------------

    @classmethod
    def check_inputs(
        cls,
        num_frames: int,
        exemplars: Exemplar | Sequence[Exemplar] | None,
        exemplar_frames: Sequence[int | None] | int | None = None,
        processing_size: int | None = None,
        output_type: str | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> list[str]:
        """Check a call's inputs before any frame is coloured, as `__call__` does first: raises
        `ExemplarError` (a ValueError) for unusable exemplars or frame indices, `VideoInputError` for an
        exemplar that is not an image, and ValueError for the other arguments, each with a message that
        says what to change. Returns the warnings the call will give (messages, e.g. a keyframe exemplar
        of another size that is resized to the video's), so a caller can show them before running.

        Cheap: no model runs, and it is a classmethod, so an app can call it before loading the model
        (`ColorMNetPipeline.check_inputs(...)`). `num_frames` is the number of frames the call colours
        (the video's, or `max_frames` when fewer), `frame_size` the video's (height, width) (when None,
        keyframe sizes are not checked here; `__call__` always checks them); the other arguments are those
        of `__call__`.
        Exemplars given as paths or PIL images are decoded here to look for colour: pass RGB arrays
        (then also to `__call__`) to decode each file once.

        Rules: at least one exemplar; each loads as an image and has colour (not grayscale); with
        `exemplar_frames`, one entry per exemplar (or a single int for a single exemplar), each None (a
        free reference) or an integer frame index in 0..num_frames-1 (not a bool); a keyframe exemplar (one
        with a frame index) has the video's aspect ratio within `KEYFRAME_ASPECT_TOLERANCE` (another size of
        that aspect is resized, with a warning; a crop or another shape is refused: use it as a free
        reference instead); `processing_size` None or an integer >= `min_processing_size` (64);
        `output_type` None, "pil", "np" or "pt".
        """
        if output_type is not None:
            check_output_type(output_type)
        if processing_size is not None and (
            isinstance(processing_size, bool)
            or not isinstance(processing_size, Integral)
            or processing_size < cls.min_processing_size
        ):
            raise ValueError(
                f"processing_size must be an integer of at least {cls.min_processing_size} (the short side, "
                f"in pixels, the model runs at), got {processing_size!r}."
            )
        images = _as_list(exemplars)
        if not images:
            raise ExemplarError(
                "No exemplar given: pass at least one colour image as exemplars=..., e.g. a frame of the "
                "video coloured by hand, or any photo with the colours you want.",
                argument="exemplars",
            )
        frames = _frame_list(exemplar_frames, len(images))
        if len(frames) != len(images):
            raise ExemplarError(
                f"Got {len(images)} exemplars but {len(frames)} exemplar_frames: give one frame index (or "
                "None for a free reference) per exemplar, in the exemplars' order.",
                argument="exemplar_frames",
            )
        messages = []
        for number, (image, frame_index) in enumerate(zip(images, frames, strict=True), start=1):
            image = load_image(image)
            if is_grayscale_image(image):
                raise ExemplarError(
                    f"Exemplar {number} has no colour (it is grayscale): an exemplar must be a colour "
                    "image, since its colours are what the video gets.",
                    argument="exemplars",
                )
            if frame_index is None:
                continue
            if isinstance(frame_index, bool) or not isinstance(frame_index, Integral):
                raise ExemplarError(
                    f"Exemplar {number}'s frame index {frame_index!r} is not a frame number: give an "
                    "integer, or None for a free reference.",
                    argument="exemplar_frames",
                )
            if not 0 <= frame_index < num_frames:
                raise ExemplarError(
                    f"Exemplar {number} is tied to frame {frame_index}, but the video (up to max_frames) "
                    f"has {num_frames} frames (valid indices 0..{num_frames - 1}).",
                    argument="exemplar_frames",
                )
            if frame_size is not None and image.shape[:2] != tuple(frame_size):
                messages.append(cls._check_keyframe_size(number, frame_index, image.shape[:2], frame_size))
        return messages

    @staticmethod
    def _check_keyframe_size(
        number: int, frame_index: int, size: tuple[int, int], frame_size: tuple[int, int]
    ) -> str:
        """The warning for keyframe exemplar `number` of another size than the video's frames (both
        (height, width)), or `ExemplarError` when its aspect ratio is not the video's."""
        (height, width), (video_height, video_width) = size, frame_size
        if _aspect_differs(size, frame_size):
            raise ExemplarError(
                f"Exemplar {number} is tied to frame {frame_index} but is {width}x{height} (aspect "
                f"{width / height:.3f}) and the video {video_width}x{video_height} (aspect "
                f"{video_width / video_height:.3f}): a keyframe must be that frame coloured, uncropped. "
                "Export it at the video's size, or leave its frame index blank (None) to use it as a free "
                "reference, which is aligned to the frame that shows its scene.",
                argument="exemplars",
            )
        return (
            f"Exemplar {number} (the keyframe of frame {frame_index}) is {width}x{height} and the video "
            f"{video_width}x{video_height}: resizing the exemplar to the video's size."
        )

    @staticmethod
    def matches_frame(exemplar: Exemplar, frame: np.ndarray) -> bool:
        """Whether `exemplar` looks like `frame` coloured (a keyframe for that frame, rather than a free
        reference): the same aspect ratio and, at the frame's size, a mean luma within
        `KEYFRAME_LUMA_DIFFERENCE` (of 255) of the frame's. An app uses it to suggest the frame index."""
        image, frame = load_image(exemplar), load_image(frame)
        if _aspect_differs(image.shape[:2], frame.shape[:2]):
            return False
        if image.shape[:2] != frame.shape[:2]:
            image = np.asarray(PIL.Image.fromarray(image).resize(frame.shape[1::-1], PIL.Image.BILINEAR))
        return float(np.abs(_luma(image) - _luma(frame)).mean()) < KEYFRAME_LUMA_DIFFERENCE

    # -- call ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        video,
        exemplars: Exemplar | Sequence[Exemplar] | None = None,
        exemplar_frames: Sequence[int | None] | int | None = None,
        processing_size: int | None = None,
        max_frames: int | None = None,
        output_type: str | None = None,
        output_path: str | os.PathLike | None = None,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
        top_k: int | None = None,
        memory_every: int | None = None,
        max_working_frames: int | None = None,
        min_working_frames: int | None = None,
        num_prototypes: int | None = None,
        max_long_term_elements: int | None = None,
        fallback_error: float | None = None,
        callback_on_frame_end: FrameCallback | None = None,
    ):
        """Colour `video` from one or more colour `exemplars`.

        Args:
            video: a video file (mp4, avi, mov, webm, gif...), a folder of frames, a list of PIL
                images / arrays, an array (T, H, W[, 3]), or an open `VideoReader` (used as is: an app
                that has opened the file to check it passes its reader, and the file is not opened again).
                Colour input is decolorized (its L is used).
            exemplars: one image or a list (path, PIL or RGB array), each a colour image.
            exemplar_frames: per exemplar, the index of the frame it colours (a keyframe the user
                coloured: that frame takes the exemplar's colour), or None for a free reference.
            processing_size: short side the model runs at (default from the config); the output
                is always at the input resolution.
            max_frames: stop after this many frames.
            output_type: "pil", "np" or "pt". Default "pil", or no frames kept when `output_path`
                is given (they are streamed to the file).
            output_path: write an H.264 mp4 here, with the input's audio when it has some.
            generator: not used: colorization is deterministic (the same inputs give the same colours); a
                generator given warns that it has no effect.
            top_k, memory_every, ...: override the memory settings of the config for this call.
            fallback_error: the anchored colour's threshold (`core.reanchoring.AnchoringConfig`): a pixel
                takes a matched colour (an anchor's, or the previous frame's along the flow) where the
                luminance around it differs from the match's by less than this (mean over a window, L
                units 0-100), else the model's. Default from the config (4.0); negative: no matching,
                every frame is the model's own prediction.
            callback_on_frame_end: called as `fn(pipeline, frame_index, callback_kwargs)` after each frame
                is coloured (`core.outputs.FrameCallback`), once per frame in the order they are coloured:
                the frames before the first keyframe or aligned reference first, backwards, then the rest;
                with `callback_kwargs = {"frame": the coloured frame, RGB uint8 (H, W, 3), "memory": the
                `ColorMemory` of the pass that coloured it}` (the keys in `callback_frame_outputs`).
                Its return value is ignored.

        Returns:
            `ColorizationPipelineOutput` (frames, video_path, exemplar_placements: how each exemplar was
            used, see there), or with `return_dict=False` the tuple (frames, video_path).

        Warns:
            UserWarning: a keyframe exemplar of another size (same aspect ratio) resized to the video's; a
            generator given (it has no effect).

        Raises:
            ExemplarError, VideoInputError, ValueError: see `check_inputs`, which runs first; ValueError
            for models in a dtype other than float32 (`HueflowPipeline.check_dtype`).
        """
        # 1. Open the video: it is checked (one frame decoded) and its frames counted, nothing more.
        self.models_dtype()  # float32 only: refused here, not as a dtype mismatch inside a model
        self.warn_unused_generator(generator, "colorization is deterministic")
        reader = as_video_reader(video, max_frames)
        num_frames = len(reader)

        # 2. Check inputs, with each exemplar decoded once.
        exemplars = [load_image(exemplar) for exemplar in _as_list(exemplars)]
        frame_size = (reader.info.height, reader.info.width)
        for message in self.check_inputs(
            num_frames, exemplars, exemplar_frames, processing_size, output_type, frame_size
        ):
            warnings.warn(message, UserWarning, stacklevel=3)  # the caller's line (under no_grad's wrapper)
        if output_type is None and output_path is None:
            output_type = "pil"
        height, width = reader.info.height, reader.info.width
        size = processing_shape(height, width, processing_size or self.config.processing_size)

        # 3. Encode the exemplars into permanent memory; keep the keyframes' ab at the input resolution.
        memory_overrides = {
            "top_k": top_k,
            "memory_every": memory_every,
            "max_working_frames": max_working_frames,
            "min_working_frames": min_working_frames,
            "num_prototypes": num_prototypes,
            "max_long_term_elements": max_long_term_elements,
        }
        exemplars_lab = [
            luminance_and_ab(resize(frame_to_tensor(image, self.device), size)) for image in exemplars
        ]
        stepper = self._stepper_with_exemplars(exemplars_lab, memory_overrides)
        frame_list = _frame_list(exemplar_frames, len(exemplars))

        # 4. Anchors: each keyframe, and each free reference that a frame of the video shows (aligned to it).
        anchoring = AnchoredColour(self.anchoring_config(fallback_error))
        use_anchors = anchoring.config.fallback_error >= 0
        keyframes, restarts, placements = {}, {}, []
        for image, frame_index in zip(exemplars, frame_list, strict=True):
            if frame_index is not None:
                luminance, ab = luminance_and_ab(resize(frame_to_tensor(image, self.device), (height, width)))
                keyframes[int(frame_index)] = (len(anchoring.anchors), ab)
                anchoring.add_anchor(luminance, ab)
                placements.append({"mode": "keyframe", "frame": int(frame_index), "matches": None})
            else:
                placement = self._place_free_reference(image, reader, anchoring, use_anchors)
                if placement["mode"] == "aligned":  # its chain restarts at the frame it was warped to
                    restarts[placement["frame"]] = len(anchoring.anchors) - 1
                placements.append(placement)

        # 5. Frames before the first anchored frame S (a keyframe, or the frame a free reference shows) are
        #    coloured backwards from S, as the frames after it are forwards: chained from the anchor, not
        #    from direct matches alone. They wait on disk (`FrameSpool`), so memory stays flat.
        anchored_frames = [p["frame"] for p in placements if p["mode"] in ("keyframe", "aligned")]
        first_anchored = min(anchored_frames, default=0) if use_anchors else 0
        # 6. Colour frame by frame, streaming each to the file and/or the kept frames.
        frames: list[np.ndarray] = []
        with (
            output_writer(output_path, reader.info) as writer,
            self.progress_bar(total=num_frames) as progress,
            # Only a backward pass needs the temporary folder.
            FrameSpool() if first_anchored > 0 else contextlib.nullcontext() as spool,
        ):
            if first_anchored > 0:
                backwards = (self._stepper_with_exemplars(exemplars_lab, memory_overrides), anchoring.fresh())
                if not self._colour_backwards(
                    reader, first_anchored, backwards, keyframes, restarts, size, spool, progress,
                    callback_on_frame_end,
                ):  # fmt: skip
                    first_anchored = 0  # a file that ends before that frame: coloured forwards, as it decodes
                del backwards  # the backward pass's memory and frames, freed for the forward pass
            for index, frame in enumerate(reader):
                if index < first_anchored:  # coloured by the backward pass, its callback already called
                    coloured = spool.get(index)
                else:
                    if index in restarts:
                        anchoring.restart(restarts[index])
                    coloured = self._colour_frame(
                        frame, stepper, anchoring, keyframes.get(index), size, use_anchors
                    )
                    if callback_on_frame_end is not None:
                        callback_on_frame_end(self, index, {"frame": coloured, "memory": stepper.memory})
                    progress.update()
                if writer is not None:
                    writer.write(coloured)
                if output_type is not None:
                    frames.append(coloured)

        # 7. Outputs
        output = frames_to_output(frames, output_type) if output_type is not None else None
        output_path = None if output_path is None else str(output_path)
        if not return_dict:
            return (output, output_path)
        return ColorizationPipelineOutput(
            frames=output,
            video_path=output_path,
            exemplar_placements=placements,
            coloured_backwards_from=first_anchored or None,
        )

    def _stepper_with_exemplars(
        self, exemplars_lab: list[tuple[torch.Tensor, torch.Tensor]], memory_overrides: dict[str, int | None]
    ) -> ColorMNetStepper:
        """A fresh stepper (`prepare_stepper`) with the exemplars ((L, ab) at processing size) in memory."""
        stepper = self.prepare_stepper(**memory_overrides)
        for luminance, ab in exemplars_lab:
            stepper.add_exemplar(luminance, ab)
        return stepper

    def _colour_backwards(
        self,
        reader: VideoReader,
        first_anchored: int,
        backwards: tuple[ColorMNetStepper, AnchoredColour],
        keyframes: dict[int, tuple[int, torch.Tensor]],
        restarts: dict[int, int],
        size: tuple[int, int],
        spool: FrameSpool,
        progress,
        callback_on_frame_end: FrameCallback | None,
    ) -> bool:
        """Colour frames `first_anchored` - 1 down to 0 into `spool`, starting from frame `first_anchored`
        (its keyframe, or the restart of the free reference aligned to it) with the model and anchored colour
        of `backwards` (fresh ones: the forward pass starts at that frame again with its own, and counts it
        and calls its callback). False, with nothing coloured, when the video ends before that frame (a
        truncated file decodes fewer frames than it declares)."""
        stepper, anchoring = backwards
        for index, frame in enumerate(reader):
            if index == first_anchored:
                break
            spool.put(index, frame)
        else:
            return False
        if first_anchored in restarts:
            anchoring.restart(restarts[first_anchored])
        self._colour_frame(frame, stepper, anchoring, keyframes.get(first_anchored), size, use_anchors=True)
        for index in range(first_anchored - 1, -1, -1):
            coloured = self._colour_frame(spool.get(index), stepper, anchoring, None, size, use_anchors=True)
            spool.put(index, coloured)
            if callback_on_frame_end is not None:
                callback_on_frame_end(self, index, {"frame": coloured, "memory": stepper.memory})
            progress.update()
        return True

    def _place_free_reference(
        self, image: np.ndarray, reader: VideoReader, anchoring: AnchoredColour, use_anchors: bool
    ) -> dict:
        """Find the frame of the video that shows a free reference's scene (`core.reanchoring.align_to_frames`
        on up to `MAX_ALIGNMENT_CANDIDATES` frames spread over the video, decoded in a first pass) and add
        the reference, warped into that frame's geometry, as an anchor; pixels it does not cover never
        match. Returns the exemplar's placement (see `ColorizationPipelineOutput`)."""
        memory_only = {"mode": "memory", "frame": None, "matches": None}
        if not (use_anchors and self.config.align_free_references):
            return {**memory_only, "matches": None, "not_aligned": "alignment off"}
        stride = max(1, -(-len(reader) // MAX_ALIGNMENT_CANDIDATES))
        candidates = [
            (index, luminance_and_ab(frame_to_tensor(frame, self.device))[0])
            for index, frame in enumerate(reader)
            if index % stride == 0
        ]
        reference_luminance, reference_ab = luminance_and_ab(frame_to_tensor(image, self.device))
        alignment = align_to_frames(reference_luminance, candidates)
        if alignment.frame_index is None:
            return {**memory_only, "matches": alignment.inliers}
        size = (reader.info.height, reader.info.width)
        homography = snap_to_identity(alignment.homography, size)
        warped, covered = warp_to_frame(
            torch.cat([reference_luminance, reference_ab], dim=1), homography, size
        )
        luminance = torch.where(covered, warped[:, :1], torch.full_like(warped[:, :1], UNCOVERED_LUMINANCE))
        anchoring.add_anchor(luminance, warped[:, 1:])
        return {"mode": "aligned", "frame": alignment.frame_index, "matches": alignment.inliers}

    def _colour_frame(
        self,
        frame: np.ndarray,
        stepper: ColorMNetStepper,
        anchoring: AnchoredColour,
        keyframe: tuple[int, torch.Tensor] | None,
        size: tuple[int, int],
        use_anchors: bool,
    ) -> np.ndarray:
        """One input frame, RGB uint8 (H, W, 3) -> the coloured frame, RGB uint8 (H, W, 3) with its L.

        The model runs at `size`; a keyframe ((its anchor's index, its exemplar's ab (1, 2, H, W))) is only
        encoded for the frames after it, and output with the exemplar's colour. Other frames take the
        anchored colour, with the model's prediction as its fallback, and the model remembers that colour."""
        luminance_full = luminance_and_ab(frame_to_tensor(frame, self.device))[0]  # (1, 1, H, W)
        luminance = resize(luminance_full, size)
        if keyframe is not None:
            anchor_index, keyframe_ab = keyframe
            stepper.step(luminance, known_ab=resize(keyframe_ab, size))
            return tensor_to_frame(
                compose_lab(luminance_full, anchoring.given(luminance_full, keyframe_ab, anchor_index))
            )
        ab_low = stepper.predict(luminance)  # (1, 2, h/2, w/2)
        guide_low = resize(luminance, ab_low.shape[-2:]) / 100.0
        ab_full = guided_upsample(ab_low, guide_low, luminance_full / 100.0)
        if use_anchors:
            ab_full = anchoring.step(luminance_full, ab_full)[0]
            stepper.commit_colour(resize(ab_full, ab_low.shape[-2:]))
        else:
            stepper.commit_colour(ab_low)
        return tensor_to_frame(compose_lab(luminance_full, ab_full))
