"""ZeroToHeroPipeline: identity edits, edits followed through motion, bad input, save/load, outputs."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import make_colour_clip, make_tiny_zero_to_hero
from PIL import Image

from pipelines.appearance import (
    AppearanceFeatureEncoder,
    EditedFrameError,
    HeroRestorer,
    ZeroStageConfig,
    ZeroToHeroPipeline,
    finetune,
)
from pipelines.appearance.data import EDIT_KINDS, photometric_jitter, random_edit_function
from pipelines.appearance.finetune import panning_clip, proxy_clip, zero_stage_batch
from pipelines.appearance.modeling import colour_map_change, fit_colour_map, zero_stage_readout
from pipelines.appearance.pipeline import ASPECT_TOLERANCE
from pipelines.core.colour import apply_colour_lookup, fit_colour_lookup
from pipelines.core.matching import dense_displacement
from pipelines.core.metrics import psnr
from pipelines.core.video import VideoInfo, VideoReader, write_video
from pipelines.core.warp import pixel_grid, sample_at
from pipelines.correspondence.modeling import MotionCorrespondenceEncoder

REPO_ROOT = Path(__file__).resolve().parent.parent

CORRESPONDENCE_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "mer-correspondence"
EMBEDDED_MODEL = Path(__file__).resolve().parents[1] / "checkpoints" / "zero2hero-lite"


def make_trained_encoder_pipe(**config) -> ZeroToHeroPipeline:
    """The embedded correspondence encoder's weights (a local folder), an identity restorer."""
    encoder_config = dict(MotionCorrespondenceEncoder.load_config(CORRESPONDENCE_CHECKPOINT / "encoder"))
    encoder = AppearanceFeatureEncoder(backbone_config=encoder_config)
    encoder.load_pretrained_backbone(str(CORRESPONDENCE_CHECKPOINT))
    pipe = ZeroToHeroPipeline(encoder, HeroRestorer(hidden_channels=(8, 8, 8)), processing_size=96, **config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def blobs_to_blue(frames: np.ndarray) -> np.ndarray:
    """A per-pixel colour map (so it commutes with motion): strongly red pixels become blue."""
    frames = frames.astype(np.int16)
    red = (frames[..., 0] > frames[..., 1] + 40) & (frames[..., 0] > frames[..., 2] + 40)
    out = frames.copy()
    out[red] = frames[red][:, [2, 1, 0]]
    return out.astype(np.uint8)


def translating_clip(num_frames: int = 5, height: int = 64, width: int = 96, step: int = 3) -> np.ndarray:
    """A textured scene with a red disc and a green square, the camera panning `step` pixels a frame."""
    rng = np.random.default_rng(0)
    scene_width = width + step * num_frames
    yy, xx = np.mgrid[0:height, 0:scene_width]
    scene = np.stack([xx * 0.6 + 40, yy * 1.5 + 40, 120 + 40 * np.sin(xx / 5.0) * np.cos(yy / 7.0)], -1)
    scene += rng.normal(0, 6, scene.shape)
    scene[(yy - 30) ** 2 + (xx - 40) ** 2 < 14**2] = (220, 40, 40)
    scene[10:30, 70:95] = (40, 200, 60)
    scene = scene.clip(0, 255).astype(np.uint8)
    return np.stack([scene[:, t * step : t * step + width] for t in range(num_frames)])


# -- the Zero stage's parts --------------------------------------------------------------------------


def test_colour_map_of_an_unchanged_frame_is_zero_and_an_affine_edit_is_recovered():
    torch.manual_seed(0)
    original = torch.rand(1, 3, 32, 48)
    assert fit_colour_map(original, original, stride=4, radius=2, eps=1e-3).abs().max() == 0
    matrix = torch.tensor([[0.2, 0.7, 0.1], [0.1, 0.3, 0.6], [0.6, 0.1, 0.3]])
    edited = torch.einsum("ij,bjhw->bihw", matrix, original) + 0.05
    coefficients = fit_colour_map(original, edited, stride=4, radius=2, eps=1e-6)
    assert coefficients.shape == (1, 12, 8, 12)
    per_pixel = torch.nn.functional.interpolate(coefficients, size=original.shape[-2:], mode="bilinear")
    recovered = (original + colour_map_change(per_pixel, original)).clamp(0, 1)
    np.testing.assert_allclose(recovered, edited.clamp(0, 1), atol=2e-3)


def test_readout_follows_the_best_match_and_fuses_the_previous_frame():
    torch.manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(8, 4, 4), dim=0)
    values = torch.arange(16.0).view(1, 4, 4)
    shifted_query = torch.roll(keys, shifts=1, dims=2)  # each query is the anchor key one column left
    config = ZeroStageConfig(top_k=4, temperature=0.01)
    readout = zero_stage_readout(shifted_query, keys, values, config)
    np.testing.assert_allclose(readout, torch.roll(values, shifts=1, dims=2), atol=1e-3)
    # A previous frame that matches as well, with other values, shares the weight equally.
    previous_values = torch.full_like(values, -10.0)
    with_previous = zero_stage_readout(shifted_query, keys, values, config, shifted_query, previous_values)
    np.testing.assert_allclose(with_previous, (readout - 10.0) / 2, atol=1e-3)


