"""The three networks of TGAN (Saito, Matsumoto and Saito, "Temporal Generative Adversarial Nets with
Singular Value Clipping", ICCV 2017).

A video is made from one latent z0 ("slow", one per video):

- `TGANTemporalGenerator` turns z0 into T per-frame latents z1(t) ("fast") with 1-D transposed
  convolutions along time, so neighbouring frames get related latents;
- `TGANImageGenerator` renders frame t from (z0, z1(t)) with 2-D transposed convolutions;
- `TGANCritic` scores a whole clip with 3-D convolutions (a WGAN critic: no sigmoid).

Layer sizes follow the paper's Moving MNIST models (z dims 100, 64x64 grey frames, 16 frames) and
are all configurable, so tests can build tiny ones. Weights start uniform in [-init_scale, init_scale]
as in the authors' release; batch norm everywhere except the critic's first and last layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

FRAME_MOTIONS = ("latent", "translation")  # how the per-frame latent changes a frame (TGANImageGenerator)


def _uniform_init(module: nn.Module, scale: float) -> None:
    """Conv / linear weights uniform in [-scale, scale], biases zero (batch norm keeps its defaults)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
            nn.init.uniform_(layer.weight, -scale, scale)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def _doublings(size: int, base: int, what: str) -> int:
    """How many times `base` doubles to reach `size`; ValueError unless size = base * 2**n."""
    count = round(math.log2(size / base)) if size >= base else -1
    if count < 0 or base * 2**count != size:
        raise ValueError(f"{what} must be {base} times a power of two, got {size}.")
    return count


