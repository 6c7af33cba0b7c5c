"""Loading by Hub repo id from the local cache (offline), the CLI, and `publish --dry-run`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import make_colour_clip
from PIL import Image
from test_colorization import _mux_sine_audio

from pipelines import ColorMNetPipeline, PretrainedLoadError
from pipelines.cli import main as cli_main
from pipelines.core.hub import resolve_pretrained_path
from pipelines.core.video import write_video

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def saved_tiny(tiny_pipe, tmp_path) -> Path:
    folder = tmp_path / "tiny-colormnet"
    tiny_pipe.save_pretrained(folder)
    return folder


def populate_hf_cache(cache: Path, repo_id: str, folder: Path, commit: str = "0" * 40) -> None:
    """Lay `folder` out the way huggingface_hub caches a downloaded model repo."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_repo_id_resolves_from_the_offline_cache(saved_tiny, tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "hueflow/tiny-colormnet", saved_tiny)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    pipe = ColorMNetPipeline.from_pretrained("hueflow/tiny-colormnet", cache_dir=str(cache))
    assert pipe.config.processing_size == 64
    assert resolve_pretrained_path("hueflow/tiny-colormnet", cache_dir=str(cache)).name == "0" * 40


def test_missing_repo_fails_clearly_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedLoadError) as error:
        ColorMNetPipeline.from_pretrained("hueflow/not-downloaded", cache_dir=str(tmp_path))
    message = str(error.value)
    assert "hueflow/not-downloaded" in message and "HF_HUB_OFFLINE" in message


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(PretrainedLoadError, match="model_index.json"):
        ColorMNetPipeline.from_pretrained(tmp_path)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_colorizes_a_video_and_keeps_its_audio(saved_tiny, tmp_path):
    clip = make_colour_clip(num_frames=8, height=48, width=64)
    grey = np.repeat(clip.mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    silent = tmp_path / "grey.mp4"
    write_video(grey, silent, fps=8)
    source = tmp_path / "grey_with_audio.mp4"
    _mux_sine_audio(silent, source, seconds=1.0)
    exemplar = tmp_path / "exemplar.png"
    Image.fromarray(clip[0]).save(exemplar)
    out = tmp_path / "colour.mp4"
    # Two exemplars: the first tied to frame 0, the second a free reference (-1).
    result = run_cli(
        "colorize", str(source), "--exemplar", str(exemplar), "--exemplar-frame", "0",
        "--exemplar", str(exemplar), "--exemplar-frame", "-1", "-o", str(out), "--model", str(saved_tiny),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # stdout's last line is the video's path (for scripts); how each exemplar was used goes to stderr.
    assert result.stdout.strip().splitlines()[-1] == str(out)
    placements = [line for line in result.stderr.splitlines() if line.startswith("exemplar ")]
    assert len(placements) == 2, result.stderr
    assert placements[0].startswith("exemplar 1: keyframe") and "frame 0" in placements[0]
    assert placements[1].startswith("exemplar 2: free reference")
    assert "aligned to frame" in placements[1] or "memory" in placements[1]
    assert "backwards" not in result.stderr  # frame 0 is a keyframe
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (48, 64, 3)
    chroma = np.abs(frames[0].astype(int) - frames[0].mean(-1, keepdims=True)).mean()
    assert chroma > 3  # coloured, not grey

    # The anchored colour's matching can be turned off from the command line (what it does:
    # test_colorization.py): a free reference is then used through the model's memory only.
    free = tmp_path / "colour_model_only.mp4"
    result = run_cli(
        "colorize", str(source), "--exemplar", str(exemplar), "--exemplar-frame", "-1", "-o", str(free),
        "--model", str(saved_tiny), "--fallback-error", "-1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(free)
    assert "exemplar 1: free reference" in result.stderr and "memory" in result.stderr
    with av.open(str(free)) as container:
        free_frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(free_frames) == 8

    # A keyframe at the last frame: the frames before it are coloured backwards from it, and stderr says so.
    last = tmp_path / "last.png"
    Image.fromarray(clip[7]).save(last)
    result = run_cli(
        "colorize", str(source), "--exemplar", str(last), "--exemplar-frame", "7",
        "-o", str(tmp_path / "backwards.mp4"), "--model", str(saved_tiny),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "frames 0-6 coloured backwards from frame 7" in result.stderr


def test_cli_fallback_error_flag():
    """`--fallback-error` is passed as the call's `fallback_error` (None: the model's config); the old hold
    flags are gone."""
    from pipelines.cli import build_parser

    parser = build_parser()
    common = ["colorize", "clip.mp4", "--exemplar", "x.png", "-o", "out.mp4"]
    assert parser.parse_args(common).fallback_error is None
    assert parser.parse_args([*common, "--fallback-error", "-1"]).fallback_error == -1.0
    assert parser.parse_args([*common, "--fallback-error", "2.5"]).fallback_error == 2.5
    for old in (["--static-tolerance", "0.5"], ["--no-motion-compensated-hold"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*common, *old])


def test_cli_reports_bad_input_without_a_traceback(saved_tiny, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"garbage" * 100)
    exemplar = tmp_path / "exemplar.png"
    Image.fromarray(make_colour_clip(num_frames=1)[0]).save(exemplar)
    out = tmp_path / "out.mp4"
    result = run_cli(
        "colorize", str(bad), "--exemplar", str(exemplar), "-o", str(out), "--model", str(saved_tiny)
    )
    assert result.returncode == 2
    assert (
        result.stderr.startswith("error:") and "corrupt" in result.stderr and "Traceback" not in result.stderr
    )
    assert not out.exists()


def test_cli_checks_a_request_with_the_pipelines_rules_before_loading_a_model(tmp_path, capsys):
    clip = make_colour_clip(num_frames=8, height=48, width=64)
    source = tmp_path / "clip.mp4"
    write_video(clip, source, fps=8)
    exemplar = tmp_path / "exemplar.png"
    Image.fromarray(clip[0]).save(exemplar)
    common = ["-o", str(tmp_path / "out.mp4"), "--model", str(tmp_path / "no-model")]  # never loaded
    two_exemplars = ["--exemplar", str(exemplar), "--exemplar", str(exemplar), "--exemplar-frame", "0"]
    assert cli_main(["colorize", str(source), *two_exemplars, *common]) == 2
    assert capsys.readouterr().err.startswith("error: Got 2 exemplars but 1 exemplar_frames")
    edit = ["--edited-frame", str(exemplar), "--frame-index", "5", "--max-frames", "4"]
    assert cli_main(["transfer", str(source), *edit, *common]) == 2
    assert capsys.readouterr().err.startswith("error: frame_index 5 is out of range")
    assert not (tmp_path / "out.mp4").exists()


def test_publish_dry_run_lists_files_and_renders_the_card(saved_tiny, tmp_path):
    card = tmp_path / "card.md"
    card.write_text(
        "---\nlicense: apache-2.0\nlibrary_name: diffusers\ntags: [video-colorization]\n---\n# Tiny\n"
    )
    result = run_cli(
        "publish", str(saved_tiny), "--repo-id", "hueflow/tiny", "--card", str(card), "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert "model_index.json" in result.stdout and "README.md" in result.stdout
    assert "license: apache-2.0" in result.stdout and "# Tiny" in result.stdout


def test_publish_needs_a_card(saved_tiny, tmp_path):
    result = run_cli(
        "publish", str(saved_tiny), "--repo-id", "hueflow/tiny", "--card", str(tmp_path / "no.md")
    )
    assert result.returncode == 2 and "No model card" in result.stderr
