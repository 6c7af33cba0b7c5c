"""Speed and memory of CorrespondencePipeline (mask + point tracking) on an 854x480 video.

    python benchmarks/correspondence_speed.py --frames 100
    python benchmarks/correspondence_speed.py --frames 20 --no-record   # smoke test, nothing written

The clip is the colorization benchmark's (a slow pan and zoom over a photo, here in colour), written
to an mp4 and tracked from it with `output_path` set: decode -> encoder (with DIS flow) ->
propagation from frame 0 and the last frames -> overlay drawn -> H.264 encode. Frame 0 carries a
three-object mask and 16 points. Reported: warm seconds per frame (model load and the first 3
frames excluded) and the process's peak RSS; the row is appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import HEIGHT, WIDTH, Benchmark, large_still, synthetic_frames

BENCHMARK = Benchmark(
    script="benchmarks/correspondence_speed.py",
    title="Correspondence speed",
    default_model="checkpoints/mer-correspondence",
    table_header=(
        "| date | machine | torch threads | model | processing size | frames | s/frame (warm) | peak RSS MB "
        "| command |\n"
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"
    ),
    description=(
        "CorrespondencePipeline tracking a 3-object mask and 16 points drawn on frame 0 through a synthetic "
        "854x480 colour clip (pan/zoom over a photo) read from an mp4, with the overlay video streamed to an "
        "mp4. "
        "s/frame: warm, model load and the first 3 frames excluded."
    ),
)
WARMUP_FRAMES = 3


def first_frame_annotations() -> tuple[np.ndarray, np.ndarray]:
    """A label map with three rectangles and a 4x4 grid of points, on frame 0."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[100:220, 150:330] = 1
    mask[260:400, 420:560] = 2
    mask[80:180, 620:760] = 3
    xs, ys = np.meshgrid(np.linspace(120, 730, 4), np.linspace(80, 400, 4))
    return mask, np.stack([xs.ravel(), ys.ravel()], axis=1)


def run(num_frames: int, model: str) -> dict:
    import resource

    import torch

    from pipelines import CorrespondencePipeline
    from pipelines.core.video import write_video

    with tempfile.TemporaryDirectory(prefix="correspondence_speed_") as folder:
        source, target = Path(folder) / "input.mp4", Path(folder) / "tracked.mp4"
        write_video(synthetic_frames(num_frames, large_still(), grayscale=False), source, fps=25.0)
        pipe = CorrespondencePipeline.from_pretrained(model)
        pipe.set_progress_bar_config(disable=True)
        mask, points = first_frame_annotations()
        frame_ends: list[float] = []
        pipe(
            source,
            points=points,
            masks=mask,
            output_path=target,
            callback_on_frame_end=lambda pipeline, index, outputs: frame_ends.append(time.perf_counter()),
        )
        finished = time.perf_counter()
    return {
        "frames": num_frames,
        "seconds_per_frame": (finished - frame_ends[WARMUP_FRAMES - 1]) / (num_frames - WARMUP_FRAMES),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "processing_size": pipe.config.processing_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    args = BENCHMARK.parse_args(parser, argv)
    if args.frames <= WARMUP_FRAMES:
        raise SystemExit(f"--frames must be above {WARMUP_FRAMES} (the warm-up frames are not timed)")
    result = run(args.frames, args.model)
    cells = [
        str(result["processing_size"]),
        str(result["frames"]),
        f"{result['seconds_per_frame']:.3f}",
        f"{result['peak_rss_mb']:.0f}",
    ]
    BENCHMARK.record_run(args, result["torch_threads"], cells, ["--frames", str(args.frames)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
