"""The Generate tab: image generation with `PseudoVideoPipeline` (Chen et al. 2024, "Your Image is
Secretly the Last Frame of a Pseudo Video").

A visitor picks a seed, a number of images and the number of frames of the pseudo video each image is
the last frame of (sampling steps + 1), and gets the images as one grid (PNG), plus, for the sample
they choose (a number, or a click on its tile), its pseudo video as an animated GIF: from the first
frame (pure noise, or the fully degraded frame for the rich degradations) to the image. The embedded
model makes 8x8 digits, so tiles and animation frames are enlarged with nearest-neighbour scaling to
`DISPLAY_SIDE` px or more; the grid's tiles and the animation's frames have the same size, and the
animation's last frame is the sample's tile, pixel for pixel (for grayscale models: GIF keeps grey
levels exactly, colour would be quantized to 256 colours).

The same (seed, number of images, frames) always gives the same images; an image depends on its
position and on the number of images generated with it. The last few results are kept, so choosing
another sample of the grid on screen does not generate again.

As in the other tabs, every input is checked before the model runs: against the hardware `Limits`
here, and against the model's own rules by `PseudoVideoPipeline.check_inputs` (e.g. the image-only
model takes exactly 2 frames); every problem is a `gr.Error` that says what to change.

API endpoint (usable with `gradio_client`):
    `generate(seed, num_images, num_frames, sample) -> (grid png path, animation gif path, summary)`:
        the grid has `num_images` tiles, row by row, `ceil(sqrt(num_images))` per row, separated by a
        `GUTTER` px border in `GUTTER_COLOUR`; the GIF has `num_frames` frames (the GIF writer merges
        consecutive frames that are exactly equal, keeping the playback the same) and shows the
        pseudo video of image `sample` (0-based, row by row).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from pipelines import PseudoVideoPipeline
from pipelines.pseudo_video import PseudoVideoScheduler

from . import (
    InputError,
    checkpoint_config,
    load_pipeline,
    new_job_dir,
    pipeline_input_error,
    pipeline_job,
    pretrained_pipeline,
)
from .limits import Limits

logger = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1
# Tiles and animation frames are enlarged (nearest neighbour, a whole factor) to at least this side.
DISPLAY_SIDE = 96
GUTTER = 4
# Not a grey: the tiles of a grayscale model never contain it, so the grid's tiles are easy to tell
# apart from its border (and empty cells of the last row).
GUTTER_COLOUR = (38, 70, 120)
# The animation plays its frames in about ANIMATION_MS, within these per-frame bounds, then holds the
# image for HOLD_LAST_MS before it loops.
ANIMATION_MS, MIN_FRAME_MS, MAX_FRAME_MS, HOLD_LAST_MS = 1600, 40, 400, 1200
# Results kept so that choosing another sample does not generate again.
CACHED_RESULTS = 4


# Shown after the pipeline's error: its argument names, as this tab labels them.
SETTINGS_HINT = "(Here batch_size is 'Number of images' and num_frames 'Frames'.)"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class GenerateDefaults:
    """The scheduler's trained frame count and kind, so the UI matches what `pipe(...)` would do: from
    the checkpoint's saved scheduler config (`PseudoVideoScheduler.load_config`, no weights loaded; the
    pipeline's own `model_index.json` only names its components), or the scheduler's own defaults for a
    Hub repo id and for keys an older config lacks (`checkpoint_config`)."""

    num_frames: int
    kind: str

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike) -> GenerateDefaults:
        config = checkpoint_config(PseudoVideoScheduler, checkpoint, subfolder="scheduler")
        return cls(num_frames=int(config["num_frames"]), kind=str(config["kind"]))

    @property
    def first_frame(self) -> str:
        """What frame 0 of a pseudo video is, in words."""
        if self.kind in ("image", "markov"):
            return "pure Gaussian noise"
        return "the fully degraded (flat grey) frame"


def _whole_number(value: float | None, what: str) -> int:
    """A slider or number box's value (Gradio sends floats) as an int; API callers may send anything."""
    if value is None or isinstance(value, bool) or not float(value).is_integer():
        raise InputError(f"{what} must be a whole number, got {value!r}.")
    return int(value)


def _hardware_bounded(value: float | None, what: str, high: int, limits: Limits) -> int:
    """`_whole_number`, refused above `high`, the most this hardware allows."""
    number = _whole_number(value, what)
    if number > high:
        raise InputError(f"{what} may be at most {high} on this hardware ({limits.hardware}), got {number}.")
    return number


