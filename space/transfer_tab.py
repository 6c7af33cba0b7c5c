"""The Edit tab: reference-based video appearance transfer with `ZeroToHeroPipeline` (Su et al. 2025).

A visitor uploads a video and picks the frame to edit (the anchor) with a slider; the frame is shown
and offered as a PNG download. They edit it in any image editor (recolour an object, paint on it,
restyle it), upload the edited version and press Transfer: the model carries the edit through the
whole video. The result is an H.264 mp4 (audio kept), shown beside the input as before / after, with a
short summary (frames, resolution, time taken). While it runs, the progress bar shows the per-video
fine-tuning of the restorer ("fine-tuning step 12/60", `FinetuneProgress`), then the frames
("Transferring the edit: 40/300 frames, 0.9 frames/s, about 4:50 left", `limits.FrameProgress`).

The edited frame must have the video's aspect ratio; one of another size with the same aspect ratio is
resized to the video's size (with a warning). Those rules, and the frame index's, are the pipeline's:
`ZeroToHeroPipeline.check_inputs` checks a request before the model is loaded, and its warnings are
shown. As in the other tabs, the hardware `Limits` are checked here, and every problem is a `gr.Error`
that says what to change.

API endpoints (all usable with `gradio_client`):
    `anchor_frame(video, frame_index) -> (preview png path, download png path)`: frame `frame_index`
        (0-based) of the video as a PNG, exactly as decoded (the same file twice: the preview and the
        download button).
    `transfer(video, edited_frame, frame_index=0, max_frames=0) -> (mp4 path, summary)`: `edited_frame`
        is an image file (`gradio_client.handle_file`), the edited version of frame `frame_index`;
        `max_frames` edits only the first N frames (0: the whole video, up to the hardware limit).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from pipelines import VideoInfo, VideoInputError, ZeroToHeroPipeline
from pipelines.appearance import EditedFrameError

from . import (
    InputError,
    check_max_frames,
    check_video_length,
    clean_paths,
    describe_video,
    load_pipeline,
    load_uploaded_image,
    max_frames_slider,
    new_job_dir,
    open_video,
    pipeline_input_error,
    pipeline_job,
    pretrained_pipeline,
    save_frame_png,
    warn_if_cut_short,
)
from .limits import FrameProgress, Limits

logger = logging.getLogger(__name__)


def _whole_number(value: float | None, what: str) -> int:
    """A slider value (Gradio sends floats) as an int; API callers may send anything."""
    if value is None or isinstance(value, bool) or not float(value).is_integer():
        raise InputError(f"{what} must be a whole number, got {value!r}.")
    return int(value)


class FinetuneProgress:
    """A `ZeroToHeroPipeline` `callback_on_finetune_step_end` that shows the per-video fine-tuning on a
    job's `gr.Progress` as "fine-tuning step 12/60" (12 of 60 steps done), before `FrameProgress` takes
    the bar over for the frames. `steps` counts the steps done and `seconds` the time from this object's
    creation (just before the pipeline call, so it includes reading and encoding the anchor) to the last
    step's end, for the summary."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.steps = 0
        self._started = time.perf_counter()
        self.seconds = 0.0

    @staticmethod
    def describe(step: int, num_steps: int) -> str:
        """The progress line after `step` of `num_steps` steps: "fine-tuning step 12/60"."""
        return f"fine-tuning step {step}/{num_steps}"

    def __call__(self, pipeline: Any, step: int, callback_kwargs: dict[str, Any]) -> None:
        self.steps = step + 1
        self.seconds = time.perf_counter() - self._started
        num_steps = int(callback_kwargs["num_steps"])
        # Every step is shown: there are a few dozen, each a fraction of a second or more.
        self.progress((self.steps, num_steps), desc=self.describe(self.steps, num_steps), unit="steps")


# --------------------------------------------------------------------------------------------- the tab


