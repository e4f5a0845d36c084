"""Where the course's text comes from: the Hub, a local file or folder, or the course's own files.

Every loader returns a `datasets` object, whichever the source, so a notebook's code does not
change between the ``toy`` profile (offline, files in ``data/``) and the ``colab`` profile (Hub).

- ``load_corpus(source)``: unlabelled text, one document per row, in a ``text`` column.
- ``load_labelled(source)``: a ``DatasetDict`` with ``text`` and ``label`` (a ``ClassLabel``).
- ``python_code_corpus()``: the ``.py`` files of the running interpreter's standard library, a real
  code corpus with no download (CodeParrot's stand-in at toy scale).

A ``source`` is resolved in this order: a course name (``"corpus_es"``, ``"reviews_es"``,
``"reviews_en"``); an existing local path; something that looks like a path (an extension or a
leading ``./``, ``/``, ``~``) but does not exist, which is an error; otherwise a Hub id. A Hub id
with no network fails at once with a message naming the alternatives, rather than retrying for
half a minute.

Taught in: 01_nlp_concepts (the Spanish corpus) and used by every later notebook.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import socket
import sys
import sysconfig
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import datasets
import torch

SUPPORTED_FORMATS = {
    ".txt": "text",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
SPLIT_NAMES = ("train", "validation", "test")
DATA_ENV_VAR = "NLP_COURSE_DATA"


class HubUnavailableError(ConnectionError):
    """The Hugging Face Hub cannot be reached (no network, or offline mode is on)."""


class DataSourceError(ValueError):
    """A data source that cannot be used as given: the message says what to do instead."""


@dataclass(frozen=True)
class CourseDataset:
    path: str  # relative to data/
    kind: str  # "corpus" or "labelled"
    description: str


COURSE_DATASETS: dict[str, CourseDataset] = {
    "corpus_es": CourseDataset(
        "corpus_es.txt",
        "corpus",
        "Spanish prose on varied topics, one sentence per line, a blank line between documents",
    ),
    "reviews_es": CourseDataset("reviews_es", "labelled", "short Spanish reviews, positive/negative"),
    "reviews_en": CourseDataset("reviews_en", "labelled", "short English reviews, positive/negative"),
}


# --------------------------------------------------------------------------------------------
# Where things are
# --------------------------------------------------------------------------------------------
def data_dir() -> Path:
    """The course's ``data/`` folder: ``$NLP_COURSE_DATA``, else the one beside this package."""
    candidates = []
    if os.environ.get(DATA_ENV_VAR):
        candidates.append(Path(os.environ[DATA_ENV_VAR]).expanduser())
    candidates += [Path(__file__).resolve().parent.parent / "data", Path.cwd() / "data", Path.cwd().parent / "data"]
    for path in candidates:
        if (path / "README.md").is_file() and (path / COURSE_DATASETS["corpus_es"].path).is_file():
            return path
    raise DataSourceError(
        "The course's data/ folder was not found (looked in: "
        + ", ".join(str(p) for p in candidates)
        + "). Install the course from a clone of its repository (pip install -e .), "
        f"or set {DATA_ENV_VAR} to the data/ folder of a clone."
    )


