"""Per-video fine-tuning of the Hero stage's restorer on proxy pairs (Zero-to-Hero's training signal).

A proxy is made from one image and an edit of it: the image and its edited version are moved along
the same random camera path (or a pan that brings new content into view), so frame 0 is the anchor
(original and edited) and the later frames are targets whose true edited version is known. The Zero
stage runs from the anchor onto the targets exactly as the pipeline does (`zero_stage_batch`), and the
restorer learns to map that result to the truth (`restoration_loss`).

`finetune_restorer` does this on the user's own anchor and edit, a few dozen steps before a video is
processed (`ZeroToHeroPipeline(finetune_steps=...)`); pre-training (`train.py`) runs the same batch and
loss on random edits of many offline photos (`data.ProxyPairs`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.colour import apply_colour_lookup, frame_to_tensor
from ..core.resize import resize
from ..data import random_camera_path
from .modeling import (
    AppearanceFeatureEncoder,
    FrameState,
    HeroRestorer,
    ZeroStageConfig,
    anchor_state,
    encode_anchor,
    zero_stage_step,
)

# -- proxy clips ------------------------------------------------------------------------------------


def _per_frame(image: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(3, H, W), the same still for every frame, or (T, 3, H, W), one per frame -> (T, 3, H, W)."""
    return image.expand(num_frames, -1, -1, -1) if image.dim() == 3 else image


