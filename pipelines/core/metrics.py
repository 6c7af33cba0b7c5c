"""Image and video quality metrics for colorization: PSNR (whole or masked), SSIM and colour distribution
consistency (CDC).

All functions take RGB numpy arrays ``(H, W, 3)``, either ``uint8`` (0-255) or float in ``[0, 1]``; the two
may be mixed, since everything is brought to float ``[0, 1]`` first (which gives the same PSNR/SSIM as a data
range of 255 on the uint8 values).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import entropy
from skimage.metrics import structural_similarity


def _unit_float(image: np.ndarray) -> np.ndarray:
    """RGB uint8 or float in [0, 1] -> float64 in [0, 1]."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64)
    raise TypeError(f"expected a uint8 or float image, got dtype {image.dtype}")


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """RGB uint8 or float in [0, 1] -> uint8 (histograms are taken over the 256 uint8 levels)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return (_unit_float(image).clip(0, 1) * 255.0).round().astype(np.uint8)


def _check_pair(pred: np.ndarray, target: np.ndarray) -> None:
    if np.shape(pred) != np.shape(target):
        raise ValueError(f"pred and target differ in shape: {np.shape(pred)} vs {np.shape(target)}")


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels (data range 255 for uint8, 1 for float).

    Identical images give ``inf``.
    """
    _check_pair(pred, target)
    mse = float(np.mean((_unit_float(pred) - _unit_float(target)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(1.0 / mse))


def masked_psnr(
    preds: Sequence[np.ndarray], targets: Sequence[np.ndarray], masks: Sequence[np.ndarray]
) -> float | None:
    """PSNR in dB over the pixels where `masks` (bool (H, W), one per pair) is True, all channels, pooled
    over the pairs: one mean squared error over every selected pixel of every pair (a frame with few selected
    pixels weighs little), then 10 log10(1 / MSE) as `psnr`. None when no pixel is selected; ``inf`` when the
    selected pixels are identical.
    """
    total, count = 0.0, 0
    for pred, target, mask in zip(preds, targets, masks, strict=True):
        _check_pair(pred, target)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != np.shape(pred)[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match the image's {np.shape(pred)[:2]}")
        total += float(np.sum((_unit_float(pred)[mask] - _unit_float(target)[mask]) ** 2))
        count += int(mask.sum()) * np.shape(pred)[2]
    if count == 0:
        return None
    if total == 0.0:
        return float("inf")
    return float(10.0 * np.log10(count / total))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean structural similarity of two RGB images (1 for identical images), averaged over the channels.

    Computed with the library's ``skimage.metrics.structural_similarity`` using the settings of Wang et al.
    (2004), which the colorization papers' evaluation scripts follow: an 11x11 Gaussian window with sigma 1.5
    and population (not sample) covariances. Both images must be at least 11 pixels on each side.
    """
    _check_pair(pred, target)
    return float(
        structural_similarity(
            _unit_float(pred),
            _unit_float(target),
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def _channel_histograms(frame: np.ndarray) -> np.ndarray:
    """(3, 256) normalised histograms of the R, G and B channels of one frame."""
    frame = _as_uint8(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got shape {frame.shape}")
    counts = np.stack([np.bincount(frame[..., c].ravel(), minlength=256) for c in range(3)]).astype(
        np.float64
    )
    return counts / counts.sum(axis=1, keepdims=True)


def _jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, so in [0, ln 2]) between two normalised histograms."""
    m = 0.5 * (p + q)
    return float(0.5 * entropy(p, m) + 0.5 * entropy(q, m))


def colour_distribution_consistency(frames: Sequence[np.ndarray], dilations: Sequence[int] = (1,)) -> float:
    """Colour distribution consistency (CDC) of a video; lower means less colour flicker, 0 for a static clip.

    CDC (Liu et al., "Temporally Consistent Video Colorization with Deep Feature Propagation and
    Self-regularization Learning", 2021; also reported by ColorMNet) is the Jensen-Shannon divergence between
    the colour histograms of two frames, averaged over frame pairs and over the channels. Here, like the
    authors' reference code (TCVC `compute_hist.py`), histograms have 256 bins per **RGB** channel and the
    divergence uses the natural log. RGB rather than Lab ab is chosen so that values are on the same scale as
    the published numbers; since colorization keeps the input's luminance, frame-to-frame changes of the RGB
    histograms beyond those already present in the ground truth come from the predicted colour. (The ground
    truth itself therefore has a small non-zero CDC wherever the content moves.)

    Args:
        frames: the video as RGB frames (H, W, 3), uint8 or float in [0, 1].
        dilations: frame gaps of the compared pairs. The default ``(1,)`` compares consecutive frames; the
            TCVC evaluation script averages gaps ``(1, 2, 4)`` with equal weights. Gaps that do not fit in the
            clip are skipped.

    Returns:
        The mean divergence, or 0.0 for fewer than two frames.
    """
    histograms = [_channel_histograms(frame) for frame in frames]
    per_gap = []
    for gap in dilations:
        if gap < 1:
            raise ValueError(f"dilations must be positive frame gaps, got {gap}")
        pairs = [
            np.mean([_jensen_shannon(a[c], b[c]) for c in range(3)])
            for a, b in zip(histograms[:-gap], histograms[gap:], strict=True)
        ]
        if pairs:
            per_gap.append(np.mean(pairs))
    return float(np.mean(per_gap)) if per_gap else 0.0
