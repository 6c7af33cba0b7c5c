"""core.reanchoring (anchored colour, free-reference alignment) and core.matching's patch difference, on
small generated tensors: known shifts, pans and patches, so every expected answer is exact."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skimage_data

from pipelines.core.colour import frame_to_tensor, luminance_and_ab
from pipelines.core.matching import mean_absolute_patch_difference, patch_cost
from pipelines.core.reanchoring import (
    ANCHOR_KINDS,
    KIND_DIRECT,
    KIND_HELD,
    MIN_ALIGNMENT_INLIERS,
    SOURCE_ANCHOR,
    SOURCE_FALLBACK,
    SOURCE_PREVIOUS,
    AnchoredColour,
    AnchoringConfig,
    align_to_frames,
    keep_small_changes,
    lowest,
    take,
    warp_to_frame,
)
from pipelines.core.warp import inside_image, pixel_grid

HEIGHT, WIDTH = 64, 80
MARGIN = 12  # the scene is this much larger on every side than a frame, so frames can be shifted crops
INTERIOR = (..., slice(10, -10), slice(10, -10))  # away from the borders a shift uncovers


def smooth_scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A scene larger than a frame: luminance (1, 1, H', W') textured at a few pixels' scale, in [20, 75]
    (so brighter values match nothing), and ab (1, 2, H', W') smooth colour blobs that do not follow L
    (the colour can only come from matching positions, not from the luminance)."""
    rng = np.random.default_rng(seed)
    height, width = HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN
    luminance = gaussian_filter(rng.normal(size=(height, width)), 2.0)
    luminance = (luminance - luminance.min()) / (luminance.max() - luminance.min()) * 55 + 20
    ab = gaussian_filter(rng.normal(size=(2, height, width)), (0, 4, 4))
    ab = ab / ab.std() * 20
    return torch.from_numpy(luminance).float()[None, None], torch.from_numpy(ab).float()[None]


def crop(scene: torch.Tensor, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """The frame whose pixel x shows the scene's (MARGIN, MARGIN) + x + (dx, dy): frame(x) = anchor(x + d)
    for the anchor `crop(scene)`."""
    return scene[..., MARGIN + dy : MARGIN + dy + HEIGHT, MARGIN + dx : MARGIN + dx + WIDTH]


def anchor_code(kind: int, anchor: int = 0) -> int:
    return SOURCE_ANCHOR + len(ANCHOR_KINDS) * anchor + kind


def grey_fallback() -> torch.Tensor:
    return torch.zeros(1, 2, HEIGHT, WIDTH)


# --------------------------------------------------------------------------------------------------- matching


def test_mean_absolute_patch_difference_averages_over_the_window():
    query = torch.full((1, 1, 6, 7), 50.0)
    assert torch.allclose(mean_absolute_patch_difference(query, query - 3.0, 3), torch.full_like(query, 3.0))
    outlier = query.clone()
    outlier[..., 2, 3] += 9.0  # one pixel off by 9 (a sub-pixel edge)
    difference = mean_absolute_patch_difference(query, outlier, 3)[0, 0]
    near = torch.zeros(6, 7, dtype=torch.bool)
    near[1:4, 2:5] = True
    assert torch.allclose(difference[near], torch.tensor(1.0))  # 9 / 9 in each 3x3 window holding it
    assert torch.equal(difference[~near], torch.zeros_like(difference[~near]))
    # Averaged over what the window covers inside the frame: 9 / 4 for a corner pixel's 2x2 window.
    corner = query.clone()
    corner[..., 0, 0] += 9.0
    assert mean_absolute_patch_difference(query, corner, 3)[0, 0, 0, 0].item() == pytest.approx(9 / 4)
    # Linear in the outlier, where the squared patch cost lets one pixel outweigh a window of agreement.
    assert patch_cost(query, outlier, 3)[0, 0, 2, 3].item() == pytest.approx(81 / 9)


# ----------------------------------------------------------------------------------------------- take, lowest


def test_take_and_lowest_choose_one_candidate_per_pixel():
    generator = torch.Generator().manual_seed(0)
    stacked = torch.randn(2, 4, 3, 5, 6, generator=generator)
    index = torch.randint(0, 4, (2, 1, 5, 6), generator=generator)
    taken = take(stacked, index)
    assert taken.shape == (2, 3, 5, 6)
    for b in range(2):
        for y in range(5):
            for x in range(6):
                assert torch.equal(taken[b, :, y, x], stacked[b, index[b, 0, y, x], :, y, x])
    errors = [torch.rand(2, 1, 5, 6, generator=generator) for _ in range(4)]
    assert torch.equal(lowest(errors), torch.cat(errors, dim=1).argmin(dim=1, keepdim=True))
    tied = [torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)]
    assert torch.equal(lowest(tied), torch.ones(1, 1, 2, 2, dtype=torch.long))  # the first of the best


