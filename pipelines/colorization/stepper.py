"""Per-frame state of ColorMNet's streaming loop, written once for inference and training.

`ColorMNetStepper` is the model side (as Cutie's `InferenceCore.step`): it owns the `ColorMemory`, the
previous frame's `FrameMemory` (the local attentions' key and value) and the frame counter that decides
which frames enter working memory. `ColorMNetPipeline.__call__` and `train.clip_loss` both drive it, so
what is trained is what runs:

    stepper = ColorMNetStepper(feature_encoder, value_encoder, decoder, MemoryConfig())
    stepper.add_exemplar(exemplar_luminance, exemplar_ab)       # permanent memory
    for luminance in frames:                                    # (B, 1, H, W) at processing resolution
        ab = stepper.step(luminance)                            # (B, 2, H/2, W/2)

`ColourHold` is the output side, used by the pipeline only: it lifts each frame's ab to the input
resolution (guided upsampling on the full-resolution luminance) and holds the previous output's colour
where the input did not change (`hold_previous_colour`), so it keeps the previous OUTPUT frame.
"""

from __future__ import annotations

import cv2
import torch

from ..core.flow import luminance_flow
from ..core.guided_filter import guided_upsample
from ..core.resize import resize
from .memory import ColorMemory, MemoryConfig
from .modeling import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetValueEncoder,
    FrameMemory,
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


class ColorMNetStepper:
    """Colours a stream of frames one `step` at a time, from exemplars in memory and the previous frame.

    Args:
        feature_encoder, value_encoder, decoder: the pipeline's three components.
        memory_config: sizes of the memory (`memory_every` sets which steps enter working memory).
        local_attention: the two local attentions to the previous frame.
    """

    def __init__(
        self,
        feature_encoder: ColorMNetFeatureEncoder,
        value_encoder: ColorMNetValueEncoder,
        decoder: ColorMNetDecoder,
        memory_config: MemoryConfig,
        local_attention: LocalAttentionConfig | None = None,
    ) -> None:
        self.feature_encoder = feature_encoder
        self.value_encoder = value_encoder
        self.decoder = decoder
        self.local_attention = local_attention or LocalAttentionConfig()
        self.memory = ColorMemory(memory_config)
        self.previous: FrameMemory | None = None  # what the last step (or a keyframe exemplar) left
        self.frame_index = 0  # steps taken so far: the index of the next frame

    def add_exemplar(self, luminance: torch.Tensor, ab: torch.Tensor, as_previous: bool = False) -> None:
        """Put a colour image in permanent memory. luminance (B, 1, H, W) L in [0, 100], ab (B, 2, H, W) Lab.

        `as_previous`: the exemplar is also the frame just before the next `step` (a keyframe coloured by
        the user, as training's clips start), so that step's local attentions read it. Without it the
        exemplar is a free reference: memory only.
        """
        exemplar = encode_memory_frame(self.feature_encoder, self.value_encoder, luminance, ab)
        self.memory.add_permanent(exemplar.key, exemplar.value)
        if as_previous:
            self.previous = exemplar

    def step(self, luminance: torch.Tensor, known_ab: torch.Tensor | None = None) -> torch.Tensor | None:
        """Colour the next frame: luminance (B, 1, H, W) L in [0, 100] at processing resolution (multiples
        of 16) -> ab (B, 2, H/2, W/2) in Lab units.

        With `known_ab` (B, 2, H, W), the frame is a keyframe whose colour is given: it is only encoded,
        for the frames after it, and None is returned. Either way every `memory_every`-th frame (the
        first included) enters working memory.
        """
        ab = None
        if known_ab is not None:
            self.previous = encode_memory_frame(self.feature_encoder, self.value_encoder, luminance, known_ab)
        else:
            ab, self.previous = colorize_step(
                self.feature_encoder,
                self.value_encoder,
                self.decoder,
                luminance,
                self.memory,
                self.previous,
                self.local_attention,
            )
        if self.frame_index % self.memory.config.memory_every == 0:
            self.memory.add_working(self.previous.key, self.previous.value)
        self.frame_index += 1
        return ab


class ColourHold:
    """The output side of the pipeline: each frame's ab at the input resolution, with steady colours held.

    Args:
        static_tolerance: a pixel whose L (0-100) is within this much of the previous output's L keeps the
            previous output's colour (`hold_previous_colour`); negative: no hold.
        motion_compensated: also compare each pixel with where it came from along DIS optical flow.
    """

    def __init__(self, static_tolerance: float, motion_compensated: bool) -> None:
        self.static_tolerance = static_tolerance
        self.motion_compensated = motion_compensated
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None  # last output's (L, ab), full size

    def keyframe(self, luminance: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """A frame whose colour is given: its ab (B, 2, H, W) is output as is, and held from."""
        self.previous = (luminance, ab)
        return ab

    def predicted(
        self, luminance: torch.Tensor, luminance_low: torch.Tensor, ab_low: torch.Tensor
    ) -> torch.Tensor:
        """luminance (B, 1, H, W) at the input resolution, luminance_low (B, 1, h, w) the model's input and
        ab_low (B, 2, h/2, w/2) its output -> ab (B, 2, H, W)."""
        guide_low = resize(luminance_low, ab_low.shape[-2:]) / 100.0
        ab = guided_upsample(ab_low, guide_low, luminance / 100.0)
        if self.previous is not None and self.static_tolerance >= 0:
            previous_luminance, previous_ab = self.previous
            displacement = None
            if self.motion_compensated:
                displacement = luminance_flow(
                    luminance, previous_luminance, MAX_FLOW_SHORT_SIDE, HOLD_FLOW_PRESET
                )
            ab = hold_previous_colour(
                ab, previous_ab, luminance, previous_luminance, self.static_tolerance, displacement
            )
        self.previous = (luminance, ab)
        return ab
