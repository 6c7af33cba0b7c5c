"""End-to-end tests of the app's Edit tab through its API, the way `gradio_client` users drive a Space.

The real app (real queue) is launched once on a free local port, pointed with HUEFLOW_APPEARANCE_MODEL
at a tiny untrained `ZeroToHeroPipeline` saved in a temporary folder. Its untrained restorer is the
identity, so the output is the Zero stage's, which carries a flat recolouring along without any
training; the tests check the plumbing (the anchor frame comes back exactly, an mp4 of the input's
length and size comes back, the edit reaches the other frames, bad inputs give clear errors and the
server keeps serving), not the model's quality. The clip (a red rectangle sliding over a gradient) and
the edited frames are generated here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import (
    GRADIO_QUEUE_WARNINGS,
    assert_refused_then_next_job_runs,
    decode,
    job_messages,
    launched_app,
    make_tiny_zero_to_hero,
    paste_per_frame,
    write_truncated_mkv,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines import write_video

pytestmark = GRADIO_QUEUE_WARNINGS

NUM_FRAMES, LONG_NUM_FRAMES = 6, 10
HEIGHT, WIDTH = 96, 128
ANCHOR = 2  # the frame that is edited
BOX_SIZE = (32, 24)  # width, height of the red rectangle
BOX_START, BOX_STEP = (24, 32), (3, 1)  # x, y of its top-left corner on frame 0; pixels per frame
RED, BLUE = (220, 30, 30), (30, 40, 220)
# Lowered through the environment (see space/limits.py) so "too long" and "too large" inputs stay tiny.
MAX_FRAMES_LIMIT = 8
MAX_IMAGE_SIDE = 300
# Mean absolute difference (0-255) allowed between an unedited output and its input: H.264 re-encoding.
MAX_CODEC_DIFFERENCE = 3.0


def box(frame_index: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the red rectangle on a frame."""
    x = BOX_START[0] + BOX_STEP[0] * frame_index
    y = BOX_START[1] + BOX_STEP[1] * frame_index
    return x, y, x + BOX_SIZE[0], y + BOX_SIZE[1]