# -------------------------------------------------------------------------------------------- anchored colour


@pytest.mark.parametrize(("dx", "dy"), [(3, 2), (-4, 1)])
def test_direct_match_recovers_an_anchor_shifted_by_whole_pixels(dx, dy):
    luminance, ab = smooth_scene()
    anchoring = AnchoredColour()
    anchoring.add_anchor(crop(luminance), crop(ab))
    out, source = anchoring.step(crop(luminance, dx, dy), grey_fallback())
    assert out.shape == (1, 2, HEIGHT, WIDTH) and source.shape == (1, 1, HEIGHT, WIDTH)
    assert source.dtype == torch.int64
    truth = crop(ab, dx, dy)
    error = (out - truth)[INTERIOR].abs()
    assert error.mean() < 0.5 and error.max() < 1.5
    assert (crop(ab) - truth)[INTERIOR].abs().mean() > 4  # the anchor's colours in place are far off
    # No previous frame and no chain yet: every interior pixel took the direct flow to the anchor.
    assert torch.equal(source[INTERIOR], torch.full_like(source[INTERIOR], anchor_code(KIND_DIRECT)))


def test_chain_follows_a_pan_from_a_keyframe():
    """A keyframe (the anchor itself) then frames panning 2 px right and 1 px down each: the anchor's
    positions travel along the chain, and each frame reads the anchor's colour at them."""
    luminance, ab = smooth_scene(seed=1)
    anchoring = AnchoredColour()
    anchoring.add_anchor(crop(luminance), crop(ab))
    given = anchoring.given(crop(luminance), crop(ab), anchor_index=0)
    assert torch.equal(given, crop(ab))
    grid = pixel_grid(HEIGHT, WIDTH)
    for t in range(1, 5):
        out, source = anchoring.step(crop(luminance, 2 * t, t), grey_fallback())
        assert (out - crop(ab, 2 * t, t))[INTERIOR].abs().mean() < 0.6
        assert (source[INTERIOR] >= SOURCE_ANCHOR).float().mean() > 0.99
        offset = (anchoring.anchors[0].positions - grid)[INTERIOR]
        expected = torch.tensor([2.0 * t, 1.0 * t]).view(1, 2, 1, 1)
        assert (offset - expected).abs().max() < 0.4, t


def test_still_frame_holds_the_anchors_colour():
    """The keyframe's content again, unmoved: the anchor's colour at each pixel's own place, exactly
    (no flow noise moves it)."""
    luminance, ab = smooth_scene(seed=2)
    anchoring = AnchoredColour(AnchoringConfig(blend_temperature=0))
    anchoring.add_anchor(crop(luminance), crop(ab))
    anchoring.given(crop(luminance), crop(ab), anchor_index=0)
    out, source = anchoring.step(crop(luminance), grey_fallback())
    assert torch.allclose(out, crop(ab), atol=1e-4)
    assert (source == anchor_code(KIND_HELD)).float().mean() > 0.95


