"""Videos with known motion, for evaluating correspondence and appearance transfer offline: camera-path
pseudo videos of photos with a moving occluding sticker, and a stereo pair.

Two kinds of evaluation video, each an `EvalVideo` (frames, true point tracks + visibility, true masks):

- **Pseudo videos** (`pseudo_video`): a colour photo seen through a smoothly moving virtual camera
  (translation, zoom and rotation, with a small hand-held wobble), plus a foreground "sticker" — a
  blob-shaped patch cut from another photo — that moves on its own path over it and occludes it.
  Every pixel's motion is a known affine map, so every point's true track is known, and so is every
  region's true mask. Points leaving the frame or covered by the sticker are marked invisible.
  Regions are the photo's SLIC superpixels merged (Ward clustering on mean Lab, spatially connected)
  into a few regions; the largest one visible in frame 0 and the slivers become background (id 0), the
  rest are objects 1.., and the sticker is the last object.
- **Stereo pair** (`stereo_video`): scikit-image's Middlebury motorcycle pair as a 2-frame video
  [left, right]; a left pixel (x, y) with disparity d is at (x - d, y) in the right view. Points where
  the true disparity is unknown, that leave the right view or that another surface hides in it (a
  z-buffer over the disparities) are left out or marked invisible. No masks.

Conventions (the same as `correspondence/propagation.py`): points are (x, y) in pixels with pixel
(i, j)'s centre at (i + 0.5, j + 0.5); masks are int32 label maps, 0 = background. Everything is
deterministic given the seed.

Overlap with training (the default export of `export.py`, the within-clip time split of `split.py`,
which the correspondence training reads): training uses the first 70 % of every offline clip and
*every* colour still that it exports (all opencv-doc photos, scikit-image astronaut/coffee/chelsea/
rocket/immunohistochemistry/retina, scikit-learn china/flower), as pseudo videos through
`clips.random_camera_path`. So:

- source "pseudo-heldout": photos training never saw — one frame from the middle of the held-out
  tail (last 30 %) of each offline clip (training saw the same scenes earlier in the clip, never these
  frames), and scikit-image's motorcycle left view (not a training still);
- source "pseudo-train-still": three training stills (astronaut, coffee, china) with our own camera
  paths, sizes and stickers — reported separately, as a check of how much seen content helps;
- source "stereo": the motorcycle pair (its left view is also the "pseudo-heldout" motorcycle photo).

The camera path here differs from training's `random_camera_path` on purpose (rectangular frames,
no reflection padding — the window always stays inside the photo —, linear drift plus wobble rather
than an eased path, and the occluding sticker, which training never shows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import sources
from .images import resize_short_side
from .split import heldout_frame, scene_of, sources_in

# Offline clips whose held-out tails give unseen photos (carphone is too small, tree.avi's tail does
# not decode); the others are skipped where the file is missing.
HELDOUT_CLIPS = ("bigbuckbunny", "bikes", "vtest", "Megamind")
TRAIN_STILLS = ("astronaut", "coffee", "china")
PHOTO_SHORT_SIDE = 400  # photos are resized to this short side before the camera samples them


@dataclass
class EvalVideo:
    name: str
    source: str  # "pseudo-heldout" | "pseudo-train-still" | "stereo"
    frames: np.ndarray  # (T, H, W, 3) uint8
    tracks: np.ndarray  # (T, N, 2) float32, x, y pixels; frame 0's are the query points
    visible: np.ndarray  # (T, N) bool; all True in frame 0
    masks: np.ndarray | None  # (T, H, W) int32 label maps, 0 = background
    notes: dict = field(default_factory=dict)  # provenance and motion statistics, for the report


# -- photos ---------------------------------------------------------------------------------------


def evaluation_photos() -> list[tuple[str, str, np.ndarray]]:
    """(name, source, RGB uint8 photo) for the pseudo videos: held-out ones first, then training stills."""
    photos = []
    clips = {sources.video_name(path): path for path in sources.offline_video_paths()}
    for name in HELDOUT_CLIPS:
        if name in clips:
            frame = heldout_frame(clips[name])
            if frame is not None:
                photos.append((f"{name}-tail", "pseudo-heldout", frame))
    photos.append(("motorcycle-left", "pseudo-heldout", sources.stereo_pair()[0]))
    for name in TRAIN_STILLS:
        image = sources.sklearn_stills()[0] if name == "china" else sources.skimage_still(name)
        photos.append((name, "pseudo-train-still", image))
    return photos


# -- regions --------------------------------------------------------------------------------------


def photo_regions(photo: np.ndarray, num_regions: int = 6, num_superpixels: int = 150) -> np.ndarray:
    """A label map (H, W) of `num_regions` connected regions of similar colour: SLIC superpixels merged
    by Ward clustering of their mean Lab, restricted to adjacent superpixels."""
    from scipy.sparse import coo_matrix
    from skimage.color import rgb2lab
    from skimage.segmentation import slic
    from sklearn.cluster import AgglomerativeClustering

    superpixels = slic(photo, n_segments=num_superpixels, compactness=10, start_label=0)
    count = int(superpixels.max()) + 1
    lab = rgb2lab(photo).reshape(-1, 3)
    sums = np.zeros((count, 3))
    np.add.at(sums, superpixels.ravel(), lab)
    means = sums / np.bincount(superpixels.ravel(), minlength=count)[:, None].clip(1)
    pairs = np.concatenate(
        [
            np.stack([superpixels[:, :-1].ravel(), superpixels[:, 1:].ravel()], 1),
            np.stack([superpixels[:-1].ravel(), superpixels[1:].ravel()], 1),
        ]
    )
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    connectivity = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    clusters = AgglomerativeClustering(
        n_clusters=min(num_regions, count), connectivity=connectivity + connectivity.T, linkage="ward"
    ).fit_predict(means)
    return clusters[superpixels].astype(np.int32)


# -- motion ---------------------------------------------------------------------------------------


def similarity(centre: np.ndarray, scale: float, angle: float, origin: np.ndarray) -> np.ndarray:
    """2x3 affine p -> centre + scale * R(angle) (p - origin), in OpenCV pixel coordinates."""
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    return np.concatenate([linear, (centre - linear @ origin)[:, None]], axis=1)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(affine)


def camera_path(
    rng: np.random.Generator, photo_size: tuple[int, int], frame_size: tuple[int, int], num_frames: int
) -> list[np.ndarray]:
    """Affines (frame pixel -> photo pixel), one per frame, of a camera drifting by 10-28 % of the
    frame's width in a random direction with a small wobble, zooming by up to 15 % and turning by up
    to 7 degrees over 16 frames (proportionally less or more for other lengths: the speed per frame is
    what is drawn); the frame's window stays inside the photo (rejection sampling, then less motion)."""
    (photo_h, photo_w), (height, width) = photo_size, frame_size
    origin = np.array([(width - 1) / 2, (height - 1) / 2])
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=float)
    fit = min(photo_w / width, photo_h / height)  # the largest scale whose window fits the photo
    duration = (num_frames - 1) / 15
    for attempt in range(200):
        damping = duration * (1.0 if attempt < 150 else 0.3)
        scale_start = min(rng.uniform(0.8, 1.15), 0.95 * fit)
        scale_end = scale_start * (1 + damping * rng.uniform(-0.15, 0.15))
        angle_start = rng.uniform(-0.05, 0.05)
        angle_end = angle_start + damping * rng.uniform(-0.12, 0.12)
        centre_start = rng.uniform([0, 0], [photo_w, photo_h])
        heading = rng.uniform(0, 2 * math.pi)
        drift = damping * rng.uniform(0.1, 0.28) * width * np.array([math.cos(heading), math.sin(heading)])
        wobble_amplitude, wobble_phase = rng.uniform(0, 3, size=2), rng.uniform(0, 2 * math.pi, size=2)
        affines = []
        for step in range(num_frames):
            progress = step / max(1, num_frames - 1)
            wobble = wobble_amplitude * np.sin(2 * math.pi * 1.5 * progress + wobble_phase)
            wobble *= math.sin(math.pi * progress)  # no wobble at the ends: frame 0 is where we sample
            centre = centre_start + drift * progress + wobble
            scale = scale_start + (scale_end - scale_start) * progress
            angle = angle_start + (angle_end - angle_start) * progress
            affines.append(similarity(centre, scale, angle, origin))
        inside = all(
            (mapped[:, 0].min() >= 0)
            & (mapped[:, 0].max() <= photo_w - 1)
            & (mapped[:, 1].min() >= 0)
            & (mapped[:, 1].max() <= photo_h - 1)
            for mapped in (apply_affine(affine, corners) for affine in affines)
        )
        if inside:
            return affines
    raise ValueError(f"No camera path fits a {photo_w}x{photo_h} photo for {width}x{height} frames.")


