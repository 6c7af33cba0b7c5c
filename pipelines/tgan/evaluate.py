"""Score generated bouncing-digit clips with a digit classifier of our own.

    python -m pipelines.tgan.evaluate --model runs/tgan-svc --model runs/tgan-clip --output eval.json

No pretrained network is needed: a small CNN is trained here, deterministically, to name the digit
in a frame. It learns from frames rendered like the training clips (one scikit-learn digit, upscaled,
at a random place in the frame) made from half of scikit-learn's digits; the other half gives its
held-out accuracy, reported with the scores (1500 steps, under a minute on one CPU thread: 97.9% at
32x32, and an Inception-Score-style figure of 9.2 on real one-digit clips).

Figures, over `--num-videos` clips per model (and for real `MovingDigits` clips as a reference):

- Inception-Score-style: exp(E_x KL(p(y|x) || p(y))) over all frames, p(y|x) the classifier's
  softmax. 10 is the most for 10 classes: every frame confidently one digit, all digits equally often;
- class consistency over time: per clip, the share of frames whose most likely digit is the clip's
  most frequent one, averaged over clips (1 when the digit keeps its identity through the clip), beside
  the same figure with the frames shuffled between clips (what it is when frames are unrelated), and
  over the confidently classified frames only (blurry frames flip between digits even when kept);
- classes covered (modes): how many of the 10 digits are the most frequent digit of at least
  `COVERAGE_SHARE` of the clips, and the share of frames the classifier is confident about (p >= 0.9);
- motion: the mean absolute change between consecutive frames (pixel values in [0, 1]) and the mean
  step of the frame's brightness centroid in pixels per frame, for all clips and as the share of clips
  whose centroid travels at least a tenth of the frame along the clip (a digit that moves).

`--random-baseline` also scores a generator of the first model's shape with freshly initialised weights:
what the scores are worth without training.

Both are defined per frame's most likely digit: they read most clearly on one-digit clips (`--num-digits
1` in training and here); with two digits a frame's probability is shared between them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import DIGIT_FRACTION, MovingDigits, digit_sprites
from .pipeline import TGANPipeline


class DigitClassifier(nn.Module):
    """Frames (N, 1, S, S) in [-1, 1] -> logits (N, 10). Strided convs and a global average pool, so a
    digit is recognised wherever it is in the frame."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for out_channels in (width // 2, width, width, 2 * width):
            layers += [nn.Conv2d(channels, out_channels, 3, 2, 1), nn.BatchNorm2d(out_channels), nn.ReLU()]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 10)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames).mean(dim=(2, 3)))


