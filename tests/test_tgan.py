"""TGAN: the networks, singular value and weight clipping, bouncing-digit data, a training step and the
CLI, and `TGANPipeline` (tiny configs throughout; a few seconds on one CPU thread)."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate import Accelerator
from torch import nn

from pipelines import TGANPipeline
from pipelines.core.video import write_video
from pipelines.tgan import (
    ClipFolder,
    IdentitySwappedDigits,
    MovingDigits,
    TGANCritic,
    TGANImageGenerator,
    TGANTemporalGenerator,
    generate_videos,
    layer_spectral_norms,
    singular_value_clip_,
    weight_clip_,
)
from pipelines.tgan.clipping import clip_singular_values
from pipelines.tgan.evaluate import (
    class_consistency,
    confident_consistency,
    inception_score,
    shuffled_consistency,
)
from pipelines.tgan.evaluate import main as evaluate_main
from pipelines.tgan.modeling import translate
from pipelines.tgan.train import (
    TGANModels,
    TrainingConfig,
    critic_update,
    fake_videos,
    main,
    make_optimizer,
    parse_args,
    train_step,
)

FRAMES, SIZE, Z = 4, 16, 8
TINY_CLI = [
    "--frames", str(FRAMES), "--image-size", str(SIZE), "--z-slow-dim", str(Z), "--z-fast-dim", str(Z),
    "--temporal-channels", "8", "8", "--generator-channels", "16", "--critic-channels", "4",
    "--batch-size", "2", "--threads", "1",
]  # fmt: skip


def tiny_models(seed: int = 0) -> TGANModels:
    """Untrained tiny networks; the generators' weights are large enough (init_scale) that their frames
    vary with the latents, instead of sitting at mid-grey as the paper's small initialisation makes them."""
    torch.manual_seed(seed)
    return TGANModels(
        TGANTemporalGenerator(frames=FRAMES, z_slow_dim=Z, z_fast_dim=Z, channels=(8, 8), init_scale=0.5),
        TGANImageGenerator(z_slow_dim=Z, z_fast_dim=Z, image_size=SIZE, base_channels=16, init_scale=0.5),
        TGANCritic(frames=FRAMES, image_size=SIZE, base_channels=4),
    )


def tiny_pipeline(seed: int = 0) -> TGANPipeline:
    models = tiny_models(seed)
    pipe = TGANPipeline(models.temporal_generator, models.image_generator)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def largest_singular_values(module: nn.Module) -> list[float]:
    """Computed here from the weights directly (conv kernels as (out, in * k...) matrices), not with the
    helper under test."""
    values = []
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            matrix = layer.weight.detach().reshape(layer.weight.shape[0], -1)
            values.append(torch.linalg.svdvals(matrix.double()).max().item())
    return values


# --- clipping -----------------------------------------------------------------------------------


def test_singular_value_clip_bounds_every_critic_weight_and_batch_norm_scale():
    critic = tiny_models().critic
    with torch.no_grad():
        for parameter in critic.parameters():
            parameter.normal_(0, 1.0)  # far outside the bound
        for layer in critic.modules():
            if isinstance(layer, nn.BatchNorm3d):
                layer.running_var.uniform_(0.1, 4.0)
    assert max(largest_singular_values(critic)) > 2
    assert singular_value_clip_(critic) > 0
    assert max(largest_singular_values(critic)) <= 1 + 1e-4
    for layer in critic.modules():
        if isinstance(layer, nn.BatchNorm3d):
            assert (layer.weight.abs() <= torch.sqrt(layer.running_var + layer.eps) + 1e-6).all()
    assert max(layer_spectral_norms(critic).values()) <= 1 + 1e-4
    assert singular_value_clip_(critic) == 0  # a second pass finds nothing left to clip


