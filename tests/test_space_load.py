"""The Space under load, small enough for every test run: the real app (`python app.py`, its own queue
settings) serves 4 concurrent visitors across the tabs with bad inputs among them, then a burst of 10 jobs
into a queue of 4. The checks are `benchmarks/space_load.py`'s (run it for the full-size load test):
every good job correct, every bad input a clear error, the extra burst jobs refused as busy, the server up,
its process tree's peak RSS under 4 GB, and no temporary files left behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import space_load  # noqa: E402 (found through the benchmarks folder added above)

VISITORS = 4
RSS_BOUND_MB = 4096


def test_space_holds_four_concurrent_jobs_and_refuses_a_burst_past_its_queue(tmp_path):
    report = space_load.run_load_test(
        tmp_path,
        visitors=VISITORS,
        rounds=1,
        burst_size=10,
        # A 4-job queue, so a burst of 10 is past it; 12 frames at most, so the 16-frame clip is too long.
        env={"HUEFLOW_MAX_QUEUE_SIZE": "4", "HUEFLOW_MAX_FRAMES": "12"},
        media_size=(8, 64, 96),
        too_long=16,
        finetune_steps=0,
        rss_bound_mb=RSS_BOUND_MB,
        timeout=120,
        max_seconds=120,
    )
    print(report.summary())
    assert report.problems() == []
    assert {outcome.kind for outcome in report.good} == set(space_load.TAB_ORDER)  # every tab ran
    assert len(report.good) == len(report.bad) == VISITORS
    assert report.burst_refused > 0 and report.burst_served > 0
    assert report.burst_refused + report.burst_served == 10


def test_limits_scale_the_queue_and_a_jobs_frames_with_the_hardware():
    from space.limits import HARDWARE_LIMITS, Limits

    cpu = Limits.detect().with_env_overrides({})
    assert cpu.queue_settings() == {
        "default_concurrency_limit": cpu.event_concurrency,
        "max_size": cpu.max_queue_size,
    }
    for name in ("max_job_megapixels", "job_concurrency", "event_concurrency", "max_queue_size"):
        on_cpu, on_gpu = HARDWARE_LIMITS[name]
        assert on_gpu >= on_cpu  # a GPU never gets less
    limits = Limits.detect().with_env_overrides(
        {"HUEFLOW_MAX_FRAMES": "300", "HUEFLOW_MAX_JOB_MEGAPIXELS": "200"}
    )
    assert limits.frame_budget(854, 480) == 300  # max_frames binds at 480p
    assert limits.frame_budget(1280, 720) == 217  # the pixel budget binds at 720p
    assert limits.frame_budget(100_000, 100_000) == 1


def test_frame_progress_reports_rate_and_time_left(monkeypatch):
    from space import limits as limits_module

    clock = iter([10.0, 11.0, 12.0, 13.0])
    monkeypatch.setattr(limits_module.time, "perf_counter", lambda: next(clock))
    calls = []
    tracker = limits_module.FrameProgress(
        lambda progress, desc, unit: calls.append((progress, desc)), total=4, desc="Colorizing", every_s=0
    )
    for index in range(4):
        tracker(None, index, {})
    assert tracker.frames == 4
    assert calls[0] == ((1, 4), "Colorizing: 1/4 frames")  # no rate from one frame
    assert calls[2] == ((3, 4), "Colorizing: 3/4 frames, 1.0 frames/s, about 0:01 left")
    assert limits_module.format_duration(3725) == "1:02:05"