def hub_available(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub can be reached now, decided in at most ``timeout`` seconds.

    Offline mode (``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1``) counts as unreachable.
    """
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    target = (endpoint.hostname, endpoint.port or (443 if endpoint.scheme == "https" else 80))
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy and endpoint.scheme == "https":  # behind a proxy, being able to reach it is what counts
        proxy_url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        target = (proxy_url.hostname, proxy_url.port or 80)
    result: list[bool] = []

    def connect() -> None:  # DNS lookups ignore socket timeouts: run in a thread we can stop waiting for
        try:
            with socket.create_connection(target, timeout=timeout):
                result.append(True)
        except (OSError, TypeError):
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def _offline_message(hub_id: str, what: str) -> str:
    course = ", ".join(repr(k) for k, v in COURSE_DATASETS.items() if v.kind == what) or "'stdlib'"
    return (
        f"Cannot load {hub_id!r} from the Hugging Face Hub: it is not reachable from here "
        "(no network, or HF_HUB_OFFLINE=1). Offline, use the toy profile "
        "(nlp_course.get_profile('toy') or NLP_COURSE_PROFILE=toy), which reads the course's own "
        f"files ({course}), or pass a local file or folder ({', '.join(SUPPORTED_FORMATS)})."
    )


def _looks_like_path(source: str) -> bool:
    """A string meant as a local path, even if it does not exist: a Hub id is ``name`` or ``owner/name``."""
    first = source.replace("\\", "/").split("/")[0]
    return (
        source.startswith((".", "/", "~"))
        or source.endswith(("/", "\\"))
        or "\\" in source
        or source.count("/") > 1
        or re.match(r"^[A-Za-z]:[\\/]", source) is not None  # C:\ or C:/
        or Path(source).suffix.lower() in SUPPORTED_FORMATS
        or ("/" in source and Path(first).is_dir())  # data/my_corpus, where data/ exists here
    )


def _resolve(source: str | os.PathLike, what: str) -> tuple[str, object]:
    """Classify a source as ("course", CourseDataset), ("local", Path) or ("hub", id)."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip():
        raise DataSourceError(f"A data source must be a non-empty string or path, not {source!r}.")
    if source in COURSE_DATASETS:
        entry = COURSE_DATASETS[source]
        if entry.kind != what:
            others = [k for k, v in COURSE_DATASETS.items() if v.kind == what]
            raise DataSourceError(f"{source!r} is a {entry.kind} dataset, not a {what} one; use one of {others}.")
        return "course", entry
    path = Path(source).expanduser()
    if path.exists():
        return "local", path
    if _looks_like_path(source):
        raise FileNotFoundError(
            f"No such file or folder: {source!r}. Check the path (it is relative to {Path.cwd()}), "
            f"or use a course dataset: {', '.join(COURSE_DATASETS)}."
        )
    return "hub", source


_SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "test": "test", "testing": "test",
}
_SPLIT_RE = re.compile(r"^(" + "|".join(_SPLIT_ALIASES) + r")([-_.].*)?$")


def _split_of(path: Path, root: Path) -> str:
    """The split a file belongs to, from its name or a folder name (train.csv, test/part-0.parquet)."""
    for part in [path.stem, *reversed(path.relative_to(root).parts[:-1])]:
        match = _SPLIT_RE.match(part.lower())
        if match:
            return _SPLIT_ALIASES[match.group(1)]
    return "train"


def _local_data_files(path: Path) -> tuple[str, dict[str, list[str]]]:
    """The `datasets` builder name and ``{split: [files]}`` for a local file or folder."""
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: {str(path)!r}.")
    if path.is_file():
        files = [path]
    else:
        files = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in SUPPORTED_FORMATS
            and not any(part.startswith(".") for part in p.relative_to(path).parts)  # .ipynb_checkpoints/ ...
        )
        if not files:
            raise DataSourceError(
                f"The folder {str(path)!r} holds no file of a supported format ({', '.join(SUPPORTED_FORMATS)})."
            )
    builders = {SUPPORTED_FORMATS.get(p.suffix.lower()) for p in files}
    if None in builders:
        raise DataSourceError(
            f"Unsupported file format {files[0].suffix!r} ({files[0].name}). "
            f"Supported: {', '.join(SUPPORTED_FORMATS)}; convert the file or save it with one of these extensions."
        )
    if len(builders) > 1:
        raise DataSourceError(f"The folder {str(path)!r} mixes formats {sorted(builders)}; keep one format per folder.")
    empty = [p.name for p in files if p.stat().st_size == 0 or not p.read_bytes()[:65536].strip()]
    if empty:
        raise DataSourceError(f"Empty file(s): {', '.join(empty)}. Remove them or fill them with data.")
    if path.is_file():  # a file given by name is the training data, whatever it is called
        return builders.pop(), {"train": [str(path)]}
    by_split: dict[str, list[str]] = {}
    for p in files:
        by_split.setdefault(_split_of(p, path), []).append(str(p))
    return builders.pop(), by_split


