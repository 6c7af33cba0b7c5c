"""Training clips for TGAN: bouncing digits made on the fly (offline), or a folder of short videos.

`MovingDigits` is the Moving MNIST setting (digits bouncing in a 64x64 frame, 16 frames) with the
digits taken from scikit-learn's `load_digits` (1797 handwritten 8x8 digits that ship with the
package) upscaled to 28x28, MNIST's size. Clip `i` is drawn from a random generator seeded with
(seed, i), so a dataset is reproducible and any index range can be split across workers and processes.

`ClipFolder` reads windows of `num_frames` frames from a folder of videos (mp4, avi, ... or folders
of frames; UCF-101 style), centre-cropped to a square and resized: for users with GPUs.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..core.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoReader

# Moving MNIST's geometry, scaled with the frame: 28 px digits moving 2-4 px per frame in 64 px.
DIGIT_FRACTION = 28 / 64
SPEED_RANGE = (2 / 64, 4 / 64)


@functools.lru_cache(maxsize=4)
def digit_sprites(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits upscaled to size x size: images (N, size, size) float32 in [0, 1] and their
    labels (N,) int. Cached: every clip draws from the same sprites."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    upscaled = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return upscaled[:, 0].clamp(0, 1).numpy(), digits.target.astype(np.int64)


class MovingDigits(Dataset):
    """Clips (num_frames, 1, image_size, image_size) float32 in [-1, 1] of 1..n digits bouncing off the
    frame's edges. `num_digits` lists the digit counts a clip may have (drawn uniformly per clip);
    `first_index` shifts which clips indices 0.. map to (a resumed run continues with new clips)."""

    def __init__(
        self,
        num_clips: int = 100_000,
        num_frames: int = 16,
        image_size: int = 64,
        num_digits: Sequence[int] = (1, 2),
        seed: int = 0,
        first_index: int = 0,
    ) -> None:
        if num_clips < 1 or num_frames < 1:
            raise ValueError("num_clips and num_frames must be positive.")
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}.")
        if not num_digits or min(num_digits) < 1:
            raise ValueError(f"num_digits must list positive digit counts, got {num_digits}.")
        self.num_clips, self.num_frames, self.image_size = num_clips, num_frames, image_size
        self.num_digits = tuple(int(n) for n in num_digits)
        self.seed, self.first_index = seed, first_index
        self.digit_size = max(4, round(image_size * DIGIT_FRACTION))

    def __len__(self) -> int:
        return self.num_clips

    def clip_with_labels(self, index: int, identity_swap: bool = False) -> tuple[torch.Tensor, list[int]]:
        """Clip `index` (T, 1, S, S) in [-1, 1] and the class of each digit in it.

        With `identity_swap`, a clip that real data never shows: on the same paths, every digit turns
        into a digit of another class at one frame (drawn from 1..T-1) and stays so; the labels are those
        before the swap. It is a negative example of "a digit keeps its identity" for the critic
        (`train.py --identity-swaps`)."""
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range [0, {self.num_clips})")
        rng = np.random.default_rng([self.seed, self.first_index + index])
        sprites, labels = digit_sprites(self.digit_size)
        size, digit = self.image_size, self.digit_size
        room = size - digit  # positions are the top-left corner, in [0, room]
        count = int(rng.choice(self.num_digits))
        chosen = rng.integers(len(sprites), size=count)
        position = rng.uniform(0, room, size=(count, 2))
        angle = rng.uniform(0, 2 * np.pi, size=count)
        speed = rng.uniform(*SPEED_RANGE, size=count) * size
        velocity = np.stack([np.sin(angle), np.cos(angle)], axis=1) * speed[:, None]
        swapped, swap_frame = chosen, self.num_frames
        if identity_swap:
            # Drawn after the clip's own numbers: a swapped clip follows the paths of clip `index`.
            swap_frame = int(rng.integers(1, max(2, self.num_frames)))
            swapped = np.array([rng.choice(np.flatnonzero(labels != labels[i])) for i in chosen])
        frames = np.zeros((self.num_frames, size, size), np.float32)
        for t in range(self.num_frames):
            shown = chosen if t < swap_frame else swapped
            for sprite_index, (y, x) in zip(shown, np.rint(position).astype(int), strict=True):
                window = frames[t, y : y + digit, x : x + digit]
                np.maximum(window, sprites[sprite_index], out=window)  # overlapping digits: brighter wins
            position += velocity
            # Bounce: reflect the position back inside and reverse the velocity on that axis.
            for axis in range(2):
                low, high = position[:, axis] < 0, position[:, axis] > room
                position[low, axis] *= -1
                position[high, axis] = 2 * room - position[high, axis]
                velocity[low | high, axis] *= -1
        clip = torch.from_numpy(frames)[:, None] * 2 - 1
        return clip, labels[chosen].tolist()

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.clip_with_labels(index)[0]


class IdentitySwappedDigits(MovingDigits):
    """`MovingDigits` whose every clip changes its digits' class at one frame (`clip_with_labels` with
    `identity_swap`): negative clips for the critic."""

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.clip_with_labels(index, identity_swap=True)[0]


def _is_clip(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.is_file():
        return path.suffix.lower() in VIDEO_EXTENSIONS
    return path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())


def frames_to_clip(frames: np.ndarray, image_size: int, channels: int) -> torch.Tensor:
    """RGB uint8 frames (T, H, W, 3) -> (T, channels, image_size, image_size) in [-1, 1]: centre square
    crop, area-preserving resize, and luma (ITU-R BT.601) when channels is 1."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    height, width = video.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    video = video[..., top : top + side, left : left + side]
    video = F.interpolate(video, size=(image_size, image_size), mode="bilinear", antialias=True)
    if channels == 1:
        video = (video * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif channels != 3:
        raise ValueError(f"channels must be 1 or 3, got {channels}.")
    return video.clamp(0, 1) * 2 - 1


class ClipFolder(Dataset):
    """Windows of `num_frames` consecutive frames from the videos in `root` (video files and folders of
    frames, searched recursively): (num_frames, channels, image_size, image_size) in [-1, 1]. Item i
    takes clip i % number of clips at a start drawn from (seed, i); a clip shorter than the window has
    its last frame repeated."""

    def __init__(
        self,
        root: str | os.PathLike,
        num_frames: int = 16,
        image_size: int = 64,
        channels: int = 1,
        num_items: int | None = None,
        seed: int = 0,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder of clips.")
        self.clips = sorted(p for p in root.rglob("*") if _is_clip(p))
        if not self.clips:
            raise FileNotFoundError(
                f"{root} holds no videos ({', '.join(VIDEO_EXTENSIONS)}) or folders of frames."
            )
        self.num_frames, self.image_size, self.channels = num_frames, image_size, channels
        self.num_items = num_items or len(self.clips)
        self.seed = seed

    def __len__(self) -> int:
        return self.num_items

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.clips[index % len(self.clips)]
        rng = np.random.default_rng([self.seed, index])
        reader = VideoReader(path)
        # The container's frame count can be off: decode up to the window's end, keeping only the last
        # num_frames frames (memory stays bounded), so a shorter video gives its final frames.
        start = int(rng.integers(max(1, len(reader) - self.num_frames + 1)))
        window = list(deque(islice(iter(reader), start + self.num_frames), maxlen=self.num_frames))
        window += [window[-1]] * (self.num_frames - len(window))
        return frames_to_clip(np.stack(window), self.image_size, self.channels)
