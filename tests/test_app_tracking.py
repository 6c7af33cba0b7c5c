"""End-to-end tests of the app's Track tab through its API, the way `gradio_client` users drive a Space.

The real app (real queue) is launched on a free local port, pointed with HUEFLOW_CORRESPONDENCE_MODEL
at a tiny untrained `CorrespondencePipeline` saved in a temporary folder: those tests check the
plumbing (the painted drawing becomes a label map, an mp4 of the right length comes back, bad inputs
give clear errors and the server keeps serving), never the tracking quality. One test tracks with the
embedded checkpoint and checks that the overlay follows the object; it runs when the checkpoint exists.
The clip (a textured rectangle sliding over a background) and the drawings are generated here.
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
import torch
from conftest import (
    GRADIO_QUEUE_WARNINGS,
    assert_refused_then_next_job_runs,
    decode,
    launched_app,
    paste_per_frame,
    write_truncated_mkv,
)
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import CorrespondencePipeline, write_video
from pipelines.correspondence import MotionCorrespondenceEncoder

pytestmark = GRADIO_QUEUE_WARNINGS

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_MODEL = REPO_ROOT / "checkpoints" / "mer-correspondence"

NUM_FRAMES, LONG_NUM_FRAMES = 8, 16
HEIGHT, WIDTH = 96, 128
OBJECT_HEIGHT, OBJECT_WIDTH = 24, 32
OBJECT_START = (20, 30)  # x, y of the object's top-left corner on frame 0
OBJECT_STEP = (4, 1)  # pixels per frame
MAX_FRAMES_LIMIT = 12  # HUEFLOW_MAX_FRAMES: the long clip is over it
RED, GREEN = (230, 25, 75), (60, 180, 75)  # the first two brush colours
# Well apart from one another: more objects than the app takes.
ELEVEN_COLOURS = [(r, g, b) for r in (0, 128, 255) for g in (0, 128, 255) for b in (0, 128, 255)][1:12]
# Output pixels this far from the input (mean over channels) are tinted by the overlay.
MIN_TINT = 20
# The progress bar's text: "Tracking: 3/8 frames", with the speed and the time left once two are done.
PROGRESS_LINE = r"Tracking: (\d+)/(\d+) frames(, [\d.]+ frames/s, about \d+:\d\d left)?"


def object_box(frame_index: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of the object on a frame."""
    x = OBJECT_START[0] + OBJECT_STEP[0] * frame_index
    y = OBJECT_START[1] + OBJECT_STEP[1] * frame_index
    return x, y, x + OBJECT_WIDTH, y + OBJECT_HEIGHT