@dataclass(frozen=True)
class GenerateSettings:
    seed: int
    num_images: int
    num_frames: int
    sample: int

    @classmethod
    def check(
        cls, seed: float | None, num_images: float | None, num_frames: float | None, sample: float | None,
        limits: Limits,
    ) -> GenerateSettings:  # fmt: skip
        """The settings as integers, checked against this UI's limits before any heavy work: the seed's
        range (what the seed box and `torch.Generator.manual_seed` take), the hardware's most images and
        frames, and a sample that is one of the grid's tiles. The model's own rules (at least 1 image,
        at least 2 frames, exactly 2 for the image-only model) are `PseudoVideoPipeline.check_inputs`'s,
        called by `GenerateTab` before it generates."""
        seed = _whole_number(seed, "The seed")
        if not 0 <= seed <= MAX_SEED:
            raise InputError(f"The seed must be a whole number from 0 to {MAX_SEED}, got {seed}.")
        num_images = _hardware_bounded(num_images, "Number of images", limits.max_generated_images, limits)
        num_frames = _hardware_bounded(
            num_frames, "Frames (sampling steps + 1)", limits.max_pseudo_video_frames, limits
        )
        sample = _whole_number(sample, "The sample")
        if num_images >= 1 and not 0 <= sample < num_images:  # fewer images: check_inputs says so
            raise InputError(
                f"Sample {sample} does not exist: {_plural(num_images, 'image')} are generated, so pick a "
                f"sample from 0 to {num_images - 1} (row by row in the grid)."
            )
        return cls(seed, num_images, num_frames, sample)


# ------------------------------------------------------------------------------------------- drawing


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pipeline output in [0, 1] (..., H, W, C) to uint8, rounded as the pipeline's PIL output is."""
    return (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)


def display_scale(image_side: int) -> int:
    """The whole enlargement factor that brings `image_side` to at least `DISPLAY_SIDE` px."""
    return max(1, math.ceil(DISPLAY_SIDE / image_side))


