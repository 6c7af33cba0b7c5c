"""The Video GAN tab: short clips from seeds with `TGANPipeline` (TGAN, Saito et al., ICCV 2017, "Temporal
Generative Adversarial Nets with Singular Value Clipping").

A visitor picks a seed and a number of clips, or two seeds and a number of steps to walk in latent
space from one seed's clip to the other's, and gets all the clips tiled into one looping GIF (every
clip plays in step, as in the paper's figures; browsers loop GIFs by themselves, with no player),
plus the same grid as an H.264 mp4 to download. The embedded model makes 32x32 grey clips, so the
frames are enlarged with nearest-neighbour scaling (`export_videos`), to `DISPLAY_SIDE` px or less
when a large grid would otherwise pass `MAX_GRID_SIDE`.

Seeds: the clips of (seed, N clips) are the first N of any larger number from the same seed, and the
first (top left) is the clip that interpolation from or to that seed starts or ends on.

As in the other tabs, every input is checked before the model runs: against the hardware `Limits`
(`max_generated_images`, the most tiles one grid has: clips here) and as whole numbers here, then by
`TGANPipeline.check_inputs`; every problem is a `gr.Error` that says what to change.

API endpoints (usable with `gradio_client`):
    `generate_videos(seed, num_videos) -> (gif path, mp4 path, summary)`: `num_videos` clips from `seed`,
        `ceil(sqrt(num_videos))` per row, row by row.
    `interpolate_videos(seed_a, seed_b, steps) -> (gif path, mp4 path, summary)`: `steps` clips on the
        straight latent path from seed A's clip (the first) to seed B's (the last), up to
        `INTERPOLATION_COLUMNS` per row.
    Tiles are separated by a `GUTTER` px border of grey level `GUTTER_GREY` (see `export_videos` for
    the layout); a single clip has no border.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from pipelines import TGANPipeline
from pipelines.tgan import export_videos

from . import InputError, load_pipeline, new_job_dir, pipeline_input_error, pipeline_job, pretrained_pipeline
from .limits import Limits

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_CARD = REPO_ROOT / "model_cards" / "tgan-moving-digits.md"
# What `torch.Generator().manual_seed` takes and the Generate tab's seed box allows.
MAX_SEED = 2**32 - 1
FPS = 8
# Tiles are enlarged (nearest neighbour, a whole factor) to this side, less when the grid would pass
# MAX_GRID_SIDE px across (GIF size and encoding time grow with its area).
DISPLAY_SIDE, MAX_GRID_SIDE = 128, 1024
GUTTER, GUTTER_GREY = 4, 128  # a mid grey between black backgrounds, on light and dark themes alike
INTERPOLATION_COLUMNS = 8  # a path of up to 8 clips reads left to right in one row

# Shown after the pipeline's error: its argument names, as this tab labels them.
SETTINGS_HINT = "(Here num_videos is 'Number of clips' and interpolate is (seed A, seed B, steps).)"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ------------------------------------------------------------------------------------------ settings


def whole_number(value: object, what: str) -> int:
    """A number box or slider's value (Gradio sends floats; API callers may send anything) as an int."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise InputError(f"{what} must be a whole number, got {value!r}.")
    return int(number)


def check_seed(value: object, what: str = "The seed") -> int:
    seed = whole_number(value, what)
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"{what} must be a whole number from 0 to {MAX_SEED}, got {seed}.")
    return seed


def check_count(value: object, what: str, low: int, limits: Limits) -> int:
    """A number of clips: whole, at least `low`, at most the hardware's `max_generated_images`."""
    count = whole_number(value, what)
    if count < low:
        raise InputError(f"{what} must be at least {low}, got {count}.")
    if count > limits.max_generated_images:
        raise InputError(
            f"{what} may be at most {limits.max_generated_images} on this hardware ({limits.hardware}), "
            f"got {count}."
        )
    return count