def object_centre(frame_index: int) -> np.ndarray:
    x0, y0, x1, y1 = object_box(frame_index)
    return np.array([(x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2])


def sliding_object_clip(num_frames: int) -> np.ndarray:
    """A textured rectangle (4 px blocks, so H.264 keeps them) sliding over a smooth background:
    (T, H, W, 3) uint8."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(40, 216, size=(OBJECT_HEIGHT // 4, OBJECT_WIDTH // 4, 3))
    texture = np.kron(blocks, np.ones((4, 4, 1))).astype(np.uint8)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([70 + xx * 0.4, 90 + yy * 0.4, 110 + 10 * np.sin(xx / 9)], axis=-1).astype(np.uint8)
    return paste_per_frame(background, texture, [object_box(index) for index in range(num_frames)])


def tint_mask(output_frame: np.ndarray, input_frame: np.ndarray) -> np.ndarray:
    difference = np.abs(output_frame.astype(np.int16) - input_frame.astype(np.int16)).mean(axis=-1)
    return difference > MIN_TINT


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def rgba_layer(*boxes_and_colours, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """A transparent RGBA layer with opaque rectangles ((x0, y0, x1, y1), colour) painted on it."""
    layer = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    for (x0, y0, x1, y1), colour in boxes_and_colours:
        layer[y0:y1, x0:x1] = (*colour, 255)
    return layer


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    clip = sliding_object_clip(NUM_FRAMES)
    first = clip[0]
    object_on_first = object_box(0)
    files = {
        "video": Path(write_video(clip, folder / "sliding.mp4", fps=8)),
        "long_video": Path(write_video(sliding_object_clip(LONG_NUM_FRAMES), folder / "long.mp4", fps=8)),
        "corrupt_video": folder / "notes.mp4",
    }
    files["corrupt_video"].write_text("this is a text file, not a video\n" * 20)
    files["truncated_video"] = write_truncated_mkv(folder / "truncated.mkv", clip, fps=8, keep=0.9)
    composite = first.copy()
    x0, y0, x1, y1 = object_on_first
    composite[y0:y1, x0:x1] = RED
    # An anti-aliased stroke edge: a half-transparent, slightly different red row, not an object.
    edged = rgba_layer((object_on_first, RED))
    edged[y1, x0:x1] = (228, 27, 77, 140)
    images = {
        "frame0": first,
        "layer": edged,
        "layer_rgb_on_black": rgba_layer((object_on_first, RED))[..., :3],
        "composite": composite,
        "layer_two_objects": rgba_layer((object_on_first, RED), ((90, 70, 120, 90), GREEN)),
        "layer_empty": rgba_layer(),
        "layer_wrong_size": rgba_layer(((10, 10, 30, 30), RED), size=(64, 48)),
        "layer_eleven_colours": rgba_layer(
            *(((8 * k, 0, 8 * k + 8, 8), colour) for k, colour in enumerate(ELEVEN_COLOURS))
        ),
        "layer_noise": np.random.default_rng(1).integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8),
    }
    for name, array in images.items():
        files[name] = folder / f"{name}.png"
        Image.fromarray(array).save(files[name])
    return files


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained correspondence pipeline, small enough to track a clip in a fraction of a second."""
    folder = tmp_path_factory.mktemp("tiny-correspondence")
    torch.manual_seed(0)
    encoder = MotionCorrespondenceEncoder(feature_channels=8, hidden_channels=(8, 8), backbone=None)
    CorrespondencePipeline(encoder, processing_size=64).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def client(tiny_model, tmp_path_factory) -> Iterator[Client]:
    env = {"HUEFLOW_CORRESPONDENCE_MODEL": str(tiny_model), "HUEFLOW_MAX_FRAMES": str(MAX_FRAMES_LIMIT)}
    with launched_app(env, tmp_path_factory.mktemp("cache")) as url:
        yield Client(url, verbose=False)


@pytest.fixture(scope="module")
def embedded_client(tmp_path_factory) -> Iterator[Client]:
    env = {"HUEFLOW_CORRESPONDENCE_MODEL": None, "HUEFLOW_MAX_FRAMES": str(MAX_FRAMES_LIMIT)}
    with launched_app(env, tmp_path_factory.mktemp("cache")) as url:
        yield Client(url, verbose=False)


def drawing(media: dict[str, Path], layers=("layer",), background="frame0", composite=None) -> dict:
    """An ImageEditor value as gradio_client sends it."""

    def file(name):
        return None if name is None else handle_file(str(media[name]))

    return {
        "background": file(background),
        "layers": [file(name) for name in layers],
        "composite": file(composite),
    }


def track(client: Client, media: dict[str, Path], video="video", editor="default", max_frames=0, points=""):
    editor = drawing(media) if editor == "default" else editor
    video_file = None if video is None else handle_file(str(media[video]))
    return client.predict(video_file, editor, max_frames, points, api_name="/track")


def progress_lines(job) -> list[str]:
    """The progress bar's texts (`desc`) a submitted `gradio_client` job showed while it ran."""

    async def updates() -> list:
        return [update async for update in job]

    units = [
        unit for update in asyncio.run(updates()) for unit in getattr(update, "progress_data", None) or []
    ]
    return [unit.desc for unit in units if unit.desc]


# ------------------------------------------------------------------------------------- with the app


def test_truncated_video_is_tracked_as_far_as_it_decodes_and_the_summary_says_so(client, media):
    video_path, summary = track(client, media, video="truncated_video")
    tracked = len(decode(video_path))
    assert 1 < tracked < NUM_FRAMES - 1
    assert (
        f"Only {tracked} of the {NUM_FRAMES} frames expected from 'truncated.mkv' could be decoded" in summary
    )
    assert "Max frames" not in summary


def test_first_frame_fills_the_editor(client, media):
    editor, info, points_frame, points = client.predict(
        handle_file(str(media["video"])), api_name="/first_frame"
    )

    assert f"{WIDTH}x{HEIGHT}, {NUM_FRAMES} frames" in info
    assert editor["layers"] == [] and points == ""
    first = decode(str(media["video"]))[0].astype(np.int16)
    for path in (editor["background"], points_frame):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
            assert np.abs(np.asarray(image.convert("RGB"), dtype=np.int16) - first).max() <= 1


def test_track_painted_layer_gives_overlay_mp4(client, media):
    """The path a visitor takes: frame 0 from `first_frame` as the background, a painted layer on it."""
    editor, *_ = client.predict(handle_file(str(media["video"])), api_name="/first_frame")
    value = {
        "background": handle_file(editor["background"]),
        "layers": [handle_file(str(media["layer"]))],
        "composite": None,
    }
    # Max frames and points are optional.
    video_path, summary = client.predict(handle_file(str(media["video"])), value, api_name="/track")

    assert video_path.endswith("sliding_tracked.mp4")
    with av.open(video_path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    frames = decode(video_path)
    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    assert f"Tracked 1 object through {NUM_FRAMES} frames" in summary
    # Frame 0 carries the painted mask itself: tinted over the object (the anti-aliased edge row is
    # part of it), nowhere else.
    tinted = tint_mask(frames[0], decode(str(media["video"]))[0])
    assert np.abs(centroid(tinted) - object_centre(0)).max() < 1.5
    assert 0.8 < tinted.sum() / (OBJECT_WIDTH * OBJECT_HEIGHT) < 1.4


@pytest.mark.parametrize(
    ("editor", "expected"),
    [
        ({"layers": ("layer_rgb_on_black",)}, "1 object"),
        ({"layers": (), "composite": "composite"}, "1 object"),
        ({"layers": ("layer_empty", "layer_two_objects")}, "2 objects"),
        ({"layers": ("layer_two_objects",), "background": None}, "2 objects"),
    ],
    ids=["rgb-mask-on-black", "composite-only", "two-colours-two-layers", "no-background"],
)
def test_drawing_forms_give_objects(client, media, editor, expected):
    video_path, summary = track(client, media, editor=drawing(media, **editor), max_frames=2)

    assert f"Tracked {expected} through 2 frames" in summary
    tinted = tint_mask(decode(video_path)[0], decode(str(media["video"]))[0])
    x0, y0, x1, y1 = object_box(0)
    assert tinted[y0:y1, x0:x1].mean() > 0.9


def test_points_alone_and_max_frames(client, media):
    video_path, summary = track(client, media, editor=None, max_frames=3, points="36, 42\n(60 50)")

    assert "Tracked 2 points through 3 frames" in summary
    assert "first 3 of its 8 frames" in summary
    assert decode(video_path).shape[0] == 3


def test_track_progress_counts_the_frames(client, media):
    """The progress bar counts the frames tracked of the frames to track ("Tracking: 3/12 frames", with
    the speed and the time left once two are done; the long clip is cut to the limit of 12), not the
    pipeline's bare tqdm bar."""
    job = client.submit(handle_file(str(media["long_video"])), drawing(media), 0, "", api_name="/track")
    lines = progress_lines(job)
    job.result()
    counts = [match for match in map(partial(re.fullmatch, PROGRESS_LINE), lines) if match]
    assert counts and {int(count[2]) for count in counts} == {MAX_FRAMES_LIMIT}, lines


def test_video_over_the_frame_limit_tracks_its_beginning(client, media):
    video_path, summary = track(client, media, video="long_video")

    assert decode(video_path).shape[0] == MAX_FRAMES_LIMIT
    assert f"has {LONG_NUM_FRAMES} frames: only its first {MAX_FRAMES_LIMIT} were tracked" in summary


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"video": None}, "Upload a video first"),
        ({"video": "corrupt_video"}, "cannot be used as the video"),
        ({"video": "frame0"}, "is an image, not a video"),
        # The pipeline's rules, in its words (CorrespondencePipeline.check_inputs), with the UI's hint.
        ({"editor": None}, "Nothing to track: give `points` .* Paint over each object on the first frame"),
        ({"editor": {"background": "frame0", "layers": ("layer_empty",)}}, "Nothing to track"),
        ({"editor": {"layers": ("layer_wrong_size",)}}, "is 64x48 px, but the video's frames are 128x96"),
        ({"editor": {"layers": ("layer_eleven_colours",)}}, "more than 10 different colours"),
        ({"editor": {"layers": ("layer_noise",)}}, "not painted in flat colours"),
        # Gradio's slider checks its own bounds before the app sees the value.
        ({"max_frames": MAX_FRAMES_LIMIT + 1}, f"greater than maximum value {MAX_FRAMES_LIMIT}"),
        ({"points": "middle"}, "'middle' is not an 'x, y' pair"),
        ({"points": "10, 10; 500, 20"}, r"Point 2 \(500, 20\) lies outside frame 0, which is 128x96"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(map(str, value.values())),
)
def test_bad_input_gives_clear_error_and_next_job_runs(client, media, inputs, message):
    if isinstance(inputs.get("editor"), dict):
        inputs = {**inputs, "editor": drawing(media, **inputs["editor"])}
    assert_refused_then_next_job_runs(partial(track, client, media), message, inputs, next_frames=2)


