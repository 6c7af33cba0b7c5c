"""End-to-end tests of the app's Generate tab through its API, the way `gradio_client` users drive a Space.

The real app (real queue, the embedded `checkpoints/pseudo-video-digits` model) is launched on a free
local port with the generation limits lowered through the environment. The grid's tiles are found
from its pixels (tiles are grey digits, the border is a colour), not from the tab's layout code, and
the animation is decoded with Pillow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import GRADIO_QUEUE_WARNINGS, launched_app
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image, ImageSequence

from space.generate_tab import GUTTER_COLOUR

pytestmark = GRADIO_QUEUE_WARNINGS

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_MODEL = REPO_ROOT / "checkpoints" / "pseudo-video-digits"
MAX_IMAGES, MAX_FRAMES = 12, 10  # HUEFLOW_MAX_GENERATED_IMAGES, HUEFLOW_MAX_PSEUDO_VIDEO_FRAMES


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[Client]:
    if not (EMBEDDED_MODEL / "model_index.json").is_file():
        pytest.skip(f"the embedded model is missing: {EMBEDDED_MODEL}")
    env = {
        "HUEFLOW_GENERATION_MODEL": None,
        "HUEFLOW_MAX_GENERATED_IMAGES": str(MAX_IMAGES),
        "HUEFLOW_MAX_PSEUDO_VIDEO_FRAMES": str(MAX_FRAMES),
    }
    with launched_app(env, tmp_path_factory.mktemp("cache")) as url:
        yield Client(url, verbose=False)


def generate(client: Client, seed=0, num_images=6, num_frames=8, sample=0):
    return client.predict(seed, num_images, num_frames, sample, api_name="/generate")


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def grid_tiles(path: str) -> list[np.ndarray]:
    """The tiles of a grid image, row by row: the cells entirely off the border colour."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        grid = np.asarray(image.convert("RGB"))
    tile = (grid != np.array(GUTTER_COLOUR, dtype=np.uint8)).any(axis=-1)
    tiles = []
    for top, bottom in runs(tile.any(axis=1)):
        for left, right in runs(tile.any(axis=0)):
            if tile[top:bottom, left:right].all():
                tiles.append(grid[top:bottom, left:right])
    return tiles


def animation_frames(path: str) -> list[np.ndarray]:
    with Image.open(path) as image:
        assert image.format == "GIF" and image.is_animated
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]


def test_grid_and_animation_of_the_chosen_sample(client):
    grid, animation, summary = generate(client, seed=3, num_images=6, num_frames=8, sample=4)

    tiles = grid_tiles(grid)
    assert len(tiles) == 6
    assert all(tile.shape == tiles[0].shape for tile in tiles)
    side = tiles[0].shape[0]
    assert side >= 64 and side % 8 == 0 and tiles[0].shape[1] == side
    # Nearest-neighbour enlargement of 8x8 grey images: blocks of one grey level.
    block = side // 8
    assert (tiles[4] == tiles[4][::block, ::block].repeat(block, 0).repeat(block, 1)).all()
    assert (tiles[4][..., 0] == tiles[4][..., 2]).all()
    assert len({tile.tobytes() for tile in tiles}) == 6

    frames = animation_frames(animation)
    assert len(frames) == 8
    assert frames[-1].shape == tiles[4].shape
    assert (frames[-1] == tiles[4]).all()  # the animation ends on that sample's tile, pixel for pixel
    assert not (frames[-1] == tiles[3]).all()
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 10  # it starts from noise
    assert "6 images from seed 3" in summary and "8-frame pseudo video (7 steps)" in summary
    assert "**Sample 4**" in summary


def test_same_seed_gives_same_output_and_another_seed_does_not(client):
    first = generate(client, seed=11, num_images=4, num_frames=5, sample=1)
    again = generate(client, seed=11, num_images=4, num_frames=5, sample=1)
    other = generate(client, seed=12, num_images=4, num_frames=5, sample=1)

    tiles, tiles_again, tiles_other = (grid_tiles(result[0]) for result in (first, again, other))
    assert len(tiles) == len(tiles_other) == 4
    assert all((a == b).all() for a, b in zip(tiles, tiles_again, strict=True))
    assert not all((a == b).all() for a, b in zip(tiles, tiles_other, strict=True))
    frames, frames_again = animation_frames(first[1]), animation_frames(again[1])
    assert len(frames) == 5
    assert all((a == b).all() for a, b in zip(frames, frames_again, strict=True))


