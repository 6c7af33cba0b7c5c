"""hueflow's Gradio app, run as a Hugging Face Space (`python app.py`).

Five tabs: Colorize (exemplar-based video colorization, `ColorMNetPipeline`), Track (paint objects
on a video's first frame and follow them through the video, `CorrespondencePipeline`), Edit (edit one
frame in any image editor and carry the edit through the video, `ZeroToHeroPipeline`) and Generate
(images as the last frame of a pseudo video, and that pseudo video, `PseudoVideoPipeline`) and Video GAN
(short moving-digit clips from a temporal GAN, `TGANPipeline`). The app starts
on the checkpoints embedded in the repository, so it needs no network; each tab loads its pipeline on
first use. One module per tab lives in `space/`.

Environment variables:
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT: where to listen (Gradio reads them; on a Space they are set).
    HUEFLOW_COLORIZATION_MODEL: a model folder or Hub repo id instead of `checkpoints/colormnet-lite`.
    HUEFLOW_CORRESPONDENCE_MODEL: a model folder or Hub repo id instead of `checkpoints/mer-correspondence`
        (the Track tab's model).
    HUEFLOW_APPEARANCE_MODEL: a model folder or Hub repo id instead of `checkpoints/zero2hero-lite`
        (the Edit tab's model).
    HUEFLOW_GENERATION_MODEL: a model folder or Hub repo id instead of `checkpoints/pseudo-video-digits`
        (the Generate tab's model).
    HUEFLOW_TGAN_MODEL: a model folder or Hub repo id instead of `checkpoints/tgan-moving-digits`
        (the Video GAN tab's model).
    HUEFLOW_MAX_FRAMES, HUEFLOW_MAX_SIDE, ...: override the hardware limits (see `space/limits.py`).
    HUEFLOW_CACHE_DIR: where examples and results are written (default: <system temp>/hueflow). The
        examples are served from there in place, never copied into Gradio's shared temp folder, so another
        Gradio process on the machine cannot delete them when it shuts down.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from space.colorize_tab import ColorizeTab
from space.generate_tab import GenerateTab
from space.limits import Limits
from space.track_tab import TrackTab
from space.transfer_tab import TransferTab
from space.video_gan_tab import VideoGANTab

# Resolved from this file, not the working directory, so `python /path/to/app.py` works from anywhere.
REPO_ROOT = Path(__file__).resolve().parent
CHECKPOINTS = REPO_ROOT / "checkpoints"

# Nothing in the app needs the network; Gradio's version check would only time out offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def build_demo(limits: Limits | None = None) -> gr.Blocks:
    """Build the whole app. Nothing heavy happens here: models load on first use."""
    limits = limits or Limits.detect()
    colorization_model = os.environ.get("HUEFLOW_COLORIZATION_MODEL") or CHECKPOINTS / "colormnet-lite"
    correspondence_model = (
        os.environ.get("HUEFLOW_CORRESPONDENCE_MODEL") or CHECKPOINTS / "mer-correspondence"
    )
    appearance_model = os.environ.get("HUEFLOW_APPEARANCE_MODEL") or CHECKPOINTS / "zero2hero-lite"
    generation_model = os.environ.get("HUEFLOW_GENERATION_MODEL") or CHECKPOINTS / "pseudo-video-digits"
    tgan_model = os.environ.get("HUEFLOW_TGAN_MODEL") or CHECKPOINTS / "tgan-moving-digits"
    # Remove Gradio's copies of uploads and results after a day (checked hourly).
    with gr.Blocks(
        title="hueflow: video colorization, tracking, editing and generation",
        analytics_enabled=False,
        delete_cache=(3600, 86400),
    ) as demo:
        gr.Markdown(
            "# hueflow\n"
            "Video colorization, object tracking, video editing and image generation with small models "
            "that run offline: exemplar-based colorization with a lite ColorMNet (Yang et al., ECCV 2024), "
            "mask and point tracking with motion-aware self-supervised correspondence (Zhou et al., 2025), "
            "edits of one frame carried through the video with Zero-to-Hero appearance transfer (Su et al., "
            "2025), digits generated as the last frame of a pseudo video (Chen et al., 2024), and "
            "moving-digit clips from a temporal GAN (Saito et al., ICCV 2017).\n\n" + limits.describe()
        )
        with gr.Tab("Colorize"):
            ColorizeTab(colorization_model, limits).render()
        with gr.Tab("Track"):
            TrackTab(correspondence_model, limits).render()
        with gr.Tab("Edit"):
            TransferTab(appearance_model, limits).render()
        with gr.Tab("Generate"):
            GenerateTab(generation_model, limits).render()
        with gr.Tab("Video GAN"):
            VideoGANTab(tgan_model, limits).render()
    return demo


def main() -> None:
    limits = Limits.detect()
    demo = build_demo(limits)
    # The queue fits the hardware (space/limits.py): each heavy tab runs its own jobs one (GPU: two) at a
    # time, light events (video info, first frame, frame extraction, comparison) two (GPU: four) beside
    # them, and past `max_queue_size` waiting jobs a visitor is told at once that the Space is busy and to
    # try again, instead of waiting behind a queue that cannot clear.
    demo.queue(**limits.queue_settings())
    # server_name / server_port are left to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (set on Spaces).
    demo.launch(max_file_size=f"{limits.max_upload_mb}mb", footer_links=["api", "gradio"])


if __name__ == "__main__":
    main()
