"""Video and image I/O for hueflow.

Everything is decoded and encoded through PyAV (FFmpeg bindings), so no system ffmpeg is needed. Frames are
always handed around as RGB ``uint8`` arrays of shape ``(H, W, 3)``. Every problem with the caller's input is
reported as a :class:`VideoInputError` that says what is wrong and what to do about it, never as a raw FFmpeg
traceback.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import re
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
# What the writer can produce, by extension: the container FFmpeg muxes into. Every output is H.264 video
# (+ AAC audio), which these containers hold; .webm (VP8/VP9 only), .avi (no variable frame rate) and .gif
# (256 colours, no audio) cannot hold it, so they are refused rather than given mp4 bytes under their name.
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
OUTPUT_EXTENSIONS = tuple(OUTPUT_FORMATS)
# The smallest frame side the pipelines take: OpenCV's DIS optical flow (used by every pipeline) refuses
# smaller images, and the models' stride-8..32 features would have a position or two at most.
MIN_FRAME_SIDE = 12

DEFAULT_FPS = 25.0
# AAC encodes fixed blocks of 1024 samples; only the very last frame handed to the encoder may be shorter.
_AAC_FRAME_SIZE = 1024
_EXIF_ORIENTATION = 0x0112


class VideoInputError(ValueError):
    """Raised for any unusable video/image input; the message says what is wrong and how to fix it."""


# "https://...", "s3://...", "file://...": Path() would fold the "//" and report a mangled missing path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _refuse_url(source: str | os.PathLike, what: str) -> None:
    if isinstance(source, str) and _URL.match(source):
        raise VideoInputError(
            f"{what} '{source}' is a URL: hueflow reads local files only and does not download anything. "
            "Download the file first and pass its local path."
        )


@dataclass
class FrameTimes:
    """When each frame of a video file is shown, recorded as the frames are decoded: frame index ->
    (pts, duration), in `time_base` units, counted from the first frame's pts.

    A writer given these (`output_writer` passes a reader's) stamps its frame i with the input's pts, so
    the output keeps the input's timing, variable frame rate and pauses included, instead of being retimed
    to a constant rate. Pipelines write frame i only after reading it, so its time is always known then."""

    time_base: Fraction
    stamps: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class VideoInfo:
    width: int
    """Width as displayed: a phone video's rotation (display matrix) is applied."""
    height: int
    fps: float
    """Average frame rate; `frame_times` has the actual timing of a variable-frame-rate file."""
    num_frames: int
    has_audio: bool
    path: str | None
    frame_times: FrameTimes | None = field(default=None, repr=False, compare=False)


# ----------------------------------------------------------------------------------------------- images


def _as_rgb_uint8(array: np.ndarray, what: str = "frame") -> np.ndarray:
    """Normalise an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array to contiguous RGB uint8."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise VideoInputError(
            f"{what} has shape {tuple(array.shape)}; expected (H, W) grayscale or (H, W, 3) RGB "
            "(an alpha channel is dropped)."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise VideoInputError(f"{what} is empty (shape {tuple(array.shape)}).")
    if np.issubdtype(array.dtype, np.floating):
        lo, hi = float(array.min()), float(array.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise VideoInputError(
                f"{what} is float with values in [{lo:.3g}, {hi:.3g}]; float frames must lie in [0, 1]. "
                "Pass uint8 frames for the 0-255 range."
            )
        array = (array.clip(0, 1) * 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise VideoInputError(f"{what} has dtype {array.dtype}; expected uint8 (0-255) or float in [0, 1].")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def _tensor_to_array(tensor: Any) -> np.ndarray:
    """A torch video tensor as the (T, H, W[, C]) array `VideoReader` reads: (T, C, H, W), the pipelines'
    own output_type="pt" layout, is moved channels-last; float stays float (checked to lie in [0, 1])."""
    shape = tuple(tensor.shape)
    layouts = "(T, C, H, W) or (T, H, W, C) with C = 1 or 3, or (T, H, W)"
    if tensor.ndim == 4 and shape[1] in (1, 3):
        tensor = tensor.permute(0, 2, 3, 1)
    elif not (tensor.ndim == 3 or (tensor.ndim == 4 and shape[-1] in (1, 3))):
        raise VideoInputError(f"video tensor has shape {shape}; expected {layouts}.")
    if tensor.is_floating_point():
        tensor = tensor.detach().float().cpu()
        lo, hi = (float(tensor.min()), float(tensor.max())) if tensor.numel() else (0.0, 0.0)
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise VideoInputError(
                f"video tensor has values in [{lo:.3g}, {hi:.3g}]; a float tensor must lie in [0, 1] (as a "
                "pipeline's output_type='pt' frames do). Rescale it, e.g. (x + 1) / 2 for [-1, 1]."
            )
    elif str(tensor.dtype) != "torch.uint8":
        raise VideoInputError(f"video tensor has dtype {tensor.dtype}; expected float in [0, 1] or uint8.")
    return tensor.detach().cpu().numpy()


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF
    if image.mode.startswith("I"):
        # 16-bit grayscale PNG/TIFF: convert("RGB") would clip to 255 rather than rescale.
        gray = (np.asarray(image, dtype=np.float32) / 257.0).round().clip(0, 255).astype(np.uint8)
        return _as_rgb_uint8(gray)
    return np.asarray(image.convert("RGB")).copy()


def _open_image(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise VideoInputError(f"could not read '{path}' as an image ({e}); the file may be corrupt.") from e


def load_image(source: str | os.PathLike | Image.Image | np.ndarray) -> np.ndarray:
    """Load a path, PIL image or array as RGB uint8 ``(H, W, 3)``; grayscale becomes 3 equal channels."""
    if isinstance(source, np.ndarray):
        return _as_rgb_uint8(source, "image")
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source)
    if not isinstance(source, (str, os.PathLike)):
        raise VideoInputError(
            f"cannot load an image from {type(source).__name__}; pass a path, PIL image or array."
        )
    _refuse_url(source, "image")
    path = Path(source)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise VideoInputError(f"image file '{path}' {problem}; pass the path of an image file.")
    with _open_image(path) as image:
        try:
            return _pil_to_rgb(image)
        except OSError as e:  # header parsed but pixel data is truncated/corrupt
            raise VideoInputError(f"could not decode image '{path}' ({e}); the file may be truncated.") from e


def is_grayscale_image(rgb: np.ndarray, tol: float = 2.0) -> bool:
    """True when R, G and B agree within ``tol`` at every pixel, i.e. the image carries no colour."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2 or rgb.shape[-1] == 1:
        return True
    channels = rgb[..., :3].astype(np.int16)  # int16: uint8 differences would wrap around
    spread = channels.max(axis=-1) - channels.min(axis=-1)
    return bool(spread.max() <= tol)


def _natural_key(name: str) -> list[Any]:
    # "frame2" < "frame10": compare digit runs as numbers, the rest case-insensitively.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _frame_size(item: Any) -> tuple[int, int]:
    if isinstance(item, Image.Image):
        return item.height, item.width
    if isinstance(item, np.ndarray):
        return tuple(item.shape[:2]) if item.ndim >= 2 else (0, 0)
    if isinstance(item, (str, os.PathLike)):
        with _open_image(Path(item)) as image:  # reads the header only, not the pixels
            width, height = image.size
            # EXIF orientations 5-8 are 90-degree turns, which load_image() applies (see _pil_to_rgb).
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
        return height, width
    raise VideoInputError(f"unsupported frame type {type(item).__name__}; pass PIL images or numpy arrays.")


def _check_same_size(items: list[Any], describe: Callable[[int], str]) -> tuple[int, int]:
    """Validate up front that every frame has the first frame's size; return that (height, width)."""
    first = _frame_size(items[0])
    for index, item in enumerate(items[1:], start=1):
        size = _frame_size(item)
        if size != first:
            raise VideoInputError(
                f"{describe(index)} is {size[1]}x{size[0]} but {describe(0)} is {first[1]}x{first[0]}; "
                "all frames must share one size (resize them first)."
            )
    return first


# ----------------------------------------------------------------------------------------------- reading


def _ffmpeg_error(path: str, error: Exception) -> VideoInputError:
    return VideoInputError(
        f"could not decode video '{path}' ({error}). The file is corrupt, truncated or not a video; "
        "re-export it as mp4 (H.264) or pass a folder of frames."
    )


def is_cut_short(decoded: int, declared: int) -> bool:
    """Whether a video that declares `declared` frames but decoded only `decoded` ended early (a truncated
    or damaged file). One frame of slack, since a container's count may be estimated from its duration."""
    return decoded < declared - 1


def _ebml_number(data: bytes, at: int) -> tuple[int, int, bool]:
    """An EBML variable-length number at `at`: (value, its length in bytes, whether it is "unknown")."""
    first = data[at]
    length = 9 - first.bit_length()  # the count of leading zero bits + 1
    if not 1 <= length <= 8 or at + length > len(data):
        raise ValueError("not an EBML number")
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = value << 8 | byte
    return value, length, value == (1 << (7 * length)) - 1


def _matroska_cut_short(path: Path) -> bool:
    """Whether a Matroska/WebM file is shorter than its Segment says it is (cut off mid-upload).
    Timestamps cannot tell: a variable-frame-rate recording has gaps too, and with B-frames a cut
    file's last packet can be a late frame whose predecessors are lost. FFmpeg does not expose the
    Segment's size, so its two header elements are read here (EBML header, then the Segment's size)."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
        if head[:4] != bytes.fromhex("1a45dfa3"):
            return False
        header_size, size_length, _ = _ebml_number(head, 4)
        at = 4 + size_length + header_size
        if head[at : at + 4] != bytes.fromhex("18538067"):
            return False
        segment_size, size_length, unknown = _ebml_number(head, at + 4)
        return not unknown and at + 4 + size_length + segment_size > path.stat().st_size
    except (OSError, ValueError, IndexError):
        return False


# How to turn a decoded frame upright: (transpose, flip rows, flip columns), applied in that order.
_Orientation = tuple[bool, bool, bool]
_UPRIGHT: _Orientation = (False, False, False)


def _orientation(frame: av.VideoFrame, path: str) -> _Orientation:
    """The turn a frame's display matrix asks for. Phones record sideways and store the rotation (and any
    mirroring) as a display matrix rather than turning the pixels; players apply it, so must we, or the
    output plays sideways. FFmpeg hands the matrix to every decoded frame as side data."""
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if side_data is None:
        return _UPRIGHT
    # 3x3 row-major int32, 16.16 fixed point; a display point is (x', y') = (a x + c y, b x + d y).
    matrix = np.frombuffer(side_data, dtype=np.int32)
    a, b, c, d = (int(np.sign(round(matrix[i] / 65536))) for i in (0, 1, 3, 4))
    if b == c == 0 and a and d:  # upright, perhaps mirrored
        return (False, d < 0, a < 0)
    if a == d == 0 and b and c:  # a quarter turn: x' comes from y and y' from x
        return (True, b < 0, c < 0)
    warnings.warn(
        f"'{path}' asks to be displayed rotated by {frame.rotation} degrees, which is not a quarter turn; "
        "it is read as stored.",
        stacklevel=3,
    )
    return _UPRIGHT


def _turn(image: np.ndarray, orientation: _Orientation) -> np.ndarray:
    transpose, flip_rows, flip_columns = orientation
    if orientation == _UPRIGHT:
        return image
    if transpose:
        image = image.transpose(1, 0, 2)
    if flip_rows:
        image = image[::-1]
    if flip_columns:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def _iter_av_frames(path: str, declared_frames: int, times: FrameTimes) -> Iterator[np.ndarray]:
    decoded = 0
    start = None
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if decoded == 0:
                    orientation = _orientation(frame, path)
                    start = frame.pts
                if frame.pts is not None and start is not None:
                    times.stamps[decoded] = (frame.pts - start, frame.duration or 0)
                decoded += 1
                yield _turn(frame.to_ndarray(format="rgb24"), orientation)
    except av.FFmpegError as e:
        raise _ffmpeg_error(path, e) from e
    # A cut-off file decodes its first frames and then just ends: say so rather than return a shorter video
    # in silence.
    if is_cut_short(decoded, declared_frames):
        warnings.warn(
            f"'{path}' declares {declared_frames} frames but only {decoded} could be decoded: the file is "
            f"probably truncated, and the output has {decoded} frames.",
            stacklevel=2,
        )


def _iter_pil_animation(path: str) -> Iterator[np.ndarray]:
    with Image.open(path) as image:
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            yield _pil_to_rgb(image)


class VideoReader:
    """Streaming RGB uint8 frames ``(H, W, 3)`` from a video file, a folder of images, a list of PIL images /
    arrays, an array ``(T, H, W, 3)`` / ``(T, H, W)`` (grayscale is replicated to 3 channels), or a torch
    tensor: ``(T, C, H, W)`` (a pipeline's ``output_type="pt"`` frames), ``(T, H, W, C)`` or ``(T, H, W)``,
    with C 1 or 3, float in [0, 1] or uint8 (a tensor that fits both layouts is taken as ``(T, C, H, W)``).

    A video file's frames come upright (a phone video's rotation, stored as a display matrix, is applied, and
    `info` has the displayed size) and their timestamps are recorded in ``info.frame_times`` as they are
    decoded, so a pipeline's output keeps the input's timing. URLs are refused: nothing is downloaded.

    The source is validated when the reader is built, but frames are decoded lazily, one at a time, so a long
    video never sits in memory. Iterating again restarts from the first frame. ``fps`` sets the frame rate
    reported for folders, lists and arrays (default 25); video files always report their own rate.

    For video files ``len()`` relies on the container's frame count (or duration x fps when the container has
    none), so it can differ slightly from the number of frames actually decoded.
    """

    def __init__(self, source: Any, max_frames: int | None = None, fps: float | None = None) -> None:
        if max_frames is not None and max_frames < 1:
            raise VideoInputError(f"max_frames must be a positive integer or None, got {max_frames}.")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise VideoInputError(f"fps must be a positive number, got {fps}.")
        self.max_frames = max_frames
        self._frames: Callable[[], Iterator[np.ndarray]]

        # torch is not imported here for this check: a tensor can only exist once the caller imported it.
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(source, torch.Tensor):
            source = _tensor_to_array(source)
        if isinstance(source, np.ndarray):
            self.info = self._init_array(source, fps or DEFAULT_FPS)
        elif isinstance(source, (list, tuple)):
            self.info = self._init_list(list(source), fps or DEFAULT_FPS)
        elif isinstance(source, (str, os.PathLike)):
            _refuse_url(source, "video source")
            path = Path(source)
            if not path.exists():
                raise VideoInputError(f"video source '{path}' does not exist.")
            if path.is_dir():
                self.info = self._init_folder(path, fps or DEFAULT_FPS)
            else:
                self.info = self._init_file(path)
        else:
            raise VideoInputError(
                f"unsupported video source of type {type(source).__name__}; pass a video path, a folder of "
                "frames, a list of images, a (T, H, W[, 3]) array or a (T, C, H, W) tensor."
            )

    # -- sources ------------------------------------------------------------------------------------

    def _init_array(self, array: np.ndarray, fps: float) -> VideoInfo:
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (3, 4)):
            raise VideoInputError(
                f"video array has shape {array.shape}; expected (T, H, W, 3) RGB or (T, H, W) grayscale."
            )
        if array.shape[0] == 0:
            raise VideoInputError("video array has zero frames.")
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise VideoInputError(f"video array has dtype {array.dtype}; expected uint8 or float in [0, 1].")
        self._frames = lambda: (_as_rgb_uint8(frame, f"frame {i}") for i, frame in enumerate(array))
        return VideoInfo(array.shape[2], array.shape[1], fps, array.shape[0], False, None)

    def _init_list(self, items: list[Any], fps: float) -> VideoInfo:
        if not items:
            raise VideoInputError("the frame list is empty; pass at least one image.")
        height, width = _check_same_size(items, lambda i: f"frame {i}")
        self._frames = lambda: (load_image(item) for item in items)
        return VideoInfo(width, height, fps, len(items), False, None)

    def _init_folder(self, folder: Path, fps: float) -> VideoInfo:
        entries = list(folder.iterdir())
        if not entries:
            raise VideoInputError(f"folder '{folder}' is empty; put the frames in it as images.")
        # Hidden files are skipped: macOS copies leave "._frame1.png" metadata files that are not images.
        images = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
        paths = sorted((p for p in images if p.is_file()), key=lambda p: _natural_key(p.name))
        if not paths:
            raise VideoInputError(
                f"folder '{folder}' contains no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "pass a folder of frames or a video file."
            )
        height, width = _check_same_size(paths, lambda i: f"'{paths[i].name}'")
        self._frames = lambda: (load_image(p) for p in paths)
        return VideoInfo(width, height, fps, len(paths), False, None)

    def _init_file(self, path: Path) -> VideoInfo:
        suffix = path.suffix.lower()
        if suffix == ".webp":
            # The bundled FFmpeg cannot decode animated WebP, so those go through Pillow instead.
            with _open_image(path) as image:
                frame_count = getattr(image, "n_frames", 1)
                if frame_count > 1:
                    image.load()  # Pillow reports the frame duration only once a frame is decoded
                    duration_ms = image.info.get("duration") or 0
                    fps = 1000.0 / duration_ms if duration_ms else DEFAULT_FPS
                    self._frames = lambda: _iter_pil_animation(str(path))
                    return VideoInfo(image.width, image.height, fps, frame_count, False, str(path))
        if suffix in IMAGE_EXTENSIONS:
            raise VideoInputError(
                f"'{path}' is an image, not a video; pass a video file or a folder of frames."
            )
        if suffix not in VIDEO_EXTENSIONS:
            raise VideoInputError(
                f"unsupported file type '{suffix or path.name}'; expected a video "
                f"({', '.join(VIDEO_EXTENSIONS)}) or a folder of frames."
            )
        if path.stat().st_size == 0:
            raise VideoInputError(f"video file '{path}' is empty (0 bytes).")
        try:
            with av.open(str(path)) as container:
                # The extension says video but the content decides: a PNG or JPEG renamed .mp4 opens
                # through FFmpeg's image demuxers ("png_pipe", "image2", ...) as a one-frame "video".
                demuxer = container.format.name
                if demuxer == "image2" or demuxer.endswith("_pipe"):
                    kind = demuxer.removesuffix("_pipe").upper() if demuxer != "image2" else "still"
                    raise VideoInputError(
                        f"'{path}' is a {kind} image, not a video, whatever its extension; pass a video "
                        "file or a folder of frames."
                    )
                if not container.streams.video:
                    raise VideoInputError(f"'{path}' has no video stream (audio only?); pass a video file.")
                stream = container.streams.video[0]
                fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or DEFAULT_FPS)
                has_audio = bool(container.streams.audio)
                # Decode one frame now so a corrupt file fails here, not halfway through a pipeline run.
                first = next(container.decode(stream), None)
                if first is None:
                    raise VideoInputError(f"video file '{path}' contains no decodable frames.")
                transposed = _orientation(first, str(path))[0]
                width, height = (first.height, first.width) if transposed else (first.width, first.height)
                num_frames = stream.frames or self._count_frames(container, stream, fps, path)
                times = FrameTimes(stream.time_base or Fraction(1, 90000))
        except av.FFmpegError as e:
            raise _ffmpeg_error(str(path), e) from e
        self._frames = lambda: _iter_av_frames(str(path), num_frames, times)
        return VideoInfo(width, height, fps, num_frames, has_audio, str(path), frame_times=times)

    @staticmethod
    def _count_frames(container: Any, stream: Any, fps: float, path: Path) -> int:
        """The frame count of a container that does not store one (Matroska/WebM): its packets, counted
        without decoding. Duration x rate would be wrong for a variable-frame-rate file (a screen or
        browser recording), and pipelines check frame indices against this count. A file cut short (an
        interrupted upload) still declares its full duration: then duration x rate is what the file
        should have, so reading it warns that frames are missing (see `is_cut_short`)."""
        container.seek(0)
        count = sum(1 for packet in container.demux(stream) if packet.size)
        if container.duration and _matroska_cut_short(path):
            return max(1, count, round(container.duration / av.time_base * fps))
        return max(1, count)

    # -- iteration ----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[np.ndarray]:
        return islice(self._frames(), self.max_frames)

    def __len__(self) -> int:
        if self.max_frames is None:
            return self.info.num_frames
        return min(self.info.num_frames, self.max_frames)


def as_video_reader(video: Any, max_frames: int | None = None) -> VideoReader:
    """What a pipeline iterates: `video` (any `VideoReader` source) opened as a `VideoReader` of at most
    `max_frames` frames. An open `VideoReader` is reused without opening its source again (an app that has
    opened and checked the file passes its reader), through a shallow copy, so the caller's reader keeps
    its own `max_frames`. Frames smaller than `MIN_FRAME_SIDE` on a side are refused (`check_frame_size`)."""
    if not isinstance(video, VideoReader):
        reader = VideoReader(video, max_frames=max_frames)
    else:
        if max_frames is not None and max_frames < 1:
            raise VideoInputError(f"max_frames must be a positive integer or None, got {max_frames}.")
        reader = copy.copy(video)
        if max_frames is not None:
            reader.max_frames = max_frames if video.max_frames is None else min(video.max_frames, max_frames)
    check_frame_size(reader.info)
    return reader


def check_frame_size(info: VideoInfo) -> None:
    """Raise `VideoInputError` for a video the pipelines cannot process: under `MIN_FRAME_SIDE` (12) pixels
    on a side (the optical flow every pipeline uses needs that much)."""
    if min(info.width, info.height) < MIN_FRAME_SIDE:
        raise VideoInputError(
            f"the video is {info.width}x{info.height} pixels; the pipelines need at least {MIN_FRAME_SIDE} "
            "pixels on each side (optical flow cannot work on less). Upscale it first."
        )


# ----------------------------------------------------------------------------------------------- writing


class _AudioPassthrough:
    """Re-encodes the first audio stream of a file to AAC, paced to follow the video being written."""

    def __init__(self, path: str, container: Any) -> None:
        self.path = path
        self._input = container
        self._source = container.streams.audio[0]
        self.rate = self._source.rate or 48000
        # AAC in mp4 is safest as mono/stereo; surround sources are downmixed by the resampler.
        self.layout = "mono" if self._source.channels == 1 else "stereo"
        self._pending: av.AudioFrame | None = None
        self._samples_sent = 0

    def attach(self, container: Any) -> None:
        self._stream = container.add_stream("aac", rate=self.rate, layout=self.layout)
        self._resampler = av.AudioResampler(
            format="fltp", layout=self.layout, rate=self.rate, frame_size=_AAC_FRAME_SIZE
        )
        self._decoded = self._resampled_frames()
        self._container = container

    def _resampled_frames(self) -> Iterator[av.AudioFrame]:
        try:
            for frame in self._input.decode(self._source):
                frame.pts = None  # we restamp by sample count; source timestamps may have gaps or offsets
                yield from self._resampler.resample(frame)
        except av.FFmpegError as error:
            # A damaged soundtrack must not cost the user the video: keep the audio that decoded.
            warnings.warn(
                f"could not decode the audio of '{self.path}' after {self._samples_sent / self.rate:.1f} s "
                f"({error}); the output keeps the soundtrack up to there.",
                stacklevel=2,
            )
        yield from self._resampler.resample(None)

    def write_until(self, seconds: float, final: bool = False) -> None:
        """Mux audio up to ``seconds``; only the final call may cut a frame short (AAC's last-frame rule)."""
        limit = round(seconds * self.rate)
        try:
            while self._samples_sent < limit:
                frame = self._pending if self._pending is not None else next(self._decoded, None)
                self._pending = None
                if frame is None:
                    break
                room = limit - self._samples_sent
                if frame.samples > room:
                    if not final:
                        self._pending = frame
                        break
                    samples = np.ascontiguousarray(frame.to_ndarray()[:, :room])
                    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self.layout)
                    frame.sample_rate = self.rate
                frame.pts, frame.time_base = self._samples_sent, Fraction(1, self.rate)
                self._samples_sent += frame.samples
                self._container.mux(self._stream.encode(frame))
            if final:
                self._container.mux(self._stream.encode(None))
        except av.FFmpegError as e:
            raise VideoInputError(f"could not decode the audio of '{self.path}' ({e}).") from e

    def close(self) -> None:
        self._input.close()


