"""Evaluate reference-based appearance transfer on two sets with exact ground truth.

    python -m pipelines.appearance.evaluate --model checkpoints/zero2hero-lite --max-frames 16

- **colour** set: colour edits that commute with motion, on the held-out tails of the offline real
  colour clips (`data.split.load_holdout_tail`). Each edit is a per-pixel colour map
  (`COLOUR_EDITS`), so applying it to every frame gives the true edited video.
- **texture** set: texture and region edits on pseudo videos of photos (the photos and camera paths
  of `data.known_motion`): the photo is edited (a pattern painted on one of its regions,
  another region recoloured), and the original and edited photo are moved along the same camera path.

The edited frame 0 is given as the anchor; every method is scored on frames 1..: PSNR and SSIM against
the true edited frames; PSNR against the *input* where the edit changed nothing (the "unedited" column:
untouched regions must stay the input); and CDC (colour distribution consistency, lower = less flicker)
of the whole output, next to the ground truth's own CDC. Methods: Zero stage alone, Zero + Hero
(optionally fine-tuned per video), the flow-chain and global colour transfer baselines, and the input
itself (what doing nothing scores). A markdown table per set and the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.colour import lab_to_rgb, rgb_to_lab
from ..core.metrics import colour_distribution_consistency, psnr, ssim
from ..data.images import resize_short_side
from ..data.known_motion import camera_path, evaluation_photos, photo_regions
from ..data.split import load_holdout_tail
from .baselines import flow_chain_edit, global_colour_transfer
from .data import recolour_lab, stripes
from .pipeline import ZeroToHeroPipeline

# -- colour edits that commute with motion (per-pixel maps on RGB uint8) -----------------------------


def reds_to_blue(frame: np.ndarray) -> np.ndarray:
    """Hue-selective: saturated reds and oranges turn blue (a soft selection on hue and saturation)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)  # hue in 0..255
    hue_distance = np.minimum(hsv[..., 0], 256 - hsv[..., 0])  # distance from red
    weight = np.clip((28 - hue_distance) / 12, 0, 1) * np.clip((hsv[..., 1] - 60) / 40, 0, 1)
    moved = hsv.copy()
    moved[..., 0] = (hsv[..., 0] + 150) % 256
    blue = cv2.cvtColor(moved.round().astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
    return (weight[..., None] * blue + (1 - weight[..., None]) * frame).round().clip(0, 255).astype(np.uint8)


def teal_orange_grade(frame: np.ndarray) -> np.ndarray:
    """A global grade (a 3-D LUT in effect): teal shadows, orange highlights, more contrast."""
    rgb = frame.astype(np.float32) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    tint = np.stack([0.12 * (luma - 0.5), 0.02 * (luma - 0.5), -0.12 * (luma - 0.5)], -1)
    graded = 0.5 + 1.15 * (rgb - 0.5) + tint
    return (graded.clip(0, 1) * 255).round().astype(np.uint8)


COLOUR_EDITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "reds-to-blue": reds_to_blue,
    "teal-orange-grade": teal_orange_grade,
}

# -- texture and region edits on photos ----------------------------------------------------------------