def test_clip_singular_values_clamps_only_the_large_ones():
    u, _ = torch.linalg.qr(torch.randn(5, 3, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    matrix = u @ torch.diag(torch.tensor([3.0, 0.5, 0.2], dtype=torch.float64)) @ v.T
    clipped = clip_singular_values(matrix)
    assert torch.allclose(torch.linalg.svdvals(clipped), torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64))
    # The singular vectors are kept: the clipped matrix is the original with its top direction shrunk.
    assert torch.allclose(clipped, matrix - 2.0 * torch.outer(u[:, 0], v[:, 0]))
    assert clip_singular_values(clipped) is None  # within the bound: nothing to do


def test_singular_value_clip_leaves_layers_within_the_bound_and_handles_transposed_convs():
    small = nn.Conv3d(2, 3, 3)
    with torch.no_grad():
        small.weight.mul_(0.01)
    before = small.weight.clone()
    transposed = nn.ConvTranspose2d(3, 5, 4)
    with torch.no_grad():
        transposed.weight.normal_(0, 1.0)
    singular_value_clip_(nn.Sequential(small, transposed))
    assert torch.equal(small.weight, before)
    # A transposed conv maps in -> out: its matrix is (out, in * k * k).
    matrix = transposed.weight.detach().transpose(0, 1).reshape(5, -1)
    assert torch.linalg.svdvals(matrix).max() <= 1 + 1e-4


def test_batch_norm_clamp_keeps_the_sign_of_gamma():
    norm = nn.BatchNorm1d(3)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([-5.0, 0.5, 5.0]))
        norm.running_var.fill_(4.0)
    singular_value_clip_(norm)
    bound = float(torch.sqrt(torch.tensor(4.0 + norm.eps)))
    assert torch.allclose(norm.weight, torch.tensor([-bound, 0.5, bound]))


def test_weight_clip_bounds_every_parameter():
    critic = tiny_models().critic
    with torch.no_grad():
        for parameter in critic.parameters():
            parameter.normal_(0, 1.0)
    weight_clip_(critic, 0.01)
    for parameter in critic.parameters():
        assert parameter.abs().max() <= 0.01
    with pytest.raises(ValueError):
        weight_clip_(critic, 0.0)


# --- networks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("frames, channels", [(4, (8, 8)), (16, (8, 8, 8, 8)), (12, (8, 8))])
def test_temporal_generator_emits_exactly_the_configured_number_of_latents(frames, channels):
    generator = TGANTemporalGenerator(frames=frames, z_slow_dim=Z, z_fast_dim=6, channels=channels)
    latents = generator(torch.rand(3, Z) * 2 - 1)
    assert latents.shape == (3, frames, 6)
    assert latents.abs().max() <= 1


def test_temporal_generator_rejects_a_length_it_cannot_make():
    with pytest.raises(ValueError, match="multiple of"):
        TGANTemporalGenerator(frames=6, channels=(8, 8))


def test_latents_at_fractional_times_interpolate_between_frames():
    generator = tiny_models().temporal_generator.eval()
    z_slow = torch.rand(2, Z) * 2 - 1
    latents = generator(z_slow)
    assert torch.allclose(generator.latents_at(z_slow, torch.arange(FRAMES).float()), latents)
    halfway = generator.latents_at(z_slow, torch.tensor([0.5, 2.25]))
    assert torch.allclose(halfway[:, 0], (latents[:, 0] + latents[:, 1]) / 2, atol=1e-6)
    assert torch.allclose(halfway[:, 1], 0.75 * latents[:, 2] + 0.25 * latents[:, 3], atol=1e-6)
    with pytest.raises(ValueError, match="times must lie"):
        generator.latents_at(z_slow, torch.tensor([FRAMES - 0.5]))


def test_image_generator_and_critic_shapes():
    models = tiny_models()
    videos = generate_videos(models.temporal_generator, models.image_generator, torch.rand(3, Z) * 2 - 1)
    assert videos.shape == (3, FRAMES, 1, SIZE, SIZE)
    assert videos.abs().max() <= 1
    assert models.critic(videos.transpose(1, 2)).shape == (3,)
    # Lengths that are not powers of two reduce to one score per clip too.
    critic = TGANCritic(frames=6, image_size=32, base_channels=4)
    assert critic(torch.zeros(2, 1, 6, 32, 32)).shape == (2,)
    with pytest.raises(ValueError, match="image_size"):
        TGANImageGenerator(image_size=48)


