"""Offline training images for pseudo-video generation.

- "digits": scikit-learn's `load_digits` (1797 handwritten digits, 8x8, 17 grey levels), optionally
  resized (bilinear) to another size, e.g. 16x16;
- "photos": random square crops of the colour photos installed packages ship (scikit-image's
  astronaut, coffee, chelsea, rocket; scikit-learn's china and flower), each crop covering 1/16 to
  1/3 of the photo's short side, resized (area) to the training size, randomly mirrored;
- a folder path: every image under it (CIFAR-10 / CelebA style), centre-cropped square and resized.

All sources give a uint8 tensor (N, C, S, S); `ImageTensorDataset` serves it as float in [-1, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..core.video import IMAGE_EXTENSIONS
from ..data import sources

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def digit_images(size: int = 8) -> torch.Tensor:
    """scikit-learn's digits (1797, 1, size, size) uint8, ink bright on black."""
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def offline_photos() -> list[np.ndarray]:
    """The colour photos (H, W, 3) uint8 that scikit-image and scikit-learn ship."""
    photos = [sources.skimage_still(name) for name in SKIMAGE_PHOTOS] + sources.sklearn_stills()
    return [np.array(photo[..., :3]) for photo in photos if photo.ndim == 3]  # writable copies


def photo_crops(size: int = 16, count: int = 20_000, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """`count` random crops (count, channels, size, size) uint8 of the offline photos."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}.")
    rng = np.random.default_rng(seed)
    photos = [torch.from_numpy(photo).permute(2, 0, 1).float() for photo in offline_photos()]
    crops = torch.empty(count, 3, size, size)
    for index in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[-2:]
        side = int(min(height, width) * rng.uniform(1 / 16, 1 / 3))
        top, left = rng.integers(height - side + 1), rng.integers(width - side + 1)
        crop = F.adaptive_avg_pool2d(photo[None, :, top : top + side, left : left + side], size)[0]
        crops[index] = crop.flip(-1) if rng.random() < 0.5 else crop
    if channels == 1:
        crops = crops.mean(dim=1, keepdim=True)
    return crops.round().clamp(0, 255).to(torch.uint8)


def folder_images(folder: str | os.PathLike, size: int, channels: int = 3) -> torch.Tensor:
    """Every image under `folder`, centre-cropped square and resized: (N, channels, size, size) uint8."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No image folder at {folder}.")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f"{folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    images = []
    for path in paths:
        image = PIL.Image.open(path).convert("RGB" if channels == 3 else "L")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), PIL.Image.BOX)
        array = np.asarray(image)
        images.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(images))


def load_images(source: str, size: int, channels: int, seed: int = 0, count: int = 20_000) -> torch.Tensor:
    """uint8 (N, channels, size, size) from "digits", "photos" or an image folder."""
    if source == "digits":
        if channels != 1:
            raise ValueError("The digits are grey: use channels=1.")
        return digit_images(size)
    if source == "photos":
        return photo_crops(size, count, channels, seed)
    return folder_images(source, size, channels)


class ImageTensorDataset(Dataset):
    """uint8 images (N, C, S, S) served as float32 (C, S, S) in [-1, 1]."""

    def __init__(self, images: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 tensor (N, C, S, S).")
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index].float() / 127.5 - 1.0


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, S, S) -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0
