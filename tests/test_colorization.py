"""ColorMNetPipeline: save/load, luminance kept, streaming, exemplars, memory bounds, the stepper shared
with training, check_inputs and bad input."""

from __future__ import annotations

import tempfile

import cv2
import numpy as np
import pytest
import torch
from conftest import make_colour_clip, make_tiny_colormnet, write_truncated_mkv
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage import data as skimage_data

from pipelines.colorization import (
    ColorizationPipelineOutput,
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetPipeline,
    ColorMNetStepper,
    ColorMNetValueEncoder,
    ExemplarError,
    MemoryConfig,
    describe_placement,
)
from pipelines.colorization.modeling import colorize_step, copy_confident_matches, frame_memory
from pipelines.colorization.train import clip_loss
from pipelines.core.colour import compose_lab, frame_to_tensor, luminance_and_ab, tensor_to_frame
from pipelines.core.flow import luminance_flow
from pipelines.core.reanchoring import MIN_ALIGNMENT_INLIERS
from pipelines.core.resize import processing_shape
from pipelines.core.video import VideoInputError, VideoReader, write_video
from pipelines.core.warp import pixel_grid, sample_at


def lab_of(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 or float in [0, 1] -> Lab (T, 3, H, W)."""
    tensor = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    if np.asarray(frames).dtype == np.uint8:
        tensor = tensor / 255.0
    rgb = tensor.permute(0, 3, 1, 2)
    luminance, ab = luminance_and_ab(rgb)
    return torch.cat([luminance, ab], dim=1)


def public_config(config) -> dict:
    """Config entries a user set (tuples come back from JSON as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if not k.startswith("_")}


@pytest.mark.parametrize(
    "component",
    [
        lambda: ColorMNetFeatureEncoder(key_channels=8, feature_channels=8, light_channels=(4, 4, 8)),
        lambda: ColorMNetValueEncoder(feature_channels=8, value_channels=4),
        lambda: ColorMNetDecoder(
            feature_channels=8, value_channels=4, skip_channels=(4, 4), hidden_channels=16
        ),
    ],
)
def test_component_round_trip(component, tmp_path):
    model = component()
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    assert public_config(loaded.config) == public_config(model.config)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_pipeline_round_trip_gives_identical_output(tiny_pipe, colour_clip, tmp_path):
    tiny_pipe.save_pretrained(tmp_path)
    loaded = ColorMNetPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.processing_size == 64
    first = tiny_pipe(colour_clip, exemplars=colour_clip[0], output_type="np").frames
    second = loaded(colour_clip, exemplars=colour_clip[0], output_type="np").frames
    np.testing.assert_array_equal(first, second)


def test_output_keeps_input_luminance_and_resolution(tiny_pipe):
    clip = make_colour_clip(num_frames=4, height=50, width=70)  # not multiples of 16
    grey = clip.mean(axis=-1, keepdims=True).repeat(3, axis=-1).astype(np.uint8)
    frames = tiny_pipe(grey, exemplars=clip[0], output_type="np").frames
    assert frames.shape == (4, 50, 70, 3)
    out_lab, in_lab = lab_of(frames), lab_of(grey)
    # Only ab is predicted; L differs by uint8 rounding and gamut clipping alone.
    assert (out_lab[:, 0] - in_lab[:, 0]).abs().mean() < 0.6
    assert out_lab[:, 1:].abs().mean() > 1.0  # and there is colour


def test_output_types_and_tuple(tiny_pipe, colour_clip):
    pil = tiny_pipe(colour_clip, exemplars=colour_clip[0]).frames
    assert isinstance(pil[0], Image.Image) and len(pil) == len(colour_clip)
    pt = tiny_pipe(colour_clip, exemplars=colour_clip[0], output_type="pt").frames
    assert pt.shape == (len(colour_clip), 3, 48, 64)
    frames, path = tiny_pipe(colour_clip, exemplars=colour_clip[0], output_type="np", return_dict=False)
    assert frames.shape[0] == len(colour_clip) and path is None
    with pytest.raises(ValueError, match="output_type"):
        tiny_pipe(colour_clip, exemplars=colour_clip[0], output_type="latent")


def test_streaming_folder_and_list_inputs_agree(tiny_pipe, colour_clip, tmp_path):
    for index, frame in enumerate(colour_clip):
        Image.fromarray(frame).save(tmp_path / f"frame{index}.png")
    from_folder = tiny_pipe(str(tmp_path), exemplars=colour_clip[0], output_type="np").frames
    from_list = tiny_pipe(
        [Image.fromarray(f) for f in colour_clip], exemplars=colour_clip[0], output_type="np"
    ).frames
    from_array = tiny_pipe(colour_clip, exemplars=colour_clip[0], output_type="np").frames
    np.testing.assert_array_equal(from_folder, from_list)
    np.testing.assert_array_equal(from_list, from_array)


def test_keyframe_exemplars_colour_their_frames(tiny_pipe, colour_clip):
    exemplars = [colour_clip[0], colour_clip[3]]
    frames = tiny_pipe(colour_clip, exemplars=exemplars, exemplar_frames=[0, 3], output_type="np").frames
    out_lab, true_lab = lab_of(frames), lab_of(colour_clip)
    for index in (0, 3):  # a keyframe takes its exemplar's colour
        assert (out_lab[index, 1:] - true_lab[index, 1:]).abs().mean() < 1.5
    # A free reference plus a keyframe mixes too.
    frames = tiny_pipe(colour_clip, exemplars=exemplars, exemplar_frames=[None, 3], output_type="np").frames
    assert (lab_of(frames)[3, 1:] - true_lab[3, 1:]).abs().mean() < 1.5


def test_memory_stays_within_caps_over_a_long_clip(tiny_pipe):
    clip = make_colour_clip(num_frames=40, height=32, width=48, seed=3)
    caps = dict(
        memory_every=1,
        max_working_frames=3,
        min_working_frames=1,
        num_prototypes=5,
        max_long_term_elements=12,
    )
    height, width = processing_shape(32, 48, tiny_pipe.config.processing_size)
    seen = []

    def check(pipe, index, callback_kwargs):
        assert set(callback_kwargs) == set(ColorMNetPipeline.callback_frame_outputs)
        memory = callback_kwargs["memory"]
        assert memory.num_working_frames <= caps["max_working_frames"]
        assert memory.num_long_term_elements <= caps["max_long_term_elements"]
        assert memory.num_permanent_elements == (height // 8) * (width // 8)  # one exemplar at stride 8
        seen.append((memory.num_working_frames, memory.num_long_term_elements))

    tiny_pipe(clip, exemplars=clip[0], output_type="np", callback_on_frame_end=check, **caps)
    assert len(seen) == 40
    assert max(long for _, long in seen) == caps["max_long_term_elements"]  # it filled up and was capped


def test_callback_gets_each_coloured_frame(tiny_pipe, colour_clip):
    seen = {}

    def keep(pipe, index, callback_kwargs):
        assert pipe is tiny_pipe
        seen[index] = callback_kwargs["frame"]

    frames = tiny_pipe(
        colour_clip, exemplars=colour_clip[0], output_type="np", callback_on_frame_end=keep
    ).frames
    assert sorted(seen) == list(range(len(colour_clip)))
    coloured = np.stack([seen[index] for index in range(len(colour_clip))])
    assert coloured.dtype == np.uint8
    np.testing.assert_array_equal(coloured, (frames * 255).round().astype(np.uint8))


def test_open_video_reader_is_used_without_reopening_the_file(tiny_pipe, colour_clip, tmp_path, monkeypatch):
    source = tmp_path / "clip.mp4"
    write_video(colour_clip, source, fps=10)
    from_path = tiny_pipe(str(source), exemplars=colour_clip[0], max_frames=4, output_type="np").frames
    reader = VideoReader(source)  # what an app has opened to check the upload
    monkeypatch.setattr(VideoReader, "_init_file", lambda *args: pytest.fail("the file was opened again"))
    from_reader = tiny_pipe(reader, exemplars=colour_clip[0], max_frames=4, output_type="np").frames
    np.testing.assert_array_equal(from_reader, from_path)
    assert len(from_reader) == 4 and reader.max_frames is None  # the caller's reader is left as it was
    with pytest.raises(VideoInputError, match="max_frames"):
        tiny_pipe(reader, exemplars=colour_clip[0], max_frames=0)


def test_stepper_writes_every_nth_frame_to_working_memory(tiny_pipe):
    stepper = tiny_pipe.prepare_stepper(memory_every=3, max_working_frames=50, min_working_frames=1)
    luminance = torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(0)) * 100
    ab = torch.randn(1, 2, 32, 48, generator=torch.Generator().manual_seed(1)) * 10
    working = []
    with torch.no_grad():
        stepper.add_exemplar(luminance, ab)
        assert stepper.previous is None and stepper.memory.num_permanent_elements == 4 * 6
        for index in range(7):
            predicted = stepper.step(luminance, known_ab=ab if index == 2 else None)
            if index == 2:  # a keyframe: encoded for the frames after it, nothing predicted
                assert predicted is None
            else:
                assert predicted.shape == (1, 2, 16, 24)
            working.append(stepper.memory.num_working_frames)
    assert working == [1, 1, 1, 2, 2, 2, 3]  # frames 0, 3 and 6
    assert stepper.frame_index == 7


def test_exemplar_as_previous_frame_feeds_the_local_attention(tiny_pipe):
    luminance = torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(0)) * 100
    ab = torch.randn(1, 2, 32, 48, generator=torch.Generator().manual_seed(1)) * 10
    outputs = []
    with torch.no_grad():
        for as_previous in (False, True):
            stepper = tiny_pipe.prepare_stepper()
            stepper.add_exemplar(luminance, ab, as_previous=as_previous)
            assert (stepper.previous is not None) == as_previous
            outputs.append(stepper.step(luminance))
    assert not torch.equal(*outputs)


