"""What every benchmark script shares: describing this machine, printing a result row and recording it
in benchmarks/RESULTS.md under the benchmark's heading, and the synthetic 854x480 clip (a slow pan and
zoom over a photo) that the video benchmarks measure.

Every benchmark's table starts with the same columns (date, machine, torch threads, model) and ends with
the exact command, in backticks; `record_run` builds that row around the benchmark's own cells. A script
describes its section once as a `Benchmark`, which also adds the `--model` and `--no-record` options all
scripts take and turns a run's options back into the command recorded.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
# A benchmark runs as a plain script (`python benchmarks/X.py`): Python puts benchmarks/ on sys.path, so the
# script finds this module as `common`, and importing it puts the repo root there too, for `pipelines`.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
RESULTS_PATH = REPO_ROOT / "benchmarks" / "RESULTS.md"
WIDTH, HEIGHT = 854, 480


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


# ----------------------------------------------------------------------------------------------- results


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


def record(row: str, heading: str, table_header: str, description: str, path: Path = RESULTS_PATH) -> None:
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


def print_and_record(cells: list[str], heading: str, table_header: str, description: str, save: bool) -> str:
    """Print a benchmark's table header and its new row (`cells`), and with `save` add the row to
    RESULTS.md (`record`). Returns the row."""
    row = "| " + " | ".join(cells) + " |"
    print(table_header.splitlines()[0])
    print(row, flush=True)
    if save:
        record(row, heading, table_header, description)
        print(f"Recorded in {RESULTS_PATH.relative_to(REPO_ROOT)}")
    return row


def record_run(
    heading: str,
    table_header: str,
    description: str,
    *,
    model: str,
    torch_threads: int,
    cells: list[str],
    command: list[str],
    save: bool,
) -> str:
    """The last step of every benchmark: the standard row (date, machine, torch threads, `model`, the
    benchmark's own `cells`, then `command` quoted in backticks), printed and, with `save`, recorded."""
    row_cells = [
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        machine_description(),
        str(torch_threads),
        model,
        *cells,
        f"`{shlex.join(command)}`",
    ]
    return print_and_record(row_cells, heading, table_header, description, save)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script: its section of RESULTS.md and the options every script takes."""

    script: str  # as run from the repo root, e.g. "benchmarks/pseudo_video_speed.py"
    title: str  # the section heading, before the script's name
    default_model: str
    table_header: str  # the markdown header and alignment lines
    description: str  # the paragraph under the heading

    @property
    def heading(self) -> str:
        return f"## {self.title} (`{self.script}`)"

    def parse_args(self, parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
        """Add `--model` and `--no-record` to the script's own options, then parse `argv`."""
        parser.add_argument("--model", default=self.default_model, help="pipeline folder to load")
        parser.add_argument(
            "--no-record", action="store_true", help="print only, do not append to RESULTS.md"
        )
        return parser.parse_args(argv)

    def record_run(
        self, args: argparse.Namespace, torch_threads: int, cells: list[str], flags: list[str]
    ) -> str:
        """`record_run` for this benchmark: the command is the script with `flags`, then `--model` when it
        is not the default; the row is recorded unless `--no-record`."""
        command = ["python", self.script, *flags]
        if args.model != self.default_model:
            command += ["--model", args.model]
        return record_run(
            self.heading,
            self.table_header,
            self.description,
            model=args.model,
            torch_threads=torch_threads,
            cells=cells,
            command=command,
            save=not args.no_record,
        )
