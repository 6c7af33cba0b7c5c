"""ColorMNet model components (Yang et al., ECCV 2024), sized for a CPU.

Three trainable components, each a `ModelMixin, ConfigMixin` saved in its own subfolder:

- `ColorMNetFeatureEncoder` (PVGFE): a frozen pretrained backbone run on the luminance, fused with
  a light trainable CNN into memory keys and decoder features at stride 8, plus stride-4 and stride-2 skips.
- `ColorMNetValueEncoder`: turns a frame's ab (at stride 8) and features into memory values.
- `ColorMNetDecoder`: refines the memory readout (MFP) and the two local-attention readouts (LA) of
  the previous frame into ab at stride 2. It predicts a gate between the readouts and a residual
  over them, so it propagates colour rather than inventing it; the residual starts at zero. Where
  the block match wins the gate its colour is copied unchanged (`copy_confident_matches`), so
  nothing compounds along the frame-to-frame chain.

Local attention runs twice: on the learned keys at stride 8, and as soft block matching of raw
luminance patches at stride 2 (`block_match_attention`), which carries the previous frame's colour
detail over small motions as sharply as optical flow. A learned stride-4 key did that job before;
after minutes of CPU training it matched too blurrily (26 dB on its own, where luminance patches
reach 36-40 dB on the same clips).

`colorize_step` runs one frame through the three, given the memory; `stepper.ColorMNetStepper` calls it
for both the pipeline and the training script, so what is trained is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..core.attention import block_match_attention, local_window_attention
from ..core.backbones import FrozenBackboneMixin, build_backbone
from ..core.colour import AB_SCALE
from ..core.layers import conv_block


@dataclass
class FrameEncoding:
    key: torch.Tensor  # (B, Ck, H/8, W/8) memory key
    features: torch.Tensor  # (B, Cf, H/8, W/8) decoder / value-encoder features
    skips: tuple[torch.Tensor, torch.Tensor]  # (B, C4, H/4, W/4), (B, C2, H/2, W/2) for the decoder
    luminance: torch.Tensor  # (B, 1, H, W) L in [0, 100]: the block matching's key


class ColorMNetFeatureEncoder(FrozenBackboneMixin, ModelMixin, ConfigMixin):
    """PVGFE: frozen pretrained features of the luminance + a light trainable CNN -> keys and features."""

    @register_to_config
    def __init__(
        self,
        backbone: str = "efficientnet-lite0",
        backbone_config: dict | None = None,
        key_channels: int = 64,
        feature_channels: int = 64,
        light_channels: tuple[int, int, int] = (16, 24, 32),
    ) -> None:
        super().__init__()
        self.frozen_backbone = build_backbone(backbone, backbone_config)
        self.frozen_backbone.requires_grad_(False).eval()
        c1, c2, c3 = light_channels
        # Trainable path on the luminance: fine detail the frozen backbone (trained on colour) lacks.
        self.light = nn.ModuleList([conv_block(1, c1, 2), conv_block(c1, c2, 2), conv_block(c2, c3, 2)])
        pretrained = (
            self.frozen_backbone.out_channels["stride8"] + self.frozen_backbone.out_channels["stride16"]
        )
        self.fuse = nn.Sequential(
            conv_block(pretrained + c3, feature_channels), conv_block(feature_channels, feature_channels)
        )
        self.to_key = nn.Conv2d(feature_channels, key_channels, 1)

    def forward(self, luminance: torch.Tensor) -> FrameEncoding:
        """luminance (B, 1, H, W), L in [0, 100], H and W multiples of 16."""
        with torch.no_grad():
            pretrained = self.frozen_backbone(luminance)
        size = pretrained["stride8"].shape[-2:]
        light = luminance / 50.0 - 1.0
        skips = []
        for layer in self.light:
            light = layer(light)
            skips.append(light)
        fused = torch.cat(
            [pretrained["stride8"], F.interpolate(pretrained["stride16"], size=size, mode="bilinear"), light],
            dim=1,
        )
        features = self.fuse(fused)
        return FrameEncoding(
            key=self.to_key(features),
            features=features,
            skips=(skips[1], skips[0]),
            luminance=luminance,
        )


class ColorMNetValueEncoder(ModelMixin, ConfigMixin):
    """Memory values of a coloured frame: [its ab (2), learned value (Cv)] at stride 8."""

    @register_to_config
    def __init__(self, feature_channels: int = 64, value_channels: int = 32) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            conv_block(feature_channels + 2, value_channels * 2),
            nn.Conv2d(value_channels * 2, value_channels, 3, 1, 1),
        )

    def forward(self, ab: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """ab (B, 2, h, w) in Lab units at the features' size -> value (B, 2 + Cv, h, w).

        The scaled ab itself is the first two channels, so a readout of the value is directly a
        propagated colour, and the learned channels carry what the decoder needs to correct it."""
        scaled = ab / AB_SCALE
        return torch.cat([scaled, self.encode(torch.cat([scaled, features], dim=1))], dim=1)


class ColorMNetDecoder(ModelMixin, ConfigMixin):
    """Refines the memory readout (MFP) and the two local-attention readouts (LA) into ab at stride 2.

    Stride 2 rather than ColorMNet's full resolution keeps a CPU fast; the guided upsampling on
    the full-resolution luminance adds the rest of the detail."""

    @register_to_config
    def __init__(
        self,
        feature_channels: int = 64,
        value_channels: int = 32,
        skip_channels: tuple[int, int] = (24, 16),
        hidden_channels: int = 64,
    ) -> None:
        super().__init__()
        readout = 2 + value_channels
        self.body = nn.Sequential(
            conv_block(feature_channels + 2 * readout, hidden_channels),
            conv_block(hidden_channels, hidden_channels),
        )
        self.refine4 = conv_block(hidden_channels + skip_channels[0] + 2, hidden_channels // 2)
        # + the block-matched ab and its match cost, at full decoder resolution
        self.refine2 = conv_block(hidden_channels // 2 + skip_channels[1] + 3, hidden_channels // 4)
        # 2 residual ab + 3 logits weighing the memory, local and block-matched readouts
        self.head = nn.Conv2d(hidden_channels // 4, 5, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # The block-matched readout's logit also gets `bias - slope * match_cost`: a good block match
        # is near-exact where a frame barely changes, so it starts out trusted (weight ~0.96 at cost 0)
        # and loses out to the memory readouts as its cost grows; both are learned from there.
        self.match_confidence = nn.Parameter(torch.tensor([4.0, 1.0]))  # (bias, slope)

    def forward(
        self,
        features: torch.Tensor,
        skips: tuple[torch.Tensor, torch.Tensor],
        memory_value: torch.Tensor,
        local_value: torch.Tensor,
        matched_ab: torch.Tensor,
        match_cost: torch.Tensor,
    ) -> torch.Tensor:
        """features (B, Cf, h, w), skips at 2x and 4x that size, readouts (B, 2 + Cv, h, w),
        matched_ab (B, 2, 4h, 4w) scaled ab and match_cost (B, 1, 4h, 4w) from the block matching
        -> ab (B, 2, 4h, 4w) in Lab units."""
        hidden = self.body(torch.cat([features, memory_value, local_value], dim=1))
        hidden = F.interpolate(hidden, size=skips[0].shape[-2:], mode="bilinear")
        hidden = self.refine4(torch.cat([hidden, skips[0], F.avg_pool2d(matched_ab, 2)], dim=1))
        hidden = F.interpolate(hidden, size=skips[1].shape[-2:], mode="bilinear")
        hidden = self.refine2(torch.cat([hidden, skips[1], matched_ab, match_cost], dim=1))
        residual, gate_logits = self.head(hidden).split([2, 3], dim=1)
        bias, slope = self.match_confidence
        confidence = torch.zeros_like(gate_logits[:, :2])
        gate_logits = gate_logits + torch.cat([confidence, bias - slope * match_cost], dim=1)
        size = skips[1].shape[-2:]
        readouts = [
            F.interpolate(ab, size=size, mode="bilinear") for ab in (memory_value[:, :2], local_value[:, :2])
        ]
        gate = torch.softmax(gate_logits, dim=1)  # (B, 3, 4h, 4w)
        return copy_confident_matches(gate, matched_ab, readouts, residual) * AB_SCALE


def copy_confident_matches(
    gate: torch.Tensor, matched_ab: torch.Tensor, readouts: list[torch.Tensor], residual: torch.Tensor
) -> torch.Tensor:
    """Where the block match wins the gate, its colour is copied as is; elsewhere the memory and local
    readouts are blended by the rest of the gate and corrected by the residual.

    gate (B, 3, H, W) softmax weights of (memory, local, block match); matched_ab, readouts[i] and
    residual (B, 2, H, W) -> ab (B, 2, H, W), all in scaled units.

    Why not blend everything: every frame's output is the next frame's block-matching value, so a 6%
    share of the blurry stride-8 readouts, or a residual of a hundredth of a unit, compounds along the
    chain. Over 40 frames of bigbuckbunny the soft blend scored 31.0 dB where copying scored 36.1.
    The hard choice passes the soft weight's gradient (straight-through), so training sees what runs.
    """
    matched_weight = gate[:, 2:3]
    others = gate[:, :2] / gate[:, :2].sum(dim=1, keepdim=True).clamp_min(1e-6)
    blended = others[:, :1] * readouts[0] + others[:, 1:] * readouts[1] + residual
    chosen = torch.where(matched_weight > 0.5, matched_ab, blended)
    # + exactly zero, with the gradient a soft blend by `matched_weight` would have
    return chosen + (matched_weight - matched_weight.detach()) * (matched_ab - blended)


@dataclass
class FrameMemory:
    """What a coloured frame leaves for the frames after it."""

    key: torch.Tensor  # (B, Ck, H/8, W/8) memory key
    value: torch.Tensor  # (B, 2 + Cv, H/8, W/8) memory value
    luminance: torch.Tensor  # (B, 1, H, W) L in [0, 100]: the block matching's key
    patch_ab: torch.Tensor  # (B, 2, H/2, W/2) its scaled ab, the block matching's value


def frame_memory(
    value_encoder: ColorMNetValueEncoder, encoding: FrameEncoding, ab: torch.Tensor
) -> FrameMemory:
    """Memory entries of a frame whose ab (B, 2, h, w) in Lab units is known or predicted."""
    value = value_encoder(F.adaptive_avg_pool2d(ab, encoding.key.shape[-2:]), encoding.features)
    patch_size = (encoding.luminance.shape[-2] // 2, encoding.luminance.shape[-1] // 2)
    patch_ab = F.adaptive_avg_pool2d(ab, patch_size) / AB_SCALE
    return FrameMemory(key=encoding.key, value=value, luminance=encoding.luminance, patch_ab=patch_ab)


def encode_memory_frame(
    feature_encoder: ColorMNetFeatureEncoder,
    value_encoder: ColorMNetValueEncoder,
    luminance: torch.Tensor,
    ab: torch.Tensor,
) -> FrameMemory:
    """A frame whose colour is known (an exemplar or keyframe). luminance (B,1,H,W), ab (B,2,H,W)."""
    return frame_memory(value_encoder, feature_encoder(luminance), ab)


@dataclass(frozen=True)
class LocalAttentionConfig:
    """The two local attentions to the previous frame: window radius of the learned-key attention
    (stride 8), window radius and softmax temperature of the block matching (stride 2)."""

    radius: int = 3
    patch_radius: int = 2
    patch_temperature: float = 1e-4  # on mean squared differences of L/100: 1e-4 is nearly a hard argmin


def colorize_step(
    feature_encoder: ColorMNetFeatureEncoder,
    decoder: ColorMNetDecoder,
    luminance: torch.Tensor,
    memory,
    previous: FrameMemory | None,
    local: LocalAttentionConfig = LocalAttentionConfig(),
) -> tuple[torch.Tensor, FrameEncoding]:
    """Colour one frame -> (ab (B, 2, H/2, W/2) in Lab units, the frame's encoding). `frame_memory` of the
    encoding and the frame's final ab gives what the frame leaves for the next ones.

    `memory` is a `ColorMemory` (long-range readout by key). `previous` is the previous frame, for
    the two local attentions (LA); on the first frame (None) both fall back to the memory readout,
    with the worst match cost."""
    encoding = feature_encoder(luminance)
    batch, _, height, width = encoding.key.shape
    memory_value = memory.readout(encoding.key.flatten(2)).view(batch, -1, height, width)
    patch_size = (luminance.shape[-2] // 2, luminance.shape[-1] // 2)
    if previous is None:
        local_value = memory_value
        matched_ab = F.interpolate(memory_value[:, :2], size=patch_size, mode="bilinear")
        match_cost = torch.ones_like(matched_ab[:, :1])  # keys are in [0, 1]: 1 is the largest cost
    else:
        local_value = local_window_attention(encoding.key, previous.key, previous.value, local.radius)
        matched_ab, match_cost = block_match_attention(
            luminance,
            previous.luminance,
            previous.patch_ab,
            local.patch_radius,
            local.patch_temperature,
        )
    # log1p(cost / temperature): 0 for an exact match, growing slowly, so the decoder sees a usable scale
    match_cost = torch.log1p(match_cost / local.patch_temperature)
    ab = decoder(encoding.features, encoding.skips, memory_value, local_value, matched_ab, match_cost)
    return ab, encoding
