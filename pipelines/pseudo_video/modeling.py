"""An image generator and its pseudo-video counterpart with the same backbone (Chen et al. 2024).

Choice of model. The paper's framework takes *any* image generative model, turns it into a video model
and trains that on pseudo videos whose last frame is the image. We need a model that (a) trains in
minutes on one CPU thread at 8x8 / 16x16, (b) is the same network, with the same parameter count, in
its image-only and video forms, and (c) can model transitions that are not Gaussian (the rich
degradations lose information deterministically: deblurring or unmasking has many answers). So the
backbone is a small conditional generator trained with conditional Implicit Maximum Likelihood
Estimation (cIMLE; Li & Malik 2018, Li et al. 2020):

    PseudoVideoGenerator(frame x_k, level s_k, latent z) -> a sample x_hat of the clean image

and for each training image the best of `num_candidates` latents (the generated x_hat closest to the
image) is pulled onto it with a squared error. Drawing z gives diverse, sharp samples from one step,
with no discriminator and no encoder, so all three modes share one objective and one network.

How it maps to the paper:

- image-only model: the two-frame pseudo video (pure noise, image): x = G(noise, s=1, z), one step;
- video model: frames x_0 (pure noise, or the fully degraded constant frame) -> x_1 -> ... -> x_{T-1}.
  Frame k+1 is drawn from p(x_{k+1} | x_k) = E_z q(x_{k+1} | x_k, x_hat = G(x_k, s_k, z)):
  "markov": the Gaussian posterior of the noising chain (with x_hat a *sample* of p(x | x_k) rather
  than DDPM's posterior mean, the T-step reverse chain is exact even for few, large steps);
  "rich" (mixture of downsampling, masking and colour fading): Cold Diffusion's update
  x_{k+1} = x_k - D(x_hat, s_k) + D(x_hat, s_{k+1}) with the video's mask order. The last frame is
  the image. Training supervises every intermediate state: for a random frame k of the image's pseudo
  video, G(x_k, s_k, z*) must reach the image - the self-supervision of intermediate states the paper
  credits for the gain. Same parameters, same objective, same number of optimiser steps and network
  evaluations per step in all three modes; only the pseudo video differs.

Shapes: frames (B, C, H, W) in [-1, 1]; levels (B,) in [0, 1]; latents (B, latent_dim).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin, SchedulerMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from .builders import (
    CONSTANT_START_KINDS,
    alpha_bar,
    degrade,
    degrade_per_sample,
    frame_levels,
    markov_marginal,
    markov_posterior_step,
    sample_mask_order,
)

MODES = ("image", "markov", "rich")
SCHEDULE_KINDS = ("image", "markov", *CONSTANT_START_KINDS)


def level_embedding(levels: torch.Tensor, dim: int) -> torch.Tensor:
    """levels (B,) in [0, 1] -> sinusoidal features (B, dim)."""
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, device=levels.device) * (-math.log(1000.0) / max(half - 1, 1)))
    angles = levels[:, None].float() * 1000.0 * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class _FiLMBlock(nn.Module):
    """Residual block: GroupNorm -> FiLM from the condition -> SiLU -> 3x3 conv, twice."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        groups = math.gcd(8, channels)
        self.norm1, self.norm2 = nn.GroupNorm(groups, channels), nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * channels)

    def forward(self, hidden: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        out = self.conv1(F.silu(self.norm1(hidden) * (1 + scale) + shift))
        out = self.conv2(F.silu(self.norm2(out)))
        return hidden + out


class PseudoVideoGenerator(ModelMixin, ConfigMixin):
    """(frame (B, C, H, W), level (B,), latent (B, latent_dim)) -> a clean-image sample (B, C, H, W).

    A two-scale U-Net: a 3x3 conv in; `blocks` FiLM residual blocks at full resolution; a stride-2 conv
    to 2*width channels at half resolution, where the latent and level also enter *spatially* (a linear
    map to a (width, H/2, W/2) grid: with a constant input frame this is how z draws a picture); `blocks`
    blocks there; a transposed conv back up, concatenated with the full-resolution skip; one block and a
    3x3 conv out. The output is the frame plus a predicted residual, unbounded (samplers clamp)."""

    @register_to_config
    def __init__(
        self,
        image_size: int = 8,
        in_channels: int = 1,
        width: int = 32,
        blocks: int = 1,
        latent_dim: int = 16,
        level_dim: int = 16,
    ) -> None:
        super().__init__()
        if image_size < 2 or image_size % 2:
            raise ValueError(f"image_size must be an even number >= 2, got {image_size}.")
        if width < 1 or blocks < 1 or latent_dim < 1 or level_dim < 2 or level_dim % 2:
            raise ValueError("width, blocks and latent_dim must be positive, level_dim even and >= 2.")
        cond_dim = 4 * width
        half = image_size // 2
        self.cond = nn.Sequential(
            nn.Linear(latent_dim + level_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim), nn.SiLU()
        )
        self.inp = nn.Conv2d(in_channels, width, 3, padding=1)
        self.high = nn.ModuleList(_FiLMBlock(width, cond_dim) for _ in range(blocks))
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.spatial = nn.Linear(cond_dim, 2 * width * half * half)
        self.low = nn.ModuleList(_FiLMBlock(2 * width, cond_dim) for _ in range(blocks))
        self.up = nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1)
        self.merge = nn.Conv2d(2 * width, width, 1)
        self.out_block = _FiLMBlock(width, cond_dim)
        self.out = nn.Conv2d(width, in_channels, 3, padding=1)

    def forward(self, frame: torch.Tensor, level: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        if frame.shape[-2:] != (size, size):
            raise ValueError(
                f"This model makes {size}x{size} images; got frames of {tuple(frame.shape[-2:])}."
            )
        cond = self.cond(torch.cat([latent, level_embedding(level, self.config.level_dim)], dim=1))  # (B, 4w)
        hidden = self.inp(frame)  # (B, w, H, W)
        for block in self.high:
            hidden = block(hidden, cond)
        skip = hidden
        hidden = self.down(hidden)  # (B, 2w, H/2, W/2)
        hidden = hidden + self.spatial(cond).view_as(hidden)
        for block in self.low:
            hidden = block(hidden, cond)
        hidden = self.merge(torch.cat([self.up(hidden), skip], dim=1))  # (B, w, H, W)
        hidden = self.out_block(hidden, cond)
        return frame + self.out(F.silu(hidden))


class PseudoVideoScheduler(SchedulerMixin, ConfigMixin):
    """How pseudo videos are made (training) and walked (sampling), Diffusers-scheduler style.

    kind: "image" (two frames: noise, image), "markov" (Gaussian chain) or a rich degradation whose
    fully degraded frame is constant ("mixture", "mask", "fade"); num_frames: frames of the trained
    pseudo video (sampling may use another count: levels are continuous)."""

    config_name = "scheduler_config.json"

    @register_to_config
    def __init__(self, kind: str = "markov", num_frames: int = 8) -> None:
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"kind must be one of {SCHEDULE_KINDS}, got {kind!r}.")
        if kind == "image" and num_frames != 2:
            raise ValueError(
                "The image-only model is the two-frame pseudo video (noise, image): num_frames=2."
            )
        frame_levels(num_frames)  # validates num_frames

    @property
    def gaussian(self) -> bool:
        return self.config.kind in ("image", "markov")

    def levels(self, num_frames: int | None = None) -> torch.Tensor:
        """(T,) levels of the frames, 1 (frame 0) to 0 (the image)."""
        num_frames = self.config.num_frames if num_frames is None else num_frames
        if self.config.kind == "image" and num_frames != 2:
            raise ValueError(
                f"The image-only model makes one step (num_frames=2), got num_frames={num_frames}."
            )
        return frame_levels(num_frames)

    def training_frames(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For clean images (B, C, H, W): a random non-final frame of each one's pseudo video and its
        level: ((B, C, H, W), (B,)). Randomness is drawn on the CPU from `generator`."""
        batch = clean.shape[0]
        levels = self.levels()[:-1]  # every frame but the image itself
        index = torch.randint(len(levels), (batch,), generator=generator)
        level = levels[index].to(clean.device)
        if self.gaussian:
            noise = torch.randn(clean.shape, generator=generator).to(clean.device, clean.dtype)
            return markov_marginal(clean, level, noise), level
        order = sample_mask_order(batch, *clean.shape[-2:], generator=generator).to(clean.device)
        return degrade_per_sample(clean, level, self.config.kind, order), level

    def first_frame(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        """Frame 0 of a generated pseudo video, on the CPU: N(0, I) for the Gaussian kinds, the constant
        fully degraded frame (zeros) otherwise."""
        if self.gaussian:
            return torch.randn(shape, generator=generator)
        return torch.zeros(shape)

    def step(
        self,
        frame: torch.Tensor,
        clean_sample: torch.Tensor,
        level: float,
        next_level: float,
        noise: torch.Tensor | None = None,
        mask_order: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frame at `next_level` from the frame at `level` and the generator's clean-image sample.
        Gaussian kinds use `noise` (like frame) for the posterior; rich kinds the video's `mask_order`.
        At next_level 0 the result is the image."""
        if self.gaussian:
            return markov_posterior_step(frame, clean_sample, level, next_level, noise)
        kind = self.config.kind
        if next_level == 0:
            # Cold Diffusion's update ends at x_hat plus what x_hat failed to explain about the frame.
            return frame - degrade(clean_sample, level, kind, mask_order) + clean_sample
        return (
            frame
            - degrade(clean_sample, level, kind, mask_order)
            + degrade(clean_sample, next_level, kind, mask_order)
        )

    def __len__(self) -> int:
        return self.config.num_frames


def scheduler_for_mode(mode: str, num_frames: int) -> PseudoVideoScheduler:
    """ "image" -> the two-frame (noise, image) video; "markov" -> Gaussian chain; "rich" -> mixture."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if mode == "image":
        return PseudoVideoScheduler("image", 2)
    return PseudoVideoScheduler("markov" if mode == "markov" else "mixture", num_frames)


def imle_loss(
    model: nn.Module,
    frame: torch.Tensor,
    level: torch.Tensor,
    clean: torch.Tensor,
    num_candidates: int,
    latent_dim: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Conditional IMLE: for each frame (B, C, H, W) draw `num_candidates` latents, keep the one whose
    sample lands closest to the clean image (B, C, H, W) and return the mean squared error of that sample
    (a scalar, with gradients through the chosen sample only)."""
    if num_candidates < 1:
        raise ValueError(f"num_candidates must be at least 1, got {num_candidates}.")
    batch = clean.shape[0]
    latents = torch.randn(batch, num_candidates, latent_dim, generator=generator).to(
        clean.device, clean.dtype
    )
    if num_candidates > 1:
        with torch.no_grad():
            candidates = model(
                frame.repeat_interleave(num_candidates, 0),
                level.repeat_interleave(num_candidates, 0),
                latents.flatten(0, 1),
            ).unflatten(0, (batch, num_candidates))  # (B, m, C, H, W)
            distance = (candidates - clean[:, None]).square().flatten(2).mean(2)  # (B, m)
            best = distance.argmin(dim=1)
        chosen = latents[torch.arange(batch, device=clean.device), best]  # (B, latent_dim)
    else:
        chosen = latents[:, 0]
    return F.mse_loss(model(frame, level, chosen), clean)


@torch.no_grad()
def generate(
    model: PseudoVideoGenerator,
    scheduler: PseudoVideoScheduler,
    first_frames: torch.Tensor,
    latents: torch.Tensor,
    noises: torch.Tensor | None,
    mask_orders: torch.Tensor | None,
    num_frames: int | None = None,
) -> torch.Tensor:
    """Run the video model: first_frames (B, C, H, W), latents (T-1, B, latent_dim), noises (T-1, B, C, H, W)
    for the Gaussian kinds, mask_orders (B, 1, H, W) for "mask"/"mixture" -> pseudo videos
    (B, T, C, H, W), clean-image samples clamped to [-1, 1]; the last frame is the image."""
    levels = scheduler.levels(num_frames).tolist()
    frame = first_frames
    frames = [frame]
    for k in range(len(levels) - 1):
        level = torch.full((frame.shape[0],), levels[k], device=frame.device)
        clean = model(frame, level, latents[k]).clamp(-1, 1)
        frame = scheduler.step(
            frame, clean, levels[k], levels[k + 1], None if noises is None else noises[k], mask_orders
        )
        frames.append(frame.clamp(-1, 1) if k == len(levels) - 2 else frame)
    return torch.stack(frames, dim=1)


__all__ = [
    "MODES",
    "PseudoVideoGenerator",
    "PseudoVideoScheduler",
    "alpha_bar",
    "generate",
    "imle_loss",
    "level_embedding",
    "scheduler_for_mode",
]
