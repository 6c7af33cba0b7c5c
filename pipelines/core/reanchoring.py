"""Anchored colour: carry the colours of anchor frames along a video by matched positions, per pixel
choosing the source whose luminance agrees best, so colour neither drifts nor fades.

An anchor is a colour image tied to the video's geometry: a keyframe the user coloured, or a free
reference photo aligned to the frame it shows (`align_to_frames`). For every new frame, each pixel
chooses among these candidate colours, by the mean absolute luminance difference over a small window
between the frame and what the candidate read (`mean_absolute_patch_difference`, L units):

1. per anchor, the anchor's colour at the previous frame's positions, **held** (where nothing moved it
   matches exactly, so flow noise on flat surfaces cannot move a still surface's colour);
2. per anchor, the anchor's colour read at **chained positions**: where the previous frame's pixel was
   in the anchor, moved along the optical flow from this frame to the previous one. Positions, not
   colours, travel along the chain, and the colour is always read from the anchor itself, so it is not
   blurred again on every frame;
3. per anchor, those positions **re-anchored**: refined by a flow from this frame to the anchor warped by
   them (a short residual motion), which removes the drift the chain accumulates (as the appearance
   pipeline's Zero stage does, `appearance.modeling.zero_stage_step`);
4. per anchor, every `direct_every`-th frame, the **direct flow** from this frame to the anchor (what a
   fresh match finds: it recovers a region that the chain lost, and reaches anchors later in the video),
   with a `direct_penalty`: a fresh match can land on another surface of the same brightness; and only
   where the anchor's other candidates err by `direct_min_chain_error` or more (where the chain holds,
   a fresh match only adds flicker);
5. the previous output's colour moved along the flow (content coloured by the fallback keeps its colour
   from frame to frame instead of flickering), with a small `chain_penalty` so that an anchor wins ties,
   and never more trusted than the candidate it came from: a colour the fallback gave stays beatable by
   an anchor (a free reference aligned to a later frame takes over there), though less so on every frame
   it is kept (`inherited_error_decay`: a steady colour earns trust). Not where the flow points
   outside the previous frame (`previous_inside_only`): content entering at a border would read the
   repeated border pixel, which on a smooth surface matches the luminance and smears inwards;
6. the **fallback** (the model's own prediction) at a fixed error `fallback_error`: it wins wherever no
   match agrees within that error (new content, occlusions, lighting changes); listed last, so the
   previous output wins a tie with it.

Each candidate's error also grows with its colour's distance from the previous output's colour along the
flow (`colour_change_weight`), so a surface changes colour only where the luminance clearly says so; the
same sum chooses the anchor's positions that the next frame's chain starts from
(`positions_follow_colour`), so the chain goes on reading the colour that was shown. Last, **hysteresis**:
where the previous output's pixel matches this one (`hysteresis_max_error`) and the chosen colour differs
from its colour by less than `colour_hysteresis` ab units, that colour is kept: a change below a
just-noticeable colour difference is flicker (candidates reading an anchor a fraction of a pixel apart),
not content; a change up to `hysteresis_ramp` units larger moves only part of the way.

A hard choice per pixel by default (`blend_temperature` blends near-equal candidates): a blend of a
right and a wrong colour is a grey one, and a blend changes from frame to frame (flicker). On the
validation scenes (see the colormnet-lite card, where the defaults below were chosen) this beat the DIS
flow chain of the keyframe's colour by about 2 dB, and more on moving pixels, where the colour chain
alone fades and bleeds.

Shapes: luminance (1, 1, H, W) Lab L in [0, 100], ab (1, 2, H, W) Lab ab, positions (1, 2, H, W) absolute
(x, y) in the anchor (`core.warp` conventions), all at the output resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .flow import luminance_flow, luminance_to_u8
from .matching import mean_absolute_patch_difference
from .warp import inside_image, pixel_grid, sample_at

DIS_PRESETS = {
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
}

# Which candidate a pixel took, for `AnchoredColour.step`'s source map.
SOURCE_FALLBACK = 0
SOURCE_PREVIOUS = 1
SOURCE_ANCHOR = 2  # + len(ANCHOR_KINDS) * anchor index + the candidate's kind:
ANCHOR_KINDS = ("held", "chained", "re-anchored", "direct")
KIND_HELD, KIND_CHAINED, KIND_REANCHORED, KIND_DIRECT = range(len(ANCHOR_KINDS))


@dataclass(frozen=True)
class AnchoringConfig:
    """Settings of `AnchoredColour` (the colorization pipeline's config holds them).

    window: side of the window over which luminance differences are averaged (odd).
    fallback_error: the fallback's fixed error, in L units (0-100): a matched colour wins only where its
        window's mean |L difference| is below it. Chosen on the validation scenes (2, 4 and 8 tried).
    chain_penalty: added to the previous output's error, so an anchor wins where both agree.
    direct_penalty: added to the direct flow's error: a fresh long-range match can land on another
        surface of the same brightness (a pink cup on a blue one), where the chain knows which it is.
    colour_change_weight: per unit of ab distance (mean over a and b) from the previous output's colour
        along the flow, added to each candidate's error: a colour changes only where the luminance
        says so clearly, which keeps the colour of a surface steady from frame to frame.
    blend_temperature: with a positive temperature the colours are blended with weights
        exp(-error / temperature) (L units): candidates within about that much of the best one share;
        0 (the default): the best one only. On the validation scenes 1.0 scored 0.5 dB more PSNR but
        flickered more (CDC 0.00080 against 0.00077; the DIS flow chain's 0.00078).
    max_flow_short_side: frames are matched at most at this short side (DIS's cost grows with the pixel
        count; flow is smooth) and the flow is scaled back up.
    refine_flow_preset: DIS preset ("medium", "fast", "ultrafast") of the re-anchoring flow, which only
        has the chain's residual drift to find; the other flows use "medium".
    hold_positions: also offer each anchor's colour at the previous frame's positions, unmoved: where
        nothing moved it matches exactly and wins ties (listed first), so a flow's noise on flat or
        iso-luminant surfaces (a gradient: flow slides along it) cannot move a still surface's colour.
    direct_every: the direct flow to each anchor runs on every this-many-th frame only (it recovers what
        the chain lost, which need not happen on every frame; the flows are most of the cost).
    colour_hysteresis: a pixel keeps the previous output's colour (moved along the flow) when the chosen
        colour differs from it by less than this many ab units in both a and b (0: off). About 2 is a
        just-noticeable difference (CIE delta E 2.3). Chosen on the validation scenes: 2 lowered their CDC
        by 0.65 % for 0.03 dB of PSNR and raised PSNR on both real videos.
    hysteresis_max_error: ... and when the previous frame's pixel there matches this one's luminance within
        this mean |L difference| (L units): elsewhere the previous colour belongs to other content.
    hysteresis_ramp: a change of `colour_hysteresis` + r ab units (0 < r < ramp) moves r / ramp of the way
        (0: a colour jumps all the way once past the threshold).
    previous_inside_only: the previous output's colour is no candidate where the flow points outside the
        previous frame (content entering at a border).
    positions_follow_colour: each anchor's next positions are chosen by the match error plus the
        colour-change term, like the output colour, rather than by the match error alone.
    direct_min_chain_error: the direct flow is a candidate only where the anchor's other candidates' best
        match error is at least this (L units; 0: everywhere).
    inherited_error_decay: the previous output's colour inherits the error of the candidate it came from,
        times this factor on each frame it is kept (1: never less; the inherited error never falls below the
        previous frame's own match error + `chain_penalty`). 0.9 was chosen on the validation scenes, with
        panned views of their videos (the colormnet-lite card): content entering a panning shot takes the
        fallback's colour, and with 1 an anchor match of the same brightness could still flip it several
        frames later (flicker); 0.9 lowered the CDC by 0.6 % for 0.17 dB of PSNR.

    `previous_inside_only`, `positions_follow_colour`, `direct_min_chain_error` and `hysteresis_ramp` were
    chosen together on the validation scenes (the colormnet-lite card): +0.10 dB mean PSNR, +0.11 on moving
    pixels, CDC -1.2 % / -1.1 % on the two real videos, 0.06 dB less on one of them.
    """

    window: int = 7
    fallback_error: float = 4.0
    chain_penalty: float = 0.5
    direct_penalty: float = 1.0
    colour_change_weight: float = 0.1
    blend_temperature: float = 0.0
    max_flow_short_side: int | None = 480
    refine_flow_preset: str = "medium"
    hold_positions: bool = True
    direct_every: int = 4
    colour_hysteresis: float = 2.0
    hysteresis_max_error: float = 2.0
    hysteresis_ramp: float = 2.0
    previous_inside_only: bool = True
    positions_follow_colour: bool = True
    direct_min_chain_error: float = 2.0
    inherited_error_decay: float = 0.9


@dataclass
class Anchor:
    luminance: torch.Tensor  # (1, 1, H, W)
    ab: torch.Tensor  # (1, 2, H, W)
    positions: torch.Tensor | None = None  # (1, 2, H, W): where the last output frame's pixels are in it
    features: ImageFeatures | None = (
        None  # its ORB features, for the direct match (computed when first needed)
    )


class AnchoredColour:
    """Colours frames one `step` at a time from anchors, the previous output and a fallback prediction."""

    def __init__(self, config: AnchoringConfig | None = None) -> None:
        self.config = config or AnchoringConfig()
        self.anchors: list[Anchor] = []
        # The last output's (L, ab, match error): the error of the candidate each pixel took, 0 where the
        # colour was given; the previous output's colour is never trusted more than where it came from.
        self.previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.steps = 0  # `step`s taken

    def add_anchor(self, luminance: torch.Tensor, ab: torch.Tensor) -> None:
        """A colour image in the video's geometry (a keyframe, or an aligned reference): its pixels are
        matched from every later `step`."""
        self.anchors.append(Anchor(luminance, ab))

    def fresh(self) -> AnchoredColour:
        """A new `AnchoredColour` with this one's config and anchors (their images, not their positions):
        for another pass over the video (the frames before the first anchored frame, backwards)."""
        other = AnchoredColour(self.config)
        for anchor in self.anchors:
            other.add_anchor(anchor.luminance, anchor.ab)
        return other

    def given(
        self, luminance: torch.Tensor, ab: torch.Tensor, anchor_index: int | None = None
    ) -> torch.Tensor:
        """A frame whose colour is given (a keyframe): output as is, and the next frames chain from it.
        With `anchor_index`, the frame is that anchor: its chain restarts here, at each pixel's own place."""
        if anchor_index is not None:
            self.restart(anchor_index)
        self.previous = (luminance, ab, torch.zeros_like(luminance))
        return ab

    def restart(self, anchor_index: int) -> None:
        """The next frame is the one the anchor shows (a keyframe, or the frame an aligned reference was
        warped to): its chain restarts there, at each pixel's own place."""
        anchor = self.anchors[anchor_index]
        anchor.positions = pixel_grid(*anchor.luminance.shape[-2:], device=anchor.luminance.device)

    def _flow(self, luminance: torch.Tensor, other: torch.Tensor, preset: str = "medium") -> torch.Tensor:
        return luminance_flow(luminance, other, self.config.max_flow_short_side, DIS_PRESETS[preset])

    def _error(self, luminance: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
        return mean_absolute_patch_difference(luminance, read, self.config.window)

    def step(self, luminance: torch.Tensor, fallback_ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """luminance (1, 1, H, W) and the fallback's ab (1, 2, H, W) -> (ab (1, 2, H, W), the source each
        pixel took (1, 1, H, W) int64: `SOURCE_FALLBACK`, `SOURCE_PREVIOUS` or `SOURCE_ANCHOR` +
        len(ANCHOR_KINDS) * anchor index + the candidate's kind (`KIND_HELD`, ...), the best one where the
        colours were blended)."""
        config = self.config
        grid = pixel_grid(*luminance.shape[-2:], device=luminance.device)
        # Per candidate: its match error, and that plus the colour-change term (what the choice compares).
        codes, colours, errors, costs = [], [], [], []
        moved = None  # each pixel's place in the previous output frame
        previous_colour = None  # (1, 2, H, W): the previous output's colour there
        previous_match = None  # (1, 1, H, W): how well the previous frame's luminance there matches
        if self.previous is not None:
            previous_luminance, previous_ab, previous_error = self.previous
            moved = grid + self._flow(luminance, previous_luminance)
            read = sample_at(torch.cat([previous_luminance, previous_ab, previous_error], dim=1), moved)
            previous_colour = read[:, 1:3]
            previous_match = self._error(luminance, read[:, :1])
            codes.append(SOURCE_PREVIOUS)
            colours.append(previous_colour)
            # No better than the match it came from: a colour the fallback gave stays beatable by an anchor
            # (a free reference aligned to a later frame takes over there). But a colour kept from frame to
            # frame earns trust (`inherited_error_decay`), so that a near-match of the same brightness
            # elsewhere in the anchor cannot flip new content's colour frames after it entered.
            inherited_error = config.inherited_error_decay * read[:, 3:]
            previous_error = torch.maximum(previous_match + config.chain_penalty, inherited_error)
            if config.previous_inside_only:
                # Content entering at a border: the read there repeats the border pixel.
                outside = ~inside_image(moved, *previous_luminance.shape[-2:])
                previous_error = previous_error.masked_fill(outside, float("inf"))
            errors.append(previous_error)
            costs.append(previous_error)  # its colour is the previous colour: no change
        weigh_change = previous_colour is not None and config.colour_change_weight > 0
        for number, anchor in enumerate(self.anchors):
            kinds, positions = [], []
            # Held positions need no previous frame: the first frame of a pass that starts at the anchor's own
            # frame (`restart`) reads it pixel for pixel.
            if anchor.positions is not None and config.hold_positions:
                kinds.append(KIND_HELD)
                positions.append(anchor.positions)
            if anchor.positions is not None and moved is not None:
                chained = sample_at(anchor.positions, moved)
                warped = sample_at(anchor.luminance, chained)
                refined = sample_at(chained, grid + self._flow(luminance, warped, config.refine_flow_preset))
                kinds += [KIND_CHAINED, KIND_REANCHORED]
                positions += [chained, refined]
            if moved is None or anchor.positions is None or self.steps % config.direct_every == 0:
                kinds.append(KIND_DIRECT)
                positions.append(grid + self._flow(luminance, anchor.luminance))
            reads = [sample_at(torch.cat([anchor.luminance, anchor.ab], dim=1), p) for p in positions]
            anchor_errors = [self._error(luminance, read[:, :1]) for read in reads]
            if kinds[-1] == KIND_DIRECT:
                anchor_errors[-1] = anchor_errors[-1] + config.direct_penalty
                if len(kinds) > 1 and config.direct_min_chain_error > 0:
                    # A fresh match only where the chain has lost the surface.
                    chain_error = torch.stack(anchor_errors[:-1]).amin(dim=0)
                    lost = chain_error >= config.direct_min_chain_error
                    anchor_errors[-1] = anchor_errors[-1].masked_fill(~lost, float("inf"))
            anchor_costs = anchor_errors
            if weigh_change:
                anchor_costs = [
                    error + colour_change(read[:, 1:], previous_colour, config.colour_change_weight)
                    for error, read in zip(anchor_errors, reads, strict=True)
                ]
            # The anchor's best positions are where the next frame's chain starts.
            position_errors = anchor_costs if config.positions_follow_colour else anchor_errors
            anchor.positions = take(torch.stack(positions, dim=1), lowest(position_errors))
            codes += [SOURCE_ANCHOR + len(ANCHOR_KINDS) * number + kind for kind in kinds]
            colours += [read[:, 1:] for read in reads]
            errors += anchor_errors
            costs += anchor_costs
        # The fallback comes last, so that the previous output's colour wins a tie with it (no flicker).
        codes.append(SOURCE_FALLBACK)
        colours.append(fallback_ab)
        errors.append(torch.full_like(luminance, config.fallback_error))
        costs.append(
            errors[-1] + colour_change(fallback_ab, previous_colour, config.colour_change_weight)
            if weigh_change
            else errors[-1]
        )
        choice = lowest(costs)  # (1, 1, H, W) index into the lists
        colours = torch.stack(colours, dim=1)  # (1, S, 2, H, W)
        if config.blend_temperature > 0:
            weights = torch.softmax(torch.cat(costs, dim=1) / -config.blend_temperature, dim=1)
            ab = (weights[:, :, None] * colours).sum(dim=1)
        else:
            ab = take(colours, choice)
        if previous_colour is not None and config.colour_hysteresis > 0:
            ab = keep_small_changes(
                ab,
                previous_colour,
                previous_match <= config.hysteresis_max_error,
                config.colour_hysteresis,
                config.hysteresis_ramp,
            )
        self.previous = (luminance, ab, take(torch.stack(errors, dim=1), choice))
        self.steps += 1
        source = torch.tensor(codes, device=choice.device)[choice]
        return ab, source


def colour_change(colour: torch.Tensor, previous_colour: torch.Tensor, weight: float) -> torch.Tensor:
    """colour, previous_colour (B, 2, H, W) -> (B, 1, H, W): `weight` x the mean |ab difference|, the error
    added to a candidate for changing the colour (L units per ab unit)."""
    return weight * (colour - previous_colour).abs().mean(dim=1, keepdim=True)


def keep_small_changes(
    ab: torch.Tensor, previous_ab: torch.Tensor, matches: torch.Tensor, threshold: float, ramp: float = 0.0
) -> torch.Tensor:
    """ab, previous_ab (B, 2, H, W), matches (B, 1, H, W) bool -> ab with `previous_ab` kept wherever it
    matches and neither channel changed by `threshold` or more (colour hysteresis). With a positive
    `ramp`, a change of `threshold` + r (r < ramp) moves only r / ramp of the way, so a colour does not
    jump once it crosses the threshold."""
    change = (ab - previous_ab).abs().amax(dim=1, keepdim=True)
    if ramp <= 0:
        return torch.where((change < threshold) & matches, previous_ab, ab)
    moved = ((change - threshold) / ramp).clamp(0.0, 1.0)
    return torch.where(matches, previous_ab + moved * (ab - previous_ab), ab)


def lowest(errors: list[torch.Tensor]) -> torch.Tensor:
    """Per pixel, the index of the smallest of S error maps (each (B, 1, H, W)) -> (B, 1, H, W) int64, the
    first on ties. A running comparison: `torch.argmin` over a short channel axis is about ten times
    slower on a CPU at video resolution."""
    best, index = errors[0], torch.zeros_like(errors[0], dtype=torch.long)
    for number, error in enumerate(errors[1:], start=1):
        better = error < best
        best = torch.where(better, error, best)
        index = torch.where(better, torch.full_like(index, number), index)
    return index


def take(stacked: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per pixel, one of S candidates: stacked (B, S, C, H, W), index (B, 1, H, W) in 0..S-1
    -> (B, C, H, W)."""
    return stacked.gather(1, index[:, None].expand(-1, 1, stacked.shape[2], -1, -1))[:, 0]


# -- aligning a free reference ----------------------------------------------------------------------------

# ORB + RANSAC homography: a frame shows the reference's scene when at least this many matches agree.
MIN_ALIGNMENT_INLIERS = 25
ALIGNMENT_SHORT_SIDE = 360  # frames and reference are matched at this short side
ORB_FEATURES = 1500


@dataclass(frozen=True)
class Alignment:
    """Where a free reference belongs: the frame that shows its scene best and the homography (3, 3)
    from that frame's pixels to the reference's (both at full resolution), or no frame."""

    frame_index: int | None
    homography: np.ndarray | None
    inliers: int


@dataclass(frozen=True)
class ImageFeatures:
    """ORB keypoints of an image, matched at `ALIGNMENT_SHORT_SIDE`: points (N, 2) in the image's own pixels
    and their binary descriptors (N, 32), or None when it has too few."""

    points: np.ndarray | None
    descriptors: np.ndarray | None


def image_features(luminance: torch.Tensor) -> ImageFeatures:
    """ORB features of L (1, 1, H, W) in [0, 100]."""
    gray = luminance_to_u8(luminance)
    scale = min(1.0, ALIGNMENT_SHORT_SIDE / min(gray.shape[:2]))
    if scale < 1.0:
        size = (round(gray.shape[1] * scale), round(gray.shape[0] * scale))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    keypoints, descriptors = cv2.ORB_create(ORB_FEATURES).detectAndCompute(gray, None)
    if descriptors is None or len(keypoints) < MIN_ALIGNMENT_INLIERS:
        return ImageFeatures(None, None)
    return ImageFeatures(np.float32([keypoint.pt for keypoint in keypoints]) / scale, descriptors)


def fit_homography(source: ImageFeatures, target: ImageFeatures) -> tuple[np.ndarray | None, int]:
    """The homography (3, 3) from `source`'s pixels to `target`'s that most cross-checked ORB matches agree
    with (RANSAC, 3 px), and its number of inliers; (None, 0) without one."""
    if source.descriptors is None or target.descriptors is None:
        return None, 0
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(source.descriptors, target.descriptors)
    if len(matches) < MIN_ALIGNMENT_INLIERS:
        return None, 0
    source_points = source.points[[match.queryIdx for match in matches]]
    target_points = target.points[[match.trainIdx for match in matches]]
    homography, inlier_mask = cv2.findHomography(source_points, target_points, cv2.RANSAC, 3.0)
    inliers = 0 if inlier_mask is None else int(inlier_mask.sum())
    return (homography, inliers) if homography is not None else (None, 0)


def align_to_frames(reference_luminance: torch.Tensor, frames: list[tuple[int, torch.Tensor]]) -> Alignment:
    """Find the frame that shows the reference's scene: ORB features matched between the reference and
    each candidate frame, a homography fitted by RANSAC (`fit_homography`), and the frame with the most
    inliers wins if it has at least `MIN_ALIGNMENT_INLIERS`.

    reference_luminance (1, 1, h, w); frames: (frame index, luminance (1, 1, H, W)) pairs, all frames of
    the video's size. A homography is right for a static scene or a distant one; moving subjects are
    left to the per-pixel matching that follows (`AnchoredColour`), which re-checks every pixel.
    """
    reference = image_features(reference_luminance)
    best = Alignment(None, None, 0)
    for index, luminance in frames:
        homography, inliers = fit_homography(image_features(luminance), reference)
        if homography is not None and inliers > best.inliers:
            best = Alignment(index, homography, inliers)
    return best if best.inliers >= MIN_ALIGNMENT_INLIERS else Alignment(None, None, best.inliers)


def homography_positions(homography: np.ndarray, size: tuple[int, int], device: torch.device | str = "cpu"):
    """(1, 2, H, W): where the homography sends each pixel of a frame of `size` (H, W), and whether that
    lies in front of the camera ((1, 1, H, W) bool)."""
    height, width = size
    grid = pixel_grid(height, width, device=device)[0].reshape(2, -1)  # (2, H*W)
    points = torch.cat([grid, torch.ones_like(grid[:1])]).double()
    mapped = torch.from_numpy(homography).to(points) @ points
    positions = (mapped[:2] / mapped[2:].clamp_min(1e-9)).float().reshape(1, 2, height, width)
    return positions, (mapped[2:] > 0).reshape(1, 1, height, width)


def snap_to_identity(homography: np.ndarray, size: tuple[int, int], tolerance: float = 0.5) -> np.ndarray:
    """The identity when the homography moves none of a frame of `size` (H, W)'s corners by more than
    `tolerance` pixels, else the homography: a reference of the frame's own geometry (a still camera, the
    frame itself) is then read pixel for pixel, not resampled at RANSAC's sub-pixel noise, which blurs
    its colour edges."""
    height, width = size
    corners = np.float64([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]]).T
    mapped = homography @ corners
    moved = np.abs(mapped[:2] / mapped[2:] - corners[:2]).max()
    return np.eye(3) if moved <= tolerance else homography


def warp_to_frame(
    image: torch.Tensor, homography: np.ndarray, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read `image` (1, C, h, w) at the homography's image of every pixel of a frame of `size` (H, W) ->
    (the reference brought into the frame's geometry (1, C, H, W), where it covers the frame (1, 1, H, W)
    bool)."""
    positions, in_front = homography_positions(homography, size, image.device)
    return sample_at(image, positions), inside_image(positions, *image.shape[-2:]) & in_front
