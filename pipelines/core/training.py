"""What every hueflow training script shares: a run budget in steps and/or minutes, the learning-rate
schedule that follows it, an endless pass over a loader, and saving / resuming a run in one format.
Devices, processes and gradient sync stay with `accelerate`; this is not a trainer, only the dozen lines
each script would otherwise repeat."""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import DiffusionPipeline
from torch.utils.data import DataLoader


class RunBudget:
    """A run of at most `steps` steps and, optionally, `max_minutes` of training time (the clock starts
    with `start()`, so start-up does not count): whichever runs out first ends it."""

    def __init__(self, steps: int, max_minutes: float | None = None) -> None:
        self.steps, self.max_minutes = steps, max_minutes
        self.started = time.monotonic()

    def start(self) -> None:
        self.started = time.monotonic()

    def minutes(self) -> float:
        return (time.monotonic() - self.started) / 60

    def progress(self, step: int) -> float:
        """Fraction of the run done after `step` steps, in [0, 1]."""
        done = step / self.steps
        if self.max_minutes:
            done = max(done, self.minutes() / self.max_minutes)
        return min(done, 1.0)

    def finished(self, step: int) -> bool:
        return step >= self.steps or self.progress(step) >= 1.0


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer, budget: RunBudget, warmup_steps: int = 100
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup_steps`, then cosine decay to zero at the end of the budget (by steps
    or by time, whichever is further along)."""

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) * 0.5 * (1 + math.cos(math.pi * budget.progress(step)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def endless(loader: DataLoader) -> Iterator:
    """The loader's batches, pass after pass: a run is measured in steps or minutes, not epochs."""
    while True:
        yield from loader


# -- checkpoints: one resume format for every training script -------------------------------------------
#
# OUTPUT_DIR/                  the pipeline, `save_pretrained` (what `from_pretrained` loads)
# OUTPUT_DIR/training_state/   accelerate's state (models, optimizers, schedulers, RNGs) and
#                              step.json: {"step": steps done, "args": the command line's arguments}
TRAINING_STATE = "training_state"
_STEP_FILE = "step.json"


def saved_run(output_dir: str | os.PathLike) -> dict | None:
    """The bookkeeping of the run saved in `output_dir` ({"step": int, "args": dict}), or None if none is.

    Read before the data is built where a resumed run must continue the data stream where it stopped."""
    path = Path(output_dir) / TRAINING_STATE / _STEP_FILE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return {"step": int(record["step"]), "args": record.get("args", {})}


def resume_run(
    accelerator: Accelerator,
    output_dir: str | os.PathLike,
    args: argparse.Namespace | None = None,
    must_match: Sequence[str] = (),
) -> int:
    """Restore the state saved in `output_dir` into the objects `accelerator.prepare` returned; returns the
    step to continue from (0 when nothing is saved there). Each argument named in `must_match` must be what
    the saved run used (a different architecture cannot continue from those weights)."""
    record = saved_run(output_dir)
    if record is None:
        return 0
    for name in must_match:
        if name in record["args"] and record["args"][name] != getattr(args, name):
            raise SystemExit(
                f"error: --resume with a different --{name.replace('_', '-')} than the saved run "
                f"({record['args'][name]!r})."
            )
    accelerator.load_state(str(Path(output_dir) / TRAINING_STATE))
    return record["step"]


def save_run(
    accelerator: Accelerator,
    output_dir: str | os.PathLike,
    step: int,
    args: argparse.Namespace,
    make_pipeline: Callable[[], DiffusionPipeline],
) -> None:
    """Save the pipeline (`make_pipeline()`, built from unwrapped models, on the main process only) and the
    training state, so `--resume` continues from `step`."""
    output_dir = Path(output_dir)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        make_pipeline().save_pretrained(output_dir)
    accelerator.save_state(str(output_dir / TRAINING_STATE))
    if accelerator.is_main_process:
        record = {"step": step, "args": vars(args)}
        (output_dir / TRAINING_STATE / _STEP_FILE).write_text(json.dumps(record, default=str))