def sliding_box_clip(num_frames: int) -> np.ndarray:
    """A flat red rectangle sliding over a smooth gradient: (T, H, W, 3) uint8."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([60 + xx * 0.8, 80 + yy * 0.8, np.full_like(xx, 140.0)], axis=-1).astype(np.uint8)
    return paste_per_frame(background, RED, [box(index) for index in range(num_frames)])


def read_png(path: str) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    files = {
        "video": Path(write_video(sliding_box_clip(NUM_FRAMES), folder / "sliding.mp4", fps=6)),
        "long_video": Path(write_video(sliding_box_clip(LONG_NUM_FRAMES), folder / "long.mp4", fps=6)),
        "corrupt_video": folder / "x.mp4",
    }
    files["corrupt_video"].write_bytes(np.random.default_rng(0).bytes(4096))
    # 8 frames declared, fewer decodable.
    files["truncated_video"] = write_truncated_mkv(
        folder / "truncated.mkv", sliding_box_clip(8), fps=6, keep=0.9
    )
    # Edits start from the anchor as the app gives it: the decoded frame, not the clip before encoding.
    decoded = decode(files["video"])
    anchor = decoded[ANCHOR]
    edited = anchor.copy()
    x0, y0, x1, y1 = box(ANCHOR)
    edited[y0:y1, x0:x1] = BLUE
    images = {
        "unedited": anchor,
        "unedited_first": decoded[0],
        "edited": edited,
        "edited_twice_the_size": np.asarray(Image.fromarray(edited).resize((2 * WIDTH, 2 * HEIGHT))),
        "edited_square": np.asarray(Image.fromarray(edited).resize((HEIGHT, HEIGHT))),
        "edited_too_large": np.asarray(Image.fromarray(edited).resize((4 * WIDTH, 4 * HEIGHT))),
    }
    for name, array in images.items():
        files[name] = folder / f"{name}.png"
        Image.fromarray(array).save(files[name])
    # A PNG whose header reads fine but whose pixels are cut off (an interrupted download).
    files["truncated"] = folder / "truncated.png"
    files["truncated"].write_bytes(files["edited"].read_bytes()[:200])
    return files


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained Zero-to-Hero pipeline, small enough to edit the clip in a fraction of a second."""
    folder = tmp_path_factory.mktemp("tiny-zero2hero")
    make_tiny_zero_to_hero(random_head=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def client(tiny_model, tmp_path_factory) -> Iterator[Client]:
    """The app on the tiny model, which does not fine-tune (`finetune_steps=0`)."""
    env = {
        "HUEFLOW_APPEARANCE_MODEL": str(tiny_model),
        "HUEFLOW_MAX_FRAMES": str(MAX_FRAMES_LIMIT),
        "HUEFLOW_MAX_EXEMPLAR_SIDE": str(MAX_IMAGE_SIDE),
    }
    with launched_app(env, tmp_path_factory.mktemp("cache")) as url:
        yield Client(url, verbose=False)


# Steps of per-video fine-tuning of the model the progress test's app uses.
FINETUNE_STEPS = 4


@pytest.fixture(scope="module")
def finetuning_client(tmp_path_factory) -> Iterator[Client]:
    """The app on a tiny model that fine-tunes its restorer for `FINETUNE_STEPS` steps per video, as the
    shipped model does (60 steps)."""
    folder = tmp_path_factory.mktemp("tiny-zero2hero-finetuning")
    make_tiny_zero_to_hero(random_head=False, finetune_steps=FINETUNE_STEPS).save_pretrained(folder)
    env = {"HUEFLOW_APPEARANCE_MODEL": str(folder), "HUEFLOW_MAX_FRAMES": str(MAX_FRAMES_LIMIT)}
    with launched_app(env, tmp_path_factory.mktemp("cache-finetuning")) as url:
        yield Client(url, verbose=False)


def progress_lines(job) -> list[str]:
    """The progress bar's texts (`desc` of its last unit) a submitted `gradio_client` job showed, in order
    (Gradio sends the latest every 10 ms or so, so quick steps may be skipped)."""

    async def updates() -> list:
        return [update async for update in job]

    return [
        update.progress_data[-1].desc
        for update in asyncio.run(updates())
        if getattr(update, "progress_data", None) and update.progress_data[-1].desc
    ]


def transfer(
    client: Client,
    media: dict[str, Path],
    video="video",
    edited="edited",
    frame_index=ANCHOR,
    max_frames=0,
) -> tuple[str, str]:
    def file(name):
        return None if name is None else handle_file(str(media[name]))

    return client.predict(file(video), file(edited), frame_index, max_frames, api_name="/transfer")


# ------------------------------------------------------------------------------------- with the app


def test_anchor_frame_is_that_frame_as_png(client, media):
    preview, download = client.predict(handle_file(str(media["video"])), ANCHOR, api_name="/anchor_frame")

    assert Path(download).name == f"sliding_frame{ANCHOR:05d}.png"
    expected = decode(media["video"])[ANCHOR]
    for path in (preview, download):
        frame = read_png(path)
        assert frame.shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(frame, expected)


@pytest.mark.parametrize(
    ("video", "frame_index", "message"),
    [
        ("video", NUM_FRAMES, f"has {NUM_FRAMES} frames: pick a frame from 0 to {NUM_FRAMES - 1}"),
        ("corrupt_video", 0, "cannot be used as the video"),
        # Gradio's slider checks its own bounds before the app sees the value.
        ("video", MAX_FRAMES_LIMIT, f"greater than maximum value {MAX_FRAMES_LIMIT - 1}"),
    ],
    ids=["past-the-end", "corrupt-video", "over-the-limit"],
)
def test_anchor_frame_refuses_bad_input(client, media, video, frame_index, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(media[video])), frame_index, api_name="/anchor_frame")


