"""Load test of the Space: concurrent visitors across the tabs, bad inputs among them, and a burst past the
queue, against the real app (`python app.py`) on a loopback port.

    python benchmarks/space_load.py                              # 8 visitors x 2 rounds, 160x96 clips
    python benchmarks/space_load.py --visitors 4 --rounds 1 --no-record    # a quick look, nothing written

The app runs in a child process exactly as on a Space (its own `main()`: the queue settings of
`space/limits.py`), with HUEFLOW_CACHE_DIR and GRADIO_TEMP_DIR in a fresh temporary folder. Every visitor
is a separate `gradio_client.Client` on its own thread; in each round it runs one good job (colorize, track,
edit and generate in turn, so the tabs run side by side) and then one bad input (a corrupt video, a
grayscale exemplar, a video over the frame limit, nothing to track, no edited frame, too many images).
Then a burst of more colorize jobs than the queue holds checks that the extra ones are refused at once
with Gradio's "busy, try again" message while the accepted ones still complete.

Checked, and recorded in benchmarks/RESULTS.md (unless `--no-record`):
- every good job returns a correct result (an mp4 of the input's frames and size, coloured where it
  should be; a grid image of the right size), every bad one a clear error (no traceback, not the generic
  "failed unexpectedly" of a server fault);
- the server stays up (its process alive and a last job served after everything else);
- the peak RSS of the server's process tree (sampled every 0.1 s with psutil) stays under `--rss-bound-mb`;
- no temporary files are left in the app's cache folder (no `*.partial` writer files, no empty job
  folders of a failed job).

Bounded in count (visitors x rounds + the burst) and time (`--timeout` per job, `--max-seconds` overall).
Edit-tab jobs use the embedded zero2hero-lite with its per-video fine-tuning cut to `--finetune-steps`
(default 10; the embedded 60 steps take ~40 s of CPU per job), through HUEFLOW_APPEARANCE_MODEL.
`tests/test_space_load.py` runs the same checks small (4 visitors, one round, a burst of 10).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO_ROOT, record_run
from PIL import Image

from pipelines import write_video

HEADING = "## Space under load (`benchmarks/space_load.py`)"
TABLE_HEADER = (
    "| date | machine | torch threads | model | visitors x rounds | good jobs ok | bad inputs clear | burst: "
    "refused busy / served | job s p50 / max | peak RSS MB (server tree) | RSS bound MB | temp files left "
    "| server up | command |\n"
    "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
)
DESCRIPTION = (
    "The real app (`python app.py`, its own queue settings) on a loopback port; every visitor a separate "
    "gradio_client on its own thread running one good job per round (colorize, track, edit, generate in "
    "turn) and one bad input, then a burst of colorize jobs past the queue's size. Peak RSS: the server's "
    "process tree, sampled every 0.1 s. Edit jobs fine-tune for --finetune-steps (default 10)."
)
TAB_ORDER = ("colorize", "track", "transfer", "generate")


# ----------------------------------------------------------------------------------------------- media


def colour_clip(num_frames: int, height: int, width: int) -> np.ndarray:
    """Saturated discs sliding over a soft gradient: (T, H, W, 3) uint8."""
    yy, xx = np.mgrid[0:height, 0:width]
    colours = [(220, 40, 40), (40, 200, 60), (50, 70, 230)]
    radius = max(4, min(height, width) // 6)
    frames = []
    for t in range(num_frames):
        frame = np.stack([60 + xx * 120 / width, 60 + yy * 120 / height, np.full_like(xx, 120.0)], axis=-1)
        for k, colour in enumerate(colours):
            cx, cy = (k + 1) * width / 4 + t, height / 2
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < radius**2] = colour
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(frames)


def to_gray(frames: np.ndarray) -> np.ndarray:
    luma = (frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).round()
    return np.repeat(luma.astype(np.uint8)[..., None], 3, axis=-1)


def chroma(frames: np.ndarray) -> float:
    """Mean spread between the RGB channels: ~0 for gray, tens for colour."""
    frames = frames.astype(np.int16)
    return float((frames.max(axis=-1) - frames.min(axis=-1)).mean())


def decode(path: str | Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@dataclass(frozen=True)
class Media:
    folder: Path
    frames: int
    height: int
    width: int

    def __getitem__(self, name: str) -> str:
        return str(self.folder / name)


def make_media(folder: Path, frames: int, height: int, width: int, too_long: int) -> Media:
    """The inputs every job uses: a grayscale clip, its colour first frame (exemplar), a recoloured first
    frame (the Edit tab's edited frame), and the bad ones: a text file named .mp4, a grayscale exemplar and
    a clip of `too_long` frames."""
    folder.mkdir(parents=True, exist_ok=True)
    colour = colour_clip(frames, height, width)
    write_video(to_gray(colour), folder / "gray.mp4", fps=8)
    write_video(colour, folder / "colour.mp4", fps=8)
    write_video(to_gray(colour_clip(too_long, height, width)), folder / "too_long.mp4", fps=8)
    Image.fromarray(colour[0]).save(folder / "exemplar.png")
    Image.fromarray(to_gray(colour[:1])[0]).save(folder / "gray_exemplar.png")
    edited = colour[0].copy()
    edited[..., [0, 2]] = edited[..., [2, 0]]  # reds become blues
    Image.fromarray(edited).save(folder / "edited.png")
    (folder / "corrupt.mp4").write_text("this is a text file, not a video\n" * 20)
    return Media(folder, frames, height, width)


def fast_appearance_model(folder: Path, finetune_steps: int) -> Path:
    """The embedded zero2hero-lite with its per-video fine-tuning cut to `finetune_steps` (its config)."""
    target = folder / "zero2hero-fast"
    shutil.copytree(REPO_ROOT / "checkpoints" / "zero2hero-lite", target)
    index = target / "model_index.json"
    config = json.loads(index.read_text())
    config["finetune_steps"] = finetune_steps
    index.write_text(json.dumps(config, indent=2))
    return target


# ----------------------------------------------------------------------------------------------- jobs


def _mp4_of(media: Media, video: str) -> np.ndarray:
    path = Path(video)
    assert path.suffix == ".mp4" and path.is_file(), f"not an mp4: {video}"
    frames = decode(path)
    expected = (media.frames, media.height, media.width, 3)
    assert frames.shape == expected, f"{path.name}: {frames.shape}, expected {expected}"
    return frames


def colorize(client: Any, media: Media, video: str = "gray.mp4", exemplar: str = "exemplar.png") -> Any:
    from gradio_client import handle_file

    return client.submit(
        video=handle_file(media[video]),
        exemplars=[handle_file(media[exemplar])],
        frame_indices="0",
        processing_size=64,
        api_name="/colorize",
    )


def check_colorize(media: Media, result: Any) -> None:
    frames = _mp4_of(media, result[0])
    assert chroma(frames) > 10, f"the colorized clip has no colour (chroma {chroma(frames):.1f})"


def track(client: Any, media: Media, points: str = "20, 20") -> Any:
    from gradio_client import handle_file

    return client.submit(
        video=handle_file(media["colour.mp4"]), drawing=None, max_frames=0, points=points, api_name="/track"
    )


def check_track(media: Media, result: Any) -> None:
    _mp4_of(media, result[0])


def transfer(client: Any, media: Media, edited: str | None = "edited.png") -> Any:
    from gradio_client import handle_file

    return client.submit(
        video=handle_file(media["colour.mp4"]),
        edited_frame=None if edited is None else handle_file(media[edited]),
        frame_index=0,
        max_frames=0,
        api_name="/transfer",
    )


def check_transfer(media: Media, result: Any) -> None:
    _mp4_of(media, result[0])


def generate(client: Any, media: Media, num_images: int = 4) -> Any:
    return client.submit(seed=1, num_images=num_images, num_frames=4, sample=0, api_name="/generate")


def check_generate(media: Media, result: Any) -> None:
    with Image.open(result[0]) as grid:
        assert grid.width > 0 and grid.height > 0


GOOD_JOBS: dict[str, tuple[Callable[..., Any], Callable[[Media, Any], None]]] = {
    "colorize": (colorize, check_colorize),
    "track": (track, check_track),
    "transfer": (transfer, check_transfer),
    "generate": (generate, check_generate),
}
# Bad inputs: the request, and what its error must say.
BAD_JOBS: dict[str, tuple[Callable[..., Any], str]] = {
    "corrupt video": (lambda c, m: colorize(c, m, video="corrupt.mp4"), r"cannot be used as the video"),
    "grayscale exemplar": (lambda c, m: colorize(c, m, exemplar="gray_exemplar.png"), r"no colour"),
    "too long": (lambda c, m: colorize(c, m, video="too_long.mp4"), r"too long"),
    "nothing to track": (lambda c, m: track(c, m, points=""), r"Nothing to track"),
    "no edited frame": (lambda c, m: transfer(c, m, edited=None), r"[Nn]o edited frame"),
    # Refused by the slider itself (Gradio checks a value against the component's maximum).
    "too many images": (lambda c, m: generate(c, m, num_images=10_000), r"at most|greater than maximum"),
}
SERVER_FAULT = re.compile(r"Traceback|failed unexpectedly|could not be loaded")


@dataclass
class Outcome:
    kind: str
    good: bool
    ok: bool
    seconds: float
    detail: str = ""


def run_good(client: Any, media: Media, kind: str, timeout: float) -> Outcome:
    submit, check = GOOD_JOBS[kind]
    started = time.perf_counter()
    try:
        check(media, submit(client, media).result(timeout=timeout))
        return Outcome(kind, True, True, time.perf_counter() - started)
    except Exception as error:  # a failed good job is the finding, not a crash of the load test
        return Outcome(kind, True, False, time.perf_counter() - started, f"{type(error).__name__}: {error}")


def run_bad(client: Any, media: Media, kind: str, timeout: float) -> Outcome:
    from gradio_client.exceptions import AppError

    submit, pattern = BAD_JOBS[kind]
    started = time.perf_counter()
    try:
        submit(client, media).result(timeout=timeout)
    except AppError as error:
        message = str(error)
        clear = bool(re.search(pattern, message)) and not SERVER_FAULT.search(message) and len(message) > 10
        return Outcome(kind, False, clear, time.perf_counter() - started, message[:200])
    except Exception as error:
        return Outcome(kind, False, False, time.perf_counter() - started, f"{type(error).__name__}: {error}")
    return Outcome(kind, False, False, time.perf_counter() - started, "accepted a bad input")


def visitor(
    url: str, media: Media, number: int, rounds: int, timeout: float, deadline: float
) -> list[Outcome]:
    """One visitor: per round a good job (the tabs in turn, offset by the visitor's number) then a bad one."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    outcomes = []
    bad_kinds = list(BAD_JOBS)
    for round_number in range(rounds):
        if time.monotonic() > deadline:
            break
        step = number + round_number * len(TAB_ORDER)
        outcomes.append(run_good(client, media, TAB_ORDER[step % len(TAB_ORDER)], timeout))
        outcomes.append(run_bad(client, media, bad_kinds[step % len(bad_kinds)], timeout))
    return outcomes


def burst(url: str, media: Media, count: int, timeout: float) -> tuple[int, int, list[str]]:
    """`count` colorize jobs submitted at once: returns (refused as busy, served correctly, problems)."""
    from gradio_client import Client
    from gradio_client.utils import QueueError

    client = Client(url, verbose=False)
    jobs = [colorize(client, media) for _ in range(count)]
    refused, served, problems = 0, 0, []
    for job in jobs:
        try:
            check_colorize(media, job.result(timeout=timeout))
            served += 1
        except QueueError as error:
            if "try again" in str(error).lower():
                refused += 1
            else:
                problems.append(f"QueueError without 'try again': {error}")
        except Exception as error:
            problems.append(f"{type(error).__name__}: {error}")
    return refused, served, problems


# ----------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RssSampler:
    """Samples the resident memory of a process and all its children every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        import psutil  # accelerate's dependency, so always installed with the app

        self._process = psutil.Process(pid)
        self.interval = interval
        self.peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        import psutil

        total = 0
        with contextlib.suppress(psutil.Error):
            for process in [self._process, *self._process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child may end between listing and reading
                    total += process.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.sample())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    cache_dir: Path
    temp_dir: Path
    log: Path

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                return response.status == 200
        except OSError:
            return False

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def launched_server(workdir: Path, env: dict[str, str], start_timeout: float = 180) -> Iterator[Server]:
    """`python app.py` on a free loopback port, its cache and Gradio's temp folder under `workdir`."""
    port = free_port()
    cache_dir, temp_dir = workdir / "cache", workdir / "gradio-tmp"
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HUEFLOW_CACHE_DIR": str(cache_dir),
        "GRADIO_TEMP_DIR": str(temp_dir),
        **env,
    }
    log = workdir / "server.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "app.py")],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}/", process, cache_dir, temp_dir, log)
    try:
        deadline = time.monotonic() + start_timeout
        while not server.alive():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def leftover_temp_files(*folders: Path) -> list[Path]:
    """Files a finished or failed job should not leave: writer temp files (`*.partial`) anywhere, and job
    folders left empty by a failed job."""
    left = []
    for folder in folders:
        left += [path for path in folder.rglob("*") if ".partial" in path.name]
        jobs = folder / "jobs"
        if jobs.is_dir():
            left += [job for job in jobs.iterdir() if job.is_dir() and not any(job.iterdir())]
    return left


