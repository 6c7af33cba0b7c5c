"""`PseudoVideoPipeline`: images generated as the last frame of a pseudo video (Chen et al. 2024).

    pipe = PseudoVideoPipeline.from_pretrained("checkpoints/pseudo-video-digits")
    out = pipe(num_images=16, generator=torch.Generator().manual_seed(0), return_pseudo_video=True)
    out.images          # (16, H, W, C) float in [0, 1]
    out.pseudo_videos   # (16, T, H, W, C): frame 0 is noise (or fully degraded), frame T-1 is the image

The pipeline holds the generator network and the scheduler that says how frames follow each other
(see `modeling.py`). All randomness (first frames, latents, posterior noise, mask orders) is drawn on
the CPU from `generator` for all images up front, so an image depends only on the seed and its
position, not on `batch_size` or the device. `pipe.check_inputs(...)` raises every problem with the
arguments before anything is generated (an app calls it to validate a form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

from ..core.hub import HueflowPipeline
from ..core.outputs import check_output_type
from .modeling import PseudoVideoGenerator, PseudoVideoScheduler, generate


@dataclass
class PseudoVideoPipelineOutput(BaseOutput):
    """`images`: float array (N, H, W, C) in [0, 1] for "np", PIL images for "pil", float tensor
    (N, C, H, W) in [0, 1] for "pt". `pseudo_videos` (when asked for): (N, T, H, W, C), lists of lists
    of PIL images, or (N, T, C, H, W); the last frame of each is its image."""

    images: np.ndarray | list[PIL.Image.Image] | torch.Tensor
    pseudo_videos: np.ndarray | list[list[PIL.Image.Image]] | torch.Tensor | None = None


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _to_output(batch: torch.Tensor, output_type: str):
    """(..., C, H, W) float in [0, 1] -> output_type; leading dims (N,) or (N, T)."""
    if output_type == "pt":
        return batch
    array = batch.movedim(-3, -1).numpy()  # (..., H, W, C)
    if output_type == "np":
        return array
    pixels = (array * 255).round().astype(np.uint8)
    squeeze = pixels.shape[-1] == 1

    def image(pixel_array: np.ndarray) -> PIL.Image.Image:
        return PIL.Image.fromarray(pixel_array[..., 0] if squeeze else pixel_array)

    if pixels.ndim == 4:
        return [image(p) for p in pixels]
    return [[image(p) for p in video] for video in pixels]


class PseudoVideoPipeline(HueflowPipeline):
    """Images as the last frame of a pseudo video (see the module docstring)."""

    def __init__(self, model: PseudoVideoGenerator, scheduler: PseudoVideoScheduler) -> None:
        super().__init__()
        self.register_modules(model=model, scheduler=scheduler)

    def check_inputs(
        self,
        num_images: int = 1,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        output_type: str = "np",
        batch_size: int = 256,
    ) -> None:
        """Raise a ValueError that says what to change for any argument of `__call__` this pipeline
        cannot take: `output_type` not one of "pil" / "np" / "pt" ("pil" also needs a model with 1 or 3
        channels), `num_images` or `batch_size` not a positive integer, `generator` not a CPU
        `torch.Generator`, `num_frames` not an integer of at least 2 (frame 0 and the image), or other
        than 2 for the image-only model. Cheap: nothing is generated."""
        check_output_type(output_type)
        _positive_int(num_images, "num_images")
        _positive_int(batch_size, "batch_size")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}.")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError("generator must be a CPU torch.Generator (randomness is drawn on the CPU).")
        if num_frames is not None:
            _positive_int(num_frames, "num_frames")
        self.scheduler.levels(num_frames)  # the scheduler's own rule: at least 2; exactly 2 image-only
        channels = self.model.config.in_channels
        if output_type == "pil" and channels not in (1, 3):
            raise ValueError(f"PIL output needs 1 or 3 channels; this model makes {channels}.")

    @torch.no_grad()
    def __call__(
        self,
        num_images: int = 1,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        return_pseudo_video: bool = False,
        output_type: str = "np",
        batch_size: int = 256,
        return_dict: bool = True,
    ):
        """Generate images.

        Args:
            num_images: how many images.
            generator: a CPU `torch.Generator`; the same seed gives the same images.
            num_frames: frames of the pseudo video walked to each image, including the first (noise or
                fully degraded) and the last (the image); default the trained count. The image-only
                model is the two-frame video, so it takes only 2.
            return_pseudo_video: also return every image's pseudo video as `pseudo_videos`.
            output_type: "np", "pil" or "pt" (see `PseudoVideoPipelineOutput`).
            batch_size: images generated at once (memory).
            return_dict: False gives the tuple (images,) or (images, pseudo_videos).
        """
        # 1. Check the arguments.
        self.check_inputs(num_images, generator, num_frames, output_type, batch_size)
        num_images, batch_size = int(num_images), int(batch_size)
        levels = self.scheduler.levels(num_frames)
        steps = len(levels) - 1
        config = self.model.config
        channels, size = config.in_channels, config.image_size

        # 2. Draw all randomness up front, on the CPU: an image depends on the seed and its position only.
        shape = (num_images, channels, size, size)
        first = self.scheduler.first_frame(shape, generator)
        latents = torch.randn(steps, num_images, config.latent_dim, generator=generator)
        noises = torch.randn(steps, *shape, generator=generator) if self.scheduler.gaussian else None
        orders = None
        if self.scheduler.config.kind in ("mask", "mixture"):
            orders = torch.rand(num_images, 1, size, size, generator=generator)

        # 3. Walk the pseudo videos, batch by batch.
        device, dtype = self.device, self.model.dtype
        was_training = self.model.training
        self.model.eval()
        videos = []
        try:
            with self.progress_bar(total=-(-num_images // batch_size)) as progress:
                for start in range(0, num_images, batch_size):
                    part = slice(start, start + batch_size)

                    def put(tensor: torch.Tensor | None) -> torch.Tensor | None:
                        return None if tensor is None else tensor.to(device=device, dtype=dtype)

                    video = generate(
                        self.model,
                        self.scheduler,
                        put(first[part]),
                        put(latents[:, part]),
                        None if noises is None else put(noises[:, part]),
                        put(None if orders is None else orders[part]),
                        len(levels),
                    )  # (b, T, C, H, W) in about [-1, 1]
                    videos.append(((video.float().clamp(-1, 1) + 1) / 2).cpu())
                    progress.update()
        finally:
            self.model.train(was_training)

        # 4. The images (last frames) and, when asked for, their pseudo videos in the output type.
        video = torch.cat(videos)  # (N, T, C, H, W) in [0, 1]
        images = _to_output(video[:, -1].contiguous(), output_type)
        pseudo = _to_output(video, output_type) if return_pseudo_video else None
        if not return_dict:
            return (images, pseudo) if return_pseudo_video else (images,)
        return PseudoVideoPipelineOutput(images=images, pseudo_videos=pseudo)
