"""ColorMNetPipeline: save/load, luminance kept, streaming, exemplars, memory bounds, the stepper shared
with training, check_inputs and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_colour_clip, make_tiny_colormnet
from PIL import Image

from pipelines.colorization import (
    ColorMNetDecoder,
    ColorMNetFeatureEncoder,
    ColorMNetPipeline,
    ColorMNetStepper,
    ColorMNetValueEncoder,
    ExemplarError,
    MemoryConfig,
)
from pipelines.colorization.modeling import copy_confident_matches, hold_previous_colour
from pipelines.colorization.train import clip_loss
from pipelines.core.colour import frame_to_tensor, luminance_and_ab
from pipelines.core.flow import luminance_flow
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


def test_static_pixels_keep_the_previous_colour():
    generator = torch.Generator().manual_seed(0)
    ab, previous_ab = torch.randn(2, 1, 2, 6, 8, generator=generator) * 20
    previous_luminance = torch.rand(1, 1, 6, 8, generator=generator) * 100
    change = torch.zeros(1, 1, 6, 8)
    change[..., :3, :] = 0.4  # within the tolerance: the same surface, sensor noise
    change[..., 3:, :4] = 3.0  # something moved
    held = hold_previous_colour(ab, previous_ab, previous_luminance + change, previous_luminance, 0.5)
    assert torch.equal(held[..., :3, :], previous_ab[..., :3, :])
    assert torch.equal(held[..., 3:, :4], ab[..., 3:, :4])
    assert torch.equal(held[..., 3:, 4:], previous_ab[..., 3:, 4:])  # unchanged L


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


def test_moved_pixels_keep_the_previous_colour_along_the_flow():
    """Content panned 2 px to the right: the hold takes each pixel's colour from where it was, except
    where the L there disagrees (something new appeared); with zero flow it is the static hold."""
    generator = torch.Generator().manual_seed(0)
    previous_luminance = smooth_scene(48, 64) * 100
    shift = torch.tensor([-2.0, 0.0]).view(1, 2, 1, 1)  # this frame's x shows the previous frame's x - 2
    luminance = sample_at(previous_luminance, pixel_grid(48, 64) + shift)
    luminance[..., 30:, 40:] = 150.0  # a new object, brighter than anything in the previous frame
    ab, previous_ab = torch.randn(2, 1, 2, 48, 64, generator=generator) * 20
    held = hold_previous_colour(
        ab, previous_ab, luminance, previous_luminance, 0.5, shift.expand(1, 2, 48, 64)
    )
    # static first: where L at the same place also agrees (a flat patch), the colour stays in place
    static = ((luminance - previous_luminance).abs() <= 0.5).expand_as(ab)
    assert 0 < static[..., :30, 2:].float().mean() < 0.5
    moved, kept = held[..., :30, 2:], torch.where(static, previous_ab, previous_ab.roll(2, dims=-1))
    np.testing.assert_allclose(moved, kept[..., :30, 2:], atol=1e-3)
    assert torch.equal(held[..., 30:, 40:], ab[..., 30:, 40:])
    static_only = hold_previous_colour(ab, previous_ab, luminance, previous_luminance, 0.5)
    assert torch.equal(
        hold_previous_colour(ab, previous_ab, luminance, previous_luminance, 0.5, torch.zeros(1, 2, 48, 64)),
        static_only,
    )
    assert (static_only[..., :30, 2:] - previous_ab[..., :30, :-2]).abs().mean() > 5  # no flow, no hold


def test_motion_compensated_hold_steadies_the_colour_of_a_panning_clip(tiny_pipe):
    """A textured scene panning 2 px per frame: with the hold following the motion, each output frame is
    (nearly) the previous one moved along; holding only pixels that stay in place, it changes a lot more."""
    scene = (smooth_scene(48, 96).squeeze().numpy() * 255).astype(np.uint8)
    grey = np.stack([np.repeat(scene[:, 2 * t : 2 * t + 64, None], 3, axis=-1) for t in range(5)])
    exemplar = make_colour_clip(num_frames=1, height=48, width=64)[0]

    def change_along_motion(frames) -> float:
        ab = lab_of(np.stack(frames))[:, 1:]
        return (ab[1:, :, 4:-4, 4:-6] - ab[:-1, :, 4:-4, 6:-4]).abs().mean().item()  # t(x) = t-1(x + 2)

    followed = tiny_pipe(grey, exemplars=exemplar, output_type="np").frames
    in_place = tiny_pipe(grey, exemplars=exemplar, output_type="np", motion_compensated_hold=False).frames
    assert change_along_motion(followed) < 0.5 * change_along_motion(in_place)
    assert tiny_pipe.config.motion_compensated_hold


def test_static_half_of_a_clip_keeps_its_colour_exactly(tiny_pipe):
    """Frames whose left half never changes: that half's output is the same in every frame (no flicker),
    while the moving right half is coloured afresh; with the hold off, the static half changes."""
    clip = make_colour_clip(num_frames=5, height=48, width=64)
    clip[:, :, :32] = clip[0, :, :32]
    grey = clip.mean(axis=-1, keepdims=True).repeat(3, axis=-1).astype(np.uint8)
    frames = tiny_pipe(grey, exemplars=clip[0], output_type="np").frames
    for frame in frames[1:]:
        np.testing.assert_array_equal(frame[:, :32], frames[0][:, :32])
    assert np.abs(frames[-1][:, 32:].astype(int) - frames[0][:, 32:]).max() > 0
    free = tiny_pipe(grey, exemplars=clip[0], output_type="np", static_tolerance=-1).frames
    np.testing.assert_array_equal(free[0], frames[0])
    assert max(np.abs(frame[:, :32].astype(int) - free[0][:, :32]).max() for frame in free[1:]) > 0
    assert tiny_pipe.config.static_tolerance == 0.5


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