def _read(builder: str, data_files: dict, where: str, **kwargs):
    """``datasets.load_dataset`` on local files, with a clear error and splits in the usual order."""
    try:
        loaded = datasets.load_dataset(builder, data_files=data_files, **kwargs)
    except (datasets.exceptions.DatasetGenerationError, ValueError) as err:
        cause = err.__cause__ or err
        raise DataSourceError(
            f"Could not read {where} as {builder}: {type(cause).__name__}: {str(cause)[:300]}. "
            "Check that the files are well formed and that all files have the same columns."
        ) from err
    # `datasets` sorts splits by name; give them back in the usual train, validation, test order.
    return type(loaded)({name: loaded[name] for name in SPLIT_NAMES if name in loaded})


def _load_local(path: Path, streaming: bool, sample_by: str):
    builder, files = _local_data_files(path)
    kwargs = {"sample_by": sample_by} if builder == "text" else {}
    return _read(builder, files, repr(str(path)), streaming=streaming, **kwargs)


def _load_hub(hub_id: str, config: str | None, streaming: bool, what: str):
    if not hub_available():
        raise HubUnavailableError(_offline_message(hub_id, what))
    return datasets.load_dataset(hub_id, config, streaming=streaming)


def _splits(ds) -> list:
    return list(ds.values()) if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)) else [ds]


def _check_column(ds, column: str, role: str, source: str) -> None:
    for part in _splits(ds):
        names = part.column_names
        if names is not None and column not in names:
            raise DataSourceError(
                f"{source!r} has no column {column!r} for the {role}; its columns are {names}. "
                f"Pass {role}_column='<one of them>'."
            )


def _check_text(ds, source: str) -> None:
    """The text column holds strings, with no missing values (map-style datasets only)."""
    for part in _splits(ds):
        if not isinstance(part, datasets.Dataset):
            continue
        feature = part.features["text"]
        if not (isinstance(feature, datasets.Value) and feature.dtype in {"string", "large_string"}):
            raise DataSourceError(f"The text column of {source!r} holds {feature}, not strings; pick the column with the text.")
        missing = sum(t is None for t in part["text"])
        if missing:
            raise DataSourceError(f"{missing} row(s) of {source!r} have no text; fill or remove them.")


def _rename_columns(ds, mapping: dict[str, str]):
    """Rename ``{old: new}`` columns, first dropping any other column already called ``new``."""
    mapping = {old: new for old, new in mapping.items() if old != new}
    if not mapping:
        return ds
    clashes = [new for new in mapping.values() if new in (ds.column_names or []) and new not in mapping]
    return ds.remove_columns(clashes).rename_columns(mapping)