def test_content_that_matches_nothing_takes_the_fallback():
    """A flat patch brighter than anything in the anchor (a new object): no candidate agrees within
    `fallback_error`, so the fallback's colour stands there; the rest is matched."""
    luminance, ab = smooth_scene(seed=3)
    frame = crop(luminance, 3, 2).clone()
    frame[..., 20:44, 30:54] = 95.0
    fallback = torch.tensor([40.0, -40.0]).view(1, 2, 1, 1).expand(1, 2, HEIGHT, WIDTH)
    anchoring = AnchoredColour()
    anchoring.add_anchor(crop(luminance), crop(ab))
    anchoring.given(crop(luminance), crop(ab), anchor_index=0)  # a previous output to chain from, too
    out, source = anchoring.step(frame, fallback)
    inside = (..., slice(24, 40), slice(34, 50))  # the patch, less half a window
    assert torch.equal(source[inside], torch.full_like(source[inside], SOURCE_FALLBACK))
    assert torch.allclose(out[inside], fallback[inside], atol=1e-3)
    outside = torch.ones(1, 1, HEIGHT, WIDTH, dtype=torch.bool)
    outside[..., 14:50, 24:60] = False
    outside[..., :10, :] = outside[..., -10:, :] = outside[..., :, :10] = outside[..., :, -10:] = False
    assert (source[outside] >= SOURCE_ANCHOR).float().mean() > 0.99
    assert (out - crop(ab, 3, 2)).abs()[outside.expand_as(out)].mean() < 0.6
    # It is the threshold that decides: at a fallback_error above any L difference the anchor wins there.
    lenient = AnchoredColour(AnchoringConfig(fallback_error=100.0))
    lenient.add_anchor(crop(luminance), crop(ab))
    assert (lenient.step(frame, fallback)[1][inside] != SOURCE_FALLBACK).all()


def test_keep_small_changes_keeps_the_previous_colour_only_below_the_threshold_where_it_matches():
    previous = torch.zeros(1, 2, 1, 4)
    ab = torch.tensor([[[[1.5, -1.9, 2.0, 1.0]], [[0.0, 0.5, 0.0, -1.0]]]])
    matches = torch.tensor([[[[True, True, True, False]]]])
    kept = keep_small_changes(ab, previous, matches, threshold=2.0)
    # Pixels 0 and 1 changed by less than 2 in both channels: kept; pixel 2 changed by 2 in a: changes;
    # pixel 3 changed little but its previous pixel is other content: changes.
    assert torch.equal(kept[..., :2], previous[..., :2])
    assert torch.equal(kept[..., 2:], ab[..., 2:])


def test_keep_small_changes_with_a_ramp_moves_part_of_the_way_between_threshold_and_threshold_plus_ramp():
    previous = torch.zeros(1, 2, 1, 4)
    ab = torch.tensor([[[[1.0, 3.0, 5.0, 3.0]], [[0.0, 0.0, 0.0, 0.0]]]])
    matches = torch.tensor([[[[True, True, True, False]]]])
    kept = keep_small_changes(ab, previous, matches, threshold=2.0, ramp=2.0)
    # Below the threshold: kept; 3 = threshold + half the ramp: half way; past threshold + ramp: all the
    # way; where the previous pixel is other content: the new colour as is.
    assert torch.allclose(kept[0, 0, 0], torch.tensor([0.0, 1.5, 5.0, 3.0]))
    assert torch.equal(kept[:, 1], ab[:, 1])


def test_inside_image_marks_positions_that_read_the_image_itself():
    positions = torch.tensor([[[[0.0, 4.0, 4.01, -0.5]], [[0.0, 2.0, 1.0, 1.0]]]])  # (1, 2, 1, 4)
    assert inside_image(positions, height=3, width=5).tolist() == [[[[True, True, False, False]]]]


@pytest.mark.parametrize("inside_only", [False, True])
def test_content_entering_at_a_border_does_not_take_the_repeated_border_colour(inside_only):
    """A pan 3 px to the right: the flow of the 3 new columns points outside the previous frame, where
    the read repeats its last column. With a fallback error that any match beats, the previous output
    takes them; with `previous_inside_only` it is not a candidate there and the fallback colours them."""
    luminance, ab = smooth_scene(seed=6)
    fallback = torch.tensor([40.0, -40.0]).view(1, 2, 1, 1).expand(1, 2, HEIGHT, WIDTH)
    config = AnchoringConfig(fallback_error=100.0, previous_inside_only=inside_only)
    anchoring = AnchoredColour(config)
    anchoring.given(crop(luminance), crop(ab))  # no anchor: the previous output and the fallback only
    out, source = anchoring.step(crop(luminance, 3, 0), fallback)
    entering = (..., slice(10, -10), slice(-3, None))
    expected = SOURCE_FALLBACK if inside_only else SOURCE_PREVIOUS
    assert torch.equal(source[entering], torch.full_like(source[entering], expected))
    # Inside, the previous output's colour moves with the pan either way.
    assert (out - crop(ab, 3, 0))[INTERIOR].abs().mean() < 0.6