class TransferTab:
    """State and event handlers of the Edit tab; `render()` builds its components."""

    def __init__(self, checkpoint: str | os.PathLike, limits: Limits) -> None:
        self.checkpoint = str(checkpoint)
        self.limits = limits
        # Its tqdm bars are off: `transfer` reports the fine-tuning steps and the frames on its
        # gr.Progress itself (`FinetuneProgress`, `FrameProgress`), in words a visitor reads.
        self.pipeline = pretrained_pipeline(
            "Zero-to-Hero", ZeroToHeroPipeline, checkpoint, limits, disable=True
        )

    # -- checks ----------------------------------------------------------------------------------

    def _frame_budget(self, info: VideoInfo, max_frames: int) -> int:
        """The most frames a transfer processes; a video over the limit needs Max frames."""
        check_max_frames(max_frames, self.limits)
        check_video_length(info, max_frames, self.limits, "edit")
        return max_frames or self.limits.max_frames

    def _load_edited_frame(self, edited_frame: str | None, info: VideoInfo) -> np.ndarray | None:
        """The uploaded edited frame as RGB uint8 (None when there is none), checked against the upload
        limits; whether it fits the video is `ZeroToHeroPipeline.check_inputs`'s to say."""
        if not edited_frame:
            return None
        what = f"The edited frame ('{Path(edited_frame).name}')"
        advice = f"Export it at the video's size, {info.width}x{info.height}."
        return load_uploaded_image(edited_frame, what, self.limits, "edited frames", advice)

    @staticmethod
    def _check_inputs(info: VideoInfo, edited: np.ndarray | None, index: int, budget: int) -> list[str]:
        """`ZeroToHeroPipeline.check_inputs` before the model is loaded: its warnings (e.g. the edited
        frame is resized), or its error as an `InputError` with the way to fix the field it is about (the
        error's `argument`) in this tab."""
        try:
            return ZeroToHeroPipeline.check_inputs(
                info, edited, frame_index=index, max_frames=budget, output_type=None
            )
        except EditedFrameError as error:
            hint = (
                "Set 'Frame to edit' to the frame you edited."
                if error.argument == "frame_index"
                else f"Download frame {index} (the button under its preview), edit it in any image editor "
                "without cropping or resizing it, and upload the edited version."
            )
            raise pipeline_input_error(error, hint=hint) from error

    # -- events ----------------------------------------------------------------------------------

    def video_info(self, video: str | None) -> tuple[str, dict]:
        """Describe the uploaded video and fit the frame slider to its length (UI only)."""
        if not video:
            return "", gr.update(maximum=max(0, self.limits.max_frames - 1), value=0)
        info = open_video(video, self.limits)
        lines = [
            f"**{Path(video).name}**: {describe_video(info)}, {'with' if info.has_audio else 'no'} audio."
        ]
        if info.num_frames > self.limits.max_frames:
            lines.append(
                f"⚠️ Longer than the {self.limits.max_frames}-frame limit on this hardware: set Advanced → "
                "Max frames to edit only its beginning, or trim it."
            )
        last = max(0, min(info.num_frames, self.limits.max_frames) - 1)
        return "\n\n".join(lines), gr.update(maximum=last, value=0)

    def anchor_frame(self, video: str | None, frame_index: float = 0) -> tuple[str | None, str | None]:
        """Frame `frame_index` of the video as a PNG, twice: for the preview and the download button.

        Args:
            video: the video.
            frame_index: the frame to edit, 0-based.
        """
        if not video:
            return None, None
        open_video(video, self.limits)
        index = _whole_number(frame_index, "The frame to edit")
        if index < 0:
            raise InputError(f"Frame {index} does not exist: frames are numbered from 0.")
        path = save_frame_png(video, index)
        return path, path

    def transfer(
        self,
        video: str | None,
        edited_frame: str | None,
        frame_index: float = 0,
        max_frames: float = 0,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's documented idiom)
    ) -> tuple[str, str]:
        """Carry the edit of frame `frame_index` through `video`; returns the edited mp4 (audio kept)
        and a Markdown summary.

        Args:
            video: the video.
            edited_frame: the edited version of frame `frame_index` (an image of the video's aspect
                ratio; another size is resized to the video's).
            frame_index: the frame that was edited, 0-based.
            max_frames: edit only the first N frames; 0 edits the whole video, up to the hardware limit.
        """
        info = open_video(video, self.limits)
        budget = self._frame_budget(info, _whole_number(max_frames or 0, "Max frames"))
        index = _whole_number(frame_index, "The frame to edit")
        edited = self._load_edited_frame(edited_frame, info)
        warnings = self._check_inputs(info, edited, index, budget)
        for warning in warnings:
            gr.Warning(warning)

        pipe = load_pipeline(self.pipeline, "appearance transfer", self.checkpoint, progress)
        output_path = new_job_dir() / f"{Path(video).stem}_edited.mp4"
        expected = min(info.num_frames, budget)
        started = time.perf_counter()
        # The bar shows "fine-tuning step k/N", then the frames; the frames are counted as they are
        # written (the container's frame count is only an estimate).
        tuner = FinetuneProgress(progress)
        frames = FrameProgress(progress, total=expected, desc="Transferring the edit")
        with pipeline_job("The transfer", "set a lower Max frames, or use a shorter or smaller video"):
            try:
                result = pipe(
                    video=video,
                    edited_frame=edited,
                    frame_index=index,
                    # Always bounded: a container's frame count is an estimate and may undercount.
                    max_frames=budget,
                    output_path=output_path,
                    output_type=None,
                    callback_on_finetune_step_end=tuner,
                    callback_on_frame_end=frames,
                )
            except (VideoInputError, EditedFrameError) as error:
                raise InputError(clean_paths(str(error), video)) from error
        seconds = time.perf_counter() - started
        written = frames.frames
        cut_short = warn_if_cut_short(written, expected, video)

        done = f"Carried the edit of frame {index} through {written} frames ({info.width}x{info.height}) in "
        if tuner.steps:
            per_frame = (seconds - tuner.seconds) / max(1, written)
            done += (
                f"{seconds:.1f} s: {tuner.steps} fine-tuning steps on your edit ({tuner.seconds:.1f} s), "
                f"then {per_frame:.2f} s per frame."
            )
        else:
            done += f"{seconds:.1f} s ({seconds / max(1, written):.2f} s per frame)."
        lines = [done]
        if cut_short:
            lines.append(f"⚠️ {cut_short}")
        elif written < info.num_frames:
            lines.append(f"Only the first {written} of its {info.num_frames} frames (Max frames).")
        lines.extend(warnings)  # e.g. the edited frame resized to the video's size, as the warning said
        return str(result.video_path), "\n\n".join(lines)

    # -- layout ----------------------------------------------------------------------------------

    def render(self) -> None:
        """Build the tab's components and events inside the current Blocks context."""
        limits = self.limits
        gr.Markdown(
            "Edit one frame of a video in any image editor, and the edit is carried through the whole "
            "video (Zero-to-Hero, Su et al. 2025, running on "
            f"{limits.hardware}). **1.** Upload a video and pick the frame to edit. **2.** Download it, "
            "edit it (recolour, paint, restyle; keep its size) and upload the edited version. "
            "**3.** Press Transfer."
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], height=240, elem_id="transfer-video")
                info = gr.Markdown(elem_id="transfer-video-info")
                frame_index = gr.Slider(
                    0,
                    max(0, limits.max_frames - 1),
                    value=0,
                    step=1,
                    label="Frame to edit",
                    elem_id="transfer-frame-index",
                )
                with gr.Row():
                    anchor = gr.Image(
                        label="The frame to edit",
                        type="filepath",
                        format="png",
                        interactive=False,
                        buttons=[],
                        height=240,
                        elem_id="transfer-anchor",
                    )
                    edited = gr.Image(
                        label="Your edited version of it",
                        type="filepath",
                        # Passed through untouched (no conversion, no re-encoding): the edit is used exactly,
                        # and the handler checks the file itself.
                        image_mode=None,
                        sources=["upload", "clipboard"],
                        height=240,
                        elem_id="transfer-edited",
                    )
                download = gr.DownloadButton(
                    "Download the frame to edit (PNG)", size="sm", elem_id="transfer-download"
                )
                with gr.Accordion("Advanced", open=False):
                    max_frames = max_frames_slider(limits, "Edit")
                run = gr.Button("Transfer", variant="primary", elem_id="transfer-button")
            with gr.Column():
                with gr.Row():
                    before = gr.Video(
                        label="Before", interactive=False, height=320, elem_id="transfer-before"
                    )
                    after = gr.Video(
                        label="After (H.264 mp4, audio kept)",
                        buttons=["download"],
                        interactive=False,
                        height=320,
                        elem_id="transfer-after",
                    )
                summary = gr.Markdown(elem_id="transfer-summary")

        # Registered first: the endpoint name goes to the first event of a function, and the same
        # function runs again (privately) after an upload. `input` covers a number typed in the
        # slider's box, `release` the end of a drag; "always_last" skips the frames dragged over.
        gr.on(
            [frame_index.input, frame_index.release],
            self.anchor_frame,
            inputs=[video, frame_index],
            outputs=[anchor, download],
            api_name="anchor_frame",
            trigger_mode="always_last",
        )
        video.change(
            self.video_info,
            inputs=[video],
            outputs=[info, frame_index],
            api_visibility="private",
        ).success(
            self.anchor_frame,
            inputs=[video, frame_index],
            outputs=[anchor, download],
            api_visibility="private",
        )
        run.click(
            self.transfer,
            inputs=[video, edited, frame_index, max_frames],
            outputs=[after, summary],
            api_name="transfer",
            # `job_concurrency` transfers at a time (one on a CPU): more would compete for its cores and
            # memory.
            concurrency_limit=limits.job_concurrency,
            concurrency_id="transfer",
        ).success(
            # The input beside the output, once there is an output to compare it with.
            lambda video: video,
            inputs=[video],
            outputs=[before],
            api_visibility="private",
            show_progress="hidden",
        )