def test_predict_then_commit_colour_is_a_step_and_the_committed_colour_is_remembered(tiny_pipe):
    """The pipeline splits a step: `predict` (the model's colour, nothing remembered yet), then
    `commit_colour` with the frame's final colour. Committing the prediction is exactly `step`; committing
    another colour is what the next frames read."""
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 1, 1, 32, 48, generator=generator) * 100
    exemplar_ab = torch.randn(1, 2, 32, 48, generator=generator) * 10

    def fresh():
        stepper = tiny_pipe.prepare_stepper(memory_every=1, min_working_frames=1)
        stepper.add_exemplar(frames[0], exemplar_ab)
        return stepper

    with torch.no_grad():
        stepped, split, recoloured = fresh(), fresh(), fresh()
        for index, luminance in enumerate(frames):
            ab = stepped.step(luminance)
            predicted = split.predict(luminance)
            assert split.frame_index == index and split.memory.num_working_frames == index  # not yet
            split.commit_colour(predicted)
            assert torch.equal(predicted, ab)
            assert split.frame_index == stepped.frame_index == index + 1
            assert split.memory.num_working_frames == stepped.memory.num_working_frames
            recoloured_ab = recoloured.predict(luminance)
            if index == 0:
                assert torch.equal(recoloured_ab, ab)
                recoloured.commit_colour(torch.full((1, 2, 8, 12), 40.0))  # any size: pooled to memory's
            else:
                recoloured.commit_colour(recoloured_ab)
        assert not torch.allclose(recoloured_ab, ab, atol=1e-3)  # later frames read the committed colour


