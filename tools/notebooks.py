"""Maintainers' tool for the course notebooks.

    python tools/notebooks.py execute notebooks/*.ipynb   # run each at toy scale, offline; copies with
                                                         # outputs go to outputs/notebooks/, times printed
    python tools/notebooks.py run notebooks/01_nlp_concepts.ipynb   # execute in place, then clean
    python tools/notebooks.py clean notebooks/*.ipynb                # only clean

Cleaning removes every output and execution count, except in cells marked ``# NBVAL_CHECK_OUTPUT``:
those keep the outputs of the last run, which nbval then compares on every test run. Run ``run``
after changing such a cell, and commit the result. tests/test_notebooks_clean.py fails on anything else.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat

MARK = "NBVAL_CHECK_OUTPUT"
EXECUTED = Path(__file__).resolve().parent.parent / "outputs" / "notebooks"


def source_digest(path: Path) -> str:
    """The SHA-256 of a notebook file: an executed copy records it, so a stale copy is recognised."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_executed(path: Path, nb: nbformat.NotebookNode, outputs: dict[int, tuple[list, float]],
                   executed_by: str, out: Path = EXECUTED) -> Path:
    """Write a copy of ``nb`` (read from ``path``) with the given outputs and per-cell seconds, whole or not at all.

    ``outputs`` maps ``id(cell)`` of the code cells of ``nb`` to ``(outputs, seconds)``. The copy's metadata says
    which file, profile and tool produced it (``nlp_course``: ``source_sha256``, ``profile``, ``executed_by``,
    ``seconds``), which is what ``tools/course_site.py`` reads to decide whether it can reuse the copy.
    """
    executed = copy.deepcopy(nb)
    count, total = 0, 0.0
    for original, cell in zip(nb.cells, executed.cells, strict=True):
        if cell.cell_type != "code" or id(original) not in outputs:
            continue
        cell_outputs, seconds = outputs[id(original)]
        count += 1
        total += seconds
        cell.outputs = [nbformat.from_dict(o) for o in cell_outputs]
        for o in cell.outputs:
            if "execution_count" in o:
                o.execution_count = count
        cell.execution_count = count
        cell.metadata["nlp_course"] = {"seconds": round(seconds, 2)}
    executed.metadata["nlp_course"] = {
        "source": path.name, "source_sha256": source_digest(path), "executed_by": executed_by,
        "profile": os.environ.get("NLP_COURSE_PROFILE", "toy"), "seconds": round(total, 1),
        "executed_at": datetime.now().isoformat(timespec="seconds"),
    }
    out.mkdir(parents=True, exist_ok=True)
    target = out / path.name
    partial = target.with_suffix(".ipynb.partial")
    nbformat.write(executed, partial)
    partial.replace(target)  # never a half-written copy
    return target


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Seconds a cell took, from nbclient's timing metadata (0 when it has none)."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata.pop("widgets", None)  # progress-bar widget state is output too
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if MARK in cell.source:
            # keep only deterministic text, never images or widgets
            cell.outputs = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
        else:
            cell.outputs, cell.execution_count = [], None
    return nb


def execute(path: Path, timeout: int = 900, partial: Path | None = None) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook top to bottom in its own folder; the profile is toy unless set otherwise.

    If a cell fails and ``partial`` is given, the notebook as far as it ran is written there first.
    """
    from nbclient import NotebookClient

    os.environ.setdefault("NLP_COURSE_PROFILE", "toy")
    if os.environ["NLP_COURSE_PROFILE"] == "toy":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}).execute()
    except Exception:
        if partial is not None:
            nbformat.write(nb, partial)
        raise
    return nb, time.perf_counter() - start


def run(path: Path) -> float:
    nb, seconds = execute(path)
    nbformat.write(clean(nb), path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["execute", "run", "clean"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("outputs/notebooks"), help="where execute writes copies")
    args = parser.parse_args(argv)
    if args.command == "execute":
        from nbclient.exceptions import CellExecutionError

        args.out.mkdir(parents=True, exist_ok=True)
        failed = []
        for path in sorted(args.notebooks):
            try:
                nb, seconds = execute(path, partial=args.out / path.name)
            except CellExecutionError as err:
                failed.append(path.name)
                print(f"{path.name:<40} FAILED (the copy in {args.out}/ shows how far it ran)\n{err}")
                continue
            source = nbformat.read(path, as_version=4)
            write_executed(path, source, {id(original): (cell.outputs, cell_seconds(cell)) for original, cell
                                          in zip(source.cells, nb.cells, strict=True) if cell.cell_type == "code"},
                           executed_by="tools/notebooks.py execute", out=args.out)
            print(f"{path.name:<40} {seconds:6.1f} s   ({os.environ['NLP_COURSE_PROFILE']} profile)")
        print(f"executed copies with outputs: {args.out}/" + (f"; failed: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    for path in args.notebooks:
        if args.command == "run":
            print(f"{path}: executed in {run(path):.1f} s, outputs cleaned")
        else:
            nbformat.write(clean(nbformat.read(path, as_version=4)), path)
            print(f"{path}: cleaned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
