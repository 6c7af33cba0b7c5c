"""TGANPipeline as a user loads it (`from_pretrained` of a saved folder) and `export_videos`, its GIF / mp4
writer: tiny configs saved to a temporary folder (a second or two on one CPU thread), and one check of
the embedded `checkpoints/tgan-moving-digits` model. Written files are
read back with Pillow and PyAV, not with the code under test."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import PIL.Image
import pytest
import torch
from PIL import ImageSequence

from pipelines import TGANPipeline
from pipelines.tgan import TGANImageGenerator, TGANTemporalGenerator, export_videos

FRAMES, SIZE, Z = 4, 16, 8
EMBEDDED_MODEL = Path(__file__).resolve().parent.parent / "checkpoints" / "tgan-moving-digits"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """A tiny untrained TGAN saved as a model folder. The weights are large (init_scale), so frames vary
    with the latents instead of sitting at mid-grey."""
    torch.manual_seed(0)
    temporal = TGANTemporalGenerator(
        frames=FRAMES, z_slow_dim=Z, z_fast_dim=Z, channels=(8, 8), init_scale=0.5
    )
    image = TGANImageGenerator(z_slow_dim=Z, z_fast_dim=Z, image_size=SIZE, base_channels=16, init_scale=0.5)
    folder = tmp_path_factory.mktemp("tiny-tgan")
    TGANPipeline(temporal, image).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pipe(tiny_folder) -> TGANPipeline:
    pipe = TGANPipeline.from_pretrained(tiny_folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gif_frames(path: str | Path) -> tuple[list[np.ndarray], PIL.Image.Image]:
    """Every frame of a GIF as a grey (H, W) array when it is grey, else RGB; and the image (for its info)."""
    with PIL.Image.open(path) as image:
        assert image.format == "GIF"
        frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
        info = dict(image.info)
    grey = all((frame[..., 0] == frame[..., 2]).all() for frame in frames)
    return [frame[..., 0] if grey else frame for frame in frames], info


def gif_durations(path: str | Path) -> list[int]:
    with PIL.Image.open(path) as image:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(image)]


def mp4_frames(path: str | Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        return frames, float(stream.average_rate)


def assert_same_clips(clips: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float rounding: clips rendered in batches of other sizes (PyTorch's kernels block the
    work differently) may round a rare pixel to the next grey level."""
    assert clips.shape == expected.shape
    difference = np.abs(clips.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def enlarged(frames: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (..., H, W, C), written independently of the code under test."""
    return np.kron(frames[..., 0], np.ones((scale, scale), np.uint8))


# --- the pipeline, loaded from a folder --------------------------------------------------------------


def test_from_pretrained_gives_clips_of_the_saved_shape(pipe):
    frames = pipe(num_videos=3, generator=seeded(0), output_type="np").frames
    assert frames.shape == (3, FRAMES, SIZE, SIZE, 1) and frames.dtype == np.uint8
    assert frames.std() > 10  # the frames show something, not flat grey
    longer = pipe(num_videos=2, generator=seeded(0), num_frames=7).frames
    assert longer.shape == (2, 7, SIZE, SIZE, 1)


def test_same_generator_seed_same_clips(pipe):
    first = pipe(num_videos=2, generator=seeded(3)).frames
    assert np.array_equal(first, pipe(num_videos=2, generator=seeded(3)).frames)
    assert not np.array_equal(first, pipe(num_videos=2, generator=seeded(4)).frames)
    # The first clips of a seed do not depend on how many are drawn (the Video GAN tab relies on it).
    assert_same_clips(pipe(num_videos=5, generator=seeded(3)).frames[:2], first)


def test_interpolation_ends_on_the_two_seeds_clips(pipe):
    path = pipe(interpolate=(5, 9, 4)).frames
    assert path.shape == (4, FRAMES, SIZE, SIZE, 1)
    assert_same_clips(path[0], pipe(generator=seeded(5)).frames[0])
    assert_same_clips(path[-1], pipe(generator=seeded(9)).frames[0])
    assert not np.array_equal(path[1], path[0]) and not np.array_equal(path[1], path[-1])


# --- export_videos -----------------------------------------------------------------------------------


def test_one_clip_as_gif_keeps_every_frame_and_grey_level(pipe, tmp_path):
    clip = pipe(generator=seeded(1)).frames[0]  # (T, H, W, 1)
    path = export_videos(clip, tmp_path / "clip.gif", fps=8, scale=3)
    assert path == str(tmp_path / "clip.gif")
    frames, info = gif_frames(path)
    assert len(frames) == FRAMES
    assert info["loop"] == 0  # loops forever
    for frame, expected in zip(frames, enlarged(clip, 3), strict=True):
        assert frame.shape == (3 * SIZE, 3 * SIZE) and np.array_equal(frame, expected)
    # 8 fps is 12.5 centiseconds a frame: the loop lasts exactly T / fps seconds.
    assert sum(gif_durations(path)) == 1000 * FRAMES // 8


def test_default_scale_makes_small_frames_at_least_128_px(pipe, tmp_path):
    clip = pipe(generator=seeded(1)).frames[0]
    frames, _ = gif_frames(export_videos(clip, tmp_path / "clip.gif"))
    assert frames[0].shape == (128, 128)  # 16 px x 8
    assert np.array_equal(frames[2], enlarged(clip, 8)[2])


def test_grid_of_clips_tiles_them_in_step(pipe, tmp_path):
    videos = pipe(num_videos=5, generator=seeded(2)).frames  # 3 per row: 2 rows, one empty cell
    scale, gutter = 2, 3
    frames, _ = gif_frames(
        export_videos(videos, tmp_path / "grid.gif", scale=scale, gutter=gutter, gutter_color=200)
    )
    assert len(frames) == FRAMES
    side = SIZE * scale
    assert frames[0].shape == (gutter + 2 * (side + gutter), gutter + 3 * (side + gutter))
    for index, video in enumerate(videos):
        row, column = divmod(index, 3)
        top, left = gutter + row * (side + gutter), gutter + column * (side + gutter)
        tiles = np.stack([frame[top : top + side, left : left + side] for frame in frames])
        assert np.array_equal(tiles, enlarged(video, scale)), index
    assert (frames[0][:gutter] == 200).all() and (frames[0][:, :gutter] == 200).all()
    empty = frames[0][gutter + side + gutter :, gutter + 2 * (side + gutter) :]
    assert (empty == 200).all()  # the last row's empty cell is border

    two_columns, _ = gif_frames(export_videos(videos, tmp_path / "columns.gif", scale=1, columns=2))
    assert two_columns[0].shape == (2 + 3 * (SIZE + 2), 2 + 2 * (SIZE + 2))


def test_mp4_reads_back_with_every_frame(pipe, tmp_path):
    videos = pipe(num_videos=4, generator=seeded(2)).frames
    path = export_videos(videos, tmp_path / "out" / "grid.mp4", fps=12, scale=2, gutter=2)
    frames, fps = mp4_frames(path)
    side = 2 * SIZE
    assert frames.shape == (FRAMES, 2 + 2 * (side + 2), 2 + 2 * (side + 2), 3) and fps == 12
    # H.264 is lossy: the tiles come back close to the clips, not exactly.
    tile = frames[:, 2 + side + 2 : 2 + 2 * side + 2, 2 : 2 + side, 0].astype(int)  # clip 2: row 1, column 0
    assert np.abs(tile - enlarged(videos[2], 2)).mean() < 6


def test_every_output_type_writes_the_same_gif(pipe, tmp_path):
    expected, _ = gif_frames(
        export_videos(pipe(num_videos=2, generator=seeded(6)).frames, tmp_path / "np.gif")
    )
    for output_type in ("pt", "pil"):
        frames = pipe(num_videos=2, generator=seeded(6), output_type=output_type).frames
        written, _ = gif_frames(export_videos(frames, tmp_path / f"{output_type}.gif"))
        assert all(np.array_equal(a, b) for a, b in zip(written, expected, strict=True)), output_type


def test_colour_frames_and_a_colour_border(tmp_path):
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (2, 3, 8, 8, 3), dtype=np.uint8)
    frames, _ = gif_frames(export_videos(videos, tmp_path / "c.gif", scale=1, gutter_color=(38, 70, 120)))
    assert len(frames) == 3 and frames[0].shape == (2 + 8 + 2, 2 + 2 * (8 + 2), 3)  # one row of two
    assert (np.abs(frames[0][0, 0].astype(int) - (38, 70, 120)) <= 8).all()  # GIF quantizes colour
    mp4, _ = mp4_frames(export_videos(videos[0], tmp_path / "c.mp4", scale=2))
    assert mp4.shape == (3, 16, 16, 3)


@pytest.mark.parametrize("name", ["clip.avi", "clip.png", "clip.webm", "clip"])
def test_other_extensions_are_refused_before_anything_is_written(pipe, tmp_path, name):
    with pytest.raises(ValueError, match=r"writes \.gif or \.mp4"):
        export_videos(pipe(generator=seeded(0)).frames, tmp_path / name)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("frames", "options", "message"),
    [
        (np.zeros((2, 4, 8, 8, 2), np.uint8), {}, "C = 1 .grey. or 3"),
        (np.zeros((8, 8), np.uint8), {}, r"expected clips \(V, T, H, W, C\)"),
        (np.full((4, 8, 8, 1), 2.0), {}, r"Float frames must lie in \[0, 1\]"),
        (np.zeros((4, 8, 8, 1), np.int32), {}, "dtype int32"),
        ([], {}, "empty"),
        ([[PIL.Image.new("L", (8, 8))] * 3, [PIL.Image.new("L", (8, 8))] * 2], {}, "differ in length"),
        (np.zeros((4, 8, 8, 1), np.uint8), {"fps": 0}, "fps must be a positive number"),
        (np.zeros((4, 8, 8, 1), np.uint8), {"fps": 60}, "at most 50 fps"),
        (np.zeros((4, 8, 8, 1), np.uint8), {"scale": 0}, "scale must be an integer of at least 1"),
        (np.zeros((4, 8, 8, 1), np.uint8), {"gutter_color": 300}, "gutter_color"),
    ],
    ids=["two-channels", "one-image", "float-range", "int32", "empty", "unequal-clips", "fps", "gif-fps",
         "scale", "gutter-colour"],
)  # fmt: skip
def test_bad_frames_and_options_are_refused_clearly(tmp_path, frames, options, message):
    with pytest.raises(ValueError, match=message):
        export_videos(frames, tmp_path / "out.gif", **options)
    assert not list(tmp_path.iterdir())  # nothing half-written


# --- the embedded model ------------------------------------------------------------------------------


def test_embedded_model_makes_16_frame_32px_grey_clips(tmp_path):
    pipe = TGANPipeline.from_pretrained(EMBEDDED_MODEL)
    pipe.set_progress_bar_config(disable=True)
    videos = pipe(num_videos=4, generator=seeded(0)).frames
    assert videos.shape == (4, 16, 32, 32, 1) and videos.dtype == np.uint8
    assert np.array_equal(videos, pipe(num_videos=4, generator=seeded(0)).frames)
    # Trained, not freshly initialised: every clip has a bright digit on a dark ground, and it moves.
    assert all(clip.max() > 128 and np.median(clip) < 64 for clip in videos)
    assert all(np.abs(np.diff(clip.astype(float), axis=0)).mean() > 1 for clip in videos)
    path = pipe(interpolate=(0, 1, 3)).frames
    assert_same_clips(path[0], videos[0])
    assert_same_clips(path[-1], pipe(generator=seeded(1)).frames[0])
    frames, _ = gif_frames(export_videos(videos, tmp_path / "embedded.gif"))
    assert len(frames) == 16 and frames[0].shape == (2 + 2 * (128 + 2),) * 2
    mp4, _ = mp4_frames(export_videos(videos, tmp_path / "embedded.mp4"))
    assert mp4.shape == (16, 2 + 2 * (128 + 2), 2 + 2 * (128 + 2), 3)
