"""Correspondence evaluation: metrics on hand-made cases, the ground truth of the pseudo videos and the
stereo pair, the baseline feature extractors, and propagation on a pure translation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skimage_data

from pipelines.correspondence.baselines import (
    BASELINES,
    EfficientNetLite0Features,
    RawLabFeatures,
    XFeatFeatures,
)
from pipelines.correspondence.evaluate import greyed, markdown_report, mask_j, point_accuracy, summarize
from pipelines.correspondence.propagation import track
from pipelines.data.known_motion import (
    grid_sample_points,
    pseudo_video,
    stereo_video,
    textured,
)


def sample_colour(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear colour (N, 3) of a frame at points (x, y) with pixel centres at i + 0.5."""
    x = (points[:, 0] - 0.5).astype(np.float32).reshape(1, -1)
    y = (points[:, 1] - 0.5).astype(np.float32).reshape(1, -1)
    return cv2.remap(frame.astype(np.float32), x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]


@pytest.fixture(scope="module")
def small_pseudo_video():
    return pseudo_video(
        skimage_data.astronaut(), skimage_data.coffee(), num_frames=6, frame_size=(128, 160), seed=1
    )


@pytest.fixture(scope="module")
def stereo():
    return stereo_video(downscale=2)


# -- metrics --------------------------------------------------------------------------------------


def test_point_accuracy_exact_and_known_offsets():
    true = np.zeros((3, 4, 2))
    true[..., 0] = np.arange(4) * 10.0
    assert point_accuracy(true, true, np.ones((3, 4), bool)) == {2: 1.0, 4: 1.0, 8: 1.0}

    predicted = true.copy()
    predicted[1:, 0] += [3.0, 0.0]  # 3 px off
    predicted[1:, 1] += [3.0, 4.0]  # 5 px off
    predicted[1:, 2] += [0.0, 10.0]  # 10 px off
    predicted[0] += 100.0  # frame 0 is given: never scored
    accuracy = point_accuracy(predicted, true, np.ones((3, 4), bool))
    assert accuracy == {2: 0.25, 4: 0.5, 8: 0.75}

    visible = np.ones((3, 4), bool)
    visible[1:, 2] = False  # the 10-px point is occluded: not scored
    assert point_accuracy(predicted, true, visible, thresholds=(4,)) == {4: pytest.approx(2 / 3)}
    assert math.isnan(point_accuracy(predicted, true, np.zeros((3, 4), bool))[4])


def test_mask_j_of_known_overlaps():
    true = np.zeros((2, 20, 20), np.int32)
    true[:, 0:10, 0:10] = 1
    true[:, 10:20, 10:20] = 2
    assert mask_j(true, true) == 1.0

    predicted = true.copy()
    predicted[1] = 0
    predicted[1, 0:10, 5:15] = 1  # object 1 shifted by half its width: IoU 50 / 150
    predicted[1, 10:20, 10:20] = 2
    assert mask_j(predicted, true) == pytest.approx((1 / 3 + 1) / 2)

    predicted[1, 10:20, 10:20] = 0  # object 2 lost
    assert mask_j(predicted, true) == pytest.approx((1 / 3 + 0) / 2)

    gone = true.copy()
    gone[1] = 0  # both objects left the frame, and the prediction finds nothing: 1 each
    assert mask_j(gone, gone) == 1.0
    assert math.isnan(mask_j(np.zeros_like(true), np.zeros_like(true)))  # no object at all


def test_summary_and_report_skip_missing_metrics():
    results = [
        {"video": "a", "source": "pseudo-heldout", "frames": 4, "points_within_2px": 0.5,
         "points_within_4px": 1.0, "points_within_8px": 1.0, "mask_j": 0.5, "seconds_per_frame": 0.1},
        {"video": "b", "source": "stereo", "frames": 2, "points_within_2px": 0.0,
         "points_within_4px": 0.5, "points_within_8px": 1.0, "mask_j": None, "seconds_per_frame": 0.3},
    ]  # fmt: skip
    summary = summarize(results)
    assert summary["all"]["points_within_4px"] == pytest.approx(0.75)
    assert summary["all"]["mask_j"] == pytest.approx(0.5)  # the stereo pair has no masks
    assert math.isnan(summary["stereo"]["mask_j"])
    report = markdown_report({"m": {"summary": summary, "videos": results}})
    assert "| m | 25.0 | 75.0 | 100.0 | 50.0 | 0.200 |" in report
    assert "| m / stereo (1) | 0.0 | 50.0 | 100.0 | – | 0.300 |" in report


# -- ground truth ---------------------------------------------------------------------------------


def test_pseudo_video_shapes_and_determinism(small_pseudo_video):
    video = small_pseudo_video
    frames, count = video.frames, video.tracks.shape[1]
    assert frames.shape == (6, 128, 160, 3) and frames.dtype == np.uint8
    assert video.tracks.shape == (6, count, 2) and video.visible.shape == (6, count) and count >= 20
    assert video.visible[0].all() and video.visible[1:].mean() > 0.5
    assert video.masks.shape == (6, 128, 160) and video.masks.max() >= 2  # regions + the sticker
    again = pseudo_video(
        skimage_data.astronaut(), skimage_data.coffee(), num_frames=6, frame_size=(128, 160), seed=1
    )
    np.testing.assert_array_equal(again.frames, frames)
    np.testing.assert_array_equal(again.tracks, video.tracks)
    np.testing.assert_array_equal(again.masks, video.masks)


