"""Evaluate label propagation (points and masks) with ground truth made offline.

    python -m pipelines.correspondence.evaluate                      # the three baselines
    python -m pipelines.correspondence.evaluate --model ours=checkpoints/mer-correspondence \\
        --model no-motion=runs/ablation-no-motion --output runs/correspondence_eval.json

Data (`data/known_motion.py`): pseudo videos of colour photos seen by a moving camera with an occluding
sticker moving over them (16 frames of 256x320; tracks of about 60 points each, a third of them on the
sticker, and masks of 2-6 objects), and scikit-image's motorcycle stereo pair as a 2-frame video
(about 190 points, true positions from the disparity). Photos come from the held-out tails of the
offline clips and a photo training never saw ("pseudo-heldout"), and, reported separately, from three
stills training also uses ("pseudo-train-still").

Protocol: every method is a `propagation.FeatureExtractor`; frame 0's query points and mask are
propagated through the video by `propagation.track` with the default `PropagationConfig()` (frame 0
plus the last 5 frames as context, a radius of 12 feature cells, top-10, temperature 0.05), the same
for every method. Methods: the baselines of `baselines.py` (raw Lab pixels, frozen EfficientNet-Lite0,
XFeat), and each `--model NAME=PATH`, a `CorrespondencePipeline` folder, through its
`feature_extractor()` (the encoder at the pipeline's processing size, with each frame's DIS flow,
`modeling.frame_flow`, where the model uses motion).

Metrics, over frames 1..T-1 (frame 0 is given):

- point accuracy: the fraction of visible (in frame, not occluded) true points whose prediction lies
  within 2, 4 and 8 pixels; within 4 px is the headline;
- mask J (DAVIS region similarity): per object (non-zero id of the true frame 0), the IoU of predicted
  and true masks averaged over frames (a frame where both are empty counts 1), then averaged over
  objects; the stereo pair has no masks;
- seconds per frame of `track` (feature extraction and propagation; the machine's threads as set).

With `--grey`, every frame of every video is replaced by its luma (R = G = B), as grey footage would be;
the ground truth stays the same.

Each metric is averaged over videos (each video weighs the same; J over the videos that have masks),
over all videos and per source. Markdown tables are printed and all numbers, per video too, written
as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..data.known_motion import EvalVideo, evaluation_videos
from .baselines import BASELINES
from .propagation import FeatureExtractor, PropagationConfig, track

THRESHOLDS = (2, 4, 8)  # pixels
HEADLINE = 4
SOURCES = ("pseudo-heldout", "pseudo-train-still", "stereo")


# -- metrics --------------------------------------------------------------------------------------


def point_accuracy(
    predicted: np.ndarray, true: np.ndarray, visible: np.ndarray, thresholds: Sequence[float] = THRESHOLDS
) -> dict[float, float]:
    """Fraction of visible points of frames 1.. within each threshold (pixels) of the truth.

    predicted, true (T, N, 2) x, y; visible (T, N) bool -> {threshold: fraction} (NaN if none is visible)."""
    error = np.linalg.norm(np.asarray(predicted, float)[1:] - np.asarray(true, float)[1:], axis=-1)
    error = error[np.asarray(visible, bool)[1:]]
    if error.size == 0:
        return {threshold: float("nan") for threshold in thresholds}
    return {threshold: float((error <= threshold).mean()) for threshold in thresholds}


def iou(predicted: np.ndarray, true: np.ndarray) -> float:
    """IoU of two boolean masks; 1 when both are empty (nothing to find, nothing found)."""
    union = np.logical_or(predicted, true).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, true).sum() / union)


def mask_j(predicted: np.ndarray, true: np.ndarray) -> float:
    """DAVIS J of label maps (T, H, W): per object of the true frame 0 (non-zero ids), the mean IoU over
    frames 1.., then the mean over objects (NaN when frame 0 has no object)."""
    objects = [label for label in np.unique(true[0]) if label != 0]
    if not objects:
        return float("nan")
    per_object = [
        np.mean([iou(predicted[t] == label, true[t] == label) for t in range(1, len(true))])
        for label in objects
    ]
    return float(np.mean(per_object))


# -- running --------------------------------------------------------------------------------------


def evaluate_video(extractor: FeatureExtractor, video: EvalVideo, config: PropagationConfig) -> dict:
    """Propagate frame 0's points (and mask) of one video, and score them."""
    start = time.perf_counter()
    first_mask = video.masks[0] if video.masks is not None else None
    tracks = track(video.frames, extractor, points=video.tracks[0], mask=first_mask, config=config)
    seconds = time.perf_counter() - start
    accuracy = point_accuracy(tracks.points, video.tracks, video.visible)
    result = {"video": video.name, "source": video.source, "frames": len(video.frames)}
    result |= {f"points_within_{threshold}px": value for threshold, value in accuracy.items()}
    result["mask_j"] = mask_j(tracks.masks, video.masks) if video.masks is not None else None
    result["seconds_per_frame"] = seconds / len(video.frames)
    return result


def metric_names() -> list[str]:
    return [f"points_within_{threshold}px" for threshold in THRESHOLDS] + ["mask_j", "seconds_per_frame"]


