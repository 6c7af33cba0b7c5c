"""Colour a whole archive: `python -m pipelines colorize-batch MANIFEST -o OUT_DIR`.

MANIFEST is JSON Lines, one object per video::

    {"video": "reel1/a.mp4", "exemplars": ["refs/a0.png", "refs/a1.jpg"], "exemplar_frames": [0, null]}
    {"video": "reel1/b.mp4", "exemplars": ["refs/b.png"], "output": "b_colour.mp4"}

or a CSV with the same column names (`exemplars` and `exemplar_frames` separated by ";", a blank frame
entry is a free reference). Relative paths are relative to the manifest's folder; `output` (default: the
video's stem + ".mp4") is a file name, or a relative path, inside OUT_DIR. A frame of -1 means a free
reference, as on the `colorize` command line.

Scale-out: under `torchrun` or `accelerate launch` the rows are split between the processes (and machines)
with accelerate's `PartialState.split_between_processes`; nothing here is a distributed layer of its own.
On a CPU-only machine `torchrun --standalone --nproc_per_node N -m pipelines colorize-batch ...` gives N
gloo processes (`PartialState(cpu=True)`); `accelerate launch --num_processes N` on a CPU starts a single
process unless accelerate is configured for MPI, so use torchrun there. Across machines OUT_DIR must be one
shared folder (NFS, ...): that is where finished rows are found and results are merged.

Resumable and safe:
- each video is written under a hidden temporary name next to its output (`.NAME.<token>.partial.mp4`, the
  encoder's own temp file inside that) and moved into place with `os.replace` only once it is complete and
  has every frame, so a crash, Ctrl-C or SIGKILL never leaves a file at the output name; temporary names
  left by a killed run are removed when the next run starts;
- a rerun skips the rows whose output is already there and matches the input (its frame count, within the
  one frame a container's count may be off by, and its size), not merely by name, and retries the rest;
- a bad row (unreadable or corrupt video, missing exemplar, bad manifest line) is recorded with its error and
  the batch goes on.

Results: OUT_DIR/results.jsonl, one JSON object per row and attempt: row (the row's line number in the
manifest), video, output (relative to OUT_DIR), status (done / failed / skipped), seconds, frames, error,
process (the index of the process that handled it) and time. Each process appends to its own file under
OUT_DIR/.results-parts/, one `os.write` per line, and the main process merges those into results.jsonl at
the end of the run (or, after a crash, at the start of the next one): one writer per file is safe on
shared network file systems too, where O_APPEND from several machines is not.

The exit status is 0 once every row has been tried, failed rows included (they are in the summary and the
results; `--strict` makes it 1 when any row failed), and 2 for an unusable manifest or model. (A non-zero
status under torchrun also prints torchrun's own failure report, which is why failed rows alone do not
give one by default.)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / "checkpoints" / "colormnet-lite"
RESULTS_NAME = "results.jsonl"
PARTS_DIR = ".results-parts"
FIELDS = ("video", "exemplars", "exemplar_frames", "output")
# A container's frame count may be estimated from its duration (see `core.video.is_cut_short`).
FRAME_COUNT_SLACK = 1


class ManifestError(ValueError):
    """The manifest as a whole cannot be used (missing, empty, no `video` column)."""


class RowError(ValueError):
    """One row cannot be coloured; recorded as failed with this message, and the batch goes on."""


# ----------------------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class BatchRow:
    """One row of the manifest, paths resolved. `error` is set (and the rest may be empty) when the row
    itself is unusable: it is then recorded as failed without being tried."""

    row: int
    """The row's line number in the manifest (1-based; a CSV's header is line 1)."""
    video: str
    exemplars: tuple[str, ...] = ()
    exemplar_frames: tuple[int | None, ...] | None = None
    output: str = ""
    """Path of the output relative to OUT_DIR (POSIX separators)."""
    error: str | None = None


def _resolve(base: Path, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"{what} must be a non-empty path, got {value!r}.")
    path = Path(value.strip()).expanduser()
    return str(path if path.is_absolute() else base / path)


def _frame(value: Any) -> int | None:
    """One exemplar_frames entry: an int (negative: free reference) or null / blank / "null"."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"exemplar_frames entry {value!r} is not a frame number (an integer, or null).")
    return value if value >= 0 else None