# --- data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("slow_every_layer", [False, True])
def test_slow_every_layer_lets_z0_reach_the_upsampling_layers(slow_every_layer):
    """With the first layer's z0 path cut (its weights zero), frames depend on z0 only through the
    per-layer modulation: they do with `slow_every_layer`, not without; a model without it has no
    modulation weights (saved checkpoints keep their state dict)."""
    torch.manual_seed(0)
    generator = TGANImageGenerator(
        z_slow_dim=Z, z_fast_dim=Z, image_size=SIZE, base_channels=16, init_scale=0.5,
        slow_every_layer=slow_every_layer,
    ).eval()  # fmt: skip
    nn.init.zeros_(generator.slow[0].weight)
    z_fast = torch.rand(1, Z).expand(2, Z)
    frames = generator(torch.rand(2, Z) * 2 - 1, z_fast)
    assert frames.shape == (2, 1, SIZE, SIZE)
    assert (not torch.allclose(frames[0], frames[1], atol=1e-6)) == slow_every_layer
    assert (len(generator.slow_modulation) == 2) == slow_every_layer  # 16 px from 4: two upsamplings
    assert not any("slow_modulation" in key for key in TGANImageGenerator().state_dict())


def test_translate_moves_a_frame_by_whole_pixels_and_fills_black():
    frame = torch.full((1, 1, 8, 8), -1.0)
    frame[0, 0, 2, 3] = 1.0  # one bright pixel at (x=3, y=2)
    # 0.5 of the half-width (4 px) is 2 px; 0.25 of the half-height is 1 px.
    moved = translate(frame, torch.tensor([[0.5, 0.25]]))
    assert moved.shape == frame.shape
    assert moved[0, 0, 3, 5] == pytest.approx(1.0, abs=1e-5)
    assert torch.isclose(moved, torch.tensor(-1.0), atol=1e-5).sum() == 63  # the rest, shifted-in area too
    # Batched shape (B, T, C, H, W) with shifts (B, T, 2); no shift is the identity.
    clips = torch.rand(2, 3, 1, 8, 8) * 2 - 1
    assert torch.allclose(translate(clips, torch.zeros(2, 3, 2)), clips, atol=1e-5)


def test_translation_generator_keeps_the_drawing_and_only_moves_it():
    """frame_motion="translation": every frame of a clip is the drawing from z0, shifted by a map of z1;
    per-frame and per-clip calls agree; z1 has no batch norm (its output is only the shift)."""
    torch.manual_seed(0)
    generator = TGANImageGenerator(
        z_slow_dim=Z, z_fast_dim=Z, image_size=SIZE, base_channels=16, init_scale=0.5,
        frame_motion="translation",
    ).eval()  # fmt: skip
    z_slow, z_fast = torch.rand(2, Z) * 2 - 1, torch.rand(2, FRAMES, Z) * 2 - 1
    clips = generator(z_slow, z_fast)
    assert clips.shape == (2, FRAMES, 1, SIZE, SIZE)
    drawn = generator.draw(z_slow)  # (2, 1, SIZE, SIZE)
    shifts = generator.fast(z_fast)  # (2, FRAMES, 2)
    assert shifts.abs().max() <= 1 and shifts.std() > 0  # it does move
    assert torch.allclose(clips, translate(drawn[:, None].expand(-1, FRAMES, -1, -1, -1), shifts), atol=1e-6)
    per_frame = generator(z_slow[:1].expand(FRAMES, -1), z_fast[0])
    assert torch.allclose(per_frame, clips[0], atol=1e-5)
    assert not any(key.startswith("fast.1") for key in generator.state_dict())  # no batch norm on z1
    with pytest.raises(ValueError, match="frame_motion"):
        TGANImageGenerator(frame_motion="warp")