def test_positions_follow_the_colour_kept_when_candidates_match_equally():
    """A flat frame, where every candidate matches the luminance exactly: the anchor's chain sits 5 px
    right of the direct match, and the previous output has the direct match's colour. The output takes
    that colour either way (the colour-change weight); with `positions_follow_colour` the anchor's next
    positions are the ones that gave it, so the chain does not read the other colour on the next frame."""
    flat = torch.full((1, 1, HEIGHT, WIDTH), 50.0)
    ab = pixel_grid(HEIGHT, WIDTH)[:, :1].repeat(1, 2, 1, 1)  # a = b = x
    grid = pixel_grid(HEIGHT, WIDTH)
    shifted = grid + torch.tensor([5.0, 0.0]).view(1, 2, 1, 1)
    for follow in (False, True):
        config = AnchoringConfig(
            hold_positions=False,
            direct_penalty=0.0,
            direct_min_chain_error=0.0,
            positions_follow_colour=follow,
        )
        anchoring = AnchoredColour(config)
        anchoring.add_anchor(flat, ab)
        anchoring.given(flat, ab)
        anchoring.anchors[0].positions = shifted.clone()
        out, _ = anchoring.step(flat, grey_fallback())
        assert torch.allclose(out[INTERIOR], ab[INTERIOR], atol=1e-3)
        expected = grid if follow else shifted
        near = (anchoring.anchors[0].positions - expected)[INTERIOR].abs().amax(dim=1) < 0.05
        # Without it the first of the equal candidates, the chain, keeps its positions (float rounding
        # in the reads lets the direct match win a few pixels).
        assert near.all() if follow else near.float().mean() > 0.9


def test_direct_match_only_where_the_chain_has_lost_the_surface():
    """A keyframe, then a frame panned (2, 1) px: the chain matches it. A direct match favoured by a
    negative penalty wins wherever it is offered; with `direct_min_chain_error` it is offered only where
    the chain errs by that much, which is nowhere inside."""
    luminance, ab = smooth_scene(seed=7)
    sources = {}
    for min_error in (0.0, 2.0):
        anchoring = AnchoredColour(AnchoringConfig(direct_penalty=-1.0, direct_min_chain_error=min_error))
        anchoring.add_anchor(crop(luminance), crop(ab))
        anchoring.given(crop(luminance), crop(ab), anchor_index=0)
        anchoring.steps = 4  # a frame with a direct match (every `direct_every`-th)
        sources[min_error] = anchoring.step(crop(luminance, 2, 1), grey_fallback())[1][INTERIOR]
    assert (sources[0.0] == anchor_code(KIND_DIRECT)).float().mean() > 0.9
    assert not (sources[2.0] == anchor_code(KIND_DIRECT)).any()


@pytest.mark.parametrize("offset, kept", [(1.0, True), (3.0, False)])
def test_hysteresis_keeps_a_colour_within_a_just_noticeable_difference(offset, kept):
    """A still frame after a keyframe whose given colour is the anchor's plus `offset` ab units: the held
    anchor colour wins the choice, but a difference below `colour_hysteresis` (2) is flicker and the
    given colour stays; a larger one is content and the anchor's colour replaces it. Off (0), the anchor's
    colour always replaces it. (No colour-change weight, which would also favour the given colour.)"""
    luminance, ab = smooth_scene(seed=5)
    outputs = {}
    for hysteresis in (2.0, 0.0):
        config = AnchoringConfig(colour_hysteresis=hysteresis, colour_change_weight=0.0, hysteresis_ramp=0.0)
        anchoring = AnchoredColour(config)
        anchoring.add_anchor(crop(luminance), crop(ab))
        anchoring.given(crop(luminance), crop(ab) + offset, anchor_index=0)
        outputs[hysteresis] = anchoring.step(crop(luminance), grey_fallback())[0]
    inner = outputs[2.0][INTERIOR]
    assert torch.allclose(inner, crop(ab + offset if kept else ab)[INTERIOR], atol=1e-3)
    assert torch.allclose(outputs[0.0][INTERIOR], crop(ab)[INTERIOR], atol=1e-3)