def proxy_clip(
    original: torch.Tensor, edited: torch.Tensor, num_frames: int, size: int, strength: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """original, edited (3, H, W), or (T, 3, H, W) for what each frame shows before the camera moves
    (`data.photometric_jitter`) -> the two moved along one random camera path, each (T, 3, size, size);
    frame 0 is the anchor."""
    stills = torch.cat([_per_frame(original, num_frames), _per_frame(edited, num_frames)], dim=1)
    clip = random_camera_path(stills.flatten(0, 1), num_frames, size, strength)  # (T, T * 6, S, S)
    # Frame t of the path, cut from frame t's pair of stills.
    clip = torch.stack([clip[t].unflatten(0, (num_frames, 6))[t] for t in range(num_frames)])
    return clip[:, :3].clamp(0, 1), clip[:, 3:].clamp(0, 1)


def panning_clip(
    original: torch.Tensor, edited: torch.Tensor, num_frames: int, size: int, rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor]:
    """original, edited (3, H, W), or (T, 3, H, W) one per frame (as in `proxy_clip`) -> a straight pan
    over the two, each (T, 3, size, size); frame 0 is the anchor. The window (45-80 % of the short
    side) travels 15-40 % of its side by the last frame, so the later frames show a band of content
    the anchor does not: what the Hero stage learns to fill."""
    height, width = original.shape[-2:]
    side = rng.uniform(0.45, 0.8) * min(height, width)
    low = torch.tensor([side / 2, side / 2])
    high = torch.tensor([width - side / 2, height - side / 2])
    start = low + torch.rand(2) * (high - low)
    direction = rng.uniform(0, 2 * math.pi)
    shift = rng.uniform(0.15, 0.4) * side * torch.tensor([math.cos(direction), math.sin(direction)])
    end = torch.minimum(torch.maximum(start + shift, low), high)
    progress = torch.linspace(0, 1, num_frames)[:, None]
    centres = start + (end - start) * progress  # (T, 2) pixel (x, y)
    # affine_grid maps output coordinates in [-1, 1] to input ones: scale to the window, move to its centre.
    theta = torch.zeros(num_frames, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = side / width, side / height
    theta[:, 0, 2] = centres[:, 0] / width * 2 - 1
    theta[:, 1, 2] = centres[:, 1] / height * 2 - 1
    grid = F.affine_grid(theta, [num_frames, 6, size, size], align_corners=False)
    image = torch.cat([_per_frame(original, num_frames), _per_frame(edited, num_frames)], dim=1)
    clip = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return clip[:, :3].clamp(0, 1), clip[:, 3:].clamp(0, 1)


def random_proxy_clip(
    original: torch.Tensor, edited: torch.Tensor, num_frames: int, size: int, rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the time a free camera path (`proxy_clip`: zoom, turn, drift), half a pan that brings new
    content into view (`panning_clip`)."""
    if rng.random() < 0.5:
        return proxy_clip(original, edited, num_frames, size)
    return panning_clip(original, edited, num_frames, size, rng)


# -- the Zero stage on proxy clips, and the restorer's loss ---------------------------------------


class ZeroStageBatch(NamedTuple):
    """The Zero stage's output on frames 1.. of proxy clips and what the restorer needs with it."""

    zero: torch.Tensor  # (N, 3, S, S) Zero-stage frames
    support: torch.Tensor  # (N, 1, S, S) `FrameState.support`: where the edit was read from the anchor
    targets: torch.Tensor  # (N, 3, S, S) input frames
    truths: torch.Tensor  # (N, 3, S, S) true edited frames
    looked_up: torch.Tensor  # (N, 3, S, S) input frames through the anchor's colour lookup
    lookup_error: torch.Tensor  # (N, 1, S, S) `FrameState.lookup_error`

    @property
    def restorer_inputs(self) -> tuple[torch.Tensor, ...]:
        """The arguments of `HeroRestorer.forward`, in order."""
        return self.zero, self.targets, self.support, self.looked_up, self.lookup_error


@torch.no_grad()
def zero_stage_batch(
    encoder: AppearanceFeatureEncoder,
    originals: torch.Tensor,
    editeds: torch.Tensor,
    config: ZeroStageConfig,
) -> ZeroStageBatch:
    """Run the Zero stage on proxy clips as the pipeline does: frame 0 is the anchor, frames 1.. are
    processed in order, each also attending to the previous one.

    originals, editeds (B, T, 3, S, S), S a multiple of 16 -> the batch of frames 1.., N = B * (T - 1)."""
    zero, support, targets, truths, looked_up, lookup_error = [], [], [], [], [], []
    for original, edited in zip(originals, editeds, strict=True):
        anchor = encode_anchor(encoder, original[:1], edited[:1], config)
        previous: FrameState = anchor_state(anchor)
        for index in range(1, original.shape[0]):
            target = original[index : index + 1]
            output, previous = zero_stage_step(encoder, target, anchor, previous, config)
            zero.append(output)
            support.append(previous.support)
            targets.append(target)
            truths.append(edited[index : index + 1])
            looked_up.append(apply_colour_lookup(anchor.lookup, target))
            lookup_error.append(previous.lookup_error)
    parts = (zero, support, targets, truths, looked_up, lookup_error)
    return ZeroStageBatch(*(torch.cat(part) for part in parts))


def restoration_loss(restored: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """L1 on RGB plus L1 on the image gradients (the Zero stage's blur is what the restorer removes)."""

    def gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return image[..., 1:, :] - image[..., :-1, :], image[..., :, 1:] - image[..., :, :-1]

    loss = F.l1_loss(restored, truth)
    for mine, theirs in zip(gradients(restored), gradients(truth), strict=True):
        loss = loss + 0.5 * F.l1_loss(mine, theirs)
    return loss


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """torch's CPU threads set to `count` (None: left alone) inside the block, restored after. Process-wide:
    other threads' torch work uses the same count meanwhile (only its speed changes)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def random_crop(images: tuple[torch.Tensor, ...], side: int, rng: random.Random) -> tuple[torch.Tensor, ...]:
    """The same random `side` x `side` window of each image (C, H, W), all of one size (H, W >= side)."""
    height, width = images[0].shape[-2:]
    top, left = rng.randrange(height - side + 1), rng.randrange(width - side + 1)
    return tuple(image[..., top : top + side, left : left + side] for image in images)


def finetune_restorer(
    feature_encoder: AppearanceFeatureEncoder,
    restorer: HeroRestorer,
    anchor: np.ndarray,
    edited: np.ndarray,
    config: ZeroStageConfig,
    steps: int,
    size: int = 128,
    lr: float = 1e-4,
    batch_size: int = 2,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress_bar: Callable[..., Any] | None = None,
    num_threads: int | None = 1,
    callback: Callable[[int, float], None] | None = None,
) -> HeroRestorer:
    """A copy of `restorer` fine-tuned for `steps` Adam steps (learning rate `lr`) on proxy pairs of this
    anchor and its edit: random camera paths or pans over the two (`random_proxy_clip`, 3 frames,
    `size` pixels square, rounded down to a multiple of 16, at least 32), the Zero stage from the
    edited anchor onto the moved original (`zero_stage_batch`, with `feature_encoder` and `config`); the
    target is the same move of the edited anchor. `restorer` itself is left unchanged.

    The cost does not depend on the video's resolution: the anchor is brought to a short side of at most
    2 * `size` once, and each proxy pair is cut from a fixed-size square crop of it (`random_crop`, side
    at most 2 * `size`), so a step costs the same for a 4K frame as for a 256 px one.

    anchor, edited: RGB uint8 (H, W, 3) of the same size. `seed` seeds the proxy pairs' draws (Python's
    `random` and torch's CPU generator, both restored afterwards, so the caller's random streams do not
    move). `device`: where to train (default: the restorer's). `progress_bar`: a tqdm-like factory called
    as `progress_bar(total=steps)`; default: none shown. `num_threads`: torch's CPU threads meanwhile
    (`intra_op_threads`; None leaves them): 1 by default, since the steps' tensors are small, and on a
    busy 2-core machine two threads made each step about 10x slower (7.5 s instead of 0.75 s) as they
    waited for each other. `callback`: called as `callback(step, loss)` after each step (`step` 0-based,
    `loss` that step's loss as a float), e.g. to show "fine-tuning step k/N" in an app."""
    device = next(restorer.parameters()).device if device is None else device
    progress_bar = progress_bar or functools.partial(tqdm, disable=True)
    size = max(32, size // 16 * 16)
    restorer = copy.deepcopy(restorer).train()
    optimizer = torch.optim.Adam(restorer.parameters(), lr=lr)
    original = frame_to_tensor(anchor, device)[0]
    edited_tensor = frame_to_tensor(edited, device)[0]
    # The camera window spans 45-90 % of the short side: bring that near the crop size.
    short = min(original.shape[-2:])
    if short > 2 * size:
        shape = tuple(round(side * 2 * size / short) for side in original.shape[-2:])
        original, edited_tensor = (resize(t[None], shape)[0] for t in (original, edited_tensor))
    # Each proxy pair comes from a square crop of this side (at most 2 * size): a fixed cost per step,
    # whatever the frame's resolution or aspect ratio.
    crop = min(original.shape[-2:])
    original, edited_tensor = original.cpu(), edited_tensor.cpu()
    python_state = random.getstate()
    random.seed(seed)
    with (
        intra_op_threads(num_threads),
        torch.random.fork_rng(devices=[]),
        progress_bar(total=steps) as progress,
    ):
        torch.manual_seed(seed)
        for step in range(steps):
            # The crops and camera paths draw from Python's global `random` and torch's global generator,
            # both seeded above: the same seed gives the same proxy pairs, and so the same restorer.
            clips = [
                random_proxy_clip(*random_crop((original, edited_tensor), crop, random), 3, size, random)
                for _ in range(batch_size)
            ]
            originals = torch.stack([clip[0] for clip in clips]).to(device)
            editeds = torch.stack([clip[1] for clip in clips]).to(device)
            batch = zero_stage_batch(feature_encoder, originals, editeds, config)
            with torch.enable_grad():  # the pipeline's __call__ runs under no_grad
                loss = restoration_loss(restorer(*batch.restorer_inputs), batch.truths)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            loss_value = loss.item()
            progress.set_postfix(loss=f"{loss_value:.4f}")
            progress.update()
            if callback is not None:
                callback(step, loss_value)
    random.setstate(python_state)
    return restorer.eval()