def test_greyed_video_has_luma_frames_and_the_same_ground_truth(small_pseudo_video):
    video = small_pseudo_video
    grey = greyed(video)
    assert grey.frames.shape == video.frames.shape and grey.frames.dtype == np.uint8
    assert (grey.frames == grey.frames[..., :1]).all()  # R = G = B
    luma = video.frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    assert np.abs(grey.frames[..., 0] - luma).max() <= 1
    assert grey.tracks is video.tracks and grey.masks is video.masks and grey.name == video.name
    assert video.frames.std(axis=-1).max() > 0  # the original is untouched


def test_pseudo_video_tracks_follow_the_colour(small_pseudo_video):
    video = small_pseudo_video
    first = sample_colour(video.frames[0], video.tracks[0])
    errors = []
    for t in range(1, len(video.frames)):
        seen = video.visible[t]
        errors.append(
            np.abs(sample_colour(video.frames[t], video.tracks[t, seen]) - first[seen]).mean(axis=1)
        )
        # A point that moved by the wrong motion lands on other colours.
        wrong = sample_colour(video.frames[t], video.tracks[0, seen] + [6.0, -5.0])
        assert np.median(np.abs(wrong - first[seen]).mean(axis=1)) > 2 * np.median(errors[-1])
    errors = np.concatenate(errors)
    assert np.median(errors) < 8 and np.percentile(errors, 90) < 25  # resampling blurs a little
    # The sticker hides background points some of the time, never its own points.
    assert not video.visible.all()


def test_pseudo_video_regions_keep_their_colour(small_pseudo_video):
    video = small_pseudo_video
    frames, masks = video.frames.astype(np.float32), video.masks
    checked = 0
    for label in np.unique(masks[0])[1:]:  # the objects (background 0 is the rest: a mixture)
        reference = frames[0][masks[0] == label].mean(axis=0)
        for t in range(1, len(frames)):
            region = masks[t] == label
            # while most of the region is in view (a region of mixed colours changes its mean as it leaves)
            if region.sum() > 0.8 * (masks[0] == label).sum():
                checked += 1
                assert np.abs(frames[t][region].mean(axis=0) - reference).max() < 15, (label, t)
    assert checked >= 5


def test_stereo_ground_truth_maps_left_to_matching_right_pixels(stereo):
    assert stereo.frames.shape == (2, 250, 370, 3) and stereo.masks is None
    seen = stereo.visible[1]
    assert seen.mean() > 0.8 and stereo.tracks.shape[1] > 100
    left = sample_colour(stereo.frames[0], stereo.tracks[0, seen])
    right = sample_colour(stereo.frames[1], stereo.tracks[1, seen])
    same_place = sample_colour(stereo.frames[1], stereo.tracks[0, seen])  # ignoring the disparity
    truth_error = np.abs(left - right).mean(axis=1)
    assert np.median(truth_error) < 10
    assert np.median(np.abs(left - same_place).mean(axis=1)) > 2 * np.median(truth_error)
    assert np.all(stereo.tracks[1, :, 1] == stereo.tracks[0, :, 1])  # rectified: rows do not change


# -- baselines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("size", [(64, 96), (50, 70)])
def test_baseline_features_are_normalized_and_cover_the_frame(name, size):
    torch.set_num_threads(1)
    extractor = {"raw-lab": RawLabFeatures, "efficientnet-lite0": EfficientNetLite0Features}.get(
        name, XFeatFeatures
    )()
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    extractor.reset()
    features = extractor(frame)
    channels, height, width = features.shape
    assert channels >= 3 and features.dtype == torch.float32
    torch.testing.assert_close(features.norm(dim=0), torch.ones(height, width), atol=1e-4, rtol=0)
    stride = {"raw-lab": 4}.get(name, 8)
    # The grid covers the frame: within a cell of stride x grid, both ways (XFeat: 4 cells).
    cells = 4 if name == "xfeat" else 1
    assert abs(height * stride - size[0]) <= stride * cells / 2 + 1e-6
    assert abs(width * stride - size[1]) <= stride * cells / 2 + 1e-6


def test_raw_lab_features_tell_dark_from_bright():
    extractor = RawLabFeatures()
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[:, 8:] = 200  # grey levels on one ray of RGB: a plain normalized Lab would still differ in a/b = 0
    features = extractor(frame)
    assert float(features[:, 2, 0] @ features[:, 2, 3]) < 0.9  # dark vs bright cell
    assert float(features[:, 2, 0] @ features[:, 3, 0]) > 0.999  # dark vs dark


# -- propagation ----------------------------------------------------------------------------------


def test_raw_lab_propagation_recovers_a_translation():
    torch.set_num_threads(1)
    photo = cv2.resize(skimage_data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    shift = np.array([3, 2])  # the window moves by (x, y) per frame: content moves the other way
    frames = np.stack([photo[20 + 2 * t : 116 + 2 * t, 30 + 3 * t : 158 + 3 * t] for t in range(6)])
    rng = np.random.default_rng(0)
    grey = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    queries = grid_sample_points(rng, textured(grey), (4, 6), margin=12) + 0.5
    truth = np.stack([queries - shift * t for t in range(6)])
    visible = (truth[..., 0] > 0) & (truth[..., 1] > 0)
    tracks = track(frames, RawLabFeatures(), points=queries)
    assert tracks.points.shape == truth.shape
    assert point_accuracy(tracks.points, truth, visible, thresholds=(4,))[4] >= 0.75
