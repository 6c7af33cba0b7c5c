"""The Track tab: mask and point tracking with `CorrespondencePipeline`.

A visitor uploads a video; its first frame appears in an image editor, where they paint over each
object they want tracked, one brush colour per object. Optionally they also click points on frame 0.
Pressing Track propagates the painted masks (and points) through the video and returns an H.264 mp4
of the video with every object tinted and outlined (audio kept), with a download button.

How a drawing becomes a label map (`painted_mask`): the editor's layers are composited in order; a
pixel is painted where a layer is at least half opaque (a layer with no transparency at all, such as
an RGB mask image, counts its non-black pixels instead). Painted colours within `COLOUR_TOLERANCE` of
each other are one object, so anti-aliased stroke edges do not become objects of their own. Object ids
follow the brush palette's order, which is also the order of the overlay colours, so painting with the
first brush colours gives an overlay in the same colours. A drawing sent without layers (background
plus composite, as some API clients send it) is read from where the composite differs from the
background.

As in the Colorize tab, every input is checked before the model runs (the drawing and the points
are read here; whether they can be tracked is `CorrespondencePipeline.check_inputs`'s to say) and
every problem is a `gr.Error` that says what to change. The progress bar counts the frames tracked, with
the speed and the time left (`FrameProgress`).

API endpoints (all usable with `gradio_client`):
    `first_frame(video) -> (editor value, video info, points frame, points text)`: frame 0 as the editor
        background, ready to paint on.
    `track(video, drawing, max_frames=0, points=None) -> (mp4 path, summary)`: `drawing` is an editor
        value, a dict `{"background": file | None, "layers": [file, ...], "composite": file | None}`
        (files via `gradio_client.handle_file`); a layer is an image of frame 0's size, transparent (or
        black) where nothing is painted, one colour per object. `points` is "x, y" pixel pairs on
        frame 0, one per line or separated by ";".
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from pipelines import CorrespondencePipeline, VideoInputError, VideoReader
from pipelines.correspondence import PALETTE, draw_tracks

from . import (
    InputError,
    check_max_frames,
    clean_paths,
    describe_video,
    load_pipeline,
    max_frames_slider,
    new_job_dir,
    open_video,
    pipeline_input_error,
    pipeline_job,
    pretrained_pipeline,
    read_uploaded_frame,
    warn_if_cut_short,
)
from .limits import FrameProgress, Limits

logger = logging.getLogger(__name__)

# The pipeline tints objects with PALETTE in the order of their ids: the brush offers the same colours.
PALETTE_RGB: tuple[tuple[int, int, int], ...] = tuple(tuple(int(c) for c in colour) for colour in PALETTE)
BRUSH_COLOURS = [f"#{red:02x}{green:02x}{blue:02x}" for red, green, blue in PALETTE_RGB[:6]]
MAX_OBJECTS = len(PALETTE_RGB)
MAX_POINTS = 20
# The brush's default size, per pixel of the frame's short side (Gradio's "auto" is 25 px whatever the
# frame, which covers a whole object on a small video).
BRUSH_SIZE_PER_PIXEL = 1 / 40
# Two painted colours at most this far apart (largest per-channel difference) are one object.
COLOUR_TOLERANCE = 32
# A colour covering fewer pixels is a stray shade (stroke edges), merged into the nearest object.
MIN_OBJECT_PIXELS = 4
# Share of the painted pixels that must be close to one of the objects' colours.
MIN_FLAT_SHARE = 0.9
# Layers: painted where at least half opaque. Layers without transparency: painted where not black.
MIN_PAINT_ALPHA = 128
MIN_OPAQUE_PAINT_LEVEL = 48
# Composite-only drawings: painted where the composite differs from the background this much.
MIN_COMPOSITE_DIFFERENCE = 40


# ---------------------------------------------------------------------------------- drawing -> labels


@dataclass(frozen=True)
class PaintedObject:
    label: int
    """Id of the object in the label map (1, 2, ...)."""
    colour: tuple[int, int, int]
    """The colour it was painted with."""
    pixels: int


@dataclass(frozen=True)
class PaintedMask:
    label_map: np.ndarray
    """(H, W) uint8: 0 where nothing is painted, else the object's id."""
    objects: tuple[PaintedObject, ...]


