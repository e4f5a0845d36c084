"""Where the course's files are, and writing files and folders whole or not at all.

- ``data_dir()``: the course's ``data/`` folder; ``outputs_dir()``: where notebooks and commands save
  what later ones reuse (tokenizers, checkpoints, executed notebooks).
- ``write_atomically(path, text)``: a file is either its old content or its new one, never half of it.
- ``atomic_folder(path)``: fill a temporary folder beside ``path``, then put it in place in one step.
  ``staging_folder`` and ``commit_folder`` are its two halves, for work several processes share (an
  ``accelerator.save_state`` checkpoint: every process writes, one process commits).

A run killed at any moment (a Colab session that dies, Ctrl-C) leaves the previous version or the new
one, plus at most a hidden ``.NAME.tmp`` that the next write of the same path clears away.

Taught in: 04_pretraining_roberta (why checkpoints must be whole), used by every saving function.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nlp_course.errors import DataSourceError

DATA_ENV_VAR = "NLP_COURSE_DATA"
OUTPUTS_ENV_VAR = "NLP_COURSE_OUTPUTS"
DATA_MARKER = "corpus_es.txt"  # a folder is the course's data/ if it holds this file and a README.md


def data_dir() -> Path:
    """The course's ``data/`` folder: ``$NLP_COURSE_DATA``, else the one beside this package."""
    candidates = []
    if os.environ.get(DATA_ENV_VAR):
        candidates.append(Path(os.environ[DATA_ENV_VAR]).expanduser())
    candidates += [Path(__file__).resolve().parent.parent / "data", Path.cwd() / "data", Path.cwd().parent / "data"]
    for path in candidates:
        if (path / "README.md").is_file() and (path / DATA_MARKER).is_file():
            return path
    raise DataSourceError(
        "The course's data/ folder was not found (looked in: "
        + ", ".join(str(p) for p in candidates)
        + "). Install the course from a clone of its repository (pip install -e .), "
        f"or set {DATA_ENV_VAR} to the data/ folder of a clone."
    )


def outputs_dir() -> Path:
    """Where notebooks save what later notebooks reuse: ``$NLP_COURSE_OUTPUTS`` or ``<repo>/outputs``."""
    if os.environ.get(OUTPUTS_ENV_VAR):
        return Path(os.environ[OUTPUTS_ENV_VAR]).expanduser()
    return data_dir().parent / "outputs"


def write_atomically(path: Path, text: str) -> None:
    """Write a text file in full or not at all: a temporary file beside it, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def staging_folder(path: Path) -> Path:
    """An empty hidden folder beside ``path`` (``.NAME.tmp``) to fill before ``commit_folder``.

    Whatever an interrupted earlier write left there is removed first.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_folder(tmp: Path, path: Path) -> Path:
    """Put the filled folder ``tmp`` in the place of ``path`` (replacing any old one); return ``path``.

    A folder cannot be renamed over a non-empty one, so the old one is first renamed aside
    (``.NAME.old``), then removed: an interruption leaves either version whole under ``path``, or the
    new one still in ``tmp`` and the old one in ``.NAME.old``, never a mixture.
    """
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    Path(tmp).rename(path)
    shutil.rmtree(old, ignore_errors=True)
    return path


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """``with atomic_folder(out / "final") as tmp: model.save_pretrained(tmp)``: all of it, or nothing.

    On an exception the temporary folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(path)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    commit_folder(tmp, path)
