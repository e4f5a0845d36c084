"""Download every Hub asset a profile uses, before the class: ``python -m nlp_course.prefetch``.

    python -m nlp_course.prefetch --profile colab            # download, with progress bars; resumable
    python -m nlp_course.prefetch --profile colab --check    # only check each id, config, split and column
    HF_HUB_OFFLINE=1 jupyter lab                              # afterwards: the course runs from the cache

For instructors and classroom networks. Each asset of the manifest (``nlp_course.hub_assets``) is
fetched with ``huggingface_hub.snapshot_download`` into the usual Hugging Face cache, limited to the
files the course reads (the first shard of a streamed corpus, the tokenizer and weights of a model).
An interrupted download continues where it stopped when run again. With ``HF_HUB_OFFLINE=1`` the
course's loaders then read the cache, and fail at once, naming the asset, for anything not in it.

``--check`` downloads nothing but a dataset's first rows: it verifies that every repository, config
and split exists and has the columns (and label names) the course reads, so that a renamed column
on the Hub is found before a class, not during one.

Taught in: no notebook; the README's "Before a workshop" section.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from nlp_course.errors import CourseError, HubUnavailableError, run_command
from nlp_course.hub_assets import HubAsset, assets_for
from nlp_course.runtime import hub_available


class PrefetchError(CourseError):
    """An asset of the manifest is missing on the Hub, or differs from what the course reads."""


def download_patterns(asset: HubAsset) -> list[str]:
    """What prefetch downloads of an asset: its files, plus a dataset's card (it declares the configs)."""
    return list(asset.files) + (["README.md"] if asset.kind == "dataset" and "README.md" not in asset.files else [])


def fetch(asset: HubAsset) -> tuple[Path, int]:
    """Download (or finish downloading) one asset into the cache; return its snapshot folder and size in bytes."""
    from huggingface_hub import HfApi, snapshot_download

    patterns = download_patterns(asset)
    files = HfApi().list_repo_files(asset.repo_id, repo_type=asset.repo_type)
    wanted = [f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]
    if not any(f != "README.md" for f in wanted):
        raise PrefetchError(f"{asset.repo_id}: no file matches {asset.files} any more (the repository has "
                            f"{len(files)} files); update nlp_course/hub_assets.py.")
    folder = Path(snapshot_download(asset.repo_id, repo_type=asset.repo_type, allow_patterns=patterns))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return folder, size


def check(asset: HubAsset) -> str:
    """Verify that the asset has what the course reads; return a one-line description, or raise PrefetchError."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi()
    try:
        files = api.list_repo_files(asset.repo_id, repo_type=asset.repo_type)
    except RepositoryNotFoundError as err:
        raise PrefetchError(f"{asset.repo_id}: no such {asset.repo_type} repository on the Hub.") from err
    if asset.kind == "model":
        needed = [f for f in asset.files if not any(c in f for c in "*?[") and f not in files]
        if needed:
            raise PrefetchError(f"{asset.repo_id}: missing {needed}; the repository has {sorted(files)}.")
        return f"{asset.repo_id}: {', '.join(f for f in asset.files if f in files)}"
    return _check_dataset(asset)


def _check_dataset(asset: HubAsset) -> str:
    import datasets

    found = []
    for split in asset.splits:
        try:
            rows = datasets.load_dataset(asset.repo_id, asset.config, split=split, streaming=True)
            first = next(iter(rows))
        except (ValueError, RuntimeError, FileNotFoundError, StopIteration) as err:
            raise PrefetchError(f"{asset.repo_id} (config {asset.config}, split {split}): {err}") from err
        missing = [c for c in asset.columns if c not in first]
        if missing:
            raise PrefetchError(f"{asset.repo_id} (config {asset.config}, split {split}) has no column(s) {missing}; "
                                f"its columns are {sorted(first)}.")
        label = (rows.features or {}).get("label")
        if asset.labels and isinstance(label, datasets.ClassLabel) and tuple(label.names) != asset.labels:
            raise PrefetchError(f"{asset.repo_id}: label names {label.names}, the course expects {list(asset.labels)}.")
        found.append(split)
    config = f" config {asset.config}," if asset.config else ""
    return f"{asset.repo_id}:{config} splits {', '.join(found)}; columns {', '.join(asset.columns)}"


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size} B"


def run(args: argparse.Namespace) -> None:
    assets = assets_for(args.profile)
    if args.only:
        unknown = sorted(set(args.only) - {a.key for a in assets})
        if unknown:
            raise PrefetchError(f"--only {' '.join(unknown)}: not assets of the {args.profile!r} profile; "
                                f"choose among {', '.join(a.key for a in assets)}.")
        assets = [a for a in assets if a.key in args.only]
    if not assets:
        print(f"The {args.profile!r} profile uses no Hub asset: nothing to do.")
        return
    if not hub_available():
        raise HubUnavailableError("The Hugging Face Hub cannot be reached from here (or HF_HUB_OFFLINE is set); "
                                  "prefetch needs the network. Run it where the Hub is reachable.")
    total = 0
    for asset in assets:
        if args.check:
            print(f"ok  {check(asset)}", flush=True)
            continue
        print(f"{asset.repo_id} ({asset.download}):", flush=True)
        folder, size = fetch(asset)
        total += size
        print(f"  {human(size)} in {folder}", flush=True)
    if not args.check:
        print(f"{len(assets)} assets, {human(total)} in the cache. The course now runs offline: "
              "set HF_HUB_OFFLINE=1 before starting Jupyter.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nlp_course.prefetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="colab", choices=["colab", "full", "rehearsal", "toy"])
    parser.add_argument("--check", action="store_true", help="verify ids, configs, splits and columns; download nothing")
    parser.add_argument("--only", nargs="+", metavar="KEY", help="only these manifest keys (e.g. corpus_es gpt2_es)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