def single_digit_frames(
    image_size: int, count: int, split: str, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` frames (count, 1, S, S) in [-1, 1], each one digit placed at random as in `MovingDigits`,
    and their labels. split "train" draws from the even-numbered scikit-learn digits, "test" from the odd."""
    digit_size = max(4, round(image_size * DIGIT_FRACTION))
    sprites, labels = digit_sprites(digit_size)
    pool = torch.arange(0 if split == "train" else 1, len(sprites), 2)
    chosen = pool[torch.randint(len(pool), (count,), generator=generator)]
    corners = torch.randint(image_size - digit_size + 1, (count, 2), generator=generator)
    frames = torch.zeros(count, 1, image_size, image_size)
    for frame, index, (y, x) in zip(frames, chosen.tolist(), corners.tolist(), strict=True):
        frame[0, y : y + digit_size, x : x + digit_size] = torch.from_numpy(sprites[index])
    return frames * 2 - 1, torch.from_numpy(labels[chosen.numpy()])


def train_digit_classifier(
    image_size: int = 64, steps: int = 1500, batch_size: int = 64, seed: int = 0
) -> tuple[DigitClassifier, float]:
    """A `DigitClassifier` trained from scratch (Adam) and its accuracy on 1000 held-out frames."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    model.train()
    for _ in range(steps):
        frames, labels = single_digit_frames(image_size, batch_size, "train", generator)
        loss = F.cross_entropy(model(frames), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    frames, labels = single_digit_frames(image_size, 1000, "test", generator)
    with torch.no_grad():
        accuracy = (model(frames).argmax(1) == labels).float().mean().item()
    return model, accuracy


def inception_score(probabilities: np.ndarray) -> float:
    """probabilities (N, K), rows p(y|x) -> exp(E_x KL(p(y|x) || p(y))), p(y) their mean."""
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0)
    marginal = probabilities.mean(axis=0, keepdims=True)
    kl = (probabilities * (np.log(probabilities) - np.log(marginal))).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_consistency(probabilities: np.ndarray) -> float:
    """probabilities (V, T, K) per clip and frame -> mean over clips of the share of frames whose most
    likely class is the clip's most frequent one."""
    predictions = np.asarray(probabilities).argmax(axis=-1)  # (V, T)
    shares = [np.bincount(clip).max() / len(clip) for clip in predictions]
    return float(np.mean(shares))


def shuffled_consistency(probabilities: np.ndarray, seed: int = 0) -> float:
    """`class_consistency` with the frames shuffled between clips (each frame keeps its place in time):
    what the consistency is when a clip's frames have nothing to do with each other, given how often each
    digit is seen. A generator keeps a digit's identity only as far as it beats this."""
    probabilities = np.asarray(probabilities)
    rng = np.random.default_rng(seed)
    shuffled = np.stack(
        [probabilities[rng.permutation(len(probabilities)), t] for t in range(probabilities.shape[1])], 1
    )
    return class_consistency(shuffled)


def confident_consistency(probabilities: np.ndarray, confident: float = 0.9) -> float:
    """`class_consistency` over the frames the classifier is sure of (p >= `confident`), in clips with at
    least two such frames: whether the frames that clearly show a digit show the same one."""
    probabilities = np.asarray(probabilities)
    shares = []
    for clip in probabilities:
        sure = clip[clip.max(axis=-1) >= confident].argmax(axis=-1)
        if len(sure) >= 2:
            shares.append(np.bincount(sure).max() / len(sure))
    return float(np.mean(shares)) if shares else float("nan")


@torch.no_grad()
def frame_probabilities(
    classifier: DigitClassifier, videos: torch.Tensor, batch_size: int = 256
) -> np.ndarray:
    """videos (V, T, 1, S, S) in [-1, 1] -> p(digit | frame) (V, T, 10)."""
    frames = videos.flatten(0, 1)
    logits = torch.cat([classifier(chunk) for chunk in frames.split(batch_size)])
    return logits.softmax(dim=-1).unflatten(0, videos.shape[:2]).numpy()


# A digit counts as produced when it is the most frequent digit of at least this share of the clips, so a
# stray clip does not count as a mode.
COVERAGE_SHARE = 0.02
CONFIDENT = 0.9


def classes_covered(probabilities: np.ndarray, share: float = COVERAGE_SHARE) -> tuple[int, list[int]]:
    """probabilities (V, T, K) -> (number of classes that are the most frequent class of >= `share` of the
    clips, clips per class (K,))."""
    predictions = np.asarray(probabilities).argmax(axis=-1)  # (V, T)
    per_clip = [np.bincount(clip, minlength=probabilities.shape[-1]).argmax() for clip in predictions]
    counts = np.bincount(per_clip, minlength=probabilities.shape[-1])
    return int((counts >= share * len(per_clip)).sum()), counts.tolist()


def brightness_centroids(videos: torch.Tensor) -> torch.Tensor:
    """videos (V, T, 1, S, S) in [-1, 1] -> the brightness-weighted centre (V, T, 2) of each frame, in
    pixels (y, x). A blank frame gives the frame's centre."""
    weights = (videos[:, :, 0] + 1).clamp(min=0) / 2 + 1e-6  # (V, T, S, S)
    size = videos.shape[-1]
    coordinates = torch.arange(size, dtype=weights.dtype)
    total = weights.sum(dim=(-1, -2))
    y = (weights.sum(dim=-1) * coordinates).sum(dim=-1) / total
    x = (weights.sum(dim=-2) * coordinates).sum(dim=-1) / total
    return torch.stack([y, x], dim=-1)


def motion(videos: torch.Tensor) -> dict[str, float]:
    """videos (V, T, 1, S, S) in [-1, 1] -> frame-to-frame change and centroid motion (see the docstring)."""
    frames = (videos + 1) / 2
    steps = brightness_centroids(videos).diff(dim=1).norm(dim=-1)  # (V, T - 1) pixels per frame
    travel = steps.sum(dim=1)  # (V,)
    return {
        "frame_change": (frames[:, 1:] - frames[:, :-1]).abs().mean().item(),
        "centroid_step_px": steps.mean().item(),
        "moving_share": (travel >= videos.shape[-1] / 10).float().mean().item(),
    }


def scores(classifier: DigitClassifier, videos: torch.Tensor) -> dict:
    """Every figure of the module docstring for clips (V, T, 1, S, S) in [-1, 1]."""
    probabilities = frame_probabilities(classifier, videos)
    covered, clips_per_class = classes_covered(probabilities)
    return {
        "inception_score": inception_score(probabilities.reshape(-1, probabilities.shape[-1])),
        "class_consistency": class_consistency(probabilities),
        "shuffled_consistency": shuffled_consistency(probabilities),
        "confident_consistency": confident_consistency(probabilities, CONFIDENT),
        "classes_covered": covered,
        "clips_per_class": clips_per_class,
        "confident_frames": float((probabilities.max(axis=-1) >= CONFIDENT).mean()),
        **motion(videos),
    }


def training_stability(log_path: str | Path, windows: int = 4) -> dict | None:
    """A training_log.jsonl (train.py) -> per quarter of the run (`windows` equal spans of steps): the
    mean Wasserstein estimate, the mean and standard deviation of the generator loss, and the largest
    singular value over the critic's layers at the span's last logged step. None without a log."""
    path = Path(log_path)
    if not path.is_file():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        return None
    spans = np.array_split(np.arange(len(records)), min(windows, len(records)))
    summary = []
    for span in spans:
        chunk = [records[i] for i in span]
        norms = [r["critic_spectral_norms"] for r in chunk if "critic_spectral_norms" in r]
        generator_losses = np.array([r["generator_loss"] for r in chunk])
        summary.append(
            {
                "last_step": chunk[-1]["step"],
                "wasserstein": float(np.mean([r["wasserstein"] for r in chunk])),
                "generator_loss": float(generator_losses.mean()),
                "generator_loss_std": float(generator_losses.std()),
                "largest_singular_value": max(norms[-1].values()) if norms else None,
            }
        )
    diverged = any(r.get("diverged") for r in records)
    return {"steps": records[-1]["step"], "diverged": diverged, "spans": summary}


def randomly_initialised(model: str, seed: int) -> TGANPipeline:
    """A pipeline of `model`'s shape whose generators are freshly initialised (seeded)."""
    trained = TGANPipeline.from_pretrained(model)
    torch.manual_seed(seed)
    return TGANPipeline(
        temporal_generator=type(trained.temporal_generator).from_config(trained.temporal_generator.config),
        image_generator=type(trained.image_generator).from_config(trained.image_generator.config),
    )


def generated_videos(model: str | TGANPipeline, num_videos: int, seed: int) -> torch.Tensor:
    """(V, T, 1, S, S) in [-1, 1] from a pipeline or the pipeline folder (or Hub id) `model`."""
    pipe = model if isinstance(model, TGANPipeline) else TGANPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        num_videos=num_videos, generator=torch.Generator().manual_seed(seed), output_type="pt"
    ).frames
    return frames * 2 - 1


def evaluate(
    models: Sequence[str],
    num_videos: int,
    num_digits: Sequence[int],
    seed: int,
    classifier_steps: int,
    random_baseline: bool = False,
) -> dict:
    """Scores of each model and of real clips, with the classifier's held-out accuracy."""
    videos = {model: generated_videos(model, num_videos, seed) for model in models}
    if random_baseline and models:
        videos["random init"] = generated_videos(randomly_initialised(models[0], seed), num_videos, seed)
    sizes = {clips.shape[-1] for clips in videos.values()}
    if len(sizes) > 1:
        raise SystemExit("error: the models make frames of different sizes; evaluate them separately.")
    image_size = sizes.pop() if sizes else 64
    classifier, accuracy = train_digit_classifier(image_size, steps=classifier_steps, seed=seed)
    real = MovingDigits(num_clips=num_videos, image_size=image_size, num_digits=num_digits, seed=seed + 1)
    stability = {model: training_stability(Path(model) / "training_log.jsonl") for model in models}
    return {
        "num_videos": num_videos,
        "seed": seed,
        "classifier_accuracy": accuracy,
        "models": {model: scores(classifier, clips) for model, clips in videos.items()},
        "training_stability": {model: summary for model, summary in stability.items() if summary},
        "real": scores(classifier, torch.stack([real[i] for i in range(num_videos)])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.tgan.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", action="append", default=[], help="TGANPipeline folder (repeatable)")
    parser.add_argument("--num-videos", type=int, default=256)
    parser.add_argument("--num-digits", type=int, nargs="+", default=[1], help="digits per real clip")
    parser.add_argument("--classifier-steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--random-baseline", action="store_true", help="also score a randomly initialised generator"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = evaluate(
        args.model, args.num_videos, args.num_digits, args.seed, args.classifier_steps, args.random_baseline
    )
    print(f"digit classifier: {results['classifier_accuracy']:.1%} on held-out frames")
    print(
        "| clips | Inception-Score-style (max 10) | class consistency (frames shuffled between clips) "
        "| consistency of confident frames | classes covered | confident frames | frame change "
        "| centroid step (px) | moving clips |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, figures in [*results["models"].items(), ("real (MovingDigits)", results["real"])]:
        print(
            f"| {name} | {figures['inception_score']:.2f} | {figures['class_consistency']:.3f} "
            f"({figures['shuffled_consistency']:.3f}) | {figures['confident_consistency']:.3f} "
            f"| {figures['classes_covered']} | {figures['confident_frames']:.3f} "
            f"| {figures['frame_change']:.4f} | {figures['centroid_step_px']:.2f} "
            f"| {figures['moving_share']:.3f} |"
        )
    for name, stability in results["training_stability"].items():
        spans = "; ".join(
            f"to step {span['last_step']}: W {span['wasserstein']:.3f}, G {span['generator_loss']:.3f} "
            f"± {span['generator_loss_std']:.3f}"
            + (f", max sigma {span['largest_singular_value']:.3f}" if span["largest_singular_value"] else "")
            for span in stability["spans"]
        )
        print(f"training of {name} ({stability['steps']} steps, diverged: {stability['diverged']}): {spans}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