def test_another_sample_and_fewer_frames(client):
    grid, animation, summary = generate(client, seed=3, num_images=6, num_frames=2, sample=5)

    frames, tiles = animation_frames(animation), grid_tiles(grid)
    assert len(frames) == 2 and len(tiles) == 6
    assert (frames[-1] == tiles[5]).all()
    assert "(1 step)" in summary


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"num_images": 4, "sample": 4},
            "Sample 4 does not exist: 4 images are generated, so pick a sample from 0 to 3",
        ),
        # Gradio's sliders check their own bounds (the limits) before the app sees the value.
        ({"num_images": MAX_IMAGES + 1}, f"greater than maximum value {MAX_IMAGES}"),
        ({"num_frames": MAX_FRAMES + 1}, f"greater than maximum value {MAX_FRAMES}"),
        ({"num_frames": 1}, "less than minimum value 2"),
        ({"seed": -1}, "less than minimum value 0"),
    ],
    ids=["sample-out-of-range", "too-many-images", "too-many-frames", "one-frame", "negative-seed"],
)
def test_bad_input_gives_clear_error_and_next_job_runs(client, inputs, message):
    with pytest.raises(AppError, match=message) as error:
        generate(client, **inputs)
    assert "Traceback" not in str(error.value)

    grid, animation, _ = generate(client, num_images=2, num_frames=3, sample=1)
    assert len(grid_tiles(grid)) == 2 and len(animation_frames(animation)) == 3


# ------------------------------------------------------------------------------------ without a server


def test_settings_are_checked_against_the_limits():
    """The tab's own checks (whole numbers, the seed's range, the hardware's most images and frames, a
    sample of the grid), for callers that bypass Gradio's slider bounds."""
    import gradio as gr

    from space.generate_tab import GenerateSettings
    from space.limits import Limits

    limits = Limits.detect().with_env_overrides(
        {"HUEFLOW_MAX_GENERATED_IMAGES": "8", "HUEFLOW_MAX_PSEUDO_VIDEO_FRAMES": "6"}
    )
    assert GenerateSettings.check(5, 8.0, 6, 7, limits) == GenerateSettings(5, 8, 6, 7)
    for args, message in [
        ((5, 9, 6, 0), "Number of images may be at most 8 on this hardware"),
        ((5, 2.5, 6, 0), "Number of images must be a whole number"),
        ((5, 4, 7, 0), r"Frames \(sampling steps \+ 1\) may be at most 6 on this hardware"),
        ((None, 4, 6, 0), "The seed must be a whole number"),
        ((-1, 4, 6, 0), "The seed must be a whole number from 0 to 4294967295"),
        ((5, 4, 6, 4), "Sample 4 does not exist"),
        ((5, 4, 6, 0.5), "The sample must be a whole number"),
    ]:
        with pytest.raises(gr.Error, match=message):
            GenerateSettings.check(*args, limits)


def save_tiny_pipeline(folder: Path, mode: str) -> Path:
    """A tiny untrained `PseudoVideoPipeline` (8x8 grey images) saved as a model folder."""
    import torch

    from pipelines import PseudoVideoPipeline
    from pipelines.pseudo_video import PseudoVideoGenerator, scheduler_for_mode

    torch.manual_seed(0)
    model = PseudoVideoGenerator(image_size=8, in_channels=1, width=8, latent_dim=4, level_dim=8)
    PseudoVideoPipeline(model, scheduler_for_mode(mode, 4)).save_pretrained(folder)
    return folder


