"""The correspondence encoder of Zhou et al. 2025 ("Leveraging Motion Information for Better
Self-Supervised Video Correspondence Learning"), sized for a CPU.

`MotionCorrespondenceEncoder` maps a frame's luminance, and its optical flow to the previous frame
(`frame_flow`), to L2-normalized features at stride 4. Matching those features between
frames is the correspondence: trained by reconstructing a frame's colour from other frames
through their affinity (`objective.py`), used by label propagation (`propagation.py`).

- Colour input (`use_colour`, as in MAST, Lai et al. 2020): a frame's ab joins the luminance
  stem through its own small stem. Training drops each frame's colour input at random
  (`train.py --colour-dropout`), so the features match with colour, without it (grey footage: the
  colorization pipeline uses them as a backbone), and across the two. Colour cannot be copied
  through: the reconstruction is made only of the reference frames' colours (`objective.py`).
  Off: luminance only.
- Motion Enhancement Engine (`use_motion`): DIS optical flow (no learned weights), taken relative to
  the frame's dominant (camera) motion, is encoded by a small conv stem and added to the luminance
  stem's features with a learnable weight, so moving objects stand out in the features. Every
  frame gets the same kind of flow (`frame_flows`), the first one included, at training and at
  propagation alike.
- A frozen EfficientNet-Lite0 (ImageNet, from its PyPI wheel) adds semantic features at stride 8;
  the trainable CNN brings them to stride 4 with the detail that precise matching needs.

The two training-time components, the multi-cluster sampler and the adaptive fusion loss, are
switches of the same config, so a saved model records how it was trained.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..core.backbones import FrozenBackboneMixin, build_backbone
from ..core.colour import AB_SCALE
from ..core.flow import dis_flow
from ..core.layers import conv_block

# Flow is divided by this many pixels before the motion stem: typical motions become O(1).
FLOW_SCALE = 8.0


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_block(channels, channels), nn.Conv2d(channels, channels, 3, 1, 1), nn.GroupNorm(4, channels)
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.relu(hidden + self.body(hidden))


def camera_motion(flow: torch.Tensor, step: int = 4, iterations: int = 3) -> torch.Tensor:
    """The dominant (camera) motion of each frame: the affine flow field (pan, zoom, rotation, shear)
    that fits `flow` (B, 2, H, W) best -> (B, 2, H, W).

    A robust fit: least squares on every `step`-th pixel, then `iterations` reweighted ones with Cauchy
    weights (scale: the median residual), so a moving object, whose flow the affine field does not
    explain, does not pull the fit toward its own motion."""
    batch, _, height, width = flow.shape
    ys = torch.linspace(-1, 1, height, device=flow.device, dtype=flow.dtype)
    xs = torch.linspace(-1, 1, width, device=flow.device, dtype=flow.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    design = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1)  # (H, W, 3)
    samples = design[::step, ::step].reshape(-1, 3)  # (N, 3)
    targets = flow[:, :, ::step, ::step].flatten(2).transpose(1, 2)  # (B, N, 2)
    weights = torch.ones(batch, samples.shape[0], device=flow.device, dtype=flow.dtype)
    ridge = 1e-6 * torch.eye(3, device=flow.device, dtype=flow.dtype)
    for iteration in range(iterations + 1):
        weighted = samples[None] * weights[..., None]  # (B, N, 3)
        params = torch.linalg.solve(
            weighted.transpose(1, 2) @ samples + ridge, weighted.transpose(1, 2) @ targets
        )
        if iteration < iterations:
            residual = (samples[None] @ params - targets).norm(dim=2)  # (B, N)
            scale = residual.median(dim=1, keepdim=True).values.clamp_min(1e-3)
            weights = 1.0 / (1.0 + (residual / scale) ** 2)
    return (design.reshape(-1, 3) @ params).transpose(1, 2).reshape(batch, 2, height, width)


def motion_input(flow: torch.Tensor) -> torch.Tensor:
    """flow (B, 2, H, W) in pixels -> (B, 3, H, W): scaled flow relative to the frame's camera motion,
    and its magnitude.

    The camera motion (`camera_motion`, the affine field that explains most of the frame's flow) is
    subtracted: what moves with the camera gets near-zero motion input whatever the camera does (pan,
    zoom or turn, speeding up, stopping or wobbling), so the features of a static surface do not
    change from frame to frame, and what moves on its own (the objects the engine is meant to bring
    out) stands out."""
    relative = flow - camera_motion(flow)
    scaled = relative / FLOW_SCALE
    return torch.cat([scaled, scaled.norm(dim=1, keepdim=True)], dim=1)


def frame_flow(
    frame: np.ndarray, previous: np.ndarray | None = None, following: np.ndarray | None = None
) -> np.ndarray | None:
    """The motion input of one uint8 luminance frame (H, W) -> flow (H, W, 2) in pixels: DIS flow from
    it to the `previous` frame (where each pixel was a frame ago); for a first frame, which has no
    previous one, the reverse of its flow to the `following` frame (the same quantity under constant
    velocity); None for a lone frame (no motion)."""
    if previous is not None:
        return dis_flow(frame, previous)
    if following is not None:
        return -dis_flow(frame, following)
    return None


def frame_flows(frames: list[np.ndarray]) -> list[np.ndarray | None]:
    """`frame_flow` of every frame of a clip (uint8 luminance (H, W), in order). Every frame, the first
    one included, gets the same kind of flow, so a surface that moves steadily has the same motion
    input, and the same features, in all of them: the first frame is the one labels are drawn on in
    propagation, and zero flow there would make it look unlike the frames that match against it."""
    return [
        frame_flow(frame, frames[t - 1] if t > 0 else None, frames[1] if t == 0 and len(frames) > 1 else None)
        for t, frame in enumerate(frames)
    ]


class MotionCorrespondenceEncoder(FrozenBackboneMixin, ModelMixin, ConfigMixin):
    """Luminance (+ flow, + colour) -> L2-normalized correspondence features at stride 4."""

    stride = 4

    @register_to_config
    def __init__(
        self,
        feature_channels: int = 64,
        hidden_channels: tuple[int, int] = (32, 64),
        backbone: str | None = "efficientnet-lite0",
        use_motion: bool = True,
        use_multi_cluster_sampler: bool = True,
        use_adaptive_loss: bool = True,
        motion_weight_init: float = 0.5,
        use_colour: bool = False,
    ) -> None:
        super().__init__()
        c1, c2 = hidden_channels
        self.stem = nn.Sequential(conv_block(1, c1, 2), conv_block(c1, c1))  # stride 2
        if use_motion:
            # Motion Enhancement Engine: flow features join the luminance features with a learnable weight.
            self.motion_stem = nn.Sequential(conv_block(3, c1, 2), conv_block(c1, c1))
            self.motion_weight = nn.Parameter(torch.tensor(float(motion_weight_init)))
        if use_colour:
            self.colour_stem = nn.Sequential(conv_block(2, c1, 2), conv_block(c1, c1))
        self.body = nn.Sequential(conv_block(c1, c2, 2), ResidualBlock(c2), ResidualBlock(c2))  # stride 4
        pretrained = 0
        if backbone is not None:
            self.frozen_backbone = build_backbone(backbone)
            self.frozen_backbone.requires_grad_(False).eval()
            pretrained = self.frozen_backbone.out_channels["stride8"]
        self.head = nn.Sequential(conv_block(c2 + pretrained, c2), nn.Conv2d(c2, feature_channels, 1))

    def forward(
        self, luminance: torch.Tensor, flow: torch.Tensor | None = None, ab: torch.Tensor | None = None
    ) -> torch.Tensor:
        """luminance (B, 1, H, W), L in [0, 100]; flow (B, 2, H, W) in pixels on this frame's grid, where
        each pixel was in the previous frame (`frame_flows`; None means no motion, as for a single
        image); ab (B, 2, H, W) in Lab units (None: no colour, as for grey footage; ignored without
        `use_colour`); H, W multiples of 16 -> (B, C, H/4, W/4)."""
        hidden = self.stem(luminance / 50.0 - 1.0)  # (B, c1, H/2, W/2)
        if self.config.use_motion:
            if flow is None:
                flow = luminance.new_zeros(luminance.shape[0], 2, *luminance.shape[-2:])
            hidden = hidden + self.motion_weight * self.motion_stem(motion_input(flow))
        if self.config.use_colour:
            if ab is None:
                ab = luminance.new_zeros(luminance.shape[0], 2, *luminance.shape[-2:])
            hidden = hidden + self.colour_stem(ab / AB_SCALE)
        hidden = self.body(hidden)  # (B, c2, H/4, W/4)
        if self.config.backbone is not None:
            with torch.no_grad():
                semantic = self.frozen_backbone(luminance)["stride8"]
            semantic = F.interpolate(semantic, size=hidden.shape[-2:], mode="bilinear", align_corners=False)
            hidden = torch.cat([hidden, semantic], dim=1)
        return F.normalize(self.head(hidden), dim=1)