def _output_name(value: Any, video: str) -> str:
    """`output` checked to stay inside OUT_DIR; default: the video's stem + ".mp4"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Path(video).stem + ".mp4"
    if not isinstance(value, str):
        raise RowError(f"output must be a file name, got {value!r}.")
    path = PurePosixPath(value.strip().replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or any(part.startswith(".") for part in path.parts):
        # Hidden names are the batch's own temporary files; absolute paths and ".." would leave OUT_DIR.
        raise RowError(f"output {value!r} must be a relative path inside the output folder, not hidden.")
    if path.suffix.lower() != ".mp4":
        raise RowError(f"output {value!r} must end in .mp4 (the batch writes H.264 mp4).")
    return str(path)


def _make_row(row: int, fields: dict[str, Any], base: Path) -> BatchRow:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise RowError(f"unknown field(s) {', '.join(unknown)}; a row has {', '.join(FIELDS)}.")
    video = _resolve(base, fields.get("video"), "video")
    exemplars = fields.get("exemplars")
    exemplars = [exemplars] if isinstance(exemplars, str) else exemplars
    if not isinstance(exemplars, list) or not exemplars:
        raise RowError("exemplars must be a list of one or more colour image paths.")
    frames = fields.get("exemplar_frames")
    if frames is not None and not isinstance(frames, list):
        frames = [frames]
    return BatchRow(
        row=row,
        video=video,
        exemplars=tuple(_resolve(base, path, "each exemplar") for path in exemplars),
        exemplar_frames=None if frames is None else tuple(_frame(value) for value in frames),
        output=_output_name(fields.get("output"), video),
    )


def _failed_row(row: int, fields: Any, error: Exception) -> BatchRow:
    video = fields.get("video") if isinstance(fields, dict) else None
    return BatchRow(row=row, video=str(video) if video else "", error=str(error))


def _jsonl_records(path: Path) -> Iterable[tuple[int, Any]]:
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as error:
                yield line_number, RowError(f"line {line_number} is not valid JSON ({error}).")


def _csv_records(path: Path) -> Iterable[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        columns = [name.strip() for name in reader.fieldnames or []]
        if "video" not in columns:
            raise ManifestError(f"{path} has no 'video' column; its header must name {', '.join(FIELDS)}.")
        unknown = sorted(set(columns) - set(FIELDS))
        if unknown:
            raise ManifestError(
                f"{path} has unknown column(s) {', '.join(unknown)}; use {', '.join(FIELDS)}."
            )
        reader.fieldnames = columns
        for record in reader:
            if not any((value or "").strip() for value in record.values()):
                continue  # a blank line
            fields: dict[str, Any] = {key: value for key, value in record.items() if key is not None}
            for key in ("exemplars", "exemplar_frames"):  # lists separated by ";"
                text = (fields.get(key) or "").strip()
                fields[key] = [entry.strip() for entry in text.split(";")] if text else None
            if fields.get("exemplars"):
                fields["exemplars"] = [entry for entry in fields["exemplars"] if entry]
            yield reader.line_num, fields


def read_manifest(manifest: str | os.PathLike) -> list[BatchRow]:
    """The manifest's rows (JSON Lines, or CSV for a `.csv` file). A row that cannot be used comes back
    with its `error` set, so it is recorded and the rest of the batch runs; two rows with the same output
    are an error for the later one. Raises `ManifestError` when the manifest is missing or has no rows."""
    path = Path(manifest)
    if not path.is_file():
        raise ManifestError(f"manifest '{path}' does not exist.")
    base = path.parent
    records = _csv_records(path) if path.suffix.lower() == ".csv" else _jsonl_records(path)
    rows: list[BatchRow] = []
    owners: dict[str, int] = {}
    for row, fields in records:
        try:
            if isinstance(fields, Exception):
                raise fields
            if not isinstance(fields, dict):
                raise RowError(f"line {row} is not a JSON object.")
            batch_row = _make_row(row, fields, base)
            key = batch_row.output.lower()  # case-insensitive file systems would clash too
            if key in owners:
                raise RowError(
                    f"output '{batch_row.output}' is also row {owners[key]}'s: give this row its own "
                    '"output" name.'
                )
            owners[key] = row
        except RowError as error:
            batch_row = _failed_row(row, fields, error)
        rows.append(batch_row)
    if not rows:
        raise ManifestError(f"manifest '{path}' has no rows.")
    return rows


# ----------------------------------------------------------------------------------------------- files


def temporary_files(target: Path) -> list[Path]:
    """The temporary files a write of `target` leaves when it is killed: this module's
    `.NAME.<token>.partial.mp4` and the encoder's `..NAME.<token>.partial.mp4.<id>.partial` inside it."""
    if not target.parent.is_dir():
        return []
    prefix = target.name + "."
    return [
        path
        for path in target.parent.iterdir()
        if path.name.startswith(".") and path.name.lstrip(".").startswith(prefix) and ".partial" in path.name
    ]