def test_overlay_follows_the_object_with_the_embedded_model(embedded_client, media):
    video_path, summary = track(embedded_client, media)

    assert f"Tracked 1 object through {NUM_FRAMES} frames" in summary
    frames, inputs = decode(video_path), decode(str(media["video"]))
    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    centres = []
    for index in range(NUM_FRAMES):
        tinted = tint_mask(frames[index], inputs[index])
        assert 0.5 < tinted.sum() / (OBJECT_WIDTH * OBJECT_HEIGHT) < 1.6, f"frame {index}"
        centres.append(centroid(tinted))
        assert np.abs(centres[-1] - object_centre(index)).max() < 4, f"frame {index}: {centres[-1]}"
    moved, expected = centres[-1] - centres[0], object_centre(NUM_FRAMES - 1) - object_centre(0)
    assert np.abs(moved - expected).max() < 4


# ------------------------------------------------------------------------------------ without a server


def test_missing_model_gives_clear_error_and_is_retried(media, tmp_path):
    """A missing checkpoint is reported as such (not as the visitor's fault), and is not cached:
    the next request tries to load it again."""
    import gradio as gr

    from space.limits import Limits
    from space.track_tab import TrackTab

    tab = TrackTab(tmp_path / "no-such-model", Limits.detect())
    value = {"background": None, "layers": [str(media["layer"])], "composite": None}
    for _ in range(2):
        with pytest.raises(gr.Error, match="tracking model could not be loaded .no model folder at"):
            tab.track(str(media["video"]), value, progress=lambda *a, **k: None)
    assert not tab.pipeline.loaded