def enlarge(images: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (..., H, W, C) by a whole factor."""
    return images.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]


def grid_columns(num_images: int) -> int:
    return math.ceil(math.sqrt(num_images))


def make_grid(images: np.ndarray, scale: int) -> np.ndarray:
    """(N, H, W, C) uint8 images -> one RGB grid: `grid_columns(N)` tiles per row, enlarged by `scale`,
    with a `GUTTER` px border of `GUTTER_COLOUR` around every tile (empty cells are border colour)."""
    tiles = _rgb(enlarge(images, scale))
    count, tile_h, tile_w = tiles.shape[:3]
    columns = grid_columns(count)
    rows = math.ceil(count / columns)
    grid = np.empty((GUTTER + rows * (tile_h + GUTTER), GUTTER + columns * (tile_w + GUTTER), 3), np.uint8)
    grid[:] = GUTTER_COLOUR
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = GUTTER + row * (tile_h + GUTTER), GUTTER + column * (tile_w + GUTTER)
        grid[top : top + tile_h, left : left + tile_w] = tile
    return grid


def tile_at(x: float, y: float, grid_width: int, grid_height: int, num_images: int) -> int | None:
    """The index of the tile under pixel (x, y) of a `make_grid` grid of `num_images` tiles, or None on
    the border or an empty cell."""
    columns = grid_columns(num_images)
    rows = math.ceil(num_images / columns)
    pitch_x, pitch_y = (grid_width - GUTTER) / columns, (grid_height - GUTTER) / rows
    column, offset_x = divmod(x - GUTTER, pitch_x)
    row, offset_y = divmod(y - GUTTER, pitch_y)
    if not (0 <= column < columns and 0 <= row < rows):
        return None
    if offset_x >= pitch_x - GUTTER or offset_y >= pitch_y - GUTTER:
        return None
    index = int(row) * columns + int(column)
    return index if index < num_images else None


def write_animation(frames: np.ndarray, path: Path, scale: int) -> Path:
    """A pseudo video (T, H, W, C) uint8 as a looping animated GIF, enlarged by `scale`; the last frame
    (the image) is held a little longer. Grayscale frames keep their exact grey levels."""
    frames = enlarge(frames, scale)
    frames = frames[..., 0] if frames.shape[-1] == 1 else frames[..., :3]
    images = [Image.fromarray(frame) for frame in frames]
    frame_ms = int(np.clip(ANIMATION_MS / max(1, len(images) - 1), MIN_FRAME_MS, MAX_FRAME_MS))
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=[frame_ms] * (len(images) - 1) + [HOLD_LAST_MS],
        loop=0,
        optimize=False,
    )
    return path


# --------------------------------------------------------------------------------------------- the tab


@dataclass(frozen=True)
class Samples:
    """One generation: `images` (N, H, W, C) and `videos` (N, T, H, W, C), uint8."""

    images: np.ndarray
    videos: np.ndarray
    seconds: float


class GenerateTab:
    """State and event handlers of the Generate tab; `render()` builds its components."""

    def __init__(self, checkpoint: str | os.PathLike, limits: Limits) -> None:
        self.checkpoint = str(checkpoint)
        self.limits = limits
        self.defaults = GenerateDefaults.from_checkpoint(checkpoint)
        self.pipeline = pretrained_pipeline(
            "pseudo-video", PseudoVideoPipeline, checkpoint, limits, disable=True
        )
        self._results: OrderedDict[tuple[int, int, int], Samples] = OrderedDict()
        self._results_lock = threading.Lock()

    def _samples(self, settings: GenerateSettings, progress: gr.Progress | None = None) -> Samples:
        """The images and pseudo videos of (seed, num_images, num_frames), from the recent results or
        generated now."""
        key = (settings.seed, settings.num_images, settings.num_frames)
        with self._results_lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        pipe = load_pipeline(self.pipeline, "generation", self.checkpoint, progress)
        generator = torch.Generator().manual_seed(settings.seed)
        try:
            pipe.check_inputs(
                batch_size=settings.num_images,
                generator=generator,
                num_frames=settings.num_frames,
                output_type="np",
            )
        except ValueError as error:  # settings this model cannot take (the pipeline says which)
            raise pipeline_input_error(error, hint=SETTINGS_HINT) from error
        started = time.perf_counter()
        with pipeline_job("Generation", "generate fewer images or use fewer frames"):
            output = pipe(
                batch_size=settings.num_images,
                generator=generator,
                num_frames=settings.num_frames,
                return_pseudo_video=True,
                output_type="np",
            )
        samples = Samples(
            to_uint8(output.images), to_uint8(output.pseudo_videos), time.perf_counter() - started
        )
        with self._results_lock:
            self._results[key] = samples
            while len(self._results) > CACHED_RESULTS:
                self._results.popitem(last=False)
        return samples

    # -- events ----------------------------------------------------------------------------------

    def generate(
        self,
        seed: float,
        num_images: float,
        num_frames: float,
        sample: float = 0,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ) -> tuple[str, str, str, dict]:
        """Generate `num_images` images from `seed`, each the last frame of a `num_frames`-frame pseudo
        video; returns the grid (PNG), the pseudo video of image `sample` (animated GIF), a Markdown
        summary, and the settings shown (kept in the session for choosing samples on the grid).

        Args:
            seed: 0 to 2**32 - 1; the same seed (with the same number of images and frames) gives the
                same images.
            num_images: how many images, 1 to the hardware limit.
            num_frames: frames of each pseudo video, including the first (noise or fully degraded) and
                the last (the image): sampling steps + 1. From 2 to the hardware limit.
            sample: the image whose pseudo video is animated, 0-based, row by row in the grid.
        """
        settings = GenerateSettings.check(seed, num_images, num_frames, sample, self.limits)
        samples = self._samples(settings, progress)
        job = new_job_dir()
        scale = display_scale(samples.images.shape[1])
        grid_path = job / f"samples_seed{settings.seed}_{settings.num_images}.png"
        Image.fromarray(make_grid(samples.images, scale)).save(grid_path)
        animation = self._animation(samples, settings, scale, job)
        summary = (
            f"{_plural(settings.num_images, 'image')} from seed {settings.seed}, each the last frame of a "
            f"{settings.num_frames}-frame pseudo video ({_plural(settings.num_frames - 1, 'step')}), "
            f"generated in {samples.seconds:.2f} s on {self.limits.hardware}.\n\n"
            + self._sample_caption(settings)
        )
        shown = {"seed": settings.seed, "num_images": settings.num_images, "num_frames": settings.num_frames}
        return str(grid_path), str(animation), summary, shown

    def _animation(self, samples: Samples, settings: GenerateSettings, scale: int, job: Path) -> Path:
        path = job / f"samples_seed{settings.seed}_sample{settings.sample}_pseudo_video.gif"
        return write_animation(samples.videos[settings.sample], path, scale)

    def _sample_caption(self, settings: GenerateSettings) -> str:
        return (
            f"**Sample {settings.sample}**: its pseudo video, from {self.defaults.first_frame} (frame 0) to "
            f"the image (frame {settings.num_frames - 1}). Click another tile of the grid to see its own."
        )

    def pick_sample(self, shown: dict | None, grid: str | None, event: gr.SelectData) -> dict:
        """The sample under a click on the grid (the slider is left alone on the border)."""
        if not shown or not grid:
            return gr.update()
        with Image.open(grid) as image:
            width, height = image.size
        index = tile_at(*event.index, width, height, shown["num_images"])
        return gr.update() if index is None else gr.update(value=index)

    def animate(self, shown: dict | None, sample: float) -> tuple[dict | str, dict | str]:
        """The pseudo video of `sample` of the grid on screen (no new generation while it is among the
        recent results)."""
        if not shown:
            return gr.update(), gr.update()
        settings = GenerateSettings.check(
            shown["seed"], shown["num_images"], shown["num_frames"], sample, self.limits
        )
        samples = self._samples(settings)
        animation = self._animation(samples, settings, display_scale(samples.images.shape[1]), new_job_dir())
        summary = (
            f"{_plural(settings.num_images, 'image')} from seed {settings.seed}, "
            f"{settings.num_frames}-frame pseudo videos.\n\n" + self._sample_caption(settings)
        )
        return str(animation), summary

    # -- layout ----------------------------------------------------------------------------------

    def render(self) -> None:
        """Build the tab's components and events inside the current Blocks context."""
        limits, defaults = self.limits, self.defaults
        # The trained count (2 for the image-only model, whose slider is then fixed).
        default_frames = min(defaults.num_frames, limits.max_pseudo_video_frames)
        gr.Markdown(
            "Generate images with a small model trained to make each image as the **last frame of a pseudo "
            "video** (Chen et al. 2024; the embedded model draws 8x8 handwritten digits, enlarged here): it "
            "starts from "
            f"{defaults.first_frame} and refines it frame by frame. Pick a sample to watch its pseudo video. "
            f"Limits on {limits.hardware}: {limits.max_generated_images} images and "
            f"{limits.max_pseudo_video_frames} frames per run."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                seed = gr.Number(
                    value=0, minimum=0, maximum=MAX_SEED, precision=0, label="Seed", elem_id="generate-seed",
                    info="The same seed, number of images and frames give the same images.",
                )  # fmt: skip
                random_seed = gr.Button("🎲 Random seed", size="sm")
                num_images = gr.Slider(
                    1, limits.max_generated_images, value=min(16, limits.max_generated_images), step=1,
                    label="Number of images", elem_id="generate-num-images",
                )  # fmt: skip
                num_frames = gr.Slider(
                    2, limits.max_pseudo_video_frames,
                    value=default_frames,
                    step=1, label="Frames (sampling steps + 1)", elem_id="generate-num-frames",
                    interactive=defaults.kind != "image",
                    info=f"Frames of each pseudo video, from the first to the image. Trained with "
                    f"{defaults.num_frames}.",
                )  # fmt: skip
                sample = gr.Slider(
                    0, max(0, limits.max_generated_images - 1), value=0, step=1, elem_id="generate-sample",
                    label="Sample to animate (or click its tile)",
                )  # fmt: skip
                run = gr.Button("Generate", variant="primary", elem_id="generate-button")
            with gr.Column(scale=2):
                grid = gr.Image(
                    label="Generated images (click one to animate it)",
                    type="filepath",
                    format="png",
                    interactive=False,
                    buttons=["download"],
                    elem_id="generate-grid",
                )
            with gr.Column(scale=1):
                animation = gr.Image(
                    label="Its pseudo video (animated GIF)",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="generate-animation",
                )
                summary = gr.Markdown(elem_id="generate-summary")
        shown = gr.State(None)

        random_seed.click(
            lambda: int(np.random.default_rng().integers(0, MAX_SEED + 1)),
            outputs=[seed],
            api_visibility="private",
            show_progress="hidden",
        )
        run.click(
            self.generate,
            inputs=[seed, num_images, num_frames, sample],
            outputs=[grid, animation, summary, shown],
            api_name="generate",
            # One generation at a time on a CPU (two on a GPU): they are short, and more would compete for
            # the cores. The picks below share the limit (same concurrency_id).
            concurrency_limit=limits.job_concurrency,
            concurrency_id="generate",
        )
        grid.select(
            self.pick_sample, inputs=[shown, grid], outputs=[sample], api_visibility="private"
        ).success(
            self.animate,
            inputs=[shown, sample],
            outputs=[animation, summary],
            api_visibility="private",
            concurrency_limit=limits.job_concurrency,
            concurrency_id="generate",
        )
        sample.release(
            self.animate,
            inputs=[shown, sample],
            outputs=[animation, summary],
            api_visibility="private",
            concurrency_limit=limits.job_concurrency,
            concurrency_id="generate",
        )
