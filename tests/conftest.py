"""Shared fixtures: tiny randomly initialised pipelines and generated clips (no network, no Hub), and
the app launched on a free local port for the end-to-end tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from gradio_client.exceptions import AppError

from pipelines.appearance import AppearanceFeatureEncoder, HeroRestorer, ZeroToHeroPipeline
from pipelines.colorization import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetPipeline,
    ColorMNetValueEncoder,
)

# Gradio's queue uses pandas APIs that pandas 3 deprecates; not ours to fix. The app tests' `pytestmark`.
GRADIO_QUEUE_WARNINGS = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


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


def make_tiny_zero_to_hero(seed: int = 0, random_head: bool = True, **config) -> ZeroToHeroPipeline:
    """Random weights, a tiny correspondence encoder (no frozen backbone, no motion input) and restorer.

    With `random_head=False` the restorer is untrained, so it is the identity: the output is the Zero
    stage's.
    """
    torch.manual_seed(seed)
    encoder = AppearanceFeatureEncoder(
        backbone_config={
            "feature_channels": 16,
            "hidden_channels": [8, 16],
            "backbone": None,
            "use_motion": False,
        }
    )
    restorer = HeroRestorer(hidden_channels=(8, 8, 8), num_residual_blocks=1)
    if random_head:  # an untrained restorer is the identity: make it do something the tests can see
        torch.nn.init.normal_(restorer.head.weight, std=0.05)
    pipe = ZeroToHeroPipeline(encoder, restorer, processing_size=64, **config)
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


def paste_per_frame(background: np.ndarray, patch: np.ndarray | tuple, boxes: list[tuple]) -> np.ndarray:
    """A clip (T, H, W, 3) with one frame per box (x0, y0, x1, y1, exclusive): `background` with `patch`
    (an array of the box's size, or one colour) pasted into that box."""
    frames = np.repeat(background[None], len(boxes), axis=0)
    for frame, (x0, y0, x1, y1) in zip(frames, boxes, strict=True):
        frame[y0:y1, x0:x1] = patch
    return frames


def write_truncated_mkv(path: Path, frames: np.ndarray, fps: int, keep: float) -> Path:
    """An H.264 Matroska file cut short to `keep` of its bytes (an interrupted upload). Matroska keeps
    the duration in its header: cut short, the file still declares all of `frames`."""
    from test_video import write_h264

    whole = path.with_name(f"{path.stem}-whole.mkv")
    write_h264(whole, list(frames), fps=fps)
    path.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * keep)])
    return path


def decode(path: str | Path) -> np.ndarray:
    """Every frame of a video file, decoded with PyAV (not the pipelines' reader): (T, H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched_app(env: dict[str, str | None], cache_dir: Path) -> Iterator[str]:
    """The real app (`app.build_demo`, real queue) served on a free local port; yields its URL.

    `env` is set while the app is built and served (a value of None unsets that variable), with
    HUEFLOW_CACHE_DIR pointing at `cache_dir`; the server is closed and the environment restored after.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**env, "HUEFLOW_CACHE_DIR": str(cache_dir)}.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        from app import build_demo

        demo = build_demo()
        port = free_port()
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            demo.close()


def job_messages(job) -> list[str]:
    """The `gr.Info`/`gr.Warning` texts a submitted `gradio_client` job shows while it runs."""

    async def updates() -> list:
        return [update async for update in job]

    return [update.log[0] for update in asyncio.run(updates()) if getattr(update, "log", None)]


def assert_refused_then_next_job_runs(
    run: Callable[..., tuple[str, object]], message: str, inputs: dict, next_frames: int
) -> None:
    """`run(**inputs)` (an app endpoint that returns a video first) fails with a clear error: `message`
    and no traceback. The failed job leaves nothing behind: the next visitor's job, `run` with its
    defaults and `max_frames=next_frames` (few, for speed), runs normally."""
    with pytest.raises(AppError, match=message) as error:
        run(**inputs)
    assert "Traceback" not in str(error.value)

    video_path, _ = run(max_frames=next_frames)
    assert decode(video_path).shape[0] == next_frames


@pytest.fixture
def tiny_pipe() -> ColorMNetPipeline:
    return make_tiny_colormnet()


@pytest.fixture
def colour_clip() -> np.ndarray:
    return make_colour_clip()
