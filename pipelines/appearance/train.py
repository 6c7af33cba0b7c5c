"""Pre-train the Hero stage's restorer with accelerate (CPU, one GPU or many: `accelerate launch -m ...`).

    python -m pipelines.data prepare data/colorization      # offline photos and clips
    python -m pipelines.appearance.train --data data/colorization --output-dir runs/zero2hero-lite

Each step takes a batch of proxy clips (`data.ProxyPairs`: a random edit of an offline photo or clip
frame, the photo and its edit moved along one random camera path or pan), runs the Zero stage from the
edited anchor onto the later frames exactly as the pipeline does (`finetune.zero_stage_batch`, frozen
features, no gradients), and trains the restorer to map the result to the truth (L1 + gradient L1)
inside its gate: where the Zero stage could not read the edit from matching anchor content. Only the
restorer is trained. Checkpoints are whole pipeline folders (`save_pretrained`: the feature encoder with
its frozen backbone weights, and the restorer) plus the accelerate state, so `--resume` continues a run.
"""

from __future__ import annotations

import argparse
import logging

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from ..core.backbones import available_backbones, pretrained_backbone_config
from ..core.training import (
    RunBudget,
    RunningMeans,
    add_run_arguments,
    backward_and_step,
    endless,
    resume_run,
    training_steps,
    warmup_cosine_schedule,
)
from .data import ProxyPairs
from .finetune import restoration_loss, zero_stage_batch
from .modeling import AppearanceFeatureEncoder, HeroRestorer
from .pipeline import ZeroToHeroPipeline

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", nargs="+", required=True, help="folders of images (stills/ and clip frames)"
    )
    parser.add_argument("--init-from", help="start from this saved ZeroToHeroPipeline folder")
    parser.add_argument("--backbone", default="mer-correspondence", choices=available_backbones())
    parser.add_argument(
        "--backbone-path",
        help="weights of the backbone: a CorrespondencePipeline folder for mer-correspondence (default "
        "checkpoints/mer-correspondence), a dinov2 folder or repo id",
    )
    parser.add_argument("--feature-stride", type=int, default=4, choices=[4, 8])
    parser.add_argument(
        "--hidden-channels", type=int, nargs="+", default=[16, 32, 48, 64], help="restorer widths, per level"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="proxy clips per step")
    parser.add_argument(
        "--num-frames", type=int, default=3, help="frames per proxy clip, the first is the anchor"
    )
    parser.add_argument("--size", type=int, default=128, help="proxy frame side (a multiple of 16)")
    parser.add_argument("--lr", type=float, default=5e-4)
    add_run_arguments(
        parser, output_dir="runs/zero2hero-lite", steps=2000, save_every=250, log_every=25, num_workers=1
    )
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    return parser.parse_args(argv)


def build_pipeline(args: argparse.Namespace) -> ZeroToHeroPipeline:
    if args.init_from:
        return ZeroToHeroPipeline.from_pretrained(args.init_from)
    # the architecture that comes with the backbone's weights (None where it is fixed)
    backbone_config = pretrained_backbone_config(args.backbone, args.backbone_path)
    encoder = AppearanceFeatureEncoder(
        backbone=args.backbone, backbone_config=backbone_config, feature_stride=args.feature_stride
    )
    encoder.load_pretrained_backbone(args.backbone_path)
    return ZeroToHeroPipeline(encoder, HeroRestorer(hidden_channels=tuple(args.hidden_channels)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.size % 16:
        raise SystemExit(f"--size must be a multiple of 16, got {args.size}")
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed + accelerator.process_index)
    pipe = build_pipeline(args)
    encoder, restorer = pipe.feature_encoder.to(accelerator.device).eval(), pipe.restorer
    zero_config = pipe.zero_stage_config()
    optimizer = torch.optim.AdamW(restorer.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = RunBudget(args.steps, args.max_minutes)
    scheduler = warmup_cosine_schedule(optimizer, budget, warmup_steps=50)
    dataset = ProxyPairs(
        args.data, args.num_frames, args.size, samples_per_epoch=args.steps * args.batch_size
    )
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        drop_last=True,
        persistent_workers=args.num_workers > 0,
    )
    restorer, optimizer, loader, scheduler = accelerator.prepare(restorer, optimizer, loader, scheduler)
    done = resume_run(accelerator, args.output_dir, args) if args.resume else 0

    def pipeline() -> ZeroToHeroPipeline:
        pipe.restorer = accelerator.unwrap_model(restorer)
        return pipe

    restorer.train()
    running, batches = RunningMeans(), endless(loader)
    for step in training_steps(accelerator, args, budget, done, pipeline):
        originals, editeds = next(batches)
        batch = zero_stage_batch(encoder, originals, editeds, zero_config)
        with accelerator.autocast():
            loss = restoration_loss(restorer(*batch.restorer_inputs), batch.truths)
        backward_and_step(accelerator, loss, restorer.parameters(), optimizer, scheduler)
        # the Zero stage alone, for comparison
        running.add(loss=loss.item(), zero=restoration_loss(batch.zero, batch.truths).item())
        if step % args.log_every == 0:
            means = running.take()
            logger.info(
                "step %d  loss %.4f  (Zero stage alone %.4f)  lr %.2e",
                step,
                means["loss"],
                means["zero"],
                scheduler.get_last_lr()[0],
            )


if __name__ == "__main__":
    main()