def sample_slow_latents(
    num: int,
    dim: int,
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """z0 ~ U(-1, 1)^dim, as in the paper: (num, dim). A list of generators gives one row each."""
    if isinstance(generator, list):
        if len(generator) != num:
            raise ValueError(f"Got {len(generator)} generators for {num} videos; pass one per video.")
        rows = [sample_slow_latents(1, dim, g, device, dtype) for g in generator]
        return torch.cat(rows)
    sample_device = generator.device if generator is not None else torch.device(device)
    uniform = torch.rand(num, dim, generator=generator, device=sample_device, dtype=torch.float32)
    return (uniform * 2 - 1).to(device=device, dtype=dtype)


class TGANTemporalGenerator(ModelMixin, ConfigMixin):
    """z0 (B, z_slow_dim) -> per-frame latents z1 (B, frames, z_fast_dim) in [-1, 1].

    z0 is a length-1 sequence with z_slow_dim channels; a transposed conv of kernel `frames / 2**n`
    makes it that long, then n = len(channels) stride-2 transposed convs double it to `frames`
    (the paper: 1 -> 2 -> 4 -> 8 -> 16). `latents_at` samples z1 at fractional times.
    """

    @register_to_config
    def __init__(
        self,
        frames: int = 16,
        z_slow_dim: int = 100,
        z_fast_dim: int = 100,
        channels: tuple[int, ...] = (512, 256, 128, 128),
        init_scale: float = 0.01,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one hidden width.")
        upsamplings = len(channels)
        if frames < 1 or frames % 2**upsamplings:
            raise ValueError(
                f"frames must be a positive multiple of 2**len(channels) = {2**upsamplings}, got {frames}; "
                "give fewer channels for short clips."
            )
        base_length = frames // 2**upsamplings
        layers: list[nn.Module] = [
            nn.ConvTranspose1d(z_slow_dim, channels[0], base_length),  # (B, c0, base_length)
            nn.BatchNorm1d(channels[0]),
            nn.ReLU(),
        ]
        for in_channels, out_channels in zip(channels[:-1], channels[1:], strict=True):
            layers += [
                nn.ConvTranspose1d(in_channels, out_channels, 4, 2, 1),  # length x2
                nn.BatchNorm1d(out_channels),
                nn.ReLU(),
            ]
        layers += [nn.ConvTranspose1d(channels[-1], z_fast_dim, 4, 2, 1), nn.Tanh()]  # (B, z_fast, frames)
        self.layers = nn.Sequential(*layers)
        _uniform_init(self, init_scale)

    def forward(self, z_slow: torch.Tensor) -> torch.Tensor:
        """z_slow (B, z_slow_dim) -> z_fast (B, frames, z_fast_dim)."""
        return self.layers(z_slow[:, :, None]).transpose(1, 2)

    def latents_at(self, z_slow: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """z_slow (B, z_slow_dim), times (N,) fractional frame indices in [0, frames - 1] ->
        (B, N, z_fast_dim): the per-frame latents linearly interpolated in time (frame interpolation)."""
        frames = self.config.frames
        times = torch.as_tensor(times, dtype=torch.float32, device=z_slow.device)
        if times.ndim != 1 or not torch.isfinite(times).all():
            raise ValueError("times must be a 1-D tensor of finite frame indices.")
        if len(times) and (times.min() < 0 or times.max() > frames - 1):
            raise ValueError(f"times must lie in [0, {frames - 1}], got [{times.min()}, {times.max()}].")
        latents = self(z_slow)  # (B, frames, z_fast)
        lower = times.floor().long().clamp(0, frames - 1)
        upper = (lower + 1).clamp(max=frames - 1)
        weight = (times - lower).to(latents.dtype)[None, :, None]  # (1, N, 1)
        return torch.lerp(latents[:, lower], latents[:, upper], weight)


class TGANImageGenerator(ModelMixin, ConfigMixin):
    """(z0 (N, z_slow_dim), z1 (N, z_fast_dim)) -> frames (N, out_channels, size, size) in [-1, 1].

    Each latent goes through a linear layer to base_channels/2 maps of bottom_width^2; the two halves are
    concatenated and upsampled by stride-2 transposed convs (channels halve each time) to image_size,
    then a 3x3 transposed conv and tanh give the frame.

    `slow_every_layer` (ours, not the paper's) also conditions every upsampling layer on z0: after its batch
    norm, features are scaled and shifted per channel by linear maps of z0 (FiLM, Perez et al. 2018), so
    the clip's one slow latent reaches the fine layers that draw the digit's shape, not only the first.

    `frame_motion` says how z1(t) changes a frame. "latent" (the paper): z1(t) is half of the drawing's
    input, so it may change anything, the digit's shape included. "translation" (ours, not the paper's):
    z0 alone draws the clip's frame (all base_channels maps come from z0), and z1(t) only shifts it, by a
    linear map and tanh to at most `max_shift` of the frame's half-width per axis (`translate`; the area
    shifted in is black). What a clip shows is then fixed by z0 and cannot drift from frame to frame; a
    subject that deforms, turns or is occluded is out of its reach (right for bouncing digits and camera
    pans, not for people walking). A clip's frame is drawn once, not once per frame.
    """

    @register_to_config
    def __init__(
        self,
        z_slow_dim: int = 100,
        z_fast_dim: int = 100,
        image_size: int = 64,
        out_channels: int = 1,
        base_channels: int = 512,
        bottom_width: int = 4,
        init_scale: float = 0.01,
        slow_every_layer: bool = False,
        frame_motion: str = "latent",
        max_shift: float = 1.0,
    ) -> None:
        super().__init__()
        if frame_motion not in FRAME_MOTIONS:
            raise ValueError(f"frame_motion must be one of {FRAME_MOTIONS}, got {frame_motion!r}.")
        upsamplings = _doublings(image_size, bottom_width, "image_size")
        if base_channels % 2 ** (upsamplings + 1):
            raise ValueError(
                f"base_channels must be divisible by {2 ** (upsamplings + 1)} (halved {upsamplings} times "
                f"and split between z0 and z1), got {base_channels}."
            )
        # Maps of bottom_width^2 drawn from z0: half of the input, or all of it when z1 only shifts the frame.
        slow_maps = base_channels if frame_motion == "translation" else base_channels // 2
        self.slow = nn.Sequential(
            nn.Linear(z_slow_dim, slow_maps * bottom_width**2, bias=False),
            nn.BatchNorm1d(slow_maps * bottom_width**2),
        )
        if frame_motion == "translation":
            self.fast = nn.Sequential(nn.Linear(z_fast_dim, 2), nn.Tanh())  # (x, y) shift in [-1, 1]
        else:
            fast_units = (base_channels - slow_maps) * bottom_width**2
            self.fast = nn.Sequential(
                nn.Linear(z_fast_dim, fast_units, bias=False), nn.BatchNorm1d(fast_units)
            )
        layers: list[nn.Module] = []
        channels = base_channels
        for _ in range(upsamplings):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),  # size x2
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, out_channels, 3, 1, 1), nn.Tanh()]
        self.upsample = nn.Sequential(*layers)
        # Per upsampling layer, z0 -> (scale, shift) of its channels, near (0, 0) at the small initialisation.
        self.slow_modulation = nn.ModuleList(
            [nn.Linear(z_slow_dim, 2 * base_channels // 2 ** (i + 1)) for i in range(upsamplings)]
            if slow_every_layer
            else []
        )
        _uniform_init(self, init_scale)

    def forward(self, z_slow: torch.Tensor, z_fast: torch.Tensor) -> torch.Tensor:
        """z_slow (N, z_slow_dim) and z_fast (N, z_fast_dim) -> frames (N, out_channels, size, size); or a
        clip's z_fast (N, T, z_fast_dim) -> clips (N, T, out_channels, size, size)."""
        if self.config.frame_motion == "translation":
            drawn = self.draw(z_slow)  # (N, C, H, W): one drawing per clip, shifted per frame
            if z_fast.ndim == 3:
                drawn = drawn[:, None].expand(-1, z_fast.shape[1], -1, -1, -1)  # (N, T, C, H, W)
            return translate(drawn, self.fast(z_fast) * self.config.max_shift)
        if z_fast.ndim == 3:
            frames = z_fast.shape[1]
            z_slow = z_slow[:, None].expand(-1, frames, -1).flatten(0, 1)  # (N*T, z_slow)
            return self(z_slow, z_fast.flatten(0, 1)).unflatten(0, (-1, frames))
        width = self.config.bottom_width
        slow = F.relu(self.slow(z_slow)).unflatten(1, (-1, width, width))  # (N, base/2, w, w)
        fast = F.relu(self.fast(z_fast)).unflatten(1, (-1, width, width))  # (N, base/2, w, w)
        return self._upsample(torch.cat([slow, fast], dim=1), z_slow)

    def draw(self, z_slow: torch.Tensor) -> torch.Tensor:
        """frame_motion "translation": z_slow (N, z_slow_dim) -> the clip's unshifted frame (N, C, H, W)."""
        width = self.config.bottom_width
        slow = F.relu(self.slow(z_slow)).unflatten(1, (-1, width, width))  # (N, base, w, w)
        return self._upsample(slow, z_slow)

    def _upsample(self, features: torch.Tensor, z_slow: torch.Tensor) -> torch.Tensor:
        """(N, base_channels, w, w) -> (N, out_channels, image_size, image_size), FiLM from z_slow if set."""
        if not self.slow_modulation:
            return self.upsample(features)
        layers = list(self.upsample)
        for index, modulation in enumerate(self.slow_modulation):
            convolution, norm, activation = layers[3 * index : 3 * index + 3]
            scale, shift = modulation(z_slow)[:, :, None, None].chunk(2, dim=1)  # (N, C, 1, 1) each
            features = activation(norm(convolution(features)) * (1 + scale) + shift)
        for layer in layers[3 * len(self.slow_modulation) :]:  # the last conv and tanh
            features = layer(features)
        return features


def translate(frames: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """frames (..., C, H, W) in [-1, 1], shifts (..., 2) as (x, y) in units of the half-width / half-height
    (so 1 moves a frame by half its size) -> the frames moved by them, black (-1) where nothing was.
    Bilinear, so the shift is differentiable and sub-pixel."""
    batch_shape, (channels, height, width) = frames.shape[:-3], frames.shape[-3:]
    frames, shifts = frames.reshape(-1, channels, height, width), shifts.reshape(-1, 2)
    # The output pixel at p reads the input at p - shift (affine_grid's normalised coordinates).
    theta = torch.zeros(len(shifts), 2, 3, dtype=frames.dtype, device=frames.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = -shifts
    grid = F.affine_grid(theta, [len(frames), channels, height, width], align_corners=False)
    # Zero padding outside the frame, applied to frames + 1, so what is shifted in is -1 (black).
    moved = F.grid_sample(frames + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    return moved.reshape(*batch_shape, channels, height, width)


def generate_videos(
    temporal_generator: TGANTemporalGenerator,
    image_generator: TGANImageGenerator,
    z_slow: torch.Tensor,
    times: torch.Tensor | None = None,
) -> torch.Tensor:
    """z_slow (B, z_slow_dim) -> videos (B, T, C, H, W) in [-1, 1]. `times` (T,) samples the temporal
    latent at fractional frame indices; None gives the trained frames."""
    if times is None:
        z_fast = temporal_generator(z_slow)  # (B, T, z_fast)
    else:
        # Under DistributedDataParallel the method lives on the wrapped module.
        z_fast = getattr(temporal_generator, "module", temporal_generator).latents_at(z_slow, times)
    return image_generator(z_slow, z_fast)  # (B, T, C, H, W)


class TGANCritic(ModelMixin, ConfigMixin):
    """Clips (B, C, T, H, W) in [-1, 1] -> scores (B,): the WGAN critic (no sigmoid).

    Stride-2 3-D convs (4x4x4) double the channels and halve time and space until space is 4x4
    (once time is down to 1 frame, the time kernel shrinks to 1); leaky ReLU, batch norm after every
    conv but the first. A last conv spanning the remaining (t, 4, 4) gives one score per clip.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        frames: int = 16,
        image_size: int = 64,
        base_channels: int = 64,
        init_scale: float = 0.01,
    ) -> None:
        super().__init__()
        downsamplings = _doublings(image_size, 4, "image_size")
        if downsamplings < 1:
            raise ValueError(f"image_size must be at least 8, got {image_size}.")
        if frames < 1:
            raise ValueError(f"frames must be positive, got {frames}.")
        layers: list[nn.Module] = []
        channels, length = in_channels, frames
        for index in range(downsamplings):
            out_channels = base_channels * 2**index
            # Halve time while there is time left; then 1-frame kernels, which see exactly that frame.
            time_kernel, time_stride, time_pad = (4, 2, 1) if length >= 2 else (1, 1, 0)
            layers.append(
                nn.Conv3d(
                    channels,
                    out_channels,
                    (time_kernel, 4, 4),
                    (time_stride, 2, 2),
                    (time_pad, 1, 1),
                    bias=index == 0,  # batch norm's shift replaces the bias
                )
            )
            if index > 0:
                layers.append(nn.BatchNorm3d(out_channels))
            layers.append(nn.LeakyReLU(0.2))
            channels, length = out_channels, length // time_stride
        self.features = nn.Sequential(*layers)  # (B, channels, length, 4, 4)
        self.score = nn.Conv3d(channels, 1, (length, 4, 4))  # (B, 1, 1, 1, 1)
        _uniform_init(self, init_scale)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        """videos (B, C, T, H, W) -> (B,) unbounded scores (higher = more real)."""
        return self.score(self.features(videos)).flatten()
