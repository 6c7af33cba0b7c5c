"""Input limits that fit the hardware the Space runs on.

A free CPU Space has 2 cores and 16 GB: a 300-frame 720p clip already takes minutes there, and the
queue serves one colorization at a time, so longer inputs would block every other visitor. With a GPU
the same work takes seconds and the limits grow accordingly. The limits are stated in the UI and
enforced with a `gr.Error` before any heavy work starts.

Every limit can be overridden with an environment variable (Space "Variables" or the test suite),
e.g. `HUEFLOW_MAX_FRAMES=12`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

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

    def describe(self) -> str:
        """One line of Markdown for the header of the app."""
        return (
            f"**Limits on this hardware ({self.hardware}):** videos up to {self.max_frames} frames and "
            f"{self.max_side} px on the long side, uploads up to {self.max_upload_mb} MB; up to "
            f"{self.max_exemplars} exemplars of at most {self.max_exemplar_side} px and "
            f"{self.max_exemplar_megapixels:g} MP each."
        )
