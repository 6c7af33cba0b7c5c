"""Per-frame state of ColorMNet's streaming loop, written once for inference and training.

`ColorMNetStepper` is the model side (as Cutie's `InferenceCore.step`): it owns the `ColorMemory`, the
previous frame's `FrameMemory` (the local attentions' key and value) and the frame counter that decides
which frames enter working memory. `ColorMNetPipeline.__call__` and `train.clip_loss` both drive it, so
what is trained is what runs:

    stepper = ColorMNetStepper(feature_encoder, value_encoder, decoder, MemoryConfig())
    stepper.add_exemplar(exemplar_luminance, exemplar_ab)       # permanent memory
    for luminance in frames:                                    # (B, 1, H, W) at processing resolution
        ab = stepper.step(luminance)                            # (B, 2, H/2, W/2)

The pipeline splits a step in two: `predict` gives the model's colour, the pipeline turns it into the
frame's final colour (`core.reanchoring.AnchoredColour`), and `commit_colour` stores the frame with it.
"""

from __future__ import annotations

import torch

from .memory import ColorMemory, MemoryConfig
from .modeling import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetValueEncoder,
    FrameEncoding,
    FrameMemory,
    LocalAttentionConfig,
    colorize_step,
    encode_memory_frame,
    frame_memory,
)


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
        self._encoding: FrameEncoding | None = None  # the last `predict`ed frame's, until committed

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
        of 16) -> ab (B, 2, H/2, W/2) in Lab units, which the frame leaves in memory for the next ones.

        With `known_ab` (B, 2, H, W), the frame is a keyframe whose colour is given: it is only encoded,
        for the frames after it, and None is returned. Either way every `memory_every`-th frame (the
        first included) enters working memory.
        """
        if known_ab is not None:
            self.commit(encode_memory_frame(self.feature_encoder, self.value_encoder, luminance, known_ab))
            return None
        ab = self.predict(luminance)
        self.commit_colour(ab)
        return ab

    def predict(self, luminance: torch.Tensor) -> torch.Tensor:
        """The model's ab (B, 2, H/2, W/2) for the next frame, without remembering it yet: `commit_colour`
        then stores the frame with its final colour (the model's, or the pipeline's anchored colour)."""
        ab, self._encoding = colorize_step(
            self.feature_encoder,
            self.decoder,
            luminance,
            self.memory,
            self.previous,
            self.local_attention,
        )
        return ab

    def commit_colour(self, ab: torch.Tensor) -> None:
        """Remember the frame last `predict`ed with `ab` (B, 2, h, w) in Lab units, any size (pooled to the
        memory's sizes)."""
        self.commit(frame_memory(self.value_encoder, self._encoding, ab))
        self._encoding = None

    def commit(self, frame: FrameMemory) -> None:
        """`frame` becomes the previous frame, and enters working memory every `memory_every`-th step."""
        self.previous = frame
        if self.frame_index % self.memory.config.memory_every == 0:
            self.memory.add_working(frame.key, frame.value)
        self.frame_index += 1
