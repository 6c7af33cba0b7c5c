"""`PseudoVideoPipeline`: images generated as the last frame of a pseudo video (Chen et al. 2024).

    pipe = PseudoVideoPipeline.from_pretrained("checkpoints/pseudo-video-digits")
    out = pipe(batch_size=16, generator=torch.Generator().manual_seed(0), return_pseudo_video=True)
    out.images          # 16 PIL images (output_type="np": (16, H, W, C) float in [0, 1])
    out.pseudo_videos   # 16 lists of frames: frame 0 is noise (or fully degraded), the last is the image

As in Diffusers' unconditional pipelines (`DDPMPipeline`), `batch_size` is how many images you get (and
`num_images_per_prompt` multiplies it; there is no prompt, so the two are one count), the default
output is PIL images, and `chunk_size` is how many are generated at once (memory). The pipeline holds the
generator network and the scheduler that says how frames follow each other (see `modeling.py`). All
randomness (first frames, latents, posterior noise, mask orders) is drawn on the CPU from `generator` for
all images up front, so an image depends only on the seed and its position, not on `chunk_size`, the
device or the dtype's rounding aside. The network runs in the pipeline's dtype (`pipe.to(torch.float16)`,
`from_pretrained(..., dtype=torch.bfloat16)`): its inputs are cast to it where they enter it, and the
walk between frames stays in float32. `pipe.check_inputs(...)` raises every problem with the arguments
before anything is generated (an app calls it to validate a form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def _image_count(batch_size: int, num_images_per_prompt: int, num_images: int | None) -> int:
    """How many images a call makes: `batch_size` x `num_images_per_prompt`, or `num_images` (hueflow's
    older name for the same count), each checked."""
    batch_size = _positive_int(batch_size, "batch_size")
    per_prompt = _positive_int(num_images_per_prompt, "num_images_per_prompt")
    if num_images is None:
        return batch_size * per_prompt
    num_images = _positive_int(num_images, "num_images")
    if (batch_size, per_prompt) != (1, 1):
        raise ValueError(
            f"num_images={num_images} and batch_size={batch_size}, num_images_per_prompt={per_prompt} each "
            "say how many images to make (batch_size x num_images_per_prompt, as in Diffusers): give only "
            "batch_size. For how many are generated at once (memory), use chunk_size."
        )
    return num_images


class _InModelDtype:
    """The network called with its inputs cast to its dtype and its output cast back to float32: a half
    precision model runs in its own dtype while the frame-to-frame walk (the scheduler) stays float32.
    In half precision it runs under autocast too, since the network computes its level embedding in
    float32 (precise sinusoids) and feeds it to a half-precision layer."""

    def __init__(self, model: PseudoVideoGenerator) -> None:
        self.model, self.dtype = model, model.dtype

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        inputs = tuple(tensor.to(self.dtype) for tensor in inputs)
        half = self.dtype in (torch.float16, torch.bfloat16)
        with torch.autocast(inputs[0].device.type, dtype=self.dtype, enabled=half):
            return self.model(*inputs).float()

    def __getattr__(self, name: str) -> Any:  # config etc. of the wrapped model
        return getattr(self.model, name)


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

    # The network may run in half precision: its inputs are cast to its dtype (`_InModelDtype`).
    supported_dtypes = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

    def __init__(self, model: PseudoVideoGenerator, scheduler: PseudoVideoScheduler) -> None:
        super().__init__()
        self.register_modules(model=model, scheduler=scheduler)

    def check_inputs(
        self,
        batch_size: int = 1,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        output_type: str = "pil",
        chunk_size: int = 256,
        num_images_per_prompt: int = 1,
        num_images: int | None = None,
    ) -> None:
        """Raise a ValueError that says what to change for any argument of `__call__` this pipeline
        cannot take: `output_type` not one of "pil" / "np" / "pt" ("pil" also needs a model with 1 or 3
        channels), `batch_size`, `num_images_per_prompt`, `num_images` or `chunk_size` not a positive
        integer, `num_images` together with another count, `generator` not a CPU `torch.Generator`,
        `num_frames` not an integer of at least 2 (frame 0 and the image), or other than 2 for the
        image-only model. Cheap: nothing is generated."""
        check_output_type(output_type)
        _image_count(batch_size, num_images_per_prompt, num_images)
        _positive_int(chunk_size, "chunk_size")
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
        batch_size: int = 1,
        generator: torch.Generator | None = None,
        num_frames: int | None = None,
        return_pseudo_video: bool = False,
        output_type: str = "pil",
        return_dict: bool = True,
        num_images_per_prompt: int = 1,
        num_images: int | None = None,
        chunk_size: int = 256,
    ):
        """Generate images.

        Args:
            batch_size: how many images, as in Diffusers' unconditional pipelines (`DDPMPipeline`).
            generator: a CPU `torch.Generator`; the same seed gives the same images.
            num_frames: frames of the pseudo video walked to each image, including the first (noise or
                fully degraded) and the last (the image); default the trained count. The image-only
                model is the two-frame video, so it takes only 2.
            return_pseudo_video: also return every image's pseudo video as `pseudo_videos`.
            output_type: "pil" (default, as in Diffusers), "np" or "pt" (see `PseudoVideoPipelineOutput`).
            return_dict: False gives the tuple (images,) or (images, pseudo_videos).
            num_images_per_prompt: multiplies `batch_size` (Diffusers' name; there is no prompt here).
            num_images: the number of images, hueflow's older name for `batch_size`; give one of the two.
            chunk_size: images generated at once (memory only: the images do not depend on it).
        """
        # 1. Check the arguments.
        self.check_inputs(
            batch_size, generator, num_frames, output_type, chunk_size, num_images_per_prompt, num_images
        )
        self.models_dtype()  # one dtype for the network, and one it can run in
        num_images = _image_count(batch_size, num_images_per_prompt, num_images)
        chunk_size = int(chunk_size)
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

        # 3. Walk the pseudo videos, chunk by chunk: the walk in float32, the network in its own dtype.
        device = self.device
        was_training = self.model.training
        self.model.eval()
        videos = []
        try:
            with self.progress_bar(total=-(-num_images // chunk_size)) as progress:
                for start in range(0, num_images, chunk_size):
                    part = slice(start, start + chunk_size)

                    def put(tensor: torch.Tensor | None) -> torch.Tensor | None:
                        return None if tensor is None else tensor.to(device=device, dtype=torch.float32)

                    video = generate(
                        _InModelDtype(self.model),
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
