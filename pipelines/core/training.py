"""What every hueflow training script shares: the run's command-line flags (`add_run_arguments`), a run
budget in steps and/or minutes, the learning-rate schedule that follows it, an endless pass over a loader,
one optimiser step, the console's running means and the per-step JSON log, and the step loop that saves a
run and resumes it in one format (`training_steps`, `save_run`, `resume_run`). Devices, processes and
gradient sync stay with `accelerate`; this is not a trainer: each script keeps its own models, data and
loop body, and only the lines all of them would otherwise repeat live here."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import torch
from accelerate import Accelerator
from diffusers import DiffusionPipeline
from torch.utils.data import DataLoader

logger = logging.getLogger(__name__)


def add_run_arguments(
    parser: argparse.ArgumentParser,
    *,
    output_dir: str,
    steps: int,
    save_every: int,
    log_every: int,
    num_workers: int,
) -> None:
    """The command-line flags of a run that every training script takes, with the script's defaults:
    --output-dir, --resume, --steps, --max-minutes, --num-workers, --save-every, --log-every, --seed."""
    parser.add_argument(
        "--output-dir",
        default=output_dir,
        help="folder the run is saved to: the pipeline and training_state/ (default: %(default)s)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the state in --output-dir")
    parser.add_argument(
        "--steps", type=int, default=steps, help="training steps to run (default: %(default)s)"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="time budget in minutes: stop and save after this long (a learning-rate schedule, where the "
        "script has one, follows whichever of --steps and time runs out first)",
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=num_workers,
        help="data loader worker processes; 0 loads in the main process (default: %(default)s)",
    )
    parser.add_argument(
        "--save-every",
        type=int,
        default=save_every,
        help="steps between saves; the run is also saved at its end (default: %(default)s)",
    )
    parser.add_argument(
        "--log-every", type=int, default=log_every, help="steps between console lines (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


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


def backward_and_step(
    accelerator: Accelerator,
    loss: torch.Tensor,
    parameters: Iterable[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float = 1.0,
) -> None:
    """One optimiser step on `loss`: backward, gradient-norm clipping of `parameters`, the optimiser and
    the learning-rate schedule, then the gradients cleared."""
    accelerator.backward(loss)
    accelerator.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


class RunningMeans:
    """Means of named values over the steps since they were last taken: what a console line reports."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, **values: float) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def take(self) -> dict[str, float]:
        """The means so far (an empty dict before any `add`), and a fresh start."""
        means = {name: total / self.count for name, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class StepLog:
    """OUTPUT_DIR/training_log.jsonl: one JSON line per step (written by the main process), so runs can be
    compared step by step. A fresh run starts it afresh; a resumed one appends to it."""

    NAME = "training_log.jsonl"

    def __init__(self, accelerator: Accelerator, output_dir: str | os.PathLike, resumed: bool) -> None:
        self.accelerator, self.path = accelerator, Path(output_dir) / self.NAME
        if accelerator.is_main_process and not resumed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.unlink(missing_ok=True)

    def write(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with self.path.open("a") as log:
                log.write(json.dumps(record) + "\n")

    def diverged(self, step: int) -> NoReturn:
        """End a run whose loss stopped being finite, unsaved, with exit status 2."""
        self.accelerator.end_training()
        logger.error("step %d: non-finite loss, the run diverged (see %s); not saved", step, self.path)
        raise SystemExit(2)


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
        logger.info("--resume: no saved run in %s, starting afresh", output_dir)
        return 0
    for name in must_match:
        if name in record["args"] and record["args"][name] != getattr(args, name):
            raise SystemExit(
                f"error: --resume with a different --{name.replace('_', '-')} than the saved run "
                f"({record['args'][name]!r})."
            )
    accelerator.load_state(str(Path(output_dir) / TRAINING_STATE))
    logger.info("resumed at step %d", record["step"])
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


def training_steps(
    accelerator: Accelerator,
    args: argparse.Namespace,
    budget: RunBudget,
    step: int,
    make_pipeline: Callable[[], DiffusionPipeline],
) -> Iterator[int]:
    """The numbers of the steps a run that has done `step` steps takes next (step + 1, step + 2, ...) until
    `budget` is spent; the clock starts at the first. After every `args.save_every`-th step and after the
    last, the run is saved to `args.output_dir` (`save_run`); then training ends. The loop body does one
    step per number; leaving the loop early (an exception) saves nothing more."""
    saved = step  # the state on disk: a resumed run's, or none at step 0
    budget.start()  # the time budget counts training, not start-up
    while not budget.finished(step):
        step += 1
        yield step
        if step % args.save_every == 0:
            save_run(accelerator, args.output_dir, step, args, make_pipeline)
            saved = step
    if step != saved:
        save_run(accelerator, args.output_dir, step, args, make_pipeline)
    accelerator.end_training()
    if accelerator.is_main_process:
        logger.info("saved %s after %d steps (%.1f min)", args.output_dir, step, budget.minutes())