def sticker(rng: np.random.Generator, donor: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A blob-shaped patch of `donor`: RGB (S, S, 3) and its mask (S, S) bool. The outline is a circle
    of `radius` with low-frequency radial bumps (star-shaped, so it is one connected piece)."""
    side = int(math.ceil(2 * radius * 1.5)) + 2
    top = rng.integers(0, donor.shape[0] - side)
    left = rng.integers(0, donor.shape[1] - side)
    patch = donor[top : top + side, left : left + side].copy()
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    angle, distance = np.arctan2(yy, xx), np.hypot(xx, yy)
    outline = np.ones_like(angle)
    for frequency in (2, 3, 4):
        outline += rng.uniform(0, 0.15) * np.cos(frequency * angle + rng.uniform(0, 2 * math.pi))
    return patch, distance <= radius * outline


def sticker_path(
    rng: np.random.Generator, frame_size: tuple[int, int], patch_side: int, num_frames: int
) -> list[np.ndarray]:
    """Affines (sticker pixel -> frame pixel): a start in the middle part of the frame, a straight move
    of 16-34 % of the frame's width, a turn of up to 0.3 rad and a scale change of up to 10 % over 16
    frames (proportionally for other lengths)."""
    height, width = frame_size
    duration = (num_frames - 1) / 15
    origin = np.array([(patch_side - 1) / 2] * 2)
    start = rng.uniform([0.3 * width, 0.3 * height], [0.7 * width, 0.7 * height])
    heading = rng.uniform(0, 2 * math.pi)
    move = duration * rng.uniform(0.16, 0.34) * width * np.array([math.cos(heading), math.sin(heading)])
    turn, growth = duration * rng.uniform(-0.3, 0.3), duration * rng.uniform(-0.1, 0.1)
    return [
        similarity(start + move * p, 1 + growth * p, turn * p, origin) for p in np.linspace(0, 1, num_frames)
    ]


# -- pseudo videos --------------------------------------------------------------------------------


def textured(grey: np.ndarray, threshold: float = 6.0, window: int = 7) -> np.ndarray:
    """(H, W) bool: the local standard deviation of grey (0..255) over a window exceeds `threshold`.
    Flat areas (sky, walls) have no true match to find; points are only sampled where there is some."""
    grey = grey.astype(np.float32)
    mean = cv2.blur(grey, (window, window))
    variance = cv2.blur(grey * grey, (window, window)) - mean * mean
    return np.sqrt(variance.clip(0)) > threshold


def grid_sample_points(
    rng: np.random.Generator, allowed: np.ndarray, cells: tuple[int, int], margin: int
) -> np.ndarray:
    """One random allowed pixel per cell of a (rows, columns) grid over the frame (minus `margin`):
    points spread over the frame. Returns (N, 2) integer x, y pixel indices (cells with none are skipped)."""
    height, width = allowed.shape
    rows = np.linspace(margin, height - margin, cells[0] + 1).astype(int)
    columns = np.linspace(margin, width - margin, cells[1] + 1).astype(int)
    points = []
    for top, bottom in zip(rows[:-1], rows[1:], strict=True):
        for left, right in zip(columns[:-1], columns[1:], strict=True):
            ys, xs = np.nonzero(allowed[top:bottom, left:right])
            if len(ys):
                pick = rng.integers(len(ys))
                points.append((left + xs[pick], top + ys[pick]))
    return np.array(points, dtype=np.int64).reshape(-1, 2)


def pseudo_video(
    photo: np.ndarray,
    donor: np.ndarray,
    name: str = "pseudo",
    source: str = "pseudo",
    num_frames: int = 16,
    frame_size: tuple[int, int] = (256, 320),
    seed: int = 0,
    num_regions: int = 6,
    point_cells: tuple[int, int] = (6, 8),
    sticker_points: int = 16,
) -> EvalVideo:
    """A pseudo video of `photo` seen by a moving camera, with a sticker cut from `donor` moving over it.

    Returns an `EvalVideo` with frames (T, H, W, 3), tracks of up to rows x columns background points
    (one per grid cell, on texture) plus `sticker_points` on the sticker, and masks (T, H, W)."""
    rng = np.random.default_rng(seed)
    height, width = frame_size
    photo = resize_short_side(photo, PHOTO_SHORT_SIDE, upscale=True)
    donor = resize_short_side(donor, PHOTO_SHORT_SIDE, upscale=True)
    regions = photo_regions(photo, num_regions)
    cameras = camera_path(rng, photo.shape[:2], frame_size, num_frames)
    patch, patch_mask = sticker(rng, donor, radius=rng.uniform(0.14, 0.2) * min(height, width))
    stickers = sticker_path(rng, frame_size, patch.shape[0], num_frames)

    inverse_map = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    nearest_map = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP  # labels: no blending of ids
    frames, masks, sticker_masks = [], [], []
    for camera, placement in zip(cameras, stickers, strict=True):
        background = cv2.warpAffine(photo, camera, (width, height), flags=inverse_map)
        region_map = cv2.warpAffine(regions, camera, (width, height), flags=nearest_map)
        to_patch = invert_affine(placement)  # frame pixel -> sticker pixel
        texture = cv2.warpAffine(patch, to_patch, (width, height), flags=inverse_map)
        covered = cv2.warpAffine(patch_mask.astype(np.uint8), to_patch, (width, height), flags=nearest_map)
        covered = covered.astype(bool)
        frames.append(np.where(covered[..., None], texture, background))
        masks.append(region_map)
        sticker_masks.append(covered)
    frames, covered = np.stack(frames), np.stack(sticker_masks)

    # Region ids -> objects: the regions visible in frame 0 over 3 % of it; the largest becomes background.
    region_maps = np.stack(masks)
    first = region_maps[0][~covered[0]]
    ids, areas = np.unique(first, return_counts=True)
    keep = ids[(areas >= 0.03 * height * width) & (areas < areas.max())]
    relabel = np.zeros(int(regions.max()) + 1, dtype=np.int32)
    relabel[keep] = np.arange(1, len(keep) + 1)
    masks = relabel[region_maps]
    masks[covered] = len(keep) + 1  # the sticker, on top

    # Query points on frame 0: background points on texture away from the sticker's edge, sticker points
    # inside it; then each one's true position in every frame through its own motion.
    grey = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    kernel = np.ones((7, 7), np.uint8)
    near_sticker = cv2.dilate(covered[0].astype(np.uint8), kernel).astype(bool)
    background_queries = grid_sample_points(rng, textured(grey) & ~near_sticker, point_cells, margin=8)
    inside = cv2.erode(covered[0].astype(np.uint8), kernel).astype(bool)
    ys, xs = np.nonzero(inside & textured(grey))
    if len(ys) < sticker_points:
        ys, xs = np.nonzero(inside)
    picks = rng.choice(len(ys), size=min(sticker_points, len(ys)), replace=False)
    sticker_queries = np.stack([xs[picks], ys[picks]], axis=1)

    in_photo = apply_affine(cameras[0], background_queries.astype(float))
    on_sticker = apply_affine(invert_affine(stickers[0]), sticker_queries.astype(float))
    tracks = np.stack(
        [
            np.concatenate(
                [apply_affine(invert_affine(camera), in_photo), apply_affine(placement, on_sticker)]
            )
            for camera, placement in zip(cameras, stickers, strict=True)
        ]
    )  # OpenCV coordinates (pixel centres at integers)
    tracks = (tracks + 0.5).astype(np.float32)  # -> pixel centres at i + 0.5
    inside_frame = (
        (tracks[..., 0] >= 0) & (tracks[..., 0] < width) & (tracks[..., 1] >= 0) & (tracks[..., 1] < height)
    )
    column = np.clip(tracks[..., 0].astype(int), 0, width - 1)
    row = np.clip(tracks[..., 1].astype(int), 0, height - 1)
    hidden = covered[np.arange(num_frames)[:, None], row, column]
    hidden[:, len(background_queries) :] = False  # the sticker is on top of everything
    visible = inside_frame & ~hidden

    steps = np.linalg.norm(np.diff(tracks, axis=0), axis=-1)
    notes = {
        "photo_size": list(photo.shape[:2]),
        "points": int(tracks.shape[1]),
        "sticker_points": len(sticker_queries),
        "objects": int(masks.max()),
        "mean_step_px": round(float(steps.mean()), 2),
        "max_step_px": round(float(steps.max()), 2),
        "visible_fraction": round(float(visible[1:].mean()), 3),
    }
    return EvalVideo(name, source, frames, tracks, visible, masks.astype(np.int32), notes)


# -- stereo ---------------------------------------------------------------------------------------


def stereo_video(downscale: int = 2, point_cells: tuple[int, int] = (12, 16), seed: int = 0) -> EvalVideo:
    """scikit-image's motorcycle stereo pair as the 2-frame video [left, right], area-downscaled by
    `downscale`, with points on the left where the true disparity is known and their true right positions.

    Points hidden in the right view are found with a z-buffer: a left pixel is occluded when another
    pixel of its row lands within a pixel of the same right position with a disparity over 1 larger."""
    left, right, disparity = sources.stereo_pair()
    height = left.shape[0] // downscale * downscale
    width = left.shape[1] // downscale * downscale
    left, right, disparity = left[:height, :width], right[:height, :width], disparity[:height, :width]
    known = np.isfinite(disparity)

    rows, columns = np.nonzero(known)
    landing = np.round(columns - disparity[rows, columns]).astype(int)
    lands = (landing >= 0) & (landing < width)
    nearest = np.full((height, width), -np.inf)  # per right pixel: the largest disparity landing there
    np.maximum.at(nearest, (rows[lands], landing[lands]), disparity[rows[lands], columns[lands]])
    nearest = np.maximum(nearest, np.maximum(np.roll(nearest, 1, axis=1), np.roll(nearest, -1, axis=1)))
    unoccluded = np.zeros((height, width), bool)
    unoccluded[rows[lands], columns[lands]] = (
        disparity[rows[lands], columns[lands]] >= nearest[rows[lands], landing[lands]] - 1.0
    )

    rng = np.random.default_rng(seed)
    small = (width // downscale, height // downscale)
    left_small = cv2.resize(left, small, interpolation=cv2.INTER_AREA)
    right_small = cv2.resize(right, small, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(left, cv2.COLOR_RGB2GRAY)
    queries = grid_sample_points(rng, known & textured(grey), point_cells, margin=8 * downscale)
    x, y = queries[:, 0], queries[:, 1]
    left_points = np.stack([x + 0.5, y + 0.5], axis=1) / downscale
    right_points = np.stack([x - disparity[y, x] + 0.5, y + 0.5], axis=1) / downscale
    tracks = np.stack([left_points, right_points]).astype(np.float32)
    visible = np.stack([np.ones(len(queries), bool), unoccluded[y, x]])
    visible[1] &= (tracks[1, :, 0] >= 0) & (tracks[1, :, 0] < small[0])
    notes = {
        "downscale": downscale,
        "points": len(queries),
        "mean_disparity_px": round(float(disparity[y, x].mean() / downscale), 2),
        "max_disparity_px": round(float(disparity[y, x].max() / downscale), 2),
        "visible_fraction": round(float(visible[1].mean()), 3),
    }
    frames = np.stack([left_small, right_small])
    return EvalVideo("motorcycle-stereo", "stereo", frames, tracks, visible, None, notes)


def split_pseudo_videos(
    split: str, num_frames: int = 24, frame_size: tuple[int, int] = (256, 320)
) -> list[EvalVideo]:
    """One pseudo video per still scene of a scene split's part ("validation" or "test", `split.py`),
    its sticker cut from the next scene's photo of the same part, so nothing in it comes from another part:
    moving subjects with known colours for the colorization protocols. Seeds are the scene's position."""
    stills = dict(sources.scene_stills())
    names, seen = [], set()
    for name in sources_in(split, stills):
        if scene_of(name) not in seen:  # one photo per scene (a stereo pair's second view adds nothing)
            seen.add(scene_of(name))
            names.append(name)
    videos = []
    for index, name in enumerate(names):
        donor = names[(index + 1) % len(names)]
        video = pseudo_video(
            stills[name],
            stills[donor],
            f"pseudo-{name}",
            f"pseudo-{split}",
            num_frames,
            frame_size,
            seed=index,
        )
        video.notes["sticker_from"] = donor
        videos.append(video)
    return videos


def evaluation_videos(
    num_frames: int = 16, frame_size: tuple[int, int] = (256, 320), seed: int = 0
) -> list[EvalVideo]:
    """The whole evaluation set: one pseudo video per photo of `evaluation_photos()` (its sticker cut from
    the next photo in the list), then the stereo pair."""
    photos = evaluation_photos()
    videos = []
    for index, (name, source, photo) in enumerate(photos):
        donor_name, _, donor = photos[(index + 1) % len(photos)]
        video = pseudo_video(photo, donor, name, source, num_frames, frame_size, seed=seed * 1000 + index)
        video.notes["sticker_from"] = donor_name
        videos.append(video)
    videos.append(stereo_video(seed=seed))
    return videos