def test_identical_edited_frame_gives_the_input(client, media):
    # Frame index and max frames are optional: the anchor is frame 0 by default.
    video_path, summary = client.predict(
        handle_file(str(media["video"])), handle_file(str(media["unedited_first"])), api_name="/transfer"
    )

    assert video_path.endswith("sliding_edited.mp4")
    with av.open(video_path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    frames, inputs = decode(video_path), decode(media["video"])
    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    assert mean_difference(frames, inputs) < MAX_CODEC_DIFFERENCE
    assert f"Carried the edit of frame 0 through {NUM_FRAMES} frames ({WIDTH}x{HEIGHT})" in summary


def test_edit_of_the_anchor_reaches_the_other_frames(client, media):
    video_path, summary = transfer(client, media)

    assert f"frame {ANCHOR} through {NUM_FRAMES} frames" in summary
    frames, inputs = decode(video_path), decode(media["video"])
    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    for index in range(NUM_FRAMES):
        # The rectangle is blue wherever it has moved to (inside it, away from codec-blurred edges)...
        x0, y0, x1, y1 = box(index)
        inside = frames[index, y0 + 3 : y1 - 3, x0 + 3 : x1 - 3].reshape(-1, 3).mean(axis=0)
        assert np.abs(inside - BLUE).max() < 30, f"frame {index}: {inside}"
        # ... and the rest of the frame is unchanged.
        outside = np.ones((HEIGHT, WIDTH), dtype=bool)
        outside[max(0, y0 - 4) : y1 + 4, max(0, x0 - 4) : x1 + 4] = False
        assert mean_difference(frames[index][outside], inputs[index][outside]) < MAX_CODEC_DIFFERENCE


@pytest.mark.filterwarnings("ignore:The edited frame is .* resizing the edited frame")
def test_edited_frame_of_another_size_is_resized(client, media):
    job = client.submit(
        handle_file(str(media["video"])),
        handle_file(str(media["edited_twice_the_size"])),
        ANCHOR,
        3,
        api_name="/transfer",
    )
    messages = job_messages(job)
    video_path, summary = job.result()

    assert decode(video_path).shape == (3, HEIGHT, WIDTH, 3)
    # The pipeline's warning (ZeroToHeroPipeline.check_inputs), shown as it starts and kept in the summary.
    warning = (
        f"The edited frame is {2 * WIDTH}x{2 * HEIGHT} and the video {WIDTH}x{HEIGHT}: resizing the edited "
        "frame to the video's size."
    )
    assert warning in messages, messages
    assert warning in summary
    assert f"Only the first 3 of its {NUM_FRAMES} frames" in summary


def test_max_frames_edits_the_beginning_of_a_long_video(client, media):
    # 10 frames is over the limit of 8, but editing the first 4 is fine.
    video_path, _ = transfer(client, media, video="long_video", max_frames=4)
    assert decode(video_path).shape == (4, HEIGHT, WIDTH, 3)


def test_truncated_video_is_edited_as_far_as_it_decodes_and_the_summary_says_so(client, media):
    video_path, summary = transfer(client, media, video="truncated_video")
    edited = len(decode(video_path))
    assert ANCHOR < edited < 7
    assert f"Only {edited} of the 8 frames expected from 'truncated.mkv' could be decoded" in summary
    assert "Max frames" not in summary


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"video": None}, "Upload a video first"),
        ({"video": "corrupt_video"}, "cannot be used as the video"),
        ({"video": "unedited"}, "is an image, not a video"),
        ({"video": "long_video"}, f"too long: {LONG_NUM_FRAMES} frames"),
        # The pipeline's rules, in its words (ZeroToHeroPipeline.check_inputs), with the UI's hints.
        ({"edited": None}, f"No edited frame given: .* Download frame {ANCHOR} \\(the button under its"),
        (
            {"edited": "edited_square"},
            rf"The edited frame is {HEIGHT}x{HEIGHT} \(aspect 1.000\) but the video is {WIDTH}x{HEIGHT}",
        ),
        (
            {"frame_index": NUM_FRAMES},
            f"frame_index {NUM_FRAMES} is out of range: the video has {NUM_FRAMES} frames .* Set 'Frame to",
        ),
        ({"frame_index": 4, "max_frames": 3}, r"of which only the first 3 are processed \(max_frames=3\)"),
        # The app's own: upload limits.
        ({"edited": "edited_too_large"}, f"edited frames may be at most {MAX_IMAGE_SIDE} px per side"),
        ({"edited": "truncated"}, r"The edited frame \('truncated.png'\) could not be read"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(map(str, value.values())),
)
def test_bad_input_gives_clear_error_and_next_job_runs(client, media, inputs, message):
    assert_refused_then_next_job_runs(partial(transfer, client, media), message, inputs, next_frames=3)