def test_colorize_step_returns_the_encoding_that_frame_memory_completes(tiny_pipe):
    luminance = torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(0)) * 100
    stepper = tiny_pipe.prepare_stepper()
    with torch.no_grad():
        stepper.add_exemplar(luminance, torch.zeros(1, 2, 32, 48))
        ab, encoding = colorize_step(
            tiny_pipe.feature_encoder, tiny_pipe.decoder, luminance, stepper.memory, None
        )
        assert ab.shape == (1, 2, 16, 24)
        frame = frame_memory(tiny_pipe.value_encoder, encoding, ab)
        assert torch.equal(stepper.predict(luminance), ab)  # what the stepper's predict runs
        stepper.commit_colour(ab)
    assert torch.equal(stepper.previous.key, frame.key) and torch.equal(stepper.previous.value, frame.value)


def test_clip_loss_trains_through_the_stepper():
    pipe = make_tiny_colormnet()
    clip = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    config = MemoryConfig(memory_every=1, max_working_frames=3, min_working_frames=1, num_prototypes=8)
    loss = clip_loss(pipe.feature_encoder, pipe.value_encoder, pipe.decoder, clip, config)
    loss.backward()
    assert loss.item() > 0
    assert pipe.decoder.head.weight.grad.abs().sum() > 0
    assert pipe.value_encoder.encode[1].weight.grad.abs().sum() > 0
    assert isinstance(pipe.prepare_stepper(), ColorMNetStepper)


