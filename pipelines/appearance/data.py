"""Pre-training data for the Hero stage: random edits of offline photos, made into proxy pairs.

A proxy pair is an image and an edit of it moved along one random camera path or pan
(`finetune.random_proxy_clip`): frame 0 is the anchor (original and edited), the later frames are
targets whose true edited version is known. Per-video fine-tuning (`finetune.py`) makes them from the
user's own anchor and edit; pre-training (`train.py`) from random edits (`random_edit_function`) of
many offline photos (`ProxyPairs`). The edits cover what users do in an image editor: recolour one
colour range ("reds to blue"), recolour a region, grade the whole image, paint a pattern on a region.
In pre-training, half the clips also change their light from frame to frame (`photometric_jitter`:
exposure, white balance, sensor noise), as real footage does, and the same edit is applied to each
frame as it is: so the later frames hold colours the anchor's local colour maps were not fitted on,
which is where the Zero stage errs on real video and the Hero stage has to learn to correct it.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..core.colour import lab_to_rgb, rgb_to_lab
from ..core.resize import resize
from ..core.video import IMAGE_EXTENSIONS
from ..data.images import load_rgb, to_tensor
from .finetune import random_proxy_clip

EDIT_KINDS = ("colour_range", "region", "grade", "texture")


# -- edits ------------------------------------------------------------------------------------------


def blob_mask(height: int, width: int, rng: random.Random) -> torch.Tensor:
    """A soft ellipse (1, H, W) in [0, 1] covering 5-30 % of the image, its edge a few pixels wide."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    centre_x, centre_y = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)
    radius_x, radius_y = rng.uniform(0.2, 0.55), rng.uniform(0.2, 0.55)
    angle = rng.uniform(0, math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    u = ((xx - centre_x) * cos + (yy - centre_y) * sin) / radius_x
    v = (-(xx - centre_x) * sin + (yy - centre_y) * cos) / radius_y
    distance = torch.sqrt(u * u + v * v)
    softness = rng.uniform(0.02, 0.15)
    return ((1 + softness - distance) / (2 * softness)).clamp(0, 1)[None]


def recolour_lab(lab: torch.Tensor, angle: float, chroma: float, lightness: float) -> torch.Tensor:
    """Lab (3, H, W): rotate ab by `angle`, scale it by `chroma`, shift L by `lightness`."""
    cos, sin = math.cos(angle), math.sin(angle)
    a, b = lab[1], lab[2]
    return torch.stack(
        [(lab[0] + lightness).clamp(0, 100), chroma * (cos * a - sin * b), chroma * (sin * a + cos * b)]
    )


def stripes(height: int, width: int, rng: random.Random) -> torch.Tensor:
    """A two-colour pattern (3, H, W): stripes or a checkerboard at a random angle and period."""
    yy, xx = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    angle, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
    u = (xx * math.cos(angle) + yy * math.sin(angle)) / period
    pattern = (torch.sin(2 * math.pi * u) > 0).float()
    if rng.random() < 0.5:
        w = (-xx * math.sin(angle) + yy * math.cos(angle)) / period
        pattern = (pattern + (torch.sin(2 * math.pi * w) > 0).float()) % 2
    first, second = torch.rand(3, 1, 1), torch.rand(3, 1, 1)
    return first * pattern + second * (1 - pattern)


def random_edit_function(
    image: torch.Tensor, rng: random.Random, kind: str | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A random edit of one of `EDIT_KINDS`, its parameters (colour key, region, pattern, grade) drawn
    once from `image` (3, H, W) RGB in [0, 1]: a function that applies that same edit to `image` or to
    any (3, H, W) frame of the same size, e.g. `image` under other light."""
    kind = kind or rng.choice(EDIT_KINDS)
    height, width = image.shape[-2:]
    lab = rgb_to_lab(image[None])[0]
    angle = rng.uniform(0.5, math.pi) * rng.choice((-1, 1))
    chroma, lightness = rng.uniform(0.6, 1.6), rng.uniform(-15, 15)
    if kind == "colour_range":  # recolour the pixels near one colour, as a hue-selective tool does
        y, x = rng.randrange(height), rng.randrange(width)
        key = lab[1:, y, x][:, None, None]
        spread = rng.uniform(12, 30)
        # A grey key would select every grey pixel: push chroma instead.
        push = torch.zeros(2, 1, 1)
        if key.norm() < 8:
            push = torch.tensor([rng.uniform(-40, 40), rng.uniform(-40, 40)])[:, None, None]

        def colour_range(frame: torch.Tensor) -> torch.Tensor:
            frame_lab = rgb_to_lab(frame[None])[0]
            weight = torch.exp(-((frame_lab[1:] - key) ** 2).sum(0, keepdim=True) / (2 * spread**2))
            frame_lab = torch.cat([frame_lab[:1], frame_lab[1:] + push])
            edited = lab_to_rgb(recolour_lab(frame_lab, angle, chroma, lightness)[None])[0]
            return weight * edited + (1 - weight) * frame

        return colour_range
    if kind == "region":
        mask = blob_mask(height, width, rng)
        shift = torch.tensor([rng.uniform(-30, 30), rng.uniform(-30, 30)])[:, None, None]

        def region(frame: torch.Tensor) -> torch.Tensor:
            frame_lab = rgb_to_lab(frame[None])[0]
            frame_lab = torch.cat([frame_lab[:1], frame_lab[1:] + shift])
            edited = lab_to_rgb(recolour_lab(frame_lab, angle, chroma, lightness)[None])[0]
            return mask * edited + (1 - mask) * frame

        return region
    if kind == "grade":
        matrix = torch.eye(3) + torch.empty(3, 3).uniform_(-0.15, 0.15)
        offset = torch.empty(3, 1, 1).uniform_(-0.06, 0.06)
        exponent = rng.uniform(0.75, 1.35)
        return lambda frame: (torch.einsum("ij,jhw->ihw", matrix, frame) + offset).clamp(0, 1) ** exponent
    if kind == "texture":  # paint a pattern on a region, keeping the region's shading
        mask = blob_mask(height, width, rng) * rng.uniform(0.6, 1.0)
        pattern = stripes(height, width, rng)

        def texture(frame: torch.Tensor) -> torch.Tensor:
            luminance = rgb_to_lab(frame[None])[0, :1]
            shading = luminance / luminance.mean().clamp(min=1.0)
            return mask * (pattern * shading.clamp(0.3, 1.7)).clamp(0, 1) + (1 - mask) * frame

        return texture
    raise ValueError(f"Unknown edit kind {kind!r}; choose one of {EDIT_KINDS}.")


def photometric_jitter(image: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """`image` (3, H, W) RGB in [0, 1] under slightly other light, as the next frames of a real shot
    see it: exposure (x0.85-1.15), tone (gamma 0.9-1.1), white balance (+-4 % per channel) and sensor
    noise (sigma 0-1.5 %)."""
    gain = rng.uniform(0.85, 1.15) * (1 + torch.empty(3, 1, 1).uniform_(-0.04, 0.04))
    jittered = (image * gain).clamp(0, 1) ** rng.uniform(0.9, 1.1)
    return (jittered + rng.uniform(0, 0.015) * torch.randn_like(image)).clamp(0, 1)


# -- proxy pairs of offline photos ------------------------------------------------------------------


class ProxyPairs(Dataset):
    """Proxy clips of random edits of the images under `roots` (any image file, searched recursively:
    the stills and clip frames that `python -m pipelines.data prepare DIR` exports).
    With `jitter_probability`, a clip's later frames change their light (`photometric_jitter`), the same
    edit applied to each. Items: (original, edited), each (T, 3, size, size); frame 0 is the anchor."""

    def __init__(
        self,
        roots: list[str | os.PathLike],
        num_frames: int = 3,
        size: int = 128,
        samples_per_epoch: int = 10000,
        frames_per_clip: int = 8,
        jitter_probability: float = 0.5,
    ) -> None:
        self.num_frames, self.size, self.samples_per_epoch = num_frames, size, samples_per_epoch
        self.jitter_probability = jitter_probability
        self.paths: list[Path] = []
        for root in map(Path, roots):
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            by_folder: dict[Path, list[Path]] = {}
            for path in files:
                by_folder.setdefault(path.parent, []).append(path)
            for folder, paths in by_folder.items():
                if folder.name.startswith("stills"):
                    self.paths += paths
                else:  # a clip: a few evenly spaced frames, its frames look alike
                    picks = np.linspace(0, len(paths) - 1, min(frames_per_clip, len(paths))).round()
                    self.paths += [paths[int(i)] for i in picks]
        if not self.paths:
            raise ValueError(f"No images found under {roots}")

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = to_tensor(load_rgb(random.choice(self.paths)))  # (3, H, W) in [0, 1]
        if min(image.shape[-2:]) > 2 * self.size:  # the camera window is 45-90 % of the short side
            scale = 2 * self.size / min(image.shape[-2:])
            image = resize(image[None], (round(image.shape[1] * scale), round(image.shape[2] * scale)))[0]
        edit = random_edit_function(image, random)
        jitter = random.random() < self.jitter_probability
        stills = [image]  # frame 0, the anchor, as it is
        for _ in range(self.num_frames - 1):
            stills.append(photometric_jitter(image, random) if jitter else image)
        originals = torch.stack(stills)
        editeds = torch.stack([edit(still) for still in stills])
        return random_proxy_clip(originals, editeds, self.num_frames, self.size, random)
