"""What a Diffusers user tries first, on hueflow's pipelines (from a user report): Diffusers' generic loader
on the shipped checkpoints and on a saved folder, half precision (refused in words, or supported), image
counts and PIL output of `PseudoVideoPipeline`, `generator=` where it changes nothing, and a tensor or a
URL as the video. Each test checks the exact result or message, so it fails on the code before the fix.
Tiny configs throughout (a few seconds on one CPU thread)."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import numpy as np
import PIL.Image
import pytest
import torch
from conftest import make_colour_clip, make_tiny_colormnet, make_tiny_zero_to_hero
from diffusers import DiffusionPipeline
from test_correspondence import tiny_pipeline as tiny_correspondence
from test_pseudo_video import tiny_pipeline as tiny_pseudo_video
from test_tgan import tiny_pipeline as tiny_tgan

from pipelines import (
    ColorMNetPipeline,
    CorrespondencePipeline,
    HueflowPipeline,
    PretrainedLoadError,
    PseudoVideoPipeline,
    TGANPipeline,
    VideoInputError,
    ZeroToHeroPipeline,
)
from pipelines.core.hub import custom_pipeline_source

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
# The shipped folders, each loadable by Diffusers' generic loader.
SHIPPED = {
    "colormnet-lite": ColorMNetPipeline,
    "zero2hero-lite": ZeroToHeroPipeline,
    "pseudo-video-digits": PseudoVideoPipeline,
    "mer-correspondence": CorrespondencePipeline,
    "tgan-moving-digits": TGANPipeline,
}
HALF = [torch.float16, torch.bfloat16]
# Why each float32-only pipeline refuses half precision (its `dtype_note`, quoted in the message).
FLOAT32_ONLY: dict[type, str] = {
    ColorMNetPipeline: (
        "Its colour matching, optical flow and guided upsampling are float32 code around a small model "
        "(about 1 M parameters), so half precision would not make it faster."
    ),
    ZeroToHeroPipeline: (
        "Its matching and colour transfer are float32 code around small models (about 1 M parameters), "
        "and the per-video fine-tuning would lose its small updates in half precision."
    ),
    CorrespondencePipeline: (
        "Its optical flow and label propagation are float32 code around a small encoder (about 1 M "
        "parameters), so half precision would not make it faster."
    ),
}
TINY_FLOAT32_ONLY: dict[type, Callable[[], HueflowPipeline]] = {
    ColorMNetPipeline: make_tiny_colormnet,
    ZeroToHeroPipeline: make_tiny_zero_to_hero,
    CorrespondencePipeline: tiny_correspondence,
}
URL_VIDEO = "https://example.com/x.mp4"


def dtype_refusal(pipeline_class: type, dtype: torch.dtype) -> str:
    """The exact ValueError message of `HueflowPipeline.check_dtype` for a float32-only pipeline."""
    name = str(dtype).removeprefix("torch.")
    return (
        f"{pipeline_class.__name__} cannot run in {name}: it runs in float32 only. "
        f"{FLOAT32_ONLY[pipeline_class]} Load it without dtype= / torch_dtype=, and move it with "
        "pipe.to(device) alone."
    )


def parameter_dtypes(pipe: HueflowPipeline) -> set[torch.dtype]:
    modules = [getattr(pipe, name) for name in pipe.components]
    return {p.dtype for module in modules if isinstance(module, torch.nn.Module) for p in module.parameters()}


def same_weights(pipe: HueflowPipeline, other: HueflowPipeline) -> bool:
    return all(
        torch.equal(tensor, getattr(other, name).state_dict()[key])
        for name in pipe.components
        if isinstance(getattr(pipe, name), torch.nn.Module)
        for key, tensor in getattr(pipe, name).state_dict().items()
    )


def grey(clip: np.ndarray) -> np.ndarray:
    return np.repeat(clip.mean(-1, keepdims=True), 3, -1).astype(np.uint8)


def cache_as_hub_download(cache: Path, repo_id: str, folder: Path) -> None:
    """Lay `folder` out as huggingface_hub caches a downloaded repo, with the repo's file listing (what the
    Hub's API returns online, and what Diffusers checks a repo's components against)."""
    from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache

    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.parent.mkdir(parents=True)
    folder.rename(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    files = [path for path in snapshot.rglob("*") if path.is_file()]
    listing = {
        path.relative_to(snapshot).as_posix(): TreeCacheEntry(size=path.stat().st_size, blob_id="0" * 40)
        for path in files
    }
    write_tree_cache(str(repo), commit, listing)


# -- Diffusers' generic loader ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoints_load_with_diffusers_generic_loader(name):
    folder, pipeline_class = CHECKPOINTS / name, SHIPPED[name]
    # The committed files are what `add_custom_pipeline_file` writes (not a stale copy of an older text).
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline", pipeline_class.__name__]
    assert (folder / "pipeline.py").read_text() == custom_pipeline_source(pipeline_class.__name__)

    generic = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    assert type(generic) is pipeline_class  # the package's own class, not a copy from Diffusers' module cache
    # hueflow's own loaders read the same folder with no code to trust, and load the same weights.
    own = pipeline_class.from_pretrained(folder)
    auto = HueflowPipeline.from_pretrained(folder)
    assert type(own) is type(auto) is pipeline_class
    assert same_weights(generic, own) and same_weights(auto, own)
    assert generic.config == own.config


@pytest.mark.parametrize("name", SHIPPED)
def test_generic_loader_without_trust_remote_code_says_to_pass_it(name):
    # Before the fix: AttributeError "module diffusers has no attribute ColorMNetPipeline", with or
    # without trust_remote_code. Now Diffusers asks for the custom code to be trusted (its own message).
    folder = CHECKPOINTS / name
    message = (
        f"The directory {folder} contains custom code in pipeline.py which must be executed to correctly "
        f"load the model. You can inspect the file content at {folder / 'pipeline.py'}.\n"
        "Pass `trust_remote_code=True` to allow loading remote code modules."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DiffusionPipeline.from_pretrained(folder)


def test_save_pretrained_writes_a_folder_the_generic_loader_reads(tmp_path):
    pipe = tiny_pseudo_video("markov")
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline", "PseudoVideoPipeline"]
    assert (tmp_path / "pipeline.py").read_text() == custom_pipeline_source("PseudoVideoPipeline")

    generic = DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True)
    auto = HueflowPipeline.from_pretrained(tmp_path)
    assert type(generic) is type(auto) is PseudoVideoPipeline
    assert same_weights(generic, pipe) and same_weights(auto, pipe)
    seeded = dict(batch_size=2, output_type="np")
    expected = pipe(**seeded, generator=torch.Generator().manual_seed(1)).images
    assert np.array_equal(generic(**seeded, generator=torch.Generator().manual_seed(1)).images, expected)


def test_a_pipeline_class_refuses_a_folder_saved_by_another():
    # `_class_name` is now [module, class]: the class is still read from it.
    folder = CHECKPOINTS / "mer-correspondence"
    message = (
        f"{folder} holds a CorrespondencePipeline, not a ColorMNetPipeline: load it with "
        "CorrespondencePipeline.from_pretrained(...) (or HueflowPipeline.from_pretrained(...), which picks "
        "the class the folder names)."
    )
    with pytest.raises(PretrainedLoadError, match=f"^{re.escape(message)}$"):
        ColorMNetPipeline.from_pretrained(folder)


def test_hub_repo_id_is_refused_by_diffusers_generic_loader_and_the_workarounds_load(tmp_path, monkeypatch):
    """What does not work, documented: for a Hub repo id, Diffusers 0.42's `download()` checks each
    component's module against the repo's files and diffusers before it reads `pipeline.py`, and refuses
    hueflow's (diffusers issue #6563; the same check online, where the listing comes from the Hub's API).
    hueflow's loaders take the repo id; Diffusers' takes the downloaded folder."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network, even by mistake
    pipe = tiny_pseudo_video("markov")
    pipe.save_pretrained(tmp_path / "saved")
    cache, repo_id = tmp_path / "hub-cache", "hueflow/tiny-pseudo-video"
    cache_as_hub_download(cache, repo_id, tmp_path / "saved")
    hub = dict(cache_dir=str(cache), local_files_only=True)

    message = (
        f"model/pipelines.pseudo_video.modeling.py as defined in `model_index.json` does not exist in "
        f"{repo_id} and is not a module in 'diffusers/pipelines'."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True, **hub)

    auto = HueflowPipeline.from_pretrained(repo_id, **hub)
    folder = huggingface_hub.snapshot_download(repo_id, **hub)
    generic = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    assert type(auto) is type(generic) is PseudoVideoPipeline
    assert same_weights(auto, pipe) and same_weights(generic, pipe)


