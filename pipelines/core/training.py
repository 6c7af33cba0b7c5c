"""What every hueflow training script shares: a run budget in steps and/or minutes, the learning-rate
schedule that follows it, and an endless loader of training clips. Devices, processes and gradient
sync stay with `accelerate`; this only saves each script from repeating the same dozen lines."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator, Sequence

import torch
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


def clip_loader(
    data: Sequence[str | os.PathLike],
    num_frames: int,
    size: int,
    batch_size: int,
    steps: int,
    num_workers: int,
) -> DataLoader:
    """Batches (B, T, 3, size, size) of training clips: real video and pseudo videos of stills
    (`ColorizationClips`), enough for `steps` steps per pass."""
    from ..colorization.data import ColorizationClips  # the data pipeline both systems train on

    dataset = ColorizationClips(data, num_frames=num_frames, size=size, samples_per_epoch=steps * batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        drop_last=True,
        persistent_workers=num_workers > 0,
    )


def endless(loader: DataLoader) -> Iterator:
    """The loader's batches, pass after pass: a run is measured in steps or minutes, not epochs."""
    while True:
        yield from loader
