"""Write TGAN output as a looping animated GIF or an H.264 mp4: one clip, or a grid of clips tiled into one
video (all clips play in step, as in the paper's figures).

    pipe = TGANPipeline.from_pretrained("checkpoints/tgan-moving-digits")
    videos = pipe(num_videos=16, generator=torch.Generator().manual_seed(0)).frames  # (16, 16, 32, 32, 1)
    export_videos(videos, "samples.gif")  # a 4x4 grid of looping clips
    export_videos(videos[0], "one.mp4", fps=12)  # one clip

Frames are enlarged with nearest-neighbour scaling (whole factors), so 32x32 digits stay sharp and
visible. mp4 goes through the repository's one video writer (`pipelines.core.video.write_video`).
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from ..core.video import write_video

EXPORT_EXTENSIONS = (".gif", ".mp4")
# `scale=None` enlarges by the smallest whole factor that brings a frame's short side to this many pixels.
MIN_DISPLAY_SIDE = 128
# Browsers play GIF frame delays under 20 ms (2 centiseconds) as 100 ms, so faster GIFs would play slower.
MAX_GIF_FPS = 50


def _pil_clip(images: list, what: str) -> np.ndarray:
    arrays = []
    for image in images:
        if not isinstance(image, PIL.Image.Image):
            raise ValueError(f"{what} mixes PIL images with {type(image).__name__}; pass one kind of frame.")
        # Grey stays one channel ("L"), so a GIF keeps its exact grey levels; anything else becomes RGB.
        arrays.append(np.asarray(image) if image.mode == "L" else np.asarray(image.convert("RGB")))
    if len({array.shape for array in arrays}) > 1:
        raise ValueError(f"The frames of {what} differ in size or mode (grey and colour); make them alike.")
    clip = np.stack(arrays)
    return clip[..., None] if clip.ndim == 3 else clip


def _as_uint8_videos(frames: np.ndarray | torch.Tensor | list) -> np.ndarray:
    """Any TGANPipeline output type (or one clip of it) -> uint8 clips (V, T, H, W, C).

    "np" / arrays: (V, T, H, W, C) or one clip (T, H, W, C); "pt" / tensors: (V, T, C, H, W) or (T, C, H, W);
    "pil": a list (clips) of lists (frames) of images, or one list of frames. Floats must lie in [0, 1]."""
    if isinstance(frames, list | tuple):
        if not frames:
            raise ValueError("frames is empty: pass at least one clip of at least one frame.")
        if all(isinstance(item, PIL.Image.Image) for item in frames):
            return _pil_clip(list(frames), "the clip")[None]
        if all(isinstance(item, list | tuple) for item in frames):
            if not all(frames):
                raise ValueError("A clip has no frames: every clip needs at least one frame.")
            clips = [_pil_clip(list(clip), f"clip {index}") for index, clip in enumerate(frames)]
            if len({clip.shape for clip in clips}) > 1:
                raise ValueError("The clips differ in length, size or channels; a grid needs equal clips.")
            return np.stack(clips)
        frames = np.stack([np.asarray(item) for item in frames])  # a list of arrays: one clip
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu()
        if frames.ndim in (4, 5):  # channels first, as the "pt" output type has them
            frames = frames.movedim(-3, -1)
        frames = frames.numpy()
    frames = np.asarray(frames)
    if frames.ndim not in (4, 5) or frames.shape[-1] not in (1, 3):
        raise ValueError(
            f"frames has shape {frames.shape}; expected clips (V, T, H, W, C) or one clip (T, H, W, C) with "
            "C = 1 (grey) or 3 (RGB), as TGANPipeline's 'np' output (or 'pt' / 'pil')."
        )
    if 0 in frames.shape:
        raise ValueError(f"frames has shape {frames.shape}: there is nothing to write.")
    if np.issubdtype(frames.dtype, np.floating):
        low, high = float(frames.min()), float(frames.max())
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high > 1:
            raise ValueError(
                f"Float frames must lie in [0, 1], got [{low:.3g}, {high:.3g}]; pass uint8 for 0-255."
            )
        frames = (frames * 255).round().astype(np.uint8)  # rounded as the pipeline's own uint8 output
    elif frames.dtype != np.uint8:
        raise ValueError(f"frames has dtype {frames.dtype}; expected uint8 (0-255) or float in [0, 1].")
    return frames if frames.ndim == 5 else frames[None]


def _tile(
    videos: np.ndarray, scale: int, columns: int, gutter: int, gutter_color: tuple[int, ...]
) -> np.ndarray:
    """(V, T, H, W, C) -> (T, H', W', C): clips enlarged by `scale`, `columns` per row, row by row, with a
    `gutter` px border of `gutter_color` around every tile (empty cells of the last row too)."""
    videos = videos.repeat(scale, axis=2).repeat(scale, axis=3)
    count, length, height, width, channels = videos.shape
    rows = math.ceil(count / columns)
    grid = np.empty(
        (length, gutter + rows * (height + gutter), gutter + columns * (width + gutter), channels), np.uint8
    )
    grid[:] = np.asarray(gutter_color, np.uint8)
    for index, video in enumerate(videos):
        row, column = divmod(index, columns)
        top, left = gutter + row * (height + gutter), gutter + column * (width + gutter)
        grid[:, top : top + height, left : left + width] = video
    return grid


def _gif_durations_ms(count: int, fps: float) -> list[int]:
    """GIF delays are whole centiseconds: give each frame the rounding of its cumulative time, so the
    loop lasts count / fps seconds (8 fps alternates 120 and 130 ms instead of playing 120 ms throughout)."""
    ends = [round(100 * index / fps) for index in range(count + 1)]
    return [10 * max(1, end - start) for start, end in zip(ends[:-1], ends[1:], strict=True)]


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    images = [PIL.Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame) for frame in frames]
    # Written beside the target and renamed into place, so a failure never leaves a partial GIF.
    partial = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        images[0].save(
            partial,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=_gif_durations_ms(len(images), fps),
            loop=0,  # loop forever
            optimize=False,  # keep the palette as is: exact grey levels
        )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def export_videos(
    frames: np.ndarray | torch.Tensor | list,
    path: str | os.PathLike,
    fps: float = 8,
    scale: int | None = None,
    columns: int | None = None,
    gutter: int = 2,
    gutter_color: int | tuple[int, int, int] = 128,
) -> str:
    """Write one clip, or several clips tiled into one grid, as a looping video at `path`; returns the path.

    Args:
        frames: `TGANPipeline` output in any output type: clips (V, T, H, W, C) uint8 ("np", or floats in
            [0, 1]), (V, T, C, H, W) in [0, 1] ("pt"), or a list of clips of PIL images ("pil"); or one clip
            ((T, H, W, C), (T, C, H, W) or a list of images). One clip is written without a border.
        path: ".gif" (Pillow, loops forever; grey frames keep their exact grey levels, colour is reduced
            to 256 colours per frame) or ".mp4" (H.264 with `pipelines.core.video.write_video`, the
            repository's writer). Any other extension is refused. Missing folders are created.
        fps: frames per second. A GIF stores whole centiseconds per frame, so at most 50 fps (browsers
            play shorter delays slower); Pillow merges exactly repeated consecutive frames into one longer
            frame, which plays the same.
        scale: whole nearest-neighbour enlargement factor; None takes the smallest that brings a frame's
            short side to `MIN_DISPLAY_SIDE` (128) px: 4 for 32x32 digits.
        columns: clips per row of the grid (row by row); default ceil(sqrt(V)).
        gutter: px of border around and between the tiles of a grid (after enlargement).
        gutter_color: the border's grey level (0-255), or an RGB triple (which makes grey clips RGB).

    A grid of V > 1 clips has clip i at row i // columns, column i % columns, its top-left corner at
    (gutter + row * (H * scale + gutter), gutter + column * (W * scale + gutter)).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_EXTENSIONS:
        raise ValueError(
            f"Cannot write '{path.name}': export_videos writes .gif or .mp4, got "
            f"{suffix or 'no extension'!r}. For frames as images, use output_type='pil' and save them."
        )
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    if suffix == ".gif" and fps > MAX_GIF_FPS:
        raise ValueError(
            f"A GIF plays at most {MAX_GIF_FPS} fps in browsers, got {fps}; write an .mp4 instead."
        )
    for value, name, low, optional in (
        (scale, "scale", 1, True), (columns, "columns", 1, True), (gutter, "gutter", 0, False)
    ):  # fmt: skip
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}.")
    color = (gutter_color,) if isinstance(gutter_color, int | np.integer) else gutter_color
    if (
        not isinstance(color, tuple | list)
        or len(color) not in (1, 3)
        or not all(
            isinstance(c, int | np.integer) and not isinstance(c, bool) and 0 <= c <= 255 for c in color
        )
    ):
        raise ValueError(
            f"gutter_color must be a grey level or an RGB triple in 0-255, got {gutter_color!r}."
        )
    color = tuple(int(c) for c in color)

    videos = _as_uint8_videos(frames)
    count, _, height, width, channels = videos.shape
    if len(color) == 3 and len(set(color)) == 1:
        color = color[:1]  # a grey triple: grey clips stay grey
    if len(color) == 3 and channels == 1:
        videos = videos.repeat(3, axis=-1)
        channels = 3
    color = color * channels if len(color) == 1 else color
    scale = max(1, math.ceil(MIN_DISPLAY_SIDE / min(height, width))) if scale is None else int(scale)
    if count == 1:  # one clip: just enlarged, no border
        tiled = videos[0].repeat(scale, axis=1).repeat(scale, axis=2)
    else:
        columns = math.ceil(math.sqrt(count)) if columns is None else min(int(columns), count)
        tiled = _tile(videos, scale, columns, int(gutter), color)

    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        _write_gif(tiled, path, float(fps))
    else:
        write_video(tiled, path, fps=float(fps))  # grey frames become RGB there; odd sizes are padded
    return str(path)
