"""Pseudo-video image generation: builders, the generator and scheduler, a training step and the CLI,
`PseudoVideoPipeline`, and the FD-EffNet / precision-recall evaluation (tiny configs; seconds on CPU)."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate import Accelerator

from pipelines.pseudo_video import (
    RICH_KINDS,
    PseudoVideoGenerator,
    PseudoVideoPipeline,
    PseudoVideoScheduler,
    build_pseudo_video,
    degrade,
    digit_images,
    frame_levels,
    imle_loss,
    markov_pseudo_video,
    photo_crops,
    rich_pseudo_video,
    scheduler_for_mode,
)
from pipelines.pseudo_video.builders import alpha_bar, markov_marginal, markov_posterior_step
from pipelines.pseudo_video.data import folder_images, to_unit
from pipelines.pseudo_video.evaluate import frechet_distance, markdown_table, precision_recall, summarise
from pipelines.pseudo_video.evaluate import main as evaluate_main
from pipelines.pseudo_video.train import main as train_main
from pipelines.pseudo_video.train import train_step

SIZE, LATENT = 8, 4
TINY_CLI = [
    "--image-size", str(SIZE), "--width", "8", "--latent-dim", str(LATENT), "--num-frames", "4",
    "--candidates", "2", "--batch-size", "4", "--threads", "1", "--warmup-steps", "1", "--log-every", "1",
]  # fmt: skip


def tiny_model(channels: int = 1, seed: int = 0) -> PseudoVideoGenerator:
    torch.manual_seed(seed)
    return PseudoVideoGenerator(
        image_size=SIZE, in_channels=channels, width=8, latent_dim=LATENT, level_dim=8
    )


def tiny_pipeline(mode: str = "markov", num_frames: int = 4, channels: int = 1) -> PseudoVideoPipeline:
    pipe = PseudoVideoPipeline(tiny_model(channels), scheduler_for_mode(mode, num_frames))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def images(batch: int = 3, channels: int = 1, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# --- builders -----------------------------------------------------------------------------------


def test_frame_levels_run_from_fully_degraded_to_exactly_clean():
    levels = frame_levels(5)
    assert levels.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError, match="num_frames"):
        frame_levels(1)


@pytest.mark.parametrize("kind", ["markov", *RICH_KINDS])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_builder_ends_exactly_at_the_clean_image(kind, channels):
    clean = images(channels=channels)
    video = build_pseudo_video(clean, kind, 6, torch.Generator().manual_seed(0))
    assert video.shape == (3, 6, channels, SIZE, SIZE)
    assert torch.equal(video[:, -1], clean)
    assert (video[:, 0] - clean).abs().mean() > 0.1  # the first frame is really degraded
    # Frames get closer to the image as the video goes on.
    errors = (video - clean[:, None]).square().mean(dim=(0, 2, 3, 4))
    assert errors[0] > errors[-2] > errors[-1] == 0


def test_markov_builder_is_a_gaussian_chain_starting_at_pure_noise():
    assert alpha_bar(torch.tensor(1.0)) == 0 and alpha_bar(torch.tensor(0.0)) == 1
    clean = torch.full((4000, 1, 2, 2), 0.5)
    video = markov_pseudo_video(clean, 4, torch.Generator().manual_seed(1))
    # Frame 0 forgets the image: zero mean, unit variance. Frame k has the closed-form marginal.
    assert video[:, 0].mean().abs() < 0.05 and (video[:, 0].std() - 1).abs() < 0.05
    level = frame_levels(4)[1]
    abar = alpha_bar(level).item()
    assert (video[:, 1].mean() - 0.5 * abar**0.5).abs() < 0.03
    assert (video[:, 1].var() - (1 - abar)).abs() < 0.03
    sample = markov_marginal(clean[:2], level, torch.zeros(2, 1, 2, 2))
    assert torch.allclose(sample, clean[:2] * abar**0.5)
    assert not torch.equal(video, markov_pseudo_video(clean, 4, torch.Generator().manual_seed(2)))


def test_markov_posterior_step_ends_at_the_clean_image_and_rejects_wrong_order():
    frame, clean = images(seed=1), images(seed=2)
    assert torch.equal(markov_posterior_step(frame, clean, 0.5, 0.0, torch.randn_like(frame)), clean)
    # From pure noise (level 1), the step's mean is sqrt(abar_next) * clean: the frame carries nothing.
    step = markov_posterior_step(frame, clean, 1.0, 0.5, torch.zeros_like(frame))
    assert torch.allclose(step, clean * alpha_bar(torch.tensor(0.5)).sqrt(), atol=1e-6)
    with pytest.raises(ValueError, match="next_level"):
        markov_posterior_step(frame, clean, 0.2, 0.5, frame)


def test_rich_degradations_at_their_extremes():
    clean = images(channels=3)
    order = torch.rand(3, 1, SIZE, SIZE)
    for kind in ("mask", "fade", "mixture"):
        assert torch.equal(degrade(clean, 1.0, kind, order), torch.zeros_like(clean)), kind
        assert torch.equal(degrade(clean, 0.0, kind, order), clean), kind
    means = clean.mean(dim=(2, 3), keepdim=True).expand_as(clean)
    assert torch.allclose(degrade(clean, 1.0, "downsample"), means, atol=1e-6)
    # Blur smooths: neighbouring pixels get closer.
    blurred = degrade(clean, 0.5, "blur")
    assert blurred.diff(dim=-1).abs().mean() < 0.5 * clean.diff(dim=-1).abs().mean()
    # Masking keeps one order per video: the set of kept pixels only grows along the video.
    video = rich_pseudo_video(clean, 5, "mask", torch.Generator().manual_seed(0))
    kept = video.ne(0).any(dim=2)  # (B, T, H, W)
    assert (kept[:, 1:] >= kept[:, :-1]).all() and kept[:, 0].sum() == 0
    # Colour fading removes saturation first.
    faded = degrade(clean, 0.5, "fade")
    assert torch.allclose(faded, faded.mean(dim=1, keepdim=True).expand_as(faded), atol=1e-6)
    with pytest.raises(ValueError, match="mask_order"):
        degrade(clean, 0.5, "mask")
    with pytest.raises(ValueError, match="Unknown"):
        build_pseudo_video(clean, "swirl", 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        degrade(clean, 1.5, "fade")


# --- model and scheduler ------------------------------------------------------------------------


def test_same_network_and_parameter_count_in_every_mode():
    counts = {
        mode: sum(p.numel() for p in tiny_pipeline(mode).model.parameters())
        for mode in ("image", "markov", "rich")
    }
    assert len(set(counts.values())) == 1
    model = tiny_model(channels=3)
    out = model(images(channels=3), torch.rand(3), torch.randn(3, LATENT))
    assert out.shape == (3, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="8x8"):
        model(torch.zeros(1, 3, 16, 16), torch.rand(1), torch.randn(1, LATENT))


def test_the_latent_changes_the_sample_even_from_a_constant_frame():
    model = tiny_model()
    frame, level = torch.zeros(2, 1, SIZE, SIZE), torch.ones(2)
    first = model(frame, level, torch.randn(2, LATENT))
    second = model(frame, level, torch.randn(2, LATENT))
    assert (first - second).abs().mean() > 1e-3
    assert first[0].std() > 1e-4  # not a flat image


def test_scheduler_kinds_and_training_frames():
    clean = images(batch=64)
    for mode, kind in (("image", "image"), ("markov", "markov"), ("rich", "mixture")):
        scheduler = scheduler_for_mode(mode, 5)
        assert scheduler.config.kind == kind
        frame, level = scheduler.training_frames(clean, torch.Generator().manual_seed(0))
        assert frame.shape == clean.shape and level.shape == (64,)
        assert (level > 0).all()  # never the clean frame itself
    assert scheduler_for_mode("image", 5).config.num_frames == 2
    assert set(scheduler_for_mode("markov", 5).training_frames(clean)[1].tolist()) == {1.0, 0.75, 0.5, 0.25}
    with pytest.raises(ValueError, match="kind"):
        PseudoVideoScheduler("blur", 4)  # its first frame depends on the image: nothing to start from
    with pytest.raises(ValueError, match="num_frames=2"):
        PseudoVideoScheduler("image", 4)
    with pytest.raises(ValueError, match="mode"):
        scheduler_for_mode("diffusion", 4)


# --- training -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["image", "markov", "rich"])
def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(mode):
    model = tiny_model()
    scheduler = scheduler_for_mode(mode, 4)
    clean = to_unit(digit_images(SIZE)[:16])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def fixed_loss() -> float:  # the same frames, levels and latents every time
        generator = torch.Generator().manual_seed(123)
        frame, level = scheduler.training_frames(clean, generator)
        with torch.no_grad():
            return imle_loss(model, frame, level, clean, 4, LATENT, generator).item()

    before = fixed_loss()
    accelerator = Accelerator(cpu=True)
    for step in range(30):
        loss = train_step(
            model, scheduler, optimizer, clean, 4, accelerator, torch.Generator().manual_seed(step)
        )
        assert np.isfinite(loss)
    assert fixed_loss() < 0.7 * before


def test_imle_picks_the_closest_candidate():
    class Echo(torch.nn.Module):  # returns the latent's first value everywhere
        def forward(self, frame, level, latent):
            return latent[:, :1, None, None].expand_as(frame) + 0 * self.weight

        weight = torch.nn.Parameter(torch.zeros(()))

    clean = torch.full((1, 1, 2, 2), 0.3)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 64, 3, generator=torch.Generator().manual_seed(0))
    loss = imle_loss(Echo(), clean, torch.ones(1), clean, 64, 3, generator)
    assert loss.item() == pytest.approx((latents[0, :, 0] - 0.3).square().min().item(), rel=1e-5)
    single = imle_loss(Echo(), clean, torch.ones(1), clean, 1, 3, torch.Generator().manual_seed(0))
    assert single.item() > loss.item()
    with pytest.raises(ValueError, match="num_candidates"):
        imle_loss(Echo(), clean, torch.ones(1), clean, 0, 3)


def test_cli_trains_logs_resumes_and_saves_a_loadable_pipeline(tmp_path):
    train_main(["--output-dir", str(tmp_path), "--mode", "rich", "--steps", "2", *TINY_CLI])
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    pipe = PseudoVideoPipeline.from_pretrained(tmp_path)
    assert pipe.scheduler.config.kind == "mixture" and pipe.scheduler.config.num_frames == 4
    train_main(["--output-dir", str(tmp_path), "--mode", "rich", "--steps", "3", "--resume", *TINY_CLI])
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3]
    assert json.loads((tmp_path / "training_state" / "step.json").read_text())["step"] == 3
    with pytest.raises(SystemExit, match="different"):
        train_main(["--output-dir", str(tmp_path), "--mode", "markov", "--steps", "4", "--resume", *TINY_CLI])


def test_cli_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        train_main(["--output-dir", str(tmp_path), "--mode", "video"])
    with pytest.raises(SystemExit):
        train_main(["--output-dir", str(tmp_path), "--num-frames", "1"])
    with pytest.raises(SystemExit, match="grey"):
        train_main(["--output-dir", str(tmp_path), "--channels", "3", "--steps", "1"])
    with pytest.raises(SystemExit, match="No image folder"):
        train_main(["--output-dir", str(tmp_path), "--data", str(tmp_path / "missing"), "--steps", "1"])


# --- data ---------------------------------------------------------------------------------------


def test_offline_data_sources(tmp_path):
    digits = digit_images(8)
    assert digits.shape == (1797, 1, 8, 8) and digits.dtype == torch.uint8 and digits.max() == 255
    assert digit_images(16).shape == (1797, 1, 16, 16)
    crops = photo_crops(size=16, count=12, seed=0)
    assert crops.shape == (12, 3, 16, 16) and crops.float().std() > 10
    assert torch.equal(crops, photo_crops(size=16, count=12, seed=0))
    assert photo_crops(size=16, count=2, channels=1).shape == (2, 1, 16, 16)
    (tmp_path / "sub").mkdir()
    PIL.Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(tmp_path / "a.png")
    PIL.Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "sub" / "b.jpg")
    folder = folder_images(tmp_path, size=8)
    assert folder.shape == (2, 3, 8, 8) and folder[0].float().mean() == 200
    with pytest.raises(FileNotFoundError):
        folder_images(tmp_path / "sub" / "none", 8)


# --- pipeline -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["image", "markov", "rich"])
def test_samples_are_deterministic_under_a_seeded_generator(mode):
    pipe = tiny_pipeline(mode)
    seeded = dict(batch_size=4, output_type="np")
    first = pipe(**seeded, generator=torch.Generator().manual_seed(3), return_pseudo_video=True)
    again = pipe(**seeded, generator=torch.Generator().manual_seed(3), return_pseudo_video=True)
    other = pipe(**seeded, generator=torch.Generator().manual_seed(4)).images
    assert np.array_equal(first.images, again.images)
    assert np.array_equal(first.pseudo_videos, again.pseudo_videos)
    assert np.abs(first.images - other).mean() > 1e-3
    # An image does not depend on the chunk it was made in.
    alone = pipe(**seeded, generator=torch.Generator().manual_seed(3), chunk_size=1).images
    assert np.allclose(first.images, alone, atol=1e-6)
    # The pseudo video's last frame is the image.
    assert np.array_equal(first.pseudo_videos[:, -1], first.images)
    assert pipe.model.training  # the call left the module's mode as it found it


def test_output_shapes_and_types():
    pipe = tiny_pipeline("rich", num_frames=5, channels=3)
    seed = 0
    out = pipe(
        batch_size=2,
        generator=torch.Generator().manual_seed(seed),
        return_pseudo_video=True,
        output_type="np",
    )
    assert out.images.shape == (2, SIZE, SIZE, 3) and out.images.dtype == np.float32
    assert 0 <= out.images.min() and out.images.max() <= 1
    assert out.pseudo_videos.shape == (2, 5, SIZE, SIZE, 3)
    assert np.all(out.pseudo_videos[:, 0] == 0.5)  # frame 0: the fully degraded (mid-grey) frame
    assert pipe(batch_size=2).pseudo_videos is None
    pil = pipe(batch_size=2, generator=torch.Generator().manual_seed(seed), return_pseudo_video=True)
    assert isinstance(pil.images[0], PIL.Image.Image) and pil.images[0].size == (SIZE, SIZE)
    assert len(pil.pseudo_videos) == 2 and len(pil.pseudo_videos[0]) == 5
    assert np.abs(np.asarray(pil.images[1]) / 255.0 - out.images[1]).max() <= 0.5 / 255 + 1e-6
    pt = pipe(
        batch_size=2,
        generator=torch.Generator().manual_seed(seed),
        output_type="pt",
        return_pseudo_video=True,
    )
    assert pt.images.shape == (2, 3, SIZE, SIZE) and pt.pseudo_videos.shape == (2, 5, 3, SIZE, SIZE)
    images_only = pipe(
        batch_size=2, generator=torch.Generator().manual_seed(seed), return_dict=False, output_type="np"
    )
    assert len(images_only) == 1 and np.array_equal(images_only[0], out.images)
    both = pipe(
        batch_size=2,
        generator=torch.Generator().manual_seed(seed),
        return_dict=False,
        return_pseudo_video=True,
        output_type="np",
    )
    assert len(both) == 2 and np.array_equal(both[1], out.pseudo_videos)
    grey = tiny_pipeline("markov")().images[0]  # one PIL image by default, as in Diffusers
    assert grey.mode == "L"
    # More frames than trained: levels are continuous, the video is longer and still ends at its image.
    longer = pipe(batch_size=2, num_frames=9, return_pseudo_video=True, output_type="np")
    assert longer.pseudo_videos.shape[1] == 9 and np.array_equal(longer.pseudo_videos[:, -1], longer.images)


@pytest.mark.parametrize(
    "mode, kwargs, message",
    [
        ("markov", {"batch_size": 0}, "batch_size"),
        ("markov", {"batch_size": 2.5}, "batch_size"),
        ("markov", {"num_images": 0}, "num_images"),
        ("markov", {"num_frames": 1}, "num_frames"),
        ("image", {"num_frames": 4}, "num_frames=2"),
        ("markov", {"output_type": "gif"}, "output_type"),
        ("markov", {"chunk_size": 0}, "chunk_size"),
        ("markov", {"generator": 7}, "torch.Generator"),
    ],
)
def test_bad_arguments_raise(mode, kwargs, message):
    pipe = tiny_pipeline(mode)
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)
    with pytest.raises(ValueError, match=message):  # an app checks its form before generating
        pipe.check_inputs(**kwargs)


def test_check_inputs_accepts_what_the_pipeline_generates():
    tiny_pipeline("markov").check_inputs(batch_size=3, num_frames=9, output_type="pil", chunk_size=2)
    tiny_pipeline("image").check_inputs(num_frames=2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="channels"):
        tiny_pipeline("markov", channels=2).check_inputs(output_type="pil")


def test_save_and_load_round_trip(tmp_path):
    pipe = tiny_pipeline("rich", num_frames=6)
    pipe.save_pretrained(tmp_path)
    loaded = PseudoVideoPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.scheduler.config.kind == "mixture" and loaded.scheduler.config.num_frames == 6
    for key, value in pipe.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[key]), key
    expected = pipe(batch_size=3, generator=torch.Generator().manual_seed(5), output_type="np").images
    again = loaded(batch_size=3, generator=torch.Generator().manual_seed(5), output_type="np").images
    assert np.array_equal(again, expected)


# --- evaluation ---------------------------------------------------------------------------------


def test_frechet_distance_and_precision_recall():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 4))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    shifted = real + np.array([2.0, 0, 0, 0])
    assert frechet_distance(real, shifted) == pytest.approx(4.0, rel=1e-6)  # mean shift only
    assert frechet_distance(real, rng.normal(size=(400, 4))) < 0.3
    precision, recall = precision_recall(real, rng.normal(size=(400, 4)))
    assert precision > 0.8 and recall > 0.8
    # Samples collapsed onto one corner of the real set: faithful but no coverage.
    collapsed = real[real[:, 0] > 1.0][:, :] + 0.0
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.5
    precision, recall = precision_recall(real, rng.normal(size=(400, 4)) + 10)
    assert precision == 0 and recall == 0


def test_summary_and_table():
    runs = {
        f"r{i}": {"label": "markov", "parameters": 10, "network_evaluations_per_image": 7, "fd_effnet": v,
                  "precision": 0.5, "recall": 0.4}
        for i, v in enumerate([1.0, 2.0, 3.0])
    }  # fmt: skip
    summary = summarise(runs)
    assert summary["markov"]["fd_effnet"] == {"mean": 2.0, "std": 1.0} and summary["markov"]["runs"] == 3
    table = markdown_table(
        {"summary": summary, "real_vs_real_halves": {"fd_effnet": 0.1, "precision": 0.9, "recall": 0.9}}
    )
    assert "| markov | 3 | 10 | 7 | 2.000 ± 1.000 |" in table


def test_evaluate_cli_scores_saved_pipelines(tmp_path):
    for name, mode in (("a", "image"), ("b", "markov")):
        tiny_pipeline(mode).save_pretrained(tmp_path / name)
    output = tmp_path / "eval.json"
    evaluate_main(
        ["--model", f"image={tmp_path / 'a'}", "--model", f"markov={tmp_path / 'b'}", "--num-samples", "40",
         "--feature-size", "32", "--output", str(output)]
    )  # fmt: skip
    results = json.loads(output.read_text())
    assert set(results["summary"]) == {"image", "markov"}
    for run in results["runs"].values():
        assert run["fd_effnet"] > 0 and 0 <= run["precision"] <= 1 and 0 <= run["recall"] <= 1
    assert results["runs"][str(tmp_path / "b")]["network_evaluations_per_image"] == 3
    assert results["real_vs_real_halves"]["fd_effnet"] < min(r["fd_effnet"] for r in results["runs"].values())
    with pytest.raises(SystemExit):
        evaluate_main(["--model", "no-label-here"])
