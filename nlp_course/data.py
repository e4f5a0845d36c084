"""Where the course's text comes from: the Hub, a local file or folder, or the course's own files.

Every loader returns a `datasets` object, whichever the source, so a notebook's code does not
change between the ``toy`` profile (offline, files in ``data/``) and the ``colab`` profile (Hub).

- ``load_corpus(source)``: unlabelled text, one document per row, in a ``text`` column.
- ``load_labelled(source)``: a ``DatasetDict`` with ``text`` and ``label`` (a ``ClassLabel``).

Python code (the standard library, CodeParrot's filters) is in ``nlp_course.code_corpus``.

A ``source`` is resolved in this order: a course name (``"corpus_es"``, ``"reviews_es"``,
``"reviews_en"``); an existing local path; something that looks like a path (an extension or a
leading ``./``, ``/``, ``~``) but does not exist, which is an error; otherwise a Hub id. A Hub id
with no network fails at once with a message naming the alternatives, rather than retrying for
half a minute.

Taught in: 01_nlp_concepts (the Spanish corpus) and used by every later notebook.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import datasets

from nlp_course.errors import DataSourceError, HubUnavailableError
from nlp_course.files import data_dir
from nlp_course.hub_assets import by_repo_id
from nlp_course.runtime import cached_snapshot, hub_available, offline_mode

SUPPORTED_FORMATS = {
    ".txt": "text",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
SPLIT_NAMES = ("train", "validation", "test")

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


def offline_message(hub_id: str, what: str) -> str:
    """Why a Hub id cannot be loaded offline, and what to use instead (``what``: corpus, labelled or code)."""
    prefetch = (" To use it offline, download it first where the Hub is reachable: "
                "python -m nlp_course.prefetch --profile colab.")
    if what == "code":
        instead = "this interpreter's standard library ('stdlib'), or pass a local folder of .py files."
    else:
        course = ", ".join(repr(k) for k, v in COURSE_DATASETS.items() if v.kind == what)
        instead = f"the course's own files ({course}), or pass a local file or folder ({', '.join(SUPPORTED_FORMATS)})."
    return (
        f"Cannot load {hub_id!r} from the Hugging Face Hub: it is not reachable from here "
        "(no network, or HF_HUB_OFFLINE=1). Offline, use the toy profile "
        "(nlp_course.get_profile('toy') or NLP_COURSE_PROFILE=toy), which reads " + instead + prefetch
    )


def looks_like_path(source: str) -> bool:
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
    if looks_like_path(source):
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
        if isinstance(cause, UnicodeDecodeError):
            advice = ("The file is not UTF-8 (Excel and older Windows tools often save Latin-1 or cp1252): save it "
                      "again as UTF-8, e.g. `iconv -f latin1 -t utf-8 old.csv > new.csv`, or in pandas "
                      "`pd.read_csv(path, encoding='latin-1').to_csv(new_path, index=False)`.")
        elif "corresponds to no data" in str(cause):
            advice = "A file holds no rows (a header alone?): add rows, or leave that file out."
        else:
            advice = "Check that the files are well formed and that all files have the same columns."
        raise DataSourceError(
            f"Could not read {where} as {builder}: {type(cause).__name__}: {str(cause)[:300]}. {advice}"
        ) from err
    # `datasets` sorts splits by name; give them back in the usual train, validation, test order.
    return type(loaded)({name: loaded[name] for name in SPLIT_NAMES if name in loaded})


def _load_local(path: Path, streaming: bool, sample_by: str):
    builder, files = _local_data_files(path)
    kwargs = {"sample_by": sample_by} if builder == "text" else {}
    return _read(builder, files, repr(str(path)), streaming=streaming, **kwargs)


def load_hub_dataset(hub_id: str, config: str | None, streaming: bool, what: str, **kwargs):
    """``datasets.load_dataset(hub_id, config)`` from the Hub, or offline from what ``prefetch`` cached.

    datasets 5 in offline mode reads only its own prepared Arrow cache, not files that
    ``huggingface_hub`` downloaded; so offline, a repository found in the Hub cache is loaded from its
    snapshot folder, which holds the same files and the same card (the configs). Anything else fails at
    once with what to do (``what``: corpus, labelled or code, for the message).
    """
    if not hub_available():
        snapshot = cached_snapshot(hub_id, "dataset") if offline_mode() else None
        if snapshot is None:
            raise HubUnavailableError(offline_message(hub_id, what))
        return datasets.load_dataset(str(snapshot), config, streaming=streaming, **kwargs)
    try:
        return datasets.load_dataset(hub_id, config, streaming=streaming, **kwargs)
    except RuntimeError as err:  # a dataset that ships a loading script: say what to do instead
        if "scripts are no longer supported" not in str(err):
            raise
        raise DataSourceError(f"{hub_id!r} ships a loading script ({err}); datasets 5 no longer runs them. Use a "
                              "parquet or JSON-lines copy of it (the Hub's refs/convert/parquet branch, or another "
                              "repository) and record it in nlp_course/hub_assets.py.") from err


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
        ds = load_hub_dataset(target, config, streaming, "corpus")
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
        dd = load_hub_dataset(target, config, False, "labelled")
    for column, role in ((text_column, "text"), (label_column, "label")):
        _check_column(dd, column, role, str(source))
    dd = datasets.DatasetDict(
        {split: _rename_columns(ds, {text_column: "text", label_column: "label"}) for split, ds in dd.items()}
    )
    _check_text(dd, str(source))
    known = by_repo_id(str(target)) if kind == "hub" else None  # the manifest names a Hub set's integer labels
    return _encode_labels(dd, str(source), known.labels if known and known.config == config else ())


def _encode_labels(dd: datasets.DatasetDict, source: str, names: tuple[str, ...] = ()) -> datasets.DatasetDict:
    """One ``ClassLabel`` shared by every split, so a label has the same id in train and test.

    Strings are sorted alphabetically. Integers already numbered 0..n-1 keep their values, named by
    ``names`` when it has one name for each (the manifest's label names of a Hub dataset); other
    integers (star ratings 1 to 5, say) are renumbered in increasing order, with the original
    values as names.
    """
    features = [ds.features["label"] for ds in dd.values()]
    if all(isinstance(f, datasets.ClassLabel) for f in features) and len({tuple(f.names) for f in features}) == 1:
        return dd
    for split, ds in dd.items():
        feature = ds.features["label"]
        if not isinstance(feature, (datasets.Value, datasets.ClassLabel)):
            raise DataSourceError(f"The labels of the {split!r} split of {source!r} are {feature}, not single values; "
                                  "the label column must hold one string or integer per row.")
    values = set()
    for split, ds in dd.items():
        column = ds["label"]
        if any(v is None for v in column):
            raise DataSourceError(f"Some rows of the {split!r} split of {source!r} have no label; fill or remove them.")
        values.update(column)
    if all(isinstance(v, str) for v in values) and any(v != v.strip() for v in values):
        # "negative" and "negative " are one class, whatever a spreadsheet left around the word
        dd = dd.map(lambda b: {"label": [v.strip() for v in b["label"]]}, batched=True)
        values = {v.strip() for v in values}
        if "" in values:
            raise DataSourceError(f"Some labels of {source!r} are blank; fill or remove those rows.")
    if all(isinstance(v, bool) for v in values) or not all(isinstance(v, (int, str)) for v in values):
        raise DataSourceError(f"Labels of {source!r} must be strings or integers, got {sorted(map(repr, values))[:5]}.")
    if all(isinstance(v, int) for v in values):
        ordered = sorted(values)
        names = list(names) if ordered == list(range(len(names))) else [str(v) for v in ordered]
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