def _as_rgba(image: Any) -> np.ndarray:
    """An editor image (array, PIL image or file path) as an RGBA uint8 array."""
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as opened:
            return np.asarray(opened.convert("RGBA"))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGBA"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(f"The drawing must be 8-bit images, got pixel type {array.dtype}.")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise InputError(f"The drawing has an image of shape {array.shape}; expected RGB or RGBA images.")
    if array.shape[-1] == 3:
        array = np.concatenate([array, np.full(array.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    return array


def _check_drawing_size(image: np.ndarray, what: str, height: int, width: int) -> None:
    if image.shape[:2] != (height, width):
        raise InputError(
            f"The {what} is {image.shape[1]}x{image.shape[0]} px, but the video's frames are "
            f"{width}x{height}. "
            "Paint on the first frame the editor shows for this video (upload the video again to reset "
            "it), without cropping or resizing it."
        )


def painted_pixels(drawing: dict | None, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the drawing is painted, (H, W) bool, and with which colour, (H, W, 3) uint8."""
    painted = np.zeros((height, width), dtype=bool)
    colours = np.zeros((height, width, 3), dtype=np.uint8)
    if not drawing:
        return painted, colours
    for number, layer in enumerate(drawing.get("layers") or [], start=1):
        if layer is None:
            continue
        rgba = _as_rgba(layer)
        _check_drawing_size(rgba, f"drawing (layer {number})", height, width)
        alpha = rgba[..., 3]
        if (alpha == 255).all():  # no transparency: a mask image on black
            layer_painted = rgba[..., :3].max(axis=-1) >= MIN_OPAQUE_PAINT_LEVEL
        else:
            layer_painted = alpha >= MIN_PAINT_ALPHA
        colours[layer_painted] = rgba[..., :3][layer_painted]  # later layers lie on top
        painted |= layer_painted
    background, composite = drawing.get("background"), drawing.get("composite")
    if not painted.any() and background is not None and composite is not None:
        background, composite = _as_rgba(background), _as_rgba(composite)
        _check_drawing_size(background, "drawing's background", height, width)
        _check_drawing_size(composite, "drawing", height, width)
        difference = np.abs(composite[..., :3].astype(np.int16) - background[..., :3]).max(axis=-1)
        painted = (difference > MIN_COMPOSITE_DIFFERENCE) & (composite[..., 3] >= MIN_PAINT_ALPHA)
        colours = composite[..., :3].copy()
    return painted, colours


def _palette_index(colour: np.ndarray) -> int:
    """Position of the palette colour `colour` was painted with, or len(PALETTE) for other colours."""
    distances = np.abs(np.asarray(PALETTE_RGB, dtype=np.int16) - colour.astype(np.int16)).max(axis=1)
    return int(distances.argmin()) if distances.min() <= COLOUR_TOLERANCE else len(PALETTE_RGB)


def painted_mask(drawing: dict | None, height: int, width: int) -> PaintedMask | None:
    """The label map of frame 0 that the drawing paints (one id per brush colour), or None when
    nothing is painted. Raises `InputError` for a drawing of the wrong size or with too many colours."""
    painted, colours = painted_pixels(drawing, height, width)
    if not painted.any():
        return None
    rgb = colours[painted].astype(np.int32)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    unique_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    unique_rgb = np.stack([unique_keys >> 16, (unique_keys >> 8) & 255, unique_keys & 255], axis=1)

    # The most used colours become objects; shades close to one of them, or too rare, join the nearest.
    centres: list[np.ndarray] = []
    for index in np.argsort(-counts, kind="stable"):
        if counts[index] < MIN_OBJECT_PIXELS and centres:
            break
        colour = unique_rgb[index]
        if centres and np.abs(np.stack(centres) - colour).max(axis=1).min() <= COLOUR_TOLERANCE:
            continue
        centres.append(colour)
        if len(centres) > MAX_OBJECTS:
            raise InputError(
                f"The drawing has more than {MAX_OBJECTS} different colours: paint each object with one "
                f"brush colour, at most {MAX_OBJECTS} objects."
            )
    centre_array = np.stack(centres)
    differences = np.abs(unique_rgb[:, None, :] - centre_array[None])
    near_a_centre = differences.max(axis=-1).min(axis=1) <= COLOUR_TOLERANCE
    if counts[near_a_centre].sum() < MIN_FLAT_SHARE * len(rgb):
        raise InputError(
            "The drawing is not painted in flat colours (a photo, or a JPEG?): paint each object with one "
            "brush colour, or send a PNG mask with one flat colour per object."
        )
    object_of_pixel = (differences**2).sum(axis=-1).argmin(axis=1)[inverse]
    pixels_per_object = np.bincount(object_of_pixel, minlength=len(centres))

    # Ids in palette order (the overlay colours follow the ids), other colours after, largest first.
    order = sorted(
        range(len(centres)), key=lambda k: (_palette_index(centre_array[k]), -pixels_per_object[k])
    )
    label_of_object = np.zeros(len(centres), dtype=np.uint8)
    objects = []
    for label, k in enumerate(order, start=1):
        label_of_object[k] = label
        colour = tuple(int(c) for c in centre_array[k])
        objects.append(PaintedObject(label=label, colour=colour, pixels=int(pixels_per_object[k])))
    label_map = np.zeros((height, width), dtype=np.uint8)
    label_map[painted] = label_of_object[object_of_pixel]
    return PaintedMask(label_map=label_map, objects=tuple(objects))


# Shown after the pipeline's "nothing to track" error: how to give it something in this tab.
NOTHING_TO_TRACK_HINT = (
    "Paint over each object on the first frame (one brush colour per object), or add points by clicking "
    "on the first frame."
)


def parse_points(text: str | None) -> np.ndarray | None:
    """Parse "12, 30; 40 50" (or one pair per line) into (N, 2) x, y pixels; None when blank. Only the
    text is read here (and the tab's `MAX_POINTS`): whether the points lie on frame 0 is
    `CorrespondencePipeline.check_inputs`'s to say."""
    entries = [entry.strip() for entry in re.split(r"[;\n]+", text or "") if entry.strip()]
    if not entries:
        return None
    if len(entries) > MAX_POINTS:
        raise InputError(f"{len(entries)} points given; at most {MAX_POINTS} can be tracked at once.")
    points = []
    for entry in entries:
        numbers = [part for part in re.split(r"[,\s]+", entry.strip("()[] ")) if part]
        try:
            x, y = (float(part) for part in numbers)
        except ValueError:
            raise InputError(
                f"Points: {entry!r} is not an 'x, y' pair of pixels (e.g. '64, 40'; one pair per line)."
            ) from None
        points.append((x, y))
    return np.asarray(points, dtype=np.float32)


def check_track_inputs(height: int, width: int, points: np.ndarray | None, masks: np.ndarray | None) -> None:
    """`CorrespondencePipeline.check_inputs` for frame 0's size, its error as an `InputError` (with how
    to give the model something to track, when nothing is)."""
    try:
        CorrespondencePipeline.check_inputs(height, width, points=points, masks=masks)
    except ValueError as error:
        hint = NOTHING_TO_TRACK_HINT if points is None and masks is None else ""
        raise pipeline_input_error(error, hint=hint) from error


def format_points(points: np.ndarray) -> str:
    return "\n".join(f"{x:g}, {y:g}" for x, y in points)


def frame_brush(height: int, width: int) -> gr.Brush:
    """The editor's brush for a frame of this size: the palette's colours, a size that fits the frame."""
    size = max(2, round(min(height, width) * BRUSH_SIZE_PER_PIXEL))
    return gr.Brush(
        colors=BRUSH_COLOURS, default_color=BRUSH_COLOURS[0], color_mode="fixed", default_size=size
    )


def _swatch(colour: tuple[int, int, int]) -> str:
    red, green, blue = colour
    return f'<span style="color: rgb({red}, {green}, {blue})">■</span>'


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------------------------- the tab


class TrackTab:
    """State and event handlers of the Track tab; `render()` builds its components."""

    def __init__(self, checkpoint: str | os.PathLike, limits: Limits) -> None:
        self.checkpoint = str(checkpoint)
        self.limits = limits
        # The pipeline's own bar goes to the server log; visitors see `FrameProgress` on gr.Progress.
        self.pipeline = pretrained_pipeline(
            "Correspondence", CorrespondencePipeline, checkpoint, limits, desc="Tracking", unit="frame"
        )

    # -- events ----------------------------------------------------------------------------------

    def first_frame(self, video: str | None) -> tuple[dict | None, str, np.ndarray | None, str]:
        """Frame 0 of the uploaded video as the editor's background (nothing painted yet), a line
        describing the video, frame 0 again for clicking points, and an empty points list."""
        if not video:
            return None, "", None, ""
        info = open_video(video, self.limits)
        frame = read_uploaded_frame(video, 0)
        lines = [f"**{Path(video).name}**: {describe_video(info)}."]
        if info.num_frames > self.limits.max_frames:
            lines.append(
                f"⚠️ Longer than the {self.limits.max_frames}-frame limit on this hardware: only its first "
                f"{self.limits.max_frames} frames will be tracked."
            )
        editor_value = {"background": frame, "layers": [], "composite": frame}
        return editor_value, "\n\n".join(lines), frame, ""

    def fit_brush(self, video: str | None) -> dict:
        """Size the editor's brush to the video's frames (a UI-only follow-up of `first_frame`, so that
        API callers of `first_frame` get a plain editor value)."""
        if not video:
            return gr.update()
        try:
            info = VideoReader(video).info
        except VideoInputError:
            return gr.update()
        return gr.update(brush=frame_brush(info.height, info.width))

    def add_point(
        self, video: str | None, points: str | None, event: gr.SelectData
    ) -> tuple[str, np.ndarray]:
        """Append the clicked position to the points and redraw them on frame 0."""
        if not video:
            raise InputError("Upload a video first, then click on its first frame to add points.")
        frame = read_uploaded_frame(video, 0)
        height, width = frame.shape[:2]
        current = parse_points(points)
        if current is not None:  # typed points: refused here as Track would refuse them
            check_track_inputs(height, width, current, None)
        clicked = np.asarray([event.index], dtype=np.float32)
        updated = clicked if current is None else np.concatenate([current, clicked])
        if len(updated) > MAX_POINTS:
            raise InputError(f"At most {MAX_POINTS} points can be tracked at once.")
        return format_points(updated), draw_tracks(frame, updated, None)

    def clear_points(self, video: str | None) -> tuple[str, np.ndarray | None]:
        return "", (read_uploaded_frame(video, 0) if video else None)

    def track(
        self,
        video: str | None,
        drawing: dict | None,
        max_frames: float = 0,
        points: str | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ) -> tuple[str, str]:
        """Track the objects painted on frame 0 (and the points) through `video`; returns the mp4 of
        the video with the tracks drawn on it, and a Markdown summary.

        Args:
            video: the video.
            drawing: the editor's value: a dict with "background", "layers" and "composite" images of
                frame 0's size; each painted colour is one object.
            max_frames: track only the first N frames; 0 tracks the whole video, up to the hardware limit.
            points: optional "x, y" pixel positions on frame 0, one per line or separated by ";".
        """
        max_frames = int(max_frames or 0)
        check_max_frames(max_frames, self.limits)
        info = open_video(video, self.limits)
        mask = painted_mask(drawing, info.height, info.width)
        point_array = parse_points(points)
        label_map = None if mask is None else mask.label_map
        check_track_inputs(info.height, info.width, point_array, label_map)
        frame_budget = max_frames or self.limits.max_frames
        over_limit = max_frames == 0 and info.num_frames > self.limits.max_frames
        if over_limit:
            gr.Warning(
                f"The video has {info.num_frames} frames; on this hardware only its first "
                f"{self.limits.max_frames} are tracked."
            )

        pipe = load_pipeline(self.pipeline, "tracking", self.checkpoint, progress)
        output_path = new_job_dir() / f"{Path(video).stem}_tracked.mp4"
        expected = min(info.num_frames, frame_budget)
        # "Tracking: 12/60 frames, 3.4 frames/s, about 0:14 left"
        tracker = FrameProgress(progress, total=expected, desc="Tracking")
        started = time.perf_counter()
        with pipeline_job("Tracking", "set a lower Max frames, or use a shorter video"):
            try:
                result = pipe(
                    video,
                    points=point_array,
                    masks=label_map,
                    # Always bounded: a container's frame count is an estimate and may undercount.
                    max_frames=frame_budget,
                    output_path=output_path,
                    callback_on_frame_end=tracker,
                )
            except VideoInputError as error:
                raise InputError(clean_paths(str(error), video)) from error
            except ValueError as error:  # e.g. the frame size changes within the video
                raise InputError(f"This video cannot be tracked: {clean_paths(str(error), video)}") from error
        seconds = time.perf_counter() - started
        tracked = result.masks if result.masks is not None else result.points
        cut_short = warn_if_cut_short(len(tracked), expected, video)
        summary = self._summary(
            mask, point_array, len(tracked), info.num_frames, over_limit, cut_short, seconds
        )
        return str(result.video_path), summary

    def _summary(
        self,
        mask: PaintedMask | None,
        points: np.ndarray | None,
        num_tracked: int,
        num_frames: int,
        over_limit: bool,
        cut_short: str | None,
        seconds: float,
    ) -> str:
        what = []
        if mask is not None:
            what.append(_plural(len(mask.objects), "object"))
        if points is not None:
            what.append(_plural(len(points), "point"))
        lines = [
            f"Tracked {' and '.join(what)} through {_plural(num_tracked, 'frame')} "
            f"in {seconds:.1f} s ({seconds / max(1, num_tracked):.2f} s per frame)."
        ]
        if over_limit:
            lines.append(
                f"⚠️ The video has {num_frames} frames: only its first {num_tracked} were tracked, the "
                f"limit on this hardware ({self.limits.hardware})."
            )
        elif cut_short:
            lines.append(f"⚠️ {cut_short}")
        elif num_tracked < num_frames:
            lines.append(f"Only the first {num_tracked} of its {num_frames} frames (Max frames).")
        if mask is not None:
            lines.append(
                "\n".join(
                    f"- object {obj.label}: {_swatch(obj.colour)} painted over {obj.pixels:,} px"
                    for obj in mask.objects
                )
            )
        return "\n\n".join(lines)

    # -- layout ----------------------------------------------------------------------------------

    def render(self) -> None:
        """Build the tab's components and events inside the current Blocks context."""
        limits = self.limits
        gr.Markdown(
            "Upload a video, then paint over each object you want to follow on its first frame, one brush "
            "colour per object. The motion-aware correspondence model (Zhou et al. 2025, running on "
            f"{limits.hardware}) carries the masks through the video and draws them on it."
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], height=240, elem_id="track-video")
                info = gr.Markdown(elem_id="track-video-info")
                editor = gr.ImageEditor(
                    label="First frame: paint each object with its own colour",
                    type="numpy",
                    image_mode="RGBA",
                    format="png",
                    # Only the video's frame 0 may be painted on: no uploads, crops or resizes.
                    sources=(),
                    transforms=(),
                    brush=frame_brush(480, 854),
                    elem_id="track-editor",
                )
                with gr.Accordion("Points (optional): click on the first frame", open=False):
                    points_frame = gr.Image(
                        label="Click to add a point",
                        type="numpy",
                        format="png",
                        interactive=False,
                        buttons=[],
                        elem_id="track-points-frame",
                    )
                    points = gr.Textbox(
                        label="Points (x, y in pixels, one per line)",
                        lines=2,
                        placeholder="e.g. 64, 40",
                        elem_id="track-points",
                    )
                    clear_points = gr.Button("Clear points", size="sm")
                with gr.Accordion("Advanced", open=False):
                    max_frames = max_frames_slider(limits, "Track")
                run = gr.Button("Track", variant="primary", elem_id="track-button")
            with gr.Column():
                output = gr.Video(
                    label="Tracked video (H.264 mp4, audio kept)",
                    buttons=["download"],
                    interactive=False,
                    height=320,
                    elem_id="track-output",
                )
                summary = gr.Markdown(elem_id="track-summary")

        video.change(
            self.first_frame,
            inputs=[video],
            outputs=[editor, info, points_frame, points],
            api_name="first_frame",
        ).success(
            self.fit_brush, inputs=[video], outputs=[editor], api_visibility="private", show_progress="hidden"
        )
        points_frame.select(
            self.add_point, inputs=[video, points], outputs=[points, points_frame], api_visibility="private"
        )
        clear_points.click(
            self.clear_points, inputs=[video], outputs=[points, points_frame], api_visibility="private"
        )
        run.click(
            self.track,
            inputs=[video, editor, max_frames, points],
            outputs=[output, summary],
            api_name="track",
            # One tracking job at a time on a CPU (two on a GPU): the model and the frames of more would
            # compete for memory.
            concurrency_limit=limits.job_concurrency,
            concurrency_id="track",
        )
