"""The correspondence encoder as a backbone of the other systems ("mer-correspondence").

Registered with `core.backbones.register_backbone` when `pipelines.correspondence` is imported (as
`import pipelines` does), so the colorization and appearance-transfer feature encoders can build it by
name, `build_backbone("mer-correspondence", config)`, while core imports no system.

The encoder (`modeling.MotionCorrespondenceEncoder`, trained self-supervised to match frames) runs on a
single frame, without its flow input, and its stride-4 features are average-pooled to strides 8 and 16.
Its config is the encoder's (the owning model's `backbone_config`; `pretrained_config` reads the one
that comes with the weights); its weights come from a `CorrespondencePipeline` folder.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..core.backbones import register_backbone
from ..core.hub import resolve_pretrained_path
from .modeling import MotionCorrespondenceEncoder

# The embedded correspondence model, relative to the working directory (or a Hub repo id).
DEFAULT_PRETRAINED = "checkpoints/mer-correspondence"


@register_backbone("mer-correspondence")
class CorrespondenceBackbone(nn.Module):
    """Luminance (B, 1, H, W) -> {"stride8", "stride16"} features of the correspondence encoder."""

    def __init__(self, config: dict | None = None) -> None:
        super().__init__()
        # The attribute name is part of the state dict keys of saved models that hold this backbone
        # ("frozen_backbone.encoder.*", e.g. checkpoints/zero2hero-lite), and the appearance feature
        # encoder calls `.encoder` for its stride-4 features: renaming it would break both.
        self.encoder = MotionCorrespondenceEncoder.from_config(config or {})
        channels = self.encoder.config.feature_channels
        self.out_channels = {"stride8": channels, "stride16": channels}

    @classmethod
    def pretrained_config(cls, path: str | os.PathLike | None = None) -> dict:
        """The encoder config of a `CorrespondencePipeline` folder or Hub repo (default: the embedded
        one): the architecture its weights need (`load_pretrained_weights`)."""
        folder = resolve_pretrained_path(path or DEFAULT_PRETRAINED)
        return dict(MotionCorrespondenceEncoder.load_config(folder / "encoder"))

    def load_pretrained_weights(self, path: str | os.PathLike | None = None) -> None:
        """Copy the encoder of a `CorrespondencePipeline` folder or Hub repo (default: the embedded one)."""
        folder = resolve_pretrained_path(path or DEFAULT_PRETRAINED)
        pretrained = MotionCorrespondenceEncoder.from_pretrained(folder / "encoder")
        self.encoder.load_state_dict(pretrained.state_dict())

    def forward(self, luminance: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(luminance)  # (B, C, H/4, W/4), no flow: a single frame
        return {"stride8": F.avg_pool2d(features, 2), "stride16": F.avg_pool2d(features, 4)}