def test_zero_temperature_is_a_hard_choice_that_a_positive_one_blends():
    """One anchor of a single colour, a fallback of another and a frame where both win somewhere: with
    blend_temperature=0 each pixel is exactly one of the two (`take` by the source map); with a positive
    temperature, the pixels where the errors are close get a mix of the two."""
    luminance, _ = smooth_scene(seed=4)
    anchor_colour = torch.tensor([30.0, 10.0]).view(1, 2, 1, 1)
    fallback_colour = torch.tensor([-20.0, 25.0]).view(1, 2, 1, 1)
    anchor_ab = anchor_colour.expand(1, 2, HEIGHT, WIDTH)
    fallback = fallback_colour.expand(1, 2, HEIGHT, WIDTH)
    frame = crop(luminance, 2, 1).clone()
    frame[..., 20:44, 30:54] = 95.0
    outputs = {}
    for temperature in (0.0, 1.0):
        anchoring = AnchoredColour(AnchoringConfig(blend_temperature=temperature))
        anchoring.add_anchor(crop(luminance), anchor_ab)
        outputs[temperature] = anchoring.step(frame, fallback)
    hard, source = outputs[0.0]
    chose_anchor = (source != SOURCE_FALLBACK).long()
    assert 0.2 < chose_anchor.float().mean() < 0.95
    expected = take(torch.stack([fallback, anchor_ab], dim=1), chose_anchor)
    assert torch.allclose(hard, expected, atol=1e-4)
    soft, soft_source = outputs[1.0]
    assert torch.equal(soft_source, source)  # the source map names the best candidate either way
    # A blend lies on the segment between the two colours: soft = f + w (a - f) with w in [0, 1].
    weight = ((soft - fallback_colour) / (anchor_colour - fallback_colour)).clamp(-1, 2)
    assert torch.allclose(weight[:, :1], weight[:, 1:], atol=1e-3)
    assert weight.min() > -1e-3 and weight.max() < 1 + 1e-3
    weight = weight[:, :1]
    assert ((weight > 0.05) & (weight < 0.95)).any()  # some pixels share
    # The best candidate has the larger weight (two candidates: more than half).
    assert (weight[chose_anchor.bool()] > 0.5).all() and (weight[~chose_anchor.bool()] < 0.5).all()


# -------------------------------------------------------------------------------------------------- alignment


def astronaut_luminance() -> torch.Tensor:
    return luminance_and_ab(frame_to_tensor(skimage_data.astronaut()))[0]  # (1, 1, 512, 512)


def smooth_noise_luminance(height: int, width: int, seed: int) -> torch.Tensor:
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 2)
    return torch.from_numpy((noise - noise.min()) / (noise.max() - noise.min()) * 100)[None, None]


def test_align_to_frames_picks_the_frame_that_shows_the_reference():
    astronaut = astronaut_luminance()
    reference = astronaut[..., 60:180, 180:330]  # a 120x150 photo of part of the scene
    camera = torch.from_numpy(skimage_data.camera()[200:360, 150:350].astype(np.float32) / 2.55)
    frames = [
        (0, smooth_noise_luminance(160, 200, seed=0)),
        (3, camera[None, None]),
        (6, astronaut[..., 40:200, 150:350]),  # frame (x, y) shows the reference's (x - 30, y - 20)
        (9, astronaut[..., 300:460, 300:500]),  # the same photo, but not the reference's part of it
    ]
    alignment = align_to_frames(reference, frames)
    assert alignment.frame_index == 6
    assert alignment.inliers >= MIN_ALIGNMENT_INLIERS
    points = np.array([[40.0, 30.0, 1.0], [150.0, 110.0, 1.0], [100.0, 60.0, 1.0]]).T
    mapped = alignment.homography @ points
    np.testing.assert_allclose(mapped[:2] / mapped[2:], points[:2] - [[30.0], [20.0]], atol=1.5)
    # Without the frame that shows it, nothing matches well enough: no frame, no homography.
    others = [frame for frame in frames if frame[0] != 6]
    alone = align_to_frames(reference, others)
    assert alone.frame_index is None and alone.homography is None
    assert alone.inliers < MIN_ALIGNMENT_INLIERS


