"""`TGANPipeline`: short videos from seeds with a temporal GAN (Saito et al., ICCV 2017).

    pipe = TGANPipeline.from_pretrained("checkpoints/tgan-moving-digits")
    videos = pipe(num_videos=4, generator=torch.Generator().manual_seed(0)).frames  # (4, 16, 64, 64, 1) uint8
    slow_motion = pipe(num_frames=61, generator=torch.Generator().manual_seed(0)).frames
    morph = pipe(interpolate=(0, 1, 8)).frames  # 8 videos on the latent path from seed 0 to seed 1

Each video comes from one latent z0 ~ U(-1, 1): the temporal generator makes its per-frame latents,
the image generator renders the frames. `num_frames` other than the trained length samples the
per-frame latents at fractional times (frame interpolation); `interpolate` walks z0 linearly from
one seed's latent to another's, and its end points are exactly those seeds' videos.
The generators run in the pipeline's dtype (`pipe.to(torch.float16)`, `from_pretrained(..., dtype=...)`):
z0 is drawn in float32 and cast to it where it enters them. `pipe.check_inputs(...)` raises every problem
with the arguments before anything is generated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput
from torch import nn

from ..core.hub import HueflowPipeline
from ..core.outputs import check_output_type
from .modeling import TGANImageGenerator, TGANTemporalGenerator, generate_videos, sample_slow_latents


@dataclass
class TGANPipelineOutput(BaseOutput):
    """`frames`: uint8 array (videos, frames, H, W, C) for "np"; a list (videos) of lists (frames) of PIL
    images for "pil"; a float tensor (videos, frames, C, H, W) in [0, 1] for "pt"."""

    frames: np.ndarray | list[list[PIL.Image.Image]] | torch.Tensor


@contextlib.contextmanager
def evaluation_mode(*modules: nn.Module) -> Iterator[None]:
    """Batch norm uses its running statistics (so a video does not depend on the others in its batch)
    and leaves them untouched; each module's previous mode is restored afterwards."""
    modes = [module.training for module in modules]
    try:
        for module in modules:
            module.eval()
        yield
    finally:
        for module, mode in zip(modules, modes, strict=True):
            module.train(mode)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


