"""Issue 21, part A: odd inputs at the video I/O and the command line are refused with one clear line, or
handled right, never silently wrong. Every file is made here, in tmp_path, with PyAV (docs/bad-input.md
lists the messages)."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import make_colour_clip, make_tiny_colormnet
from PIL import Image

from pipelines.cli import build_parser
from pipelines.cli import main as cli_main
from pipelines.colorization import ExemplarError
from pipelines.core.hub import device_problem
from pipelines.core.video import VideoInputError, VideoReader, write_video

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_MODEL = ["--model", "/nonexistent/model"]  # a request refused before any work never gets to load it


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m pipelines ...` as a user runs it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def cli(*args: str) -> int:
    """The CLI in this process (fast): its exit status, argparse's included."""
    try:
        return cli_main(list(args))
    except SystemExit as exit_:
        return exit_.code


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("model") / "tiny-colormnet"
    make_tiny_colormnet().save_pretrained(folder)
    return str(folder)


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    write_video(make_colour_clip(num_frames=4, height=24, width=32), path, fps=8)
    return path


@pytest.fixture
def exemplar(tmp_path) -> str:
    path = tmp_path / "exemplar.png"
    Image.fromarray(make_colour_clip(num_frames=1, height=24, width=32)[0]).save(path)
    return str(path)