def test_progress_shows_the_fine_tuning_steps_then_the_frames(finetuning_client, media):
    job = finetuning_client.submit(
        handle_file(str(media["video"])), handle_file(str(media["edited"])), ANCHOR, 0, api_name="/transfer"
    )
    # The first job loads the model first, and says so.
    lines = [line for line in progress_lines(job) if line != "Loading the model (first run only)"]
    video_path, summary = job.result()

    assert decode(video_path).shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    steps = [re.fullmatch(rf"fine-tuning step (\d+)/{FINETUNE_STEPS}", line) for line in lines]
    frames = [re.match(rf"Transferring the edit: (\d+)/{NUM_FRAMES} frames", line) for line in lines]
    assert all(step or frame for step, frame in zip(steps, frames, strict=True)), lines
    shown_steps = [int(step[1]) for step in steps if step]
    shown_frames = [int(frame[1]) for frame in frames if frame]
    assert shown_steps and shown_frames, lines
    # The fine-tuning first, counting up to its steps; then the frames, counting up to the video's.
    last_step = max(index for index, step in enumerate(steps) if step)
    assert all(frame is None for frame in frames[: last_step + 1]), lines
    assert shown_steps == sorted(shown_steps) and 1 <= shown_steps[0] and shown_steps[-1] <= FINETUNE_STEPS
    assert shown_frames == sorted(shown_frames) and shown_frames[-1] == NUM_FRAMES
    assert f"{FINETUNE_STEPS} fine-tuning steps on your edit" in summary


# ------------------------------------------------------------------------------------ without a server


def test_finetune_progress_reads_fine_tuning_step_k_of_n():
    from space.transfer_tab import FinetuneProgress

    calls = []
    tracker = FinetuneProgress(lambda *args, **kwargs: calls.append((args, kwargs)))
    for step in range(3):
        tracker(None, step, {"loss": 0.5, "num_steps": 60})
    assert calls == [
        (((done, 60),), {"desc": f"fine-tuning step {done}/60", "unit": "steps"}) for done in (1, 2, 3)
    ]
    assert tracker.steps == 3 and tracker.seconds >= 0


def test_transfer_event_runs_job_concurrency_jobs_at_once():
    import gradio as gr

    from space.limits import Limits
    from space.transfer_tab import TransferTab

    limits = Limits.detect().with_env_overrides({"HUEFLOW_JOB_CONCURRENCY": "3"})
    with gr.Blocks() as demo:
        TransferTab("unused", limits).render()
    (event,) = [fn for fn in demo.fns.values() if fn.api_name == "transfer"]
    assert event.concurrency_limit == limits.job_concurrency == 3
    assert event.concurrency_id == "transfer"


def test_video_info_fits_the_frame_slider(media):
    from space.limits import Limits
    from space.transfer_tab import TransferTab

    limits = Limits.detect().with_env_overrides({"HUEFLOW_MAX_FRAMES": str(MAX_FRAMES_LIMIT)})
    tab = TransferTab("unused", limits)
    text, slider = tab.video_info(str(media["video"]))
    assert f"{WIDTH}x{HEIGHT}, {NUM_FRAMES} frames" in text
    assert slider["maximum"] == NUM_FRAMES - 1 and slider["value"] == 0

    text, slider = tab.video_info(str(media["long_video"]))
    assert f"Longer than the {MAX_FRAMES_LIMIT}-frame limit" in text
    assert slider["maximum"] == MAX_FRAMES_LIMIT - 1


def test_missing_model_gives_clear_error_and_is_retried(media, tmp_path):
    """A missing checkpoint is reported as such (not as the visitor's fault), and is not cached:
    the next request tries to load it again."""
    import gradio as gr

    from space.limits import Limits
    from space.transfer_tab import TransferTab

    tab = TransferTab(tmp_path / "no-such-model", Limits.detect())
    message = "appearance transfer model could not be loaded .no model folder at"
    for _ in range(2):
        with pytest.raises(gr.Error, match=message):
            tab.transfer(str(media["video"]), str(media["edited"]), ANCHOR, progress=lambda *a, **k: None)
    assert not tab.pipeline.loaded
