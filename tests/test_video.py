"""Tests for pipelines.core.video; every clip is generated in tmp_path."""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from pipelines.core.video import (
    FrameSpool,
    VideoInputError,
    VideoReader,
    VideoWriter,
    as_video_reader,
    is_grayscale_image,
    load_image,
    write_video,
)

# H.264 at crf 18 on flat/smooth content stays within a few levels; allow margin for chroma subsampling.
CODEC_TOL = 12


def make_frames(num: int = 8, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Smooth, distinct frames: a colour gradient whose brightness changes per frame (codec friendly)."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num):
        r = 40 + 150 * xs / width
        g = 40 + 150 * ys / height
        b = np.full_like(r, 30 + 20 * t)
        frames.append(np.stack([r, g, b], axis=-1).astype(np.uint8))
    return frames


def write_h264(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """Encode `frames` as plain H.264 in the container `path`'s suffix names (no faststart, no audio)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, "rgb24")))
        container.mux(stream.encode(None))


def make_video_with_audio(path: Path, seconds: float = 2.0, fps: int = 25, sample_rate: int = 44100) -> None:
    """Write an mp4 with a 440 Hz sine AAC track, using PyAV directly (independent of VideoWriter)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate, layout="mono")
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
        for _ in range(int(seconds * fps)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), "rgb24")))
        container.mux(video.encode(None))


def audio_duration(path: Path) -> float | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


# ----------------------------------------------------------------------------------------------- round trip


def test_round_trip(tmp_path):
    frames = make_frames(10)
    out = write_video(frames, tmp_path / "out.mp4", fps=12)
    assert out == str(tmp_path / "out.mp4")

    reader = VideoReader(out)
    assert (reader.info.width, reader.info.height) == (64, 48)
    assert reader.info.fps == pytest.approx(12)
    assert reader.info.num_frames == len(reader) == 10
    assert reader.info.has_audio is False and reader.info.path == out

    decoded = list(reader)
    assert len(decoded) == 10
    for original, frame in zip(frames, decoded, strict=True):
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - original).mean() < 3
        assert np.abs(frame.astype(int) - original).max() <= CODEC_TOL


def test_ntsc_fps_round_trip(tmp_path):
    out = write_video(make_frames(3), tmp_path / "ntsc.mp4", fps=30000 / 1001)
    assert VideoReader(out).info.fps == pytest.approx(29.97, abs=1e-2)


def test_odd_size_is_padded_by_one_replicated_pixel(tmp_path):
    frame = make_frames(1, height=33, width=45)[0]
    out = write_video([frame, frame], tmp_path / "odd.mp4", fps=10)
    reader = VideoReader(out)
    assert (reader.info.height, reader.info.width) == (34, 46)
    decoded = next(iter(reader)).astype(int)
    assert np.abs(decoded[:33, :45] - frame).max() <= CODEC_TOL
    # The padding repeats the last row/column rather than adding a black border.
    assert np.abs(decoded[33, :45] - frame[32]).max() <= CODEC_TOL
    assert np.abs(decoded[:33, 45] - frame[:, 44]).max() <= CODEC_TOL


def test_audio_is_muxed_and_cut_to_video_length(tmp_path):
    source = tmp_path / "source.mp4"
    make_video_with_audio(source, seconds=2.0)
    assert VideoReader(source).info.has_audio

    # 1 s of video: the 2 s soundtrack must be cut to match.
    out = write_video(make_frames(10), tmp_path / "dubbed.mp4", fps=10, audio_from=str(source))
    assert VideoReader(out).info.has_audio
    assert audio_duration(Path(out)) == pytest.approx(1.0, abs=0.1)

    # Video longer than the soundtrack: all of the audio is kept.
    out = write_video(make_frames(30), tmp_path / "long.mp4", fps=10, audio_from=str(source))
    assert audio_duration(Path(out)) == pytest.approx(2.0, abs=0.1)


def test_audio_from_source_without_audio_gives_silent_video(tmp_path):
    silent = write_video(make_frames(3), tmp_path / "silent.mp4", fps=10)
    out = write_video(make_frames(3), tmp_path / "out.mp4", fps=10, audio_from=silent)
    assert VideoReader(out).info.has_audio is False