@pytest.mark.parametrize("method", ["dis", "block"])
def test_dense_matching_recovers_a_subpixel_shift(method):
    rng = np.random.default_rng(0)
    texture = torch.from_numpy(rng.random((1, 1, 24, 32)).astype(np.float32))
    scene = torch.nn.functional.interpolate(texture, size=(96, 128), mode="bicubic", align_corners=False)
    scene = scene.clamp(0, 1)
    shift = torch.tensor([2.4, -1.3]).view(1, 2, 1, 1)
    query = sample_at(scene, pixel_grid(96, 128) + shift)  # query(x) = scene(x + shift)
    displacement = dense_displacement(query, scene, method)
    interior = displacement[..., 12:-12, 12:-12]
    np.testing.assert_allclose(interior.median(-1).values.median(-1).values[0], shift.view(2), atol=0.15)


def test_untrained_restorer_returns_the_zero_stage_and_any_restorer_works_only_near_edits():
    torch.manual_seed(0)
    target = torch.rand(1, 3, 40, 72)
    zero = target.clone()
    zero[..., 5:12, 5:12] = 1.0 - zero[..., 5:12, 5:12]  # an edit, top left
    support = torch.ones(1, 1, 40, 72)
    support[..., 8:14, 14:20] = 0.0  # a fallback next to the edit
    looked_up, lookup_error = torch.rand(1, 3, 40, 72), torch.rand(1, 1, 40, 72)
    assert torch.equal(
        HeroRestorer(hidden_channels=(4, 4, 4))(zero, target, support, looked_up, lookup_error), zero
    )
    restorer = HeroRestorer(hidden_channels=(4, 4, 4, 4), edit_reach=17)
    torch.nn.init.normal_(restorer.head.weight, std=0.1)
    torch.nn.init.constant_(restorer.lookup_gain, 0.05)
    restored = restorer(zero, target, support, looked_up, lookup_error)
    assert restored.shape == zero.shape
    assert (restored[..., 8:14, 14:20] - zero[..., 8:14, 14:20]).abs().max() > 1e-3  # near the edit
    untouched = torch.ones(40, 72, dtype=torch.bool)
    untouched[:20, :20] = False  # the edit at rows/columns 5..11, dilated by 8
    assert torch.equal(restored[..., untouched], zero[..., untouched])
    # An unedited frame (no change anywhere) passes through, whatever the support and the lookup say.
    assert torch.equal(restorer(target, target, torch.zeros_like(support), looked_up, lookup_error), target)