def _output_format(path: str | os.PathLike) -> str:
    """The container FFmpeg writes for `path`'s extension; VideoInputError for one the writer cannot make."""
    name = Path(path).name
    suffix = Path(path).suffix.lower()
    if suffix in OUTPUT_FORMATS:
        return OUTPUT_FORMATS[suffix]
    why = {
        ".webm": "a WebM file holds only VP8/VP9/AV1 video",
        ".avi": "an AVI file cannot keep a variable frame rate",
        ".gif": "a GIF has 256 colours and no sound",
    }.get(suffix, f"'{suffix}' is not a video container" if suffix else "the name has no extension")
    raise VideoInputError(
        f"cannot write the video '{name}': the output is H.264 video and {why}. Name it with one of "
        f"{', '.join(OUTPUT_EXTENSIONS)} (and convert it afterwards if you need another format)."
    )


def _write_error(path: str, error: OSError) -> VideoInputError:
    folder = Path(path).absolute().parent
    return VideoInputError(
        f"could not write '{path}' ({error.strerror or error}): check that the folder '{folder}' is writable "
        "and has room, or choose another output path."
    )


def check_output_path(output_path: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Check, before any work, that a video can be written at `output_path`, and return it as a Path.

    Raises `VideoInputError` when it is a URL, has an extension the writer cannot make (`OUTPUT_EXTENSIONS`),
    is an existing folder, is the input video `source` itself (also through a link), or lies in a folder
    that cannot be written (probed by creating and removing a temporary file in the nearest existing
    folder, which is what counts: permissions, read-only disks, a file where a folder should be).
    """
    _refuse_url(os.fspath(output_path), "output path")
    path = Path(output_path)
    if path.is_dir():
        raise VideoInputError(
            f"output path '{path}' is a folder; give a file name inside it, e.g. '{path / 'output.mp4'}'."
        )
    _output_format(path)
    if isinstance(source, (str, os.PathLike)) and not _URL.match(os.fspath(source)):
        same = path.resolve() == Path(source).resolve()
        if not same and path.exists() and Path(source).exists():
            same = os.path.samefile(path, source)  # hard links, bind mounts
        if same:
            raise VideoInputError(
                f"output path '{path}' is the input video: writing there would replace the input. Choose "
                "another output file."
            )
    folder = path.absolute().parent
    while not folder.exists():  # missing folders are created by the writer, inside the nearest existing one
        folder = folder.parent
    if not folder.is_dir():
        raise VideoInputError(f"cannot write '{path}': '{folder}' is a file, not a folder.")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".hueflow-write-check-"):
            pass
    except OSError as e:
        raise VideoInputError(
            f"cannot write to the folder '{folder}' ({e.strerror or e}); choose an output path in a folder "
            "you can write to."
        ) from e
    return path


class VideoWriter:
    """H.264 (libx264, yuv420p) video in the container ``path``'s extension names (`OUTPUT_FORMATS`: .mp4,
    .m4v, .mov or .mkv); any other extension is refused with a `VideoInputError`.

    Frames go to a hidden temporary file next to ``path`` that is renamed into place only on a clean
    :meth:`close`, so a failure never leaves a partial output (``audio_from`` may even be ``path`` itself).
    yuv420p stores colour at half resolution, so odd widths/heights are padded by replicating the last
    column/row; the output is then one pixel larger than the frames in that dimension.

    Frames are shown at ``fps``, or, with ``frame_times`` (a `VideoReader`'s ``info.frame_times``), at the
    input's timestamps: a variable-frame-rate video keeps its timing and pauses. A frame without a recorded
    timestamp follows the previous one at ``1 / fps``.

    ``audio_from`` copies the first audio stream of that file into the output, re-encoded to AAC, laid from
    t=0 and cut to the video's duration. A source without audio simply gives a silent output.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        audio_from: str | None = None,
        crf: int = 18,
        frame_times: FrameTimes | None = None,
    ) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise VideoInputError(f"fps must be a positive number, got {fps}.")
        if not 0 <= crf <= 51:
            raise VideoInputError(f"crf must be in [0, 51] (lower is better quality), got {crf}.")
        self.path = os.fspath(path)
        self._format = _output_format(self.path)
        self.fps = float(fps)
        self.crf = int(crf)
        self.frames_written = 0
        # limit_denominator keeps NTSC rates exact (29.97... -> 30000/1001) and timestamps integral.
        self._rate = Fraction(self.fps).limit_denominator(1001)
        self._frame_times = frame_times
        # The input's own time base carries its timestamps exactly (a too fine one is beyond what mp4 stores).
        if frame_times is None:
            self._time_base = 1 / self._rate
        elif frame_times.time_base.denominator <= 1_000_000:
            self._time_base = frame_times.time_base
        else:
            self._time_base = Fraction(1, 90000)
        self._step = max(1, round(1 / (self._rate * self._time_base)))  # one frame at `fps`
        self._last_pts = -1
        self._end = 0  # where the video written so far ends, in `_time_base` units
        target = Path(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _write_error(self.path, e) from e
        self._tmp_path = str(target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        self._container: Any = None
        self._size: tuple[int, int] | None = None
        self._closed = False
        self._audio = self._open_audio(audio_from) if audio_from is not None else None

    @staticmethod
    def _open_audio(audio_from: str | os.PathLike) -> _AudioPassthrough | None:
        path = os.fspath(audio_from)
        if not os.path.isfile(path):
            raise VideoInputError(f"audio source '{path}' does not exist.")
        try:
            container = av.open(path)
        except av.FFmpegError as e:
            raise VideoInputError(
                f"could not read audio from '{path}' ({e}); the file may be corrupt."
            ) from e
        if not container.streams.audio:
            container.close()
            logger.info("'%s' has no audio stream; writing a silent video.", path)
            return None
        return _AudioPassthrough(path, container)

    def _open(self, height: int, width: int) -> None:
        # faststart moves the index to the front so browsers can start playing before the download ends.
        options = {"movflags": "+faststart"} if self._format in ("mp4", "mov") else {}
        self._container = av.open(self._tmp_path, "w", format=self._format, container_options=options)
        stream = self._container.add_stream("libx264", rate=self._rate)
        stream.codec_context.time_base = stream.time_base = self._time_base
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        # swscale converts RGB->YUV with BT.601 matrices; tag the stream so players decode with the same ones.
        bt601 = "smpte170m"
        stream.options = {
            "crf": str(self.crf),
            "colorspace": bt601,
            "color_primaries": bt601,
            "color_trc": bt601,
            "color_range": "tv",
        }
        self._stream = stream
        if self._audio is not None:
            self._audio.attach(self._container)

    def _next_timestamp(self) -> tuple[int, int]:
        """(pts, duration) of the next frame, in `_time_base` units: the input's, or right after the last."""
        stamp = None if self._frame_times is None else self._frame_times.stamps.get(self.frames_written)
        if stamp is None:
            pts, duration = self._end, self._step
        else:
            scale = self._frame_times.time_base / self._time_base
            pts, duration = round(stamp[0] * scale), round(stamp[1] * scale) or self._step
        # Strictly increasing, whatever the input's timestamps: the muxer refuses anything else.
        return max(pts, self._last_pts + 1), duration

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 ``(H, W, 3)`` frame; every frame must have the first frame's size."""
        if self._closed:
            raise RuntimeError("VideoWriter is already closed.")
        frame = _as_rgb_uint8(frame, f"frame {self.frames_written}")
        height, width = frame.shape[:2]
        try:
            if self._size is None:
                self._size = (height, width)
                self._open(height, width)
            elif (height, width) != self._size:
                raise VideoInputError(
                    f"frame {self.frames_written} is {width}x{height} but the video is "
                    f"{self._size[1]}x{self._size[0]}; all frames must share the first frame's size."
                )
            if height % 2 or width % 2:
                frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            pts, duration = self._next_timestamp()
            video_frame.pts, video_frame.duration, video_frame.time_base = pts, duration, self._time_base
            self._container.mux(self._stream.encode(video_frame))
        except OSError as e:  # the file could not be created or written (permissions, read-only, full disk)
            self.abort()
            raise _write_error(self.path, e) from e
        self._last_pts, self._end = pts, max(self._end, pts + duration)
        self.frames_written += 1
        if self._audio is not None:
            self._audio.write_until(float(self._end * self._time_base))

    def close(self) -> None:
        """Flush the encoders, finalise the file and move it to ``path``."""
        if self._closed:
            return
        try:
            if self.frames_written == 0:
                raise VideoInputError(f"no frames were written to '{self.path}'; nothing to save.")
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.write_until(float(self._end * self._time_base), final=True)
                self._audio.close()
            self._container.close()
            os.replace(self._tmp_path, self.path)
        except OSError as e:
            self.abort()
            raise _write_error(self.path, e) from e
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Discard everything written so far; the output path is left untouched."""
        self._closed = True
        for resource in (self._container, self._audio):
            if resource is not None:
                with contextlib.suppress(Exception):
                    resource.close()
        # Never let the clean-up hide the error that caused it (e.g. a folder that cannot be written).
        with contextlib.suppress(OSError):
            os.remove(self._tmp_path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # A writer dropped without close() (e.g. an exception outside a `with`) must not leave its temp file.
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.abort()


class FrameSpool:
    """Frames kept on disk by index in a temporary folder, deleted on `close` (or leaving a `with`), so that a
    pipeline can colour part of a video out of order (backwards) with flat memory however long the part.

    Frames are stored as raw ``.npy`` (exact, and about 1 ms to write or read at 854x480, where a PNG costs
    tens of ms per frame); the disk use is that of the raw frames, 1.2 MB each at 854x480.
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="hueflow-frames-")

    def _path(self, index: int) -> str:
        return os.path.join(self._folder.name, f"{index:08d}.npy")

    def put(self, index: int, frame: np.ndarray) -> None:
        """Store `frame` (an array, e.g. RGB uint8 (H, W, 3)) as frame `index`, replacing one stored there."""
        np.save(self._path(index), frame, allow_pickle=False)

    def get(self, index: int) -> np.ndarray:
        """The frame stored as `index`; KeyError if none was."""
        try:
            return np.load(self._path(index), allow_pickle=False)
        except FileNotFoundError:
            raise KeyError(f"no frame {index} in the spool") from None

    def close(self) -> None:
        self._folder.cleanup()

    def __enter__(self) -> FrameSpool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def write_video(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    audio_from: str | None = None,
    crf: int = 18,
) -> str:
    """Encode ``frames`` as H.264 at ``path`` (.mp4, .m4v, .mov or .mkv; see :class:`VideoWriter`) and
    return the path."""
    with VideoWriter(path, fps, audio_from=audio_from, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def output_writer(
    output_path: str | os.PathLike | None, info: VideoInfo
) -> contextlib.AbstractContextManager[VideoWriter | None]:
    """A pipeline's writer for `output_path` (the input's timing and frame rate, its audio muxed back), as a
    context that finalises the file on success and leaves nothing behind on failure; a no-op (None) when no
    output path was asked for. The path is checked first (`check_output_path`): never the input itself."""
    if output_path is None:
        return contextlib.nullcontext()
    check_output_path(output_path, info.path)
    return VideoWriter(
        output_path,
        fps=info.fps,
        audio_from=info.path if info.has_audio else None,
        frame_times=info.frame_times,
    )
