"""Tests for pipelines.core.metrics and the colorization baselines; every clip and image is generated."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import make_colour_clip, make_tiny_colormnet
from scipy.ndimage import gaussian_filter

from pipelines.colorization import ColorMNetPipeline, describe_placement, evaluate
from pipelines.colorization.baselines import flow_propagation, global_lab_transfer, unaligned_ab_paste
from pipelines.colorization.evaluate import score
from pipelines.core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from pipelines.core.metrics import colour_distribution_consistency, masked_psnr, psnr, ssim
from pipelines.core.video import write_video
from pipelines.data import sources
from pipelines.data.known_motion import EvalVideo


def smooth_colour_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 image of smooth random colour blobs, textured at two scales (optical flow needs texture)."""
    rng = np.random.default_rng(seed)
    coarse = gaussian_filter(rng.normal(size=(height, width, 3)), sigma=(8, 8, 0))
    fine = gaussian_filter(rng.normal(size=(height, width, 3)), sigma=(2, 2, 0))
    image = coarse / coarse.std() * 50 + fine / fine.std() * 15 + 128
    return image.clip(0, 255).astype(np.uint8)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Decolorize: keep the frame's Lab L, set ab to 0 (as the evaluation does)."""
    luminance, ab = luminance_and_ab(frame_to_tensor(frame))
    return tensor_to_frame(compose_lab(luminance, torch.zeros_like(ab)))


def lab_l(frame: np.ndarray) -> np.ndarray:
    return luminance_and_ab(frame_to_tensor(frame))[0][0, 0].numpy()


def translating_clip(
    num_frames: int = 6, height: int = 48, width: int = 64, shift: int = 2
) -> list[np.ndarray]:
    """Crops of a larger colour image whose window moves `shift` pixels right and down per frame."""
    margin = shift * num_frames
    scene = smooth_colour_image(height + margin, width + margin, seed=1)
    return [scene[t * shift : t * shift + height, t * shift : t * shift + width] for t in range(num_frames)]


# ----------------------------------------------------------------------------------------------- metrics


def test_psnr_identical_and_known_value():
    image = smooth_colour_image(16, 16)
    assert math.isinf(psnr(image, image))
    # Every value off by 5 levels: MSE = 25, PSNR = 10 log10(255^2 / 25).
    a = np.full((8, 8, 3), 100, np.uint8)
    b = np.full((8, 8, 3), 105, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))
    # The same images as floats in [0, 1] give the same value.
    assert psnr(a / 255.0, b / 255.0) == pytest.approx(psnr(a, b))


def test_ssim_identical_and_degraded():
    image = smooth_colour_image(32, 32)
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = (image + np.random.default_rng(0).normal(0, 25, image.shape)).clip(0, 255).astype(np.uint8)
    assert ssim(noisy, image) < 0.9


def test_cdc_zero_for_constant_clip_and_larger_for_flicker():
    frame = smooth_colour_image(24, 24)
    assert colour_distribution_consistency([frame] * 5) == pytest.approx(0.0, abs=1e-12)
    steady = [np.clip(frame.astype(int) + t, 0, 255).astype(np.uint8) for t in range(5)]
    tint = np.array([40, -20, -40])
    flicker = [np.clip(frame.astype(int) + (t % 2) * tint, 0, 255).astype(np.uint8) for t in range(5)]
    assert colour_distribution_consistency(flicker) > colour_distribution_consistency(steady) > 0
    assert colour_distribution_consistency([frame]) == 0.0


# ----------------------------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("baseline", [global_lab_transfer, flow_propagation])
def test_baselines_keep_luminance(baseline):
    clip = translating_clip()
    gray = [to_gray(frame) for frame in clip]
    outputs = baseline(gray, clip[0])
    assert len(outputs) == len(gray)
    for source, output in zip(gray, outputs, strict=True):
        assert output.shape == source.shape and output.dtype == np.uint8
        # Only ab is replaced; uint8 rounding (and rare gamut clipping) moves L a little.
        assert np.abs(lab_l(output) - lab_l(source)).mean() < 1.0
    assert not all(np.array_equal(output, source) for source, output in zip(gray, outputs, strict=True))