def test_colour_lookup_carries_a_global_colour_function_to_other_content_and_is_zero_for_no_edit():
    torch.manual_seed(0)
    anchor, other = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 48, 80)  # unrelated content, same colours

    def grade(rgb: torch.Tensor) -> torch.Tensor:  # a smooth global colour function
        return torch.stack([rgb[:, 0] ** 0.7, 0.8 * rgb[:, 1] + 0.1, 1 - rgb[:, 2] ** 2], dim=1)

    lookup = fit_colour_lookup(anchor, grade(anchor))
    assert lookup.shape == (1, 3, 17, 17, 17)
    error = (apply_colour_lookup(lookup, other) - grade(other)).abs().mean()
    assert error < 0.01 < (other - grade(other)).abs().mean()
    assert torch.equal(apply_colour_lookup(fit_colour_lookup(anchor, anchor), other), other)


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_random_edits_and_proxy_clips(kind):
    torch.manual_seed(0)
    image = torch.from_numpy(make_colour_clip(1, 80, 96)[0]).permute(2, 0, 1).float() / 255
    edited = random_edit_function(image, random.Random(1), kind)(image)
    assert edited.shape == image.shape and 0 <= edited.min() and edited.max() <= 1
    assert (edited - image).abs().mean() > 1e-3
    original_clip, edited_clip = proxy_clip(image, edited, num_frames=3, size=64)
    assert original_clip.shape == edited_clip.shape == (3, 3, 64, 64)
    batch = zero_stage_batch(
        make_tiny_zero_to_hero().feature_encoder, original_clip[None], edited_clip[None], ZeroStageConfig()
    )
    assert batch.zero.shape == batch.targets.shape == batch.truths.shape == (2, 3, 64, 64)
    assert batch.support.shape == (2, 1, 64, 64) and 0 <= batch.support.min() and batch.support.max() <= 1
    assert batch.looked_up.shape == (2, 3, 64, 64) and batch.lookup_error.shape == (2, 1, 64, 64)


@pytest.mark.parametrize("clip", ["proxy", "panning"])
def test_proxy_clips_cut_each_frame_from_its_own_still_and_edits_follow_the_light(clip):
    # Frame t of a clip comes from still t (the anchor's image under frame t's light): flat stills of
    # different colours show which still each frame was cut from.
    colours = torch.tensor([[0.2, 0.5, 0.7], [0.6, 0.1, 0.3], [0.9, 0.8, 0.2]])
    stills = colours[:, :, None, None].expand(-1, -1, 60, 80)
    edit = random_edit_function(stills[0], random.Random(0), "grade")
    editeds = torch.stack([edit(still) for still in stills])
    if clip == "proxy":
        original_clip, edited_clip = proxy_clip(stills, editeds, num_frames=3, size=32)
    else:
        rng = random.Random(1)
        original_clip, edited_clip = panning_clip(stills, editeds, num_frames=3, size=32, rng=rng)
    torch.testing.assert_close(original_clip, stills[:, :, :32, :32])
    torch.testing.assert_close(edited_clip, editeds[:, :, :32, :32])
    # The edit is one function of colour: under other light it still changes the frame, differently.
    image = torch.rand(3, 40, 40)
    jittered = photometric_jitter(image, random.Random(2))
    assert 0.01 < (jittered - image).abs().mean() < 0.2
    assert (edit(jittered) - edit(image)).abs().mean() > 0.01


def test_panning_clip_moves_original_and_edit_together_and_brings_new_content_into_view():
    height, width = 120, 160
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    image = torch.stack([xx, yy, xx * yy])  # every pixel different: any move shows
    edited = image.flip(0)  # any edit: the clips must move it exactly as they move the original
    original_clip, edited_clip = panning_clip(image, edited, num_frames=4, size=48, rng=random.Random(3))
    assert original_clip.shape == edited_clip.shape == (4, 3, 48, 48)
    torch.testing.assert_close(edited_clip, original_clip.flip(1))
    # The window travels 15-40 % of its side: the last frame is not the first.
    assert (original_clip[-1] - original_clip[0]).abs().mean() > 0.02


# -- the pipeline ------------------------------------------------------------------------------------


def test_identical_edited_frame_gives_the_input():
    pipe = make_tiny_zero_to_hero()
    clip = make_colour_clip(num_frames=5, height=50, width=70)
    result = pipe(video=list(clip), edited_frame=clip[2], frame_index=2, output_type="np", finetune_steps=2)
    np.testing.assert_allclose(result.frames, clip / 255.0, atol=1.5 / 255)


def test_colour_edit_on_a_translating_clip_is_followed_and_unedited_pixels_kept():
    clip = translating_clip()
    truth = blobs_to_blue(clip)
    pipe = make_trained_encoder_pipe()
    frames = pipe(video=list(clip), edited_frame=truth[0], frame_index=0, output_type="pil").frames
    output = np.stack([np.asarray(frame) for frame in frames])
    np.testing.assert_array_equal(output[0], truth[0])
    for index in range(1, len(clip)):
        assert psnr(output[index], truth[index]) > psnr(clip[index], truth[index]) + 10
        assert psnr(output[index], truth[index]) > 30
    unedited = (truth == clip).all(axis=-1)
    unedited[:, :, :12] = False  # new content entering from the right is matched too; the left edge too
    error = (output.astype(float) - clip)[unedited] / 255.0
    assert 10 * np.log10(1 / np.mean(error**2)) >= 35


