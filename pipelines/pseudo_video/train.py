"""Train an image generator, or its pseudo-video counterpart, with accelerate (CPU, one GPU or many:
`accelerate launch -m pipelines.pseudo_video.train ...`).

    python -m pipelines.pseudo_video.train --mode markov --seed 0 --output-dir runs/pv-markov-s0
    python -m pipelines.pseudo_video.train --mode rich --data photos --image-size 16 --channels 3 ...
    python -m pipelines.pseudo_video.train --mode image --data path/to/images --image-size 32 ...

`--mode image` trains the one-step generator noise -> image (the two-frame pseudo video), `markov`
the video model on Gaussian-noising pseudo videos, `rich` on mixture (downsample + mask + colour
fade) pseudo videos; all three with the same network, parameter count, cIMLE objective
(`--candidates` latents per image) and cost per step. Each step draws a batch of images, a random
non-final frame of each one's pseudo video, and pulls the best of the candidates' clean-image samples
onto the image (see `modeling.py`). Adam with linear warm-up and cosine decay over the budget
(`--steps` and/or `--max-minutes`, whichever ends first).

Every step appends a line to OUTPUT_DIR/training_log.jsonl; `--resume` continues from
OUTPUT_DIR/training_state. The pipeline is saved to OUTPUT_DIR with `save_pretrained`.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, RandomSampler

from ..core.training import (
    RunBudget,
    StepLog,
    add_run_arguments,
    endless,
    resume_run,
    training_steps,
    warmup_cosine_schedule,
)
from .data import ImageTensorDataset, load_images
from .modeling import MODES, PseudoVideoGenerator, imle_loss, scheduler_for_mode
from .pipeline import PseudoVideoPipeline

logger = logging.getLogger(__name__)

# a resumed run must have the saved run's architecture and pseudo videos
MUST_MATCH = ("mode", "image_size", "channels", "num_frames", "width", "blocks", "latent_dim")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.pseudo_video.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=MODES, default="markov")
    parser.add_argument("--data", default="digits", help='"digits", "photos", or a folder of images')
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--num-frames", type=int, default=8, help="pseudo-video frames (markov, rich)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks per scale")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=8, help="cIMLE latents tried per image")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (torch.set_num_threads)")
    add_run_arguments(
        parser,
        output_dir="runs/pseudo-video-digits",
        steps=1200,
        save_every=500,
        log_every=100,
        num_workers=0,
    )
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "threads", "save_every", "log_every", "candidates", "warmup_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.num_frames < 2:
        parser.error("--num-frames must be at least 2 (a degraded start and the image)")
    if args.image_size < 2 or args.image_size % 2:
        parser.error("--image-size must be an even number >= 2")
    return args


def build_model(args: argparse.Namespace) -> PseudoVideoGenerator:
    return PseudoVideoGenerator(
        image_size=args.image_size,
        in_channels=args.channels,
        width=args.width,
        blocks=args.blocks,
        latent_dim=args.latent_dim,
    )


def train_step(
    model: torch.nn.Module,
    scheduler,
    optimizer: torch.optim.Optimizer,
    clean: torch.Tensor,
    num_candidates: int,
    accelerator: Accelerator,
    generator: torch.Generator | None = None,
) -> float:
    """One optimiser step on clean images (B, C, H, W) in [-1, 1]; returns the cIMLE loss."""
    frame, level = scheduler.training_frames(clean, generator)
    latent_dim = getattr(model, "module", model).config.latent_dim
    loss = imle_loss(model, frame, level, clean, num_candidates, latent_dim, generator)
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    optimizer.step()
    return loss.item()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    accelerator = Accelerator()
    set_seed(args.seed + accelerator.process_index)
    try:
        images = load_images(args.data, args.image_size, args.channels, seed=args.seed)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from error
    dataset = ImageTensorDataset(images)
    sampler = RandomSampler(dataset, replacement=True, num_samples=args.steps * args.batch_size)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        sampler=sampler,
        num_workers=args.num_workers,
        drop_last=True,
        persistent_workers=args.num_workers > 0,
    )
    model = build_model(args)
    scheduler = scheduler_for_mode(args.mode, args.num_frames)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    budget = RunBudget(args.steps, args.max_minutes)
    lr_schedule = warmup_cosine_schedule(optimizer, budget, args.warmup_steps)
    model, optimizer, loader, lr_schedule = accelerator.prepare(model, optimizer, loader, lr_schedule)
    done = resume_run(accelerator, args.output_dir, args, MUST_MATCH) if args.resume else 0
    step_log = StepLog(accelerator, args.output_dir, resumed=done > 0)
    num_parameters = sum(p.numel() for p in model.parameters())
    logger.info("mode %s: %d parameters, %d training images", args.mode, num_parameters, len(dataset))

    def pipeline() -> PseudoVideoPipeline:
        return PseudoVideoPipeline(model=accelerator.unwrap_model(model), scheduler=scheduler)

    model.train()
    batches = endless(loader)
    for step in training_steps(accelerator, args, budget, done, pipeline):
        started = time.monotonic()
        loss = train_step(model, scheduler, optimizer, next(batches), args.candidates, accelerator)
        lr_schedule.step()
        record = {"step": step, "loss": loss, "lr": lr_schedule.get_last_lr()[0]}
        record["seconds"] = round(time.monotonic() - started, 4)
        step_log.write(record)
        if not math.isfinite(loss):
            step_log.diverged(step)
        if step % args.log_every == 0:
            logger.info(
                "step %d  loss %.4f  (%.3fs/step, %.1f min)", step, loss, record["seconds"], budget.minutes()
            )


if __name__ == "__main__":
    main()
