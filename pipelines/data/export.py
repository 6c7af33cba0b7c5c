"""Writing the offline sources as a training folder, the layout `clips.TrainingClips` reads:

    DIR/clips/<video>/00000.jpg ...   one folder of JPEG frames per video
    DIR/stills/<still>.jpg            one JPEG per colour still

Frames and stills are shrunk to a short side of 256 (Pillow bicubic, never enlarged) and saved at
JPEG quality 92. By default (`split="time"`) every video loses its held-out tail and every still is
written: the data the shipped checkpoints were trained on, byte for byte. With `split="scenes"` only
the training scenes of the scene split are written, each video whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import PIL.Image

from ..core.video import VideoReader
from . import sources
from .images import resize_short_side
from .split import HOLDOUT_FRACTION, holdout_start, split_of

JPEG_QUALITY = 92


def _save(image: np.ndarray, short_side: int, path: Path) -> None:
    resized = resize_short_side(image, short_side, method="pil_bicubic")  # as the checkpoints were trained
    PIL.Image.fromarray(resized).save(path, quality=JPEG_QUALITY)


def export_offline_data(
    out_dir: str | os.PathLike,
    short_side: int = 256,
    holdout_fraction: float = HOLDOUT_FRACTION,
    split: Literal["time", "scenes"] = "time",
) -> Path:
    """Write training clips (JPEG frame folders) and stills into `out_dir/clips` and `out_dir/stills`.

    `split="time"`: every video but its last `holdout_fraction`, and every still. `split="scenes"`:
    only the sources whose scene is in the "train" split (`split.split_of`), the wider sources
    (`sources.scene_video_paths` / `scene_stills`) included, videos whole."""
    if split not in ("time", "scenes"):
        raise ValueError(f"split must be 'time' or 'scenes', got {split!r}.")
    out_dir = Path(out_dir)
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    (out_dir / "stills").mkdir(parents=True, exist_ok=True)
    scene_split = split == "scenes"  # the scene split also trains on the wider sources
    for path in sources.scene_video_paths() if scene_split else sources.offline_video_paths():
        name = sources.video_name(path)
        if split == "scenes" and split_of(name) != "train":
            continue
        reader = VideoReader(path)
        stop = holdout_start(len(reader), holdout_fraction) if split == "time" else None
        clip_dir = out_dir / "clips" / name
        clip_dir.mkdir(exist_ok=True)
        for index, frame in enumerate(reader):
            if stop is not None and index >= stop:
                break
            _save(frame, short_side, clip_dir / f"{index:05d}.jpg")
    for name, image in sources.scene_stills() if scene_split else sources.offline_stills():
        if split == "scenes" and split_of(name) != "train":
            continue
        _save(image, short_side, out_dir / "stills" / f"{name}.jpg")
    return out_dir
