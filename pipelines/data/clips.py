"""Training clips for colorization and correspondence: colour clips and pseudo videos of colour stills.

A training sample is a clip (T, 3, S, S) of RGB in [0, 1]; colorization uses frame 0 as the exemplar.

- Clips come from folders of frames (one folder per clip, as `export.py` writes them) or video files,
  cut at random starts with a random temporal stride and one random crop shared by the clip's frames.
- Stills become pseudo videos by a random camera path (`random_camera_path`): a smooth drift of
  translation, zoom and rotation, sampled with `grid_sample`, so the model sees known motion on varied
  colour content.

Randomness is Python's `random` module (seeded by the training script), drawn in a fixed order per item.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..core.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoReader
from .images import load_rgb, resize_short_side, to_tensor


def random_camera_path(
    image: torch.Tensor, num_frames: int, size: int, strength: float = 1.0
) -> torch.Tensor:
    """A pseudo video of a still: a square crop window drifting, zooming and turning smoothly.

    image (C, H, W) -> (T, C, size, size). Motion is known, so it is a clean source of correspondences.
    """
    height, width = image.shape[-2:]
    # Window side as a fraction of the image's short side, at the start and end of the path.
    zoom_start = random.uniform(0.45, 0.9)
    zoom_end = min(1.0, zoom_start * random.uniform(1 - 0.3 * strength, 1 + 0.3 * strength))
    angle_end = random.uniform(-0.2, 0.2) * strength
    window = min(height, width)

    def centre_limit(zoom: float) -> torch.Tensor:  # keep the window inside the image (normalized coords)
        return torch.tensor([1 - zoom * window / width, 1 - zoom * window / height]).clamp(min=0)

    centre_start = (torch.rand(2) * 2 - 1) * centre_limit(zoom_start)
    centre_end = (torch.rand(2) * 2 - 1) * centre_limit(zoom_end)
    centre_end = centre_start + (centre_end - centre_start) * strength
    thetas = []
    for step in range(num_frames):
        progress = 0.5 - 0.5 * math.cos(math.pi * step / max(1, num_frames - 1))  # ease in and out
        zoom = zoom_start + (zoom_end - zoom_start) * progress
        angle = angle_end * progress
        centre = centre_start + (centre_end - centre_start) * progress
        # Rotate in pixel space, then normalize each axis by its own image size.
        scale_x, scale_y = zoom * window / width, zoom * window / height
        cos, sin = math.cos(angle), math.sin(angle)
        thetas.append(
            torch.tensor(
                [[scale_x * cos, -scale_x * sin, centre[0]], [scale_y * sin, scale_y * cos, centre[1]]]
            )
        )
    grid = F.affine_grid(torch.stack(thetas).float(), [num_frames, 3, size, size], align_corners=False)
    frames = image.unsqueeze(0).expand(num_frames, -1, -1, -1)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class TrainingClips(Dataset):
    """Random clips (T, 3, S, S) from frame folders / videos under `roots` and pseudo videos of stills
    (images in folders whose name starts with "stills")."""

    def __init__(
        self,
        roots: Sequence[str | os.PathLike],
        num_frames: int = 5,
        size: int = 256,
        max_stride: int = 4,
        still_probability: float = 0.5,
        samples_per_epoch: int = 10000,
    ) -> None:
        self.num_frames, self.size, self.max_stride = num_frames, size, max_stride
        self.still_probability, self.samples_per_epoch = still_probability, samples_per_epoch
        self.clips: list[list[Path]] = []  # frame paths of each clip
        self.videos: list[Path] = []
        self.stills: list[Path] = []
        for root in map(Path, roots):
            for path in sorted(root.rglob("*")):
                if path.is_dir() and not path.name.startswith("stills"):
                    frames = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
                    if len(frames) >= num_frames:
                        self.clips.append(frames)
                elif path.suffix.lower() in VIDEO_EXTENSIONS:
                    self.videos.append(path)
                elif path.suffix.lower() in IMAGE_EXTENSIONS and path.parent.name.startswith("stills"):
                    self.stills.append(path)
        # Decode videos once into frame tensors at training scale: these datasets are small.
        self.video_frames = [self._decode(path) for path in self.videos]
        if not (self.clips or self.video_frames or self.stills):
            raise ValueError(f"No clips, videos or stills found under {roots}")

    def _decode(self, path: Path) -> list[torch.Tensor]:
        """A video's frames, uint8 (3, H, W) each, shrunk to a short side of 1.5 x the crop size."""
        frames = []
        for frame in VideoReader(path):
            image = resize_short_side(frame, self.size * 3 // 2, method="pil_bicubic")
            frames.append(torch.from_numpy(image.copy()).permute(2, 0, 1))
        return frames

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _random_crop(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (T, 3, H, W) -> (T, 3, S, S), upscaling first when the frames are too small."""
        height, width = frames.shape[-2:]
        if min(height, width) < self.size:
            scale = self.size / min(height, width)
            frames = F.interpolate(frames, scale_factor=scale, mode="bilinear", align_corners=False)
            height, width = frames.shape[-2:]
        top = random.randint(0, height - self.size)
        left = random.randint(0, width - self.size)
        return frames[..., top : top + self.size, left : left + self.size]

    def __getitem__(self, index: int) -> torch.Tensor:
        sequences = len(self.clips) + len(self.video_frames)
        if self.stills and (sequences == 0 or random.random() < self.still_probability):
            still = to_tensor(load_rgb(random.choice(self.stills)))
            clip = random_camera_path(still, self.num_frames, self.size)
        else:
            choice = random.randrange(sequences)
            stride = random.randint(1, self.max_stride)
            if choice < len(self.clips):
                paths = self.clips[choice]
                span = min(len(paths), (self.num_frames - 1) * stride + 1)
                start = random.randint(0, len(paths) - span)
                picks = np.linspace(start, start + span - 1, self.num_frames).round().astype(int)
                frames = torch.stack([to_tensor(load_rgb(paths[i])) for i in picks])
            else:
                video = self.video_frames[choice - len(self.clips)]
                span = min(len(video), (self.num_frames - 1) * stride + 1)
                start = random.randint(0, len(video) - span)
                picks = np.linspace(start, start + span - 1, self.num_frames).round().astype(int)
                frames = torch.stack([video[i] for i in picks]).float() / 255.0
            if random.random() < 0.5:
                frames = frames.flip(0)  # play backwards: same content, new motion
            clip = self._random_crop(frames)
        if random.random() < 0.5:
            clip = clip.flip(-1)
        return clip.clamp(0, 1)


def clip_loader(
    data: Sequence[str | os.PathLike],
    num_frames: int,
    size: int,
    batch_size: int,
    steps: int,
    num_workers: int,
) -> DataLoader:
    """Batches (B, T, 3, size, size) of training clips: real video and pseudo videos of stills
    (`TrainingClips`), enough for `steps` steps per pass."""
    dataset = TrainingClips(data, num_frames=num_frames, size=size, samples_per_epoch=steps * batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        drop_last=True,
        persistent_workers=num_workers > 0,
    )
