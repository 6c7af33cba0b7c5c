"""End-to-end tests of the Gradio app through its API, the way `gradio_client` users drive a Space.

The real app (embedded checkpoint, real queue) is launched once on a free local port; clips and
exemplars are tiny and generated here, so the whole file runs in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
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
    write_truncated_mkv,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines import VideoReader, write_video

pytestmark = GRADIO_QUEUE_WARNINGS

NUM_FRAMES = 8
HEIGHT, WIDTH = 64, 96
# Limits lowered through the environment (see space/limits.py) so "too long" and "too large" inputs
# stay tiny.
TEST_LIMITS = {"HUEFLOW_MAX_FRAMES": "12", "HUEFLOW_MAX_EXEMPLAR_SIDE": "512"}
REPO_ROOT = Path(__file__).resolve().parent.parent
PUBLIC_PACKAGES = {
    "pipelines",
    "pipelines.colorization",
    "pipelines.appearance",
    "pipelines.correspondence",
    "pipelines.pseudo_video",
    "pipelines.tgan",
}
# Settings after (video, exemplars, frame indices): processing size, max frames, top_k, memory_every,
# max_working_frames, num_prototypes, before/after frame.
FAST_SETTINGS = (64, 0, 30, 5, 10, 128, 3)
# "Colorizing: 3/8 frames", then with the speed and the time left once two frames are done.
PROGRESS_LINE = r"(Colorizing|Tracking): (\d+)/(\d+) frames(, [\d.]+ frames/s, about \d+:\d\d left)?"


def colour_clip(num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Saturated blobs moving over a soft gradient: (T, H, W, 3) uint8."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    colours = [(220, 40, 40), (40, 200, 60), (50, 70, 230)]
    frames = []
    for t in range(num_frames):
        frame = np.stack([60 + xx, 60 + yy, np.full_like(xx, 120)], axis=-1).astype(np.float32)
        for k, colour in enumerate(colours):
            cx, cy = 16 + 30 * k + 2 * t, 32
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 12**2] = colour
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def textured_clip(num_frames: int = NUM_FRAMES, height: int = 128, width: int = 160) -> np.ndarray:
    """Random colour blocks panning 2 px a frame: (T, H, W, 3) uint8, enough corners for feature matching
    to align a free reference (the blobs' clip has too few, and is too small for ORB's border)."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(
        0, 256, size=(height // 8 + 1, (width + 2 * num_frames) // 8 + 1, 3), dtype=np.uint8
    )
    scene = blocks.repeat(8, axis=0).repeat(8, axis=1)
    return np.stack([scene[:height, 2 * t : 2 * t + width] for t in range(num_frames)])


def to_gray(frames: np.ndarray) -> np.ndarray:
    luma = (frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).round()
    return np.repeat(luma.astype(np.uint8)[..., None], 3, axis=-1)


def chroma(frames: np.ndarray) -> float:
    """Mean spread between the RGB channels: ~0 for a gray clip, tens for a coloured one."""
    frames = frames.astype(np.int16)
    return float((frames.max(axis=-1) - frames.min(axis=-1)).mean())


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    colour, textured = colour_clip(), textured_clip()
    files = {
        "video": Path(write_video(to_gray(colour), folder / "gray.mp4", fps=8)),
        "long_video": Path(write_video(to_gray(colour_clip(16)), folder / "long.mp4", fps=8)),
        "textured_video": Path(write_video(to_gray(textured), folder / "textured.mp4", fps=8)),
        "exemplar": folder / "exemplar.png",
        "textured_frame0": folder / "textured_frame0.png",
        "textured_frame5": folder / "textured_frame5.png",
        "gray_exemplar": folder / "gray_exemplar.png",
        "huge_exemplar": folder / "huge_exemplar.png",
        "corrupt_video": folder / "notes.mp4",
        "text_exemplar": folder / "notes.png",
    }
    # 12 frames declared, fewer decodable.
    files["truncated_video"] = write_truncated_mkv(
        folder / "truncated.mkv", to_gray(colour_clip(12)), fps=8, keep=0.85
    )
    Image.fromarray(colour[0]).save(files["exemplar"])
    Image.fromarray(textured[0]).save(files["textured_frame0"])
    Image.fromarray(textured[5]).save(files["textured_frame5"])
    Image.fromarray(to_gray(colour)[0]).save(files["gray_exemplar"])
    Image.new("RGB", (600, 40), (200, 30, 30)).save(files["huge_exemplar"])
    files["corrupt_video"].write_text("this is a text file, not a video\n" * 20)
    files["text_exemplar"].write_text("not an image either\n")
    return files


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[Client]:
    with launched_app(TEST_LIMITS, tmp_path_factory.mktemp("cache")) as url:
        yield Client(url, verbose=False)