def test_generated_pipeline_file_says_what_to_do_without_hueflow():
    source = custom_pipeline_source("ColorMNetPipeline", module="hueflow_not_installed")
    message = (
        "This model folder needs the hueflow package, to import hueflow_not_installed.ColorMNetPipeline: "
        "run from a clone of the hueflow repository or add it to PYTHONPATH, then load again."
    )
    with pytest.raises(ImportError, match=f"^{re.escape(message)}$"):
        exec(compile(source, "pipeline.py", "exec"), {})


# -- dtypes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("pipeline_class", list(FLOAT32_ONLY), ids=lambda c: c.__name__)
def test_float32_only_pipelines_refuse_half_precision_when_it_is_asked_for(pipeline_class, dtype):
    # Before the fix each was accepted and the first call crashed with a dtype mismatch inside a model.
    pipe = TINY_FLOAT32_ONLY[pipeline_class]()
    exact = f"^{re.escape(dtype_refusal(pipeline_class, dtype))}$"
    for move in ((dtype,), ("cpu", dtype)):
        with pytest.raises(ValueError, match=exact):
            pipe.to(*move)
    with pytest.raises(ValueError, match=exact):
        pipe.to(dtype=dtype)
    assert parameter_dtypes(pipe) == {torch.float32}  # refused before anything was cast
    folder = CHECKPOINTS / next(name for name, cls in SHIPPED.items() if cls is pipeline_class)
    for loader in (pipeline_class, HueflowPipeline):  # the base class checks the class the folder names
        for key in ("dtype", "torch_dtype"):
            with pytest.raises(ValueError, match=exact):
                loader.from_pretrained(folder, **{key: dtype})


