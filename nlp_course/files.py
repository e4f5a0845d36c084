"""Where the course's files are, and writing files and folders whole or not at all.

- ``data_dir()``: the course's ``data/`` folder; ``outputs_dir()``: where notebooks and commands save
  what later ones reuse (tokenizers, checkpoints, executed notebooks).
- ``write_atomically(path, text)``: a file is either its old content or its new one, never half of it.
- ``atomic_folder(path)``: fill a temporary folder beside ``path``, then put it in place in one step.
  ``staging_folder`` and ``commit_folder`` are its two halves, for work several processes share (an
  ``accelerator.save_state`` checkpoint: every process writes, one process commits).
- ``check_writable(folder)``: before any long work, whether the folder can be created and written.
- ``lock_folder(folder)``: one run at a time in an output folder; a second one is refused at once.
- ``interrupts_deferred()``: Ctrl-C (and SIGTERM) wait until a group of renames is done.
- ``StopRequest``: a first Ctrl-C asks a training loop to stop at its next safe point (never in the
  middle of writing a checkpoint); a second one stops at once.

A run killed at any moment (a Colab session that dies, Ctrl-C) leaves the previous version or the new
one, plus at most a hidden ``.NAME.tmp`` that the next write of the same path clears away.

Taught in: 04_pretraining_roberta (why checkpoints must be whole), used by every saving function.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nlp_course.errors import CourseError, DataSourceError

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


DRIVE_OUTPUTS = "/content/drive/MyDrive/nlp-de-0-a-100/outputs"


def use_google_drive(path: str = DRIVE_OUTPUTS) -> Path:
    """On Colab, mount Google Drive and keep everything ``outputs_dir()`` holds there, so it outlives the session.

    Tokenizers, checkpoints and models then go to ``path`` on Drive, and a notebook run in a later session
    finds them. It is the two lines ``from google.colab import drive; drive.mount("/content/drive")``
    plus ``$NLP_COURSE_OUTPUTS``. Elsewhere it changes nothing and says so.
    """
    try:
        from google.colab import drive
    except ImportError:
        print(f"Not on Colab: outputs stay in {outputs_dir()}")
        return outputs_dir()
    drive.mount("/content/drive")
    os.environ[OUTPUTS_ENV_VAR] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    print(f"Outputs (tokenizers, checkpoints, models) go to Google Drive: {path}")
    return Path(path)


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


def check_writable(folder: Path, option: str = "--output-dir") -> None:
    """Raise ``CourseError`` unless ``folder`` can be created (if missing) and written to.

    Tried for real, with a temporary folder made and removed in the nearest existing parent, since
    permission bits say nothing for root or for a read-only file system. Nothing is left behind.
    """
    folder = Path(folder)
    target = folder if folder.is_dir() else next((p for p in folder.parents if p.exists()), Path.cwd())
    if folder.exists() and not folder.is_dir():
        raise CourseError(f"{option} {str(folder)!r} is a file; give a folder.")
    if not target.is_dir():
        raise CourseError(f"{option} {str(folder)!r} cannot be created: {str(target)!r} is a file, not a folder.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=target))
    except OSError as err:
        raise CourseError(f"{option} {str(folder)!r} cannot be written ({err.strerror} in {str(target)!r}); "
                          "choose a folder you can write to.") from err


_LOCKS: dict[str, int] = {}  # folder -> open descriptor holding the lock, for the life of the process


def lock_folder(folder: Path, option: str = "--output-dir") -> None:
    """Hold an exclusive lock on ``folder/.lock`` until this process ends; refuse if another run holds it.

    Under torchrun only the first process (``RANK`` 0) takes it: the others belong to the same run.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        return
    folder = Path(folder)
    key = str(folder.resolve())
    if key in _LOCKS:
        return
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise CourseError(f"Another run is writing to {option} {str(folder)!r} right now; wait for it to end, "
                          "or choose another folder.") from None
    _LOCKS[key] = descriptor


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then act on them: renames that belong
    together happen together. Only the main thread can do this; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: received.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in received[:1]:
            signal.raise_signal(sig)


class StopRequest:
    """``with StopRequest() as stop:`` ... ``if stop.requested: break`` at a safe point of a loop.

    A first Ctrl-C (or SIGTERM) only sets ``requested`` and says so; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once. Inactive (signals left as they are) outside the main thread and
    under torchrun, whose processes must all stop at the same step.
    """

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def _handle(self, number, frame):
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("\nStopping at the end of this step (Ctrl-C again to stop at once)...", flush=True)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread() and int(os.environ.get("WORLD_SIZE", "1")) == 1:
            self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