def test_track_progress_shows_the_speed_and_the_time_left(media, tiny_model):
    """`FrameProgress` is the call's `callback_on_frame_end`: its last line has the frame count, the speed
    and the time left, in frames."""
    from space.limits import Limits
    from space.track_tab import TrackTab

    calls = []
    tab = TrackTab(tiny_model, Limits.detect())
    value = {"background": None, "layers": [np.asarray(Image.open(media["layer"]))], "composite": None}
    tab.track(str(media["video"]), value, progress=lambda *args, **kwargs: calls.append((args, kwargs)))

    frames = [(args[0], kwargs["desc"]) for args, kwargs in calls if kwargs.get("unit") == "frames"]
    assert frames[-1][0] == (NUM_FRAMES, NUM_FRAMES)
    last = re.fullmatch(PROGRESS_LINE, frames[-1][1])
    assert last and int(last[1]) == NUM_FRAMES and last[3], frames
    assert last[3].endswith("about 0:00 left")


def test_painted_mask_orders_objects_by_brush_colour():
    from space.track_tab import painted_mask

    # Green is painted first and larger, red second: ids follow the brush palette (red is 1), and
    # shades a few levels off a brush colour join its object.
    layer = rgba_layer(((0, 0, 40, 40), GREEN), ((60, 10, 70, 20), RED))
    layer[40, 0:40] = (62, 178, 73, 200)
    mask = painted_mask({"layers": [layer]}, HEIGHT, WIDTH)

    assert [(obj.label, obj.colour, obj.pixels) for obj in mask.objects] == [(1, RED, 100), (2, GREEN, 1640)]
    assert mask.label_map.dtype == np.uint8
    assert np.bincount(mask.label_map.ravel()).tolist() == [HEIGHT * WIDTH - 1740, 100, 1640]
    assert painted_mask({"layers": [rgba_layer()]}, HEIGHT, WIDTH) is None
    assert painted_mask(None, HEIGHT, WIDTH) is None


def test_typed_points_are_checked_when_a_point_is_clicked(media):
    """Clicking adds a point to the typed ones; typed points outside frame 0 are refused right there,
    with the pipeline's message (the same check Track makes)."""
    import gradio as gr

    from space.limits import Limits
    from space.track_tab import TrackTab

    tab = TrackTab("unused", Limits.detect())
    click = gr.SelectData(None, {"index": [20, 30], "value": None})
    points, frame = tab.add_point(str(media["video"]), "10, 10", click)
    assert points == "10, 10\n20, 30" and frame.shape == (HEIGHT, WIDTH, 3)
    outside = rf"Point 2 \(500, 20\) lies outside frame 0, which is {WIDTH}x{HEIGHT}"
    with pytest.raises(gr.Error, match=outside):
        tab.add_point(str(media["video"]), "10, 10\n500, 20", click)
