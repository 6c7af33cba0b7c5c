"""`colorize-batch` (pipelines/batch.py): manifests, sharding under torchrun, resuming, bad rows, and what a
killed or interrupted run leaves behind.

Everything runs on tiny generated clips (4 frames at 32x24) and a tiny random ColorMNet saved in a temporary
folder, so the file stays fast. The batch runs as `python -m pipelines.batch` (the module's own entry point)
and, in process, through `pipelines.batch.main`; `python -m pipelines colorize-batch` is the same `run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import decode, make_colour_clip, make_tiny_colormnet
from PIL import Image

from pipelines import batch, write_video

REPO_ROOT = Path(__file__).resolve().parent.parent
NUM_CLIPS, NUM_FRAMES, HEIGHT, WIDTH = 6, 4, 24, 32
CORRUPT = 3  # the clip whose file is not a video


def subprocess_env() -> dict[str, str]:
    # One thread per process: two batch processes share this machine's cores with the test run.
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}


def read_results(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / batch.RESULTS_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    make_tiny_colormnet().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A folder with 6 colour clips (one replaced by a text file), each with its first frame as a keyframe
    exemplar, and manifest.jsonl naming them with paths relative to the folder."""
    folder = tmp_path_factory.mktemp("archive")
    (folder / "clips").mkdir()
    rows = []
    for index in range(NUM_CLIPS):
        clip = make_colour_clip(NUM_FRAMES, HEIGHT, WIDTH, seed=index)
        write_video(clip, folder / "clips" / f"clip{index}.mp4", fps=8)
        Image.fromarray(clip[0]).save(folder / f"exemplar{index}.png")
        rows.append(
            {"video": f"clips/clip{index}.mp4", "exemplars": [f"exemplar{index}.png"], "exemplar_frames": [0]}
        )
    (folder / "clips" / f"clip{CORRUPT}.mp4").write_text("not a video\n" * 50)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def run_batch(manifest: Path, out_dir: Path, model: Path, *extra: str) -> int:
    """The command in this process (a single, non-distributed `PartialState`)."""
    return batch.main([str(manifest), "-o", str(out_dir), "--model", str(model), "--cpu", *extra])


# ----------------------------------------------------------------------------------------------- manifest


def test_manifest_rows_from_jsonl_and_csv(tmp_path):
    """Both formats give the same rows: paths relative to the manifest's folder, the default output name,
    frames (blank / null / -1 = free reference); an unusable row carries its error instead of stopping the
    batch."""
    (tmp_path / "sub").mkdir()
    jsonl = tmp_path / "sub" / "m.jsonl"
    jsonl.write_text(
        '{"video": "a.mp4", "exemplars": ["x.png", "/abs/y.png"], "exemplar_frames": [0, null]}\n'
        "\n"
        '{"video": "b.mp4", "exemplars": ["x.png"], "exemplar_frames": [-1], "output": "out/b2.mp4"}\n'
        "{not json\n"
        '{"video": "c.mp4", "exemplar": ["x.png"]}\n'
        '{"video": "d/a.mp4", "exemplars": ["x.png"]}\n'
        '{"video": "e.mp4", "exemplars": ["x.png"], "output": "../e.mp4"}\n'
    )
    csv = tmp_path / "sub" / "m.csv"
    csv.write_text(
        "video,exemplars,exemplar_frames,output\na.mp4,x.png;/abs/y.png,0;,\nb.mp4,x.png,-1,out/b2.mp4\n"
    )
    rows = batch.read_manifest(jsonl)
    base = tmp_path / "sub"
    assert [row.row for row in rows] == [1, 3, 4, 5, 6, 7]
    first, second = rows[0], rows[1]
    assert first == batch.BatchRow(
        row=1, video=str(base / "a.mp4"), exemplars=(str(base / "x.png"), "/abs/y.png"),
        exemplar_frames=(0, None), output="a.mp4",
    )  # fmt: skip
    assert second.exemplar_frames == (None,) and second.output == "out/b2.mp4"
    assert "not valid JSON" in rows[2].error
    assert "unknown field" in rows[3].error and "exemplar" in rows[3].error
    assert "also row 1's" in rows[4].error  # d/a.mp4 would overwrite a.mp4's output
    assert "inside the output folder" in rows[5].error

    csv_rows = batch.read_manifest(csv)
    assert [(r.video, r.exemplars, r.exemplar_frames, r.output) for r in csv_rows] == [
        (r.video, r.exemplars, r.exemplar_frames, r.output) for r in rows[:2]
    ]
    assert [row.row for row in csv_rows] == [2, 3]  # line numbers: the header is line 1

    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(batch.ManifestError, match="no rows"):
        batch.read_manifest(tmp_path / "empty.jsonl")
    (tmp_path / "bad.csv").write_text("file,exemplars\n")
    with pytest.raises(batch.ManifestError, match="no 'video' column"):
        batch.read_manifest(tmp_path / "bad.csv")


# ----------------------------------------------------------------------------------------------- sharding