def test_embedded_model_carries_an_edit_keeps_unedited_pixels_and_passes_an_unedited_video_through():
    pipe = ZeroToHeroPipeline.from_pretrained(EMBEDDED_MODEL)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.finetune_steps > 0  # the shipped default fine-tunes the restorer per video
    clip = translating_clip()
    truth = blobs_to_blue(clip)
    # A few fine-tuning steps: the shipped default takes about half a minute on a CPU.
    output = pipe(video=clip, edited_frame=truth[0], finetune_steps=4, output_type="np").frames
    output = (output * 255).round().astype(np.uint8)
    for index in range(1, len(clip)):
        assert psnr(output[index], truth[index]) > 30
    unedited = (truth == clip).all(axis=-1)
    unedited[:, :, :12] = False
    error = (output.astype(float) - clip)[unedited] / 255.0
    assert 10 * np.log10(1 / np.mean(error**2)) >= 35
    same = pipe(video=clip, edited_frame=clip[0], finetune_steps=4, output_type="np").frames
    np.testing.assert_array_equal((same * 255).round().astype(np.uint8), clip)


def test_anchor_in_the_middle_takes_the_edit_exactly_and_the_frames_before_follow():
    clip = translating_clip(num_frames=4)
    truth = blobs_to_blue(clip)
    pipe = make_trained_encoder_pipe()
    output = pipe(video=clip, edited_frame=truth[2], frame_index=2, output_type="np").frames
    np.testing.assert_array_equal((output[2] * 255).round().astype(np.uint8), truth[2])
    assert psnr(output[0], truth[0]) > psnr(clip[0], truth[0]) + 10


def test_bad_inputs_raise_clear_errors():
    pipe = make_tiny_zero_to_hero()
    clip = make_colour_clip(num_frames=3, height=48, width=64)
    with pytest.raises(EditedFrameError, match="out of range.*3 frames"):
        pipe(video=clip, edited_frame=clip[0], frame_index=3)
    with pytest.raises(EditedFrameError, match="out of range"):
        pipe(video=clip, edited_frame=clip[0], frame_index=-1)
    with pytest.raises(EditedFrameError, match="must be an integer"):
        pipe(video=clip, edited_frame=clip[0], frame_index=1.0)
    with pytest.raises(EditedFrameError, match="No edited frame"):
        pipe(video=clip)
    with pytest.raises(EditedFrameError, match="aspect"):
        pipe(video=clip, edited_frame=np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="finetune_steps"):
        pipe(video=clip, edited_frame=clip[0], finetune_steps=-1)
    with pytest.raises(ValueError, match="output_type"):
        pipe(video=clip, edited_frame=clip[0], output_type="jpg")


def test_edited_frame_of_another_size_with_the_same_aspect_is_resized_with_a_warning():
    pipe = make_tiny_zero_to_hero()
    clip = make_colour_clip(num_frames=3, height=48, width=64)
    bigger = np.asarray(Image.fromarray(clip[0]).resize((128, 96), Image.BILINEAR))
    with pytest.warns(UserWarning, match="resizing the edited frame"):
        frames = pipe(video=clip, edited_frame=Image.fromarray(bigger), output_type="np").frames
    assert frames.shape == (3, 48, 64, 3)
    assert psnr(frames[0], clip[0]) > 25  # the resized edit of an unedited frame is close to it


