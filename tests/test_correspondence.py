"""Motion-aware correspondence: the encoder and its switches, the training objective, label
propagation and `CorrespondencePipeline` (tiny configs; the embedded model for real tracking)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipelines import CorrespondencePipeline
from pipelines.core.backbones import (
    available_backbones,
    build_backbone,
    pretrained_backbone_config,
    register_backbone,
)
from pipelines.core.flow import luminance_to_u8
from pipelines.correspondence import PALETTE, CorrespondenceBackbone, MotionCorrespondenceEncoder, draw_tracks
from pipelines.correspondence.modeling import camera_motion, frame_flows
from pipelines.correspondence.objective import adaptive_weights, kmeans, multi_cluster_sample, uniform_sample
from pipelines.correspondence.propagation import track
from pipelines.correspondence.train import clip_flows, clip_loss, drop_colour
from pipelines.correspondence.train import main as train_main

REPO_ROOT = Path(__file__).resolve().parents[1]
EMBEDDED = REPO_ROOT / "checkpoints" / "mer-correspondence"


def tiny_encoder(seed: int = 0, **switches) -> MotionCorrespondenceEncoder:
    torch.manual_seed(seed)
    return MotionCorrespondenceEncoder(feature_channels=8, hidden_channels=(8, 8), backbone=None, **switches)


def tiny_pipeline(**switches) -> CorrespondencePipeline:
    pipe = CorrespondencePipeline(tiny_encoder(**switches), processing_size=32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour texture (H, W, 3) uint8: distinct everywhere, so matches are unique."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    coarse = torch.from_numpy(coarse).permute(2, 0, 1)[None]
    smooth = F.interpolate(coarse, size=(height + 16, width + 16), mode="bicubic", align_corners=False)
    fine = torch.from_numpy(rng.uniform(-25, 25, size=(1, 3, height + 16, width + 16)).astype(np.float32))
    image = (smooth + fine).clamp(0, 255)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    return image[8 : 8 + height, 8 : 8 + width]


def translation_video(num_frames: int, shift: tuple[int, int], size=(96, 128), seed: int = 0) -> np.ndarray:
    """Frames (T, H, W, 3): a window sliding over a larger texture by `shift` = (dx, dy) px per frame,
    so the content moves by (-dx, -dy) per frame."""
    height, width = size
    dx, dy = shift
    margin = max(abs(dx), abs(dy)) * num_frames
    texture = textured_image(height + 2 * margin, width + 2 * margin, seed)
    return np.stack(
        [
            texture[margin + t * dy : margin + t * dy + height, margin + t * dx : margin + t * dx + width]
            for t in range(num_frames)
        ]
    )


# --- the encoder and its switches -------------------------------------------------------------


def test_features_are_normalized_at_stride_4():
    features = tiny_encoder()(torch.rand(2, 1, 32, 48) * 100)
    assert features.shape == (2, 8, 8, 12)
    assert torch.allclose(features.norm(dim=1), torch.ones(2, 8, 12), atol=1e-5)


def test_motion_switch_changes_the_graph():
    luminance = torch.rand(1, 1, 32, 32) * 100
    flow = torch.randn(1, 2, 32, 32) * 3
    with_motion, without = tiny_encoder(use_motion=True), tiny_encoder(use_motion=False)
    assert hasattr(with_motion, "motion_stem") and hasattr(with_motion, "motion_weight")
    assert not hasattr(without, "motion_stem")
    assert not torch.allclose(with_motion(luminance, flow), with_motion(luminance, torch.zeros_like(flow)))
    assert torch.allclose(without(luminance, flow), without(luminance, None))
    # the learnable motion weight gets a gradient
    with_motion(luminance, flow).sum().backward()
    assert with_motion.motion_weight.grad is not None and with_motion.motion_weight.grad != 0


def test_colour_switch_changes_the_graph():
    luminance = torch.rand(1, 1, 32, 32) * 100
    ab = torch.randn(1, 2, 32, 32) * 30
    with_colour, without = tiny_encoder(use_colour=True), tiny_encoder(use_colour=False)
    assert hasattr(with_colour, "colour_stem") and not hasattr(without, "colour_stem")
    assert not torch.allclose(with_colour(luminance, None, ab), with_colour(luminance, None, None))
    # no colour (grey footage) is the same input as zero ab
    assert torch.allclose(
        with_colour(luminance, None, None), with_colour(luminance, None, torch.zeros_like(ab))
    )
    assert torch.allclose(without(luminance, None, ab), without(luminance, None, None))


def test_colour_dropout_zeroes_whole_frames():
    ab = torch.randn(400, 2, 4, 4) + 5.0
    assert torch.equal(drop_colour(ab, 0.0), ab)
    assert not drop_colour(ab, 1.0).any()
    dropped = drop_colour(ab, 0.5, torch.Generator().manual_seed(0))
    kept = dropped.flatten(1).any(dim=1)
    assert torch.equal(dropped[kept], ab[kept])  # a frame keeps all of its colour or none
    assert 150 < kept.sum() < 250


def test_motion_is_taken_relative_to_the_camera():
    # The camera's flow (pan, zoom, turn: an affine field) gives the same motion input as no flow at
    # all, and added to an object's own motion it changes nothing: only motion relative to the scene
    # counts.
    encoder = tiny_encoder()
    luminance = torch.rand(1, 1, 32, 32) * 100
    ys, xs = torch.meshgrid(torch.linspace(-16, 16, 32), torch.linspace(-16, 16, 32), indexing="ij")
    zoom, turn = 0.05, 0.03
    camera = torch.stack([3.0 + zoom * xs - turn * ys, -2.0 + turn * xs + zoom * ys])[None]
    assert torch.allclose(camera_motion(camera), camera, atol=1e-4)
    assert torch.allclose(encoder(luminance, camera), encoder(luminance, None), atol=1e-5)
    flow = torch.zeros(1, 2, 32, 32)
    flow[:, :, 8:16, 8:16] = 4.0  # an object moving on its own
    assert not torch.allclose(encoder(luminance, flow), encoder(luminance, None), atol=1e-4)
    assert torch.allclose(encoder(luminance, flow + camera), encoder(luminance, flow), atol=1e-4)


def test_every_frame_gets_the_same_kind_of_flow():
    # content moves by (-3, -2) px per frame, so each pixel was (+3, +2) px away a frame ago: frame 0
    # (the reverse of its flow to frame 1) says the same as the frames that have a previous frame
    video = translation_video(4, (3, 2), size=(64, 80))
    grey = [luminance_to_u8(torch.from_numpy(frame[..., 1].astype(np.float32) / 2.55)) for frame in video]
    flows = frame_flows(grey)
    assert len(flows) == 4
    for flow in flows:
        interior = flow[16:-16, 16:-16].reshape(-1, 2)
        np.testing.assert_allclose(np.median(interior, axis=0), [3.0, 2.0], atol=0.5)
    assert frame_flows(grey[:1]) == [None]
    # training computes the same flows
    luminance = torch.from_numpy(np.stack(grey)).float()[None, :, None] / 2.55
    trained = clip_flows(luminance)[0].permute(0, 2, 3, 1).numpy()
    for t in range(4):
        np.testing.assert_allclose(trained[t], flows[t], atol=1e-5)


def test_propagation_encodes_the_first_frame_with_its_motion():
    video = translation_video(3, (2, 1), size=(48, 64))
    calls = []

    class Recording:
        def reset(self):
            calls.clear()

        def __call__(self, frame, next_frame=None):
            calls.append(None if next_frame is None else next_frame.copy())
            return torch.ones(1, 12, 16)

    track(list(video), Recording(), points=np.array([[10.0, 10.0]]))
    assert len(calls) == 3 and np.array_equal(calls[0], video[1]) and calls[1] is None and calls[2] is None
    # the pipeline's extractor gives frame 0 the reverse of its flow to frame 1
    pipe = tiny_pipeline()
    extractor = pipe.feature_extractor()
    extractor.reset()
    features = extractor(video[0], next_frame=video[1])
    luminance = [extractor._lab(frame)[0] for frame in video[:2]]
    flow = frame_flows([luminance_to_u8(value) for value in luminance])[0]
    expected = pipe.encoder(luminance[0], torch.from_numpy(flow).permute(2, 0, 1)[None])[0]
    assert torch.allclose(features, expected)


def test_multi_cluster_sampler_balances_clusters():
    # 90% of the positions in one tight cluster, 10% in another: uniform sampling mirrors that,
    # the multi-cluster sampler draws both clusters about evenly.
    generator = torch.Generator().manual_seed(0)
    big = F.normalize(torch.tensor([1.0, 0.0, 0.0]) + 0.01 * torch.randn(900, 3, generator=generator), dim=1)
    small = F.normalize(
        torch.tensor([0.0, 1.0, 0.0]) + 0.01 * torch.randn(100, 3, generator=generator), dim=1
    )
    features = torch.cat([big, small]).T  # (C, N)
    indices, clusters = multi_cluster_sample(features, 200, cluster_counts=(2,), generator=generator)
    assert len(clusters) == len(indices)
    small_share = (indices >= 900).float().mean().item()
    assert 0.3 < small_share < 0.7
    uniform = uniform_sample(1000, 200, torch.device("cpu"), generator)
    assert (uniform >= 900).float().mean().item() < 0.2


def test_kmeans_separates_clear_clusters():
    points = F.normalize(
        torch.cat([torch.eye(3)[i].repeat(20, 1) + 0.01 * torch.randn(20, 3) for i in range(3)])
    )
    assignments, centroids = kmeans(points, 3, generator=torch.Generator().manual_seed(1))
    assert centroids.shape == (3, 3)
    for group in assignments.view(3, 20):
        assert (group == group[0]).all()
    assert len(assignments.unique()) == 3


def test_adaptive_weights_favour_moving_coherent_pixels():
    motion = torch.tensor([0.0, 0.0, 4.0, 4.0])
    attention = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    query_cluster = torch.tensor([0, 0, 0, 0])
    reference_cluster = torch.tensor([0, 1])
    weights = adaptive_weights(motion, attention, query_cluster, reference_cluster)
    assert torch.isclose(weights.mean(), torch.tensor(1.0))
    assert weights[2] > weights[0] and weights[2] > weights[3] > weights[1]


@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"use_motion": False},
        {"use_multi_cluster_sampler": False},
        {"use_adaptive_loss": False},
        {"use_colour": True},
    ],
)
def test_training_steps_decrease_the_loss_on_a_fixed_batch(switches):
    clip = (
        torch.from_numpy(translation_video(3, (3, 2), size=(48, 48))).permute(0, 3, 1, 2)[None].float() / 255
    )
    encoder = tiny_encoder(**switches)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=3e-3)

    def loss_now(seed: int) -> torch.Tensor:
        return clip_loss(encoder, clip, 0.5, 0.05, torch.Generator().manual_seed(seed))

    with torch.no_grad():
        before = loss_now(0).item()
    for _ in range(25):
        loss = loss_now(0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_now(0).item()
    assert after < 0.8 * before


def test_cli_trains_resumes_and_records_its_arguments(tmp_path):
    stills = tmp_path / "data" / "stills"
    stills.mkdir(parents=True)
    for seed in range(2):
        Image.fromarray(textured_image(48, 48, seed)).save(stills / f"still{seed}.png")
    tiny = ["--data", str(tmp_path / "data"), "--output-dir", str(tmp_path / "run"), "--no-backbone"]
    tiny += ["--size", "32", "--batch-size", "1", "--num-frames", "2", "--num-workers", "0"]
    train_main([*tiny, "--steps", "2", "--max-minutes", "1"])
    state = tmp_path / "run" / "training_state" / "step.json"
    assert json.loads(state.read_text())["step"] == 2
    train_main([*tiny, "--steps", "3", "--resume"])
    saved = json.loads(state.read_text())
    assert saved["step"] == 3
    assert saved["args"]["steps"] == 3 and saved["args"]["resume"] and saved["args"]["no_backbone"]
    loaded = CorrespondencePipeline.from_pretrained(tmp_path / "run")
    assert loaded.encoder.config.backbone is None


def test_switches_are_saved_with_the_model(tmp_path):
    pipe = tiny_pipeline(use_motion=False, use_adaptive_loss=False)
    pipe.save_pretrained(tmp_path)
    loaded = CorrespondencePipeline.from_pretrained(tmp_path)
    assert loaded.encoder.config.use_motion is False
    assert loaded.encoder.config.use_adaptive_loss is False
    assert loaded.encoder.config.use_multi_cluster_sampler is True
    for name, tensor in pipe.encoder.state_dict().items():
        assert torch.equal(tensor, loaded.encoder.state_dict()[name])


# --- the pipeline ----------------------------------------------------------------------------


def test_pipeline_output_shapes_and_types():
    video = translation_video(4, (2, 1), size=(48, 64))
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 1
    mask[32:44, 5:15] = 2
    points = np.array([[30.0, 20.0], [10.0, 40.0], [60.5, 2.5]])
    result = tiny_pipeline()(list(video), points=points, masks=mask)
    assert result.points.shape == (4, 3, 2) and result.masks.shape == (4, 48, 64)
    assert np.array_equal(result.points[0], points) and np.array_equal(result.masks[0], mask)
    assert set(np.unique(result.masks)) <= {0, 1, 2}
    assert result.masks.dtype == np.uint8
    points_only, masks_none, path = tiny_pipeline()(video, points=points, output_type="pt", return_dict=False)
    assert isinstance(points_only, torch.Tensor) and masks_none is None and path is None


def test_pipeline_writes_an_overlay_video(tmp_path):
    video = translation_video(5, (2, 0), size=(48, 64))
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:40] = True
    out = tmp_path / "tracked.mp4"
    result = tiny_pipeline()(video, masks=mask, output_path=out)
    assert result.video_path == str(out)
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert not np.array_equal(frames[0], video[0])  # the mask is drawn on it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Nothing to track"),
        ({"points": np.array([[10.0, 10.0], [80.0, 10.0]])}, "Point 2 (80, 10) lies outside frame 0"),
        ({"points": np.array([[-1.0, 3.0], [80.0, 10.0]])}, "Points 1 (-1, 3) and 2 (80, 10) lie outside"),
        ({"points": np.array([[10.0, np.nan]])}, "Point 1 (10, nan): x and y must be finite"),
        ({"points": np.array([1.0, 2.0, 3.0])}, "(N, 2)"),
        ({"points": np.zeros((0, 2))}, "(N, 2)"),
        ({"masks": np.zeros((20, 20), np.uint8)}, "masks has shape"),
        ({"masks": np.zeros((48, 64, 3), np.uint8)}, "not an RGB image"),
        ({"masks": np.zeros((48, 64), np.uint8)}, "masks is empty"),
        ({"masks": np.full((48, 64), 0.5)}, "integer label ids"),
        ({"points": np.array([[1.0, 2.0]]), "output_type": "pil"}, "output_type"),
        ({"points": np.array([[1.0, 2.0]]), "processing_size": 0}, "processing_size"),
        ({"points": np.array([[1.0, 2.0]]), "callback_on_frame_end": 3}, "callback_on_frame_end"),
    ],
)
def test_bad_inputs(kwargs, message, tmp_path):
    video = translation_video(3, (1, 0), size=(48, 64))
    out = tmp_path / "out.mp4"
    pipe = tiny_pipeline()
    escaped = message.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=escaped):
        pipe(video, output_path=out, **kwargs)
    assert list(tmp_path.iterdir()) == []
    # the same rule without a video or a model: an app checks its form before loading either
    with pytest.raises(ValueError, match=escaped):
        CorrespondencePipeline.check_inputs(48, 64, **kwargs)


def test_check_inputs_accepts_what_the_pipeline_tracks():
    check = CorrespondencePipeline.check_inputs  # a classmethod: no model needed
    mask = np.zeros((48, 64), bool)
    mask[5:9, 5:9] = True
    check(48, 64, points=[[0.0, 0.0], [63.5, 47.5]])
    check(48, 64, masks=mask, processing_size=32, output_type="pt", callback_on_frame_end=print)
    check(48, 64, points=np.array([[1, 2]]), masks=mask.astype(np.int64) * 7)


def test_callback_sees_each_frames_tracks():
    video = translation_video(4, (2, 1), size=(48, 64))
    mask = np.zeros((48, 64), np.int32)
    mask[10:30, 20:40] = 3
    points = np.array([[30.0, 20.0], [10.0, 40.0]])
    seen = []

    def on_frame_end(pipe, index, callback_kwargs):
        assert isinstance(pipe, CorrespondencePipeline)
        assert set(callback_kwargs) == set(pipe.callback_frame_outputs)
        seen.append((index, callback_kwargs["points"].copy(), callback_kwargs["masks"].copy()))

    pipe = tiny_pipeline()
    result = pipe(video, points=points, masks=mask, callback_on_frame_end=on_frame_end)
    assert [index for index, _, _ in seen] == [0, 1, 2, 3]
    for index, frame_points, frame_mask in seen:
        assert np.array_equal(frame_points, result.points[index])
        assert np.array_equal(frame_mask, result.masks[index]) and frame_mask.dtype == np.int32
    # without points, "points" is None
    pipe(video, masks=mask, callback_on_frame_end=lambda pipe, index, outputs: seen.append(outputs))
    assert seen[-1]["points"] is None and seen[-1]["masks"].shape == (48, 64)


def test_overlay_tints_objects_in_palette_order():
    frame = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 2
    drawn = draw_tracks(frame, None, mask)
    assert np.array_equal(drawn[16, 16], (0.5 * PALETTE[1]).round().astype(np.uint8))
    assert drawn[8, 8].tolist() == [255, 255, 255]  # the outline
    assert np.array_equal(drawn[0, 0], frame[0, 0])


# --- the encoder as a backbone of the other systems -------------------------------------------


def test_backbone_registry():
    assert available_backbones()[:3] == ("efficientnet-lite0", "dinov2", "mer-correspondence")
    config = dict(tiny_encoder().config)
    backbone = build_backbone("mer-correspondence", config)
    assert isinstance(backbone, CorrespondenceBackbone) and backbone.out_channels == {
        "stride8": 8,
        "stride16": 8,
    }
    # the state dict keys that saved feature encoders hold it under
    assert all(key.startswith("encoder.") for key in backbone.state_dict())
    features = backbone(torch.rand(1, 1, 32, 48) * 100)
    assert features["stride8"].shape == (1, 8, 4, 6) and features["stride16"].shape == (1, 8, 2, 3)
    with pytest.raises(ValueError, match="Unknown backbone 'resnet'"):
        build_backbone("resnet")
    # a fixed architecture has no config that comes with its weights
    assert pretrained_backbone_config("efficientnet-lite0") is None
    assert pretrained_backbone_config("dinov2", "facebook/dinov2-small") is None
    with pytest.raises(ValueError, match="Unknown backbone 'resnet'"):
        pretrained_backbone_config("resnet")
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("mer-correspondence")(lambda config: torch.nn.Identity())
    # the same class again (a module reload) is not a conflict
    assert register_backbone("mer-correspondence")(CorrespondenceBackbone) is CorrespondenceBackbone


def test_core_imports_no_system():
    # `pipelines/__init__.py` imports every system; load core as if it did not, to see what core itself
    # imports, and what a lookup of a system's backbone says then.
    script = (
        "import sys, types\n"
        "package = types.ModuleType('pipelines')\n"
        f"package.__path__ = [{str(REPO_ROOT / 'pipelines')!r}]\n"
        "sys.modules['pipelines'] = package\n"
        "import pipelines.core.backbones as backbones\n"
        "systems = ('appearance', 'colorization', 'correspondence', 'pseudo_video', 'tgan')\n"
        "loaded = [m for m in sys.modules if m.startswith('pipelines.') and m.split('.')[1] in systems]\n"
        "assert not loaded, loaded\n"
        "assert backbones.available_backbones() == ('efficientnet-lite0', 'dinov2')\n"
        "try:\n"
        "    backbones.build_backbone('mer-correspondence')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert "import pipelines.correspondence" in result.stdout


# --- the embedded model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded() -> CorrespondencePipeline:
    pipe = CorrespondencePipeline.from_pretrained(EMBEDDED)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_embedded_model_recovers_a_translation(embedded):
    # content moves by (-4, -2) px per frame; 8 frames
    video = translation_video(8, (4, 2), size=(128, 160))
    mask = np.zeros((128, 160), np.uint8)
    mask[40:90, 50:110] = 1
    points = np.array([[60.0, 50.0], [100.0, 80.0], [80.0, 64.0]])
    result = embedded(video, points=points, masks=mask)
    for t in range(1, 8):
        expected_mask = np.roll(mask, shift=(-2 * t, -4 * t), axis=(0, 1))
        intersection = ((result.masks[t] == 1) & (expected_mask == 1)).sum()
        union = ((result.masks[t] == 1) | (expected_mask == 1)).sum()
        assert intersection / union > 0.85, (t, intersection / union)
        error = np.abs(result.points[t] - (points - np.array([4.0 * t, 2.0 * t]))).max()
        assert error < 3.0, (t, error)


def test_encoder_is_a_colorization_backbone(tmp_path):
    from pipelines import ColorMNetPipeline
    from pipelines.colorization import ColorMNetDecoder, ColorMNetFeatureEncoder, ColorMNetValueEncoder

    trained = tiny_pipeline()
    trained.save_pretrained(tmp_path / "correspondence")
    config = dict(trained.encoder.config)
    # the architecture that comes with the weights, as the training scripts build the backbone from
    saved_config = pretrained_backbone_config("mer-correspondence", str(tmp_path / "correspondence"))
    public = {name: value for name, value in config.items() if not name.startswith("_")}
    assert {name: saved_config[name] for name in public} == json.loads(json.dumps(public))  # tuples: lists
    feature_encoder = ColorMNetFeatureEncoder(
        backbone="mer-correspondence", backbone_config=config, key_channels=8, feature_channels=8
    )
    feature_encoder.load_pretrained_backbone(str(tmp_path / "correspondence"))
    backbone_state = feature_encoder.frozen_backbone.encoder.state_dict()
    for name, tensor in trained.encoder.state_dict().items():
        assert torch.equal(backbone_state[name], tensor)
    pipe = ColorMNetPipeline(
        feature_encoder,
        ColorMNetValueEncoder(feature_channels=8, value_channels=4),
        ColorMNetDecoder(feature_channels=8, value_channels=4, skip_channels=(24, 16), hidden_channels=16),
        processing_size=32,
    )
    pipe.set_progress_bar_config(disable=True)
    video = translation_video(3, (1, 0), size=(32, 48))
    frames = pipe(list(video), exemplars=video[0], exemplar_frames=[0], output_type="np").frames
    assert frames.shape == (3, 32, 48, 3)
    pipe.save_pretrained(tmp_path / "colorization")
    loaded = ColorMNetPipeline.from_pretrained(tmp_path / "colorization")
    assert loaded.feature_encoder.config.backbone == "mer-correspondence"
    again = loaded(list(video), exemplars=video[0], exemplar_frames=[0], output_type="np").frames
    assert np.allclose(frames, again, atol=1e-5)
