"""Publish a model folder to the Hugging Face Hub with its model card as the repo's README."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard

REPO_ROOT = Path(__file__).resolve().parent.parent
# Files a model folder may hold that do not belong on the Hub.
SKIPPED_PARTS = ("training_state", "__pycache__", ".git")


def model_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part in SKIPPED_PARTS for part in path.relative_to(folder).parts)
    )


def load_card(folder: Path, card: str | Path | None) -> ModelCard:
    path = Path(card) if card else REPO_ROOT / "model_cards" / f"{folder.name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"No model card at {path}: write one (model_cards/NAME.md) or pass --card.")
    model_card = ModelCard(path.read_text())  # parses and checks the YAML front matter
    if not model_card.data.to_dict():
        raise ValueError(f"{path} has no YAML front matter (license, library_name, tags ...).")
    return model_card


def publish_folder(
    folder: str | Path,
    repo_id: str,
    card: str | Path | None = None,
    dry_run: bool = False,
    private: bool = False,
) -> list[str]:
    """Upload `folder` (a `save_pretrained` folder) to `repo_id` in one commit, README = the card.

    With `dry_run`, print what would be sent and the rendered card, and send nothing."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file() and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a saved model folder (no model_index.json or config.json).")
    model_card = load_card(folder, card)
    files = model_files(folder)
    names = [str(path.relative_to(folder)) for path in files] + ["README.md"]
    if dry_run:
        print(f"would upload to https://huggingface.co/{repo_id} ({'private' if private else 'public'}):")
        for path in files:
            print(f"  {path.relative_to(folder)}  ({path.stat().st_size / 1e6:.2f} MB)")
        print("  README.md  (model card)\n")
        print(str(model_card))
        return names
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    operations = [CommitOperationAdd(str(path.relative_to(folder)), str(path)) for path in files]
    operations.append(CommitOperationAdd("README.md", str(model_card).encode()))
    api.create_commit(repo_id, operations=operations, commit_message=f"Upload {folder.name} from hueflow")
    print(f"uploaded {len(names)} files to https://huggingface.co/{repo_id}")
    return names