def colorize(
    client: Client,
    media: dict[str, Path],
    video="video",
    exemplars=("exemplar",),
    indices="",
    max_frames=0,
    match_colours=True,
    exemplar_is_frame_0=False,
):
    """The /colorize endpoint: (colour mp4, before/after pair, note on how each exemplar was used)."""
    processing_size, _, *memory_and_compare = FAST_SETTINGS
    return client.predict(
        handle_file(str(media[video])),
        [handle_file(str(media[name])) for name in exemplars],
        indices,
        processing_size,
        max_frames,
        *memory_and_compare,
        match_colours,
        exemplar_is_frame_0,
        api_name="/colorize",
    )


def progress_lines(job) -> list[str]:
    """The progress bar's texts (`desc`) a submitted `gradio_client` job showed while it ran."""

    async def updates() -> list:
        return [update async for update in job]

    return [
        unit.desc
        for update in asyncio.run(updates())
        for unit in getattr(update, "progress_data", None) or []
        if unit.desc
    ]


class RecordedProgress:
    """A stand-in for `gr.Progress` that keeps what a job shows on it: (progress, desc, unit) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, str | None, str | None]] = []

    def __call__(self, progress, desc=None, total=None, unit="steps") -> None:
        self.calls.append((progress, desc, unit))


def test_colorize_returns_colour_mp4(client, media):
    video_path, (before, after), note = colorize(client, media, indices="0")

    assert video_path.endswith(".mp4")
    with av.open(video_path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    frames = decode(video_path)
    assert frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    gray_chroma = chroma(decode(str(media["video"])))
    assert gray_chroma < 3
    assert chroma(frames) > gray_chroma + 10
    # Frame 0 was tied to the exemplar, so it takes the exemplar's colours.
    exemplar = np.asarray(Image.open(media["exemplar"]).convert("RGB"), dtype=np.float32)
    assert np.abs(frames[0].astype(np.float32) - exemplar).mean() < 12
    # The note says how the exemplar was used: as the keyframe of frame 0.
    assert "Exemplar 1 (`exemplar.png`): keyframe at frame 0" in note

    # The before/after pair shows frame 3: the grayscale input and its colour version.
    before, after = (
        np.asarray(Image.open(before).convert("RGB")),
        np.asarray(Image.open(after).convert("RGB")),
    )
    assert before.shape == after.shape == (HEIGHT, WIDTH, 3)
    assert chroma(before) < 3 < 10 < chroma(after)

    # Another frame of the same result, without running the model again.
    before, after = client.predict(
        handle_file(str(media["video"])), handle_file(video_path), 6, api_name="/compare_frame"
    )
    assert np.asarray(Image.open(after).convert("RGB")).shape == (HEIGHT, WIDTH, 3)


def test_match_colours_can_be_turned_off(client, media):
    """On (the default), each pixel takes a matched colour where the brightness agrees; off, every frame
    has the model's own colours: the two runs differ, and the note says when matching was off (what the
    matching does: test_colorization.py)."""
    matched, _, note = colorize(client, media, indices="0")
    own, _, own_note = colorize(client, media, indices="0", match_colours=False)
    matched, own = decode(matched), decode(own)
    assert matched.shape == own.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    # Frame 0 is the keyframe either way; the frames after it are coloured differently.
    assert np.abs(matched[1:].astype(np.float32) - own[1:]).mean() > 0.1
    assert "keyframe" in note and "keyframe" in own_note
    assert "matching was off" in own_note and "matching was off" not in note


def test_match_colours_maps_to_the_pipelines_fallback_error(media, monkeypatch):
    """The checkbox is the call's `fallback_error`: None (the checkpoint's threshold) when on, negative (no
    matching, the model's colours only) when off."""
    from pipelines import ColorMNetPipeline
    from space.colorize_tab import ColorizeTab
    from space.limits import Limits

    real_call, calls = ColorMNetPipeline.__call__, []

    def recording_call(self, *args, **kwargs):
        calls.append(kwargs)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(ColorMNetPipeline, "__call__", recording_call)
    tab = ColorizeTab(REPO_ROOT / "checkpoints" / "colormnet-lite", Limits.detect())
    processing_size, _, *memory_and_compare = FAST_SETTINGS
    for match_colours in (True, False):
        tab.colorize(
            str(media["video"]), [str(media["exemplar"])], "0", processing_size, 2, *memory_and_compare,
            match_colours=match_colours, progress=lambda *a, **k: None,
        )  # fmt: skip
    assert [call["fallback_error"] for call in calls] == [None, -1.0]
    assert not any("static_tolerance" in call or "motion_compensated_hold" in call for call in calls)


def test_the_note_tells_a_keyframe_from_a_free_reference(client, media):
    """A free reference (blank entry) is aligned to the frame that shows its scene when feature matching
    finds one, else used through the model's memory only; the note says which, per exemplar."""
    exemplars = ("textured_frame0", "textured_frame5")
    video_path, _, note = colorize(client, media, video="textured_video", exemplars=exemplars, indices="0, ")
    assert decode(video_path).shape[0] == NUM_FRAMES
    lines = [line for line in note.splitlines() if line.startswith("- Exemplar")]
    assert len(lines) == 2, note
    assert lines[0].startswith("- Exemplar 1 (`textured_frame0.png`): keyframe at frame 0")
    assert lines[1].startswith("- Exemplar 2 (`textured_frame5.png`): free reference aligned to frame")
    # Frame 5 in colour, used as a free reference, is found at (or next to) frame 5.
    aligned = re.search(r"aligned to frame (\d+) \((\d+) matching features\)", lines[1])
    assert aligned, note
    assert abs(int(aligned[1]) - 5) <= 1 and int(aligned[2]) > 0
    assert "backwards" not in note  # the keyframe at frame 0 comes first

    # The free reference alone: the frames before the one it is aligned to are coloured backwards from it.
    _, _, note = colorize(client, media, video="textured_video", exemplars=exemplars[1:], indices="")
    aligned = re.search(r"aligned to frame (\d+)", note)
    assert aligned, note
    assert f"Frames 0-{int(aligned[1]) - 1} come before" in note
    assert f"coloured backwards from frame {aligned[1]}" in note

    # The blobs' clip is too plain to match a free reference against: the model's memory alone uses it.
    _, _, note = colorize(client, media, exemplars=("exemplar", "exemplar"), indices="0, ", max_frames=2)
    lines = [line for line in note.splitlines() if line.startswith("- Exemplar")]
    assert "keyframe" in lines[0] and "frame 0" in lines[0]
    assert "free reference" in lines[1] and ("aligned to frame" in lines[1] or "memory" in lines[1])

    # Matching off: a free reference is not aligned, and the note says why.
    _, _, note = colorize(
        client, media, video="textured_video", exemplars=exemplars[1:], max_frames=2, match_colours=False
    )
    assert "Exemplar 1 (`textured_frame5.png`): free reference (not aligned): colour matching is off" in note
    assert "memory" in note and "aligned to frame" not in note and "matching was off" in note


@pytest.mark.parametrize(
    ("video", "exemplar", "expected"),
    [
        ("video", "exemplar", True),  # frame 0 coloured
        ("textured_video", "textured_frame0", True),
        ("textured_video", "textured_frame5", False),  # another frame: a free reference
        ("video", "textured_frame0", False),  # another aspect ratio
        ("video", "huge_exemplar", False),  # over the limits: not even decoded, Colorize will say so
        ("corrupt_video", "exemplar", False),
    ],
)
def test_the_frame_0_box_is_ticked_when_the_exemplar_is_frame_0_coloured(
    client, media, video, exemplar, expected
):
    """What the "This exemplar is frame 0, coloured" box is set to when the video or the exemplars change
    (`ColorMNetPipeline.matches_frame` on the first exemplar and frame 0)."""
    files = [handle_file(str(media[exemplar]))]
    assert client.predict(handle_file(str(media[video])), files, api_name="/suggest_frame_0") is expected


def test_the_frame_0_box_makes_the_exemplar_frame_0s_keyframe(client, media):
    """With the Frame indices field left blank, the exemplar is a free reference; with the box ticked it
    is frame 0's keyframe: frame 0 takes its colours, and the note says which mode was used."""
    exemplar = np.asarray(Image.open(media["exemplar"]).convert("RGB"), dtype=np.float32)

    video_path, _, note = colorize(client, media, exemplar_is_frame_0=True)
    assert "Exemplar 1 (`exemplar.png`): keyframe at frame 0" in note
    assert np.abs(decode(video_path)[0].astype(np.float32) - exemplar).mean() < 12

    _, _, note = colorize(client, media, max_frames=2)
    assert "Exemplar 1 (`exemplar.png`): free reference" in note and "keyframe" not in note

    # Only the first exemplar is tied; the others keep their entries ("0, " is the same call).
    _, _, note = colorize(
        client,
        media,
        exemplars=("exemplar", "exemplar"),
        indices=", ",
        max_frames=2,
        exemplar_is_frame_0=True,
    )
    lines = [line for line in note.splitlines() if line.startswith("- Exemplar")]
    assert "keyframe at frame 0" in lines[0] and "free reference" in lines[1]


def test_colorize_progress_counts_the_frames(client, media):
    """The progress bar counts the frames coloured ("Colorizing: 3/8 frames", with the speed and the time
    left once two are done), not the pipeline's bare tqdm bar."""
    job = client.submit(
        handle_file(str(media["video"])), [handle_file(str(media["exemplar"]))], "0", *FAST_SETTINGS,
        api_name="/colorize",
    )  # fmt: skip
    lines = progress_lines(job)
    job.result()
    counts = [re.fullmatch(PROGRESS_LINE, line) for line in lines]
    assert any(counts) and all(count[1] == "Colorizing" for count in counts if count), lines
    assert {int(count[3]) for count in counts if count} == {NUM_FRAMES}, lines


def test_colorize_progress_shows_the_speed_and_the_time_left(media):
    """`FrameProgress` is the call's `callback_on_frame_end`: its last line has the frame count, the speed
    and the time left, in frames."""
    from space.colorize_tab import ColorizeTab
    from space.limits import Limits

    tab = ColorizeTab(REPO_ROOT / "checkpoints" / "colormnet-lite", Limits.detect())
    progress = RecordedProgress()
    tab.colorize(str(media["video"]), [str(media["exemplar"])], "0", *FAST_SETTINGS, progress=progress)

    frames = [(value, desc, unit) for value, desc, unit in progress.calls if unit == "frames"]
    assert frames[-1][0] == (NUM_FRAMES, NUM_FRAMES)
    last = re.fullmatch(PROGRESS_LINE, frames[-1][1])
    assert last and last[1] == "Colorizing" and int(last[2]) == NUM_FRAMES and last[4], frames
    assert last[4].endswith("about 0:00 left")


def test_truncated_video_is_coloured_as_far_as_it_decodes_and_the_visitor_is_told(client, media):
    job = client.submit(
        handle_file(str(media["truncated_video"])),
        [handle_file(str(media["exemplar"]))],
        "0",
        *FAST_SETTINGS,
        api_name="/colorize",
    )
    messages = job_messages(job)
    video_path, _, _ = job.result()
    coloured = len(decode(video_path))
    assert 1 < coloured < 11
    assert any(
        f"Only {coloured} of the 12 frames expected from 'truncated.mkv' could be decoded" in message
        for message in messages
    ), messages


def test_extract_frame_gives_png_of_that_frame(client, media):
    path = client.predict(handle_file(str(media["video"])), 5, api_name="/extract_frame")

    assert path.endswith("gray_frame00005.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
        extracted = np.asarray(image.convert("RGB"), dtype=np.int16)
    expected = decode(str(media["video"]))[5].astype(np.int16)
    assert np.abs(extracted - expected).max() == 0


def test_extract_frame_past_the_end_is_refused(client, media):
    with pytest.raises(AppError, match=f"has {NUM_FRAMES} frames: pick a frame from 0 to {NUM_FRAMES - 1}"):
        client.predict(handle_file(str(media["video"])), NUM_FRAMES + 1, api_name="/extract_frame")


def test_video_info_fits_sliders_to_the_clip(client, media):
    text, compare, extract = client.predict(handle_file(str(media["video"])), api_name="/video_info")

    assert f"{WIDTH}x{HEIGHT}, {NUM_FRAMES} frames" in text
    assert compare["maximum"] == extract["maximum"] == NUM_FRAMES - 1


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"video": "corrupt_video"}, "cannot be used as the video"),
        ({"video": "exemplar"}, "is an image, not a video"),
        ({"video": "long_video"}, "too long: 16 frames"),
        # The pipeline's rules, in its words (ColorMNetPipeline.check_inputs), with the UI's hints.
        ({"exemplars": ()}, "No exemplar given: .* No colour reference. Use 'Extract a frame'"),
        ({"exemplars": ("gray_exemplar",)}, r"Exemplar 1 has no colour \(it is grayscale\)"),
        ({"indices": "0, 3"}, "Got 1 exemplars but 2 exemplar_frames: .* Frame indices: one entry per"),
        ({"indices": "8"}, r"Exemplar 1 is tied to frame 8, but the video .* has 8 frames \(valid indices 0"),
        (
            {"indices": "3", "exemplar_is_frame_0": True},
            "'This exemplar is frame 0, coloured' is ticked, but Frame indices ties exemplar 1 to frame 3",
        ),
        # The app's own: upload limits and the field's text.
        ({"exemplars": ("text_exemplar",)}, "is not an image"),
        ({"exemplars": ("huge_exemplar",)}, "at most 512 px per side"),
        ({"indices": "first"}, r"'first' \(entry 1\) is not a frame number"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(map(str, value.values())),
)
def test_bad_input_gives_clear_error_and_next_job_runs(client, media, inputs, message):
    def video_and_slider(**kwargs):  # the first two outputs (the helper unpacks two)
        return colorize(client, media, **kwargs)[:2]

    assert_refused_then_next_job_runs(video_and_slider, message, inputs, next_frames=2)