# ----------------------------------------------------------------------------------------------- the test


@dataclass
class LoadReport:
    visitors: int
    rounds: int
    outcomes: list[Outcome] = field(default_factory=list)
    burst_refused: int = 0
    burst_served: int = 0
    burst_problems: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    rss_bound_mb: float = 0.0
    temp_files: list[Path] = field(default_factory=list)
    server_up: bool = False
    final_job_ok: bool = False
    seconds: float = 0.0

    @property
    def good(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.good]

    @property
    def bad(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.good]

    def problems(self) -> list[str]:
        """Every failed check, in words (empty: the Space held its load)."""
        found = [f"good {o.kind} job failed: {o.detail}" for o in self.good if not o.ok]
        found += [f"bad input '{o.kind}' gave no clear error: {o.detail}" for o in self.bad if not o.ok]
        found += self.burst_problems
        if self.peak_rss_mb > self.rss_bound_mb:
            found.append(f"peak RSS {self.peak_rss_mb:.0f} MB is over the {self.rss_bound_mb:.0f} MB bound")
        found += [f"left behind: {path}" for path in self.temp_files]
        if not (self.server_up and self.final_job_ok):
            found.append("the server did not stay up and serving")
        return found

    def summary(self) -> str:
        good_ok = sum(o.ok for o in self.good)
        bad_ok = sum(o.ok for o in self.bad)
        return (
            f"{self.visitors} visitors x {self.rounds} rounds in {self.seconds:.0f} s: good jobs "
            f"{good_ok}/{len(self.good)} correct, bad inputs {bad_ok}/{len(self.bad)} clear errors; burst: "
            f"{self.burst_refused} refused as busy, {self.burst_served} served; peak RSS "
            f"{self.peak_rss_mb:.0f} MB (bound {self.rss_bound_mb:.0f}); temp files left "
            f"{len(self.temp_files)}; server up: {self.server_up and self.final_job_ok}"
        )


