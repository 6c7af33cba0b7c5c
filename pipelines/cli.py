"""Command line: `python -m pipelines colorize ...`, `... colorize-batch ...`, `... transfer ...` and
`... publish ...`.

Every problem with what the user asked for (a missing or unreadable file, an argument out of range, an output
that would replace the input, a device this machine lacks) ends the command before any work with exit status
2 and one line `error: ...` on stderr; docs/bad-input.md lists the messages.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .core.video import VideoReader

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COLORIZATION_MODEL = REPO_ROOT / "checkpoints" / "colormnet-lite"
DEFAULT_APPEARANCE_MODEL = REPO_ROOT / "checkpoints" / "zero2hero-lite"
# The largest --processing-size taken (the smallest is the pipeline's, ColorMNetPipeline.min_processing_size).
# Frames are processed at most twice their own size (core.resize.MAX_PROCESSING_UPSCALE), and the model was
# trained at 256: beyond 2048 px a value only costs memory that a 2-core, 16 GB machine does not have.
MAX_PROCESSING_SIZE = 2048


class UsageError(ValueError):
    """An argument the command refuses before doing any work."""


class _Parser(argparse.ArgumentParser):
    """argparse's own errors in the command's format: one line `error: ...`, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _exemplar_frame(text: str) -> int | None:
    """`--exemplar-frame`: a frame index (0 or more), or -1 for a free reference (None)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < -1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a frame index: give the number of the frame the exemplar colours (frames count "
            "from 0), or -1 for a free reference"
        )
    return None if value == -1 else value


def _processing_size(text: str) -> int:
    from .colorization import ColorMNetPipeline

    low = ColorMNetPipeline.min_processing_size
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= MAX_PROCESSING_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of pixels from {low} to {MAX_PROCESSING_SIZE} (the short side the model "
            f"runs at), got {text!r}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def resolve_device(name: str | None) -> str:
    """`--device` checked on this machine (default: cuda when available, else cpu). A device torch cannot
    use here (`cuda` on a machine without a GPU or a CUDA build) is a UsageError, not an AssertionError
    halfway through loading the model."""
    import torch

    from .core.hub import device_problem

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    problem = device_problem(name)
    if problem:
        raise UsageError(
            f"--device {name}: {problem} Leave --device out to use a GPU only when there is one."
        )
    return str(torch.device(name))


def load_pipeline(pipeline_class: Any, model: str, device: str) -> Any:
    """`--model` loaded and moved to the (checked) device."""
    return pipeline_class.from_pretrained(model).to(device)


def open_input(args: argparse.Namespace) -> tuple[VideoReader, str]:
    """Everything about the input and output checked before any work: the output path (not the input
    itself, not a folder, an extension the writer makes, a folder that can be written), the device, and the
    video (a local video file or folder of frames, large enough for the pipelines). Returns the open reader
    and the device."""
    from .core.video import VideoReader, check_frame_size, check_output_path

    check_output_path(args.output, args.input)
    device = resolve_device(args.device)
    reader = VideoReader(args.input, max_frames=args.max_frames)
    check_frame_size(reader.info)
    return reader, device


def colorize(args: argparse.Namespace) -> int:
    from .colorization import ColorMNetPipeline, describe_placement
    from .core.video import load_image

    # Open the video once and check the request with the pipeline's own rules before loading the model.
    reader, device = open_input(args)
    exemplars = [load_image(path) for path in args.exemplar]  # decoded once, for the check and the call
    frames = args.exemplar_frame  # None entries are free references
    ColorMNetPipeline.check_inputs(len(reader), exemplars, frames, args.processing_size)
    result = load_pipeline(ColorMNetPipeline, args.model, device)(
        reader,
        exemplars=exemplars,
        exemplar_frames=frames,
        processing_size=args.processing_size,
        max_frames=args.max_frames,
        fallback_error=args.fallback_error,
        output_path=args.output,
    )
    # How each exemplar was used (a keyframe, a free reference aligned to a frame, or memory only) goes to
    # stderr: stdout is the video's path alone, for scripts.
    for number, placement in enumerate(result.exemplar_placements or [], start=1):
        print(f"exemplar {number}: {describe_placement(placement)}", file=sys.stderr)
    if result.coloured_backwards_from:
        start = result.coloured_backwards_from
        print(f"frames 0-{start - 1} coloured backwards from frame {start}", file=sys.stderr)
    print(result.video_path)
    return 0


def transfer(args: argparse.Namespace) -> int:
    from .appearance import ZeroToHeroPipeline
    from .core.video import load_image

    # Open the video once and check the request with the pipeline's own rules before loading the model (its
    # warnings, such as a resized edited frame, come from the call itself).
    reader, device = open_input(args)
    edited = load_image(args.edited_frame)  # decoded once, for the check and the call
    ZeroToHeroPipeline.check_inputs(
        reader.info, edited, args.frame_index, args.max_frames, args.finetune_steps, output_type=None
    )
    result = load_pipeline(ZeroToHeroPipeline, args.model, device)(
        reader,
        edited_frame=edited,
        frame_index=args.frame_index,
        use_restorer=not args.no_restorer,
        finetune_steps=args.finetune_steps,
        max_frames=args.max_frames,
        output_path=args.output,
    )
    print(result.video_path)
    return 0


def publish(args: argparse.Namespace) -> int:
    from .publish import publish_folder

    publish_folder(args.folder, args.repo_id, card=args.card, dry_run=args.dry_run, private=args.private)
    return 0


OUTPUT_HELP = (
    "output video: .mp4, .m4v, .mov or .mkv (H.264; the input's audio and timing kept), not the input itself"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pipelines", description="hueflow video colour and motion models")
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("colorize", help="colour a grayscale video from colour exemplar image(s)")
    sub.add_argument("input", help="video file (mp4, avi, mov, webm, gif, ...) or a folder of frames")
    sub.add_argument("--exemplar", action="append", required=True, help="colour reference image (repeatable)")
    sub.add_argument(
        "--exemplar-frame",
        action="append",
        type=_exemplar_frame,
        help="frame the matching --exemplar colours, from 0 (repeatable, same order; -1 = free reference)",
    )
    sub.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    sub.add_argument("--model", default=str(DEFAULT_COLORIZATION_MODEL), help="model folder or Hub repo id")
    sub.add_argument(
        "--processing-size",
        type=_processing_size,
        help=f"short side the model runs at, 64-{MAX_PROCESSING_SIZE} px (output keeps the input size)",
    )
    sub.add_argument("--max-frames", type=_positive_int)
    sub.add_argument(
        "--fallback-error",
        type=float,
        help="the anchored colour's threshold, in L units (0-100): a pixel takes the colour of the matching "
        "place in a keyframe, an aligned reference or the previous frame where the luminance around it "
        "differs by less than this, else the model's (default from the model, 4.0; negative: the model's "
        "colours only)",
    )
    sub.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    sub.set_defaults(run=colorize)

    sub = commands.add_parser("transfer", help="carry the edit of one frame through the whole video")
    sub.add_argument("input", help="video file (mp4, avi, mov, webm, gif, ...) or a folder of frames")
    sub.add_argument("--edited-frame", required=True, help="your edited version of frame --frame-index")
    sub.add_argument("--frame-index", type=int, default=0, help="the frame that was edited (default 0)")
    sub.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    sub.add_argument("--model", default=str(DEFAULT_APPEARANCE_MODEL), help="model folder or Hub repo id")
    sub.add_argument("--finetune-steps", type=int, help="per-video restorer fine-tuning (0 skips it)")
    sub.add_argument("--no-restorer", action="store_true", help="the Zero stage alone")
    sub.add_argument("--max-frames", type=_positive_int)
    sub.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    sub.set_defaults(run=transfer)

    sub = commands.add_parser(
        "publish", help="upload a model folder to the Hub with its model card as README"
    )
    sub.add_argument("folder", help="e.g. checkpoints/colormnet-lite")
    sub.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    sub.add_argument("--card", help="model card (default: model_cards/<folder name>.md)")
    sub.add_argument("--private", action="store_true")
    sub.add_argument("--dry-run", action="store_true", help="list what would be sent and render the card")
    sub.set_defaults(run=publish)

    from . import batch  # its own module: the manifest, sharding and resumable outputs

    batch.add_arguments(
        commands.add_parser(
            "colorize-batch",
            help="colour every video of a manifest (JSONL/CSV); resumable; shards under torchrun/accelerate",
        )
    )
    return parser


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    # A warning is one line `warning: ...`, like errors, not Python's "file:line: UserWarning:" and source.
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status: 0, or 2 with one line `error: ...` on stderr for any
    problem with the input (argparse's own errors exit 2 in the same format)."""
    from .core.hub import PretrainedLoadError
    from .core.video import VideoInputError

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except (VideoInputError, PretrainedLoadError, ValueError, FileNotFoundError) as error:
            # One line, whatever the message: scripts and the app read the first line.
            print("error: " + " ".join(str(error).split()), file=sys.stderr)
            return 2