def test_cli_trains_a_translation_generator(tmp_path):
    main(["--output-dir", str(tmp_path), "--steps", "2", *TINY_CLI, "--frame-motion", "translation"])
    pipe = TGANPipeline.from_pretrained(tmp_path)
    assert pipe.image_generator.config.frame_motion == "translation"
    frames = pipe(num_videos=2, generator=torch.Generator().manual_seed(0), output_type="np").frames
    assert frames.shape == (2, FRAMES, SIZE, SIZE, 1)


def test_moving_digits_are_deterministic_in_range_and_move():
    data = MovingDigits(num_clips=3, num_frames=8, image_size=32, num_digits=(2,), seed=1)
    clip, labels = data.clip_with_labels(0)
    assert clip.shape == (8, 1, 32, 32) and clip.dtype == torch.float32
    assert clip.min() == -1 and clip.max() <= 1 and clip.max() > 0.5
    assert len(labels) == 2 and all(0 <= label <= 9 for label in labels)
    assert torch.equal(
        clip, MovingDigits(num_clips=3, num_frames=8, image_size=32, num_digits=(2,), seed=1)[0]
    )
    assert not torch.equal(clip, data[1])
    assert not torch.equal(clip[0], clip[-1])  # the digits moved
    # A lone digit stays whole in the frame as it bounces: every frame holds all of its ink.
    single = (MovingDigits(num_clips=2, num_frames=40, image_size=32, num_digits=(1,), seed=2)[1] + 1) / 2
    ink = single.flatten(1).sum(1)
    assert torch.allclose(ink, ink[0], rtol=1e-4) and ink[0] > 10
    with pytest.raises(IndexError):
        data[3]


def test_identity_swapped_clips_follow_the_real_paths_and_change_the_digit_at_one_frame():
    """A negative clip is the real clip until its swap frame (same digit, same path) and another digit on
    the same path from there on: every later frame differs, every earlier one is equal."""
    data = MovingDigits(num_clips=6, num_frames=8, image_size=32, num_digits=(1,), seed=3)
    swap_frames = set()
    for index in range(6):
        real = data[index]
        swapped, labels = data.clip_with_labels(index, identity_swap=True)
        assert labels == data.clip_with_labels(index)[1]  # the labels before the swap
        equal = [torch.equal(a, b) for a, b in zip(real, swapped, strict=True)]
        swap = equal.index(False)
        assert 1 <= swap < 8 and not any(equal[swap:])
        swap_frames.add(swap)
        # The same path: the new digit's ink stays within the old digit's box, moved alike.
        for frame_real, frame_swapped in zip(real[swap:], swapped[swap:], strict=True):
            ys, xs = torch.nonzero(frame_real[0] > -1, as_tuple=True)
            ys2, xs2 = torch.nonzero(frame_swapped[0] > -1, as_tuple=True)
            centre, centre2 = torch.stack([ys, xs]).float().mean(1), torch.stack([ys2, xs2]).float().mean(1)
            assert (centre - centre2).abs().max() < data.digit_size / 2
        assert torch.equal(IdentitySwappedDigits(6, 8, 32, (1,), seed=3)[index], swapped)
    assert len(swap_frames) > 1  # the swap frame is drawn per clip


def test_clip_folder_reads_square_windows_of_consecutive_frames(tmp_path):
    frames = np.zeros((10, 48, 64, 3), np.uint8)
    for t in range(10):
        frames[t, 8:40, 16:48] = 20 + 20 * t  # a square getting brighter frame by frame
    write_video(frames, tmp_path / "clip.mp4", fps=10)
    data = ClipFolder(tmp_path, num_frames=4, image_size=16, channels=1, num_items=5)
    assert len(data) == 5
    for clip in (data[0], data[3]):
        assert clip.shape == (4, 1, 16, 16) and clip.min() >= -1 and clip.max() <= 1
        centre = clip[:, 0, 8, 8]
        assert (centre.diff() > 0.1).all()  # consecutive frames, in order
    first_frames = {round(data[i][0, 0, 8, 8].item(), 2) for i in range(len(data))}
    assert len(first_frames) > 1  # windows start anywhere in the clip
    long_window = ClipFolder(tmp_path, num_frames=12, image_size=16, channels=3)[0]
    assert long_window.shape == (12, 3, 16, 16)
    assert torch.equal(
        long_window[-1], long_window[-3]
    )  # a clip shorter than the window: last frame repeated
    with pytest.raises(FileNotFoundError):
        ClipFolder(tmp_path / "missing")