def texture_edit(photo: np.ndarray, seed: int) -> np.ndarray:
    """Paint a two-colour pattern (keeping the shading) on one mid-sized region of the photo and recolour
    another: a fixed, seeded edit of the photo (RGB uint8)."""
    rng = random.Random(seed)
    regions = photo_regions(photo, num_regions=6)
    ids, areas = np.unique(regions, return_counts=True)
    order = ids[np.argsort(areas)]  # smallest first
    painted_id, recoloured_id = order[len(order) // 2], order[len(order) // 2 - 1]
    image = torch.from_numpy(photo).permute(2, 0, 1).float() / 255.0
    lab = rgb_to_lab(image[None])[0]
    shading = (lab[:1] / lab[:1].mean().clamp(min=1.0)).clamp(0.3, 1.7)
    torch.manual_seed(seed)
    painted = (stripes(*photo.shape[:2], rng) * shading).clamp(0, 1)
    recoloured = lab_to_rgb(recolour_lab(lab, angle=2.0, chroma=1.4, lightness=5.0)[None])[0]

    def soft(region_id: int) -> torch.Tensor:
        mask = (regions == region_id).astype(np.float32)
        return torch.from_numpy(cv2.GaussianBlur(mask, (5, 5), 1.0))[None]

    paint, recolour = soft(painted_id), soft(recoloured_id)
    edited = paint * painted + (1 - paint) * image
    edited = recolour * recoloured + (1 - recolour) * edited
    return (edited.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def texture_videos(
    num_frames: int, frame_size: tuple[int, int], seed: int = 0
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, frames (T, H, W, 3), true edited frames) for each evaluation photo: the photo and its
    `texture_edit` moved along one camera path (`known_motion.camera_path`)."""
    height, width = frame_size
    videos = []
    for index, (name, _, photo) in enumerate(evaluation_photos()):
        photo = resize_short_side(photo, 400, upscale=True)
        edited = texture_edit(photo, seed * 1000 + index)
        cameras = camera_path(
            np.random.default_rng(seed * 1000 + index), photo.shape[:2], frame_size, num_frames
        )
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        frames = np.stack([cv2.warpAffine(photo, camera, (width, height), flags=flags) for camera in cameras])
        truth = np.stack([cv2.warpAffine(edited, camera, (width, height), flags=flags) for camera in cameras])
        videos.append((name, frames, truth))
    return videos


def colour_videos(max_frames: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(clip-edit name, frames, true edited frames) for each offline clip's held-out tail and colour edit."""
    from ..data.sources import offline_video_paths

    videos = []
    for path in offline_video_paths():
        frames, _ = load_holdout_tail(path, max_frames)
        if len(frames) < 2:
            continue
        for edit_name, edit in COLOUR_EDITS.items():
            videos.append((f"{path.stem}/{edit_name}", np.stack(frames), np.stack([edit(f) for f in frames])))
    return videos


# -- scoring ---------------------------------------------------------------------------------------------

METHODS = {
    "zero": "Zero stage",
    "zero_hero": "Zero + Hero",
    "flow_chain": "DIS flow chain (edit warped)",
    "global_transfer": "global Lab colour transfer",
    "input": "(input, unedited)",
    "ground_truth": "(ground truth)",
}


def unedited_psnr(outputs: np.ndarray, frames: np.ndarray, truth: np.ndarray) -> float | None:
    """PSNR of the output against the input over the pixels of frames 1.. that the edit left unchanged
    (truth within one level of the input in every channel)."""
    unchanged = (np.abs(truth[1:].astype(np.int16) - frames[1:]) <= 1).all(axis=-1)
    if not unchanged.any():
        return None
    error = (outputs[1:].astype(np.float64) - frames[1:])[unchanged] / 255.0
    mse = float(np.mean(error**2))
    return float("inf") if mse == 0 else float(10 * np.log10(1 / mse))


def score(outputs: np.ndarray, frames: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    return {
        "psnr": float(np.mean([psnr(o, t) for o, t in zip(outputs[1:], truth[1:], strict=True)])),
        "ssim": float(np.mean([ssim(o, t) for o, t in zip(outputs[1:], truth[1:], strict=True)])),
        "unedited_psnr": unedited_psnr(outputs, frames, truth),
        "cdc": colour_distribution_consistency(list(outputs)),
    }


def evaluate_video(
    pipe: ZeroToHeroPipeline, frames: np.ndarray, truth: np.ndarray, finetune_steps: int
) -> dict[str, dict]:
    def run(use_restorer: bool, steps: int) -> Callable[[], list[np.ndarray]]:
        def method() -> list[np.ndarray]:
            result = pipe(
                video=list(frames),
                edited_frame=truth[0],
                frame_index=0,
                use_restorer=use_restorer,
                finetune_steps=steps,
                output_type="pil",
            )
            return [np.asarray(image) for image in result.frames]

        return method

    runs = {
        "zero": run(False, 0),
        "zero_hero": run(True, finetune_steps),
        "flow_chain": lambda: flow_chain_edit(list(frames), truth[0]),
        "global_transfer": lambda: global_colour_transfer(list(frames), truth[0]),
    }
    results = {}
    for key, method in runs.items():
        begin = time.perf_counter()
        outputs = np.stack(method())
        seconds = time.perf_counter() - begin
        results[key] = {**score(outputs, frames, truth), "seconds_per_frame": seconds / len(frames)}
    results["input"] = score(frames, frames, truth)
    results["ground_truth"] = {"cdc": colour_distribution_consistency(list(truth))}
    return results


def _cell(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return "inf" if value == float("inf") else f"{value:.{digits}f}"


def markdown_table(results: dict[str, dict]) -> str:
    lines = [
        "| method | PSNR (dB) | SSIM | unedited PSNR (dB) | CDC | s/frame |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in METHODS.items():
        row = results.get(key)
        if row is not None:
            cells = [
                _cell(row.get("psnr"), 2),
                _cell(row.get("ssim"), 4),
                _cell(row.get("unedited_psnr"), 2),
                _cell(row.get("cdc"), 5),
                _cell(row.get("seconds_per_frame"), 3),
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_over_videos(videos: list[dict]) -> dict[str, dict]:
    means: dict[str, dict] = {}
    for key in METHODS:
        rows = [video["methods"][key] for video in videos if key in video["methods"]]
        means[key] = {}
        for metric in ("psnr", "ssim", "unedited_psnr", "cdc", "seconds_per_frame"):
            values = [row[metric] for row in rows if row.get(metric) is not None and np.isfinite(row[metric])]
            means[key][metric] = float(np.mean(values)) if values else None
    return means


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.appearance.evaluate",
        description="Score Zero, Zero+Hero and two baselines on colour edits of real clips and texture edits "
        "of pseudo videos, against exact ground truth.",
    )
    parser.add_argument("--model", default="checkpoints/zero2hero-lite", help="pipeline folder to load")
    parser.add_argument("--sets", nargs="+", default=["colour", "texture"], choices=["colour", "texture"])
    parser.add_argument("--max-frames", type=int, default=16, help="frames per video (default 16)")
    parser.add_argument("--texture-size", type=int, nargs=2, default=[192, 256], metavar=("H", "W"))
    parser.add_argument(
        "--finetune-steps", type=int, default=None, help="per-video fine-tuning (default: config)"
    )
    parser.add_argument("--max-videos", type=int, default=None, help="at most this many videos per set")
    parser.add_argument("--output", default="runs/appearance_eval.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    pipe = ZeroToHeroPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    finetune_steps = pipe.config.finetune_steps if args.finetune_steps is None else args.finetune_steps
    print(
        f"# Appearance transfer evaluation: {args.model}\n\nAnchor = frame 0 (its true edit given); "
        "scores over "
        f"frames 1.. of at most {args.max_frames} frames; processing size {pipe.config.processing_size}; "
        f"per-video fine-tuning {finetune_steps} steps.\n",
        flush=True,
    )
    report: dict = {"model": args.model, "max_frames": args.max_frames, "finetune_steps": finetune_steps}
    for set_name in args.sets:
        if set_name == "colour":
            videos = colour_videos(args.max_frames)
        else:
            videos = texture_videos(args.max_frames, tuple(args.texture_size))
        videos = videos[: args.max_videos]
        scored = []
        for name, frames, truth in videos:
            begin = time.perf_counter()
            methods = evaluate_video(pipe, frames, truth, finetune_steps)
            height, width = frames.shape[1:3]
            scored.append({"name": name, "frames": len(frames), "size": [width, height], "methods": methods})
            print(
                f"## {set_name}: {name} ({width}x{height}, {len(frames)} frames, "
                f"{time.perf_counter() - begin:.1f} s)\n\n{markdown_table(methods)}\n",
                flush=True,
            )
        means = mean_over_videos(scored)
        print(f"## {set_name}: mean over {len(scored)} videos\n\n{markdown_table(means)}\n", flush=True)
        report[set_name] = {"videos": scored, "mean": means}
    report["total_seconds"] = time.perf_counter() - started
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"Total {report['total_seconds']:.1f} s. Wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
