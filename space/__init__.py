"""The Gradio app (Hugging Face Space) around hueflow's pipelines: one module per tab.

A tab module exposes its tab class (`ColorizeTab(checkpoint, limits)`, ...), whose `render()` builds its
components inside the caller's `gr.Tab` and wires its events; `app.py` puts the tabs together.
Pipelines are loaded lazily with `LazyPipeline`, so the app starts in seconds and only pays for the
models a visitor uses.

What more than one tab needs lives here: `InputError` for problems with the visitor's input and
`pipeline_input_error` (a pipeline's `check_inputs` error shown as one), `open_video_reader` /
`open_video` (the hardware checks every uploaded video goes through), `load_uploaded_image` (the same
for images), `check_uploaded_file` (an upload whose file is gone is reported as missing),
`check_max_frames` and `check_video_length` (Max frames against the limits),
`checkpoint_config` and `init_defaults` (a tab's defaults from its model's saved config),
`pretrained_pipeline` (a tab's `LazyPipeline` of its model), `check_model_folder` and `load_pipeline`
(a model that cannot be loaded becomes a clear `gr.Error`), per-request job folders and small frame
and layout helpers.

The rules an input must follow belong to the pipelines: each tab calls its pipeline's public
`check_inputs` and shows its errors, and keeps only the limits of this UI and its hardware (`Limits`).
Only the package faces are imported (`pipelines` and `pipelines.<system>`), never their modules.
"""

from __future__ import annotations

import gc
import inspect
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Generic, TypeVar

import gradio as gr
import numpy as np
import torch
from PIL import Image

from pipelines import (
    HueflowPipeline,
    PretrainedLoadError,
    VideoInfo,
    VideoInputError,
    VideoReader,
    is_cut_short,
    load_image,
)

from .limits import Limits

logger = logging.getLogger(__name__)

PipelineT = TypeVar("PipelineT")
HueflowPipelineT = TypeVar("HueflowPipelineT", bound=HueflowPipeline)

# Results are kept this long for their download links; older job folders are removed.
JOB_MAX_AGE_S = 2 * 3600


class LazyPipeline(Generic[PipelineT]):
    """Loads a pipeline on first use and keeps it for the life of the process.

    Gradio runs events in a thread pool, so two first requests can arrive at once; the lock makes
    sure the checkpoint is read (and its weights allocated) only once.
    """

    def __init__(self, name: str, loader: Callable[[], PipelineT]) -> None:
        self.name = name
        self._loader = loader
        self._pipeline: PipelineT | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    def get(self) -> PipelineT:
        # Fast path without the lock once loaded; the lock only guards the first load.
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    logger.info("Loading the %s pipeline (first use).", self.name)
                    self._pipeline = self._loader()
        return self._pipeline