def encode(path: Path, frames: list[np.ndarray], pts: list[int], time_base: Fraction, rotation: int = 0):
    """H.264 with the given timestamps and, like a phone, a display matrix rotating it by `rotation` degrees
    counter-clockwise (the pixels themselves stay as recorded)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.codec_context.time_base = time_base
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for frame, stamp in zip(frames, pts, strict=True):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = stamp, time_base
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


# 1 ---------------------------------------------------------------------------------------------------------


def test_output_path_equal_to_the_input_is_refused_before_any_work(clip, exemplar, tmp_path):
    original = clip.read_bytes()
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    result = run_cli("colorize", str(clip), "--exemplar", exemplar, "-o", str(clip), *NO_MODEL)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: output path '{clip}' is the input video"), result.stderr
    # The same file by another name (a link, a roundabout path): checked in this process, which is faster.
    for output in (link, tmp_path / "." / "clip.mp4"):
        assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", str(output), *NO_MODEL) == 2
    assert clip.read_bytes() == original


def test_pipeline_refuses_to_write_over_its_input(clip, exemplar):
    pipe = make_tiny_colormnet()
    with pytest.raises(VideoInputError, match="is the input video"):
        pipe(str(clip), exemplars=exemplar, output_path=clip)


# 2 ---------------------------------------------------------------------------------------------------------


def test_phone_rotation_is_applied_and_the_output_plays_upright(tmp_path, model, capsys):
    # A landscape sensor's 32x24 frames, stored with "turn 90 degrees clockwise" (-90 counter-clockwise): the
    # video is 24 wide and 32 tall as played. A bright block at the stored top-left is at the top-right then.
    frames = [np.full((24, 32, 3), (60 + 10 * t, 90, 140), np.uint8) for t in range(4)]
    for frame in frames:
        frame[:6, :8] = 250
    phone = tmp_path / "phone.mp4"
    encode(phone, frames, pts=[0, 1, 2, 3], time_base=Fraction(1, 10), rotation=-90)

    reader = VideoReader(phone)
    assert (reader.info.width, reader.info.height) == (24, 32)
    upright = next(iter(reader))
    assert upright.shape == (32, 24, 3) and upright[:8, -6:].min() > 200 and upright[-8:, :6].max() < 200

    exemplar = tmp_path / "upright_exemplar.png"
    Image.fromarray(upright).save(exemplar)
    out = tmp_path / "out.mp4"
    assert cli("colorize", str(phone), "--exemplar", str(exemplar), "-o", str(out), "--model", model) == 0
    with av.open(str(out)) as container:
        first = next(container.decode(video=0))
        assert first.rotation == 0  # upright pixels, no matrix left for a player to apply again
        image = first.to_ndarray(format="rgb24").mean(-1)
    assert image.shape == (32, 24)
    assert image[:6, -8:].mean() > 200 and image[-6:, :8].mean() < 200


# 3 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_keeps_the_input_timestamps(tmp_path, model, exemplar, suffix, recwarn):
    # 8 frames over 1.54 s with a 0.7 s pause: retimed to a constant rate, the pause would be lost.
    frames = list(make_colour_clip(num_frames=8, height=24, width=32))
    source = tmp_path / f"vfr{suffix}"
    encode(source, frames, pts=[0, 100, 200, 900, 1000, 1100, 1500, 1540], time_base=Fraction(1, 1000))
    times = frame_times(source)
    assert times == pytest.approx([0, 0.1, 0.2, 0.9, 1.0, 1.1, 1.5, 1.54])
    # Matroska stores no frame count; duration x average rate would say 16 frames and call the file cut short.
    assert len(VideoReader(source)) == 8

    out = tmp_path / "out.mp4"
    keyframe_7 = ["--exemplar", exemplar, "--exemplar-frame", "7"]
    assert cli("colorize", str(source), *keyframe_7, "-o", str(out), "--model", model) == 0
    assert frame_times(out) == pytest.approx(times, abs=1e-3)
    assert not [w for w in recwarn if "frames but only" in str(w.message)]


# 4 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.avi", "out.gif", "out.webm", "out.xyz", "out"])
def test_output_extensions_the_writer_cannot_make_are_refused(clip, exemplar, tmp_path, capsys, name):
    out = tmp_path / name
    assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", str(out), *NO_MODEL) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: cannot write the video '{name}'") and ".mp4, .m4v, .mov, .mkv" in error
    assert not out.exists()
    with pytest.raises(VideoInputError, match="Name it with one of"):
        write_video(make_colour_clip(num_frames=2), out, fps=8)
    assert not out.exists()


def test_an_mkv_output_is_a_matroska_file(clip, exemplar, tmp_path, model):
    out = tmp_path / "out.mkv"
    assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", str(out), "--model", model) == 0
    with av.open(str(out)) as container:
        assert "matroska" in container.format.name
        assert len(list(container.decode(video=0))) == 4


# 5 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_image_renamed_mp4_is_refused_as_an_image(tmp_path, exemplar, capsys, fmt):
    fake, out = tmp_path / "holiday.mp4", str(tmp_path / "out.mp4")
    Image.fromarray(make_colour_clip(num_frames=1)[0]).save(fake, format=fmt)
    assert cli("colorize", str(fake), "--exemplar", exemplar, "-o", out, *NO_MODEL) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: '{fake}' is a {fmt} image, not a video")
    with pytest.raises(VideoInputError, match="image, not a video"):
        VideoReader(fake)


# 6 ---------------------------------------------------------------------------------------------------------


def test_negative_exemplar_frame_other_than_minus_one_is_an_error(clip, exemplar, tmp_path, capsys):
    out = str(tmp_path / "out.mp4")
    assert cli("colorize", str(clip), "--exemplar", exemplar, "--exemplar-frame", "-5", "-o", out) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: argument --exemplar-frame: '-5' is not a frame index")
    # -1 stays the documented free reference.
    common = ["colorize", "clip.mp4", "--exemplar", "x.png", "-o", "out.mp4"]
    assert build_parser().parse_args([*common, "--exemplar-frame", "-1"]).exemplar_frame == [None]
    assert build_parser().parse_args([*common, "--exemplar-frame", "3"]).exemplar_frame == [3]


@pytest.mark.parametrize("size", ["0", "7", "10000", "-5", "big"])
def test_processing_size_must_be_in_the_pipelines_range(clip, exemplar, tmp_path, capsys, size):
    out = str(tmp_path / "out.mp4")
    assert cli("colorize", str(clip), "--exemplar", exemplar, "--processing-size", size, "-o", out) == 2
    error = capsys.readouterr().err
    assert error.startswith(
        "error: argument --processing-size: must be a whole number of pixels from 64 to 2048"
    )
    smallest = ["colorize", "c.mp4", "--exemplar", "x.png", "-o", "o.mp4", "--processing-size", "64"]
    assert build_parser().parse_args(smallest).processing_size == 64


# 7 ---------------------------------------------------------------------------------------------------------


def test_a_video_under_12_pixels_is_refused_with_a_message(tmp_path, exemplar, capsys):
    small, out = tmp_path / "small.mp4", str(tmp_path / "out.mp4")
    write_video(make_colour_clip(num_frames=3, height=10, width=10), small, fps=8)
    assert cli("colorize", str(small), "--exemplar", exemplar, "-o", out, *NO_MODEL) == 2
    assert capsys.readouterr().err.startswith(
        "error: the video is 10x10 pixels; the pipelines need at least 12"
    )
    # The Python API says the same instead of OpenCV's "(-201:Incorrect size of input array)".
    with pytest.raises(VideoInputError, match="at least 12 pixels"):
        make_tiny_colormnet()(str(small), exemplars=exemplar)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write to: a read-only folder, or for root (whom permissions do not
    stop) /sys, which the kernel keeps read-only; skips where there is none."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            (candidate / ".probe").touch()
            (candidate / ".probe").unlink()
        except OSError:
            return candidate
    pytest.skip("no unwritable folder here")


def test_output_in_an_unwritable_folder_is_refused_before_any_work(clip, exemplar, tmp_path, capsys):
    folder = unwritable_folder(tmp_path)
    out = folder / "out.mp4"
    try:
        assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", str(out), *NO_MODEL) == 2
    finally:
        (tmp_path / "read-only").chmod(0o755)
    assert capsys.readouterr().err.startswith(f"error: cannot write to the folder '{folder}'")


def test_output_that_is_an_existing_folder_is_refused_before_any_work(clip, exemplar, tmp_path, capsys):
    folder = tmp_path / "results.mp4"  # a folder, even with a video's name
    folder.mkdir()
    assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", str(folder), *NO_MODEL) == 2
    assert capsys.readouterr().err.startswith(f"error: output path '{folder}' is a folder")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_is_a_message(clip, exemplar, tmp_path, capsys):
    out = str(tmp_path / "out.mp4")
    assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", out, "--device", "cuda", *NO_MODEL) == 2
    assert capsys.readouterr().err.startswith("error: --device cuda: this machine has no usable cuda device")


def test_pipe_to_a_device_this_machine_lacks_is_a_message():
    pipe = make_tiny_colormnet()
    if not device_problem("cuda"):
        pytest.skip("this machine has a usable cuda device")
    with pytest.raises(ValueError, match=r"pipe.to\('cuda'\): this machine has no usable cuda device"):
        pipe.to("cuda")
    with pytest.raises(ValueError, match="'gpu0' is not a device name"):
        pipe.to(device="gpu0")
    assert pipe.to("cpu") is pipe


def test_device_that_is_not_a_device_name(clip, exemplar, tmp_path, capsys):
    out = str(tmp_path / "out.mp4")
    assert cli("colorize", str(clip), "--exemplar", exemplar, "-o", out, "--device", "gpu0", *NO_MODEL) == 2
    assert capsys.readouterr().err.startswith("error: --device gpu0: 'gpu0' is not a device name")


# 8 ---------------------------------------------------------------------------------------------------------


def test_every_input_error_exits_2_with_one_error_line(clip, exemplar, tmp_path, capsys):
    out = str(tmp_path / "out.mp4")
    # The exemplar / frame-count mismatch, as a user runs it (one subprocess: each costs seconds).
    two_exemplars = ["--exemplar", exemplar, "--exemplar", exemplar, "--exemplar-frame", "0"]
    result = run_cli("colorize", str(clip), *two_exemplars, "-o", out, *NO_MODEL)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()] and result.stderr.startswith("error: Got 2")
    # The other kinds, in this process: the pipeline's checks, ours, and argparse's own (no usage block).
    cases = [
        ["colorize", str(clip), "--exemplar", exemplar, "--exemplar-frame", "9", "-o", out, *NO_MODEL],
        ["colorize", str(clip), "--exemplar", exemplar, "--processing-size", "7", "-o", out],
        ["colorize", str(clip), "--exemplar", exemplar, "--max-frames", "0", "-o", out],
        ["colorize", str(clip), "-o", out],
        ["transfer", str(clip), "--edited-frame", exemplar, "--frame-index", "9", "-o", out, *NO_MODEL],
    ]
    for args in cases:
        assert cli(*args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not Path(out).exists()


# 9 ---------------------------------------------------------------------------------------------------------


def test_a_pipelines_pt_output_is_accepted_as_video_input():
    pipe = make_tiny_colormnet()
    clip = make_colour_clip(num_frames=3, height=24, width=32)
    frames = pipe(clip, exemplars=clip[0], output_type="pt").frames  # float (T, 3, H, W) in [0, 1]
    assert frames.shape == (3, 3, 24, 32) and frames.dtype == torch.float32
    again = pipe(frames, exemplars=clip[0], output_type="np").frames
    assert again.shape == (3, 24, 32, 3)
    # The other layouts a user may hold: channels last, uint8, grayscale (T, H, W).
    for video in (frames.permute(0, 2, 3, 1), (frames * 255).round().to(torch.uint8), frames[:, 0]):
        reader = VideoReader(video)
        assert (reader.info.num_frames, reader.info.height, reader.info.width) == (3, 24, 32)
        assert next(iter(reader)).shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("video", "message"),
    [
        (
            torch.linspace(-1, 1, 3 * 3 * 24 * 32).reshape(3, 3, 24, 32),
            r"values in \[-1, 1\]; a float tensor must lie in \[0, 1\]",
        ),
        (torch.zeros(3, 3, 24, 32, dtype=torch.int64), "dtype torch.int64; expected float in"),
        (torch.rand(1, 3, 3, 24, 32), r"shape \(1, 3, 3, 24, 32\); expected \(T, C, H, W\) or"),
        (torch.rand(3, 2, 24, 32), r"shape \(3, 2, 24, 32\); expected"),
    ],
)
def test_a_tensor_of_the_wrong_shape_or_dtype_is_refused_clearly(video, message):
    with pytest.raises(VideoInputError, match=message):
        VideoReader(video)


# 10 --------------------------------------------------------------------------------------------------------


def test_a_url_is_reported_as_a_url_not_a_mangled_path(clip, exemplar, tmp_path, capsys):
    url = "https://example.com/x.mp4"
    assert cli("colorize", url, "--exemplar", exemplar, "-o", str(tmp_path / "out.mp4"), *NO_MODEL) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: video source '{url}' is a URL") and "Download the file first" in error
    assert "https:/example" not in error
    # An exemplar given as a URL, through the Python API: the same plain message.
    with pytest.raises(VideoInputError, match="image 'http://example.com/colours.jpg' is a URL"):
        make_tiny_colormnet()(str(clip), exemplars="http://example.com/colours.jpg")


# 11 --------------------------------------------------------------------------------------------------------


def test_a_keyframe_of_another_aspect_ratio_is_refused_and_one_of_another_size_is_resized(
    clip, model, tmp_path, capsys
):
    video = make_colour_clip(num_frames=3, height=24, width=32)
    pipe = make_tiny_colormnet()
    square = video[0, :, 4:28]  # a 24x24 crop of frame 0: not that frame, uncropped
    with pytest.raises(ExemplarError, match=r"Exemplar 1 is tied to frame 0 but is 24x24 \(aspect 1.000\)"):
        pipe(video, exemplars=square, exemplar_frames=[0])
    # As a free reference the crop is fine: it is aligned to the frame that shows its scene.
    assert pipe(video, exemplars=square, output_type="np").frames.shape == (3, 24, 32, 3)
    # The same aspect at twice the size: resized to the video's, and said so.
    larger = np.asarray(Image.fromarray(video[0]).resize((64, 48)))
    with pytest.warns(UserWarning, match=r"is 64x48 and the video 32x24: resizing the exemplar"):
        pipe(video, exemplars=larger, exemplar_frames=[0])
    # The command line says the same in one line, exit 2, before any frame is coloured.
    crop = tmp_path / "crop.png"
    Image.fromarray(square).save(crop)
    out = tmp_path / "out.mp4"
    args = ["colorize", str(clip), "--exemplar", str(crop), "--exemplar-frame", "0", "-o", str(out)]
    capsys.readouterr()
    assert cli(*args, "--model", model) == 2
    last_line = capsys.readouterr().err.splitlines()[-1]  # after the loading bar
    assert last_line.startswith("error: Exemplar 1 is tied to frame 0 but is 24x24")
    assert not out.exists()


@pytest.mark.parametrize("frames", [[1.5], 1.5, ["0"], [True]])
def test_exemplar_frames_that_are_not_frame_numbers_are_refused(frames):
    video = make_colour_clip(num_frames=3, height=24, width=32)
    with pytest.raises(ValueError, match=r"frame index .* is not a frame number: give an integer"):
        make_tiny_colormnet()(video, exemplars=video[0], exemplar_frames=frames)
