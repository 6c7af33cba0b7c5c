"""Compare image-only and pseudo-video generators: FD-EffNet and k-NN precision / recall.

    python -m pipelines.pseudo_video.evaluate \\
        --model image=runs/pv/image-s0 --model image=runs/pv/image-s1 ... \\
        --model markov=runs/pv/markov-s0 ... --model rich=runs/pv/rich-s0 ... --output eval.json

Runs sharing a LABEL (one per training seed) are summarised as mean ± std (sample std over runs).

- FD-EffNet: the Fréchet distance between Gaussians fitted to features of real and generated images,
  the features being the ImageNet EfficientNet-Lite0 that ships offline (`core/backbones.py`; blocks
  up to stride 16), global-average-pooled at stride 8 (40 ch) and 16 (112 ch) and concatenated (152-d).
  It is NOT Inception FID: another network, another layer, another dimension, so its numbers are not
  comparable with published FIDs; only with each other. Small images are upsampled (bilinear) to
  `--feature-size` pixels (default 64) first, grey images repeated into three channels.
- Precision / recall (Kynkäänniemi et al., NeurIPS 2019) in the same feature space: a sample is
  inside a set's manifold when it lies within the distance of some member to that member's k-th
  nearest neighbour in the set (k = 3). Precision: share of generated images inside the real manifold
  (fidelity); recall: share of real images inside the generated manifold (coverage).

The reference set is the training data (as FID is usually computed), all of it; each run generates as
many images (`--num-samples`, default the reference size) from `--seed`. For scale, the table also
gives the same figures for real against real: two disjoint random halves of the reference set.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from ..core.backbones import EfficientNetLite0Features
from .data import load_images, to_unit
from .pipeline import PseudoVideoPipeline


class EffNetFeatures:
    """Images (N, C, H, W) in [-1, 1], C in (1, 3) -> pooled EfficientNet-Lite0 features (N, 152)."""

    def __init__(self, feature_size: int = 64) -> None:
        if feature_size < 32:
            raise ValueError(f"feature_size must be at least 32 (stride-16 features), got {feature_size}.")
        self.feature_size = feature_size
        self.network = EfficientNetLite0Features()
        self.network.load_pretrained_weights()
        self.network.eval()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 128) -> np.ndarray:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1 or 3, H, W), got {tuple(images.shape)}.")
        features = []
        for chunk in images.float().split(batch_size):
            rgb = chunk.expand(-1, 3, -1, -1)
            rgb = F.interpolate(rgb, size=(self.feature_size,) * 2, mode="bilinear", align_corners=False)
            # The Lite models were trained on RGB scaled as (x - 127) / 128, x in [0, 255].
            hidden = self.network.stem(((rgb + 1) * 127.5 - 127.0) / 128.0)
            pooled = []
            for index, block in enumerate(self.network.blocks):
                hidden = block(hidden)
                if index == self.network._LAST_BLOCK["stride8"]:
                    pooled.append(hidden.mean(dim=(2, 3)))
            pooled.append(hidden.mean(dim=(2, 3)))
            features.append(torch.cat(pooled, dim=1))
        return torch.cat(features).double().numpy()


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    mean_a, mean_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular product: nudge both covariances, as FID code does
        offset = np.eye(len(cov_a)) * 1e-6
        root = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def _knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row: (N,)."""
    distances = torch.cdist(features, features)
    return distances.kthvalue(k + 1, dim=1).values  # +1: the row itself is at distance 0


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019 improved precision and recall of `fake` (M, D) against `real` (N, D)."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"Need more than k={k} real and generated samples.")
    real_t, fake_t = torch.from_numpy(real), torch.from_numpy(fake)
    real_radii, fake_radii = _knn_radii(real_t, k), _knn_radii(fake_t, k)
    between = torch.cdist(fake_t, real_t)  # (M, N)
    precision = (between <= real_radii[None]).any(dim=1).double().mean().item()
    recall = (between.T <= fake_radii[None]).any(dim=1).double().mean().item()
    return precision, recall


