"""Train TGAN (Saito et al., ICCV 2017) as a Wasserstein GAN, with accelerate (CPU, one GPU or many:
`accelerate launch -m pipelines.tgan.train ...`).

    python -m pipelines.tgan.train --output-dir runs/tgan-svc --clipping svc --seed 0
    python -m pipelines.tgan.train --output-dir runs/tgan-clip --clipping weight --seed 0
    python -m pipelines.tgan.train --data clips/ --channels 3 ...    # a folder of short videos instead

Each step trains the critic `--critic-steps` times on real clips (bouncing digits made on the fly,
or windows of the videos under `--data`) against generated ones, minimising
E[critic(fake)] - E[critic(real)], then the generators once to maximise E[critic(fake)]. The critic is
kept Lipschitz by `--clipping`: `svc` clips every weight's singular values (and batch-norm scales)
to <= 1 every `--svc-every` critic steps (the paper: 5), `weight` clamps every critic parameter to
[-0.01, 0.01] after every critic step (plain WGAN), `none` does neither. RMSprop at 5e-5 for all
three networks, as the authors' release (`--optimizer adam` for comparisons).

`--identity-swaps F` (bouncing digits only) is negative data augmentation (Sinha et al., "Negative Data
Augmentation", ICLR 2021): that fraction of each critic batch's generated clips is replaced by real clips
whose digit turns into another digit mid-clip (`data.IdentitySwappedDigits`), so the critic learns that
a digit changing its identity is fake, which the generated clips did (the critic alone did not learn it).

`--frame-motion translation` (ours, not the paper's; `TGANImageGenerator`) lets the clip's slow latent
alone draw its frame and the per-frame latents only shift it, so a digit cannot turn into another digit
mid-clip; the embedded `checkpoints/tgan-moving-digits` is trained so. The default, `latent`, is the paper's.

Every step appends a line to OUTPUT_DIR/training_log.jsonl (critic and generator loss, the
Wasserstein estimate, seconds; every `--log-every` steps also the largest singular value of each critic
layer), so stability can be compared across seeds and clipping modes; a
non-finite loss ends the run as diverged (exit status 2, the model is not saved). `--resume` continues
from OUTPUT_DIR/training_state. The pipeline is saved to OUTPUT_DIR with `save_pretrained`.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from ..core.training import (
    RunBudget,
    StepLog,
    add_run_arguments,
    endless,
    resume_run,
    saved_run,
    training_steps,
)
from .clipping import layer_spectral_norms, singular_value_clip_, weight_clip_
from .data import ClipFolder, IdentitySwappedDigits, MovingDigits
from .modeling import (
    FRAME_MOTIONS,
    TGANCritic,
    TGANImageGenerator,
    TGANTemporalGenerator,
    generate_videos,
    sample_slow_latents,
)
from .pipeline import TGANPipeline

logger = logging.getLogger(__name__)

CLIPPING_MODES = ("svc", "weight", "none")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.tgan.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="folder of short videos; default: bouncing digits made on the fly")
    parser.add_argument("--num-digits", type=int, nargs="+", default=[1, 2], help="digits per clip (drawn)")
    parser.add_argument("--clipping", choices=CLIPPING_MODES, default="svc")
    parser.add_argument("--svc-every", type=int, default=5, help="critic steps between singular value clips")
    parser.add_argument("--weight-clip", type=float, default=0.01, help="bound of --clipping weight")
    parser.add_argument("--critic-steps", type=int, default=1, help="critic updates per generator update")
    parser.add_argument(
        "--identity-swaps",
        type=float,
        default=0.0,
        help="fraction of the critic's fake clips replaced by real clips whose digit changes class mid-clip "
        "(negative data augmentation; bouncing digits only; default 0)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--z-slow-dim", type=int, default=100)
    parser.add_argument("--z-fast-dim", type=int, default=100)
    parser.add_argument(
        "--temporal-channels", type=int, nargs="+", default=[512, 256, 128, 128],
        help="temporal generator widths; frames must be a multiple of 2**(their count)",
    )  # fmt: skip
    parser.add_argument("--generator-channels", type=int, default=512, help="image generator width")
    parser.add_argument(
        "--slow-every-layer",
        action="store_true",
        help="condition every image-generator layer on the slow latent z0 (FiLM; not in the paper)",
    )
    parser.add_argument(
        "--frame-motion",
        choices=FRAME_MOTIONS,
        default="latent",
        help="latent (the paper): the per-frame latent is half of each frame's drawing; translation (not in "
        "the paper): the slow latent draws the clip's frame and the per-frame latent only shifts it",
    )
    parser.add_argument("--critic-channels", type=int, default=64, help="critic's first width")
    parser.add_argument("--optimizer", choices=("rmsprop", "adam"), default="rmsprop")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (torch.set_num_threads)")
    add_run_arguments(
        parser,
        output_dir="runs/tgan-moving-digits",
        steps=100_000,
        save_every=1000,
        log_every=50,
        num_workers=0,
    )
    args = parser.parse_args(argv)
    for name in ("svc_every", "critic_steps", "steps", "batch_size", "threads", "save_every", "log_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.identity_swaps < 1:
        parser.error("--identity-swaps must be in [0, 1)")
    if args.batch_size - round(args.identity_swaps * args.batch_size) < 2:
        parser.error("--identity-swaps leaves fewer than 2 generated clips per batch (batch norm needs 2)")
    if args.identity_swaps and args.data:
        parser.error("--identity-swaps is for the bouncing digits; it cannot be used with --data")
    return args


@dataclass
class TGANModels:
    temporal_generator: TGANTemporalGenerator
    image_generator: TGANImageGenerator
    critic: TGANCritic

    def generator_parameters(self) -> list[torch.nn.Parameter]:
        return [*self.temporal_generator.parameters(), *self.image_generator.parameters()]


def build_models(args: argparse.Namespace) -> TGANModels:
    return TGANModels(
        TGANTemporalGenerator(
            frames=args.frames,
            z_slow_dim=args.z_slow_dim,
            z_fast_dim=args.z_fast_dim,
            channels=tuple(args.temporal_channels),
        ),
        TGANImageGenerator(
            z_slow_dim=args.z_slow_dim,
            z_fast_dim=args.z_fast_dim,
            image_size=args.image_size,
            out_channels=args.channels,
            base_channels=args.generator_channels,
            slow_every_layer=args.slow_every_layer,
            frame_motion=args.frame_motion,
        ),
        TGANCritic(
            in_channels=args.channels,
            frames=args.frames,
            image_size=args.image_size,
            base_channels=args.critic_channels,
        ),
    )


def make_optimizer(parameters, name: str, lr: float) -> torch.optim.Optimizer:
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    return torch.optim.Adam(parameters, lr=lr, betas=(0.5, 0.999))  # DCGAN's betas


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "module", module)  # DistributedDataParallel keeps the model in .module


def fake_videos(models: TGANModels, batch_size: int, device: torch.device) -> torch.Tensor:
    """Generated clips (B, C, T, H, W) in [-1, 1], the critic's layout."""
    z_slow = sample_slow_latents(
        batch_size, _unwrap(models.temporal_generator).config.z_slow_dim, device=device
    )
    return generate_videos(models.temporal_generator, models.image_generator, z_slow).transpose(1, 2)


