"""Label propagation: carry a mask or points drawn on frame 0 through a video by feature matching.

The protocol of this line of work (CRW, Jabri et al. 2020; MAST; Zhou et al. 2025): each frame's
labels are read from a context of frame 0 (the only labels that are given) and the last
`context_frames` frames (their propagated labels), through the affinity of L2-normalized
features. Each query position sees only a window of `radius` feature cells around itself in every
context frame, keeps its `top_k` best matches over the whole context, and averages their labels
with softmax(affinity / temperature).

Masks travel as one-hot label maps (one channel per object, background included); points as small
Gaussian heatmaps, one channel each, read back by a soft argmax around the peak.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..core.attention import windowed_topk_readout


@dataclass(frozen=True)
class PropagationConfig:
    context_frames: int = 5  # recent frames kept as context, besides frame 0
    radius: int = 12  # window half-size in feature cells around each query position
    top_k: int = 10
    temperature: float = 0.05
    point_sigma: float = 1.0  # point heatmaps' standard deviation, in feature cells


class FeatureExtractor(Protocol):
    """Dense features of the frames of one video, in order (some extractors use the previous frame, and
    for the first frame, which has none, the next one)."""

    def reset(self) -> None:
        """Forget the previous frame: a new video starts."""

    def __call__(self, frame: np.ndarray, next_frame: np.ndarray | None = None) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> L2-normalized features (C, h, w) on a grid covering the frame.
        `next_frame` is given with a video's first frame only (None for a one-frame video)."""


def mask_to_labels(mask: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Label map (H, W) of integer ids -> one-hot (K, H, W) float and the K ids (sorted, 0 included
    when present)."""
    ids = np.unique(mask)
    labels = torch.from_numpy(mask[None] == ids[:, None, None]).float()
    return labels, ids


def labels_to_mask(labels: torch.Tensor, ids: np.ndarray) -> np.ndarray:
    """(K, H, W) soft labels -> label map (H, W) of the ids, by argmax."""
    return ids[labels.argmax(dim=0).numpy()]


def points_to_heatmaps(points: np.ndarray, grid: tuple[int, int], size: tuple[int, int], sigma: float):
    """Points (N, 2) as (x, y) pixels of a (H, W) frame -> Gaussian heatmaps (N, h, w) on the feature
    grid, each summing to 1. Positions are cell centres: cell j covers pixels [j*s, (j+1)*s)."""
    (grid_h, grid_w), (height, width) = grid, size
    scale_x, scale_y = grid_w / width, grid_h / height
    centres = torch.as_tensor(points, dtype=torch.float32) * torch.tensor([scale_x, scale_y]) - 0.5
    ys = torch.arange(grid_h, dtype=torch.float32).view(1, -1, 1)
    xs = torch.arange(grid_w, dtype=torch.float32).view(1, 1, -1)
    squared = (xs - centres[:, 0, None, None]) ** 2 + (ys - centres[:, 1, None, None]) ** 2
    heatmaps = torch.exp(-squared / (2 * sigma**2))
    return heatmaps / heatmaps.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def heatmaps_to_points(heatmaps: torch.Tensor, size: tuple[int, int], window: int = 2) -> np.ndarray:
    """(N, h, w) heatmaps -> points (N, 2) as (x, y) pixels of a (H, W) frame: the weighted mean
    position within `window` cells of each heatmap's peak (a plain argmax would snap to the grid,
    a global mean would be pulled by stray mass far away)."""
    count, grid_h, grid_w = heatmaps.shape
    height, width = size
    peak = heatmaps.flatten(1).argmax(dim=1)
    peak_y, peak_x = peak // grid_w, peak % grid_w
    ys = torch.arange(grid_h).view(1, -1, 1)
    xs = torch.arange(grid_w).view(1, 1, -1)
    near = ((ys - peak_y.view(-1, 1, 1)).abs() <= window) & ((xs - peak_x.view(-1, 1, 1)).abs() <= window)
    weights = heatmaps.clamp_min(0) * near
    weights = weights / weights.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    x = (weights * xs).sum(dim=(1, 2)) + 0.5
    y = (weights * ys).sum(dim=(1, 2)) + 0.5
    return torch.stack([x * width / grid_w, y * height / grid_h], dim=1).numpy()


def propagate(
    features: Iterable[torch.Tensor], first_labels: torch.Tensor, config: PropagationConfig
) -> Iterator[torch.Tensor]:
    """Features (C, h, w) of frames 0, 1, ... and frame 0's labels (K, h, w) on the same grid
    -> labels (K, h, w) of every frame, frame 0's own first."""
    features = iter(features)
    first = next(features)
    context: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=config.context_frames)
    yield first_labels
    for current in features:
        keys = [first] + [key for key, _ in context]
        values = [first_labels] + [value for _, value in context]
        labels = windowed_topk_readout(current, keys, values, config.radius, config.top_k, config.temperature)
        context.append((current, labels))
        yield labels


