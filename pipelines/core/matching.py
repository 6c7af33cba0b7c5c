"""Dense full-resolution matching of raw luminance, shared by the two systems that carry an anchor frame's
look along a video by re-anchoring: the appearance Zero stage's attention to the previous frame and its
re-anchoring (`appearance.modeling.zero_stage_step`) and the colorization pipeline's anchored colour
(`core.reanchoring`). DIS optical flow (the default, `matcher="dis"`) or a block-matching pyramid
(`matcher="block"`), and the patch cost that decides where a match is trusted.

Block matching is local attention with raw luminance patches as keys and pixel offsets as values: each
cell of a query frame compares its patch with the patches at every integer offset of a window in another
frame, and the best offset, refined to sub-pixel precision by a parabola through its neighbours' costs,
is the cell's displacement. A pyramid (coarse levels first, each level searching around the coarser
level's answer on the other frame warped by it) reaches large motions with a small window per level,
and dense Lucas-Kanade steps remove the remaining sub-pixel bias.

Displacement and position fields follow `core/warp.py`'s conventions: query(x) ~ other(x + D(x)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .flow import luminance_flow
from .warp import pixel_grid, sample_at


def _subpixel(minus: torch.Tensor, centre: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
    """Vertex of the parabola through costs at -1, 0, +1, clipped to [-0.5, 0.5] (0 where flat)."""
    curvature = minus - 2 * centre + plus
    shift = (minus - plus) / (2 * curvature.clamp_min(1e-12))
    return torch.where(curvature > 1e-12, shift.clamp(-0.5, 0.5), torch.zeros_like(shift))


def match_offsets(
    query: torch.Tensor, other: torch.Tensor, radius: int, block: int = 2, patch: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One level of block matching: every `block` x `block` cell of `query` against the integer offsets
    within `radius` pixels in `other`, by the mean squared difference of the `patch` x `patch` patches
    (default 3 * block; `patch` - block even) centred on the cell.

    query, other (B, 1, H, W) (any intensity scale; costs are in its squared units), H and W multiples
    of `block` -> displacement (B, 2, H/block, W/block) in pixels (sub-pixel) and the best cost (B, 1,
    H/block, W/block). `other`'s border is replicated."""
    height, width = query.shape[-2:]
    patch = patch or 3 * block
    padded = F.pad(other, (radius,) * 4, mode="replicate")
    window = 2 * radius + 1
    costs = torch.cat(
        [
            F.avg_pool2d(
                (query - padded[..., dy : dy + height, dx : dx + width]) ** 2,
                patch,
                block,
                (patch - block) // 2,
                count_include_pad=False,
            )
            for dy in range(window)
            for dx in range(window)
        ],
        dim=1,
    )  # (B, K, h, w), offset (dy - r, dx - r) at channel dy * window + dx
    best_cost, best = costs.min(dim=1, keepdim=True)
    best_y, best_x = best // window, best % window

    def cost_at(offset_y: torch.Tensor, offset_x: torch.Tensor) -> torch.Tensor:
        index = offset_y.clamp(0, window - 1) * window + offset_x.clamp(0, window - 1)
        return costs.gather(1, index)

    interior_x = ((best_x > 0) & (best_x < window - 1)).float()
    interior_y = ((best_y > 0) & (best_y < window - 1)).float()
    sub_x = _subpixel(cost_at(best_y, best_x - 1), best_cost, cost_at(best_y, best_x + 1)) * interior_x
    sub_y = _subpixel(cost_at(best_y - 1, best_x), best_cost, cost_at(best_y + 1, best_x)) * interior_y
    displacement = torch.cat([best_x - radius + sub_x, best_y - radius + sub_y], dim=1).float()
    return displacement, best_cost