class InputError(gr.Error):
    """A problem with the visitor's input. Shown in the UI like any `gr.Error`, but not logged with a
    traceback: it is an expected outcome, not a server fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message, duration=20, print_exception=False)


def check_model_folder(checkpoint: str) -> None:
    """Raise `PretrainedLoadError` when `checkpoint` is a local path (absolute, or starting with ".")
    that does not exist. Checked before `from_pretrained`, whose message would show the server's full
    path (and call it "neither a model folder nor a Hub repo id"); this one names its last two parts."""
    path = Path(checkpoint)
    if (path.is_absolute() or checkpoint.startswith(".")) and not path.exists():
        raise PretrainedLoadError(f"no model folder at {path.parent.name}/{path.name}")


def pretrained_pipeline(
    name: str,
    pipeline_class: type[HueflowPipelineT],
    checkpoint: str | os.PathLike,
    limits: Limits,
    **progress_bar_config: object,
) -> LazyPipeline[HueflowPipelineT]:
    """A `LazyPipeline` that loads `pipeline_class` from `checkpoint` (a model folder or Hub repo id)
    onto `limits.device` on first use, with `set_progress_bar_config(**progress_bar_config)`; a missing
    local folder is reported by `check_model_folder` first."""
    checkpoint = str(checkpoint)

    def load() -> HueflowPipelineT:
        check_model_folder(checkpoint)
        pipe = pipeline_class.from_pretrained(checkpoint)
        pipe.to(limits.device)
        pipe.set_progress_bar_config(**progress_bar_config)
        return pipe

    return LazyPipeline(name, load)


def load_pipeline(
    pipeline: LazyPipeline[PipelineT], task: str, checkpoint: str, progress: gr.Progress | None = None
) -> PipelineT:
    """`pipeline.get()`, with a failure (missing or incompatible checkpoint) logged in full on the server
    and shown to the visitor as a short `gr.Error` that says it is not their fault. A failed load is
    not cached: the next request tries again. Given `progress`, a first load is announced on it."""
    if progress is not None and not pipeline.loaded:
        progress(0, desc="Loading the model (first run only)")
    try:
        return pipeline.get()
    except Exception as error:
        logger.exception("Could not load the %s model from %s", task, checkpoint)
        detail = str(error) if isinstance(error, PretrainedLoadError) else type(error).__name__
        raise gr.Error(
            f"The {task} model could not be loaded ({detail}). This is a problem with the Space, not with "
            "your input: please report it.",
            print_exception=False,
        ) from error


@contextmanager
def pipeline_job(task: str, memory_advice: str) -> Iterator[None]:
    """Around a tab's pipeline call: running out of memory becomes `memory_advice` for the visitor, any
    other unexpected failure a short `gr.Error` (the traceback goes to the server log), and the job's
    tensors are freed afterwards either way, so the next visitor starts from a clean slate. A `gr.Error`
    raised inside (the tab's own input errors) passes through unchanged."""
    try:
        yield
    except gr.Error:
        raise
    except (torch.OutOfMemoryError, MemoryError) as error:
        raise InputError(f"Ran out of memory: {memory_advice}.") from error
    except Exception as error:
        logger.exception("%s failed", task)
        raise gr.Error(
            f"{task} failed unexpectedly ({type(error).__name__}). Please try again; if it keeps "
            "failing, report it with the video.",
            print_exception=False,
        ) from error
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def clean_paths(message: str, *paths: str | None) -> str:
    """Replace server-side paths (Gradio's upload folder) in an error message by the file names the
    visitor knows."""
    for path in paths:
        if path:
            message = message.replace(str(path), Path(path).name)
    return message


def check_uploaded_file(path: str, what: str) -> None:
    """Refuse an upload whose file is gone (`what` names it: "Exemplar 2 ('cat.png')"). A file can
    vanish after Gradio has passed its path on: an expired or cleaned-up upload, or a copy that another
    Gradio process on the machine deleted from the shared temp folder when it shut down. Said as such,
    not as a file that is "not an image" or "not a video"."""
    if not Path(path).exists():
        raise InputError(f"{what} is missing: it was deleted or never uploaded; upload it again.")


def unusable_video(error: VideoInputError, video: str) -> InputError:
    """The `InputError` for a file that does not decode as a video (raise it `from error`)."""
    return InputError(f"This file cannot be used as the video: {clean_paths(str(error), video)}")


def pipeline_input_error(error: ValueError, *paths: str | None, hint: str = "") -> InputError:
    """The `InputError` for an error of a pipeline's `check_inputs` (ExemplarError, EditedFrameError,
    VideoInputError, ValueError: all ValueErrors): the pipeline's own message, with server paths cleaned
    (`clean_paths`) and `hint` (how to fix it in this UI, when the UI has a way) after it. Raise it
    `from error`."""
    message = clean_paths(str(error), *paths)
    return InputError(f"{message} {hint}" if hint else message)


def open_video_reader(video: str | None, limits: Limits) -> VideoReader:
    """Open an uploaded video (decoding one frame) and check its size against the hardware limits: the
    checks every tab makes before any heavy work. Frame-count checks are left to the tab. The reader
    can be handed to a pipeline that takes one, so the file is not opened again."""
    if not video:
        raise InputError("Upload a video first (mp4, mov, webm, avi, mkv or gif).")
    check_uploaded_file(video, f"The video ('{Path(video).name}')")
    try:
        reader = VideoReader(video)
    except VideoInputError as error:
        raise unusable_video(error, video) from error
    info = reader.info
    if max(info.width, info.height) > limits.max_side:
        raise InputError(
            f"The video is {info.width}x{info.height}; on this hardware ({limits.hardware}) its long side "
            f"may be at most {limits.max_side} px. Downscale it (e.g. to 720p) and upload it again."
        )
    return reader


def open_video(video: str | None, limits: Limits) -> VideoInfo:
    """`open_video_reader(video, limits).info`, for a tab that only needs the video's description."""
    return open_video_reader(video, limits).info


def check_max_frames(max_frames: int, limits: Limits) -> None:
    """Refuse a Max frames setting outside 0 (the whole video) to `limits.max_frames`."""
    if not 0 <= max_frames <= limits.max_frames:
        raise InputError(
            f"Max frames must be between 0 (whole video) and {limits.max_frames} on this hardware "
            f"({limits.hardware})."
        )


def check_video_length(info: VideoInfo, max_frames: int, limits: Limits, verb: str) -> None:
    """Refuse a video over `limits.max_frames` when Max frames is 0 (the whole video). `verb` is what
    the tab does to the frames ("colour", "edit"), as the message says."""
    limit = limits.max_frames
    if max_frames == 0 and info.num_frames > limit:
        raise InputError(
            f"The video is too long: {info.num_frames} frames, and this Space {verb}s at most {limit} "
            f"frames ({limit / info.fps:.1f} s at {info.fps:g} fps) on {limits.hardware}. Trim the "
            f"video, or set Advanced → Max frames to {verb} only its beginning."
        )


def max_frames_slider(limits: Limits, verb: str) -> gr.Slider:
    """The "Max frames (0 = whole video)" slider of a tab's Advanced settings; `verb` ("Track") starts
    its info line."""
    return gr.Slider(
        0,
        limits.max_frames,
        value=0,
        step=1,
        label="Max frames (0 = whole video)",
        info=f"{verb} only the first N frames. Limit here: {limits.max_frames}.",
    )


def load_uploaded_image(path: str, what: str, limits: Limits, kind: str, advice: str) -> np.ndarray:
    """Decode an uploaded image as RGB uint8 (H, W, 3), refusing files that are not images and images
    over the limits on reference images (`max_exemplar_side`, `max_exemplar_megapixels`).

    The size is read from the header first, so a huge image is refused before its pixels are decoded.
    `what` names the image in messages ("Exemplar 2 ('cat.png')"), `kind` says what the limits apply to
    ("exemplars") and `advice` ends the message for an image over them. A file that is gone is
    reported as missing (`check_uploaded_file`).
    """
    check_uploaded_file(path, what)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as error:
        raise InputError(f"{what} is far too large; downscale it.") from error
    except OSError as error:
        raise InputError(f"{what} is not an image: upload PNG, JPEG or WebP files.") from error
    megapixels = width * height / 1e6
    if max(width, height) > limits.max_exemplar_side or megapixels > limits.max_exemplar_megapixels:
        raise InputError(
            f"{what} is {width}x{height} ({megapixels:.1f} MP); {kind} may be at most "
            f"{limits.max_exemplar_side} px per side and {limits.max_exemplar_megapixels:g} MP. {advice}"
        )
    try:
        return load_image(path)
    except VideoInputError as error:
        raise InputError(f"{what} could not be read: {clean_paths(str(error), path)}") from error


def init_defaults(config_class: type) -> dict[str, Any]:
    """The defaults of `config_class.__init__`'s arguments (a pipeline's or a component's): what it
    uses for a setting its saved config does not have."""
    parameters = inspect.signature(config_class.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def checkpoint_config(
    config_class: Any, checkpoint: str | os.PathLike, subfolder: str | None = None
) -> dict[str, Any]:
    """The settings `config_class` (a pipeline, or a component in `subfolder`) is loaded with from
    `checkpoint`: its `__init__` defaults, overridden by its saved config, read with its own
    `load_config` (no weights are loaded).

    Only a local checkpoint folder is read: for a Hub repo id (or a folder without that config) the
    defaults alone are returned, so building the app never needs the network, and keys missing from an
    older config keep their defaults.
    """
    folder = Path(checkpoint)
    config_folder = folder / subfolder if subfolder else folder
    values = init_defaults(config_class)
    if (config_folder / config_class.config_name).is_file():
        config = config_class.load_config(folder, subfolder=subfolder)
        values.update({key: value for key, value in config.items() if not key.startswith("_")})
    return values


def new_job_dir() -> Path:
    """A fresh folder for one request's files; folders of jobs older than `JOB_MAX_AGE_S` go.

    The system temp folder is used because Gradio serves files from there without `allowed_paths`.
    """
    root = Path(os.environ.get("HUEFLOW_CACHE_DIR") or Path(tempfile.gettempdir()) / "hueflow") / "jobs"
    root.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - JOB_MAX_AGE_S
    for old in root.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # another request pruned it first
            pass
    job = root / uuid.uuid4().hex
    job.mkdir()
    return job


def read_frame(video: str | VideoReader, index: int) -> np.ndarray:
    """Frame `index` of a video (a path, or a reader already open) as RGB; decodes from the start, which
    is fine at our clip lengths."""
    reader = video if isinstance(video, VideoReader) else VideoReader(video, max_frames=index + 1)
    count = 0
    for count, frame in enumerate(islice(reader, index + 1), start=1):
        if count == index + 1:
            return frame
    name = Path(reader.info.path or "the video").name
    raise InputError(f"'{name}' has {count} frames: pick a frame from 0 to {max(0, count - 1)}.")


def read_uploaded_frame(video: str, index: int) -> np.ndarray:
    """`read_frame` of an uploaded video, with a file that does not decode reported as `unusable_video`
    (and one that is gone as missing)."""
    check_uploaded_file(video, f"The video ('{Path(video).name}')")
    try:
        return read_frame(video, index)
    except VideoInputError as error:
        raise unusable_video(error, video) from error


def save_frame_png(video: str, index: int) -> str:
    """Frame `index` of an uploaded video saved as a PNG in a new job folder (to preview, download and
    edit); returns its path."""
    rgb = read_uploaded_frame(video, index)
    path = new_job_dir() / f"{Path(video).stem}_frame{index:05d}.png"
    Image.fromarray(rgb).save(path)
    return str(path)


def describe_video(info: VideoInfo) -> str:
    """A one-line description, e.g. `640x360, 75 frames at 25 fps (3.0 s)`."""
    seconds = info.num_frames / info.fps
    return f"{info.width}x{info.height}, {info.num_frames} frames at {info.fps:g} fps ({seconds:.1f} s)"


def warn_if_cut_short(done: int, expected: int, video: str) -> str | None:
    """Tell the visitor when a job produced fewer frames than the upload declares: decoding stopped early
    (a truncated or damaged file), and a shorter result should not go unexplained. `VideoReader` warns
    of the same in the server log; its warning cannot reach the visitor from here safely, since
    Gradio runs jobs in threads and Python's warning filters are global. Returns the message shown
    (for a tab's summary), or None."""
    if not is_cut_short(done, expected):
        return None
    message = (
        f"Only {done} of the {expected} frames expected from '{Path(video).name}' could be decoded: the "
        f"file is probably truncated or damaged, so the result has {done} frames."
    )
    gr.Warning(message)
    return message


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) to its luma (ITU-R 601 weights, as Pillow's `convert("L")`), as three equal
    channels so video writers and image components take it like any RGB frame."""
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(luma.round().astype(np.uint8)[..., None], 3, axis=-1)


__all__ = [
    "JOB_MAX_AGE_S",
    "InputError",
    "LazyPipeline",
    "check_max_frames",
    "check_model_folder",
    "check_uploaded_file",
    "checkpoint_config",
    "check_video_length",
    "clean_paths",
    "describe_video",
    "init_defaults",
    "load_pipeline",
    "load_uploaded_image",
    "max_frames_slider",
    "new_job_dir",
    "open_video",
    "open_video_reader",
    "pipeline_input_error",
    "pipeline_job",
    "pretrained_pipeline",
    "read_frame",
    "read_uploaded_frame",
    "save_frame_png",
    "to_gray",
    "unusable_video",
    "warn_if_cut_short",
]