# --------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------
def load_corpus(
    source: str | os.PathLike = "corpus_es",
    *,
    config: str | None = None,
    split: str = "train",
    text_column: str = "text",
    streaming: bool = False,
    max_documents: int | None = None,
    sample_by: str = "paragraph",
):
    """Load unlabelled text as a `datasets.Dataset` (``IterableDataset`` when streaming).

    Each row is a document in a ``text`` column. Plain-text files are read in the ELECTRA format by
    default (``sample_by="paragraph"``: a blank line ends a document); pass ``sample_by="line"``
    for one document per line. csv, json/jsonl and parquet files need a ``text_column``.
    """
    if max_documents is not None and (not isinstance(max_documents, int) or max_documents < 1):
        raise DataSourceError(f"max_documents must be a positive integer or None, not {max_documents!r}.")
    kind, target = _resolve(source, "corpus")
    if kind == "course":
        ds = _load_local(data_dir() / target.path, streaming, sample_by)
    elif kind == "local":
        ds = _load_local(target, streaming, sample_by)
    else:
        ds = _load_hub(target, config, streaming, "corpus")
    if split not in ds:
        raise DataSourceError(f"{str(source)!r} has no split {split!r}; its splits are {list(ds)}.")
    ds = ds[split]
    _check_column(ds, text_column, "text", str(source))
    ds = _rename_columns(ds, {text_column: "text"})
    if kind != "hub":  # our own readers: strip the trailing newline paragraphs keep, drop blanks
        _check_text(ds, str(source))
        ds = ds.map(lambda b: {"text": [t.strip() for t in b["text"]]}, batched=True)
        ds = ds.filter(lambda b: [bool(t) for t in b["text"]], batched=True)
        if isinstance(ds, datasets.Dataset) and ds.num_rows == 0:
            raise DataSourceError(f"{str(source)!r} holds no text (every row is empty).")
    if max_documents is not None:
        ds = ds.take(max_documents) if streaming else ds.select(range(min(max_documents, len(ds))))
    return ds


def load_labelled(
    source: str | os.PathLike = "reviews_es",
    *,
    config: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
) -> datasets.DatasetDict:
    """Load a labelled text dataset as a ``DatasetDict`` with ``text`` and ``label`` columns.

    String labels become a ``ClassLabel`` (names sorted alphabetically), so a model gets integer
    ids and ``features["label"].names`` gives them back. Splits come from file names
    (``train.*``, ``validation.*``, ``test.*``) or from the Hub dataset.
    """
    if text_column == label_column:
        raise DataSourceError(f"text_column and label_column are both {text_column!r}; they must be two columns.")
    kind, target = _resolve(source, "labelled")
    if kind == "course":
        dd = _load_local(data_dir() / target.path, False, "line")
    elif kind == "local":
        dd = _load_local(target, False, "line")
    else:
        dd = _load_hub(target, config, False, "labelled")
    for column, role in ((text_column, "text"), (label_column, "label")):
        _check_column(dd, column, role, str(source))
    dd = datasets.DatasetDict(
        {split: _rename_columns(ds, {text_column: "text", label_column: "label"}) for split, ds in dd.items()}
    )
    _check_text(dd, str(source))
    return _encode_labels(dd, str(source))


def _encode_labels(dd: datasets.DatasetDict, source: str) -> datasets.DatasetDict:
    """One ``ClassLabel`` shared by every split, so a label has the same id in train and test.

    Strings are sorted alphabetically. Integers already numbered 0..n-1 keep their values; other
    integers (star ratings 1 to 5, say) are renumbered in increasing order, with the original
    values as names.
    """
    features = [ds.features["label"] for ds in dd.values()]
    if all(isinstance(f, datasets.ClassLabel) for f in features) and len({tuple(f.names) for f in features}) == 1:
        return dd
    values = set()
    for split, ds in dd.items():
        column = ds["label"]
        if any(v is None for v in column):
            raise DataSourceError(f"Some rows of the {split!r} split of {source!r} have no label; fill or remove them.")
        values.update(column)
    if all(isinstance(v, bool) for v in values) or not all(isinstance(v, (int, str)) for v in values):
        raise DataSourceError(f"Labels of {source!r} must be strings or integers, got {sorted(map(repr, values))[:5]}.")
    if all(isinstance(v, int) for v in values):
        ordered = sorted(values)
        names = [str(v) for v in ordered]
        if ordered != list(range(len(ordered))):
            index = {v: i for i, v in enumerate(ordered)}
            dd = dd.map(lambda b: {"label": [index[v] for v in b["label"]]}, batched=True)
        return dd.cast_column("label", datasets.ClassLabel(names=names))
    if not all(isinstance(v, str) for v in values):
        raise DataSourceError(f"Labels of {source!r} mix strings and numbers; use one kind.")
    return dd.cast_column("label", datasets.ClassLabel(names=sorted(values)))