def test_max_frames_colours_the_beginning_of_a_long_video(client, media):
    # 16 frames is over the limit of 12, but asking for the first 5 is fine.
    video_path, *_ = colorize(client, media, video="long_video", max_frames=5)
    assert decode(video_path).shape[0] == 5


def test_missing_model_gives_clear_error_and_is_retried(media, tmp_path):
    """A broken checkpoint is reported as such (not as the visitor's fault), and is not cached:
    the next request tries to load it again."""
    import gradio as gr

    from space.colorize_tab import ColorizeTab
    from space.limits import Limits

    tab = ColorizeTab(tmp_path / "no-such-model", Limits.detect())
    args = (str(media["video"]), [str(media["exemplar"])], "", *FAST_SETTINGS)
    for _ in range(2):
        with pytest.raises(gr.Error, match="colorization model could not be loaded .no model folder at"):
            tab.colorize(*args, progress=lambda *a, **k: None)
    assert not tab.pipeline.loaded


def test_a_colorize_job_opens_the_video_once_for_the_model(media, monkeypatch):
    """The job opens one `VideoReader`: its info is what the checks read, and the pipeline colours from
    it. The file is opened three times in all: that reader's probe (one frame decoded), the model's one
    pass over the frames, and the before/after frame (decoded from the start, up to that frame). Before
    the reader was shared, a job built 3 readers and opened the file 5 times."""
    from space.colorize_tab import ColorizeTab
    from space.limits import Limits

    real_init, real_open = VideoReader.__init__, av.open
    readers: list[str] = []
    opens: list[str] = []

    def counting_init(self, source, *args, **kwargs):
        readers.append(str(source))
        real_init(self, source, *args, **kwargs)

    def counting_open(file, *args, **kwargs):
        opens.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(VideoReader, "__init__", counting_init)
    monkeypatch.setattr(av, "open", counting_open)
    video = str(media["video"])
    tab = ColorizeTab(REPO_ROOT / "checkpoints" / "colormnet-lite", Limits.detect())
    video_path, (before, after), note = tab.colorize(
        video, [str(media["exemplar"])], "0", *FAST_SETTINGS, progress=lambda *a, **k: None
    )

    assert decode(video_path).shape[0] == NUM_FRAMES and before.shape == after.shape
    assert "keyframe" in note
    assert readers.count(video) == 1
    assert opens.count(video) == 3