class TGANPipeline(HueflowPipeline):
    """Short videos from seeds with a temporal GAN (see the module docstring)."""

    # The generators may run in half precision: z0 is cast to their dtype where it enters them.
    supported_dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

    def __init__(
        self, temporal_generator: TGANTemporalGenerator, image_generator: TGANImageGenerator
    ) -> None:
        super().__init__()
        if (temporal_generator.config.z_slow_dim, temporal_generator.config.z_fast_dim) != (
            image_generator.config.z_slow_dim,
            image_generator.config.z_fast_dim,
        ):
            raise ValueError(
                "The temporal and image generators disagree on the latent sizes (z_slow_dim, z_fast_dim)."
            )
        self.register_modules(temporal_generator=temporal_generator, image_generator=image_generator)

    def seed_latents(self, seeds: list[int]) -> torch.Tensor:
        """z0 (len(seeds), z_slow_dim), one row per seed: what `generator=torch.Generator().manual_seed(seed)`
        draws for a single video."""
        return torch.cat(
            [
                sample_slow_latents(
                    1, self.temporal_generator.config.z_slow_dim, torch.Generator().manual_seed(s)
                )
                for s in seeds
            ]
        )

    def check_inputs(
        self,
        num_videos: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_frames: int | None = None,
        output_type: str = "np",
        interpolate: tuple[int, int, int] | None = None,
        latents: torch.Tensor | None = None,
        batch_size: int = 16,
    ) -> None:
        """Raise a ValueError that says what to change for any argument of `__call__` this pipeline
        cannot take: `output_type` not one of "pil" / "np" / "pt" ("pil" also needs 1 or 3 channels),
        `num_videos`, `batch_size` or `num_frames` not a positive integer, `interpolate` not
        (seed_a, seed_b, steps) with non-negative integer seeds and at least 2 steps (and num_videos
        left at 1), both `interpolate` and `latents`, `latents` not of shape (num_videos, z_slow_dim), a
        list of generators that does not hold one per video (when z0 is drawn). Cheap: nothing is
        generated."""
        check_output_type(output_type)
        channels = self.image_generator.config.out_channels
        if output_type == "pil" and channels not in (1, 3):
            raise ValueError(f"PIL output needs 1 or 3 channels; this model makes {channels}.")
        _positive_int(num_videos, "num_videos")
        _positive_int(batch_size, "batch_size")
        if interpolate is not None:
            if latents is not None:
                raise ValueError("Give either interpolate or latents, not both.")
            if num_videos != 1:
                raise ValueError(
                    "interpolate=(seed_a, seed_b, steps) makes `steps` videos: leave num_videos at 1."
                )
            if not isinstance(interpolate, (tuple, list)) or len(interpolate) != 3:
                raise ValueError(f"interpolate must be (seed_a, seed_b, steps), got {interpolate!r}.")
            seed_a, seed_b, steps = interpolate
            for seed, name in ((seed_a, "seed_a"), (seed_b, "seed_b")):
                if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                    raise ValueError(f"interpolate's {name} must be a non-negative integer, got {seed!r}.")
            if _positive_int(steps, "interpolate's steps") < 2:
                raise ValueError(f"interpolate's steps must be at least 2 (the two end points), got {steps}.")
        elif latents is not None:
            z_dim = self.temporal_generator.config.z_slow_dim
            if tuple(np.shape(latents)) != (num_videos, z_dim):
                raise ValueError(
                    f"latents must have shape ({num_videos}, {z_dim}), got {tuple(np.shape(latents))}."
                )
        elif isinstance(generator, list) and len(generator) != num_videos:
            raise ValueError(f"Got {len(generator)} generators for {num_videos} videos; pass one per video.")
        if num_frames is not None:
            _positive_int(num_frames, "num_frames")

    @torch.no_grad()
    def __call__(
        self,
        num_videos: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_frames: int | None = None,
        output_type: str = "np",
        interpolate: tuple[int, int, int] | None = None,
        latents: torch.Tensor | None = None,
        batch_size: int = 16,
        return_dict: bool = True,
    ):
        """Generate short videos.

        Args:
            num_videos: how many videos (each from its own z0).
            generator: a `torch.Generator` (or one per video) that draws z0: the same seed, the same videos.
            num_frames: frames per video; default the trained length. Other lengths sample the temporal
                latent at `num_frames` evenly spaced fractional times over the same span (frame
                interpolation).
            output_type: "np" (uint8 (videos, frames, H, W, C)), "pil" (lists of images) or "pt"
                (float (videos, frames, C, H, W) in [0, 1]).
            interpolate: (seed_a, seed_b, steps): `steps` videos with z0 moving linearly from seed_a's to
                seed_b's (num_videos is then left at 1; a generator given warns that it has no effect).
            latents: z0 (num_videos, z_slow_dim) to use instead of drawing it (a generator given warns
                that it has no effect).
            batch_size: videos rendered at once (memory).
            return_dict: False gives the tuple (frames,).
        """
        # 1. Check the arguments.
        self.check_inputs(num_videos, generator, num_frames, output_type, interpolate, latents, batch_size)
        dtype = self.models_dtype()  # one dtype for both generators, and one they can run in
        if interpolate is not None or latents is not None:
            given = "interpolate's seeds" if interpolate is not None else "latents"
            self.warn_unused_generator(generator, f"z0 comes from {given}, nothing is drawn")
        num_videos, batch_size = int(num_videos), int(batch_size)

        # 2. z0 of every video: on the path between two seeds' latents, given, or drawn.
        z_dim = self.temporal_generator.config.z_slow_dim
        if interpolate is not None:
            seed_a, seed_b, steps = (int(value) for value in interpolate)
            end_points = self.seed_latents([seed_a, seed_b])
            weights = torch.linspace(0, 1, steps)[:, None]
            z_slow = torch.lerp(end_points[:1], end_points[1:], weights)  # (steps, z_dim)
        elif latents is not None:
            z_slow = torch.as_tensor(latents, dtype=torch.float32)
        else:
            z_slow = sample_slow_latents(num_videos, z_dim, generator)
        trained_frames = self.temporal_generator.config.frames
        num_frames = trained_frames if num_frames is None else int(num_frames)
        # Other lengths sample the per-frame latents at evenly spaced fractional times over the same span.
        times = None if num_frames == trained_frames else torch.linspace(0, trained_frames - 1, num_frames)

        # 3. Render the videos, batch by batch.
        device = self.device
        chunks = []
        with evaluation_mode(self.temporal_generator, self.image_generator):
            batches = z_slow.split(batch_size)
            with self.progress_bar(total=len(batches)) as progress:
                for batch in batches:
                    videos = generate_videos(
                        self.temporal_generator,
                        self.image_generator,
                        batch.to(device=device, dtype=dtype),
                        None if times is None else times.to(device),
                    )  # (b, T, C, H, W) in [-1, 1]
                    chunks.append(((videos.float() + 1) / 2).clamp(0, 1).cpu())
                    progress.update()

        # 4. The frames in the output type.
        videos = torch.cat(chunks)  # (V, T, C, H, W) in [0, 1]
        if output_type == "pt":
            frames = videos
        else:
            frames = (videos * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()  # (V, T, H, W, C)
            if output_type == "pil":
                squeeze = frames.shape[-1] == 1  # grey frames become mode "L" images
                frames = [
                    [PIL.Image.fromarray(f[..., 0] if squeeze else f) for f in video] for video in frames
                ]
        if not return_dict:
            return (frames,)
        return TGANPipelineOutput(frames=frames)