def test_flow_propagation_follows_a_known_translation():
    clip = translating_clip(num_frames=6, shift=2)
    gray = [to_gray(frame) for frame in clip]
    outputs = flow_propagation(gray, clip[0])
    # Frame 0 takes the exemplar's colours directly.
    assert psnr(outputs[0], clip[0]) > 35
    # Later frames: colour error (inside a border the shift uncovers) far below that of leaving them gray.
    inner = (slice(12, -12), slice(12, -12))
    for output, truth, source in zip(outputs[1:], clip[1:], gray[1:], strict=True):
        error = np.abs(output[inner].astype(int) - truth[inner]).mean()
        gray_error = np.abs(source[inner].astype(int) - truth[inner]).mean()
        assert error < 0.3 * gray_error


def test_global_lab_transfer_uses_exemplar_colours():
    # A two-tone exemplar: dark pixels red, bright pixels blue. The lookup should colour a grayscale frame the
    # same way by luminance, wherever those pixels are.
    exemplar = np.zeros((16, 16, 3), np.uint8)
    exemplar[:, :8] = (150, 20, 20)
    exemplar[:, 8:] = (90, 140, 250)
    frame = to_gray(exemplar[:, ::-1])
    output = global_lab_transfer([frame], exemplar)[0]
    expected = exemplar[:, ::-1]
    assert np.abs(output.astype(int) - expected).mean() < 3


def test_masked_psnr_pools_the_selected_pixels_over_frames():
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a.copy()
    b[:2] = 110  # top half off by 10 levels, bottom half exact
    top = np.zeros((4, 4), bool)
    top[:2] = True
    assert masked_psnr([b], [a], [top]) == pytest.approx(10 * math.log10(255**2 / 100))
    assert math.isinf(masked_psnr([b], [a], [~top]))
    assert masked_psnr([b], [a], [np.zeros((4, 4), bool)]) is None
    # Pooled over frames: half the selected pixels off by 10 gives MSE 50.
    assert masked_psnr([b, a], [a, a], [top, top]) == pytest.approx(10 * math.log10(255**2 / 50))
    assert masked_psnr([b], [a], [np.ones((4, 4), bool)]) == pytest.approx(psnr(b, a))
    with pytest.raises(ValueError, match="mask shape"):
        masked_psnr([b], [a], [np.ones((2, 2), bool)])


def test_unaligned_ab_paste_gives_every_frame_the_references_colours_in_place():
    clip = translating_clip(num_frames=3)
    gray = [to_gray(frame) for frame in clip]
    outputs = unaligned_ab_paste(gray, clip[0])
    assert psnr(outputs[0], clip[0]) > 35  # the reference's own frame comes back
    for output, source in zip(outputs, gray, strict=True):
        assert np.abs(lab_l(output) - lab_l(source)).mean() < 1.0
        ab = luminance_and_ab(frame_to_tensor(output))[1]
        reference_ab = luminance_and_ab(frame_to_tensor(clip[0]))[1]
        assert (ab - reference_ab).abs().mean() < 3.0  # the same ab wherever the content moved
    half = unaligned_ab_paste(gray[:1], clip[0][::2, ::2])[0]  # a smaller reference is resized
    assert half.shape == gray[0].shape


def test_score_uses_only_the_scored_frames():
    truth = translating_clip(num_frames=3)
    outputs = [to_gray(truth[0]), truth[1], truth[2]]  # only frame 0 is wrong
    assert math.isinf(score(outputs, truth)["psnr"])  # default: frames 1..
    assert math.isinf(score(outputs, truth, scored=[2])["psnr"])
    assert score(outputs, truth, scored=[0])["psnr"] < 100
    moving = [np.ones(truth[0].shape[:2], bool)] * 3
    scored = score(outputs, truth, scored=[1, 2], moving=moving)
    assert math.isinf(scored["psnr_moving"]) and scored["psnr_rest"] is None


# ----------------------------------------------------------------------------------------------- evaluate CLI