def test_check_inputs_refuses_each_bad_input_with_a_clear_error_before_any_frame_is_read():
    pipe = make_tiny_zero_to_hero()
    info = VideoInfo(width=64, height=48, fps=25.0, num_frames=10, has_audio=False, path=None)
    frame = np.zeros((48, 64, 3), np.uint8)
    assert pipe.check_inputs(info, frame, frame_index=9) == []  # all good: no warning
    with pytest.raises(EditedFrameError, match=r"frame_index 10 is out of range: the video has 10 frames"):
        pipe.check_inputs(info, frame, frame_index=10)
    with pytest.raises(EditedFrameError, match=r"only the first 4 are processed \(max_frames=4\).*0\.\.3"):
        pipe.check_inputs(info, frame, frame_index=5, max_frames=4)
    with pytest.raises(EditedFrameError, match="out of range"):
        pipe.check_inputs(info, frame, frame_index=-1)
    for index in (1.0, "1", True, None):
        with pytest.raises(EditedFrameError, match="frame_index must be an integer"):
            pipe.check_inputs(info, frame, frame_index=index)
    assert pipe.check_inputs(info, frame, frame_index=np.int64(3)) == []
    with pytest.raises(EditedFrameError, match="No edited frame given.*frame 2"):
        pipe.check_inputs(info, None, frame_index=2)
    with pytest.raises(EditedFrameError, match=r"48x48 \(aspect 1.000\) but the video is 64x48") as raised:
        pipe.check_inputs(info, np.zeros((48, 48, 3), np.uint8))
    assert raised.value.argument == "edited_frame"  # the field an app asks the user to fix
    for edited, index in ((None, 2), (frame, 10), (frame, 1.0)):
        with pytest.raises(EditedFrameError) as raised:
            pipe.check_inputs(info, edited, frame_index=index)
        assert raised.value.argument == ("edited_frame" if edited is None else "frame_index")
    with pytest.raises(ValueError, match="finetune_steps must be 0"):
        pipe.check_inputs(info, frame, finetune_steps=-1)
    with pytest.raises(ValueError, match="output_type"):
        pipe.check_inputs(info, frame, output_type="jpg")
    assert pipe.check_inputs(info, frame, output_type=None) == []  # frames streamed to a file only
    # A class method: an app checks a request before it loads the model.
    with pytest.raises(EditedFrameError, match="out of range"):
        ZeroToHeroPipeline.check_inputs(info, frame, frame_index=10)
    assert ZeroToHeroPipeline.check_inputs(info, frame, frame_index=9) == []


def test_check_inputs_warns_of_an_edited_frame_that_will_be_resized(tmp_path):
    pipe = make_tiny_zero_to_hero()
    info = VideoInfo(width=640, height=480, fps=25.0, num_frames=3, has_audio=False, path=None)
    # Another size of the same aspect, or an aspect off by less than the tolerance (an editor's rounding).
    for width, height in ((320, 240), (643, 480)):
        assert abs((width / height) / (640 / 480) - 1) <= ASPECT_TOLERANCE
        (message,) = pipe.check_inputs(info, np.zeros((height, width, 3), np.uint8))
        assert message == (
            f"The edited frame is {width}x{height} and the video 640x480: resizing the edited frame to the "
            "video's size."
        )
    # A path is loaded to read its size, as the pipeline loads it.
    path = tmp_path / "edited.png"
    Image.new("RGB", (320, 240)).save(path)
    assert len(pipe.check_inputs(info, path)) == 1 and len(pipe.check_inputs(info, Image.open(path))) == 1
    with pytest.raises(EditedFrameError, match="aspect"):
        pipe.check_inputs(info, np.zeros((480, 660, 3), np.uint8))  # 3 % wider
    # The pipeline gives the same message as a warning, and the same error.
    clip = make_colour_clip(num_frames=2, height=48, width=64)
    with pytest.warns(UserWarning) as caught:
        pipe(video=clip, edited_frame=np.zeros((96, 128, 3), np.uint8), output_type="np")
    info = VideoReader(clip).info
    assert [str(w.message) for w in caught] == pipe.check_inputs(info, np.zeros((96, 128, 3), np.uint8))
    assert caught[0].filename == __file__  # points at the caller's line


def test_save_load_round_trip_gives_identical_output(tmp_path):
    pipe = make_tiny_zero_to_hero(top_k=8, finetune_steps=0)
    pipe.save_pretrained(tmp_path)
    loaded = ZeroToHeroPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.top_k == 8 and loaded.zero_stage_config().top_k == 8
    clip = make_colour_clip(num_frames=3, height=48, width=64)
    edited = blobs_to_blue(clip[:1])[0] // 2 + 60
    first = pipe(video=clip, edited_frame=edited, output_type="np").frames
    second = loaded(video=clip, edited_frame=edited, output_type="np").frames
    np.testing.assert_array_equal(first, second)
    assert np.abs(first[1:] - clip[1:] / 255.0).max() > 0.05  # the edit did reach the other frames