# --- training -----------------------------------------------------------------------------------


def test_training_step_updates_the_networks_and_clips_the_critic():
    models = tiny_models()
    generator_optimizer = make_optimizer(models.generator_parameters(), "rmsprop", 1e-3)
    critic_optimizer = make_optimizer(models.critic.parameters(), "rmsprop", 1e-3)
    before = {
        name: next(getattr(models, name).parameters()).detach().clone()
        for name in ("temporal_generator", "image_generator", "critic")
    }
    digits = MovingDigits(num_clips=8, num_frames=FRAMES, image_size=SIZE)
    real = iter(torch.stack([digits[2 * i], digits[2 * i + 1]]) for i in range(4))  # (2, T, 1, S, S) each
    config = TrainingConfig(clipping="svc", svc_every=2, critic_steps=2)
    record = train_step(models, generator_optimizer, critic_optimizer, real, config, 0, Accelerator(cpu=True))
    assert all(np.isfinite(record[key]) for key in ("critic_loss", "generator_loss", "wasserstein"))
    assert record["clipped"] == 1  # after the second critic step
    for name, parameter in before.items():
        assert not torch.equal(parameter, next(getattr(models, name).parameters())), name
    assert max(largest_singular_values(models.critic)) <= 1 + 1e-4
    assert all(p.requires_grad for p in models.critic.parameters())


def test_critic_update_counts_negative_clips_as_fakes():
    """With negatives, the critic's loss is E[critic(generated + negatives)] - E[critic(real)]: the
    negatives take their share of the fake batch."""
    models = tiny_models()
    digits = MovingDigits(num_clips=4, num_frames=FRAMES, image_size=SIZE, num_digits=(1,))
    swapped = IdentitySwappedDigits(num_clips=4, num_frames=FRAMES, image_size=SIZE, num_digits=(1,))
    real = torch.stack([digits[0], digits[1], digits[2]])  # (3, T, 1, S, S)
    negatives = swapped[3][None]  # (1, T, 1, S, S)
    torch.manual_seed(5)
    with torch.no_grad():
        fake = torch.cat([fake_videos(models, 2, torch.device("cpu")), negatives.transpose(1, 2)])
        expected = (models.critic(fake).mean() - models.critic(real.transpose(1, 2)).mean()).item()
        fake_only = (
            models.critic(fake_videos(models, 3, torch.device("cpu"))).mean()
            - models.critic(real.transpose(1, 2)).mean()
        ).item()
    torch.manual_seed(5)
    optimizer = make_optimizer(models.critic.parameters(), "rmsprop", 1e-3)
    loss, _ = critic_update(models, optimizer, real, Accelerator(cpu=True), negatives)
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert loss != pytest.approx(fake_only, rel=1e-5, abs=1e-7)