def test_audio_from_missing_file(tmp_path):
    with pytest.raises(VideoInputError, match="does not exist"):
        VideoWriter(tmp_path / "out.mp4", fps=10, audio_from=str(tmp_path / "nope.mp4"))


def test_gif_decodes_through_pyav(tmp_path):
    images = [Image.fromarray(frame) for frame in make_frames(5)]
    images[0].save(tmp_path / "anim.gif", save_all=True, append_images=images[1:], duration=100, loop=0)
    reader = VideoReader(tmp_path / "anim.gif")
    assert reader.info.fps == pytest.approx(10)
    assert len(list(reader)) == 5


def test_animated_webp_counts_as_video(tmp_path):
    images = [Image.fromarray(frame) for frame in make_frames(4)]
    images[0].save(
        tmp_path / "anim.webp", save_all=True, append_images=images[1:], duration=50, lossless=True
    )
    reader = VideoReader(tmp_path / "anim.webp")
    assert len(reader) == 4 and reader.info.fps == pytest.approx(20)
    frames = list(reader)
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)


# ----------------------------------------------------------------------------------------------- sources


def test_folder_natural_order_ignores_non_images(tmp_path):
    for index in (1, 2, 10):
        value = np.full((16, 24, 3), index * 10, np.uint8)
        Image.fromarray(value).save(tmp_path / f"frame{index}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / "._frame1.png").write_bytes(b"macOS metadata, not a png")
    (tmp_path / "sub.png").mkdir()

    reader = VideoReader(tmp_path, fps=8)
    assert (reader.info.num_frames, reader.info.width, reader.info.height) == (3, 24, 16)
    assert reader.info.fps == 8 and reader.info.path is None
    assert [int(frame[0, 0, 0]) for frame in reader] == [10, 20, 100]


def test_folder_default_fps(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.jpg")
    assert VideoReader(tmp_path).info.fps == 25


def test_list_of_pil_and_arrays(tmp_path):
    frames = make_frames(3)
    mixed = [Image.fromarray(frames[0]), frames[1], Image.fromarray(frames[2]).convert("L")]
    decoded = list(VideoReader(mixed))
    assert len(decoded) == 3
    np.testing.assert_array_equal(decoded[0], frames[0])
    np.testing.assert_array_equal(decoded[1], frames[1])
    assert decoded[2].shape == (48, 64, 3) and is_grayscale_image(decoded[2])


def test_rgb_array_input():
    frames = np.stack(make_frames(4))
    reader = VideoReader(frames)
    assert isinstance(reader, VideoReader)
    assert (reader.info.num_frames, reader.info.fps, reader.info.has_audio) == (4, 25, False)
    np.testing.assert_array_equal(np.stack(list(reader)), frames)


def test_grayscale_array_is_replicated():
    gray = np.random.default_rng(0).integers(0, 256, (3, 10, 12), dtype=np.uint8)
    frames = list(VideoReader(gray))
    assert len(frames) == 3 and frames[0].shape == (10, 12, 3)
    for channel in range(3):
        np.testing.assert_array_equal(frames[1][..., channel], gray[1])


def test_float_array_in_unit_range():
    frames = list(VideoReader(np.ones((2, 4, 4, 3), np.float32)))
    assert frames[0].dtype == np.uint8 and frames[0].max() == 255
    with pytest.raises(VideoInputError, match=r"\[0, 1\]"):
        list(VideoReader(np.full((2, 4, 4, 3), 200.0)))


def test_iterating_twice_restarts(tmp_path):
    out = write_video(make_frames(6), tmp_path / "v.mp4", fps=10)
    reader = VideoReader(out)
    first, second = list(reader), list(reader)
    assert len(first) == len(second) == 6
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_reading_is_lazy(tmp_path):
    out = write_video(make_frames(6), tmp_path / "v.mp4", fps=10)
    iterator = iter(VideoReader(out))
    assert next(iterator).shape == (48, 64, 3)  # one frame without decoding the rest
    # A second, independent pass can start while the first is still open.
    assert len(list(VideoReader(out))) == 6
    assert len(list(iterator)) == 5


def test_max_frames(tmp_path):
    out = write_video(make_frames(6), tmp_path / "v.mp4", fps=10)
    reader = VideoReader(out, max_frames=4)
    assert len(reader) == 4 and len(list(reader)) == 4
    assert len(list(VideoReader(np.stack(make_frames(3)), max_frames=10))) == 3
    with pytest.raises(VideoInputError, match="max_frames"):
        VideoReader(out, max_frames=0)


# ----------------------------------------------------------------------------------------------- errors


def test_missing_path(tmp_path):
    with pytest.raises(VideoInputError, match="does not exist"):
        VideoReader(tmp_path / "missing.mp4")


@pytest.mark.parametrize("name", ["still.png", "still.jpg", "still.webp"])
def test_image_given_as_video(tmp_path, name):
    Image.fromarray(make_frames(1)[0]).save(tmp_path / name)
    with pytest.raises(VideoInputError, match="is an image, not a video"):
        VideoReader(tmp_path / name)


def test_unsupported_extension(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VideoInputError, match="unsupported file type '.txt'"):
        VideoReader(tmp_path / "notes.txt")


def test_random_bytes_mp4(tmp_path):
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(VideoInputError, match="could not decode video"):
        VideoReader(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoInputError, match="empty"):
        VideoReader(path)


def test_truncated_mp4(tmp_path):
    # Without faststart the index (moov) sits at the end, so cutting the file loses it.
    path = tmp_path / "full.mp4"
    write_h264(path, make_frames(5))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoInputError, match="corrupt"):
        VideoReader(truncated)


def test_truncated_mkv_warns_and_keeps_the_frames_that_decode(tmp_path):
    # Matroska keeps the duration in its header, so a cut-off file still opens and decodes its first frames.
    path = tmp_path / "full.mkv"
    write_h264(path, make_frames(40))
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size * 3 // 4])
    reader = VideoReader(truncated)
    assert len(reader) == 40
    with pytest.warns(UserWarning, match=r"declares 40 frames but only \d+ could be decoded"):
        frames = list(reader)
    assert 0 < len(frames) < 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole file, or a max_frames prefix, reads without a warning
        assert len(list(VideoReader(path))) == 40
        assert len(list(VideoReader(truncated, max_frames=2))) == 2


def test_empty_folder(tmp_path):
    with pytest.raises(VideoInputError, match="is empty"):
        VideoReader(tmp_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no frames here")
    with pytest.raises(VideoInputError, match="contains no images"):
        VideoReader(tmp_path)


def test_folder_with_mismatched_sizes(tmp_path):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "0.png")
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(tmp_path / "1.png")
    with pytest.raises(VideoInputError, match="'1.png' is 20x16 but '0.png' is 16x16"):
        VideoReader(tmp_path)


def test_list_errors():
    with pytest.raises(VideoInputError, match="empty"):
        VideoReader([])
    with pytest.raises(VideoInputError, match="frame 1 is"):
        VideoReader([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)])