def finished_frames(target: Path, expected: int, width: int, height: int) -> int | None:
    """The frame count of `target` when it is a finished output for an input of `expected` frames of
    `width` x `height` (the encoder pads odd sizes by one pixel), else None: checked from the file itself,
    not its name."""
    from .core.video import VideoInputError, VideoReader

    if not target.is_file():
        return None
    try:
        info = VideoReader(target).info
    except VideoInputError:
        return None  # not a finished video: it is coloured again and replaced
    same_size = (info.width, info.height) == (width + width % 2, height + height % 2)
    if same_size and abs(info.num_frames - expected) <= FRAME_COUNT_SLACK:
        return info.num_frames
    return None


class ResultsLog:
    """Per-process append-only results (one `os.write` of a whole line per record) under
    OUT_DIR/.results-parts/, merged into OUT_DIR/results.jsonl by the main process (`merge`)."""

    def __init__(self, out_dir: Path, process: int) -> None:
        self.folder = out_dir / PARTS_DIR
        self.results = out_dir / RESULTS_NAME
        name = f"process{process:05d}-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.path = self.folder / name
        self.records: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.folder.mkdir(parents=True, exist_ok=True)
        _append_line(self.path, json.dumps(record, ensure_ascii=False))

    def merge(self) -> None:
        """Append every part file to results.jsonl (in process order) and remove it. Only the main process
        calls this, while no other process writes (before the first barrier, after the last one)."""
        if not self.folder.is_dir():
            return
        for part in sorted(self.folder.glob("*.jsonl")):
            lines = []
            for line in part.read_text(encoding="utf-8").splitlines():
                try:  # a process killed mid-write may leave half a line: drop it, keep the file valid
                    json.loads(line)
                    lines.append(line)
                except json.JSONDecodeError:
                    continue
            if lines:
                _append_line(self.results, "\n".join(lines))
            part.unlink()
        with contextlib.suppress(OSError):  # not empty: another machine's process is still writing
            self.folder.rmdir()


def _append_line(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (text + "\n").encode("utf-8"))
    finally:
        os.close(descriptor)


# ----------------------------------------------------------------------------------------------- work


@dataclass
class RowPlan:
    """What the check before the run found for a row: "pending", "done" (its output is finished) or
    "failed" (unusable row or unreadable video), the frames to colour (or found in the output) and the
    input's size."""

    index: int
    state: str
    frames: int = 0
    error: str | None = None
    seconds: float = 0.0


