"""Tests for pipelines.core.metrics and the colorization baselines; every clip and image is generated."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from pipelines.colorization.baselines import flow_propagation, global_lab_transfer
from pipelines.core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from pipelines.core.metrics import colour_distribution_consistency, psnr, ssim


def smooth_colour_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 image of smooth random colour blobs, textured at two scales (optical flow needs texture)."""
    rng = np.random.default_rng(seed)
    coarse = gaussian_filter(rng.normal(size=(height, width, 3)), sigma=(8, 8, 0))
    fine = gaussian_filter(rng.normal(size=(height, width, 3)), sigma=(2, 2, 0))
    image = coarse / coarse.std() * 50 + fine / fine.std() * 15 + 128
    return image.clip(0, 255).astype(np.uint8)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Decolorize: keep the frame's Lab L, set ab to 0 (as the evaluation does)."""
    luminance, ab = luminance_and_ab(frame_to_tensor(frame))
    return tensor_to_frame(compose_lab(luminance, torch.zeros_like(ab)))


def lab_l(frame: np.ndarray) -> np.ndarray:
    return luminance_and_ab(frame_to_tensor(frame))[0][0, 0].numpy()


def translating_clip(
    num_frames: int = 6, height: int = 48, width: int = 64, shift: int = 2
) -> list[np.ndarray]:
    """Crops of a larger colour image whose window moves `shift` pixels right and down per frame."""
    margin = shift * num_frames
    scene = smooth_colour_image(height + margin, width + margin, seed=1)
    return [scene[t * shift : t * shift + height, t * shift : t * shift + width] for t in range(num_frames)]


# ----------------------------------------------------------------------------------------------- metrics


def test_psnr_identical_and_known_value():
    image = smooth_colour_image(16, 16)
    assert math.isinf(psnr(image, image))
    # Every value off by 5 levels: MSE = 25, PSNR = 10 log10(255^2 / 25).
    a = np.full((8, 8, 3), 100, np.uint8)
    b = np.full((8, 8, 3), 105, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))
    # The same images as floats in [0, 1] give the same value.
    assert psnr(a / 255.0, b / 255.0) == pytest.approx(psnr(a, b))


def test_ssim_identical_and_degraded():
    image = smooth_colour_image(32, 32)
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = (image + np.random.default_rng(0).normal(0, 25, image.shape)).clip(0, 255).astype(np.uint8)
    assert ssim(noisy, image) < 0.9


def test_cdc_zero_for_constant_clip_and_larger_for_flicker():
    frame = smooth_colour_image(24, 24)
    assert colour_distribution_consistency([frame] * 5) == pytest.approx(0.0, abs=1e-12)
    steady = [np.clip(frame.astype(int) + t, 0, 255).astype(np.uint8) for t in range(5)]
    tint = np.array([40, -20, -40])
    flicker = [np.clip(frame.astype(int) + (t % 2) * tint, 0, 255).astype(np.uint8) for t in range(5)]
    assert colour_distribution_consistency(flicker) > colour_distribution_consistency(steady) > 0
    assert colour_distribution_consistency([frame]) == 0.0


# ----------------------------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("baseline", [global_lab_transfer, flow_propagation])
def test_baselines_keep_luminance(baseline):
    clip = translating_clip()
    gray = [to_gray(frame) for frame in clip]
    outputs = baseline(gray, clip[0])
    assert len(outputs) == len(gray)
    for source, output in zip(gray, outputs, strict=True):
        assert output.shape == source.shape and output.dtype == np.uint8
        # Only ab is replaced; uint8 rounding (and rare gamut clipping) moves L a little.
        assert np.abs(lab_l(output) - lab_l(source)).mean() < 1.0
    assert not all(np.array_equal(output, source) for source, output in zip(gray, outputs, strict=True))


def test_flow_propagation_follows_a_known_translation():
    clip = translating_clip(num_frames=6, shift=2)
    gray = [to_gray(frame) for frame in clip]
    outputs = flow_propagation(gray, clip[0])
    # Frame 0 takes the exemplar's colours directly.
    assert psnr(outputs[0], clip[0]) > 35
    # Later frames: colour error (inside a border the shift uncovers) far below that of leaving them gray.
    inner = (slice(12, -12), slice(12, -12))
    for output, truth, source in zip(outputs[1:], clip[1:], gray[1:], strict=True):
        error = np.abs(output[inner].astype(int) - truth[inner]).mean()
        gray_error = np.abs(source[inner].astype(int) - truth[inner]).mean()
        assert error < 0.3 * gray_error


def test_global_lab_transfer_uses_exemplar_colours():
    # A two-tone exemplar: dark pixels red, bright pixels blue. The lookup should colour a grayscale frame the
    # same way by luminance, wherever those pixels are.
    exemplar = np.zeros((16, 16, 3), np.uint8)
    exemplar[:, :8] = (150, 20, 20)
    exemplar[:, 8:] = (90, 140, 250)
    frame = to_gray(exemplar[:, ::-1])
    output = global_lab_transfer([frame], exemplar)[0]
    expected = exemplar[:, ::-1]
    assert np.abs(output.astype(int) - expected).mean() < 3
