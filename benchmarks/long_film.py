"""Long films: ColorMNetPipeline on the longest synthetic 480p film a time budget allows, extrapolated to one
hour, with its memory watched the whole way.

    python benchmarks/long_film.py --minutes 30                      # the recorded run
    python benchmarks/long_film.py --minutes 0.5 --size 160x96 --no-record   # a smoke test

Steps, each colouring in a fresh process (so its peak RSS is its own):
1. a 100-frame reference: a synthetic film (textured shapes moving over a panning textured background,
   854x480 grayscale, 25 fps; the colour first frame is the keyframe exemplar) is generated frame by frame
   and streamed through the repository's `VideoWriter` (never held in memory), then coloured into an mp4;
2. from its speed (generation + colouring per frame, plus the worker's start-up) the longest film the rest
   of `--minutes` allows is generated the same way and coloured the same way (`--frames` fixes the length);
3. per-frame time: a least-squares slope of the frames' end times over the warm frames (the first
   `WARMUP_FRAMES` excluded), also for each half (a slope that grows would show a cost that builds up
   with length); one hour (`--fps` x 3600 frames) is extrapolated from the slope;
4. memory: the worker's RSS, sampled by this process every 0.2 s over the whole run (psutil), its exact
   peak (`ru_maxrss`), and RSS every 25 frames read inside the worker, fitted per frame over the second
   half of the run (once the model's bounded memory has filled) and extrapolated to one hour. The bar: the
   long film's peak RSS within 10 % of the 100-frame peak.

The worker shows the pipeline's tqdm bar (frames, rate and ETA) on stderr. The markdown row is printed and,
unless `--no-record`, appended to benchmarks/RESULTS.md with the exact command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from common import HEIGHT, REPO_ROOT, WIDTH, Benchmark

BENCHMARK = Benchmark(
    script="benchmarks/long_film.py",
    title="Long film",
    default_model="checkpoints/colormnet-lite",
    table_header=(
        "| date | machine | torch threads | model | size | processing size | frames (budget min) "
        "| s/frame 100 / long | s/frame 1st / 2nd half | 1 h film (h, extrapolated) "
        "| peak RSS MB 100 / long (sampled) | long / 100 | RSS slope MB per 1000 frames (2nd half) "
        "| RSS at 1 h MB (extrapolated) | bar (within 10 %) | command |\n"
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- "
        "| --- |"
    ),
    description=(
        "ColorMNetPipeline on a synthetic grayscale film (textured shapes over a panning textured "
        "background, generated and encoded frame by frame), its colour first frame the keyframe; the "
        "longest film `--minutes` allows after a 100-frame reference, each coloured in a fresh process into "
        "an mp4. s/frame: least-squares slope of the frame end times after the warm-up; 1 h: that slope x "
        "fps x 3600. Peak RSS: the worker's `ru_maxrss` (in brackets: sampled every 0.2 s from outside); the "
        "bar is long / 100 <= 1.10. RSS slope: fitted over the second half of the long run."
    ),
)
WARMUP_FRAMES = 3
REFERENCE_FRAMES = 100
RSS_EVERY = 25  # frames between the worker's own RSS readings
RSS_BAR = 1.10


# ----------------------------------------------------------------------------------------------- the film


def _texture(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """A colour texture: random colour cells, smoothed a little, (height, width, 3) uint8."""
    import cv2

    cells = rng.integers(0, 256, size=(height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
    texture = cv2.resize(cells, (cells.shape[1] * cell, cells.shape[0] * cell), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(texture[:height, :width])


def synthetic_film(num_frames: int, width: int, height: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Colour RGB uint8 frames, one at a time (memory flat however many): a textured background panning in
    a slow loop, and five textured discs and boxes moving over it on their own paths."""
    rng = np.random.default_rng(seed)
    margin = max(width, height) // 4
    background = _texture(rng, height + 2 * margin, width + 2 * margin, cell=max(8, width // 40))
    yy, xx = np.mgrid[0:height, 0:width]
    shapes = []
    for k in range(5):
        size = int(rng.integers(height // 8, height // 4))
        shapes.append(
            {
                "texture": _texture(rng, height, width, cell=max(4, size // 4)),
                "radius": size,
                "disc": k % 2 == 0,
                "centre": rng.uniform([0, 0], [width, height]),
                "speed": rng.uniform(0.5, 3.0, size=2) * rng.choice([-1, 1], size=2),
            }
        )
    for index in range(num_frames):
        phase = 2 * np.pi * index / 750  # one loop of the pan every 30 s at 25 fps
        left = int(margin * (1 + np.sin(phase)))
        top = int(margin * (1 + np.cos(phase)))
        frame = background[top : top + height, left : left + width].copy()
        for shape in shapes:
            # Bounce off the borders, so every shape stays in view for the whole film.
            span = np.array([width, height], dtype=float)
            position = (shape["centre"] + shape["speed"] * index) % (2 * span)
            cx, cy = np.where(position > span, 2 * span - position, position)
            radius = shape["radius"]
            if shape["disc"]:
                inside = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
            else:
                inside = (np.abs(xx - cx) < radius) & (np.abs(yy - cy) < radius * 0.6)
            frame[inside] = shape["texture"][inside]
        yield frame


def grayscale(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for frame in frames:
        luma = (frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).round()
        yield np.repeat(luma.astype(np.uint8)[..., None], 3, axis=-1)


def write_film(path: Path, num_frames: int, width: int, height: int, fps: float) -> float:
    """Generate and encode the grayscale film frame by frame (`VideoWriter`); returns the seconds taken."""
    from pipelines.core.video import write_video

    started = time.perf_counter()
    write_video(grayscale(synthetic_film(num_frames, width, height)), path, fps=fps)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------------------------- worker


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_worker(args: argparse.Namespace) -> dict:
    """Load the model and colour `args.input` into an mp4; per-frame end times and RSS readings."""
    import torch
    from PIL import Image

    from pipelines.colorization import ColorMNetPipeline

    pipe = ColorMNetPipeline.from_pretrained(args.model)
    # The tqdm bar (frames, rate, ETA) is the pipeline's own; a fixed width keeps it one line in logs.
    pipe.set_progress_bar_config(desc="Colouring", unit="frame", ncols=100, mininterval=2.0)
    frame_ends: list[float] = []
    rss: list[tuple[int, float]] = []

    def on_frame_end(pipeline, index: int, callback_kwargs: dict) -> None:
        frame_ends.append(time.perf_counter())
        if index % RSS_EVERY == 0:
            rss.append((index, _current_rss_mb()))

    exemplar = np.asarray(Image.open(args.exemplar).convert("RGB"))
    started = time.perf_counter()
    pipe(
        args.input,
        exemplars=exemplar,
        exemplar_frames=0,
        processing_size=args.processing_size,
        output_path=Path(args.input).with_name("coloured.mp4"),
        callback_on_frame_end=on_frame_end,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    return {
        "frame_ends": [end - started for end in frame_ends],
        "call_seconds": time.perf_counter() - started,
        "rss": rss,
        "peak_rss_mb": peak,
        "torch_threads": torch.get_num_threads(),
        "processing_size": args.processing_size or pipe.config.processing_size,
    }


# ----------------------------------------------------------------------------------------------- parent


class RssWatch:
    """This process's view of a worker's RSS, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        started = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter() - started, self._process.memory_info().rss / 2**20))
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max((mb for _, mb in self.samples), default=0.0)


def colour_in_worker(folder: Path, num_frames: int, args: argparse.Namespace, label: str) -> dict:
    """Write a `num_frames` film in `folder` and colour it in a fresh worker process."""
    from PIL import Image

    width, height = args.width, args.height
    source = folder / f"{label}.mp4"
    exemplar = folder / f"{label}_exemplar.png"
    Image.fromarray(next(synthetic_film(1, width, height))).save(exemplar)
    print(f"[{label}] writing a {num_frames}-frame {width}x{height} film...", flush=True)
    generation_seconds = write_film(source, num_frames, width, height, args.fps)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--input", str(source)]
    command += ["--exemplar", str(exemplar), "--model", args.model]
    if args.processing_size:
        command += ["--processing-size", str(args.processing_size)]
    print(f"[{label}] colouring it in a fresh process...", flush=True)
    started = time.perf_counter()
    worker = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    watch = RssWatch(worker.pid)
    stdout, _ = worker.communicate()
    sampled_peak = watch.stop()
    if worker.returncode:
        raise SystemExit(f"the {label} worker failed (exit status {worker.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    source.unlink()  # a long film is gigabytes: keep the disk free for the next step
    return {
        **result,
        "frames": len(result["frame_ends"]),
        "generation_seconds": generation_seconds,
        "worker_seconds": time.perf_counter() - started,
        "sampled_peak_rss_mb": sampled_peak,
        "sampled_rss": watch.samples,
    }


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of ys over xs (None for fewer than two points)."""
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float), 1)[0])


def analyse(run: dict) -> dict:
    """Per-frame slopes (whole warm run and each half) and the RSS growth per frame."""
    ends = run["frame_ends"][WARMUP_FRAMES:]
    frames = list(range(WARMUP_FRAMES, WARMUP_FRAMES + len(ends)))
    half = len(ends) // 2
    # RSS grows while the model's bounded memory fills, then stays: the second half of the readings is
    # what the trend to an hour is fitted on.
    readings = [(index, mb) for index, mb in run["rss"] if index >= WARMUP_FRAMES]
    late_rss = readings[len(readings) // 2 :]
    return {
        "seconds_per_frame": slope(frames, ends),
        "first_half": slope(frames[:half], ends[:half]),
        "second_half": slope(frames[half:], ends[half:]),
        "rss_mb_per_frame": slope([i for i, _ in late_rss], [mb for _, mb in late_rss]),
        "last_rss_mb": run["rss"][-1][1] if run["rss"] else None,
    }


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="time budget for the whole benchmark")
    parser.add_argument("--frames", type=int, help="the long film's length (default: what the budget allows)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help="WIDTHxHEIGHT (default 854x480)")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--processing-size", type=int, help="model short side (default: the config's)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--exemplar", help=argparse.SUPPRESS)
    args = BENCHMARK.parse_args(parser, argv)
    args.width, args.height = (int(side) for side in args.size.lower().split("x"))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    started = time.perf_counter()
    budget = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="long_film_") as name:
        folder = Path(name)
        reference = colour_in_worker(folder, REFERENCE_FRAMES, args, "reference")
        if args.frames:
            long_frames = args.frames
        else:
            # What one more frame costs (generating it + colouring it), and a worker's fixed start-up.
            per_frame = (reference["generation_seconds"] + reference["call_seconds"]) / REFERENCE_FRAMES
            fixed = reference["worker_seconds"] - reference["call_seconds"]
            left = budget - (time.perf_counter() - started) - fixed
            long_frames = max(REFERENCE_FRAMES + 1, int(0.95 * left / per_frame))
            print(
                f"budget: {left / 60:.1f} min left at {per_frame:.3f} s per frame -> {long_frames} frames",
                flush=True,
            )
        film = colour_in_worker(folder, long_frames, args, "long")

    ref, long = analyse(reference), analyse(film)
    hour_frames = args.fps * 3600
    spf = long["seconds_per_frame"]
    hour_hours = spf * hour_frames / 3600 if spf else None
    ratio = film["peak_rss_mb"] / reference["peak_rss_mb"]
    rss_slope = long["rss_mb_per_frame"]
    rss_hour = (
        long["last_rss_mb"] + rss_slope * (hour_frames - film["frames"])
        if rss_slope is not None and long["last_rss_mb"] is not None
        else None
    )
    print(
        f"reference: {reference['frames']} frames, {_fmt(ref['seconds_per_frame'], 3)} s/frame, peak RSS "
        f"{reference['peak_rss_mb']:.0f} MB (sampled {reference['sampled_peak_rss_mb']:.0f})\n"
        f"long film: {film['frames']} frames, {_fmt(spf, 3)} s/frame (halves {_fmt(long['first_half'], 3)} / "
        f"{_fmt(long['second_half'], 3)}), peak RSS {film['peak_rss_mb']:.0f} MB (sampled "
        f"{film['sampled_peak_rss_mb']:.0f}), {ratio:.3f} x the reference's; RSS slope "
        f"{_fmt(None if rss_slope is None else rss_slope * 1000, 2)} MB per 1000 frames\n"
        f"one hour ({hour_frames:.0f} frames): about {_fmt(hour_hours, 1)} h of colouring, RSS about "
        f"{_fmt(rss_hour, 0)} MB; total benchmark time {(time.perf_counter() - started) / 60:.1f} min"
    )
    cells = [
        f"{args.width}x{args.height}",
        str(film["processing_size"]),
        f"{film['frames']} ({args.minutes:g})",
        f"{_fmt(ref['seconds_per_frame'], 3)} / {_fmt(spf, 3)}",
        f"{_fmt(long['first_half'], 3)} / {_fmt(long['second_half'], 3)}",
        _fmt(hour_hours, 1),
        f"{reference['peak_rss_mb']:.0f} / {film['peak_rss_mb']:.0f} "
        f"({reference['sampled_peak_rss_mb']:.0f} / {film['sampled_peak_rss_mb']:.0f})",
        f"{ratio:.3f}",
        _fmt(None if rss_slope is None else rss_slope * 1000, 2),
        _fmt(rss_hour, 0),
        "pass" if ratio <= RSS_BAR else "FAIL",
    ]
    flags = ["--minutes", f"{args.minutes:g}"]
    if args.frames:
        flags += ["--frames", str(args.frames)]
    if (args.width, args.height) != (WIDTH, HEIGHT):
        flags += ["--size", args.size]
    if args.fps != 25.0:
        flags += ["--fps", f"{args.fps:g}"]
    if args.processing_size:
        flags += ["--processing-size", str(args.processing_size)]
    BENCHMARK.record_run(args, film["torch_threads"], cells, flags)
    return 0 if ratio <= RSS_BAR else 1


if __name__ == "__main__":
    raise SystemExit(main())
