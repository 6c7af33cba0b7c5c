"""Zero-to-Hero (Su et al., 2025) model components, sized for a CPU.

**Zero stage** (no training). The user's edit is kept as a *change* at full resolution, never as
raw pixel values: a per-pixel local colour map fitted between the original and the edited anchor
(`fit_colour_map`: in each small window, edited - original ~ M @ original + c, ridge-regularized
towards "no change") plus the remainder it misses (a painted pattern). Each target frame finds where
its pixels sit in the anchor (`zero_stage_step`):

1. correspondence-restricted cross-image attention (`zero_stage_readout`): queries are the target's
   features, keys the ORIGINAL anchor's features, each query keeps its top-k anchor matches at k/4, k
   and 4k; its values are the edit's colour maps at the feature stride and the anchor positions;
2. attention to the previous frame at full resolution (dense matching of raw luminance, DIS flow or
   block matching, `core/matching.py`): where it is confident, the previous output frame's
   anchor positions are copied; elsewhere the attention's positions are taken;
3. re-anchoring: the target is matched once more against the anchor warped by those positions, so
   drift does not accumulate along the chain.

The edit is then read from the anchor ONCE per frame at those positions (its colour map applied to the
target's own pixels, plus its remainder), so no frame is a resampling of a resampled frame and nothing
blurs frame after frame; where even the re-anchored match fails, the attention's colour map is applied
instead. Where the edit changed nothing the colour map and remainder are exactly zero, so the output is
exactly the input.

Features come from `AppearanceFeatureEncoder`: a frozen backbone from the registry in `core/backbones.py`
(`build_backbone`); by default
hueflow's motion-aware correspondence encoder at stride 4 (weights from checkpoints/mer-correspondence),
or any backbone's stride-8 features.

**Hero stage**: `HeroRestorer`, a small U-Net that maps the Zero-stage frame, the input frame, the
Zero stage's full-resolution match support and a second reading of the edit (the anchor's edit as one
global colour function, `core.colour.fit_colour_lookup`) to a correction of the Zero-stage frame. The
correction is gated to where the Zero stage changed something nearby (`restoration_gate`), so parts
of the frame far from the edit, and every frame of an unedited video, pass through exactly. Trained
on proxy pairs (`finetune.py`), pre-trained on many offline photos (`train.py`) and fine-tuned per
video (`finetune.finetune_restorer`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from kornia.filters import box_blur
from torch import nn

from ..core.backbones import FrozenBackboneMixin, build_backbone
from ..core.colour import apply_colour_lookup, fit_colour_lookup, luminance_and_ab
from ..core.layers import conv_block
from ..core.matching import dense_displacement, patch_cost
from ..core.resize import resize
from ..core.warp import pixel_grid, sample_at


@dataclass(frozen=True)
class ZeroStageConfig:
    top_k: int = 16  # the middle k; k/4 and 4k are fused with it
    temperature: float = 0.05  # softmax temperature on the cosine affinity of L2-normalized features
    colour_map_radius: int = (
        4  # half-size in processing pixels of the window each local colour map is fitted on
    )
    colour_map_eps: float = (
        1e-3  # ridge on the colour covariance (RGB in [0, 1]): small = sharper colour maps
    )
    previous_radius: int = 3  # `zero_stage_readout` with a previous frame: window half-size, in cells
    previous_log_weight: float = 0.0  # added to the previous frame's logits (< 0 trusts the anchor more)
    query_rows: int = 16  # query rows per band of the anchor attention (bounds its memory)
    edit_radius: int = 2  # half-size in pixels of the window of the full-resolution colour map
    edit_eps: float = 1e-3  # its ridge (large: the edit is carried as a plain per-pixel difference)
    matcher: str = "dis"  # dense matching to the previous frame and the anchor: "dis" or "block"
    match_radius: int = 3  # "block": search radius in pixels at each pyramid level
    match_block: int = 2  # "block": cell size (patches are 3x the cell)
    match_patch: int = 7  # patch side of the match cost that decides where a match is trusted
    match_threshold: float = 0.05  # mean squared (L/100) patch difference below which a match is chained
    fallback_threshold: float = 0.1  # ... above which the attention's colour map replaces the matched edit
    border_margin: float = 2.0  # positions this close to the anchor's border are content it may not show

    def fused_ks(self) -> tuple[int, ...]:
        return tuple(sorted({max(1, self.top_k // 4), self.top_k, 4 * self.top_k}))


# -- features -------------------------------------------------------------------------------------


class AppearanceFeatureEncoder(FrozenBackboneMixin, ModelMixin, ConfigMixin):
    """Luminance -> L2-normalized matching features, from a frozen registered backbone (`build_backbone`).

    `feature_stride=4` is available with the "mer-correspondence" backbone (its encoder's own grid);
    every backbone gives stride 8 (the backbone's "stride8" map)."""

    @register_to_config
    def __init__(
        self,
        backbone: str = "mer-correspondence",
        backbone_config: dict | None = None,
        feature_stride: int = 4,
    ) -> None:
        super().__init__()
        if feature_stride not in (4, 8):
            raise ValueError(f"feature_stride must be 4 or 8, got {feature_stride}.")
        if feature_stride == 4 and backbone != "mer-correspondence":
            raise ValueError(f"feature_stride=4 needs the 'mer-correspondence' backbone, not {backbone!r}.")
        self.frozen_backbone = build_backbone(backbone, backbone_config)
        self.frozen_backbone.requires_grad_(False).eval()

    @property
    def stride(self) -> int:
        return self.config.feature_stride

    @torch.no_grad()
    def forward(self, luminance: torch.Tensor) -> torch.Tensor:
        """luminance (B, 1, H, W), L in [0, 100], H and W multiples of 16 -> (B, C, H/s, W/s)."""
        if self.config.feature_stride == 4:
            features = self.frozen_backbone.encoder(luminance)  # no flow: frames are matched one by one
        else:
            features = self.frozen_backbone(luminance)["stride8"]
        return F.normalize(features, dim=1)


# -- the edit as a local colour map ------------------------------------------------------------


def fit_colour_map(
    original: torch.Tensor, edited: torch.Tensor, stride: int, radius: int, eps: float
) -> torch.Tensor:
    """The edit as local colour maps on the feature grid.

    original, edited (B, 3, H, W) RGB in [0, 1], H and W multiples of `stride` -> coefficients
    (B, 12, H/stride, W/stride): per position M (9, row-major) and c (3) with
    edited - original ~ M @ original + c over a (2 radius + 1)-pixel window (widened by the stride's
    averaging). Ridge regression towards M = 0: an unchanged window gives exactly zero coefficients.
    """
    batch, _, height, width = original.shape
    delta = edited - original
    kernel = (2 * radius + 1, 2 * radius + 1)

    def local_mean(tensor: torch.Tensor) -> torch.Tensor:  # (B, K, H, W) -> (B, K, H/s, W/s)
        return F.avg_pool2d(box_blur(tensor, kernel, border_type="replicate"), stride)

    mean_original = local_mean(original)  # (B, 3, h, w)
    mean_delta = local_mean(delta)
    products = torch.cat(
        [original[:, i : i + 1] * original for i in range(3)]
        + [delta[:, i : i + 1] * original for i in range(3)],
        dim=1,
    )  # (B, 18, H, W): o_i o_j, then d_i o_j
    moments = local_mean(products).view(batch, 2, 3, 3, *mean_original.shape[-2:])
    outer_original = mean_original[:, :, None] * mean_original[:, None]  # (B, 3, 3, h, w)
    covariance = moments[:, 0] - outer_original
    cross = moments[:, 1] - mean_delta[:, :, None] * mean_original[:, None]  # cov(d_i, o_j)
    # Per position: M = cross @ (covariance + eps I)^-1, i.e. M^T = solve(covariance + eps I, cross^T).
    covariance = covariance.permute(0, 3, 4, 1, 2) + eps * torch.eye(3, device=original.device)
    cross = cross.permute(0, 3, 4, 1, 2)  # (B, h, w, 3, 3)
    matrix = torch.linalg.solve(covariance, cross.transpose(-1, -2)).transpose(-1, -2)  # (B, h, w, 3, 3)
    matrix = matrix.permute(0, 3, 4, 1, 2)  # (B, 3, 3, h, w)
    offset = mean_delta - torch.einsum("bijhw,bjhw->bihw", matrix, mean_original)
    return torch.cat([matrix.flatten(1, 2), offset], dim=1)


# -- Zero stage: correspondence-restricted cross-image attention ----------------------------------


def _previous_window(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, radius: int, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and values of each query's (2r+1)^2 window in the previous frame.

    query, key (C, h, w), value (V, h, w) -> logits (h*w, K) (-inf outside the frame), values (V, h*w, K).
    One shifted product per offset: memory stays at (K, h, w) rather than an unfolded (C, K, h, w)."""
    height, width = query.shape[-2:]
    padded_key = F.pad(key, (radius,) * 4)
    padded_value = F.pad(value, (radius,) * 4)
    inside = F.pad(torch.ones(1, height, width, dtype=torch.bool, device=query.device), (radius,) * 4)
    window = 2 * radius + 1
    logits, values = [], []
    for dy in range(window):
        for dx in range(window):
            crop = (slice(None), slice(dy, dy + height), slice(dx, dx + width))
            logit = (query * padded_key[crop]).sum(0) / temperature  # (h, w)
            logits.append(logit.masked_fill(~inside[crop][0], float("-inf")))
            values.append(padded_value[crop])
    return torch.stack(logits, -1).view(height * width, -1), torch.stack(values, -1).view(
        value.shape[0], -1, len(values)
    )


def zero_stage_readout(
    query: torch.Tensor,
    anchor_key: torch.Tensor,
    anchor_value: torch.Tensor,
    config: ZeroStageConfig,
    previous_key: torch.Tensor | None = None,
    previous_value: torch.Tensor | None = None,
) -> torch.Tensor:
    """The anchor's values read at every position of a target frame.

    query (C, h, w): target features; anchor_key (C, ha, wa): ORIGINAL anchor features; anchor_value
    (V, ha, wa): the EDITED anchor's values (colour-map coefficients); previous_key (C, h, w) and
    previous_value (V, h, w): the previous output frame, or None -> (V, h, w).

    Each query keeps its top-4k anchor matches (one `topk`, sorted); for each k in `config.fused_ks()`
    one softmax runs over its k best anchor logits together with its previous-frame window (so a
    confident anchor match and a confident temporal match compete on the same scale), and the readouts
    are averaged. Queries go `config.query_rows` rows at a time against the whole anchor.
    """
    channels, height, width = query.shape
    keys = anchor_key.reshape(channels, -1)  # (C, N)
    values = anchor_value.reshape(anchor_value.shape[0], -1)  # (V, N)
    queries = query.reshape(channels, -1)  # (C, M)
    ks = [min(k, keys.shape[1]) for k in config.fused_ks()]
    previous_logits = previous_values = None
    if previous_key is not None and previous_value is not None:
        previous_logits, previous_values = _previous_window(
            query, previous_key, previous_value, config.previous_radius, config.temperature
        )
        previous_logits = previous_logits + config.previous_log_weight
    outputs = []
    band = config.query_rows * width
    for start in range(0, height * width, band):
        stop = min(start + band, height * width)
        logits = queries[:, start:stop].T @ keys / config.temperature  # (m, N)
        top_logits, index = logits.topk(max(ks), dim=1)  # (m, 4k), best first
        picked = values[:, index]  # (V, m, 4k)
        fused = 0.0
        for k in ks:
            band_logits, band_values = top_logits[:, :k], picked[..., :k]
            if previous_logits is not None:
                band_logits = torch.cat([band_logits, previous_logits[start:stop]], dim=1)
                band_values = torch.cat([band_values, previous_values[:, start:stop]], dim=2)
            weights = torch.softmax(band_logits, dim=1)  # (m, k [+ K])
            fused = fused + (band_values * weights).sum(dim=2)  # (V, m)
        outputs.append(fused / len(ks))
    return torch.cat(outputs, dim=1).view(-1, height, width)


def colour_map_change(coefficients: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """coefficients (B, 12, H, W) at rgb's resolution, rgb (B, 3, H, W) -> the change M @ rgb + c."""
    matrix = coefficients[:, :9].unflatten(1, (3, 3))
    return torch.einsum("bijhw,bjhw->bihw", matrix, rgb) + coefficients[:, 9:]


def _confidence(cost: torch.Tensor, threshold: float) -> torch.Tensor:
    """1 where a match's cost is below `threshold`, 0 above twice it, linear between."""
    return ((2 * threshold - cost) / threshold).clamp(0, 1)


def _inside(positions: torch.Tensor, height: int, width: int, margin: float) -> torch.Tensor:
    """positions (1, 2, H', W') in anchor pixels -> (1, 1, H', W') in [0, 1]: 0 on the anchor's border
    (where dense matching pins content the anchor does not show), 1 from `margin` pixels inside."""
    x, y = positions[:, :1], positions[:, 1:]
    distance = torch.minimum(torch.minimum(x, width - 1 - x), torch.minimum(y, height - 1 - y))
    return (distance / margin).clamp(0, 1)


def _cell_positions(height: int, width: int, grid: tuple[int, int], device) -> torch.Tensor:
    """(2, h, w): the (x, y) centre, in pixels of an (height, width) frame, of each cell of an (h, w) grid."""
    cell_h, cell_w = grid
    ys = (torch.arange(cell_h, dtype=torch.float32, device=device) + 0.5) * height / cell_h - 0.5
    xs = (torch.arange(cell_w, dtype=torch.float32, device=device) + 0.5) * width / cell_w - 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"))


@dataclass
class AnchorEdit:
    """The edited anchor, prepared once: what the cross-image attention reads (on the feature grid) and
    the edit at full resolution (what confident correspondences read)."""

    features: torch.Tensor  # (C, h, w) L2-normalized matching features of the ORIGINAL anchor
    values: torch.Tensor  # (15, h, w): colour map at the feature stride (12), cell centre (x, y), |x|^2
    luminance: torch.Tensor  # (1, 1, H, W) L / 100 of the original anchor: the block matching's key
    coefficients: torch.Tensor  # (1, 12, H, W) local colour map of the edit, fitted per pixel
    remainder: torch.Tensor  # (1, 3, H, W) what the colour map misses: edited - (original + change)
    lookup: torch.Tensor  # (1, 3, B, B, B) the edit as one global colour function (the Hero stage's input)
    lookup_error: torch.Tensor  # (1, 1, H, W) how far that function misses the edit at each anchor pixel


@dataclass
class FrameState:
    """What an output frame leaves for the next one: where each of its pixels sits in the anchor."""

    luminance: torch.Tensor  # (1, 1, H, W) L / 100 of the input frame
    positions: torch.Tensor  # (1, 2, H, W) (x, y) in anchor pixels
    weight: torch.Tensor  # (1, 1, H, W) in [0, 1]: how far the position is trusted
    support: torch.Tensor  # (1, 1, H, W) in [0, 1]: how far the edit was read from anchor content that
    # matches the pixel (1), rather than guessed (0): a fallback to the attention's coarse colour map, or
    # a position pinned to the anchor's border (content the anchor does not show).
    lookup_error: torch.Tensor  # (1, 1, H, W) `AnchorEdit.lookup_error` where the pixel sits in the anchor:
    # whether the edit there is a global colour function (small) or local, a region or a pattern (large)


def _luminance(rgb: torch.Tensor) -> torch.Tensor:
    return luminance_and_ab(rgb)[0] / 100.0


def encode_anchor(
    encoder: AppearanceFeatureEncoder,
    original: torch.Tensor,
    edited: torch.Tensor,
    config: ZeroStageConfig,
    processing_size: tuple[int, int] | None = None,
) -> AnchorEdit:
    """original, edited (1, 3, H, W) RGB in [0, 1] at the video's resolution -> the anchor's features (of
    the ORIGINAL frame, at `processing_size`, default (H, W), multiples of 16) and the edit: colour maps
    at the feature stride for the attention, per pixel (+ the remainder they miss) at full size, and as
    one global colour function (for the Hero stage)."""
    height, width = original.shape[-2:]
    processing_size = processing_size or (height, width)
    small_original, small_edited = resize(original, processing_size), resize(edited, processing_size)
    features = encoder(luminance_and_ab(small_original)[0])[0]
    coarse = fit_colour_map(
        small_original, small_edited, encoder.stride, config.colour_map_radius, config.colour_map_eps
    )[0]
    centres = _cell_positions(height, width, tuple(coarse.shape[-2:]), original.device)
    values = torch.cat([coarse, centres, (centres**2).sum(0, keepdim=True)])
    coefficients = fit_colour_map(original, edited, 1, config.edit_radius, config.edit_eps)
    remainder = edited - original - colour_map_change(coefficients, original)
    lookup = fit_colour_lookup(original, edited)
    lookup_error = (apply_colour_lookup(lookup, original) - edited).abs().amax(dim=1, keepdim=True)
    return AnchorEdit(features, values, _luminance(original), coefficients, remainder, lookup, lookup_error)


def anchor_state(anchor: AnchorEdit) -> FrameState:
    """The anchor frame itself: every pixel at its own position, fully trusted."""
    height, width = anchor.luminance.shape[-2:]
    return FrameState(
        anchor.luminance,
        pixel_grid(height, width, anchor.luminance.device),
        torch.ones_like(anchor.luminance),
        torch.ones_like(anchor.luminance),
        anchor.lookup_error,
    )


def zero_stage_step(
    encoder: AppearanceFeatureEncoder,
    target: torch.Tensor,
    anchor: AnchorEdit,
    previous: FrameState | None,
    config: ZeroStageConfig,
    processing_size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, FrameState]:
    """One target frame through the Zero stage: target (1, 3, H, W) RGB in [0, 1] at the video's
    resolution (features at `processing_size`, default (H, W)) -> the edited frame (1, 3, H, W) and the
    frame's state for the next one.

    1. Cross-image attention (`zero_stage_readout`, top-k at k/4, k, 4k): target features as queries, the
       ORIGINAL anchor's features as keys; values: the edit's colour maps and the anchor positions
       themselves, so every position gets a (coarse) anchor position and a colour map.
    2. Attention to the previous frame (the anchor for the first frame processed) by dense matching of
       raw luminance at full resolution (`dense_displacement`: DIS flow, or block matching): where the
       match is confident (`patch_cost`), the previous frame's anchor positions are copied; elsewhere
       the attention's positions are used.
    3. Those positions are refined against the anchor itself (the target matched against the anchor
       warped by them), at full resolution: drift never accumulates along the chain.
    4. Where the refined match is confident, the edit is read from the anchor at full resolution there:
       its per-pixel colour map applied to the target's own pixels, plus its remainder; elsewhere (content
       the anchor does not show) the attention's colour map is applied to the target's pixels.
    """
    height, width = target.shape[-2:]
    processing_size = processing_size or (height, width)
    features = encoder(luminance_and_ab(resize(target, processing_size))[0])[0]
    readout = zero_stage_readout(features, anchor.features, anchor.values, config)[None]  # (1, 15, h, w)
    readout = F.interpolate(readout, size=(height, width), mode="bilinear", align_corners=False)
    attended_map, attended_positions = readout[:, :12], readout[:, 12:14]

    luminance = _luminance(target)
    grid = pixel_grid(height, width, target.device)

    def match(other: torch.Tensor) -> torch.Tensor:
        return dense_displacement(luminance, other, config.matcher, config.match_radius, config.match_block)

    previous = previous if previous is not None else anchor_state(anchor)
    moved = grid + match(previous.luminance)
    cost = patch_cost(luminance, sample_at(previous.luminance, moved), config.match_patch)
    chained_weight = sample_at(previous.weight, moved) * _confidence(cost, config.match_threshold)
    initial = torch.where(chained_weight > 0.5, sample_at(previous.positions, moved), attended_positions)
    # Re-anchoring: match the target against the anchor brought onto its grid by those positions.
    refined = grid + match(sample_at(anchor.luminance, initial))
    positions = sample_at(initial, refined)
    cost = patch_cost(luminance, sample_at(anchor.luminance, positions), config.match_patch)
    weight = _confidence(cost, config.match_threshold)
    matched = _confidence(cost, config.fallback_threshold)
    support = matched * _inside(positions, height, width, config.border_margin)
    matched_change = colour_map_change(sample_at(anchor.coefficients, positions), target) + sample_at(
        anchor.remainder, positions
    )
    attended_change = colour_map_change(attended_map, target)
    output = (target + matched * matched_change + (1 - matched) * attended_change).clamp(0, 1)
    lookup_error = sample_at(anchor.lookup_error, positions)
    return output, FrameState(luminance, positions, weight, support, lookup_error)


# -- Hero stage -----------------------------------------------------------------------------------

# The restorer's convolution blocks: `core.layers.conv_block` with SiLU, as the restorer was trained.
restorer_block = partial(conv_block, activation=nn.SiLU)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(restorer_block(channels, channels), nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.body(hidden)


def _dilate(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Max filter of odd side `size` on (B, 1, H, W); separable (rows, then columns), so wide windows
    stay cheap at full resolution."""
    mask = F.max_pool2d(mask, (1, size), stride=1, padding=(0, size // 2))
    return F.max_pool2d(mask, (size, 1), stride=1, padding=(size // 2, 0))


def restoration_gate(
    zero: torch.Tensor, target: torch.Tensor, threshold: float, edit_reach: int
) -> torch.Tensor:
    """Where the Hero stage may change a Zero-stage frame: (B, 1, H, W) in [0, 1], 0 wherever the Zero
    stage changed no pixel within `edit_reach` // 2, 1 where a change reaches `threshold` (RGB in
    [0, 1]). The restorer corrects and extends an edit; it never invents one: far from the edit the
    input is kept exactly, and a video whose edited anchor equals the original passes through
    untouched."""
    change = (zero - target).abs().amax(dim=1, keepdim=True)
    return (_dilate(change, edit_reach) / threshold).clamp(0, 1)


LOOKUP_GAIN_SCALE = 10.0


class HeroRestorer(ModelMixin, ConfigMixin):
    """Restores a Zero-stage frame: (Zero-stage frame, input frame, match support, colour-lookup frame)
    -> corrected frame, full resolution.

    The Zero stage reads the edit from the anchor through local colour maps, per position. Its errors
    are of two kinds: where it fell back (content the anchor does not show: a pattern that is not
    continued, a recolour that stops at the wrong place), and where a local colour map, fitted on a
    few anchor pixels, meets colours it was not fitted on (lighting changes, motion blur, a soft hue
    selection). For the second kind the edit read as one global colour function of the whole anchor
    (`looked_up`) is often closer, and for local edits (a region, a pattern) it is wrong: the restorer
    learns when to trust which, first on many proxy edits, then per video on the anchor's own edit. A
    U-Net (one level per entry of `hidden_channels`, strides 1, 2, 4, ...) sees the Zero-stage frame,
    the input frame, their difference (the edit so far), where the Zero stage lacked support, the
    colour-lookup frame's difference from the Zero-stage frame and how far the lookup missed the edit
    where the pixel sits in the anchor (`FrameState.lookup_error`); it predicts, per pixel, how far to move
    towards the colour-lookup frame (a weight in [0, `lookup_gain`]) and a free correction, both applied
    inside `restoration_gate`. (The lookup and the Zero stage mostly differ by a level or two: a blend
    weight learns to pick between them far more easily than a correction of that size is regressed.)
    The correction layer and `lookup_gain` start at zero, so an untrained restorer returns the
    Zero-stage frame (the gain is stored divided by `LOOKUP_GAIN_SCALE`: Adam moves a parameter by
    about the learning rate per step, so it reaches a useful blend within a few hundred steps)."""

    @register_to_config
    def __init__(
        self,
        hidden_channels: tuple[int, ...] = (16, 32, 48, 64),
        num_residual_blocks: int = 2,
        gate_threshold: float = 4.0 / 255.0,
        edit_reach: int = 65,
    ) -> None:
        super().__init__()
        if len(hidden_channels) < 2:
            raise ValueError(f"hidden_channels needs at least two levels, got {hidden_channels}.")
        widths = list(hidden_channels)
        self.stem = nn.Sequential(restorer_block(14, widths[0]), restorer_block(widths[0], widths[0]))
        self.downs = nn.ModuleList(restorer_block(a, b, 2) for a, b in itertools.pairwise(widths))
        self.middle = nn.Sequential(*[ResidualBlock(widths[-1]) for _ in range(num_residual_blocks)])
        self.ups = nn.ModuleList(restorer_block(b + a, a) for a, b in itertools.pairwise(widths))
        self.head = nn.Conv2d(widths[0], 4, 3, 1, 1)  # correction (3) and lookup blend logit (1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.lookup_gain = nn.Parameter(torch.zeros(()))

    def forward(
        self,
        zero: torch.Tensor,
        target: torch.Tensor,
        support: torch.Tensor,
        looked_up: torch.Tensor,
        lookup_error: torch.Tensor,
    ) -> torch.Tensor:
        """zero, target (B, 3, H, W) RGB in [0, 1], support (B, 1, H, W) in [0, 1] (`FrameState.support`),
        looked_up (B, 3, H, W): the target through the anchor's colour lookup (`apply_colour_lookup`),
        lookup_error (B, 1, H, W) (`FrameState.lookup_error`) -> restored (B, 3, H, W) in [0, 1]."""
        height, width = zero.shape[-2:]
        multiple = 2 ** len(self.downs)
        pad = (0, (-width) % multiple, 0, (-height) % multiple)
        inputs = torch.cat(
            [
                zero * 2 - 1,
                target * 2 - 1,
                (zero - target) * 2,
                1 - support,
                (looked_up - zero) * 2,
                lookup_error * 4,
            ],
            dim=1,
        )
        hidden = self.stem(F.pad(inputs, pad, mode="replicate"))  # (B, c0, H, W)
        skips = []
        for down in self.downs:  # level i: (B, c_i, H / 2^i, W / 2^i)
            skips.append(hidden)
            hidden = down(hidden)
        hidden = self.middle(hidden)
        for up, skip in zip(reversed(self.ups), reversed(skips), strict=True):
            hidden = F.interpolate(hidden, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            hidden = up(torch.cat([hidden, skip], dim=1))
        correction, blend_logit = self.head(hidden)[..., :height, :width].split([3, 1], dim=1)
        blend = LOOKUP_GAIN_SCALE * self.lookup_gain * torch.sigmoid(blend_logit)  # (B, 1, H, W)
        config = self.config
        gate = restoration_gate(zero, target, config.gate_threshold, config.edit_reach)
        return (zero + gate * (blend * (looked_up - zero) + correction)).clamp(0, 1)