@pytest.mark.parametrize("shape", [(4, 4), (2, 4, 4, 2), (2, 4, 4, 3, 1), (0, 4, 4, 3)])
def test_bad_array_shapes(shape):
    with pytest.raises(VideoInputError):
        VideoReader(np.zeros(shape, np.uint8))


def test_unsupported_source_type():
    with pytest.raises(VideoInputError, match="unsupported video source"):
        VideoReader(42)


def test_writer_failure_leaves_no_files(tmp_path):
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out_dir / "out.mp4", fps=10) as writer:
            for frame in make_frames(3):
                writer.write(frame)
            raise RuntimeError("boom")
    assert list(out_dir.iterdir()) == []


def test_writer_keeps_existing_output_on_failure(tmp_path):
    out = write_video(make_frames(2), tmp_path / "out.mp4", fps=10)
    before = Path(out).read_bytes()
    with pytest.raises(VideoInputError, match="share the first frame's size"):
        write_video([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], out, fps=10)
    assert Path(out).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_without_frames_saves_nothing(tmp_path):
    with pytest.raises(VideoInputError, match="no frames"):
        write_video([], tmp_path / "none.mp4", fps=10)
    assert list(tmp_path.iterdir()) == []


def test_writer_abort_and_closed_state(tmp_path):
    writer = VideoWriter(tmp_path / "a.mp4", fps=10)
    writer.write(make_frames(1)[0])
    assert writer.frames_written == 1
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(make_frames(1)[0])