def test_half_precision_from_diffusers_generic_loader_is_refused_before_the_call_runs():
    # Diffusers' own loader casts the models without asking the pipeline: the call refuses them first.
    pipe = DiffusionPipeline.from_pretrained(
        CHECKPOINTS / "colormnet-lite", trust_remote_code=True, dtype=torch.float16
    )
    assert parameter_dtypes(pipe) == {torch.float16}
    clip = make_colour_clip(num_frames=2)
    with pytest.raises(ValueError, match=f"^{re.escape(dtype_refusal(ColorMNetPipeline, torch.float16))}$"):
        pipe(grey(clip), exemplars=clip[0])


def test_models_cast_one_by_one_into_different_dtypes_are_refused_before_the_call_runs():
    pipe = make_tiny_colormnet()
    pipe.decoder.to(torch.float16)  # around `pipe.to`, which would have refused it
    clip = make_colour_clip(num_frames=2)
    message = (
        "ColorMNetPipeline's models are in different dtypes (float16, float32): move them together with "
        "pipe.to(dtype)."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        pipe(grey(clip), exemplars=clip[0])


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_pseudo_video_pipeline_runs_in_half_precision(dtype, tmp_path):
    pipe = tiny_pseudo_video("rich", num_frames=4, channels=3)
    seeded = dict(batch_size=3, output_type="np", return_pseudo_video=True)
    full = pipe(**seeded, generator=torch.Generator().manual_seed(2))
    half = pipe.to(dtype)
    assert half is pipe and parameter_dtypes(pipe) == {dtype}
    out = pipe(**seeded, generator=torch.Generator().manual_seed(2))
    # The same images, the network's rounding aside (the walk between frames stays in float32).
    assert out.images.shape == full.images.shape and out.images.dtype == np.float32
    assert np.abs(out.images - full.images).mean() < 0.01  # bfloat16: about 0.003 (the images' std: 0.05)
    assert np.array_equal(out.pseudo_videos[:, -1], out.images)

    pipe.to(torch.float32).save_pretrained(tmp_path)
    for loader in (PseudoVideoPipeline, HueflowPipeline):
        loaded = loader.from_pretrained(tmp_path, dtype=dtype)
        assert type(loaded) is PseudoVideoPipeline and parameter_dtypes(loaded) == {dtype}
        images = loaded(batch_size=2, generator=torch.Generator().manual_seed(0)).images
        assert len(images) == 2 and all(isinstance(image, PIL.Image.Image) for image in images)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_tgan_pipeline_runs_in_half_precision(dtype):
    pipe = tiny_tgan()
    full = pipe(num_videos=2, generator=torch.Generator().manual_seed(0)).frames
    pipe.to(dtype)
    assert parameter_dtypes(pipe) == {dtype}
    half = pipe(num_videos=2, generator=torch.Generator().manual_seed(0)).frames
    assert half.shape == full.shape and half.dtype == np.uint8
    assert np.abs(half.astype(float) - full).mean() < 2  # of 255 (bfloat16: about 0.25): rounding only


# -- PseudoVideoPipeline: how many images, in which type -------------------------------------------


def test_pseudo_video_batch_size_is_the_image_count_and_pil_is_the_default():
    pipe = tiny_pseudo_video("markov")
    # Before the fix: batch_size was a memory knob (1 image), the default was "np", and
    # num_images_per_prompt raised TypeError.
    images = pipe(batch_size=4).images
    assert isinstance(images, list) and len(images) == 4
    assert all(isinstance(image, PIL.Image.Image) for image in images)
    assert len(pipe().images) == 1

    seeded = dict(generator=torch.Generator().manual_seed(3), output_type="np")
    six = pipe(batch_size=6, **seeded).images
    assert six.shape[0] == 6
    # num_images_per_prompt multiplies batch_size: the same six images.
    seeded["generator"] = torch.Generator().manual_seed(3)
    assert np.array_equal(pipe(batch_size=3, num_images_per_prompt=2, **seeded).images, six)
    # chunk_size is memory only; num_images is hueflow's older name for the count.
    seeded["generator"] = torch.Generator().manual_seed(3)
    assert np.allclose(pipe(batch_size=6, chunk_size=4, **seeded).images, six, atol=1e-6)
    seeded["generator"] = torch.Generator().manual_seed(3)
    assert np.array_equal(pipe(num_images=6, **seeded).images, six)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"num_images": 2, "batch_size": 3},
            "num_images=2 and batch_size=3, num_images_per_prompt=1 each say how many images to make "
            "(batch_size x num_images_per_prompt, as in Diffusers): give only batch_size. For how many are "
            "generated at once (memory), use chunk_size.",
        ),
        ({"num_images_per_prompt": 0}, "num_images_per_prompt must be a positive integer, got 0."),
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0."),
    ],
)
def test_pseudo_video_image_count_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        tiny_pseudo_video("markov")(**kwargs)


