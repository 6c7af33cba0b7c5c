"""Train ColorMNet-lite with accelerate (CPU, one GPU or many: `accelerate launch -m ...`).

    python -m pipelines.data prepare data/colorization      # offline sources
    python -m pipelines.colorization.train --data data/colorization --output-dir runs/colormnet-lite

Each step takes a batch of clips, uses frame 0 as the exemplar (permanent memory) and colours the
following frames in order exactly as the pipeline does (`colorize_step`: memory readout + local
attention to the previous frame, predictions written back to working memory), with an L1 loss on
ab at stride 2. The frozen backbone is not trained. Checkpoints are whole pipeline folders
(`save_pretrained`) plus the accelerate state, so `--resume` continues where a run stopped.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file

from ..core.backbones import available_backbones, pretrained_backbone_config
from ..core.colour import luminance_and_ab
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
from .memory import MemoryConfig
from .modeling import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetValueEncoder,
    LocalAttentionConfig,
)
from .pipeline import ColorMNetPipeline
from .stepper import ColorMNetStepper

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="+", help="folders holding clip folders (frames), videos and stills/")
    parser.add_argument(
        "--init-from",
        help="start from this saved pipeline folder (the weights that still fit) instead of a fresh model",
    )
    parser.add_argument(
        "--reinitialize",
        nargs="*",
        default=[],
        metavar="COMPONENT.PREFIX",
        help="with --init-from: weights to leave at their fresh initialisation, e.g. decoder.head (an output "
        "layer whose inputs changed meaning)",
    )
    parser.add_argument("--backbone", default="efficientnet-lite0", choices=available_backbones())
    parser.add_argument(
        "--backbone-path",
        help="local folder or repo id of the backbone weights (dinov2; a CorrespondencePipeline for "
        "mer-correspondence, default checkpoints/mer-correspondence)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--num-frames", type=int, default=5, help="frames per clip, the first is the exemplar"
    )
    parser.add_argument("--size", type=int, default=256, help="square crop side")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    add_run_arguments(
        parser, output_dir="runs/colormnet-lite", steps=3000, save_every=500, log_every=25, num_workers=2
    )
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    return parser.parse_args(argv)


def warm_start(component_class, folder: Path, reinitialize: tuple[str, ...] = ()):
    """A component built from the config saved in `folder`, with every saved weight whose name and
    shape match copied in, except those whose names start with a prefix in `reinitialize`. A
    convolution that gained input channels since keeps its old ones and starts the new ones at zero,
    so the warm-started model computes what the saved one did; weights the component no longer has
    are dropped. This lets a model be fine-tuned across an architecture
    change instead of retrained from scratch."""
    config = component_class.load_config(folder)
    known = inspect.signature(component_class.__init__).parameters
    # only the arguments the component still takes: a removed one would be carried into its new config
    component = component_class(**{name: value for name, value in config.items() if name in known})
    saved = load_file(folder / "diffusion_pytorch_model.safetensors")
    saved = {name: tensor for name, tensor in saved.items() if not name.startswith(tuple(reinitialize))}
    state = component.state_dict()
    for name, tensor in state.items():
        old = saved.get(name)
        if old is None or old.dim() != tensor.dim():
            continue
        if old.shape == tensor.shape:
            tensor.copy_(old)
        elif old.dim() == 4 and old.shape[0] == tensor.shape[0] and old.shape[2:] == tensor.shape[2:]:
            tensor.zero_()[:, : min(old.shape[1], tensor.shape[1])] = old[:, : tensor.shape[1]]
    component.load_state_dict(state)
    kept = sum(name in saved and saved[name].shape == tensor.shape for name, tensor in state.items())
    logger.info(
        "%s: %d of %d tensors warm-started from %s", component_class.__name__, kept, len(state), folder
    )
    return component


def build_components(args: argparse.Namespace):
    if args.init_from:
        folder = Path(args.init_from)
        return tuple(
            warm_start(
                component_class,
                folder / name,
                tuple(p.removeprefix(f"{name}.") for p in args.reinitialize if p.startswith(f"{name}.")),
            )
            for component_class, name in (
                (ColorMNetFeatureEncoder, "feature_encoder"),
                (ColorMNetValueEncoder, "value_encoder"),
                (ColorMNetDecoder, "decoder"),
            )
        )
    # the architecture that comes with the backbone's weights (None where it is fixed)
    backbone_config = pretrained_backbone_config(args.backbone, args.backbone_path)
    feature_encoder = ColorMNetFeatureEncoder(backbone=args.backbone, backbone_config=backbone_config)
    feature_encoder.load_pretrained_backbone(args.backbone_path)
    return feature_encoder, ColorMNetValueEncoder(), ColorMNetDecoder()


def clip_loss(
    feature_encoder: torch.nn.Module,
    value_encoder: torch.nn.Module,
    decoder: torch.nn.Module,
    clip: torch.Tensor,
    memory_config: MemoryConfig,
    local_attention: LocalAttentionConfig | None = None,
) -> torch.Tensor:
    """clip (B, T, 3, S, S) RGB in [0, 1] -> mean L1 of predicted vs true ab (Lab units) on frames 1..T-1.

    The components are the pipeline's three (as `accelerator.prepare` wrapped them). Frame 0 is the
    exemplar; frames 1.. are coloured in order by the pipeline's `ColorMNetStepper`, so working memory
    takes every `memory_config.memory_every`-th of them (training uses 1: all)."""
    batch, num_frames = clip.shape[:2]
    luminance, ab = luminance_and_ab(clip.flatten(0, 1))
    luminance = luminance.unflatten(0, (batch, num_frames))
    ab = ab.unflatten(0, (batch, num_frames))
    stepper = ColorMNetStepper(feature_encoder, value_encoder, decoder, memory_config, local_attention)
    # Half the time the exemplar is the previous frame too (a keyframe coloured by the user);
    # otherwise the first coloured frame has no previous frame, like a free reference photo.
    stepper.add_exemplar(luminance[:, 0], ab[:, 0], as_previous=random.random() < 0.5)
    losses = []
    for index in range(1, num_frames):
        predicted = stepper.step(luminance[:, index])
        losses.append(F.l1_loss(predicted, F.avg_pool2d(ab[:, index], 2)))
    return torch.stack(losses).mean()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.data:
        raise SystemExit("--data is required (write it first: python -m pipelines.data prepare DIR)")
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed + accelerator.process_index)
    feature_encoder, value_encoder, decoder = build_components(args)
    trainable = [
        p for m in (feature_encoder, value_encoder, decoder) for p in m.parameters() if p.requires_grad
    ]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)
    budget = RunBudget(args.steps, args.max_minutes)
    scheduler = warmup_cosine_schedule(optimizer, budget)
    loader = clip_loader(args.data, args.num_frames, args.size, args.batch_size, args.steps, args.num_workers)
    feature_encoder, value_encoder, decoder, optimizer, loader, scheduler = accelerator.prepare(
        feature_encoder, value_encoder, decoder, optimizer, loader, scheduler
    )
    done = resume_run(accelerator, args.output_dir, args) if args.resume else 0
    # Training keeps every coloured frame in working memory and compresses often, so the memory
    # paths the pipeline uses over long videos are exercised on short clips.
    memory_config = MemoryConfig(
        memory_every=1, max_working_frames=3, min_working_frames=1, num_prototypes=64
    )

    def pipeline() -> ColorMNetPipeline:
        return ColorMNetPipeline(
            feature_encoder=accelerator.unwrap_model(feature_encoder),
            value_encoder=accelerator.unwrap_model(value_encoder),
            decoder=accelerator.unwrap_model(decoder),
        )

    for module in (feature_encoder, value_encoder, decoder):
        module.train()
    running, clips = RunningMeans(), endless(loader)
    for step in training_steps(accelerator, args, budget, done, pipeline):
        with accelerator.autocast():
            loss = clip_loss(feature_encoder, value_encoder, decoder, next(clips), memory_config)
        backward_and_step(accelerator, loss, trainable, optimizer, scheduler)
        running.add(loss=loss.item())
        if step % args.log_every == 0:
            loss_mean, lr = running.take()["loss"], scheduler.get_last_lr()[0]
            logger.info("step %d  ab L1 %.3f  lr %.2e", step, loss_mean, lr)


if __name__ == "__main__":
    main()