def test_the_app_imports_only_the_pipelines_public_names():
    """space/ and app.py use `pipelines` and its systems' packages through their faces (`__all__`),
    never a module inside them: the pipelines can be reorganised without breaking the app."""
    import ast
    import importlib

    sources = [REPO_ROOT / "app.py", *sorted((REPO_ROOT / "space").glob("*.py"))]
    checked = 0
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.split(".")[0] == "pipelines"]
                assert not names, f"{source.name}: import {names} (use from pipelines import ...)"
            if not isinstance(node, ast.ImportFrom) or (node.module or "").split(".")[0] != "pipelines":
                continue
            assert node.module in PUBLIC_PACKAGES, f"{source.name}: from {node.module} import ..."
            public = importlib.import_module(node.module).__all__
            for alias in node.names:
                assert alias.name in public, f"{source.name}: {alias.name} is not in {node.module}.__all__"
                checked += 1
    assert checked > 10


def test_colorize_defaults_come_from_the_checkpoints_config(tmp_path):
    """The Advanced settings start at what the checkpoint's pipeline would use: its saved config
    (`ColorMNetPipeline.load_config`), and the pipeline's own defaults for a Hub repo id (not fetched:
    the app builds offline) and for keys an older config lacks."""
    import inspect
    import json
    from dataclasses import asdict

    from pipelines import ColorMNetPipeline
    from space.colorize_tab import ColorizeDefaults

    own = {name: p.default for name, p in inspect.signature(ColorMNetPipeline.__init__).parameters.items()}
    embedded = REPO_ROOT / "checkpoints" / "colormnet-lite"
    saved = ColorMNetPipeline.load_config(embedded)
    defaults = asdict(ColorizeDefaults.from_checkpoint(embedded))
    assert defaults == {name: saved[name] for name in defaults}
    assert asdict(ColorizeDefaults.from_checkpoint("hueflow/no-such-repo")) == {
        name: own[name] for name in defaults
    }

    older = {key: value for key, value in saved.items() if key != "top_k"}
    older["processing_size"] = own["processing_size"] + 64
    (tmp_path / "model_index.json").write_text(json.dumps(older))
    defaults = ColorizeDefaults.from_checkpoint(tmp_path)
    assert (defaults.top_k, defaults.processing_size) == (own["top_k"], own["processing_size"] + 64)