def test_output_types_tuple_and_mp4(tmp_path):
    pipe = make_tiny_zero_to_hero()
    clip = make_colour_clip(num_frames=3, height=50, width=70)  # odd multiples: not multiples of 16
    edited = 255 - clip[0]
    pil = pipe(video=clip, edited_frame=edited).frames
    assert len(pil) == 3 and pil[0].size == (70, 50)
    array = pipe(video=clip, edited_frame=edited, output_type="np").frames
    assert array.shape == (3, 50, 70, 3) and array.dtype == np.float32
    tensor = pipe(video=clip, edited_frame=edited, output_type="pt").frames
    assert tuple(tensor.shape) == (3, 3, 50, 70)
    frames, path = pipe(video=clip, edited_frame=edited, output_type="np", return_dict=False)
    np.testing.assert_array_equal(frames, array)
    assert path is None
    result = pipe(video=clip, edited_frame=edited, output_path=tmp_path / "out.mp4")
    assert result.frames is None and Path(result.video_path).is_file()
    assert len(list(VideoReader(result.video_path))) == 3


def test_finetuning_is_deterministic_and_leaves_the_pipeline_restorer_unchanged():
    # A tiny fallback threshold: the Zero stage falls back everywhere, so the restorer's gate is open.
    pipe = make_tiny_zero_to_hero(random_head=False, fallback_threshold=1e-9)
    clip = translating_clip(num_frames=3, height=48, width=64)
    truth = blobs_to_blue(clip)
    before = {name: tensor.clone() for name, tensor in pipe.restorer.state_dict().items()}
    tuned = pipe.finetune_restorer(clip[0], truth[0], steps=3, size=48, seed=1)
    again = pipe.finetune_restorer(clip[0], truth[0], steps=3, size=48, seed=1)
    for name, tensor in pipe.restorer.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert not torch.equal(tuned.head.weight, pipe.restorer.head.weight)
    assert torch.equal(tuned.head.weight, again.head.weight)


def test_finetuning_runs_from_finetune_py_and_the_pipeline_call_uses_it(monkeypatch):
    pipe = make_tiny_zero_to_hero(random_head=False, fallback_threshold=1e-9)
    clip = translating_clip(num_frames=3, height=48, width=64)
    truth = blobs_to_blue(clip)
    tuned = finetune.finetune_restorer(
        pipe.feature_encoder,
        pipe.restorer,
        clip[0],
        truth[0],
        pipe.zero_stage_config(),
        steps=3,
        size=48,
        lr=pipe.config.finetune_lr,
        seed=1,
    )
    assert tuned is not pipe.restorer and tuned.training is False
    assert not torch.equal(tuned.head.weight, pipe.restorer.head.weight)
    method = pipe.finetune_restorer(clip[0], truth[0], steps=3, size=48, seed=1)
    for name, tensor in tuned.state_dict().items():
        assert torch.equal(tensor, method.state_dict()[name]), name
    # `__call__` fine-tunes through finetune.py, seeded by the generator.
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return finetune_restorer(*args, **kwargs)

    finetune_restorer = finetune.finetune_restorer
    monkeypatch.setattr(finetune, "finetune_restorer", recording)
    generator = torch.Generator().manual_seed(7)
    pipe(video=clip, edited_frame=truth[0], finetune_steps=2, generator=generator, output_type="np")
    assert len(calls) == 1 and calls[0]["seed"] == 7 and calls[0]["size"] == pipe.config.finetune_size
    pipe(video=clip, edited_frame=truth[0], finetune_steps=0, output_type="np")
    pipe(video=clip, edited_frame=truth[0], finetune_steps=2, use_restorer=False, output_type="np")
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("height", "width"), [(80, 112), (360, 640), (72, 400)], ids=["small", "larger", "panorama"]
)
def test_finetuning_crops_have_one_size_whatever_the_video_resolution(monkeypatch, height, width):
    """Fine-tuning's cost must not grow with the video: every proxy pair is cut from a crop of 2 * size
    pixels square (here 64) and the Zero stage runs on size x size clips (32), for a small video, a
    larger one and a panorama alike (all with a short side over 2 * size)."""
    pipe = make_tiny_zero_to_hero(random_head=False)
    anchor = make_colour_clip(num_frames=1, height=height, width=width)[0]
    crops, clips = [], []

    def recording_proxy_clip(original, edited, *args):
        crops.append((tuple(original.shape), tuple(edited.shape)))
        return random_proxy_clip(original, edited, *args)

    def recording_zero_stage_batch(encoder, originals, editeds, config):
        clips.append((tuple(originals.shape), tuple(editeds.shape)))
        return zero_stage_batch(encoder, originals, editeds, config)

    random_proxy_clip, zero_stage_batch = finetune.random_proxy_clip, finetune.zero_stage_batch
    monkeypatch.setattr(finetune, "random_proxy_clip", recording_proxy_clip)
    monkeypatch.setattr(finetune, "zero_stage_batch", recording_zero_stage_batch)
    config = pipe.zero_stage_config()
    finetune.finetune_restorer(
        pipe.feature_encoder, pipe.restorer, anchor, 255 - anchor, config, steps=2, size=32, batch_size=2
    )
    assert crops == [((3, 64, 64), (3, 64, 64))] * 4  # 2 steps x 2 pairs
    assert clips == [((2, 3, 3, 32, 32), (2, 3, 3, 32, 32))] * 2