def test_cli_trains_with_identity_swaps_and_slow_every_layer_and_rejects_bad_fractions(tmp_path):
    options = ["--batch-size", "4", "--identity-swaps", "0.5", "--slow-every-layer"]
    main(["--output-dir", str(tmp_path), "--steps", "2", *TINY_CLI, *options])
    saved = json.loads((tmp_path / "training_state" / "step.json").read_text())
    assert saved["step"] == 2 and saved["args"]["identity_swaps"] == 0.5
    pipe = TGANPipeline.from_pretrained(tmp_path)
    assert pipe.image_generator.config.slow_every_layer and len(pipe.image_generator.slow_modulation) == 2
    for bad in (
        ["--identity-swaps", "1"],
        ["--identity-swaps", "-0.1"],
        ["--identity-swaps", "0.5", "--data", "x"],
    ):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_cli_trains_logs_resumes_and_saves_a_loadable_pipeline(tmp_path):
    main(["--output-dir", str(tmp_path), "--steps", "2", "--clipping", "svc", "--svc-every", "1", *TINY_CLI])
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2]
    assert all(np.isfinite(record["critic_loss"]) and not record["diverged"] for record in log)
    pipe = TGANPipeline.from_pretrained(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe(num_videos=2).frames.shape == (2, FRAMES, SIZE, SIZE, 1)

    main(["--output-dir", str(tmp_path), "--steps", "3", "--clipping", "weight", "--resume", *TINY_CLI])
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3]
    saved = json.loads((tmp_path / "training_state" / "step.json").read_text())
    assert saved["step"] == 3
    assert saved["args"]["clipping"] == "weight" and saved["args"]["temporal_channels"] == [8, 8]


# --- pipeline -----------------------------------------------------------------------------------


def test_samples_are_deterministic_under_a_seeded_generator():
    pipe = tiny_pipeline()
    first = pipe(num_videos=2, generator=torch.Generator().manual_seed(3)).frames
    again = pipe(num_videos=2, generator=torch.Generator().manual_seed(3)).frames
    other = pipe(num_videos=2, generator=torch.Generator().manual_seed(4)).frames
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 10
    assert first.std() > 10  # the frames show something, not a flat grey
    # A video does not depend on the others in its batch (batch norm runs on its running statistics).
    alone = pipe(num_videos=2, generator=torch.Generator().manual_seed(3), batch_size=1).frames
    assert np.array_equal(first, alone)
    assert pipe.temporal_generator.training  # the call left the modules' mode as it found it