def test_the_models_own_rules_come_from_the_pipeline(tmp_path):
    """Rules of the model, not of the UI (at least 1 image, at least 2 frames, exactly 2 for the
    image-only model) are `PseudoVideoPipeline.check_inputs`'s: the tab shows its errors, before
    anything is generated, and the tab's defaults come from the model's saved scheduler config."""
    import gradio as gr

    from space.generate_tab import GenerateDefaults, GenerateTab
    from space.limits import Limits

    def no_progress(*args, **kwargs):
        return None

    limits = Limits.detect()
    image_only = GenerateTab(save_tiny_pipeline(tmp_path / "image-only", "image"), limits)
    assert image_only.defaults == GenerateDefaults(num_frames=2, kind="image")
    with pytest.raises(gr.Error, match=r"image-only model makes one step \(num_frames=2\), got num_frames=6"):
        image_only.generate(0, 4, 6, 0, progress=no_progress)
    grid, animation, _, _ = image_only.generate(0, 4, 2, 3, progress=no_progress)
    assert len(grid_tiles(grid)) == 4 and len(animation_frames(animation)) == 2

    markov = GenerateTab(save_tiny_pipeline(tmp_path / "markov", "markov"), limits)
    assert markov.defaults == GenerateDefaults(num_frames=4, kind="markov")
    for args, message in [
        ((0, 0, 4, 0), "batch_size must be a positive integer, got 0"),
        ((0, 4, 1, 0), "A pseudo video needs num_frames >= 2"),
    ]:
        with pytest.raises(gr.Error, match=message) as error:
            markov.generate(*args, progress=no_progress)
        assert "'Number of images'" in str(error.value)  # the hint names the tab's fields
    assert len(grid_tiles(markov.generate(0, 3, 5, 0, progress=no_progress)[0])) == 3


def test_defaults_without_a_local_scheduler_config_are_the_schedulers_own(tmp_path):
    """A Hub repo id is not fetched to build the app (offline), and a key missing from an older config
    keeps the scheduler's default."""
    import inspect

    from pipelines.pseudo_video import PseudoVideoScheduler
    from space.generate_tab import GenerateDefaults

    own = inspect.signature(PseudoVideoScheduler.__init__).parameters
    expected = GenerateDefaults(num_frames=own["num_frames"].default, kind=own["kind"].default)
    assert GenerateDefaults.from_checkpoint("hueflow/no-such-repo") == expected

    older = save_tiny_pipeline(tmp_path / "older", "rich")  # a "mixture" scheduler of 4 frames
    config_path = older / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    del config["num_frames"]
    config_path.write_text(json.dumps(config))
    assert GenerateDefaults.from_checkpoint(older) == GenerateDefaults(own["num_frames"].default, "mixture")


def test_clicks_on_the_grid_pick_the_tile_under_them():
    from space.generate_tab import GUTTER, make_grid, tile_at

    images = np.zeros((5, 8, 8, 1), dtype=np.uint8)  # 3 per row, 2 rows, one empty cell
    grid = make_grid(images, scale=12)
    height, width = grid.shape[:2]
    pitch = 96 + GUTTER
    assert (height, width) == (GUTTER + 2 * pitch, GUTTER + 3 * pitch)
    assert tile_at(GUTTER + 1, GUTTER + 1, width, height, 5) == 0
    assert tile_at(GUTTER + pitch + 50, GUTTER + pitch + 95, width, height, 5) == 4
    assert tile_at(GUTTER + 2 * pitch + 10, GUTTER + 10, width, height, 5) == 2
    assert tile_at(GUTTER + 2 * pitch + 10, GUTTER + pitch + 10, width, height, 5) is None  # empty cell
    assert tile_at(GUTTER + 96 + 1, GUTTER + 10, width, height, 5) is None  # on the border
    assert tile_at(1, 1, width, height, 5) is None


def test_missing_model_gives_clear_error_and_is_retried(tmp_path):
    import gradio as gr

    from space.generate_tab import GenerateTab
    from space.limits import Limits

    tab = GenerateTab(tmp_path / "no-such-model", Limits.detect())
    for _ in range(2):
        with pytest.raises(gr.Error, match="generation model could not be loaded .no model folder at"):
            tab.generate(0, 4, 8, 0, progress=lambda *a, **k: None)
    assert not tab.pipeline.loaded
