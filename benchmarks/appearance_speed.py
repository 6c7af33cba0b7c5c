"""Speed of ZeroToHeroPipeline (appearance transfer) on an 854x480 video: Zero stage, Hero stage and
the per-video fine-tuning of the restorer.

    python benchmarks/appearance_speed.py --frames 30
    python benchmarks/appearance_speed.py --frames 8 --finetune-steps 5 --no-record   # smoke test

The clip is the colorization benchmark's (a slow pan and zoom over a photo, here in colour), written to
an mp4. The edited anchor is frame 0 with its reds turned blue and a striped patch painted on it. The
pipeline runs twice from the mp4 with `output_path` set (decode -> Zero stage [-> Hero stage] -> H.264
encode): once with `use_restorer=False` (the Zero stage alone) and once with it (Zero + Hero); the Hero
stage's cost is the difference. Seconds per frame are warm (model load, the anchor's encoding and the
first 3 frames excluded). The fine-tuning time is `finetune_restorer` for `--finetune-steps` steps on
proxy pairs of the anchor (the pipeline's `finetune_steps`). One row per run is appended to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import Benchmark, large_still, synthetic_frames

BENCHMARK = Benchmark(
    script="benchmarks/appearance_speed.py",
    title="Appearance transfer speed",
    default_model="checkpoints/zero2hero-lite",
    table_header=(
        "| date | machine | torch threads | model | processing size | frames | Zero s/frame "
        "| Zero+Hero s/frame | Hero s/frame | fine-tuning steps | fine-tuning s | peak RSS MB | command |\n"
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    ),
    description=(
        "ZeroToHeroPipeline carrying an edit of frame 0 (reds to blue, a painted striped patch) through a "
        "synthetic 854x480 colour clip (pan/zoom over a photo) read from an mp4, output streamed to an mp4. "
        "s/frame: warm (model load, anchor encoding and the first 3 frames excluded); "
        "Hero = (Zero+Hero) - Zero. Fine-tuning: `finetune_restorer` on proxy pairs of the anchor."
    ),
)
WARMUP_FRAMES = 3


def edited_anchor(frame: np.ndarray) -> np.ndarray:
    """Frame 0 with its reds turned blue and a striped patch painted in the middle (RGB uint8)."""
    edited = frame.astype(np.int16)
    red = (edited[..., 0] > edited[..., 1] + 30) & (edited[..., 0] > edited[..., 2] + 30)
    edited[red] = edited[red][:, [2, 1, 0]]
    height, width = frame.shape[:2]
    patch = edited[height // 3 : height // 2, width // 3 : width // 2]
    stripes = (np.arange(patch.shape[1]) // 6 % 2 == 0)[None, :]
    patch[..., 1] = np.where(stripes, 220, patch[..., 1])
    return edited.clip(0, 255).astype(np.uint8)


def timed_run(pipe, source: Path, target: Path, edited: np.ndarray, use_restorer: bool) -> float:
    """Warm seconds per frame of one pipeline run from `source` to `target`."""
    frame_ends: list[float] = []
    pipe(
        video=source,
        edited_frame=edited,
        frame_index=0,
        use_restorer=use_restorer,
        finetune_steps=0,
        output_path=target,
        callback_on_frame_end=lambda pipeline, index, outputs: frame_ends.append(time.perf_counter()),
    )
    finished = time.perf_counter()
    return (finished - frame_ends[WARMUP_FRAMES - 1]) / (len(frame_ends) - WARMUP_FRAMES)


def run(num_frames: int, model: str, finetune_steps: int) -> dict:
    import resource

    import torch

    from pipelines import ZeroToHeroPipeline
    from pipelines.core.video import write_video

    frames = list(synthetic_frames(num_frames, large_still(), grayscale=False))
    edited = edited_anchor(frames[0])
    with tempfile.TemporaryDirectory(prefix="appearance_speed_") as folder:
        source, target = Path(folder) / "input.mp4", Path(folder) / "edited.mp4"
        write_video(iter(frames), source, fps=25.0)
        pipe = ZeroToHeroPipeline.from_pretrained(model)
        pipe.set_progress_bar_config(disable=True)
        zero = timed_run(pipe, source, target, edited, use_restorer=False)
        zero_hero = timed_run(pipe, source, target, edited, use_restorer=True)
    begin = time.perf_counter()
    if finetune_steps:
        pipe.finetune_restorer(frames[0], edited, finetune_steps)
    finetune_seconds = time.perf_counter() - begin
    return {
        "frames": num_frames,
        "zero": zero,
        "zero_hero": zero_hero,
        "finetune_steps": finetune_steps,
        "finetune_seconds": finetune_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "processing_size": pipe.config.processing_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--finetune-steps", type=int, default=50)
    args = BENCHMARK.parse_args(parser, argv)
    if args.frames <= WARMUP_FRAMES + 1:
        raise SystemExit(f"--frames must be above {WARMUP_FRAMES + 1} (the warm-up frames are not timed)")
    result = run(args.frames, args.model, args.finetune_steps)
    cells = [
        str(result["processing_size"]),
        str(result["frames"]),
        f"{result['zero']:.3f}",
        f"{result['zero_hero']:.3f}",
        f"{result['zero_hero'] - result['zero']:.3f}",
        str(result["finetune_steps"]),
        f"{result['finetune_seconds']:.1f}",
        f"{result['peak_rss_mb']:.0f}",
    ]
    flags = ["--frames", str(args.frames), "--finetune-steps", str(args.finetune_steps)]
    BENCHMARK.record_run(args, result["torch_threads"], cells, flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