def test_processing_size_below_the_models_minimum_is_refused_in_the_pipelines_words():
    """Gradio's slider starts at `ColorMNetPipeline.min_processing_size`; a direct caller below it gets
    the pipeline's own error."""
    import gradio as gr

    from pipelines import ColorMNetPipeline
    from space.colorize_tab import check_colorize_inputs

    exemplar = colour_clip(1)[0]
    size = ColorMNetPipeline.min_processing_size
    check_colorize_inputs(NUM_FRAMES, [exemplar], [0], size)
    with pytest.raises(gr.Error, match=f"processing_size must be an integer of at least {size}") as error:
        check_colorize_inputs(NUM_FRAMES, [exemplar], [0], size - 16)
    assert "Frame indices" not in str(error.value)  # the hint of another field


def test_each_heavy_tab_runs_job_concurrency_jobs_at_once(tmp_path, monkeypatch):
    """The heavy events of the Colorize, Track, Generate and Video GAN tabs (each tab's own
    `concurrency_id`) run `Limits.job_concurrency` jobs at once: 1 on a CPU, 2 on a GPU, here 3 through
    HUEFLOW_JOB_CONCURRENCY. A tab's other events in that group (Generate's sample picks) share it."""
    from app import build_demo

    monkeypatch.setenv("HUEFLOW_JOB_CONCURRENCY", "3")
    monkeypatch.setenv("HUEFLOW_CACHE_DIR", str(tmp_path))
    demo = build_demo()
    groups: dict[str, set] = {}
    for fn in demo.fns.values():
        groups.setdefault(fn.concurrency_id, set()).add(fn.concurrency_limit)
    api_names = {fn.api_name: fn.concurrency_id for fn in demo.fns.values()}
    for api_name, group in [
        ("colorize", "colorize"),
        ("track", "track"),
        ("generate", "generate"),
        ("generate_videos", "video_gan"),
        ("interpolate_videos", "video_gan"),
    ]:
        assert api_names[api_name] == group
        assert groups[group] == {3}, (group, groups[group])