def generated_images(model: str, num_samples: int, seed: int) -> tuple[torch.Tensor, dict]:
    """(num_samples, C, H, W) in [-1, 1] from a PseudoVideoPipeline folder, and facts about the model."""
    pipe = PseudoVideoPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        num_images=num_samples, generator=torch.Generator().manual_seed(seed), output_type="pt"
    ).images
    facts = {
        "kind": pipe.scheduler.config.kind,
        "num_frames": pipe.scheduler.config.num_frames,
        "network_evaluations_per_image": pipe.scheduler.config.num_frames - 1,
        "parameters": sum(p.numel() for p in pipe.model.parameters()),
        "image_size": pipe.model.config.image_size,
        "channels": pipe.model.config.in_channels,
    }
    return images * 2 - 1, facts


def scores(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    precision, recall = precision_recall(real, fake, k)
    return {"fd_effnet": frechet_distance(real, fake), "precision": precision, "recall": recall}


def summarise(runs: dict[str, dict]) -> dict[str, dict]:
    """Per label: mean and sample std over its runs of each figure, and the number of runs."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for run in runs.values():
        grouped[run["label"]].append(run)
    summary = {}
    for label, members in grouped.items():
        entry = {"runs": len(members), "parameters": members[0]["parameters"]}
        entry["network_evaluations_per_image"] = members[0]["network_evaluations_per_image"]
        for key in ("fd_effnet", "precision", "recall"):
            values = np.array([member[key] for member in members])
            entry[key] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            }
        summary[label] = entry
    return summary


def evaluate(
    models: list[tuple[str, str]], data: str, num_samples: int | None, seed: int, feature_size: int, k: int
) -> dict:
    extractor = EffNetFeatures(feature_size)
    runs, reference = {}, None
    for label, path in models:
        if reference is None:
            config = PseudoVideoPipeline.from_pretrained(path).model.config
            real_images = to_unit(load_images(data, config.image_size, config.in_channels, seed=seed))
            reference = extractor(real_images)
            num_samples = num_samples or len(reference)
        fake, facts = generated_images(path, num_samples, seed)
        if (facts["image_size"], facts["channels"]) != (real_images.shape[-1], real_images.shape[1]):
            raise SystemExit(f"error: {path} makes images of another size or channel count than the others.")
        runs[path] = {"label": label, **facts, **scores(reference, extractor(fake), k)}
    halves = np.random.default_rng(seed).permutation(len(reference))
    half = len(halves) // 2
    return {
        "data": data,
        "num_reference": len(reference),
        "num_samples": num_samples,
        "seed": seed,
        "feature_size": feature_size,
        "k": k,
        "real_vs_real_halves": scores(reference[halves[:half]], reference[halves[half:]], k),
        "runs": runs,
        "summary": summarise(runs),
    }


def markdown_table(results: dict) -> str:
    lines = [
        "| model | runs | parameters | network evaluations / image | FD-EffNet ↓ | precision ↑ | recall ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, entry in results["summary"].items():
        figures = [
            f"{entry[key]['mean']:.3f} ± {entry[key]['std']:.3f}"
            for key in ("fd_effnet", "precision", "recall")
        ]
        lines.append(
            f"| {label} | {entry['runs']} | {entry['parameters']:,} | "
            f"{entry['network_evaluations_per_image']} | " + " | ".join(figures) + " |"
        )
    floor = results["real_vs_real_halves"]
    lines.append(
        f"| real vs real (two halves) | - | - | - | {floor['fd_effnet']:.3f} | {floor['precision']:.3f} | "
        f"{floor['recall']:.3f} |"
    )
    return "\n".join(lines)


def _labelled(value: str) -> tuple[str, str]:
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"--model takes LABEL=PATH, got {value!r}.")
    label, path = value.split("=", 1)
    if not label or not path:
        raise argparse.ArgumentTypeError(f"--model takes LABEL=PATH, got {value!r}.")
    return label, path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.pseudo_video.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", type=_labelled, action="append", default=[], help="LABEL=PATH (repeatable)"
    )
    parser.add_argument("--data", default="digits", help='reference images: "digits", "photos" or a folder')
    parser.add_argument("--num-samples", type=int, help="generated images per run (default: reference size)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--feature-size", type=int, default=64, help="images are upsampled to this side")
    parser.add_argument("--k", type=int, default=3, help="nearest neighbour for precision / recall")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("give at least one --model LABEL=PATH")
    if args.num_samples is not None and args.num_samples <= args.k:
        parser.error("--num-samples must exceed --k")
    torch.set_num_threads(args.threads)
    results = evaluate(args.model, args.data, args.num_samples, args.seed, args.feature_size, args.k)
    print(markdown_table(results))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
