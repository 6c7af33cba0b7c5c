"""Pseudo-video builders: sequences of frames that start degraded and end EXACTLY at the clean image.

Chen et al. 2024 ("Your Image is Secretly the Last Frame of a Pseudo Video") train an image generator
as the last frame of a pseudo video whose earlier frames are degradations of the image. Here a pseudo
video of `T` frames is indexed k = 0 .. T-1 with a degradation *level* s_k = 1 - k / (T - 1): frame 0
is fully degraded (s = 1), frame T-1 is the clean image (s = 0), returned bit for bit.

Images are float tensors (B, C, H, W) in [-1, 1]; videos are (B, T, C, H, W).

- First-order Markov (diffusion-like): `markov_pseudo_video` runs the Gaussian chain
  x_k = sqrt(a_k) x_{k+1} + sqrt(1 - a_k) eps_k backwards from the image, with a cosine schedule whose
  cumulative product abar(s) = cos(pi s / 2)^2 is exactly 0 at s = 1 (frame 0 is pure N(0, I) noise)
  and exactly 1 at s = 0. `markov_marginal` is the closed form q(x_k | x) used in training,
  `markov_posterior_step` the Gaussian q(x_{k+1} | x_k, x) used in sampling.
- Richer, non-Markov sequences: every frame is a deterministic function of the clean image and of
  state drawn once per video (the pixel order of the mask), `degrade(x, s, kind, mask_order)`:
  "blur" (Gaussian blur, sigma grows with s), "downsample" (area-downsampled to a resolution that
  shrinks geometrically to 1x1, bilinear back), "mask" (pixels switch off in the video's random
  order, all off at s = 1), "fade" (colour fades to grey, then contrast to mid-grey 0), and
  "mixture" (downsample, then mask, then fade, at the same level). Frames do not follow a Gaussian
  chain: consecutive frames share the video's blur path and mask, and what frame k+1 adds is image
  content, not noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

RICH_KINDS = ("blur", "downsample", "mask", "fade", "mixture")
BUILDER_KINDS = ("markov", *RICH_KINDS)
# Kinds whose fully degraded frame (s = 1) is the same for every image, so a generator can start from it.
CONSTANT_START_KINDS = ("mask", "fade", "mixture")


def frame_levels(num_frames: int) -> torch.Tensor:
    """Degradation level of each frame, (T,) float32 from 1 (frame 0) down to exactly 0 (frame T-1)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 2:
        raise ValueError(
            f"A pseudo video needs num_frames >= 2 (a degraded start and the image), got {num_frames!r}."
        )
    levels = 1.0 - torch.arange(num_frames, dtype=torch.float64) / (num_frames - 1)
    return levels.float()