def plan_row(index: int, row: BatchRow, out_dir: Path, max_frames: int | None) -> RowPlan:
    """Open the row's video (one frame decoded) and look for a finished output."""
    from .core.video import VideoInputError, VideoReader

    started = time.perf_counter()
    if row.error is not None:
        return RowPlan(index, "failed", error=row.error)
    try:
        reader = VideoReader(row.video, max_frames=max_frames)
    except (VideoInputError, OSError) as error:
        return RowPlan(index, "failed", error=str(error), seconds=time.perf_counter() - started)
    expected = len(reader)
    done = finished_frames(out_dir / row.output, expected, reader.info.width, reader.info.height)
    state = "pending" if done is None else "done"
    return RowPlan(
        index, state, frames=expected if done is None else done, seconds=time.perf_counter() - started
    )


def colour_row(
    pipe: Any,
    row: BatchRow,
    out_dir: Path,
    args: argparse.Namespace,
    on_frame: Callable[[], None] = lambda: None,
) -> int:
    """Colour one row into OUT_DIR/output through a temporary name; returns the frames written. Raises
    (VideoInputError, ExemplarError, RowError, ...) for a bad row, with nothing left at the output name."""
    from .colorization import ColorMNetPipeline
    from .core.video import VideoReader, is_cut_short, load_image

    reader = VideoReader(row.video, max_frames=args.max_frames)
    exemplars = [load_image(path) for path in row.exemplars]  # decoded once, for the check and the call
    frames = list(row.exemplar_frames) if row.exemplar_frames is not None else None
    ColorMNetPipeline.check_inputs(len(reader), exemplars, frames, args.processing_size)
    target = out_dir / row.output
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial.mp4")
    written = 0

    def count(_pipe: Any, _index: int, _kwargs: dict) -> None:
        nonlocal written
        written += 1
        on_frame()

    try:
        pipe(
            reader,
            exemplars=exemplars,
            exemplar_frames=frames,
            processing_size=args.processing_size,
            max_frames=args.max_frames,
            fallback_error=args.fallback_error,
            output_path=temporary,
            callback_on_frame_end=count,
        )
        # A truncated file decodes fewer frames than it declares: such an output would never match the
        # input on a rerun, and is not the whole film, so it is not put in place.
        if is_cut_short(written, len(reader)):
            raise RowError(
                f"only {written} of the {len(reader)} frames of '{row.video}' could be decoded: the file is "
                "truncated or damaged; re-export it."
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return written


def _record(row: BatchRow, status: str, seconds: float, frames: int, error: str | None, process: int) -> dict:
    return {
        "row": row.row,
        "video": row.video,
        "output": row.output,
        "status": status,
        "seconds": round(seconds, 3),
        "frames": frames,
        "error": error,
        "process": process,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _load_pipeline(args: argparse.Namespace, device: Any) -> Any:
    from .colorization import ColorMNetPipeline

    pipe = ColorMNetPipeline.from_pretrained(args.model).to(device)
    pipe.set_progress_bar_config(disable=True)  # the batch's own bar counts frames over all the videos
    return pipe


def summarize(records: Sequence[dict[str, Any]], rows: int, processes: int, seconds: float) -> str:
    """The end-of-run summary: counts per status, frames coloured and time, then each failed row."""
    counts = {status: sum(r["status"] == status for r in records) for status in ("done", "failed", "skipped")}
    frames = sum(r["frames"] for r in records if r["status"] == "done")
    rate = f" ({frames / seconds:.1f} frames/s)" if seconds > 0 and frames else ""
    lines = [
        f"colorize-batch: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped of "
        f"{rows} rows on {processes} process{'es' if processes != 1 else ''}; {frames} frames coloured in "
        f"{seconds:.1f} s{rate}."
    ]
    for record in sorted(records, key=lambda r: r["row"]):
        if record["status"] == "failed":
            lines.append(f"  failed: row {record['row']} ({record['video'] or '?'}): {record['error']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The command: plan (skip finished rows), colour this process's share, merge results, summarise."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be a positive integer, got {args.max_frames}.")
    rows = read_manifest(args.manifest)
    out_dir = Path(args.output_dir)
    state = PartialState(cpu=args.cpu or not torch.cuda.is_available())
    log = ResultsLog(out_dir, state.process_index)

    # 1. Main process, before anyone writes: merge a crashed run's results, remove its temporary files.
    if state.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        log.merge()
        for row in rows:
            if row.error is None:
                for path in temporary_files(out_dir / row.output):
                    path.unlink(missing_ok=True)
    state.wait_for_everyone()

    process = state.process_index

    def record(row: BatchRow, status: str, seconds: float, frames: int = 0, error: str | None = None) -> None:
        log.write(_record(row, status, seconds, frames, error, process))

    # 2. Plan: the rows are checked in shares, and every process gets the whole plan, so the pending rows
    # (not all rows) are what is split next: a resumed run stays balanced.
    with state.split_between_processes(list(range(len(rows)))) as share:
        plans = [plan_row(index, rows[index], out_dir, args.max_frames) for index in share]
        for plan in plans:
            if plan.state != "pending":
                status = "skipped" if plan.state == "done" else "failed"
                record(rows[plan.index], status, plan.seconds, plan.frames, plan.error)
    pending = [plan for plan in gather_object(plans) if plan.state == "pending"]

    # 3. Colour this process's share of the pending rows, one tqdm bar per process (frames, with ETA).
    with state.split_between_processes(pending) as mine:
        pipe = _load_pipeline(args, state.device) if mine else None
        bar = tqdm(
            total=sum(plan.frames for plan in mine),
            desc=f"process {process}" if state.num_processes > 1 else "colorize-batch",
            unit="frame",
            position=state.local_process_index,  # one line per process of this machine's terminal
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not mine,
        )
        with bar:
            for number, plan in enumerate(mine, start=1):
                row = rows[plan.index]
                bar.set_postfix_str(f"video {number}/{len(mine)}: {Path(row.video).name}", refresh=False)
                bar_before, row_started = bar.n, time.perf_counter()
                try:
                    frames = colour_row(pipe, row, out_dir, args, on_frame=bar.update)
                except KeyboardInterrupt:
                    record(row, "failed", time.perf_counter() - row_started, error="interrupted")
                    raise
                except Exception as error:  # a bad row is recorded and the batch goes on
                    message = (
                        str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
                    )
                    record(row, "failed", time.perf_counter() - row_started, error=message)
                else:
                    record(row, "done", time.perf_counter() - row_started, frames)
                bar.update(max(0, bar_before + plan.frames - bar.n))  # a failed row's frames are not coming

    # 4. Wait for every process (the gather is the barrier), merge the results, print the summary.
    records: list[dict] = gather_object(log.records)
    if state.is_main_process:
        log.merge()
        print(summarize(records, len(rows), state.num_processes, time.perf_counter() - started))
        print(f"results: {out_dir / RESULTS_NAME}")
    return 1 if args.strict and any(record["status"] == "failed" for record in records) else 0


# ----------------------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `colorize-batch` options, added to `parser` (a sub-parser of `python -m pipelines`)."""
    parser.add_argument("manifest", help="JSON Lines (or .csv): video, exemplars, exemplar_frames, output")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the outputs and results.jsonl")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder or Hub repo id")
    parser.add_argument(
        "--processing-size", type=int, help="short side the model runs at (outputs keep the input size)"
    )
    parser.add_argument("--max-frames", type=int, help="colour only the first N frames of each video")
    parser.add_argument(
        "--fallback-error", type=float, help="the anchored colour's threshold (see `colorize --help`)"
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is there")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any row failed")
    parser.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .core.hub import PretrainedLoadError

    parser = add_arguments(
        argparse.ArgumentParser(prog="python -m pipelines.batch", description=__doc__.split("\n\n")[0])
    )
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, PretrainedLoadError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