def test_output_types():
    pipe = tiny_pipeline()
    frames = pipe(num_videos=2, generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (2, FRAMES, SIZE, SIZE, 1) and frames.dtype == np.uint8
    videos = pipe(num_videos=2, generator=torch.Generator().manual_seed(0), output_type="pil").frames
    assert len(videos) == 2 and len(videos[0]) == FRAMES
    assert isinstance(videos[0][0], PIL.Image.Image) and videos[0][0].size == (SIZE, SIZE)
    assert np.array_equal(np.asarray(videos[1][2]), frames[1, 2, ..., 0])
    tensor = pipe(num_videos=2, generator=torch.Generator().manual_seed(0), output_type="pt").frames
    assert tensor.shape == (2, FRAMES, 1, SIZE, SIZE) and 0 <= tensor.min() and tensor.max() <= 1
    (as_tuple,) = pipe(generator=torch.Generator().manual_seed(0), return_dict=False)
    assert np.array_equal(as_tuple[0], frames[0])


def test_interpolation_between_two_seeds():
    pipe = tiny_pipeline()
    path = pipe(interpolate=(5, 9, 5)).frames
    assert path.shape == (5, FRAMES, SIZE, SIZE, 1)
    assert np.array_equal(path[0], pipe(generator=torch.Generator().manual_seed(5)).frames[0])
    assert np.array_equal(path[-1], pipe(generator=torch.Generator().manual_seed(9)).frames[0])


def test_frame_interpolation_keeps_the_trained_frames():
    pipe = tiny_pipeline()
    seed = torch.Generator().manual_seed(1)
    trained = pipe(generator=seed, output_type="pt").frames
    dense = pipe(
        generator=torch.Generator().manual_seed(1), num_frames=2 * FRAMES - 1, output_type="pt"
    ).frames
    assert dense.shape == (1, 2 * FRAMES - 1, 1, SIZE, SIZE)
    assert torch.allclose(dense[:, ::2], trained, atol=1e-5)
    # In-between frames are new: neither neighbour.
    assert (dense[:, 1] - trained[:, 0]).abs().mean() > 1e-3
    assert (dense[:, 1] - trained[:, 1]).abs().mean() > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_videos": 0}, "num_videos"),
        ({"num_frames": 0}, "num_frames"),
        ({"output_type": "gif"}, "output_type"),
        ({"interpolate": (0, 1)}, "interpolate"),
        ({"interpolate": (0, 1, 1)}, "at least 2"),
        ({"interpolate": (0, 1, 3), "num_videos": 2}, "num_videos"),
        ({"interpolate": (-1, 1, 3)}, "seed_a"),
        ({"latents": torch.zeros(2, Z)}, "latents"),
        ({"num_videos": 2, "generator": [torch.Generator()]}, "one per video"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    pipe = tiny_pipeline()
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)
    with pytest.raises(ValueError, match=message):  # an app checks its form before generating
        pipe.check_inputs(**kwargs)


def test_pil_output_needs_one_or_three_channels():
    models = tiny_models()
    two_channels = TGANImageGenerator(
        z_slow_dim=Z, z_fast_dim=Z, image_size=SIZE, out_channels=2, base_channels=16
    )
    pipe = TGANPipeline(models.temporal_generator, two_channels)
    assert pipe(output_type="np").frames.shape == (1, FRAMES, SIZE, SIZE, 2)
    with pytest.raises(ValueError, match="channels"):
        pipe(output_type="pil")


def test_mismatched_generators_are_rejected():
    models = tiny_models()
    with pytest.raises(ValueError, match="latent sizes"):
        TGANPipeline(
            models.temporal_generator, TGANImageGenerator(z_slow_dim=Z + 1, z_fast_dim=Z, image_size=SIZE)
        )


# --- evaluation ---------------------------------------------------------------------------------


def test_inception_score_and_class_consistency():
    confident = np.eye(10)[np.arange(100) % 10]  # every class equally often, each frame certain
    assert inception_score(confident) == pytest.approx(10.0, rel=1e-6)
    assert inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)
    assert inception_score(np.eye(10)[np.zeros(100, int)]) == pytest.approx(1.0)  # always the same digit
    steady = np.eye(10)[[[3, 3, 3, 3], [7, 7, 7, 7]]]  # (V=2, T=4, 10)
    assert class_consistency(steady) == 1.0
    flipping = np.eye(10)[[[3, 5, 3, 5], [1, 1, 1, 2]]]
    assert class_consistency(flipping) == pytest.approx((0.5 + 0.75) / 2)


def test_consistency_against_shuffled_frames_and_over_confident_frames():
    # 10 clips, each one digit throughout: shuffled between clips, a clip's frames mostly disagree.
    kept = np.eye(10)[np.repeat(np.arange(10), 8).reshape(10, 8)]  # (V=10, T=8, 10)
    assert class_consistency(kept) == 1.0
    assert shuffled_consistency(kept) < 0.6
    # A blurry frame (p = 0.5) that flips to another digit does not count against a kept identity.
    blurry = np.full((1, 3, 10), 0.05)
    blurry[0, [0, 1], 4], blurry[0, 2, 6] = 0.55, 0.55
    sure = np.concatenate([np.eye(10)[[[4, 4, 4]]], blurry], axis=1)  # (1, 6, 10)
    assert class_consistency(sure) == pytest.approx(5 / 6)
    assert confident_consistency(sure) == 1.0
    assert np.isnan(confident_consistency(blurry))  # no clip with two sure frames


def test_evaluate_cli_scores_a_saved_pipeline(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path / "model")
    output = tmp_path / "scores.json"
    evaluate_main(
        [
            "--model",
            str(tmp_path / "model"),
            "--num-videos",
            "3",
            "--classifier-steps",
            "2",
            "--output",
            str(output),
        ]
    )
    results = json.loads(output.read_text())
    figures = results["models"][str(tmp_path / "model")]
    assert 1.0 <= figures["inception_score"] <= 10.0 and 0.25 <= figures["class_consistency"] <= 1.0
    assert 1.0 <= results["real"]["inception_score"] <= 10.0 and 0.0 <= results["classifier_accuracy"] <= 1.0