def tiny_pseudo_video(split: str) -> EvalVideo:
    """A stand-in for a split's pseudo videos (`known_motion.split_pseudo_videos`): 6 small frames."""
    frames = make_colour_clip(num_frames=6, height=48, width=64, seed=5)
    tracks = np.zeros((6, 1, 2), np.float32)
    return EvalVideo(
        name="pseudo-still",
        source=f"pseudo-{split}",
        frames=frames,
        tracks=tracks,
        visible=np.ones((6, 1), bool),
        masks=None,
        notes={"sticker_from": "donor"},
    )


@pytest.fixture
def tiny_evaluation(tmp_path, monkeypatch):
    """Tiny clips named as the offline videos of each split, one tiny pseudo video per split, and the tiny
    pipeline in place of the checkpoint; returns the clips and the model calls' arguments (exemplars,
    exemplar_frames, number of frames, fallback_error)."""
    clips = {}
    for name, seed in (("bigbuckbunny", 0), ("Megamind", 1), ("vtest", 2)):  # train, validation, test
        path = tmp_path / f"{name}.mp4"
        clips[path] = make_colour_clip(num_frames=10, height=48, width=64, seed=seed)
        write_video(list(clips[path]), path, fps=10)
    monkeypatch.setattr(sources, "offline_video_paths", lambda: list(clips))
    monkeypatch.setattr(sources, "scene_video_paths", lambda: list(clips))  # not the wider sources here
    monkeypatch.setattr(evaluate, "offline_video_paths", lambda: list(clips))
    monkeypatch.setattr(evaluate, "split_pseudo_videos", lambda split: [tiny_pseudo_video(split)])
    tiny = classmethod(lambda cls, *args, **kwargs: make_tiny_colormnet())
    monkeypatch.setattr(ColorMNetPipeline, "from_pretrained", tiny)
    calls = []
    original = ColorMNetPipeline.__call__

    def recording(self, video, **kwargs):
        calls.append(
            (kwargs["exemplars"], kwargs["exemplar_frames"], len(video), kwargs.get("fallback_error"))
        )
        return original(self, video, **kwargs)

    monkeypatch.setattr(ColorMNetPipeline, "__call__", recording)
    return clips, calls


