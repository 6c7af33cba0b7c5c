"""Speed and memory of ColorMNetPipeline on an 854x480 video, on this machine.

    python benchmarks/colorization_speed.py --frames 100
    python benchmarks/colorization_speed.py --frames 1000
    python benchmarks/colorization_speed.py --frames 100 1000      # one after the other
    python benchmarks/colorization_speed.py --frames 20 --no-record  # smoke test, nothing written
    python benchmarks/colorization_speed.py --frames 100 1000 --reference late

For each N the script writes a synthetic 854x480 grayscale clip of N frames to a temporary mp4 (a slow pan and
zoom over a photo from scikit-image, so every frame is different and codec-realistic), then re-invokes itself
in a fresh Python process that loads the model and colours the clip with `output_path` set: the real
decode -> colour -> encode path, frames streamed to the output mp4 and never kept. A fresh process per N makes
the peak RSS (`ru_maxrss`, which only ever grows) belong to that N alone.

Reported per N:
- s/frame: warm seconds per frame, model load excluded and the first 3 frames skipped (from the end of frame 3
  to the return of the call, so the encoder's final flush is counted);
- peak RSS of the worker process, and RSS growth over the warm frames (RSS at the last frame minus RSS after
  frame 3: bounded memory should keep it near 0 however long the clip), plus RSS after model load.

The markdown row is printed and, unless `--no-record`, appended to benchmarks/RESULTS.md under this
benchmark's heading, with the exact command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from common import HEIGHT, REPO_ROOT, WIDTH, Benchmark, large_still, synthetic_frames

BENCHMARK = Benchmark(
    script="benchmarks/colorization_speed.py",
    title="Colorization speed",
    default_model="checkpoints/colormnet-lite",
    table_header=(
        "| date | machine | torch threads | model | processing size | frames | s/frame (warm) | peak RSS MB "
        "| RSS growth MB (frame 3 to end) | RSS after load MB | command |\n"
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    ),
    description=(
        "ColorMNetPipeline on a synthetic 854x480 grayscale clip (pan/zoom over a photo) read from an "
        "mp4 and streamed to an mp4 (`output_path`), one fresh process per run. s/frame: warm, model "
        "load and the first 3 frames excluded. RSS growth: RSS at the last frame minus RSS after frame 3."
    ),
)
WARMUP_FRAMES = 3


# ----------------------------------------------------------------------------------------------- worker


def _current_rss_mb() -> float | None:
    """Resident set size now (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def run_worker(args: argparse.Namespace) -> dict:
    """Load the model and colour `args.input` into a streamed mp4; return timings and memory."""
    import torch

    from pipelines.colorization import ColorMNetPipeline

    load_started = time.perf_counter()
    pipe = ColorMNetPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    load_seconds = time.perf_counter() - load_started
    rss_after_load = _current_rss_mb()

    frame_ends: list[float] = []
    rss_at: dict[str, float | None] = {}

    def on_frame_end(pipeline, index: int, callback_kwargs: dict) -> None:
        frame_ends.append(time.perf_counter())
        if len(frame_ends) == WARMUP_FRAMES:  # counted: frames before a late reference come backwards
            rss_at["warm"] = _current_rss_mb()
        rss_at["last"] = _current_rss_mb()

    # A free reference (no exemplar_frames): every frame goes through the model. "first": the first frame in
    # colour, aligned to frame 0; "late": the frame at 90 % of the clip, aligned near it, so that every
    # frame before it is coloured backwards first (spooled on disk, the callback called as each is
    # coloured) and written to the mp4 afterwards. Not the last frame: the camera path loops every 1000
    # frames, so a 1000-frame clip's last frame is its first one again.
    reference_index = 0 if args.reference == "first" else int(0.9 * args.num_frames)
    # Frames are generated one at a time and skipped, so the clip is never all in memory.
    frames_up_to_reference = synthetic_frames(reference_index + 1, large_still(), grayscale=False)
    exemplar = next(islice(frames_up_to_reference, reference_index, None))
    output_path = Path(args.input).with_name("colorized.mp4")
    call_started = time.perf_counter()
    result = pipe(
        args.input,
        exemplars=exemplar,
        processing_size=args.processing_size,
        output_path=output_path,
        callback_on_frame_end=on_frame_end,
    )
    call_seconds = time.perf_counter() - call_started
    frames = len(frame_ends)
    warm_frames = frames - WARMUP_FRAMES
    warm_seconds = call_started + call_seconds - frame_ends[WARMUP_FRAMES - 1]
    growth = None
    if rss_at.get("warm") is not None and rss_at.get("last") is not None:
        growth = rss_at["last"] - rss_at["warm"]
    return {
        "frames": frames,
        "seconds_per_frame": warm_seconds / warm_frames,
        "first_frames_seconds": frame_ends[WARMUP_FRAMES - 1] - call_started,
        "call_seconds": call_seconds,
        "load_seconds": load_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_after_load_mb": rss_after_load,
        "rss_growth_warm_mb": growth,
        "torch_threads": torch.get_num_threads(),
        "processing_size": args.processing_size or pipe.config.processing_size,
        "output_frames_written": frames,
        "exemplar_placement": result.exemplar_placements[0],
    }


# ----------------------------------------------------------------------------------------------- parent


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_one(num_frames: int, args: argparse.Namespace) -> dict:
    """Write the input clip, then measure it in a fresh worker process."""
    from pipelines.core.video import write_video

    with tempfile.TemporaryDirectory(prefix="colorization_speed_") as folder:
        source = Path(folder) / "input.mp4"
        print(f"Writing a {num_frames}-frame {WIDTH}x{HEIGHT} grayscale clip...", flush=True)
        write_video(synthetic_frames(num_frames, large_still()), source, fps=25.0)
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--input", str(source)]
        command += ["--model", args.model, "--reference", args.reference, "--num-frames", str(num_frames)]
        if args.processing_size:
            command += ["--processing-size", str(args.processing_size)]
        print(f"Colouring it in a fresh process ({num_frames} frames)...", flush=True)
        completed = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, check=True)
    # The worker prints its result as the last line of stdout (libraries may print before it).
    return json.loads(completed.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames", type=int, nargs="+", default=[100], help="clip length(s), one process each"
    )
    parser.add_argument(
        "--processing-size", type=int, default=None, help="model short side (default: config)"
    )
    parser.add_argument(
        "--reference",
        choices=("first", "late"),
        default="first",
        help="the free reference: the clip's first frame in colour (default), or its frame at 90 %% of the "
        "clip, which makes the pipeline colour the frames before it backwards",
    )
    # Internal: the fresh process that does the measurement.
    parser.add_argument("--num-frames", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    return BENCHMARK.parse_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    if any(n <= WARMUP_FRAMES for n in args.frames):
        raise SystemExit(f"--frames must be above {WARMUP_FRAMES} (the warm-up frames are not timed)")
    for num_frames in args.frames:
        result = run_one(num_frames, args)
        print(
            f"{num_frames} frames: {result['seconds_per_frame']:.3f} s/frame warm, "
            f"first {WARMUP_FRAMES} frames {result['first_frames_seconds']:.1f} s, "
            f"model load {result['load_seconds']:.1f} s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB, reference {result['exemplar_placement']}"
        )
        cells = [
            str(result["processing_size"]),
            str(result["frames"]),
            _fmt(result["seconds_per_frame"], 3),
            _fmt(result["peak_rss_mb"], 0),
            _fmt(result["rss_growth_warm_mb"], 1),
            _fmt(result["rss_after_load_mb"], 0),
        ]
        flags = ["--frames", str(num_frames)]
        if args.processing_size:
            flags += ["--processing-size", str(args.processing_size)]
        if args.reference != "first":
            flags += ["--reference", args.reference]
        BENCHMARK.record_run(args, result["torch_threads"], cells, flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
