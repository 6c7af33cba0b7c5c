"""Speed and memory of ColorMNetPipeline on an 854x480 video, on this machine.

    python benchmarks/colorization_speed.py --frames 100
    python benchmarks/colorization_speed.py --frames 1000
    python benchmarks/colorization_speed.py --frames 100 1000      # one after the other
    python benchmarks/colorization_speed.py --frames 20 --no-record  # smoke test, nothing written

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
import datetime
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = REPO_ROOT / "benchmarks" / "RESULTS.md"
HEADING = "## Colorization speed (`benchmarks/colorization_speed.py`)"
TABLE_HEADER = (
    "| date | machine | torch threads | model | processing size | frames | s/frame (warm) | peak RSS MB "
    "| RSS growth MB (frame 3 to end) | RSS after load MB | command |\n"
    "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)
WIDTH, HEIGHT = 854, 480
WARMUP_FRAMES = 3

# The benchmark runs as a plain script (python benchmarks/...), so the repo root is not on sys.path by itself.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


# ----------------------------------------------------------------------------------------------- input clip


def _camera(index: int, still_shape: tuple[int, ...]) -> np.ndarray:
    """2x3 affine map from output pixels to still pixels: a smooth elliptical pan with a gentle zoom."""
    still_height, still_width = still_shape[:2]
    # One loop every 20 s at 25 fps, whatever the clip length: at most about 8 pixels of motion per frame.
    phase = 2 * math.pi * index / 500
    scale = 1.0 + 0.15 * math.sin(phase * 0.5)  # still pixels per output pixel
    span_x, span_y = still_width - WIDTH * scale, still_height - HEIGHT * scale
    left = 0.5 * span_x * (1 + 0.9 * math.sin(phase))
    top = 0.5 * span_y * (1 + 0.9 * math.cos(phase))
    return np.array([[scale, 0.0, left], [0.0, scale, top]], np.float32)


def large_still() -> np.ndarray:
    """A colour photo (scikit-image's astronaut) upscaled to 1536x1536, for the 854x480 window to roam."""
    import cv2
    from skimage import data

    return cv2.resize(data.astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)


def synthetic_frames(num_frames: int, still: np.ndarray, grayscale: bool = True) -> Iterator[np.ndarray]:
    """The clip's RGB uint8 frames (854x480), generated one at a time."""
    import cv2

    for index in range(num_frames):
        matrix = _camera(index, still.shape)
        frame = cv2.warpAffine(
            still,
            matrix,
            (WIDTH, HEIGHT),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        if grayscale:
            frame = np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        yield frame


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
        if index == WARMUP_FRAMES - 1:
            rss_at["warm"] = _current_rss_mb()
        rss_at["last"] = _current_rss_mb()

    exemplar = next(synthetic_frames(1, large_still(), grayscale=False))
    output_path = Path(args.input).with_name("colorized.mp4")
    call_started = time.perf_counter()
    pipe(
        args.input,
        exemplars=exemplar,  # a free reference (no exemplar_frames): every frame goes through the model
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
    }


# ----------------------------------------------------------------------------------------------- parent


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    # nproc counts the CPUs this process may use (affinity / cgroup cpusets), not those in the box.
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, nproc={nproc}"


def _command(num_frames: int, args: argparse.Namespace) -> str:
    parts = ["python", "benchmarks/colorization_speed.py", "--frames", str(num_frames)]
    if args.model != "checkpoints/colormnet-lite":
        parts += ["--model", args.model]
    if args.processing_size:
        parts += ["--processing-size", str(args.processing_size)]
    return shlex.join(parts)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_row(result: dict, num_frames: int, args: argparse.Namespace, machine: str) -> str:
    cells = [
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        machine,
        str(result["torch_threads"]),
        args.model,
        str(result["processing_size"]),
        str(result["frames"]),
        _fmt(result["seconds_per_frame"], 3),
        _fmt(result["peak_rss_mb"], 0),
        _fmt(result["rss_growth_warm_mb"], 1),
        _fmt(result["rss_after_load_mb"], 0),
        f"`{_command(num_frames, args)}`",
    ]
    return "| " + " | ".join(cells) + " |"


DESCRIPTION = (
    "ColorMNetPipeline on a synthetic 854x480 grayscale clip (pan/zoom over a photo) read from an "
    "mp4 and streamed to an mp4 (`output_path`), one fresh process per run. s/frame: warm, model "
    "load and the first 3 frames excluded. RSS growth: RSS at the last frame minus RSS after frame 3."
)


def record(
    row: str,
    heading: str = HEADING,
    table_header: str = TABLE_HEADER,
    description: str = DESCRIPTION,
    path: Path = RESULTS_PATH,
) -> None:
    """Add `row` at the end of a benchmark's table in RESULTS.md, creating its section if needed."""
    lines = path.read_text().splitlines() if path.exists() else ["# Benchmark results"]
    if heading not in lines:
        lines += ["", heading, "", description, "", *table_header.splitlines()]
        lines.append(row)
    else:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        table_lines = [i for i in range(start, end) if lines[i].startswith("|")]
        if table_lines:
            lines.insert(table_lines[-1] + 1, row)
        else:
            lines[end:end] = [*table_header.splitlines(), row, ""]
    path.write_text("\n".join(lines) + "\n")


def print_and_record(cells: list[str], heading: str, table_header: str, description: str, save: bool) -> None:
    """Print a benchmark's table header and its new row (`cells`), and with `save` add the row to
    RESULTS.md (`record`): the last step every benchmark script shares."""
    row = "| " + " | ".join(cells) + " |"
    print(table_header.splitlines()[0])
    print(row, flush=True)
    if save:
        record(row, heading, table_header, description)


def run_one(num_frames: int, args: argparse.Namespace, machine: str) -> dict:
    """Write the input clip, then measure it in a fresh worker process."""
    from pipelines.core.video import write_video

    with tempfile.TemporaryDirectory(prefix="colorization_speed_") as folder:
        source = Path(folder) / "input.mp4"
        print(f"Writing a {num_frames}-frame {WIDTH}x{HEIGHT} grayscale clip...", flush=True)
        write_video(synthetic_frames(num_frames, large_still()), source, fps=25.0)
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--input", str(source)]
        command += ["--model", args.model]
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
    parser.add_argument("--model", default="checkpoints/colormnet-lite", help="pipeline folder to load")
    parser.add_argument(
        "--processing-size", type=int, default=None, help="model short side (default: config)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to RESULTS.md")
    # Internal: the fresh process that does the measurement.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    if any(n <= WARMUP_FRAMES for n in args.frames):
        raise SystemExit(f"--frames must be above {WARMUP_FRAMES} (the warm-up frames are not timed)")
    machine = machine_description()
    for num_frames in args.frames:
        result = run_one(num_frames, args, machine)
        row = markdown_row(result, num_frames, args, machine)
        print(
            f"{num_frames} frames: {result['seconds_per_frame']:.3f} s/frame warm, "
            f"first {WARMUP_FRAMES} frames {result['first_frames_seconds']:.1f} s, "
            f"model load {result['load_seconds']:.1f} s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB"
        )
        print(TABLE_HEADER.splitlines()[0])
        print(row, flush=True)
        if not args.no_record:
            record(row)
            print(f"Recorded in {RESULTS_PATH.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