def test_tail_stays_the_default_protocol(tiny_evaluation, tmp_path):
    _, calls = tiny_evaluation
    assert evaluate.parse_args([]).protocol == "tail"
    output = tmp_path / "tail.json"
    assert evaluate.main(["--max-frames", "4", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["segment"] == "held-out tail" and "protocol" not in report  # the tail's JSON as before
    assert [clip["start"] for clip in report["clips"]] == [7, 7, 7]  # 10 - round(0.3 * 10)
    assert set(report["clips"][0]["methods"]) == {
        "colormnet",
        "global_lab_transfer",
        "flow_propagation",
        "grayscale_input",
        "ground_truth",
    }
    assert "psnr_moving" not in report["mean"]["colormnet"]
    assert [told for _, told, _, _ in calls] == [[0]] * 3
    assert [fallback for *_, fallback in calls] == [None] * 3  # the pipeline's config decides
    assert report["fallback_error"] == make_tiny_colormnet().config.fallback_error
    for clip in report["clips"]:
        assert clip["exemplar_placements"] == [{"mode": "keyframe", "frame": 0, "matches": None}]


def test_fallback_error_reaches_the_pipeline(tiny_evaluation, tmp_path):
    _, calls = tiny_evaluation
    assert evaluate.parse_args([]).fallback_error is None
    output = tmp_path / "model_only.json"
    assert evaluate.main(["--max-frames", "4", "--fallback-error", "-1", "--output", str(output)]) == 0
    assert [fallback for *_, fallback in calls] == [-1.0] * 3
    assert json.loads(output.read_text())["fallback_error"] == -1.0
    for removed in (["--static-tolerance", "0.5"], ["--no-motion-compensated-hold"]):
        with pytest.raises(SystemExit):
            evaluate.parse_args(removed)


def test_evaluate_clip_passes_fallback_error_and_collects_placements():
    pipe = make_tiny_colormnet()
    truth = translating_clip(num_frames=4)  # textured, so the motion can be matched
    placements = []
    anchored = evaluate.evaluate_clip(pipe, truth, None, protocol="keyframe", placements=placements)
    model_only = evaluate.evaluate_clip(pipe, truth, None, fallback_error=-1, protocol="keyframe")
    assert placements == [{"mode": "keyframe", "frame": 0, "matches": None}]
    # The untrained model alone is far off; the keyframe's colours carried along the motion are not.
    assert anchored["colormnet"]["psnr"] > model_only["colormnet"]["psnr"] + 3
    assert anchored["colormnet"]["cdc"] < 0.5 * model_only["colormnet"]["cdc"]  # and it flickers less


@pytest.mark.parametrize("protocol", ["keyframe", "free-reference"])
def test_scene_protocols_score_the_split_with_their_reference(tiny_evaluation, tmp_path, protocol, capsys):
    clips, calls = tiny_evaluation
    output = tmp_path / f"{protocol}.json"
    argv = ["--protocol", protocol, "--split", "test", "--max-frames", "6", "--output", str(output)]
    assert evaluate.main(argv) == 0
    report = json.loads(output.read_text())
    assert report["protocol"] == protocol and report["split"] == "test"
    printed = capsys.readouterr().out
    clip, pseudo = report["clips"]  # vtest (the only video of the test split here), then its pseudo video
    assert clip["name"] == "vtest.mp4" and clip["start"] == 0 and clip["frames"] == 6
    assert pseudo["name"] == "pseudo-still" and pseudo["frames"] == 6 and "donor" in pseudo["path"]
    assert "## pseudo-still" in printed
    (exemplar, told, num_frames, _) = calls[0]
    assert num_frames == 6
    truth = next(frames for path, frames in clips.items() if path.stem == "vtest")
    if protocol == "keyframe":
        assert told == [0] and clip["scored_frames"] == [1, 2, 3, 4, 5]
        reference = truth[0]
        expected = {"colormnet", "global_lab_transfer", "flow_propagation"}
        assert clip["exemplar_placements"] == [{"mode": "keyframe", "frame": 0, "matches": None}]
    else:
        assert told == [None] and clip["scored_frames"] == [0, 1, 2, 3, 4]
        reference = truth[5]
        expected = {"colormnet", "global_lab_transfer", "ab_paste", "flow_from_reference"}
        # Where the pipeline put the free reference is reported, in the JSON and in the printed report
        # (these frames are too small for feature matching: memory only).
        (placement,) = clip["exemplar_placements"]
        assert placement["mode"] == "memory" and placement["frame"] is None
        assert f"exemplar: {describe_placement(placement)}" in printed
    assert clip["reference_frame"] == (0 if protocol == "keyframe" else 5)
    assert np.abs(exemplar.astype(int) - reference).mean() < 8  # the decoded frame (H.264 is lossy)
    assert set(clip["methods"]) == expected | {"grayscale_input", "ground_truth"}
    for key in expected:
        assert {"psnr_moving", "psnr_rest"} <= set(clip["methods"][key])
        assert {"psnr_moving", "psnr_rest"} <= set(report["mean"][key])


def test_scene_protocols_need_a_split():
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--protocol", "keyframe"])
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--split", "test"])


def test_pan_adds_each_split_video_seen_by_a_panning_camera(tiny_evaluation, tmp_path):
    clips, calls = tiny_evaluation
    output = tmp_path / "pan.json"
    argv = [
        "--protocol",
        "keyframe",
        "--split",
        "test",
        "--max-frames",
        "6",
        "--pan",
        "--output",
        str(output),
    ]
    assert evaluate.main(argv) == 0
    report = json.loads(output.read_text())
    assert [clip["name"] for clip in report["clips"]] == ["vtest.mp4", "pan-vtest.mp4", "pseudo-still"]
    panned = report["clips"][1]
    assert panned["eval_size"] == [48, 48] and "panned" in panned["path"]  # 75 % of the 64-pixel width
    assert [num_frames for _, _, num_frames, _ in calls] == [6, 6, 6]
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--pan"])  # the tail protocol has no panned clips
