"""Train ColorMNet-lite with accelerate (CPU, one GPU or many: `accelerate launch -m ...`).

    python -m pipelines.colorization.train --prepare-data data/colorization      # offline sources
    python -m pipelines.colorization.train --data data/colorization --output-dir runs/colormnet-lite

Each step takes a batch of clips, uses frame 0 as the exemplar (permanent memory) and colours the
following frames in order exactly as the pipeline does (`colorize_step`: memory readout + local
attention to the previous frame, predictions written back to working memory), with an L1 loss on
ab at stride 2. The frozen backbone is not trained. Checkpoints are whole pipeline folders
(`save_pretrained`) plus the accelerate state, so `--resume` continues where a run stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from ..core.colour import luminance_and_ab
from .data import ColorizationClips, export_offline_data
from .memory import ColorMemory, MemoryConfig
from .modeling import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetValueEncoder,
    colorize_step,
    encode_memory_frame,
)
from .pipeline import ColorMNetPipeline

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--prepare-data", metavar="DIR", help="export the offline training data to DIR and exit"
    )
    parser.add_argument("--data", nargs="+", help="folders holding clip folders (frames), videos and stills/")
    parser.add_argument("--output-dir", default="runs/colormnet-lite")
    parser.add_argument("--init-from", help="start from this pipeline folder instead of a fresh model")
    parser.add_argument("--resume", action="store_true", help="continue from the state in --output-dir")
    parser.add_argument("--backbone", default="efficientnet-lite0", choices=["efficientnet-lite0", "dinov2"])
    parser.add_argument("--backbone-path", help="local folder or repo id of the backbone weights (dinov2)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument(
        "--max-minutes",
        type=float,
        help="time budget: stop and save after this long; the learning-rate "
        "schedule then follows whichever of steps and time runs out first",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--num-frames", type=int, default=5, help="frames per clip, the first is the exemplar"
    )
    parser.add_argument("--size", type=int, default=256, help="square crop side")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    return parser.parse_args(argv)


def build_components(args: argparse.Namespace):
    if args.init_from:
        pipe = ColorMNetPipeline.from_pretrained(args.init_from)
        return pipe.feature_encoder, pipe.value_encoder, pipe.decoder
    feature_encoder = ColorMNetFeatureEncoder(backbone=args.backbone)
    feature_encoder.load_pretrained_backbone(args.backbone_path)
    return feature_encoder, ColorMNetValueEncoder(), ColorMNetDecoder()


def clip_loss(
    feature_encoder,
    value_encoder,
    decoder,
    clip: torch.Tensor,
    memory_config: MemoryConfig,
    radii: tuple[int, int] = (3, 2),
) -> torch.Tensor:
    """clip (B, T, 3, S, S) RGB in [0, 1] -> mean L1 of predicted vs true ab (Lab units) on frames 1..T-1."""
    batch, num_frames = clip.shape[:2]
    luminance, ab = luminance_and_ab(clip.flatten(0, 1))
    luminance = luminance.unflatten(0, (batch, num_frames))
    ab = ab.unflatten(0, (batch, num_frames))
    memory = ColorMemory(memory_config)
    exemplar = encode_memory_frame(feature_encoder, value_encoder, luminance[:, 0], ab[:, 0])
    memory.add_permanent(exemplar.key, exemplar.value)
    # Half the time the exemplar is the previous frame too (a keyframe coloured by the user);
    # otherwise the first coloured frame has no previous frame, like a free reference photo.
    previous = exemplar if random.random() < 0.5 else None
    losses = []
    for index in range(1, num_frames):
        predicted, previous = colorize_step(
            feature_encoder, value_encoder, decoder, luminance[:, index], memory, previous, *radii
        )
        losses.append(F.l1_loss(predicted, F.avg_pool2d(ab[:, index], 2)))
        memory.add_working(previous.key, previous.value)
    return torch.stack(losses).mean()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.prepare_data:
        print(f"wrote {export_offline_data(args.prepare_data)}")
        return
    if not args.data:
        raise SystemExit("--data is required (or --prepare-data DIR first)")
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed + accelerator.process_index)
    output_dir = Path(args.output_dir)
    state_dir = output_dir / "training_state"

    feature_encoder, value_encoder, decoder = build_components(args)
    trainable = [
        p for m in (feature_encoder, value_encoder, decoder) for p in m.parameters() if p.requires_grad
    ]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    started = time.monotonic()

    def progress(step: int) -> float:
        """Fraction of the run done: by steps, or by the time budget when that runs out first."""
        done = step / args.steps
        if args.max_minutes:
            done = max(done, (time.monotonic() - started) / (60 * args.max_minutes))
        return min(done, 1.0)

    # Linear warm-up over 100 steps, then cosine decay to zero at the end of the run.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * progress(step)))
    )
    dataset = ColorizationClips(
        args.data, num_frames=args.num_frames, size=args.size, samples_per_epoch=args.steps * args.batch_size
    )
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.num_workers,
        drop_last=True,
        persistent_workers=args.num_workers > 0,
    )
    feature_encoder, value_encoder, decoder, optimizer, loader, scheduler = accelerator.prepare(
        feature_encoder, value_encoder, decoder, optimizer, loader, scheduler
    )
    step = 0
    if args.resume and state_dir.is_dir():
        accelerator.load_state(str(state_dir))
        step = json.loads((state_dir / "step.json").read_text())["step"]
        logger.info("resumed at step %d", step)
    # Training keeps every coloured frame in working memory and compresses often, so the memory
    # paths the pipeline uses over long videos are exercised on short clips.
    memory_config = MemoryConfig(
        memory_every=1, max_working_frames=3, min_working_frames=1, num_prototypes=64
    )

    def save() -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            pipe = ColorMNetPipeline(
                feature_encoder=accelerator.unwrap_model(feature_encoder),
                value_encoder=accelerator.unwrap_model(value_encoder),
                decoder=accelerator.unwrap_model(decoder),
            )
            pipe.save_pretrained(output_dir)
        accelerator.save_state(str(state_dir))
        if accelerator.is_main_process:
            (state_dir / "step.json").write_text(json.dumps({"step": step}))

    for module in (feature_encoder, value_encoder, decoder):
        module.train()
    running = 0.0

    def batches():
        while True:  # epochs are arbitrary here: the run is measured in steps (or minutes)
            yield from loader

    started = time.monotonic()  # the time budget counts training, not start-up
    for clip in batches():
        with accelerator.autocast():
            loss = clip_loss(feature_encoder, value_encoder, decoder, clip, memory_config)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        running += loss.item()
        if step % args.log_every == 0:
            logger.info(
                "step %d  ab L1 %.3f  lr %.2e", step, running / args.log_every, scheduler.get_last_lr()[0]
            )
            running = 0.0
        finished = step >= args.steps or progress(step) >= 1.0
        if step % args.save_every == 0 or finished:
            save()
        if finished:
            break
    accelerator.end_training()


if __name__ == "__main__":
    main()
