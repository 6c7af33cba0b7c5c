"""Input limits that fit the hardware the Space runs on.

A free CPU Space has 2 cores and 16 GB: a 300-frame 720p clip already takes minutes there, and the
queue serves one colorization at a time, so longer inputs would block every other visitor. With a GPU
the same work takes seconds and the limits grow accordingly. The limits are stated in the UI and
enforced with a `gr.Error` before any heavy work starts.

The queue is sized here too (`queue_settings`, used by `app.py`): light events (video info, a frame) run
`event_concurrency` at a time and at most `max_queue_size` jobs wait; past that a visitor is refused at
once with Gradio's "busy, try again" message (the browser: "This application is currently busy. Please
try again."; gradio_client: `QueueError("Queue is full! Please try again.")`) rather than waiting behind a
queue that cannot clear. `job_concurrency` is how many jobs of one heavy tab (its `concurrency_id`) may
run at once. `frame_budget` bounds a job's frames by its pixels too (`max_job_megapixels`), so a 1280-px
video may get fewer frames than a 480p one. `FrameProgress` shows frames/s and the time left of a long
job on its `gr.Progress`.

Every limit can be overridden with an environment variable (Space "Variables" or the test suite),
e.g. `HUEFLOW_MAX_FRAMES=12`, `HUEFLOW_MAX_QUEUE_SIZE=4`.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

# The limits `Limits.detect` picks, per field: (on a CPU, on a GPU).
HARDWARE_LIMITS: dict[str, tuple[int | float, int | float]] = {
    "max_frames": (300, 1800),
    "max_side": (1280, 1920),
    "max_processing_size": (512, 1024),
    "max_exemplar_side": (4096, 8192),
    "max_exemplar_megapixels": (16.0, 40.0),
    "max_exemplars": (4, 8),
    "max_upload_mb": (200, 1000),
    "max_generated_images": (64, 256),
    "max_pseudo_video_frames": (32, 64),
    # 200 MP: 300 frames of 854x480 (the whole max_frames), about 217 frames of 1280x720.
    "max_job_megapixels": (200.0, 4000.0),
    "job_concurrency": (1, 2),
    "event_concurrency": (2, 4),
    "max_queue_size": (16, 64),
}


@dataclass(frozen=True)
class Limits:
    hardware: str
    """Human-readable name of the hardware, shown in the UI ("CPU", "GPU (NVIDIA H100)")."""
    device: str
    """Torch device the pipelines run on."""
    max_frames: int
    """Most frames one colorization processes; longer videos are refused (or cut with "Max frames")."""
    max_side: int
    """Longest side, in pixels, of an input video. The output keeps the input resolution."""
    max_processing_size: int
    """Largest short side the model may run at (the "Processing resolution" slider's maximum)."""
    max_exemplar_side: int
    """Longest side, in pixels, of an exemplar image."""
    max_exemplar_megapixels: float
    """Pixel count of an exemplar, so a 4096x4096 PNG cannot be decoded into 50 MB of RGB per request."""
    max_exemplars: int
    """Each exemplar adds to the permanent memory every frame attends to."""
    max_upload_mb: int
    """Largest single upload, enforced by Gradio itself (`launch(max_file_size=...)`)."""
    max_generated_images: int = 64
    """Most images one run of the Generate tab makes (its grid has that many tiles)."""
    max_pseudo_video_frames: int = 32
    """Most frames of the pseudo video walked to each generated image (sampling steps + 1)."""
    max_job_megapixels: float = 200.0
    """Frames x width x height of one video job, in millions: what a job costs in time and memory. A
    larger video gets fewer frames (`frame_budget`)."""
    job_concurrency: int = 1
    """Jobs of one heavy tab (colorize, track, edit, generate) that run at once (its `concurrency_limit`)."""
    event_concurrency: int = 2
    """Light events (video info, frame extraction, comparison) that run at once beside the jobs."""
    max_queue_size: int = 16
    """Jobs that may wait in the queue; more are refused with Gradio's "busy, try again" message."""

    @classmethod
    def detect(cls) -> Limits:
        """Limits for the hardware found at start-up, with `HUEFLOW_<FIELD>` environment overrides."""
        on_gpu = torch.cuda.is_available()
        hardware = f"GPU ({torch.cuda.get_device_name(0)})" if on_gpu else "CPU"
        values = {name: gpu if on_gpu else cpu for name, (cpu, gpu) in HARDWARE_LIMITS.items()}
        limits = cls(hardware=hardware, device="cuda" if on_gpu else "cpu", **values)
        return limits.with_env_overrides()

    def with_env_overrides(self, environ: dict[str, str] | None = None) -> Limits:
        environ = os.environ if environ is None else environ
        overrides: dict[str, object] = {}
        for field in fields(self):
            raw = environ.get(f"HUEFLOW_{field.name.upper()}")
            if raw is None or field.name in ("hardware", "device"):
                continue
            cast = float if field.type == "float" else int
            try:
                overrides[field.name] = cast(raw)
            except ValueError as error:
                name = f"HUEFLOW_{field.name.upper()}"
                raise ValueError(f"{name}={raw!r} is not a valid {cast.__name__}.") from error
        return replace(self, **overrides)

    def frame_budget(self, width: int, height: int) -> int:
        """The most frames one job may process for a `width` x `height` video: `max_frames`, fewer when
        its pixels would pass `max_job_megapixels` (at least 1)."""
        by_pixels = math.floor(self.max_job_megapixels * 1e6 / max(1, width * height))
        return max(1, min(self.max_frames, by_pixels))

    def queue_settings(self) -> dict[str, Any]:
        """Keyword arguments of `gr.Blocks.queue` for this hardware: light events' concurrency and the
        longest queue (a tab's jobs run `job_concurrency` at a time through their own `concurrency_id`)."""
        return {"default_concurrency_limit": self.event_concurrency, "max_size": self.max_queue_size}

    def describe(self) -> str:
        """One line of Markdown for the header of the app."""
        return (
            f"**Limits on this hardware ({self.hardware}):** videos up to {self.max_frames} frames and "
            f"{self.max_side} px on the long side, uploads up to {self.max_upload_mb} MB; up to "
            f"{self.max_exemplars} exemplars of at most {self.max_exemplar_side} px and "
            f"{self.max_exemplar_megapixels:g} MP each."
        )


def format_duration(seconds: float) -> str:
    """`75` -> "1:15", `3725` -> "1:02:05": a time left as a visitor reads it."""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class FrameProgress:
    """A pipeline's `callback_on_frame_end` that shows a long job's speed and time left on its
    `gr.Progress`, e.g. "Colorizing: 12/300 frames, 3.4 frames/s, about 1:25 left", and counts the frames
    done (`frames`, for a tab's "cut short" check).

        tracker = FrameProgress(progress, total=num_frames, desc="Colorizing")
        pipe(..., callback_on_frame_end=tracker)
        warn_if_cut_short(tracker.frames, num_frames, video)

    The rate is measured from the first frame's end, so a first-use model load or the exemplars'
    encoding does not skew it; updates are throttled to `every_s` seconds (the last frame always shows).
    """

    def __init__(self, progress: Any, total: int, desc: str, every_s: float = 0.5) -> None:
        self.progress = progress
        self.total = max(1, int(total))
        self.desc = desc
        self.every_s = every_s
        self.frames = 0
        self._first_end: float | None = None
        self._last_shown = -math.inf

    def describe(self, now: float) -> str:
        """The progress line after `self.frames` frames, at time `now` (`time.perf_counter()`)."""
        text = f"{self.desc}: {self.frames}/{self.total} frames"
        if self._first_end is None or self.frames < 2 or now <= self._first_end:
            return text
        rate = (self.frames - 1) / (now - self._first_end)
        left = (self.total - self.frames) / rate
        return f"{text}, {rate:.1f} frames/s, about {format_duration(left)} left"

    def __call__(self, pipeline: Any, index: int, callback_kwargs: dict[str, Any]) -> None:
        now = time.perf_counter()
        # Counted, not read from `index`: colorization calls back in the order it colours the frames, which
        # starts backwards when the first exemplar is tied to a later frame.
        self.frames += 1
        if self._first_end is None:
            self._first_end = now
        if now - self._last_shown >= self.every_s or self.frames >= self.total:
            self._last_shown = now
            self.progress((self.frames, self.total), desc=self.describe(now), unit="frames")