def load_labelled_files(
    files: dict[str, str | os.PathLike], *, text_column: str = "text", label_column: str = "label"
) -> datasets.DatasetDict:
    """Labelled splits from separate files, ``{"train": path, "validation": path, "test": path}``.

    The files must share one format and their columns; the labels of all splits are encoded together,
    so a label has the same id everywhere, as with ``load_labelled``.
    """
    if text_column == label_column:
        raise DataSourceError(f"text_column and label_column are both {text_column!r}; they must be two columns.")
    data_files, builders = {}, set()
    for split, path in files.items():
        path = Path(path).expanduser()
        builder, found = _local_data_files(path)  # existence, format and emptiness are checked here
        if path.is_dir():
            raise DataSourceError(f"The {split} file {str(path)!r} is a folder; give a file.")
        builders.add(builder)
        data_files[split] = found["train"]
    if len(builders) > 1:
        raise DataSourceError(f"The files are in different formats ({sorted(builders)}); use one format for all splits.")
    source = ", ".join(str(v) for v in files.values())
    dd = _read(builders.pop(), data_files, source)
    for column, role in ((text_column, "text"), (label_column, "label")):
        _check_column(dd, column, role, source)
    dd = datasets.DatasetDict(
        {split: _rename_columns(ds, {text_column: "text", label_column: "label"}) for split, ds in dd.items()}
    )
    _check_text(dd, source)
    return _encode_labels(dd, source)


def course_file(name: str) -> Path:
    """Path of a course dataset's file or folder in ``data/`` (``course_file("corpus_es")``)."""
    if name not in COURSE_DATASETS:
        raise DataSourceError(f"Unknown course dataset {name!r}; choose from {list(COURSE_DATASETS)}.")
    return data_dir() / COURSE_DATASETS[name].path


# --------------------------------------------------------------------------------------------
# Python code from the running interpreter
# --------------------------------------------------------------------------------------------
def stdlib_dir() -> Path:
    """The folder of the running interpreter's standard library (``.../lib/python3.X``)."""
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
_TEST_DIRS = {"test", "tests", "idle_test"}


def code_split(path: str, validation_every: int = 10) -> str:
    """``"validation"`` for about one file in ``validation_every``, else ``"train"``.

    Decided by a hash of the file's path, so the split is the same on every machine and run, and a
    file never moves between splits when others are added or removed.
    """
    digest = int(hashlib.md5(path.encode("utf-8")).hexdigest(), 16)
    return "validation" if digest % validation_every == 0 else "train"