def display_scale(side: int, columns: int) -> int:
    """The whole enlargement factor of a grid of `columns` tiles of `side` px: up to `DISPLAY_SIDE` px
    per tile, down to 1 when the grid would be wider than `MAX_GRID_SIDE`."""
    return max(1, min(math.ceil(DISPLAY_SIDE / side), MAX_GRID_SIDE // (columns * side)))


def model_card_markdown(card: Path = MODEL_CARD) -> str:
    """A link to the model card: on a Space (`SPACE_ID` is set there) to the file in the Space's repo,
    elsewhere its path in this repository."""
    relative = card.relative_to(REPO_ROOT).as_posix() if card.is_relative_to(REPO_ROOT) else card.name
    space = os.environ.get("SPACE_ID")
    if space:
        return f"[{relative}](https://huggingface.co/spaces/{space}/blob/main/{relative})"
    return f"`{relative}`"


def card_body(card: Path) -> str | None:
    """The card's Markdown without its YAML front matter (the Hub's metadata), or None without a card."""
    if not card.is_file():
        return None
    return re.sub(r"\A---\n.*?\n---\n", "", card.read_text(encoding="utf-8"), flags=re.DOTALL).strip()


# --------------------------------------------------------------------------------------------- the tab


class VideoGANTab:
    """State and event handlers of the Video GAN tab; `render()` builds its components."""

    def __init__(self, checkpoint: str | os.PathLike, limits: Limits, card: Path = MODEL_CARD) -> None:
        self.checkpoint = str(checkpoint)
        self.limits = limits
        self.card = card
        # Loaded on first use: a missing model folder does not stop the app, it is reported when used.
        self.pipeline = pretrained_pipeline("video GAN", TGANPipeline, checkpoint, limits, disable=True)

    def _videos(self, arguments: dict, progress: gr.Progress | None) -> tuple[np.ndarray, float]:
        """The pipeline's uint8 clips (V, T, H, W, C) for `arguments` of `TGANPipeline.__call__`, checked
        by its `check_inputs` first, and the seconds they took."""
        pipe = load_pipeline(self.pipeline, "video GAN", self.checkpoint, progress)
        try:
            pipe.check_inputs(**arguments, output_type="np")
        except ValueError as error:  # settings this model cannot take (the pipeline says which)
            raise pipeline_input_error(error, hint=SETTINGS_HINT) from error
        started = time.perf_counter()
        with pipeline_job("Video generation", "generate fewer clips"):
            frames = pipe(**arguments, output_type="np").frames
        return frames, time.perf_counter() - started

    def _export(self, videos: np.ndarray, stem: str, columns: int) -> tuple[str, str]:
        """The clips tiled into one looping GIF and the same grid as an mp4, in a new job folder."""
        job = new_job_dir()
        scale = display_scale(videos.shape[3], min(columns, len(videos)))
        options = {
            "fps": FPS,
            "scale": scale,
            "columns": columns,
            "gutter": GUTTER,
            "gutter_color": GUTTER_GREY,
        }
        with pipeline_job("Writing the clips", "generate fewer clips"):
            gif = export_videos(videos, job / f"{stem}.gif", **options)
            mp4 = export_videos(videos, job / f"{stem}.mp4", **options)
        return gif, mp4

    def _describe(self, videos: np.ndarray, seconds: float) -> str:
        frames, height, width = videos.shape[1:4]
        return (
            f"{frames} frames of {width}x{height} each, looping at {FPS} fps; generated in {seconds:.2f} s "
            f"on {self.limits.hardware}."
        )

    # -- events ----------------------------------------------------------------------------------

    def generate(
        self,
        seed: float,
        num_videos: float,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ) -> tuple[str, str, str]:
        """`num_videos` clips from `seed`, tiled row by row into one looping GIF; returns the GIF, the same
        grid as an mp4 and a Markdown summary.

        Args:
            seed: 0 to 2**32 - 1; the same seed gives the same clips, and the first N clips of a seed do not
                depend on how many are generated.
            num_videos: how many clips, 1 to the hardware limit.
        """
        seed = check_seed(seed)
        num_videos = check_count(num_videos, "Number of clips", 1, self.limits)
        generator = torch.Generator().manual_seed(seed)
        videos, seconds = self._videos({"num_videos": num_videos, "generator": generator}, progress)
        gif, mp4 = self._export(videos, f"clips_seed{seed}_{num_videos}", math.ceil(math.sqrt(num_videos)))
        summary = (
            f"{_plural(num_videos, 'clip')} from seed {seed}, row by row: "
            + self._describe(videos, seconds)
            + f"\n\nThe first clip (top left) is seed {seed}'s own: the one interpolation from or to seed "
            f"{seed} starts or ends on."
        )
        return gif, mp4, summary

    def interpolate(
        self,
        seed_a: float,
        seed_b: float,
        steps: float,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ) -> tuple[str, str, str]:
        """`steps` clips whose latent moves in a straight line from seed A's clip to seed B's, tiled row by
        row (up to `INTERPOLATION_COLUMNS` per row) into one looping GIF; returns the GIF, the same grid as
        an mp4 and a Markdown summary.

        Args:
            seed_a, seed_b: 0 to 2**32 - 1: the first and the last clip are exactly these seeds' clips (the
                first clip `generate` makes from each).
            steps: clips on the path, both ends included: 2 to the hardware limit.
        """
        seed_a, seed_b = check_seed(seed_a, "Seed A"), check_seed(seed_b, "Seed B")
        steps = check_count(steps, "Interpolation steps", 2, self.limits)
        videos, seconds = self._videos({"interpolate": (seed_a, seed_b, steps)}, progress)
        gif, mp4 = self._export(
            videos, f"interpolation_seed{seed_a}_to_seed{seed_b}_{steps}", min(steps, INTERPOLATION_COLUMNS)
        )
        summary = (
            f"{steps} clips on the straight line in latent space from seed {seed_a}'s clip (the first, top "
            f"left) to seed {seed_b}'s (the last), row by row: " + self._describe(videos, seconds)
        )
        return gif, mp4, summary

    # -- layout ----------------------------------------------------------------------------------

    def render(self) -> None:
        """Build the tab's components and events inside the current Blocks context."""
        limits = self.limits
        most = limits.max_generated_images
        gr.Markdown(
            "Generate short videos with a **temporal GAN** (TGAN, Saito et al., ICCV 2017): from one latent "
            "vector per clip, a temporal generator (1-D transposed convolutions along time) makes a latent "
            "for every frame, and an image generator draws each frame from both; it was trained as a "
            "Wasserstein GAN whose 3-D critic is kept Lipschitz by clipping (the paper clips singular "
            "values). The embedded model learnt bouncing handwritten digits (scikit-learn's 8x8 digits, one "
            "per clip) with a recipe sized for one CPU thread (weight clipping measured a little better than "
            "singular value clipping at this scale): 16 grey frames of 32x32, enlarged here. Model card: "
            f"{model_card_markdown(self.card)}. Limit on {limits.hardware}: {most} clips per run."
        )
        body = card_body(self.card)
        if body:
            with gr.Accordion("Model card", open=False):
                gr.Markdown(body)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                seed = gr.Number(
                    value=0, precision=None, step=1, label="Seed", elem_id="video-gan-seed",
                    info=f"A whole number from 0 to {MAX_SEED}. The same seed gives the same clips.",
                )  # fmt: skip
                random_seed = gr.Button("🎲 Random seed", size="sm")
                num_videos = gr.Slider(
                    1, most, value=min(9, most), step=1, label="Number of clips",
                    elem_id="video-gan-num-videos",
                )  # fmt: skip
                run = gr.Button("Generate clips", variant="primary", elem_id="video-gan-button")
                with gr.Accordion("Interpolate between two seeds", open=False):
                    gr.Markdown(
                        "Walk the latent space in a straight line from seed A's clip (the first clip that "
                        "seed gives) to seed B's: the clips morph from one into the other."
                    )
                    with gr.Row():
                        seed_a = gr.Number(
                            value=0, precision=None, step=1, label="Seed A", elem_id="video-gan-seed-a"
                        )
                        seed_b = gr.Number(
                            value=1, precision=None, step=1, label="Seed B", elem_id="video-gan-seed-b"
                        )
                    steps = gr.Slider(
                        2, max(2, most), value=min(8, max(2, most)), step=1,
                        label="Steps (clips on the path)", elem_id="video-gan-steps",
                    )  # fmt: skip
                    interpolate = gr.Button("Interpolate", elem_id="video-gan-interpolate-button")
            with gr.Column(scale=2):
                animation = gr.Image(
                    label="Generated clips (looping GIF)",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="video-gan-animation",
                )
                summary = gr.Markdown(elem_id="video-gan-summary")
                video = gr.File(
                    label="The same clips as mp4 (H.264)", interactive=False, elem_id="video-gan-mp4"
                )

        random_seed.click(
            lambda: int(np.random.default_rng().integers(0, MAX_SEED + 1)),
            outputs=[seed],
            api_visibility="private",
            show_progress="hidden",
        )
        # One generation at a time on a CPU (two on a GPU): they are short, and more would compete for
        # the cores.
        run.click(
            self.generate,
            inputs=[seed, num_videos],
            outputs=[animation, video, summary],
            api_name="generate_videos",
            concurrency_limit=limits.job_concurrency,
            concurrency_id="video_gan",
        )
        interpolate.click(
            self.interpolate,
            inputs=[seed_a, seed_b, steps],
            outputs=[animation, video, summary],
            api_name="interpolate_videos",
            concurrency_limit=limits.job_concurrency,
            concurrency_id="video_gan",
        )
