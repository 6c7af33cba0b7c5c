"""Train the motion-aware correspondence encoder, self-supervised, with accelerate (CPU, one GPU or
many: `accelerate launch -m pipelines.correspondence.train ...`).

    python -m pipelines.data prepare data/colorization    # the offline clips + stills
    python -m pipelines.correspondence.train --data data/colorization --output-dir runs/mer-correspondence

Each step takes clips of `--num-frames` frames (real video and pseudo videos from stills, the same
data as colorization) and reconstructs the last frame's Lab from the earlier frames through the
affinity of the encoder's features (`objective.reconstruction_loss`). No labels are used. DIS
optical flow between consecutive frames feeds the motion enhancement engine and the adaptive
loss. Each frame's colour input is dropped with probability `--colour-dropout`, so the features work with
and without colour (`--no-colour`: luminance only). `--no-motion`, `--no-multi-cluster-sampler` and
`--no-adaptive-loss` switch the three components off (for ablations); the switches are saved in the
model's config.
"""

from __future__ import annotations

import argparse
import logging

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed

from ..core.colour import AB_SCALE, luminance_and_ab
from ..core.flow import luminance_to_u8
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
from ..data.clips import clip_loader
from .modeling import MotionCorrespondenceEncoder, frame_flows
from .objective import reconstruction_loss
from .pipeline import CorrespondencePipeline

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.correspondence.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", nargs="+", required=True, help="folders of clips and stills/ (see colorization)"
    )
    parser.add_argument("--no-motion", action="store_true", help="switch the motion enhancement engine off")
    parser.add_argument("--no-multi-cluster-sampler", action="store_true", help="sample references uniformly")
    parser.add_argument("--no-adaptive-loss", action="store_true", help="weigh every pixel's error equally")
    parser.add_argument("--no-backbone", action="store_true", help="no frozen EfficientNet-Lite0 features")
    parser.add_argument("--no-colour", action="store_true", help="luminance only: no colour input")
    parser.add_argument(
        "--colour-dropout", type=float, default=0.5, help="probability that a frame's colour input is dropped"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--num-frames", type=int, default=3, help="frames per clip; the last is reconstructed"
    )
    parser.add_argument("--size", type=int, default=160, help="square crop side (a multiple of 16)")
    parser.add_argument(
        "--sample-fraction", type=float, default=0.5, help="share of reference positions each query sees"
    )
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    add_run_arguments(
        parser, output_dir="runs/mer-correspondence", steps=3000, save_every=250, log_every=25, num_workers=1
    )
    return parser.parse_args(argv)


def clip_flows(luminance: torch.Tensor) -> torch.Tensor:
    """luminance (B, T, 1, H, W) -> flow (B, T, 2, H, W): each frame's motion input (`frame_flows`),
    computed as at propagation: where each pixel was in the previous frame, and for frame 0 the
    reverse of its flow to frame 1."""
    batch, num_frames = luminance.shape[:2]
    flows = torch.zeros(batch, num_frames, 2, *luminance.shape[-2:])
    for b in range(batch):
        frames = [luminance_to_u8(luminance[b, t]) for t in range(num_frames)]
        for t, flow in enumerate(frame_flows(frames)):
            if flow is not None:
                flows[b, t] = torch.from_numpy(flow).permute(2, 0, 1)
    return flows.to(luminance.device)


