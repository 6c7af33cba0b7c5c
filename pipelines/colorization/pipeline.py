"""`ColorMNetPipeline`: exemplar-based video colorization, streamed frame by frame.

    pipe = ColorMNetPipeline.from_pretrained("checkpoints/colormnet-lite")
    result = pipe("film.mp4", exemplars="reference.jpg", output_path="film_colour.mp4")

Each frame is processed at `processing_size` (its short side), coloured from memory (exemplars +
past frames) and local attention to the previous frame, and its ab is lifted back to the input
resolution by guided upsampling on the full-resolution luminance. The output keeps the input's L
channel: only ab is predicted, and pixels whose L did not change since the previous frame, in place or
along the optical flow, keep their colour (`hold_previous_colour`). Memory is bounded (see `memory.py`),
and with `output_path` frames go straight to the mp4, so memory stays flat however long the video.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

from ..core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from ..core.flow import luminance_flow
from ..core.guided_filter import guided_upsample
from ..core.hub import HueflowPipeline
from ..core.outputs import VideoPipelineOutput, check_output_type, frames_to_output
from ..core.resize import processing_shape, resize
from ..core.video import VideoReader, is_grayscale_image, load_image, output_writer
from .memory import ColorMemory, MemoryConfig
from .modeling import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetValueEncoder,
    LocalAttentionConfig,
    colorize_step,
    encode_memory_frame,
    hold_previous_colour,
)

# The hold's optical flow: DIS's ultrafast preset, at a short side of at most 480 (DIS's cost grows with
# the pixel count, and a flow field is smooth). At 854x480 it takes about 5 ms a frame; the medium
# preset took 45 and held colour only a little better (see the model card).
HOLD_FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
MAX_FLOW_SHORT_SIDE = 480


class ExemplarError(ValueError):
    """The exemplars given to the pipeline cannot be used (missing, grayscale, bad frame index)."""


class ColorMNetPipeline(HueflowPipeline):
    model_cpu_offload_seq = "feature_encoder->value_encoder->decoder"

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
        static_tolerance: float = 0.5,
        motion_compensated_hold: bool = True,
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
            static_tolerance=static_tolerance,
            motion_compensated_hold=motion_compensated_hold,
        )

    def local_attention_config(self) -> LocalAttentionConfig:
        return LocalAttentionConfig(
            radius=self.config.local_attention_radius,
            patch_radius=self.config.patch_attention_radius,
            patch_temperature=self.config.patch_attention_temperature,
        )

    def memory_config(self, **overrides) -> MemoryConfig:
        fields = MemoryConfig.__dataclass_fields__
        values = {name: self.config[name] for name in fields}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return MemoryConfig(**values)

    def _prepare_exemplars(
        self, exemplars, exemplar_frames: Sequence[int | None] | None, num_frames: int
    ) -> list[tuple[np.ndarray, int | None]]:
        if exemplars is None or (isinstance(exemplars, (list, tuple)) and len(exemplars) == 0):
            raise ExemplarError(
                "No exemplar given: pass at least one colour reference image (exemplars=...)."
            )
        if not isinstance(exemplars, (list, tuple)):
            exemplars = [exemplars]
        if exemplar_frames is None:
            exemplar_frames = [None] * len(exemplars)
        elif isinstance(exemplar_frames, int):
            exemplar_frames = [exemplar_frames]
        if len(exemplar_frames) != len(exemplars):
            raise ExemplarError(
                f"Got {len(exemplars)} exemplars but {len(exemplar_frames)} exemplar_frames: give one frame "
                "index (or None for a free reference) per exemplar."
            )
        prepared = []
        for number, (exemplar, frame_index) in enumerate(
            zip(exemplars, exemplar_frames, strict=True), start=1
        ):
            image = load_image(exemplar)
            if is_grayscale_image(image):
                raise ExemplarError(
                    f"Exemplar {number} has no colour (it is grayscale): the exemplar must be a colour image."
                )
            if frame_index is not None and not 0 <= int(frame_index) < num_frames:
                raise ExemplarError(
                    f"Exemplar {number} is tied to frame {frame_index}, but the video has {num_frames} "
                    f"frames (valid indices 0..{num_frames - 1})."
                )
            prepared.append((image, None if frame_index is None else int(frame_index)))
        return prepared

    @torch.no_grad()
    def __call__(
        self,
        video,
        exemplars=None,
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
        static_tolerance: float | None = None,
        motion_compensated_hold: bool | None = None,
        callback_on_frame_end: Callable[[ColorMNetPipeline, int, ColorMemory], None] | None = None,
    ):
        """Colour `video` from one or more colour `exemplars`.

        Args:
            video: a video file (mp4, avi, mov, webm, gif...), a folder of frames, a list of PIL
                images / arrays, or an array (T, H, W[, 3]). Colour input is decolorized (its L is used).
            exemplars: one image or a list (path, PIL or RGB array), each a colour image.
            exemplar_frames: per exemplar, the index of the frame it colours (a keyframe the user
                coloured: that frame takes the exemplar's colour), or None for a free reference.
            processing_size: short side the model runs at (default from the config); the output
                is always at the input resolution.
            max_frames: stop after this many frames.
            output_type: "pil", "np" or "pt". Default "pil", or no frames kept when `output_path`
                is given (they are streamed to the file).
            output_path: write an H.264 mp4 here, with the input's audio when it has some.
            generator: accepted for the common pipeline signature; inference is deterministic.
            top_k, memory_every, ...: override the memory settings of the config for this call.
            static_tolerance: where a pixel's L (0-100) is within this much of the previous frame's L,
                it keeps the previous frame's colour (`hold_previous_colour`: no flicker on surfaces that
                did not change). Default from the config (0.5, about one 8-bit grey level); negative: off.
            motion_compensated_hold: also compare each pixel with the previous frame's pixel it came
                from along DIS optical flow, so moving surfaces keep their colour too. Default from the
                config (True); costs an optical flow per frame (about 5 ms at 854x480).
            callback_on_frame_end: called as `fn(pipeline, frame_index, memory)` after each frame.
        """
        if output_type is None:
            output_type = None if output_path is not None else "pil"
        else:
            check_output_type(output_type)
        reader = VideoReader(video, max_frames=max_frames)
        num_frames = len(reader)
        prepared = self._prepare_exemplars(exemplars, exemplar_frames, num_frames)
        memory = ColorMemory(
            self.memory_config(
                top_k=top_k,
                memory_every=memory_every,
                max_working_frames=max_working_frames,
                min_working_frames=min_working_frames,
                num_prototypes=num_prototypes,
                max_long_term_elements=max_long_term_elements,
            )
        )
        device = self.device
        height, width = reader.info.height, reader.info.width
        size = processing_shape(height, width, processing_size or self.config.processing_size)

        local_attention = self.local_attention_config()
        keyframes: dict[int, torch.Tensor] = {}  # frame index -> exemplar ab at the input resolution
        for image, frame_index in prepared:
            rgb = frame_to_tensor(image, device)
            luminance, ab = luminance_and_ab(resize(rgb, size))
            exemplar = encode_memory_frame(self.feature_encoder, self.value_encoder, luminance, ab)
            memory.add_permanent(exemplar.key, exemplar.value)
            if frame_index is not None:
                keyframes[frame_index] = luminance_and_ab(resize(rgb, (height, width)))[1]

        if static_tolerance is None:
            static_tolerance = self.config.static_tolerance
        if motion_compensated_hold is None:
            motion_compensated_hold = self.config.motion_compensated_hold
        frames: list[np.ndarray] = []
        previous = None
        previous_output = None  # (L, ab) of the last output frame, at the input resolution
        with (
            output_writer(output_path, reader.info) as writer,
            self.progress_bar(total=num_frames) as progress,
        ):
            for index, frame in enumerate(reader):
                luminance_full = luminance_and_ab(frame_to_tensor(frame, device))[0]
                luminance = resize(luminance_full, size)
                if index in keyframes:
                    ab_full = keyframes[index]
                    previous = encode_memory_frame(
                        self.feature_encoder, self.value_encoder, luminance, resize(ab_full, size)
                    )
                else:
                    ab, previous = colorize_step(
                        self.feature_encoder,
                        self.value_encoder,
                        self.decoder,
                        luminance,
                        memory,
                        previous,
                        local_attention,
                    )
                    guide_low = resize(luminance, ab.shape[-2:]) / 100.0
                    ab_full = guided_upsample(ab, guide_low, luminance_full / 100.0)
                    if previous_output is not None and static_tolerance >= 0:
                        previous_luminance, previous_ab = previous_output
                        displacement = None
                        if motion_compensated_hold:
                            displacement = luminance_flow(
                                luminance_full, previous_luminance, MAX_FLOW_SHORT_SIDE, HOLD_FLOW_PRESET
                            )
                        ab_full = hold_previous_colour(
                            ab_full,
                            previous_ab,
                            luminance_full,
                            previous_luminance,
                            static_tolerance,
                            displacement,
                        )
                previous_output = (luminance_full, ab_full)
                if index % memory.config.memory_every == 0:
                    memory.add_working(previous.key, previous.value)
                coloured = tensor_to_frame(compose_lab(luminance_full, ab_full))
                if writer is not None:
                    writer.write(coloured)
                if output_type is not None:
                    frames.append(coloured)
                if callback_on_frame_end is not None:
                    callback_on_frame_end(self, index, memory)
                progress.update()
        if output_path is not None:
            output_path = str(output_path)

        output = frames_to_output(frames, output_type) if output_type is not None else None
        if not return_dict:
            return (output, output_path)
        return VideoPipelineOutput(frames=output, video_path=output_path)