def _per_sample(level: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """A level (scalar or (B,)) as a float32 tensor (B,) on `device`, checked to lie in [0, 1]."""
    level = torch.as_tensor(level, dtype=torch.float32, device=device)
    level = level.expand(batch) if level.ndim == 0 else level
    if level.shape != (batch,):
        raise ValueError(f"level must be a scalar or have shape ({batch},), got {tuple(level.shape)}.")
    if (level < 0).any() or (level > 1).any():
        raise ValueError("levels must lie in [0, 1].")
    return level


# --- first-order Markov Gaussian noising ----------------------------------------------------------


def alpha_bar(level: torch.Tensor) -> torch.Tensor:
    """Cosine schedule abar(s) = cos(pi s / 2)^2, exactly 1 at s = 0 and exactly 0 at s = 1."""
    value = torch.cos(level * (math.pi / 2)) ** 2
    value = torch.where(level >= 1, torch.zeros_like(value), value)
    return torch.where(level <= 0, torch.ones_like(value), value)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def markov_marginal(x: torch.Tensor, level: torch.Tensor | float, noise: torch.Tensor) -> torch.Tensor:
    """q(x_s | x) = N(sqrt(abar) x, (1 - abar) I): x (B, C, H, W), level scalar or (B,), noise like x."""
    abar = alpha_bar(_per_sample(level, x.shape[0], x.device))
    return _expand(abar.sqrt(), x) * x + _expand((1 - abar).sqrt(), x) * noise


def markov_pseudo_video(
    x: torch.Tensor, num_frames: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x (B, C, H, W) -> (B, T, C, H, W): a first-order Markov Gaussian chain run from the image
    (frame T-1, exactly x) back to frame 0 (pure noise); each frame depends only on the next one."""
    abar = alpha_bar(frame_levels(num_frames)).tolist()
    frames = [x]
    for k in range(num_frames - 2, -1, -1):
        step = abar[k] / abar[k + 1]  # a_k: how much of frame k+1 survives into frame k
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
        frames.append(math.sqrt(step) * frames[-1] + math.sqrt(1 - step) * noise)
    return torch.stack(frames[::-1], dim=1)


def markov_posterior_step(
    frame: torch.Tensor,
    clean: torch.Tensor,
    level: float,
    next_level: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """One generative step of the Markov chain: a sample of q(x_{next} | x_level = frame, x = clean), the
    Gaussian posterior (DDPM's, in this frame order). frame, clean, noise (B, C, H, W); 0 <= next_level <
    level <= 1. At next_level = 0 it returns `clean` exactly."""
    if not 0 <= next_level < level <= 1:
        raise ValueError(f"Need 0 <= next_level < level <= 1, got level={level}, next_level={next_level}.")
    abar_now = alpha_bar(torch.tensor(float(level))).item()
    abar_next = alpha_bar(torch.tensor(float(next_level))).item()
    if abar_next == 1.0:
        return clean.clone()
    step = abar_now / abar_next
    mean_clean = math.sqrt(abar_next) * (1 - step) / (1 - abar_now)
    mean_frame = math.sqrt(step) * (1 - abar_next) / (1 - abar_now)
    variance = (1 - abar_next) * (1 - step) / (1 - abar_now)
    return mean_clean * clean + mean_frame * frame + math.sqrt(variance) * noise


# --- richer deterministic degradations --------------------------------------------------------------


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of x (b, C, H, W), reflect padding (replicate for kernels wider than x)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(x.dtype)
    channels = x.shape[1]
    mode = "reflect" if radius < min(x.shape[-2:]) else "replicate"
    out = F.pad(x, (radius, radius, 0, 0), mode=mode)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode=mode)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def blur(x: torch.Tensor, level: float, max_sigma: float | None = None) -> torch.Tensor:
    """Gaussian blur with sigma = level * max_sigma (default: half the image side); level 0 is x itself."""
    if level <= 0:
        return x.clone()
    return _gaussian_blur(x, level * (max_sigma or max(x.shape[-2:]) / 2))


def downsample(x: torch.Tensor, level: float) -> torch.Tensor:
    """Area-downsample to side round(H ** (1 - level)) (geometric from H at level 0 to 1 at level 1),
    then bilinear back to (H, W): level 0 is x itself, level 1 the image's mean colour."""
    if level <= 0:
        return x.clone()
    height, width = x.shape[-2:]
    side = max(1, round(max(height, width) ** (1 - level)))
    small = F.adaptive_avg_pool2d(x, (min(side, height), min(side, width)))
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)


def mask(x: torch.Tensor, level: float, mask_order: torch.Tensor) -> torch.Tensor:
    """Pixels whose rank in `mask_order` (B, 1, H, W), uniform in [0, 1), is below `level` are set to 0
    (mid-grey): level 0 keeps every pixel, level 1 none. A video keeps one order, so the masked set only
    shrinks from frame to frame."""
    return torch.where(mask_order < level, torch.zeros_like(x), x)


def fade(x: torch.Tensor, level: float) -> torch.Tensor:
    """Colour fading: saturation goes to zero by level 1/2, and contrast to mid-grey 0 at level 1
    (exactly 0 there); level 0 is x itself."""
    if level <= 0:
        return x.clone()
    if x.shape[1] == 3:
        grey = x.mean(dim=1, keepdim=True).expand_as(x)
        x = torch.lerp(x, grey, min(1.0, 2 * level))
    return x * (1 - level)


def degrade(x: torch.Tensor, level: float, kind: str, mask_order: torch.Tensor | None = None) -> torch.Tensor:
    """x (B, C, H, W) at degradation `level` in [0, 1] under `kind` (one of RICH_KINDS). "mask" and
    "mixture" need the video's `mask_order` (B, 1, H, W). Level 0 returns x exactly."""
    if kind not in RICH_KINDS:
        raise ValueError(f"Unknown degradation {kind!r}; choose one of {RICH_KINDS}.")
    level = float(level)
    if not 0 <= level <= 1:
        raise ValueError(f"level must lie in [0, 1], got {level}.")
    if kind in ("mask", "mixture"):
        if mask_order is None or mask_order.shape != (x.shape[0], 1, *x.shape[-2:]):
            raise ValueError(
                f"{kind!r} needs mask_order of shape ({x.shape[0]}, 1, {x.shape[-2]}, {x.shape[-1]})."
            )
    if level == 0:
        return x.clone()
    if kind == "blur":
        return blur(x, level)
    if kind == "downsample":
        return downsample(x, level)
    if kind == "mask":
        return mask(x, level, mask_order)
    if kind == "fade":
        return fade(x, level)
    return fade(mask(downsample(x, level), level, mask_order), level)


def degrade_per_sample(
    x: torch.Tensor, levels: torch.Tensor, kind: str, mask_order: torch.Tensor | None = None
) -> torch.Tensor:
    """`degrade` with one level per image: x (B, C, H, W), levels (B,) -> (B, C, H, W)."""
    levels = _per_sample(levels, x.shape[0], x.device)
    out = torch.empty_like(x)
    for level in levels.unique().tolist():
        chosen = levels == level
        order = None if mask_order is None else mask_order[chosen]
        out[chosen] = degrade(x[chosen], level, kind, order)
    return out


def sample_mask_order(
    batch: int, height: int, width: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random pixel order per video: (B, 1, H, W) uniform in [0, 1) (drawn on the CPU)."""
    return torch.rand(batch, 1, height, width, generator=generator)


def rich_pseudo_video(
    x: torch.Tensor,
    num_frames: int,
    kind: str = "mixture",
    generator: torch.Generator | None = None,
    mask_order: torch.Tensor | None = None,
) -> torch.Tensor:
    """x (B, C, H, W) -> (B, T, C, H, W): frame k is `degrade(x, s_k, kind)` with one mask order per
    video (drawn from `generator` unless given). The last frame is exactly x."""
    if kind not in RICH_KINDS:
        raise ValueError(f"Unknown degradation {kind!r}; choose one of {RICH_KINDS}.")
    if mask_order is None and kind in ("mask", "mixture"):
        mask_order = sample_mask_order(x.shape[0], *x.shape[-2:], generator=generator).to(x.device)
    frames = [degrade(x, level, kind, mask_order) for level in frame_levels(num_frames).tolist()]
    frames[-1] = x.clone()  # level 0: already x; stated so the end point never depends on float rounding
    return torch.stack(frames, dim=1)


def build_pseudo_video(
    x: torch.Tensor, kind: str, num_frames: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x (B, C, H, W) -> its pseudo video (B, T, C, H, W) of `kind` ("markov" or one of RICH_KINDS)."""
    if kind == "markov":
        return markov_pseudo_video(x, num_frames, generator)
    if kind in RICH_KINDS:
        return rich_pseudo_video(x, num_frames, kind, generator)
    raise ValueError(f"Unknown pseudo-video kind {kind!r}; choose one of {BUILDER_KINDS}.")