def summarize(results: list[dict]) -> dict[str, dict[str, float | int]]:
    """Per-video results -> the mean of each metric over videos, for "all" and for each source present
    (metrics a video does not have, like the stereo pair's J, are left out of its mean)."""
    groups = {"all": results} | {
        source: [r for r in results if r["source"] == source]
        for source in SOURCES
        if any(r["source"] == source for r in results)
    }
    summary = {}
    for group, members in groups.items():
        means: dict[str, float | int] = {"videos": len(members)}
        for metric in metric_names():
            values = [r[metric] for r in members if r[metric] is not None and not np.isnan(r[metric])]
            means[metric] = float(np.mean(values)) if values else float("nan")
        summary[group] = means
    return summary


def evaluate_method(
    make_extractor: Callable[[], FeatureExtractor], videos: list[EvalVideo], config: PropagationConfig
) -> dict:
    extractor = make_extractor()
    results = [evaluate_video(extractor, video, config) for video in videos]
    return {"summary": summarize(results), "videos": results}


def model_extractor(path: str, device: str) -> Callable[[], FeatureExtractor]:
    """A `CorrespondencePipeline` folder (or repo id) -> a factory of its `feature_extractor()`. The
    pipeline is imported here, so the baselines run whatever state the model code is in."""

    def make() -> FeatureExtractor:
        from .pipeline import CorrespondencePipeline

        pipe = CorrespondencePipeline.from_pretrained(path)
        return pipe.to(device).feature_extractor()

    return make


def greyed(video: EvalVideo) -> EvalVideo:
    """The same video with every frame replaced by its luma (BT.601, as cv2's RGB2GRAY), R = G = B."""
    grey = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in video.frames])
    return dataclasses.replace(video, frames=np.repeat(grey[..., None], 3, axis=-1))


# -- report ---------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "–" if value is None or np.isnan(value) else f"{100 * value:.1f}"


def _row(name: str, means: dict) -> str:
    cells = [_percent(means[f"points_within_{threshold}px"]) for threshold in THRESHOLDS]
    cells.append(_percent(means["mask_j"]))
    cells.append(f"{means['seconds_per_frame']:.3f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def markdown_report(methods: dict[str, dict]) -> str:
    """Tables: methods x metrics (mean over all videos), the same per source, and ≤4 px / J per video."""
    header = (
        "| {} | "
        + " | ".join(
            [f"points ≤{t}px %" if t != HEADLINE else f"**points ≤{t}px %**" for t in THRESHOLDS]
            + ["mask J %", "s / frame"]
        )
        + " |"
    )
    rule = "|---" * (len(THRESHOLDS) + 3) + "|"
    lines = [header.format("method"), rule]
    lines += [_row(name, result["summary"]["all"]) for name, result in methods.items()]
    lines += ["", header.format("method / source"), rule]
    for name, result in methods.items():
        for source in SOURCES:
            if source in result["summary"]:
                count = result["summary"][source]["videos"]
                lines.append(_row(f"{name} / {source} ({count})", result["summary"][source]))
    names = list(methods)
    first = next(iter(methods.values()))["videos"]
    lines += [
        "",
        f"| video (≤{HEADLINE}px % / J %) | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for index, video in enumerate(first):
        cells = []
        for name in names:
            result = methods[name]["videos"][index]
            cells.append(f"{_percent(result[f'points_within_{HEADLINE}px'])} / {_percent(result['mask_j'])}")
        lines.append(f"| {video['video']} ({video['source']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _finite(value):
    """NaN (a metric a video does not have) -> None, so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a CorrespondencePipeline folder (or repo id) to evaluate under NAME; repeatable",
    )
    parser.add_argument("--output", default="runs/correspondence_eval.json", help="where to write the JSON")
    parser.add_argument("--no-baselines", action="store_true", help="evaluate only the --model entries")
    parser.add_argument("--num-frames", type=int, default=16, help="frames per pseudo video")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pseudo videos")
    parser.add_argument("--grey", action="store_true", help="every frame as its luma (grey footage)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    methods: dict[str, Callable[[], FeatureExtractor]] = {}
    if not args.no_baselines:
        methods |= {name: (lambda cls=cls: cls(device=args.device)) for name, cls in BASELINES.items()}
    for spec in args.model:
        name, separator, path = spec.partition("=")
        if not separator or not name or not path:
            raise SystemExit(f"--model takes NAME=PATH, got {spec!r}")
        if name in methods:
            raise SystemExit(f"method name {name!r} is used twice")
        methods[name] = model_extractor(path, args.device)
    if not methods:
        raise SystemExit("Nothing to evaluate: give --model NAME=PATH or leave out --no-baselines.")

    config = PropagationConfig()
    start = time.perf_counter()
    videos = evaluation_videos(num_frames=args.num_frames, seed=args.seed)
    if args.grey:
        videos = [greyed(video) for video in videos]
    print(f"{len(videos)} evaluation videos built in {time.perf_counter() - start:.1f} s")
    results = {}
    for name, make in methods.items():
        method_start = time.perf_counter()
        results[name] = evaluate_method(make, videos, config)
        print(f"{name}: {time.perf_counter() - method_start:.1f} s")
    report = markdown_report(results)
    print(report)

    output = {
        "protocol": {
            "propagation": dataclasses.asdict(config),
            "thresholds_px": list(THRESHOLDS),
            "num_frames": args.num_frames,
            "seed": args.seed,
            "grey": args.grey,
            "models": dict(spec.partition("=")[::2] for spec in args.model),
        },
        "videos": [
            {"name": v.name, "source": v.source, "shape": list(v.frames.shape)} | v.notes for v in videos
        ],
        "methods": results,
        "markdown": report,
        "seconds_total": time.perf_counter() - start,
    }
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(output), indent=2) + "\n")
    print(f"wrote {path}")
    return output


if __name__ == "__main__":
    main()