def test_writer_argument_validation(tmp_path):
    with pytest.raises(VideoInputError, match="fps"):
        VideoWriter(tmp_path / "a.mp4", fps=0)
    with pytest.raises(VideoInputError, match="crf"):
        VideoWriter(tmp_path / "a.mp4", fps=10, crf=60)


# ----------------------------------------------------------------------------------------------- images


def test_load_image_variants(tmp_path):
    rgb = make_frames(1)[0]
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(load_image(str(tmp_path / "rgb.png")), rgb)
    np.testing.assert_array_equal(load_image(Image.fromarray(rgb)), rgb)
    np.testing.assert_array_equal(load_image(rgb), rgb)

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba), rgb)

    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    loaded = load_image(tmp_path / "gray.png")
    assert loaded.shape == (48, 64, 3)
    np.testing.assert_array_equal(loaded[..., 2], gray)
    assert load_image(gray[..., None]).shape == (48, 64, 3)


def test_load_16bit_grayscale_png_is_rescaled(tmp_path):
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").min() == 255


def test_load_image_errors(tmp_path):
    with pytest.raises(VideoInputError, match="does not exist"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(VideoInputError, match="is a folder"):
        load_image(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"definitely not a png")
    with pytest.raises(VideoInputError, match="could not read"):
        load_image(tmp_path / "bad.png")
    Image.fromarray(make_frames(1)[0]).save(tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:300])
    with pytest.raises(VideoInputError):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(VideoInputError):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_is_grayscale_image():
    gray = np.repeat(np.arange(48, dtype=np.uint8).reshape(6, 8, 1), 3, axis=2)
    assert is_grayscale_image(gray)
    assert is_grayscale_image(gray[..., 0])
    nearly = gray.copy()
    nearly[0, 0, 1] += 2
    assert is_grayscale_image(nearly)
    assert not is_grayscale_image(nearly, tol=1)
    colour = gray.copy()
    colour[2, 3] = (200, 10, 10)
    assert not is_grayscale_image(colour)
    # Differences are computed without uint8 wrap-around.
    assert not is_grayscale_image(np.array([[[0, 255, 0]]], np.uint8))


def test_as_video_reader_reuses_an_open_reader(tmp_path, monkeypatch):
    out = write_video(make_frames(6), tmp_path / "v.mp4", fps=10)
    opened = VideoReader(out, max_frames=5)
    opens = []
    monkeypatch.setattr(av, "open", lambda *a, _open=av.open, **k: opens.append(a) or _open(*a, **k))
    limited = as_video_reader(opened, max_frames=3)
    assert opens == []  # not opened again to be checked
    assert len(limited) == 3 and len(list(limited)) == 3 and len(opens) == 1  # one pass, one decode
    assert opened.max_frames == 5 and len(as_video_reader(opened, max_frames=9)) == 5  # caller's unchanged
    assert len(as_video_reader(out, max_frames=2)) == 2
    with pytest.raises(VideoInputError, match="max_frames"):
        as_video_reader(opened, max_frames=0)


def test_frame_spool_keeps_frames_exactly_on_disk_until_closed():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(3)]
    with FrameSpool() as spool:
        for index, frame in reversed(list(enumerate(frames))):
            spool.put(index, frame)
        for index, frame in enumerate(frames):
            np.testing.assert_array_equal(spool.get(index), frame)
        spool.put(1, frames[0])  # replaced
        np.testing.assert_array_equal(spool.get(1), frames[0])
        with pytest.raises(KeyError, match="no frame 3"):
            spool.get(3)
        folder = Path(spool._folder.name)
        assert len(list(folder.iterdir())) == 3
    assert not folder.exists()
