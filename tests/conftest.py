"""Shared fixtures: tiny randomly initialised pipelines and generated clips (no network, no Hub)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.colorization import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetPipeline,
    ColorMNetValueEncoder,
)


def make_tiny_colormnet(seed: int = 0, **config) -> ColorMNetPipeline:
    """A small ColorMNet with random weights (the backbone architecture is the real one)."""
    torch.manual_seed(seed)
    feature_encoder = ColorMNetFeatureEncoder(key_channels=16, feature_channels=16, light_channels=(8, 8, 8))
    value_encoder = ColorMNetValueEncoder(feature_channels=16, value_channels=8)
    decoder = ColorMNetDecoder(
        feature_channels=16, value_channels=8, skip_channels=(8, 8), hidden_channels=16
    )
    # A non-zero head, so tests see the decoder's residual at work, not only the readout.
    torch.nn.init.normal_(decoder.head.weight, std=0.01)
    pipe = ColorMNetPipeline(feature_encoder, value_encoder, decoder, processing_size=64, **config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_colour_clip(num_frames: int = 6, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A colour clip (T, H, W, 3) uint8: coloured blobs on a gradient, moving a few pixels per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    colours = rng.integers(30, 226, size=(4, 3))
    centres = rng.uniform([0, 0], [height, width], size=(4, 2))
    velocity = rng.uniform(-2, 2, size=(4, 2))
    frames = []
    for t in range(num_frames):
        frame = np.stack([xx * 255 / width, yy * 255 / height, np.full_like(xx, 128.0)], axis=-1)
        for colour, centre, speed in zip(colours, centres, velocity, strict=True):
            cy, cx = centre + speed * t
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < (min(height, width) / 4) ** 2
            frame[inside] = colour
        frames.append(frame.astype(np.uint8))
    return np.stack(frames)


@pytest.fixture
def tiny_pipe() -> ColorMNetPipeline:
    return make_tiny_colormnet()


@pytest.fixture
def colour_clip() -> np.ndarray:
    return make_colour_clip()