def drop_colour(
    ab: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """ab (N, 2, H, W) -> the same, each frame's colour zeroed (as grey footage) with `probability`."""
    keep = torch.rand(ab.shape[0], generator=generator) >= probability
    return ab * keep.to(ab.device, ab.dtype).view(-1, 1, 1, 1)


def clip_loss(
    encoder: MotionCorrespondenceEncoder,
    clip: torch.Tensor,
    sample_fraction: float,
    temperature: float,
    generator: torch.Generator | None = None,
    colour_dropout: float = 0.5,
) -> torch.Tensor:
    """clip (B, T, 3, S, S) RGB in [0, 1] -> the reconstruction loss of frame T-1 from frames 0..T-2.

    With the encoder's colour input on, each frame's ab is an input with probability 1 - `colour_dropout`
    (the query's too: its colour only helps it find matches; the reconstruction is the references')."""
    batch, num_frames = clip.shape[:2]
    luminance, ab = luminance_and_ab(clip.flatten(0, 1))  # (B*T, 1, S, S), (B*T, 2, S, S)
    flow = clip_flows(luminance.unflatten(0, (batch, num_frames)))
    config = getattr(encoder, "module", encoder).config  # unwrapped under DistributedDataParallel
    # no draw for an encoder without colour input, so its runs take the same random samples as before
    colour_input = drop_colour(ab, colour_dropout, generator) if config.use_colour else None
    features = encoder(luminance, flow.flatten(0, 1), colour_input)  # (B*T, C, h, w)
    grid = features.shape[-2:]
    colour = F.adaptive_avg_pool2d(torch.cat([luminance / 100.0, ab / AB_SCALE], dim=1), grid)
    motion = F.adaptive_avg_pool2d(flow.flatten(0, 1).norm(dim=1, keepdim=True), grid)
    features, colour, motion = (
        x.unflatten(0, (batch, num_frames)).flatten(-2) for x in (features, colour, motion)
    )  # (B, T, C or 3 or 1, h*w)
    num_samples = max(16, int(sample_fraction * (num_frames - 1) * features.shape[-1]))
    losses = []
    for b in range(batch):
        # references: all earlier frames' positions together, (C, (T-1)*h*w)
        references = features[b, :-1].transpose(0, 1).flatten(1)
        reference_colour = colour[b, :-1].transpose(0, 1).flatten(1)
        losses.append(
            reconstruction_loss(
                features[b, -1],
                references,
                colour[b, -1],
                reference_colour,
                motion[b, -1, 0],
                num_samples=num_samples,
                temperature=temperature,
                use_multi_cluster_sampler=config.use_multi_cluster_sampler,
                use_adaptive_loss=config.use_adaptive_loss,
                generator=generator,
            )
        )
    return torch.stack(losses).mean()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    accelerator = Accelerator()
    set_seed(args.seed + accelerator.process_index)
    generator = torch.Generator().manual_seed(args.seed + accelerator.process_index)
    encoder = MotionCorrespondenceEncoder(
        backbone=None if args.no_backbone else "efficientnet-lite0",
        use_motion=not args.no_motion,
        use_multi_cluster_sampler=not args.no_multi_cluster_sampler,
        use_adaptive_loss=not args.no_adaptive_loss,
        use_colour=not args.no_colour,
    )
    encoder.load_pretrained_backbone()
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    budget = RunBudget(args.steps, args.max_minutes)
    scheduler = warmup_cosine_schedule(optimizer, budget)
    loader = clip_loader(args.data, args.num_frames, args.size, args.batch_size, args.steps, args.num_workers)
    encoder, optimizer, loader, scheduler = accelerator.prepare(encoder, optimizer, loader, scheduler)
    done = resume_run(accelerator, args.output_dir, args) if args.resume else 0

    def pipeline() -> CorrespondencePipeline:
        return CorrespondencePipeline(encoder=accelerator.unwrap_model(encoder))

    encoder.train()
    running, clips = RunningMeans(), endless(loader)
    for step in training_steps(accelerator, args, budget, done, pipeline):
        loss = clip_loss(
            encoder, next(clips), args.sample_fraction, args.temperature, generator, args.colour_dropout
        )
        backward_and_step(accelerator, loss, trainable, optimizer, scheduler)
        running.add(loss=loss.item())
        if step % args.log_every == 0:
            loss_mean, lr = running.take()["loss"], scheduler.get_last_lr()[0]
            logger.info("step %d  reconstruction %.4f  lr %.2e", step, loss_mean, lr)


if __name__ == "__main__":
    main()