def clip_critic(
    critic: torch.nn.Module, clipping: str, critic_step: int, svc_every: int, bound: float
) -> bool:
    """Apply the clipping due after critic step `critic_step` (1-based); True when it ran."""
    if clipping == "weight":
        weight_clip_(critic, bound)
        return True
    if clipping == "svc" and critic_step % svc_every == 0:
        singular_value_clip_(critic)
        return True
    return False


def critic_update(
    models: TGANModels,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    accelerator: Accelerator,
    negatives: torch.Tensor | None = None,
) -> tuple[float, float]:
    """One critic step on real clips (B, T, C, H, W) against as many fake ones: minimise
    E[critic(fake)] - E[critic(real)]. The fakes are generated, except for `negatives` (N, T, C, H, W), N < B,
    real-looking clips that must count as fake (negative data augmentation), which take N of the places.
    Returns (critic loss, mean critic score of the real clips)."""
    num_negatives = 0 if negatives is None else negatives.shape[0]
    with torch.no_grad():
        fake = fake_videos(models, real.shape[0] - num_negatives, real.device)  # (B - N, C, T, H, W)
    if num_negatives:
        fake = torch.cat([fake, negatives.transpose(1, 2)])
    optimizer.zero_grad(set_to_none=True)
    # Separate passes, as the paper's release: batch norm normalises real and fake clips each on their own.
    real_scores = models.critic(real.transpose(1, 2))
    loss = models.critic(fake).mean() - real_scores.mean()
    accelerator.backward(loss)
    optimizer.step()
    return loss.item(), real_scores.mean().item()