def test_confident_block_matches_are_copied_exactly():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 4, 5, generator=generator, requires_grad=True)
    matched, memory, local, residual = torch.randn(4, 1, 2, 4, 5, generator=generator)
    gate = torch.softmax(logits, dim=1)
    ab = copy_confident_matches(gate, matched, [memory, local], residual)
    copied = (gate[:, 2:3] > 0.5).expand_as(ab)
    assert copied.any() and (~copied).any()
    assert torch.equal(ab[copied], matched[copied])  # neither blended nor corrected
    others = gate[:, :2] / gate[:, :2].sum(dim=1, keepdim=True)
    blended = others[:, :1] * memory + others[:, 1:] * local + residual
    assert torch.allclose(ab[~copied], blended[~copied])
    ab.sum().backward()  # the hard choice still trains the gate (straight-through)
    assert logits.grad.abs().sum() > 0


def smooth_scene(height: int = 96, width: int = 128, seed: int = 0) -> torch.Tensor:
    """(1, 1, H, W) in [0, 1]: random texture upsampled, so it has gradients for optical flow."""
    texture = torch.from_numpy(np.random.default_rng(seed).random((1, 1, height // 4, width // 4)))
    scene = torch.nn.functional.interpolate(texture.float(), size=(height, width), mode="bicubic")
    return scene.clamp(0, 1)


@pytest.mark.parametrize("max_short_side", [None, 48])
def test_luminance_flow_recovers_a_shift_at_full_or_capped_size(max_short_side):
    scene = smooth_scene() * 100
    shift = torch.tensor([2.4, -1.3]).view(1, 2, 1, 1)
    moved = sample_at(scene, pixel_grid(96, 128) + shift)  # moved(x) = scene(x + shift)
    displacement = luminance_flow(moved, scene, max_short_side)
    assert displacement.shape == (1, 2, 96, 128)
    interior = displacement[..., 12:-12, 12:-12].flatten(2).median(-1).values[0]
    np.testing.assert_allclose(interior, shift.view(2), atol=0.2)  # in full-size pixels either way


def decolorize(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 colour -> the same frames with their Lab L and ab = 0 (the evaluation's input)."""
    grey = []
    for frame in frames:
        luminance, ab = luminance_and_ab(frame_to_tensor(frame))
        grey.append(tensor_to_frame(compose_lab(luminance, torch.zeros_like(ab))))
    return np.stack(grey)


def panning_clip(num_frames: int = 5, height: int = 64, width: int = 80, step: int = 3) -> np.ndarray:
    """(T, H, W, 3) uint8: crops of a larger picture of colour blobs textured at two scales, the window
    moving 2 * `step` px right and `step` px down per frame: frame t's x shows frame 0's
    x + (2 step t, step t)."""
    rng = np.random.default_rng(1)
    size = (height + step * num_frames, width + 2 * step * num_frames, 3)
    coarse = gaussian_filter(rng.normal(size=size), sigma=(8, 8, 0))
    fine = gaussian_filter(rng.normal(size=size), sigma=(2, 2, 0))
    scene = (coarse / coarse.std() * 50 + fine / fine.std() * 15 + 128).clip(0, 255).astype(np.uint8)
    return np.stack(
        [scene[step * t : step * t + height, 2 * step * t : 2 * step * t + width] for t in range(num_frames)]
    )


def test_anchored_colour_follows_a_panning_clip_far_better_than_the_model_alone(tiny_pipe):
    """A keyframe (frame 0) and a pan: the anchored colour (the default) reads the keyframe's colours at
    matched positions; the tiny model is untrained, so on its own (`fallback_error=-1`) it is far off.
    Either way frame 0 is the keyframe's colours."""
    step = 3
    clip = panning_clip(step=step)
    grey = decolorize(clip)
    truth = lab_of(clip)
    anchored = tiny_pipe(grey, exemplars=clip[0], exemplar_frames=[0], output_type="np")
    model_only = tiny_pipe(grey, exemplars=clip[0], exemplar_frames=[0], output_type="np", fallback_error=-1)
    for result in (anchored, model_only):
        assert isinstance(result, ColorizationPipelineOutput)
        assert result.exemplar_placements == [{"mode": "keyframe", "frame": 0, "matches": None}]
        assert result.coloured_backwards_from is None
    np.testing.assert_array_equal(anchored.frames[0], model_only.frames[0])
    assert (lab_of(anchored.frames)[0, 1:] - truth[0, 1:]).abs().mean() < 0.5

    def ab_error(frames: np.ndarray, t: int) -> float:
        """Mean |ab error| of frame t over what frame 0 showed (the rest is new content)."""
        visible = (slice(1, 3), slice(0, -step * t - 3), slice(0, -2 * step * t - 3))
        return (lab_of(frames[t : t + 1])[0] - truth[t])[visible].abs().mean().item()

    for t in range(1, len(clip)):
        with_anchors, alone = ab_error(anchored.frames, t), ab_error(model_only.frames, t)
        assert with_anchors < 1.0 and with_anchors < 0.2 * alone, (t, with_anchors, alone)


def test_still_half_of_a_clip_keeps_its_colour(tiny_pipe):
    """Frames whose left half never changes: with a keyframe, that half keeps the keyframe's colours
    (no flicker); the model alone recolours it on every frame."""
    clip = make_colour_clip(num_frames=5, height=48, width=64)
    clip[:, :, :32] = clip[0, :, :32]
    grey = decolorize(clip)

    def change_of_still_half(frames: np.ndarray) -> list[float]:
        """Mean change from frame 0, in uint8 levels, of the still half less 8 px along its edge."""
        frames = (frames * 255).round()
        return [np.abs(frame[:, :24] - frames[0][:, :24]).mean() for frame in frames[1:]]

    anchored = tiny_pipe(grey, exemplars=clip[0], exemplar_frames=[0], output_type="np").frames
    model_only = tiny_pipe(
        grey, exemplars=clip[0], exemplar_frames=[0], output_type="np", fallback_error=-1
    ).frames
    assert max(change_of_still_half(anchored)) < 0.5
    assert min(change_of_still_half(model_only)) > 1.5
    assert np.abs(anchored[-1][:, 40:] - anchored[0][:, 40:]).max() > 0.1  # the moving half does change


def astronaut_pan(num_frames: int = 6) -> np.ndarray:
    """(T, 128, 160, 3) uint8: a camera panning 14 px right (and 2 down) per frame over the astronaut photo
    (real texture, so feature matching finds corners)."""
    photo = cv2.resize(skimage_data.astronaut(), (320, 320), interpolation=cv2.INTER_AREA)
    return np.stack([photo[60 + 2 * t : 188 + 2 * t, 20 + 14 * t : 180 + 14 * t] for t in range(num_frames)])


def test_free_reference_is_aligned_to_the_frame_that_shows_it(tiny_pipe):
    clip = astronaut_pan()
    grey = decolorize(clip)
    reference = clip[3][6:120, 8:150]  # a photo of part of what frame 3 shows
    (placement,) = tiny_pipe(grey, exemplars=reference, output_type="np").exemplar_placements
    assert placement["mode"] == "aligned"
    assert abs(placement["frame"] - 3) <= 1 and placement["matches"] >= MIN_ALIGNMENT_INLIERS
    assert f"frame {placement['frame']}" in describe_placement(placement)
    # A keyframe and a free reference together: each gets its own placement, in the exemplars' order.
    placements = tiny_pipe(
        grey, exemplars=[clip[0], reference], exemplar_frames=[0, None], output_type="np"
    ).exemplar_placements
    assert placements[0] == {"mode": "keyframe", "frame": 0, "matches": None}
    assert placements[1]["mode"] == "aligned" and abs(placements[1]["frame"] - 3) <= 1
    # Matching off (a negative fallback_error, or the config's align_free_references): memory only.
    for pipe, kwargs in (
        (tiny_pipe, {"fallback_error": -1}),
        (make_tiny_colormnet(align_free_references=False), {}),
    ):
        (placement,) = pipe(grey, exemplars=reference, output_type="np", **kwargs).exemplar_placements
        assert placement["mode"] == "memory" and placement["frame"] is None


def test_frames_before_a_later_keyframe_are_coloured_backwards_from_it(tiny_pipe):
    """A keyframe at the last frame: the frames before it are coloured as a keyframe at frame 0 colours the
    clip played backwards (the same steps, in the same order), and they follow the pan's colours."""
    step = 3
    clip = panning_clip(step=step)
    grey, last = decolorize(clip), len(clip) - 1
    seen = []
    backwards = tiny_pipe(
        grey,
        exemplars=clip[last],
        exemplar_frames=[last],
        output_type="np",
        callback_on_frame_end=lambda pipe, index, kwargs: seen.append((index, kwargs["frame"])),
    ).frames
    # The callback sees every frame once, as it is coloured: the frames before the keyframe backwards.
    assert [index for index, _ in seen] == [*range(last - 1, -1, -1), last]
    for index, frame in seen:
        np.testing.assert_array_equal(frame, (backwards[index] * 255).round().astype(np.uint8))
    reversed_clip = tiny_pipe(grey[::-1], exemplars=clip[last], exemplar_frames=[0], output_type="np").frames
    np.testing.assert_array_equal(backwards, reversed_clip[::-1])
    truth = lab_of(clip)
    for t in range(last):
        # Frame t's x shows the last frame's x - (2 step, step) (last - t).
        shift = last - t
        visible = (slice(1, 3), slice(step * shift + 3, None), slice(2 * step * shift + 3, None))
        error = (lab_of(backwards[t : t + 1])[0] - truth[t])[visible].abs().mean().item()
        assert error < 1.0, (t, error)


def test_free_reference_of_the_last_frame_colours_the_frames_before_it(tiny_pipe):
    """The evaluation's free-reference protocol: the last frame as a reference, its frame not told. It is
    aligned to the last frame and the clip is coloured backwards from there, so every frame gets the
    reference's colours where it shows what the reference shows."""
    clip = astronaut_pan()
    last = len(clip) - 1
    result = tiny_pipe(decolorize(clip), exemplars=clip[last], output_type="np")
    assert result.exemplar_placements[0]["mode"] == "aligned"
    assert result.exemplar_placements[0]["frame"] == last
    assert result.coloured_backwards_from == last
    truth = lab_of(clip)
    for t in range(last):
        # Frame t's x shows the last frame's x - (14, 2) (last - t): the part that the reference shows too.
        shift = last - t
        visible = (slice(1, 3), slice(2 * shift + 8, -8), slice(14 * shift + 8, -8))
        error = (lab_of(result.frames[t : t + 1])[0] - truth[t])[visible].abs().mean().item()
        assert error < 1.5, (t, error)


@pytest.mark.parametrize("unrelated", ["noise", "other_photo"])
def test_free_reference_of_another_scene_is_used_through_memory_only(tiny_pipe, unrelated):
    clip = astronaut_pan()
    if unrelated == "noise":
        reference = (np.random.default_rng(0).random((120, 150, 3)) * 255).astype(np.uint8)
    else:
        reference = skimage_data.coffee()[100:280, 150:400]
    result = tiny_pipe(decolorize(clip), exemplars=reference, output_type="np")
    (placement,) = result.exemplar_placements
    assert placement["mode"] == "memory" and placement["frame"] is None
    assert placement["matches"] < MIN_ALIGNMENT_INLIERS
    assert "memory" in describe_placement(placement)
    assert result.frames.shape == clip.shape


def test_processing_shape():
    assert processing_shape(480, 854, 256) == (256, 448)
    assert processing_shape(144, 176, 256) == (256, 320)  # small videos are upscaled...
    assert processing_shape(50, 70, 256) == (96, 144)  # ... at most 2x, to multiples of 16
    assert processing_shape(4, 4, 256) == (16, 16)


def test_writes_mp4_with_audio_of_the_input(tiny_pipe, tmp_path):
    import av

    clip = make_colour_clip(num_frames=10)
    source = tmp_path / "source.mp4"
    write_video(clip, source, fps=10)
    with_audio = tmp_path / "with_audio.mp4"
    _mux_sine_audio(source, with_audio, seconds=1.0)
    out = tmp_path / "out.mp4"
    result = tiny_pipe(str(with_audio), exemplars=clip[0], output_path=out)
    assert result.frames is None and result.video_path == str(out)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 10


def _mux_sine_audio(video: object, out: object, seconds: float) -> None:
    """Copy `video`'s frames into `out` with a 440 Hz AAC soundtrack (a real audio track for tests)."""
    import av

    with av.open(str(video)) as source, av.open(str(out), "w") as target:
        in_stream = source.streams.video[0]
        video_stream = target.add_stream("h264", rate=in_stream.average_rate)
        video_stream.width, video_stream.height, video_stream.pix_fmt = (
            in_stream.width,
            in_stream.height,
            "yuv420p",
        )
        audio_stream = target.add_stream("aac", rate=16000, layout="mono")
        for frame in source.decode(video=0):
            for packet in video_stream.encode(frame.reformat(format="yuv420p")):
                target.mux(packet)
        for packet in video_stream.encode():
            target.mux(packet)
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(16000 * seconds)) / 16000)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio_stream.encode(frame):
                target.mux(packet)
        for packet in audio_stream.encode():
            target.mux(packet)


# -- bad input: a clear error, and no partial output file --------------------------------------


def test_no_exemplar(tiny_pipe, colour_clip, tmp_path):
    out = tmp_path / "out.mp4"
    for missing in (None, []):
        with pytest.raises(ExemplarError, match="No exemplar"):
            tiny_pipe(colour_clip, exemplars=missing, output_path=out)
    assert list(tmp_path.iterdir()) == []


def test_grayscale_exemplar(tiny_pipe, colour_clip, tmp_path):
    grey = np.repeat(colour_clip[0].mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    with pytest.raises(ExemplarError, match="grayscale"):
        tiny_pipe(colour_clip, exemplars=grey, output_path=tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_exemplar_frame_out_of_range(tiny_pipe, colour_clip, tmp_path):
    with pytest.raises(ExemplarError, match="valid indices 0..5"):
        tiny_pipe(colour_clip, exemplars=colour_clip[0], exemplar_frames=[6], output_path=tmp_path / "o.mp4")
    with pytest.raises(ExemplarError, match="one frame index"):
        tiny_pipe(colour_clip, exemplars=colour_clip[0], exemplar_frames=[0, 1])
    assert list(tmp_path.iterdir()) == []


def test_check_inputs_needs_no_model_and_says_what_to_change(colour_clip):
    check = ColorMNetPipeline.check_inputs  # a classmethod: an app calls it before loading the model
    colour = colour_clip[0]
    grey = np.repeat(colour.mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    check(6, colour)
    check(6, [colour, Image.fromarray(colour)], [0, None], processing_size=64, output_type="np")
    check(6, colour, np.int64(5))
    cases = [
        (dict(exemplars=None), ExemplarError, "No exemplar"),
        (dict(exemplars=[]), ExemplarError, "No exemplar"),
        (dict(exemplars=grey), ExemplarError, "Exemplar 1 .*grayscale"),
        (dict(exemplars=[colour, grey]), ExemplarError, "Exemplar 2 .*grayscale"),
        (dict(exemplars=colour, exemplar_frames=[0, 1]), ExemplarError, "2 exemplar_frames.*one frame index"),
        (dict(exemplars=colour, exemplar_frames=6), ExemplarError, r"frame 6.*valid indices 0\.\.5"),
        (dict(exemplars=colour, exemplar_frames=[-1]), ExemplarError, r"valid indices 0\.\.5"),
        (dict(exemplars=colour, exemplar_frames=["3"]), ExemplarError, "not a frame number"),
        (dict(exemplars=colour, exemplar_frames=[1.0]), ExemplarError, "not a frame number"),
        (dict(exemplars=colour, processing_size=32), ValueError, "processing_size.*at least 64"),
        (dict(exemplars=colour, processing_size=128.5), ValueError, "processing_size"),
        (dict(exemplars=colour, output_type="latent"), ValueError, "output_type"),
        (dict(exemplars="no/such/exemplar.png"), VideoInputError, "does not exist"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            check(6, **kwargs)
    # Each exemplar error names the argument it is about, so an app can point at the field to fix.
    for kwargs, argument in [
        (dict(exemplars=None), "exemplars"),
        (dict(exemplars=[colour, grey], exemplar_frames=[0, None]), "exemplars"),
        (dict(exemplars=colour, exemplar_frames=[0, 1]), "exemplar_frames"),
        (dict(exemplars=colour, exemplar_frames=6), "exemplar_frames"),
        (dict(exemplars=colour, exemplar_frames=[1.0]), "exemplar_frames"),
    ]:
        with pytest.raises(ExemplarError) as raised:
            check(6, **kwargs)
        assert raised.value.argument == argument, kwargs


def test_call_checks_inputs_before_colouring(tiny_pipe, colour_clip, tmp_path):
    def never(pipe, index, callback_kwargs):
        pytest.fail("a frame was coloured")

    out = tmp_path / "out.mp4"
    for kwargs in (dict(processing_size=32), dict(exemplar_frames=["0"])):
        with pytest.raises(ValueError):
            tiny_pipe(
                colour_clip, exemplars=colour_clip[0], output_path=out, callback_on_frame_end=never, **kwargs
            )
    with pytest.raises(ExemplarError, match=r"valid indices 0\.\.2"):  # max_frames counts
        tiny_pipe(colour_clip, exemplars=colour_clip[0], exemplar_frames=[4], max_frames=3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("corrupt.mp4", b"\x00\x01not a video at all" * 50, "corrupt|decode|read"),
        ("empty.mp4", b"", "empty|corrupt|decode|read"),
    ],
)
def test_corrupt_or_empty_video(tiny_pipe, colour_clip, tmp_path, name, content, message):
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoInputError, match=f"(?i){message}"):
        tiny_pipe(str(source), exemplars=colour_clip[0], output_path=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_image_given_as_video(tiny_pipe, colour_clip, tmp_path):
    image = tmp_path / "still.png"
    Image.fromarray(colour_clip[0]).save(image)
    with pytest.raises(VideoInputError, match="image"):
        tiny_pipe(str(image), exemplars=colour_clip[0], output_path=tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]


def test_zero_frames_and_empty_folder(tiny_pipe, colour_clip, tmp_path):
    with pytest.raises(VideoInputError):
        tiny_pipe([], exemplars=colour_clip[0])
    with pytest.raises(VideoInputError):
        tiny_pipe(np.zeros((0, 16, 16, 3), np.uint8), exemplars=colour_clip[0])
    (tmp_path / "notes.txt").write_text("no frames here")
    with pytest.raises(VideoInputError, match="(?i)no image"):
        tiny_pipe(str(tmp_path), exemplars=colour_clip[0], output_path=tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_failure_mid_video_leaves_no_file(tiny_pipe, colour_clip, tmp_path):
    def explode(pipe, index, callback_kwargs):
        if index == 3:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        tiny_pipe(
            colour_clip,
            exemplars=colour_clip[0],
            output_path=tmp_path / "out.mp4",
            callback_on_frame_end=explode,
        )
    assert list(tmp_path.iterdir()) == []


def test_exemplar_keeps_colour_conversion_consistent():
    frame = make_colour_clip(num_frames=1)[0]
    luminance, ab = luminance_and_ab(frame_to_tensor(frame))
    assert luminance.shape[1] == 1 and ab.shape[1] == 2


def test_keyframe_past_the_end_of_a_truncated_file_colours_what_decodes(tiny_pipe, tmp_path):
    """A cut-off file declares frames it cannot decode: a keyframe tied to one of those is never reached,
    so there is no backward pass; the frames that decode are coloured forwards, with the file's warning."""
    clip = make_colour_clip(num_frames=12)
    path = write_truncated_mkv(tmp_path / "cut.mkv", decolorize(clip), fps=8, keep=0.6)
    declared = len(VideoReader(path))
    seen = []
    with pytest.warns(UserWarning, match="could be decoded"):
        result = tiny_pipe(
            path,
            exemplars=clip[-1],
            exemplar_frames=[declared - 1],
            output_type="np",
            callback_on_frame_end=lambda pipe, index, kwargs: seen.append(index),
        )
    assert 0 < len(result.frames) < declared
    assert seen == list(range(len(result.frames)))  # forwards
    assert result.coloured_backwards_from is None


def test_spooled_frames_leave_nothing_behind_when_the_call_fails(tiny_pipe, tmp_path, monkeypatch):
    """The backward pass's frames wait in a temporary folder, which is removed even when the call fails."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    clip = panning_clip()

    def explode(pipe, index, callback_kwargs):
        if index == 1:  # in the backward pass
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        tiny_pipe(
            decolorize(clip),
            exemplars=clip[-1],
            exemplar_frames=[len(clip) - 1],
            callback_on_frame_end=explode,
        )
    assert list(tmp_path.iterdir()) == []