def lucas_kanade_refinement(
    query: torch.Tensor,
    other: torch.Tensor,
    displacement: torch.Tensor,
    window: int = 7,
    iterations: int = 2,
    ridge: float = 1e-4,
) -> torch.Tensor:
    """Sub-pixel refinement of a displacement field by dense Lucas-Kanade steps: per pixel, the shift
    that best explains the difference between `query` and `other` warped by the field over a `window`
    x `window` neighbourhood, to first order (normal equations with a `ridge`, so flat areas do not
    move). Block matching finds the right integer neighbourhood; this removes its sub-pixel bias.

    query, other (B, 1, H, W), displacement (B, 2, H, W) -> refined displacement (B, 2, H, W)."""
    height, width = query.shape[-2:]
    grid = pixel_grid(height, width, query.device)
    padding = window // 2

    def box(tensor: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(tensor, window, 1, padding, count_include_pad=False)

    for _ in range(iterations):
        warped = sample_at(other, grid + displacement)
        padded = F.pad(warped, (1, 1, 1, 1), mode="replicate")
        gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
        gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
        error = query - warped
        sums = box(torch.cat([gx * gx, gx * gy, gy * gy, gx * error, gy * error], dim=1))
        a, b, c = sums[:, :1] + ridge, sums[:, 1:2], sums[:, 2:3] + ridge
        determinant = a * c - b * b
        step_x = (c * sums[:, 3:4] - b * sums[:, 4:5]) / determinant
        step_y = (a * sums[:, 4:5] - b * sums[:, 3:4]) / determinant
        displacement = displacement + torch.cat([step_x, step_y], dim=1).clamp(-1, 1)
    return displacement


def _upsample_field(field: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(field, size=size, mode="bilinear", align_corners=False)


def pyramid_displacement(
    query: torch.Tensor,
    other: torch.Tensor,
    radius: int = 3,
    block: int = 2,
    levels: int | None = None,
    min_side: int = 24,
    initial: torch.Tensor | None = None,
    patch: int | None = None,
    refinements: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coarse-to-fine block matching: query, other (B, 1, H, W) -> displacement (B, 2, H, W) in pixels
    (query's x looks like other's x + D(x)) and the finest level's best cost (B, 1, H, W).

    `levels` halvings (default: until the short side would drop below `min_side`); each level warps
    `other` by the coarser answer and searches `radius` pixels around it, so the reach is about
    radius * (2^levels - 1) pixels around `initial`, an optional starting displacement (B, 2, H, W).
    The answer is then refined to sub-pixel precision by `refinements` Lucas-Kanade steps
    (`lucas_kanade_refinement`), and the cost is that of the refined field."""
    height, width = query.shape[-2:]
    if levels is None:
        levels, side = 1, min(height, width)
        while side // 2 >= min_side and levels < 6:
            side //= 2
            levels += 1
    pyramid = [(query, other)]
    for _ in range(levels - 1):
        q, o = pyramid[-1]
        pyramid.append((F.avg_pool2d(q, 2, ceil_mode=True), F.avg_pool2d(o, 2, ceil_mode=True)))
    displacement = None
    cost = None
    for level in range(levels - 1, -1, -1):
        q, o = pyramid[level]
        h, w = q.shape[-2:]
        scale = 2**level
        if displacement is None:
            if initial is not None:
                displacement = _upsample_field(initial, (h, w)) / scale
            else:
                displacement = torch.zeros(q.shape[0], 2, h, w, dtype=q.dtype, device=q.device)
        else:
            displacement = _upsample_field(displacement, (h, w)) * 2
        warped = sample_at(o, pixel_grid(h, w, q.device) + displacement)
        # pad to a multiple of the block; the padding's costs are cropped away
        pad = (0, (-w) % block, 0, (-h) % block)
        q_pad, warped_pad = F.pad(q, pad, mode="replicate"), F.pad(warped, pad, mode="replicate")
        offsets, cost = match_offsets(q_pad, warped_pad, radius, block, patch)
        full = (q_pad.shape[-2], q_pad.shape[-1])
        offsets = _upsample_field(offsets, full)[..., :h, :w]
        cost = _upsample_field(cost, full)[..., :h, :w]
        displacement = displacement + offsets
    if refinements:
        displacement = lucas_kanade_refinement(query, other, displacement, iterations=refinements)
        patch = patch or 3 * block
        warped = sample_at(other, pixel_grid(height, width, query.device) + displacement)
        cost = F.avg_pool2d((query - warped) ** 2, patch + 1, 1, patch // 2, count_include_pad=False)
    return displacement, cost


def patch_cost(query: torch.Tensor, warped: torch.Tensor, patch: int = 7) -> torch.Tensor:
    """Mean squared difference (B, 1, H, W) of the `patch` x `patch` (odd) patches of `query` and
    `warped` (another frame already brought onto the query's grid) around each pixel."""
    return F.avg_pool2d((query - warped) ** 2, patch, 1, patch // 2, count_include_pad=False)


def mean_absolute_patch_difference(
    query: torch.Tensor, warped: torch.Tensor, window: int = 7
) -> torch.Tensor:
    """Mean absolute difference (B, 1, H, W) of `query` and `warped` over the `window` x `window` (odd)
    window around each pixel, in their own units. Unlike the squared `patch_cost`, one outlier pixel
    (a sub-pixel edge) does not outweigh a window of agreement; `core.reanchoring` compares candidate
    colour sources by it, in L units. The box is separable: a row pass, then a column pass."""
    difference = (query - warped).abs()
    difference = F.avg_pool2d(difference, (1, window), 1, (0, window // 2), count_include_pad=False)
    return F.avg_pool2d(difference, (window, 1), 1, (window // 2, 0), count_include_pad=False)


def dense_displacement(
    query: torch.Tensor, other: torch.Tensor, method: str = "dis", radius: int = 3, block: int = 2
) -> torch.Tensor:
    """Displacement (1, 2, H, W) with query(x) ~ other(x + D(x)), for query, other (1, 1, H, W) with
    values in [0, 1]: "dis" is OpenCV's DIS optical flow (its variational refinement regularizes flat
    areas), "block" the block-matching pyramid (`pyramid_displacement`)."""
    if method == "dis":
        return luminance_flow(query * 100, other * 100)
    if method == "block":
        return pyramid_displacement(query, other, radius, block)[0]
    raise ValueError(f"Unknown matching method {method!r}: 'dis' or 'block'.")
