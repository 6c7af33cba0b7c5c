"""The training scripts' shared helpers (`pipelines.core.training`): the one resume format, the step loop
that saves on schedule and at the end, and the console's running means."""

from __future__ import annotations

import argparse
import json

import pytest
import torch
from accelerate import Accelerator

from pipelines.core.training import (
    TRAINING_STATE,
    RunBudget,
    RunningMeans,
    add_run_arguments,
    resume_run,
    save_run,
    saved_run,
    training_steps,
)


class Saved:
    """A stand-in pipeline: records the steps at which it was saved."""

    def __init__(self, log: list) -> None:
        self.log = log

    def save_pretrained(self, folder) -> None:
        self.log.append(folder)


def run(tmp_path, steps: int, done: int = 0, save_every: int = 2, **extra):
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(torch.nn.Linear(2, 2))
    args = argparse.Namespace(output_dir=str(tmp_path), save_every=save_every, steps=steps, **extra)
    saves: list = []
    taken = list(training_steps(accelerator, args, RunBudget(steps), done, lambda: Saved(saves)))
    return taken, saves, accelerator, model, args


def test_steps_save_on_schedule_and_at_the_end_and_resume(tmp_path):
    assert saved_run(tmp_path) is None
    taken, saves, _, _, _ = run(tmp_path, steps=3, width=4)
    assert taken == [1, 2, 3] and len(saves) == 2  # after step 2 (every 2) and after the last
    assert json.loads((tmp_path / TRAINING_STATE / "step.json").read_text()) == {
        "step": 3,
        "args": {"output_dir": str(tmp_path), "save_every": 2, "steps": 3, "width": 4},
    }
    accelerator = Accelerator(cpu=True)
    accelerator.prepare(torch.nn.Linear(2, 2))
    args = argparse.Namespace(width=4)
    assert resume_run(accelerator, tmp_path, args, must_match=("width",)) == 3
    with pytest.raises(SystemExit, match="different --width"):
        resume_run(accelerator, tmp_path, argparse.Namespace(width=8), must_match=("width",))
    # a resumed run whose budget is spent takes no step and leaves the saved state alone
    taken, saves, *_ = run(tmp_path, steps=3, done=3)
    assert taken == [] and saves == []


def test_save_run_records_the_step_and_arguments(tmp_path):
    accelerator = Accelerator(cpu=True)
    accelerator.prepare(torch.nn.Linear(2, 2))
    saves: list = []
    save_run(accelerator, tmp_path, 5, argparse.Namespace(lr=1e-3, data=tmp_path), lambda: Saved(saves))
    assert saves == [tmp_path]
    assert saved_run(tmp_path) == {"step": 5, "args": {"lr": 1e-3, "data": str(tmp_path)}}


def test_running_means_cover_the_steps_since_last_taken():
    running = RunningMeans()
    running.add(loss=1.0, zero=2.0)
    running.add(loss=3.0, zero=2.0)
    assert running.take() == {"loss": 2.0, "zero": 2.0}
    running.add(loss=5.0)
    assert running.take() == {"loss": 5.0} and running.take() == {}


def test_run_arguments_take_each_scripts_defaults():
    parser = argparse.ArgumentParser()
    add_run_arguments(parser, output_dir="runs/x", steps=30, save_every=10, log_every=5, num_workers=2)
    assert vars(parser.parse_args([])) == {
        "output_dir": "runs/x",
        "resume": False,
        "steps": 30,
        "max_minutes": None,
        "num_workers": 2,
        "save_every": 10,
        "log_every": 5,
        "seed": 0,
    }
    given = parser.parse_args(["--resume", "--steps", "4", "--max-minutes", "1.5", "--seed", "3"])
    assert (given.resume, given.steps, given.max_minutes, given.seed) == (True, 4, 1.5, 3)
    assert "--steps and time runs out first" in " ".join(parser.format_help().split())