def test_torchrun_shards_rows_and_a_rerun_skips_them(archive, tiny_model, tmp_path):
    """The issue's bar: two torchrun processes give the frames one process gives, split the rows between
    them, record the corrupt clip's error without stopping; a second run skips every finished row (and
    retries the failed one)."""
    manifest = archive / "manifest.jsonl"
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "pipelines.batch", str(manifest), "-o", str(sharded), "--model", str(tiny_model)]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "5 done, 1 failed, 0 skipped of 6 rows on 2 processes" in completed.stdout

    results = read_results(sharded)
    assert len(results) == NUM_CLIPS
    by_row = {record["row"]: record for record in results}
    corrupt = by_row[CORRUPT + 1]
    assert corrupt["status"] == "failed" and "could not decode video" in corrupt["error"]
    done = [record for record in results if record["status"] == "done"]
    assert {record["process"] for record in done} == {0, 1}  # both processes coloured some of the rows
    assert all(record["frames"] == NUM_FRAMES and record["error"] is None for record in done)
    assert not (sharded / batch.PARTS_DIR).exists()  # the per-process parts were merged and removed

    assert run_batch(manifest, single, tiny_model) == 0
    for index in set(range(NUM_CLIPS)) - {CORRUPT}:
        one, two = decode(single / f"clip{index}.mp4"), decode(sharded / f"clip{index}.mp4")
        assert one.shape == two.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
        # The pipeline's frames are the same; libx264 with its default threads encodes identical frames
        # slightly differently from run to run (about 1.5 levels on these 32x24 clips), so not bit-exact.
        assert np.abs(one.astype(np.float32) - two).mean() < 3.0
    assert not (sharded / f"clip{CORRUPT}.mp4").exists()

    # A second run: the finished rows are skipped (their files untouched), the corrupt one is tried again.
    stamps = {path.name: path.stat().st_mtime_ns for path in sharded.glob("*.mp4")}
    assert run_batch(manifest, sharded, tiny_model) == 0
    rerun = read_results(sharded)[NUM_CLIPS:]
    assert sorted(record["status"] for record in rerun) == ["failed"] + ["skipped"] * (NUM_CLIPS - 1)
    assert all(record["frames"] == NUM_FRAMES for record in rerun if record["status"] == "skipped")
    assert {path.name: path.stat().st_mtime_ns for path in sharded.glob("*.mp4")} == stamps


def test_rows_are_checked_by_content_and_bad_rows_do_not_stop_the_batch(archive, tiny_model, tmp_path):
    """A file at an output name that is not the finished video (wrong length, or not a video) is coloured
    again; a missing exemplar fails its row only; `--strict` turns failed rows into exit status 1."""
    manifest = tmp_path / "manifest.csv"
    clips = archive / "clips"
    manifest.write_text(
        "video,exemplars,exemplar_frames,output\n"
        f"{clips / 'clip0.mp4'},{archive / 'exemplar0.png'},0,first.mp4\n"
        f"{clips / 'clip1.mp4'},{archive / 'missing.png'},,second.mp4\n"
        f"{clips / 'clip2.mp4'},{archive / 'exemplar2.png'},,third.mp4\n"
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    write_video(make_colour_clip(NUM_FRAMES - 2, HEIGHT, WIDTH), out_dir / "first.mp4", fps=8)  # too short
    (out_dir / "third.mp4").write_text("left over, not a video")

    assert run_batch(manifest, out_dir, tiny_model, "--strict") == 1
    results = {record["output"]: record for record in read_results(out_dir)}
    assert results["first.mp4"]["status"] == results["third.mp4"]["status"] == "done"
    assert (
        decode(out_dir / "first.mp4").shape
        == decode(out_dir / "third.mp4").shape
        == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    )
    assert results["second.mp4"]["status"] == "failed" and "missing.png" in results["second.mp4"]["error"]
    assert not (out_dir / "second.mp4").exists()


# ----------------------------------------------------------------------------------------------- crashes


def start_and_stop(manifest: Path, out_dir: Path, model: Path, target: Path, sig: signal.Signals) -> None:
    """Start the batch in a subprocess, send it `sig` as soon as it is writing `target`, and wait for it."""
    command = [
        sys.executable,
        "-m",
        "pipelines.batch",
        str(manifest),
        "-o",
        str(out_dir),
        "--model",
        str(model),
    ]
    # A shell starts background jobs with SIGINT ignored, and a child inherits that (Python then never
    # raises KeyboardInterrupt): the batch is started with the default disposition, as from a terminal.
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=subprocess_env(),
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not batch.temporary_files(target):
            assert process.poll() is None, "the batch ended before it was stopped"
            assert time.monotonic() < deadline, "the batch never started writing"
            time.sleep(0.01)
        process.send_signal(sig)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_killed_or_interrupted_run_leaves_no_output_and_the_rerun_completes(tiny_model, tmp_path):
    """Ctrl-C mid-video removes its temporary files; SIGKILL mid-video leaves them, but never a file at the
    output name; the next run removes them and colours the video completely."""
    frames = 300  # long enough to be caught writing
    clip = make_colour_clip(frames, HEIGHT, WIDTH)
    write_video(clip, tmp_path / "long.mp4", fps=25)
    Image.fromarray(clip[0]).save(tmp_path / "exemplar.png")
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"video": "long.mp4", "exemplars": ["exemplar.png"]}) + "\n")
    out_dir = tmp_path / "out"
    target = out_dir / "long.mp4"

    start_and_stop(manifest, out_dir, tiny_model, target, signal.SIGINT)
    assert not target.exists() and batch.temporary_files(target) == []

    start_and_stop(manifest, out_dir, tiny_model, target, signal.SIGKILL)
    assert not target.exists() and batch.temporary_files(target) != []  # what a kill leaves behind

    assert run_batch(manifest, out_dir, tiny_model) == 0
    assert batch.temporary_files(target) == []
    assert decode(target).shape == (frames, HEIGHT, WIDTH, 3)
    results = read_results(out_dir)  # the interrupted run's record was merged by this run
    assert [record["status"] for record in results] == ["failed", "done"]
    assert results[0]["error"] == "interrupted" and results[1]["frames"] == frames