def test_callback_on_finetune_step_end_reports_each_step_before_the_frames():
    pipe = make_tiny_zero_to_hero(random_head=False)
    clip = make_colour_clip(num_frames=3, height=48, width=64)
    events = []

    def on_step(pipeline, step, callback_kwargs):
        assert pipeline is pipe and set(callback_kwargs) == set(pipe.callback_finetune_outputs)
        assert isinstance(callback_kwargs["loss"], float) and np.isfinite(callback_kwargs["loss"])
        events.append(("step", step, callback_kwargs["num_steps"]))

    def on_frame(pipeline, frame_index, callback_kwargs):
        events.append(("frame", frame_index))

    callbacks = {"callback_on_finetune_step_end": on_step, "callback_on_frame_end": on_frame}
    pipe(clip, 255 - clip[0], finetune_steps=3, output_type="np", **callbacks)
    assert events == [("step", step, 3) for step in range(3)] + [("frame", index) for index in range(3)]
    # Nothing fine-tuned, no steps reported.
    events.clear()
    pipe(clip, 255 - clip[0], finetune_steps=0, output_type="np", **callbacks)
    assert events == [("frame", index) for index in range(3)]


def test_callback_on_frame_end_gets_each_output_frame():
    pipe = make_tiny_zero_to_hero()
    clip = make_colour_clip(num_frames=4, height=48, width=64)
    seen = []

    def callback(pipeline, frame_index, callback_kwargs):
        assert pipeline is pipe and set(callback_kwargs) == set(pipe.callback_frame_outputs) == {"frame"}
        seen.append((frame_index, callback_kwargs["frame"].copy()))

    edited = 255 - clip[1]
    frames = pipe(clip, edited, frame_index=1, output_type="np", callback_on_frame_end=callback).frames
    assert [index for index, _ in seen] == [0, 1, 2, 3]
    for (_, frame), output in zip(seen, frames, strict=True):
        assert frame.dtype == np.uint8 and frame.shape == (48, 64, 3)
        np.testing.assert_array_equal(frame, (output * 255).round().astype(np.uint8))
    np.testing.assert_array_equal(seen[1][1], edited)  # the anchor: the user's edit exactly


def test_cli_transfers_an_edit_and_reports_bad_input_without_a_traceback(tmp_path):
    folder = tmp_path / "tiny"
    make_tiny_zero_to_hero(finetune_steps=0).save_pretrained(folder)
    clip = translating_clip(num_frames=4)
    source = tmp_path / "clip.mp4"
    write_video(clip, source, fps=4)
    edited = tmp_path / "edited.png"
    Image.fromarray(blobs_to_blue(clip[:1])[0]).save(edited)

    def run_cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pipelines", "transfer", str(source), "--edited-frame", str(edited)]
        return subprocess.run(
            [*command, *args, "--model", str(folder)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    out = tmp_path / "out.mp4"
    result = run_cli("-o", str(out))
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == clip.shape[1:]
    bad = tmp_path / "bad.mp4"
    result = run_cli("--frame-index", "9", "-o", str(bad))
    assert result.returncode == 2 and "error: frame_index 9 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
    assert not bad.exists()