def run_load_test(
    workdir: Path,
    visitors: int,
    rounds: int,
    burst_size: int,
    env: dict[str, str],
    media_size: tuple[int, int, int] = (8, 96, 160),
    too_long: int = 16,
    finetune_steps: int = 10,
    rss_bound_mb: float = 4096,
    timeout: float = 300,
    max_seconds: float = 1800,
) -> LoadReport:
    """The whole load test in `workdir`; `env` adds to the server's environment (e.g. HUEFLOW_MAX_FRAMES,
    HUEFLOW_MAX_QUEUE_SIZE). Returns the report; `report.problems()` lists what failed."""
    started = time.monotonic()
    deadline = started + max_seconds
    frames, height, width = media_size
    media = make_media(workdir / "media", frames, height, width, too_long)
    model = fast_appearance_model(workdir, finetune_steps)
    report = LoadReport(visitors, rounds, rss_bound_mb=rss_bound_mb)
    server_env = {"HUEFLOW_APPEARANCE_MODEL": str(model), **env}
    with launched_server(workdir, server_env) as server, RssSampler(server.process.pid) as rss:
        try:
            with ThreadPoolExecutor(max_workers=visitors) as pool:
                futures = [
                    pool.submit(visitor, server.url, media, number, rounds, timeout, deadline)
                    for number in range(visitors)
                ]
                for future in futures:
                    report.outcomes += future.result()
            if burst_size:
                report.burst_refused, report.burst_served, report.burst_problems = burst(
                    server.url, media, burst_size, timeout
                )
                if not report.burst_refused:
                    report.burst_problems.append(
                        f"a burst of {burst_size} jobs was never refused as busy (queue too long?)"
                    )
            report.server_up = server.alive()
            from gradio_client import Client

            report.final_job_ok = run_good(Client(server.url, verbose=False), media, "colorize", timeout).ok
        finally:
            report.peak_rss_mb = max(rss.peak_bytes, rss.sample()) / 2**20
            report.seconds = time.monotonic() - started
        report.temp_files = leftover_temp_files(server.cache_dir, server.temp_dir)
        if report.problems():
            print(f"server log (tail):\n{server.log_tail()}", file=sys.stderr)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=8, help="concurrent gradio_client visitors")
    parser.add_argument("--rounds", type=int, default=2, help="good job + bad input per visitor and round")
    parser.add_argument("--burst", type=int, default=0, help="burst size (default: the queue size + 6)")
    parser.add_argument("--frames", type=int, default=24, help="frames of the clips")
    parser.add_argument("--size", default="160x96", help="WIDTHxHEIGHT of the clips")
    parser.add_argument("--finetune-steps", type=int, default=10, help="Edit-tab fine-tuning steps per job")
    parser.add_argument(
        "--rss-bound-mb", type=float, default=4096, help="the peak RSS the server must stay under"
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds one job may take")
    parser.add_argument("--max-seconds", type=float, default=1800, help="no new rounds after this")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    from space.limits import Limits

    args = parse_args(argv)
    width, height = (int(side) for side in args.size.lower().split("x"))
    limits = Limits.detect()
    too_long = limits.max_frames + 1
    burst_size = args.burst or limits.max_queue_size + limits.job_concurrency + 6
    with tempfile.TemporaryDirectory(prefix="space_load_") as folder:
        report = run_load_test(
            Path(folder),
            args.visitors,
            args.rounds,
            burst_size,
            env={},
            media_size=(args.frames, height, width),
            too_long=too_long,
            finetune_steps=args.finetune_steps,
            rss_bound_mb=args.rss_bound_mb,
            timeout=args.timeout,
            max_seconds=args.max_seconds,
        )
    for outcome in report.outcomes:
        kind, status = "good" if outcome.good else "bad", "ok" if outcome.ok else "FAILED"
        print(f"  {kind} {outcome.kind}: {status} in {outcome.seconds:.1f} s {outcome.detail}")
    print(report.summary())
    for problem in report.problems():
        print(f"  problem: {problem}")
    seconds = [o.seconds for o in report.good if o.ok] or [0.0]
    flags = ["--visitors", str(args.visitors), "--rounds", str(args.rounds)]
    for flag, value, default in (
        ("--burst", args.burst, 0),
        ("--frames", args.frames, 24),
        ("--size", args.size, "160x96"),
        ("--finetune-steps", args.finetune_steps, 10),
        ("--rss-bound-mb", args.rss_bound_mb, 4096),
    ):
        if value != default:
            flags += [flag, str(value)]
    record_run(
        HEADING,
        TABLE_HEADER,
        DESCRIPTION,
        model="embedded checkpoints",
        torch_threads=torch.get_num_threads(),
        cells=[
            f"{args.visitors} x {args.rounds}",
            f"{sum(o.ok for o in report.good)}/{len(report.good)}",
            f"{sum(o.ok for o in report.bad)}/{len(report.bad)}",
            f"{report.burst_refused} / {report.burst_served}",
            f"{statistics.median(seconds):.1f} / {max(seconds):.1f}",
            f"{report.peak_rss_mb:.0f}",
            f"{report.rss_bound_mb:.0f}",
            str(len(report.temp_files)),
            "yes" if report.server_up and report.final_job_ok else "no",
        ],
        command=["python", "benchmarks/space_load.py", *flags],
        save=not args.no_record,
    )
    return 1 if report.problems() else 0


if __name__ == "__main__":
    raise SystemExit(main())