@dataclass
class Tracks:
    points: np.ndarray | None  # (T, N, 2) x, y pixels
    masks: np.ndarray | None  # (T, H, W) label ids


def iter_tracks(
    frames: Iterable[np.ndarray],
    extractor: FeatureExtractor,
    points: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    config: PropagationConfig = PropagationConfig(),
) -> Iterator[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """Propagate `points` (N, 2) and/or a label map `mask` (H, W) given on frame 0 through `frames`
    (RGB uint8, all one size), streaming: yields (frame, its points (N, 2) or None, its mask (H, W)
    or None) frame by frame. Frame 0 gets the given points and mask back."""
    if points is None and mask is None:
        raise ValueError("Nothing to track: give points, a mask, or both.")
    extractor.reset()
    frames = iter(frames)
    first_frame = next(frames)
    size = first_frame.shape[:2]
    second_frame = next(frames, None)  # read ahead: the first frame's motion is taken toward it
    if second_frame is not None:
        frames = itertools.chain([second_frame], frames)
    first_features = extractor(first_frame, next_frame=second_frame)
    grid = tuple(first_features.shape[-2:])
    channels, ids, num_points = [], None, 0
    if mask is not None:
        mask = np.asarray(mask)
        mask_labels, ids = mask_to_labels(mask)
        # area pooling: a cell's label is the share of each object in it
        channels.append(F.adaptive_avg_pool2d(mask_labels[None], grid)[0])
    if points is not None:
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        num_points = len(points)
        channels.append(points_to_heatmaps(points, grid, size, config.point_sigma))
    first_labels = torch.cat(channels, dim=0)
    current = [first_frame]  # the frame whose features were computed last

    def all_features():
        yield first_features
        for frame in frames:
            if frame.shape[:2] != size:
                raise ValueError(f"Frame size changed from {size} to {frame.shape[:2]} within the video.")
            current[0] = frame
            yield extractor(frame)

    for index, labels in enumerate(propagate(all_features(), first_labels, config)):
        frame_mask = frame_points = None
        if ids is not None:
            if index == 0:
                frame_mask = mask
            else:
                mask_part = F.interpolate(labels[None, : len(ids)], size=size, mode="bilinear")[0]
                frame_mask = labels_to_mask(mask_part, ids)
        if num_points:
            frame_points = points if index == 0 else heatmaps_to_points(labels[-num_points:], size)
        yield current[0], frame_points, frame_mask


def track(
    frames: Iterable[np.ndarray],
    extractor: FeatureExtractor,
    points: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    config: PropagationConfig = PropagationConfig(),
) -> Tracks:
    """`iter_tracks`, collected: points (T, N, 2) and masks (T, H, W) of the whole video."""
    tracked_points, tracked_masks = [], []
    for _, frame_points, frame_mask in iter_tracks(frames, extractor, points, mask, config):
        tracked_points.append(frame_points)
        tracked_masks.append(frame_mask)
    return Tracks(
        points=np.stack(tracked_points) if points is not None else None,
        masks=np.stack(tracked_masks) if mask is not None else None,
    )
