"""Non-learned exemplar colorization baselines, to put the model's scores in context.

All have the call shape ``baseline(frames, exemplar) -> frames``: RGB uint8 frames ``(H, W, 3)`` (grayscale
or not: only their luminance is used) and one colour exemplar; the output keeps every input frame's Lab L
channel and only replaces ab, like `ColorMNetPipeline`.

- `global_lab_transfer`: a global colour transfer that uses no correspondence at all.
- `flow_propagation`: the exemplar's colours carried along a chain of optical flow (what a purely
  motion-based method gets, with its drift and occlusion errors).
- `unaligned_ab_paste`: the exemplar's ab pasted as is on every frame (no alignment at all: what a free
  reference gives where nothing moved).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from ..core.flow import dis_flow, luminance_to_u8, warp_back

# Number of luminance bins of the lookup in `global_lab_transfer` (L spans [0, 100]).
NUM_LUMINANCE_BINS = 32


def _lab(frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB uint8 (H, W, 3) -> L (1, 1, H, W) and ab (1, 2, H, W)."""
    return luminance_and_ab(frame_to_tensor(frame))


def _compose(luminance: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    return tensor_to_frame(compose_lab(luminance, ab))


def _exemplar_ab_at(exemplar: np.ndarray, height: int, width: int) -> torch.Tensor:
    """The exemplar's ab (1, 2, height, width), resized when the exemplar has another size."""
    ab = _lab(exemplar)[1]
    if ab.shape[-2:] != (height, width):
        ab = F.interpolate(ab, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return ab


def _luminance_lookup(luminance: torch.Tensor, ab: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per L bin, the mean L and mean ab of the exemplar's pixels in it: ((K,), (K, 2)), empty bins left out.

    The mean L (rather than the bin centre) is the lookup's abscissa, so a pixel at a bin's typical
    luminance gets exactly that bin's mean colour.
    """
    values = luminance.flatten().numpy().astype(np.float64)
    edges = np.linspace(0.0, 100.0, NUM_LUMINANCE_BINS + 1)
    bins = np.digitize(values, edges[1:-1])  # 0 .. NUM_LUMINANCE_BINS - 1
    counts = np.bincount(bins, minlength=NUM_LUMINANCE_BINS)
    filled = counts > 0
    channels = [values, *ab.flatten(2)[0].numpy().astype(np.float64)]  # L, a, b, each (H*W,)
    means = np.stack(
        [np.bincount(bins, weights=c, minlength=NUM_LUMINANCE_BINS)[filled] for c in channels], 1
    )
    means /= counts[filled, None]
    return means[:, 0], means[:, 1:]


def global_lab_transfer(frames: list[np.ndarray], exemplar: np.ndarray) -> list[np.ndarray]:
    """Global Lab colour transfer (Reinhard et al. 2001 style) from `exemplar` to grayscale `frames`.

    Reinhard's transfer matches each Lab channel's mean and standard deviation. For a grayscale frame the ab
    statistics are all zero, so matching them would give every pixel the exemplar's mean colour: one tint for
    the whole frame. The fair global statistic for a grayscale input is instead the exemplar's **mean ab per
    luminance level**, a lookup L -> ab (32 L bins, linearly interpolated between the bins' mean L, and held
    constant beyond the exemplar's darkest/brightest bins). It uses no position or correspondence, only
    global statistics, and is the best a global method can do under squared error given L alone.

    The Reinhard step is applied to L, only to index the lookup: each frame's L is shifted and scaled to the
    exemplar's L mean and standard deviation first, so an exposure difference between the exemplar and the
    frame does not pick the wrong colours. The output keeps each frame's own L.
    """
    exemplar_luminance, exemplar_ab = _lab(exemplar)
    centres, mean_ab = _luminance_lookup(exemplar_luminance, exemplar_ab)
    target_mean, target_std = exemplar_luminance.mean().item(), exemplar_luminance.std().item()
    outputs = []
    for frame in frames:
        luminance = _lab(frame)[0]
        # A flat frame (std 0) keeps its L as the key rather than dividing by zero.
        std = luminance.std().item()
        scale = target_std / std if std > 1e-6 else 1.0
        key = ((luminance - luminance.mean()) * scale + target_mean).flatten().numpy()
        ab = np.stack([np.interp(key, centres, mean_ab[:, c]) for c in range(2)])
        ab = torch.from_numpy(ab).float().reshape(1, 2, *luminance.shape[-2:])
        outputs.append(_compose(luminance, ab))
    return outputs


def flow_propagation(frames: list[np.ndarray], exemplar: np.ndarray) -> list[np.ndarray]:
    """Propagate the exemplar's colours through the clip along a chain of DIS optical flow.

    Frame 0 takes the exemplar's ab (the exemplar is taken as a colour version of frame 0, resized to the
    frame size if needed). Each later frame takes the ab propagated to the previous frame, backward-warped
    with the dense flow from this frame to the previous one (DIS, medium preset, computed on luminance). The
    ab is carried in float rather than re-read from the previous uint8 output, so rounding and gamut clipping
    do not compound; motion errors still accumulate along the chain, and disoccluded regions are filled from
    their neighbours (replicated border).
    """
    if not frames:
        return []
    height, width = frames[0].shape[:2]
    ab = _exemplar_ab_at(exemplar, height, width)[0].permute(1, 2, 0).numpy()  # (H, W, 2) for cv2
    previous_luminance = None
    outputs = []
    for frame in frames:
        luminance = _lab(frame)[0]
        current = luminance_to_u8(luminance)
        if previous_luminance is not None:
            ab = warp_back(ab, dis_flow(current, previous_luminance))
        previous_luminance = current
        outputs.append(_compose(luminance, torch.from_numpy(np.ascontiguousarray(ab)).permute(2, 0, 1)[None]))
    return outputs


def unaligned_ab_paste(frames: list[np.ndarray], exemplar: np.ndarray) -> list[np.ndarray]:
    """Every frame's L with the exemplar's ab (resized to the frame size if needed) pasted as is: no
    correspondence, no motion. Right where the frame shows what the exemplar shows at the same place."""
    outputs = []
    for frame in frames:
        luminance = _lab(frame)[0]
        outputs.append(_compose(luminance, _exemplar_ab_at(exemplar, *luminance.shape[-2:])))
    return outputs