def test_align_to_frames_gives_no_frame_for_unrelated_or_featureless_references():
    frames = [(0, astronaut_luminance()[..., 40:200, 150:350]), (1, smooth_noise_luminance(160, 200, 1))]
    unrelated = align_to_frames(smooth_noise_luminance(120, 150, seed=7), frames)
    assert unrelated.frame_index is None and unrelated.homography is None
    assert unrelated.inliers < MIN_ALIGNMENT_INLIERS
    flat = align_to_frames(torch.full((1, 1, 120, 150), 50.0), frames)  # no features at all
    assert flat.frame_index is None and flat.inliers == 0


# ---------------------------------------------------------------------------------------------- warp_to_frame


def test_warp_to_frame_identity_and_translation():
    image = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    warped, covered = warp_to_frame(image, np.eye(3), (20, 30))
    assert covered.shape == (1, 1, 20, 30) and covered.dtype == torch.bool and covered.all()
    assert torch.allclose(warped, image, atol=1e-5)
    # The frame's (x, y) is the image's (x + 5, y - 2): the frame's right 5 columns and top 2 rows fall
    # outside the image.
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -2.0], [0.0, 0.0, 1.0]])
    warped, covered = warp_to_frame(image, shift, (20, 30))
    expected = torch.zeros(1, 1, 20, 30, dtype=torch.bool)
    expected[..., 2:, :25] = True
    assert torch.equal(covered, expected)
    assert torch.allclose(warped[..., 2:, :25], image[..., :18, 5:], atol=1e-5)
    # A frame larger than the image (the reference covers only part of it).
    warped, covered = warp_to_frame(image, np.eye(3), (25, 40))
    assert covered[..., :20, :30].all() and not covered[..., 20:, :].any() and not covered[..., :, 30:].any()


@pytest.mark.parametrize("decay, kept", [(1.0, False), (0.9, True)])
def test_a_colour_kept_for_frames_earns_trust_against_a_later_near_match(decay, kept):
    """A keyframe; four still frames whose luminance departs from it by 5 L everywhere (a 1-pixel
    checkerboard), so nothing matches within `fallback_error` (4) and the fallback's colour is shown and
    kept; then a frame only 3 L off the keyframe. Inheriting the fallback's error unchanged (decay 1), that
    near match takes over and the colour flips; with decay 0.9 the kept colour is trusted by then
    (4 x 0.9^4 = 2.6 < 3 on the fifth frame) and stays."""
    luminance, _ = smooth_scene(seed=3)
    keyframe = crop(luminance)
    checker = (torch.arange(WIDTH)[None, :] + torch.arange(HEIGHT)[:, None]) % 2 * 2.0 - 1.0  # +-1
    anchor_ab = torch.tensor([20.0, 0.0])[None, :, None, None].expand(1, 2, HEIGHT, WIDTH)
    fallback_ab = torch.tensor([10.0, 0.0])[None, :, None, None].expand(1, 2, HEIGHT, WIDTH)
    config = AnchoringConfig(inherited_error_decay=decay, colour_change_weight=0.0, colour_hysteresis=0.0)
    anchoring = AnchoredColour(config)
    anchoring.add_anchor(keyframe, anchor_ab)
    anchoring.given(keyframe, anchor_ab, anchor_index=0)
    for _ in range(4):
        ab, _ = anchoring.step(keyframe + 5.0 * checker, fallback_ab)
        assert torch.allclose(ab[INTERIOR], fallback_ab[INTERIOR])
    ab, _ = anchoring.step(keyframe + 3.0 * checker, fallback_ab)
    expected = fallback_ab if kept else anchor_ab
    assert (ab[INTERIOR] - expected[INTERIOR]).abs().amax(dim=1).lt(1e-3).float().mean() > 0.95