def generator_update(
    models: TGANModels, optimizer: torch.optim.Optimizer, batch_size: int, accelerator: Accelerator
) -> float:
    """One step of both generators: maximise E[critic(fake)]. Returns the generator loss."""
    optimizer.zero_grad(set_to_none=True)
    # No critic gradients are needed; no_sync keeps DistributedDataParallel from waiting for them.
    models.critic.requires_grad_(False)
    try:
        with accelerator.no_sync(models.critic):
            loss = -models.critic(fake_videos(models, batch_size, accelerator.device)).mean()
        accelerator.backward(loss)
        optimizer.step()
    finally:
        models.critic.requires_grad_(True)
    return loss.item()


@dataclass
class TrainingConfig:
    """How the critic is kept Lipschitz and how often it is updated (the CLI's switches of the same names)."""

    clipping: str = "svc"
    svc_every: int = 5
    weight_clip: float = 0.01
    critic_steps: int = 1
    identity_swaps: float = 0.0  # the fraction of fake clips that are identity-swapped real ones


def train_step(
    models: TGANModels,
    generator_optimizer: torch.optim.Optimizer,
    critic_optimizer: torch.optim.Optimizer,
    real_batches: Iterator[torch.Tensor],
    config: TrainingConfig,
    critic_steps_done: int,
    accelerator: Accelerator,
    negative_batches: Iterator[torch.Tensor] | None = None,
) -> dict[str, float]:
    """`config.critic_steps` critic updates (each on the next real batch (B, T, C, H, W), each followed by
    the clipping due) and one generator update. `critic_steps_done` counts critic updates before this
    step (it times SVC). With `config.identity_swaps`, each critic update takes that fraction of its fakes
    from `negative_batches` (B, T, C, H, W). Returns the step's log record."""
    critic_losses, real_scores, clipped = [], [], 0
    for _ in range(config.critic_steps):
        real = next(real_batches)
        negatives = None
        if config.identity_swaps and negative_batches is not None:
            negatives = next(negative_batches)[: round(config.identity_swaps * real.shape[0])]
        loss, real_score = critic_update(models, critic_optimizer, real, accelerator, negatives)
        critic_losses.append(loss)
        real_scores.append(real_score)
        critic_steps_done += 1
        clipped += clip_critic(
            _unwrap(models.critic), config.clipping, critic_steps_done, config.svc_every, config.weight_clip
        )
    if clipped and accelerator.num_processes > 1:
        # Batch-norm clamps use each process's running variance: take the main process's critic.
        for tensor in _unwrap(models.critic).state_dict().values():
            torch.distributed.broadcast(tensor, src=0)
    generator_loss = generator_update(models, generator_optimizer, real.shape[0], accelerator)
    critic_loss = sum(critic_losses) / len(critic_losses)
    return {
        "critic_loss": critic_loss,
        "wasserstein": -critic_loss,  # E[critic(real)] - E[critic(fake)]: the critic's distance estimate
        "critic_real": sum(real_scores) / len(real_scores),
        "generator_loss": generator_loss,
        "clipped": clipped,
    }


def training_data(args: argparse.Namespace, first_clip: int) -> torch.utils.data.Dataset:
    """The real clips: a folder of videos, or bouncing digits numbered from `first_clip` (so a resumed
    run sees new clips)."""
    if args.data:
        # Item i is a random window of clip i % (number of clips): as many items as the run uses.
        num_items = args.steps * args.critic_steps * args.batch_size
        return ClipFolder(args.data, args.frames, args.image_size, args.channels, num_items, seed=args.seed)
    if args.channels != 1:
        raise SystemExit("error: the bouncing digits are grey; use --channels 1 or give --data.")
    return MovingDigits(
        num_clips=args.steps * args.critic_steps * args.batch_size,
        num_frames=args.frames,
        image_size=args.image_size,
        num_digits=args.num_digits,
        seed=args.seed,
        first_index=first_clip,
    )