def iter_python_files(include_tests: bool = False, split: str | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(relative_path, source)`` for each ``.py`` file of the standard library, sorted.

    Installed third-party packages (site-packages) are never included, and files that are not
    valid UTF-8 (a few test fixtures are, on purpose) are skipped. ``split`` (``"train"`` or
    ``"validation"``) keeps one side of ``code_split``.
    """
    if split not in (None, "train", "validation"):
        raise DataSourceError(f"split must be None, 'train' or 'validation', not {split!r}.")
    root = stdlib_dir()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = set(rel.parts[:-1])
        if parts & _SKIP_DIRS or (not include_tests and parts & _TEST_DIRS):
            continue
        if split is not None and code_split(rel.as_posix()) != split:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        yield rel.as_posix(), text


def python_code_corpus(max_files: int | None = None, include_tests: bool = False, split: str | None = None) -> datasets.Dataset:
    """The standard library's Python files as a ``Dataset`` with ``path``, ``content`` and ``size``.

    Column names follow CodeParrot's datasets on the Hub, so code written for one works on the other.
    """
    rows: dict[str, list] = {"path": [], "content": [], "size": []}
    for i, (rel, text) in enumerate(iter_python_files(include_tests, split)):
        if max_files is not None and i >= max_files:
            break
        rows["path"].append(rel)
        rows["content"].append(text)
        rows["size"].append(len(text.encode("utf-8")))
    if not rows["path"]:
        raise DataSourceError(
            f"No Python source files found under {stdlib_dir()} (this interpreter, {sys.executable}, "
            "may ship only compiled files). Use the colab profile's Hub code dataset or a local folder of .py files."
        )
    return datasets.Dataset.from_dict(rows)


def load_code_corpus(source: str = "stdlib", split: str = "train", max_files: int | None = None):
    """Python files with ``path`` and ``content`` columns, split into train/validation by ``code_split``.

    ``"stdlib"``: the running interpreter's standard library, as a ``Dataset``. A Hub id (e.g.
    ``codeparrot/codeparrot-clean-valid``): streamed, as an ``IterableDataset``.
    """
    if source == "stdlib":
        return python_code_corpus(max_files=max_files, split=split)
    if not hub_available():
        raise HubUnavailableError(_offline_message(source, "code"))
    stream = datasets.load_dataset(source, split="train", streaming=True)
    stream = stream.filter(lambda row: code_split(row["path"]) == split)
    return stream.take(max_files) if max_files else stream


# --------------------------------------------------------------------------------------------
# Cleaning a code corpus: CodeParrot's filters
# --------------------------------------------------------------------------------------------
# Each filter is a predicate, True for a file to drop, with CodeParrot's threshold as its default
# (the tiny-file filter is the course's own: CodeParrot has none). ``filter_code`` applies them in
# the order of CODE_FILTERS and counts what each removed.
AUTOGENERATED_MARKERS = ("auto-generated", "autogenerated", "automatically generated")


def is_tiny(text: str, min_lines: int = 5, min_chars: int = 100) -> bool:
    """Fewer than ``min_lines`` non-blank lines or ``min_chars`` characters: too little to learn from."""
    return len(text) < min_chars or sum(1 for line in text.splitlines() if line.strip()) < min_lines


def is_huge(text: str, max_bytes: int = 1_000_000) -> bool:
    """Over ``max_bytes`` of UTF-8 (1 MB, as CodeParrot's query): data files, vendored bundles."""
    return len(text.encode("utf-8")) > max_bytes


def is_autogenerated(text: str, scan_lines: int = 5) -> bool:
    """One of CodeParrot's markers (``auto-generated`` ...) in the first ``scan_lines`` lines, any case."""
    head = "\n".join(text.splitlines()[:scan_lines]).lower()
    return any(marker in head for marker in AUTOGENERATED_MARKERS)


def has_very_long_line(text: str, max_line_length: int = 1000) -> bool:
    """A line longer than ``max_line_length`` characters: minified code or embedded data."""
    return max((len(line) for line in text.splitlines()), default=0) > max_line_length


def has_long_lines_on_average(text: str, max_mean_line_length: int = 100) -> bool:
    """Lines longer than ``max_mean_line_length`` characters on average."""
    lines = text.splitlines()
    return bool(lines) and sum(map(len, lines)) / len(lines) > max_mean_line_length


def is_mostly_symbols(text: str, min_alphanumeric_fraction: float = 0.25) -> bool:
    """Fewer than ``min_alphanumeric_fraction`` of the characters are letters or digits: tables, binary blobs."""
    return not text or sum(c.isalnum() for c in text) / len(text) < min_alphanumeric_fraction


def content_hash(text: str) -> str:
    """MD5 of the text with all whitespace removed: files that differ only in spacing collide, on purpose."""
    return hashlib.md5(re.sub(r"\s+", "", text).encode("utf-8")).hexdigest()


CODE_FILTERS = {
    "tiny": is_tiny,
    "huge": is_huge,
    "auto-generated": is_autogenerated,
    "very long line": has_very_long_line,
    "long lines on average": has_long_lines_on_average,
    "mostly symbols": is_mostly_symbols,
}


def reject_reason(text: str, seen_hashes: set[str] | None = None) -> str | None:
    """The name of the first filter that drops ``text`` (``"duplicate"`` last), or None to keep it.

    ``seen_hashes`` collects the ``content_hash`` of the files kept so far; a file whose hash is in it
    is an exact duplicate. Pass the same set for a whole corpus, a new one for each pass over it.
    """
    for name, drop in CODE_FILTERS.items():
        if drop(text):
            return name
    if seen_hashes is not None:
        digest = content_hash(text)
        if digest in seen_hashes:
            return "duplicate"
        seen_hashes.add(digest)
    return None


def _text_of(row, column: str | int) -> str:
    return row if isinstance(row, str) else row[column]


def iter_filtered_code(rows, column: str | int = "content", counts: dict[str, int] | None = None) -> Iterator:
    """Yield the rows (strings, or dicts with the code in ``column``) that pass every filter, lazily.

    ``counts``, if given, is updated as rows go by: one entry per filter, plus ``"total"`` and ``"kept"``.
    For a stream (a ``datasets.IterableDataset``): each call starts a new set of hashes.
    """
    counts = {} if counts is None else counts
    for key in ("total", *CODE_FILTERS, "duplicate", "kept"):
        counts.setdefault(key, 0)
    seen: set[str] = set()
    for row in rows:
        counts["total"] += 1
        reason = reject_reason(_text_of(row, column), seen)
        counts["kept" if reason is None else reason] += 1
        if reason is None:
            yield row


def filter_code(rows, column: str = "content"):
    """Apply CodeParrot's filters in order; return ``(kept, counts)``.

    ``rows``: a ``datasets.Dataset`` (the kept rows come back as a ``Dataset``), or any iterable of
    strings or of dicts with the code in ``column`` (a list comes back). ``counts`` maps each filter
    to the files it removed (a file is counted by the first filter that drops it), plus ``"total"``
    and ``"kept"``.

    Taught in: 06_pretraining_gpt2_code (section "Cleaning the corpus").
    """
    counts: dict[str, int] = {}
    if isinstance(rows, datasets.Dataset):
        if column not in rows.column_names:
            raise DataSourceError(f"The dataset has no column {column!r}; its columns are {rows.column_names}.")
        texts = iter(rows[column])
        kept_indices = [i for i, _ in iter_filtered_code(enumerate(texts), column=1, counts=counts)]
        return rows.select(kept_indices), counts
    return list(iter_filtered_code(rows, column, counts)), counts


# --------------------------------------------------------------------------------------------
# Constant-length packing for causal language models
# --------------------------------------------------------------------------------------------
def estimate_chars_per_token(tokenizer, texts, max_texts: int = 500) -> float:
    """Characters per token over the first ``max_texts`` texts (CodeParrot's estimate: 3.6 on 500 files)."""
    sample = list(itertools.islice(iter(texts), max_texts))
    n_tokens = sum(len(ids) for ids in tokenizer(sample, add_special_tokens=False)["input_ids"]) if sample else 0
    if n_tokens == 0:
        raise ValueError("Cannot estimate characters per token: the first texts produce no tokens.")
    return sum(map(len, sample)) / n_tokens


class ConstantLengthDataset(torch.utils.data.IterableDataset):
    """Packs any iterable of strings into sequences of exactly ``seq_length`` tokens, no padding.

    Texts are read into a buffer of about ``num_of_sequences`` sequences' worth of characters
    (``seq_length * num_of_sequences * chars_per_token``), tokenized together, joined with the
    end-of-text token, and cut into sequences. The tail of each buffer shorter than ``seq_length``
    is dropped: on average half a sequence per ``num_of_sequences``, under 1 % of the tokens with
    the default 1,024. Yields ``{"input_ids": LongTensor of shape (seq_length,)}``; the labels are
    the inputs (the model shifts them), and there is no attention mask since nothing is padded.

    ``chars_per_token``: estimated from the first 500 texts if not given. ``infinite``: start the
    texts again when they run out, for training by steps (they must then be re-iterable: a list, a
    ``Dataset`` column such as ``ds["content"]``, any object whose ``iter()`` starts over). ``shuffle``: shuffle the sequences of each
    buffer with a generator seeded by ``seed``, so the order is the same on every run.
    ``tokens_read`` and ``tokens_yielded`` count, over the last iteration, the tokens (separators
    included) that came out of the tokenizer and those yielded in sequences.

    Taught in: 06_pretraining_gpt2_code (section "Constant-length packing").
    """

    def __init__(self, tokenizer, texts, seq_length: int = 1024, num_of_sequences: int = 1024,
                 chars_per_token: float | None = None, infinite: bool = False, shuffle: bool = False, seed: int = 0):
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be an iterable of strings (a list, a Dataset column, a stream), not one string.")
        if seq_length < 2 or num_of_sequences < 1:
            raise ValueError(f"seq_length must be at least 2 and num_of_sequences at least 1, got {seq_length}, {num_of_sequences}.")
        if tokenizer.eos_token_id is None:
            raise ValueError("The tokenizer has no end-of-text token (eos_token) to join texts with.")
        if infinite and iter(texts) is texts:
            raise ValueError("infinite=True reads the texts again and again: pass a list or a dataset, not an iterator.")
        if chars_per_token is None:
            if iter(texts) is texts:  # a one-shot iterator: keep the texts the estimate reads
                head = list(itertools.islice(texts, 500))
                texts = itertools.chain(head, texts)
                chars_per_token = estimate_chars_per_token(tokenizer, head)
            else:
                chars_per_token = estimate_chars_per_token(tokenizer, texts)
        self.tokenizer, self.texts, self.seq_length = tokenizer, texts, seq_length
        self.num_of_sequences, self.chars_per_token = num_of_sequences, chars_per_token
        self.infinite, self.shuffle, self.seed = infinite, shuffle, seed
        self.max_buffer_chars = seq_length * num_of_sequences * chars_per_token
        self.tokens_read = self.tokens_yielded = 0

    def _buffers(self) -> Iterator[list[str]]:
        """Lists of texts of about ``max_buffer_chars`` characters, the texts restarted if infinite."""
        buffer, size, epoch_texts = [], 0, 0
        texts = iter(self.texts)
        while True:
            try:
                text = next(texts)
            except StopIteration:
                if not self.infinite or epoch_texts == 0:  # finite, or nothing to loop over
                    break
                texts, epoch_texts = iter(self.texts), 0
                continue
            epoch_texts += 1
            buffer.append(text)
            size += len(text)
            if size >= self.max_buffer_chars:
                yield buffer
                buffer, size = [], 0
        if buffer:
            yield buffer

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = torch.utils.data.get_worker_info()  # several DataLoader workers: one share of the buffers each
        rng = random.Random(self.seed)
        self.tokens_read = self.tokens_yielded = 0
        for b, buffer in enumerate(self._buffers()):
            if worker is not None and b % worker.num_workers != worker.id:
                continue
            ids: list[int] = []
            for text_ids in self.tokenizer(buffer, add_special_tokens=False)["input_ids"]:
                ids.extend(text_ids)
                ids.append(self.tokenizer.eos_token_id)
            self.tokens_read += len(ids)
            sequences = [ids[i : i + self.seq_length] for i in range(0, len(ids) - self.seq_length + 1, self.seq_length)]
            if self.shuffle:
                rng.shuffle(sequences)
            for sequence in sequences:
                self.tokens_yielded += self.seq_length
                yield {"input_ids": torch.tensor(sequence, dtype=torch.long)}
