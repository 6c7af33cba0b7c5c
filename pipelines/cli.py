"""Command line: `python -m pipelines colorize ...`, `... transfer ...` and `... publish ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COLORIZATION_MODEL = REPO_ROOT / "checkpoints" / "colormnet-lite"
DEFAULT_APPEARANCE_MODEL = REPO_ROOT / "checkpoints" / "zero2hero-lite"


def load_pipeline(pipeline_class, args: argparse.Namespace):
    """`--model` loaded and moved to `--device` (default: cuda when available)."""
    import torch

    pipe = pipeline_class.from_pretrained(args.model)
    return pipe.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def colorize(args: argparse.Namespace) -> int:
    from .colorization import ColorMNetPipeline, describe_placement
    from .core.video import VideoReader, load_image

    # Open the video once and check the request with the pipeline's own rules before loading the model.
    reader = VideoReader(args.input, max_frames=args.max_frames)
    exemplars = [load_image(path) for path in args.exemplar]  # decoded once, for the check and the call
    frames = [None if index < 0 else index for index in args.exemplar_frame] if args.exemplar_frame else None
    ColorMNetPipeline.check_inputs(len(reader), exemplars, frames, args.processing_size)
    result = load_pipeline(ColorMNetPipeline, args)(
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
    print(result.video_path)
    return 0


def transfer(args: argparse.Namespace) -> int:
    from .appearance import ZeroToHeroPipeline
    from .core.video import VideoReader, load_image

    # Open the video once and check the request with the pipeline's own rules before loading the model (its
    # warnings, such as a resized edited frame, come from the call itself).
    reader = VideoReader(args.input, max_frames=args.max_frames)
    edited = load_image(args.edited_frame)  # decoded once, for the check and the call
    ZeroToHeroPipeline.check_inputs(
        reader.info, edited, args.frame_index, args.max_frames, args.finetune_steps, output_type=None
    )
    result = load_pipeline(ZeroToHeroPipeline, args)(
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines", description="hueflow video colour and motion models"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("colorize", help="colour a grayscale video from colour exemplar image(s)")
    sub.add_argument("input", help="video file (mp4, avi, mov, webm, gif, ...) or a folder of frames")
    sub.add_argument("--exemplar", action="append", required=True, help="colour reference image (repeatable)")
    sub.add_argument(
        "--exemplar-frame",
        action="append",
        type=int,
        help="frame the matching --exemplar colours (repeatable, same order; -1 = free reference)",
    )
    sub.add_argument("-o", "--output", required=True, help="output .mp4 (H.264, the input's audio kept)")
    sub.add_argument("--model", default=str(DEFAULT_COLORIZATION_MODEL), help="model folder or Hub repo id")
    sub.add_argument(
        "--processing-size", type=int, help="short side the model runs at (output keeps the input size)"
    )
    sub.add_argument("--max-frames", type=int)
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
    sub.add_argument("-o", "--output", required=True, help="output .mp4 (H.264, the input's audio kept)")
    sub.add_argument("--model", default=str(DEFAULT_APPEARANCE_MODEL), help="model folder or Hub repo id")
    sub.add_argument("--finetune-steps", type=int, help="per-video restorer fine-tuning (0 skips it)")
    sub.add_argument("--no-restorer", action="store_true", help="the Zero stage alone")
    sub.add_argument("--max-frames", type=int)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    from .core.hub import PretrainedLoadError
    from .core.video import VideoInputError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (VideoInputError, PretrainedLoadError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