# Negative clips are drawn from their own stream of bouncing digits, not the real clips' paths.
NEGATIVE_SEED_OFFSET = 1_000_003


def negative_data(args: argparse.Namespace, first_clip: int) -> IdentitySwappedDigits:
    """The critic's negative clips for `--identity-swaps`: identity-swapped bouncing digits numbered from
    `first_clip`, a whole batch per critic step (each step uses the first part of it)."""
    return IdentitySwappedDigits(
        num_clips=args.steps * args.critic_steps * args.batch_size,
        num_frames=args.frames,
        image_size=args.image_size,
        num_digits=args.num_digits,
        seed=args.seed + NEGATIVE_SEED_OFFSET,
        first_index=first_clip,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    accelerator = Accelerator()
    # a resumed run continues the digit stream where the saved one stopped: its step comes before the data
    saved = saved_run(args.output_dir) if args.resume else None
    set_seed(args.seed + accelerator.process_index)
    models = build_models(args)
    generator_optimizer = make_optimizer(models.generator_parameters(), args.optimizer, args.lr)
    critic_optimizer = make_optimizer(models.critic.parameters(), args.optimizer, args.lr)
    clips_per_step = args.critic_steps * args.batch_size * accelerator.num_processes
    first_clip = (saved["step"] if saved else 0) * clips_per_step

    def loader_of(dataset: torch.utils.data.Dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=args.batch_size,
            shuffle=bool(args.data),  # the digits are random already; in order, a resumed run continues
            num_workers=args.num_workers,
            drop_last=True,
            persistent_workers=args.num_workers > 0,
        )

    loader = loader_of(training_data(args, first_clip))
    negative_loader = loader_of(negative_data(args, first_clip)) if args.identity_swaps else None
    *networks, generator_optimizer, critic_optimizer, loader = accelerator.prepare(
        models.temporal_generator,
        models.image_generator,
        models.critic,
        generator_optimizer,
        critic_optimizer,
        loader,
    )
    if negative_loader is not None:
        negative_loader = accelerator.prepare(negative_loader)
    models = TGANModels(*networks)
    done = resume_run(accelerator, args.output_dir, args) if saved else 0
    step_log = StepLog(accelerator, args.output_dir, resumed=done > 0)

    def pipeline() -> TGANPipeline:
        return TGANPipeline(
            temporal_generator=accelerator.unwrap_model(models.temporal_generator),
            image_generator=accelerator.unwrap_model(models.image_generator),
        )

    config = TrainingConfig(
        args.clipping, args.svc_every, args.weight_clip, args.critic_steps, args.identity_swaps
    )
    for module in (models.temporal_generator, models.image_generator, models.critic):
        module.train()
    budget = RunBudget(args.steps, args.max_minutes)
    real_batches = endless(loader)
    negative_batches = endless(negative_loader) if negative_loader is not None else None
    for step in training_steps(accelerator, args, budget, done, pipeline):
        started = time.monotonic()
        critic_steps_done = (step - 1) * args.critic_steps  # before this step: it times SVC
        record = train_step(
            models,
            generator_optimizer,
            critic_optimizer,
            real_batches,
            config,
            critic_steps_done,
            accelerator,
            negative_batches,
        )
        record = {"step": step, **record, "seconds": round(time.monotonic() - started, 4)}
        if step % args.log_every == 0:
            # The bound SVC keeps: each critic layer's largest singular value (batch norm as gamma / std).
            record["critic_spectral_norms"] = layer_spectral_norms(accelerator.unwrap_model(models.critic))
        diverged = not all(math.isfinite(record[key]) for key in ("critic_loss", "generator_loss"))
        step_log.write({**record, "diverged": diverged})
        if diverged:
            step_log.diverged(step)
        if step % args.log_every == 0:
            logger.info(
                "step %d  critic %.4f  generator %.4f  (%.2fs/step)",
                step,
                record["critic_loss"],
                record["generator_loss"],
                record["seconds"],
            )


if __name__ == "__main__":
    main()
