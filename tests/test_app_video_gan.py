"""End-to-end tests of the app's Video GAN tab through its API, the way `gradio_client` users drive a Space.

The real app (real queue) is launched on a free local port with `HUEFLOW_TGAN_MODEL` pointing at a tiny
untrained 16-frame TGAN saved in a temporary folder (fast, and independent of the embedded model's
training; `tests/test_tgan_export.py` checks the embedded model itself) and the clip limit lowered
through the environment. The GIF is decoded with Pillow and the mp4 with PyAV; tiles are cut out at the
layout `export_videos` documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import GRADIO_QUEUE_WARNINGS, decode, launched_app
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image, ImageSequence

from pipelines import TGANPipeline
from pipelines.tgan import TGANImageGenerator, TGANTemporalGenerator
from space.video_gan_tab import GUTTER

pytestmark = GRADIO_QUEUE_WARNINGS

FRAMES, SIZE = 16, 32
MAX_CLIPS = 6  # HUEFLOW_MAX_GENERATED_IMAGES
SIDE = 4 * SIZE  # tiles are enlarged 4x up to 8 per row (1024 px)


def save_tiny_tgan(folder: Path) -> Path:
    """A tiny untrained TGAN making 16-frame 32x32 grey clips, saved as a model folder; its weights are
    large enough (init_scale) that the frames vary with the latents and from frame to frame."""
    torch.manual_seed(0)
    temporal = TGANTemporalGenerator(
        frames=FRAMES, z_slow_dim=8, z_fast_dim=8, channels=(8, 8), init_scale=0.5
    )
    image = TGANImageGenerator(z_slow_dim=8, z_fast_dim=8, image_size=SIZE, base_channels=16, init_scale=0.5)
    TGANPipeline(temporal, image).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[Client]:
    model = save_tiny_tgan(tmp_path_factory.mktemp("tiny-tgan"))
    env = {"HUEFLOW_TGAN_MODEL": str(model), "HUEFLOW_MAX_GENERATED_IMAGES": str(MAX_CLIPS)}
    with launched_app(env, tmp_path_factory.mktemp("cache")) as url:
        yield Client(url, verbose=False)


def generate(client: Client, seed=0, num_videos=2):
    return client.predict(seed, num_videos, api_name="/generate_videos")


def interpolate(client: Client, seed_a=0, seed_b=1, steps=3):
    return client.predict(seed_a, seed_b, steps, api_name="/interpolate_videos")


def gif_frames(path: str) -> np.ndarray:
    """Every frame of a looping grey GIF: (T, H, W) uint8."""
    with Image.open(path) as image:
        assert image.format == "GIF" and image.is_animated and image.info["loop"] == 0
        frames = np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)])
    assert (frames[..., 0] == frames[..., 2]).all()  # grey clips stay grey
    return frames[..., 0]


def assert_same_clip(clip: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float rounding: a clip rendered in a batch of another size (PyTorch's kernels block the
    work differently) may round a rare pixel to the next grey level."""
    assert clip.shape == expected.shape
    difference = np.abs(clip.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def tiles(frames: np.ndarray, count: int, columns: int) -> list[np.ndarray]:
    """The clips (T, SIDE, SIDE) of a grid, row by row, at `export_videos`' documented layout."""
    pitch = SIDE + GUTTER
    assert frames.shape[1:] == (GUTTER + math.ceil(count / columns) * pitch, GUTTER + columns * pitch)
    clips = []
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = GUTTER + row * pitch, GUTTER + column * pitch
        clips.append(frames[:, top : top + SIDE, left : left + SIDE])
    return clips


def test_clips_from_a_seed_as_a_looping_gif_and_an_mp4(client):
    gif, mp4, summary = generate(client, seed=3, num_videos=2)

    frames = gif_frames(gif)
    assert len(frames) == FRAMES
    first, second = tiles(frames, 2, columns=2)
    assert not np.array_equal(first, second)
    assert (np.diff(first.astype(int), axis=0) != 0).any(axis=(1, 2)).all()  # every frame moves on
    # Nearest-neighbour enlargement: 4x4 blocks of one grey level.
    assert np.array_equal(first, first[:, ::4, ::4].repeat(4, 1).repeat(4, 2))
    video = decode(mp4)
    assert video.shape == (FRAMES, *frames.shape[1:], 3)
    assert np.abs(video[..., 0].astype(int) - frames).mean() < 6  # the same grid, H.264-compressed
    assert "2 clips from seed 3" in summary and "16 frames of 32x32" in summary

    again, _, _ = generate(client, seed=3, num_videos=2)
    assert np.array_equal(gif_frames(again), frames)
    other, _, _ = generate(client, seed=4, num_videos=2)
    assert not np.array_equal(gif_frames(other), frames)
    # One clip has no border, and is the first clip of the same seed's grid.
    alone, _, _ = generate(client, seed=3, num_videos=1)
    assert_same_clip(gif_frames(alone), first)


def test_interpolation_runs_from_seed_a_to_seed_b(client):
    gif, mp4, summary = interpolate(client, seed_a=3, seed_b=5, steps=4)

    path = tiles(gif_frames(gif), 4, columns=4)  # one row
    assert len(path[0]) == FRAMES and len(decode(mp4)) == FRAMES
    assert_same_clip(path[0], gif_frames(generate(client, seed=3, num_videos=1)[0]))
    assert_same_clip(path[-1], gif_frames(generate(client, seed=5, num_videos=1)[0]))
    assert not np.array_equal(path[1], path[0]) and not np.array_equal(path[1], path[-1])
    assert "4 clips on the straight line in latent space from seed 3's clip" in summary


@pytest.mark.parametrize(
    ("run", "inputs", "message"),
    [
        (generate, {"seed": -1}, "The seed must be a whole number from 0 to 4294967295, got -1"),
        (generate, {"seed": 2.5}, "The seed must be a whole number, got 2.5"),
        (generate, {"num_videos": 2.5}, "Number of clips must be a whole number, got 2.5"),
        # Gradio's sliders check their own bounds (the limits) before the app sees the value.
        (generate, {"num_videos": MAX_CLIPS + 1}, f"greater than maximum value {MAX_CLIPS}"),
        (interpolate, {"steps": 1}, "less than minimum value 2"),
        (interpolate, {"seed_b": -4}, "Seed B must be a whole number from 0 to 4294967295, got -4"),
    ],
    ids=[
        "negative-seed",
        "fractional-seed",
        "fractional-count",
        "too-many-clips",
        "one-step",
        "negative-seed-b",
    ],
)
def test_bad_input_gives_clear_error_and_next_job_runs(client, run, inputs, message):
    with pytest.raises(AppError, match=message) as error:
        run(client, **inputs)
    assert "Traceback" not in str(error.value)

    assert len(gif_frames(generate(client, seed=1, num_videos=1)[0])) == FRAMES


# ------------------------------------------------------------------------------------ without a server


def test_settings_are_checked_against_the_limits():
    """The tab's own checks, for callers that bypass Gradio's slider bounds."""
    import gradio as gr

    from space.limits import Limits
    from space.video_gan_tab import check_count, check_seed

    limits = Limits.detect().with_env_overrides({"HUEFLOW_MAX_GENERATED_IMAGES": "8"})
    assert check_seed(7.0) == 7 and check_count(8.0, "Number of clips", 1, limits) == 8
    for call, message in [
        (
            lambda: check_count(9, "Number of clips", 1, limits),
            "Number of clips may be at most 8 on this hardware",
        ),
        (lambda: check_count(0, "Number of clips", 1, limits), "Number of clips must be at least 1, got 0"),
        (lambda: check_count(1, "Interpolation steps", 2, limits), "Interpolation steps must be at least 2"),
        (lambda: check_count("many", "Number of clips", 1, limits), "must be a whole number, got 'many'"),
        (lambda: check_seed(None), "The seed must be a whole number, got None"),
        (lambda: check_seed(True), "The seed must be a whole number"),
        (lambda: check_seed(2**32, "Seed A"), "Seed A must be a whole number from 0 to 4294967295"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()


def test_missing_model_says_which_folder_and_is_retried(tmp_path):
    import gradio as gr

    from space.limits import Limits
    from space.video_gan_tab import VideoGANTab

    tab = VideoGANTab(tmp_path / "no-such-model", Limits.detect())  # building the tab loads nothing
    for _ in range(2):
        with pytest.raises(
            gr.Error, match="video GAN model could not be loaded .no model folder at .*/no-such-model"
        ):
            tab.generate(0, 2, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="no-such-model"):
        tab.interpolate(0, 1, 3, progress=lambda *a, **k: None)
    assert not tab.pipeline.loaded


def test_model_card_link_and_text(tmp_path, monkeypatch):
    from space.video_gan_tab import MODEL_CARD, card_body, model_card_markdown

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert model_card_markdown() == "`model_cards/tgan-moving-digits.md`"
    monkeypatch.setenv("SPACE_ID", "someone/hueflow")
    assert model_card_markdown() == (
        "[model_cards/tgan-moving-digits.md]"
        "(https://huggingface.co/spaces/someone/hueflow/blob/main/model_cards/tgan-moving-digits.md)"
    )
    assert MODEL_CARD.name == "tgan-moving-digits.md"
    card = tmp_path / "card.md"
    card.write_text("---\nlicense: apache-2.0\ntags:\n  - tgan\n---\n\n# tgan-moving-digits\n\nText.\n")
    assert card_body(card) == "# tgan-moving-digits\n\nText."
    assert card_body(tmp_path / "missing.md") is None