# -- generator= ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, call, message",
    [
        (
            make_tiny_colormnet,
            lambda pipe, clip, **kw: pipe(grey(clip), exemplars=clip[0], output_type="np", **kw).frames,
            "generator= has no effect on this ColorMNetPipeline call: colorization is deterministic.",
        ),
        (
            tiny_correspondence,
            lambda pipe, clip, **kw: pipe(clip, points=np.array([[20.0, 16.0]]), **kw).points,
            "generator= has no effect on this CorrespondencePipeline call: tracking is deterministic.",
        ),
        (
            make_tiny_zero_to_hero,
            lambda pipe, clip, **kw: (
                pipe(clip, edited_frame=clip[0], finetune_steps=0, output_type="np", **kw).frames
            ),
            "generator= has no effect on this ZeroToHeroPipeline call: it only seeds the per-video "
            "fine-tuning, which is off.",
        ),
    ],
    ids=["colorization", "correspondence", "appearance-without-finetuning"],
)
def test_generator_warns_where_it_has_no_effect(make, call, message):
    pipe, clip = make(), make_colour_clip(num_frames=3)
    with pytest.warns(UserWarning, match=f"^{re.escape(message)}$") as record:
        with_generator = call(pipe, clip, generator=torch.Generator().manual_seed(0))
    # Reported at the caller's line (here), not inside the pipeline.
    assert [Path(w.filename).name for w in record if str(w.message) == message] == [Path(__file__).name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        without = call(pipe, clip)
    assert not [w for w in caught if "generator=" in str(w.message)]
    assert np.array_equal(with_generator, without)


def test_appearance_generator_seeds_the_finetuning():
    # A tiny fallback threshold opens the restorer's gate everywhere, so the fine-tuned weights show.
    pipe = make_tiny_zero_to_hero(random_head=False, fallback_threshold=1e-9)
    clip = make_colour_clip(num_frames=2, height=48, width=64)
    edited = clip[0][..., ::-1].copy()  # a colour edit: channels swapped

    def run(seed: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(seed)
        return pipe(clip, edited_frame=edited, finetune_steps=2, generator=generator, output_type="np").frames

    first, again, other = run(7), run(7), run(8)
    assert np.array_equal(first, again)
    assert np.abs(first[1] - other[1]).max() > 1e-4  # the seed is used, not only accepted
    # A seed in place of a generator is refused in words (before the fix: AttributeError on initial_seed).
    with pytest.raises(ValueError, match=r"^generator must be a torch\.Generator, got int\.$"):
        pipe(clip, edited_frame=edited, finetune_steps=2, generator=7)


# -- video inputs -------------------------------------------------------------------------------------


def test_colormnet_takes_a_float_tensor_as_the_video():
    # Before the fix a tensor was refused as "unsupported video source of type Tensor".
    pipe, clip = make_tiny_colormnet(), make_colour_clip(num_frames=3)
    video = grey(clip)
    expected = pipe(video, exemplars=clip[0], output_type="np").frames
    channels_first = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255  # (T, C, H, W), as "pt" output
    for tensor in (channels_first, channels_first.permute(0, 2, 3, 1)):  # and (T, H, W, C)
        np.testing.assert_array_equal(pipe(tensor, exemplars=clip[0], output_type="np").frames, expected)
    # The pipeline's own output_type="pt" result goes back in as a video.
    own = pipe(video, exemplars=clip[0], output_type="pt").frames
    assert own.shape == (3, 3, 48, 64) and own.dtype == torch.float32
    assert len(pipe(own, exemplars=clip[0]).frames) == 3


@pytest.mark.parametrize(
    "make, call",
    [
        (make_tiny_colormnet, lambda pipe, video, image: pipe(video, exemplars=image)),
        (tiny_correspondence, lambda pipe, video, image: pipe(video, points=np.array([[1.0, 1.0]]))),
        (make_tiny_zero_to_hero, lambda pipe, video, image: pipe(video, edited_frame=image)),
    ],
    ids=["colorization", "correspondence", "appearance"],
)
def test_a_url_as_the_video_is_refused_in_words(make, call):
    # Before the fix: "video source 'https:/example.com/x.mp4' does not exist." (Path folds the "//").
    message = (
        f"video source '{URL_VIDEO}' is a URL: hueflow reads local files only and does not download "
        "anything. Download the file first and pass its local path."
    )
    with pytest.raises(VideoInputError, match=f"^{re.escape(message)}$"):
        call(make(), URL_VIDEO, make_colour_clip(num_frames=1)[0])


def test_a_url_as_an_exemplar_is_refused_in_words():
    url, clip = "https://example.com/x.png", make_colour_clip(num_frames=2)
    message = (
        f"image '{url}' is a URL: hueflow reads local files only and does not download anything. Download "
        "the file first and pass its local path."
    )
    with pytest.raises(VideoInputError, match=f"^{re.escape(message)}$"):
        make_tiny_colormnet()(grey(clip), exemplars=url)
