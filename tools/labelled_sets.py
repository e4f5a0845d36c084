"""Build larger labelled text sets from real text available offline, to choose defaults on data that is
not the course's 300 reviews (see data/README.md, "Larger labelled sets, built on demand").

    python tools/labelled_sets.py [OUT_DIR]        # default: outputs/labelled_sets

- ``docstrings_en``: English. The first paragraph of every docstring (4 words or more) of the running
  interpreter's standard library, labelled by the area of the top-level module it documents (7 classes:
  gui, network, developer tools, concurrency, files, data and numbers, text). About 7,000 rows on
  Python 3.11. Split by file (a hash of the file's path), so that no file gives rows to two splits.
- ``topics_es``: Spanish. Every sentence of the course corpus, labelled by the topic group of its document
  (5 classes; the corpus was written in five topic batches, interleaved, so document i is in group i % 5;
  the last two documents, whose batch the data card leaves open, are left out). Split by document: in each
  group the 9th document is validation, the 10th test. About 1,550 rows.

Each set is a folder with train.csv, validation.csv and test.csv (columns ``text`` and ``label``), which
``python -m nlp_course.finetune --train-file ... --validation-file ... --test-file ...`` reads as they are.
"""

import ast
import csv
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp_course.code_corpus import iter_python_files  # noqa: E402
from nlp_course.data import load_corpus  # noqa: E402
from nlp_course.files import atomic_folder, outputs_dir  # noqa: E402

AREAS = {
    "gui": "tkinter idlelib turtle turtledemo",
    "network": "email http urllib mailbox imaplib wsgiref xmlrpc nntplib smtplib ssl ftplib socketserver cgi socket "
               "poplib ipaddress mimetypes telnetlib smtpd uu quopri base64 cgitb webbrowser",
    "developer tools": "importlib lib2to3 logging unittest inspect pydoc typing doctest bdb pdb ast symtable traceback "
                       "distutils pkgutil dis trace profile cProfile pstats timeit tokenize warnings argparse optparse "
                       "modulefinder runpy zipimport py_compile compileall sysconfig site",
    "concurrency": "asyncio multiprocessing threading concurrent subprocess queue sched selectors signal _threading_local",
    "files": "tarfile _pyio pathlib zipfile shutil os tempfile gzip bz2 lzma glob fnmatch filecmp io fileinput shelve "
             "dbm sqlite3 posixpath ntpath genericpath stat",
    "data and numbers": "_pydecimal datetime collections enum statistics _collections_abc operator calendar functools "
                        "random numbers fractions decimal heapq bisect copy dataclasses _strptime zoneinfo",
    "text": "xml encodings codecs difflib configparser re string textwrap json csv html unicodedata gettext locale "
            "pprint shlex stringprep",
}
AREA_OF = {module: area for area, modules in AREAS.items() for module in modules.split()}
TOPICS = ["history and geography", "science and nature", "everyday life and culture", "technology and economy",
          "arts, sport, health and fiction"]


def split_of(key: str) -> str:
    """train for 8 keys in 10, validation for 1, test for 1: a hash, the same on every machine."""
    bucket = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % 10
    return "validation" if bucket == 8 else "test" if bucket == 9 else "train"


def docstrings_en() -> dict[str, list[tuple[str, str]]]:
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    for rel, text in iter_python_files():
        area = AREA_OF.get(rel.split("/")[0].removesuffix(".py"))
        if area is None:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                first = " ".join(doc.split("\n\n")[0].split()) if doc else ""
                if len(first.split()) >= 4:
                    rows[split_of(rel)].append((first, area))
    return rows


def topics_es() -> dict[str, list[tuple[str, str]]]:
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    documents = list(load_corpus("corpus_es")["text"])
    for i, document in enumerate(documents[:50]):
        split = {8: "validation", 9: "test"}.get(i // 5, "train")
        rows[split] += [(sentence, TOPICS[i % 5]) for sentence in document.splitlines() if sentence.strip()]
    return rows


def write(rows: dict[str, list[tuple[str, str]]], folder: Path) -> None:
    with atomic_folder(folder) as tmp:
        for split, pairs in rows.items():
            with open(tmp / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["text", "label"])
                writer.writerows(pairs)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else outputs_dir() / "labelled_sets"
    for name, build in (("docstrings_en", docstrings_en), ("topics_es", topics_es)):
        rows = build()
        write(rows, out / name)
        sizes = ", ".join(f"{split} {len(pairs):,}" for split, pairs in rows.items())
        print(f"{out / name}: {sizes}; {len({label for pairs in rows.values() for _, label in pairs})} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
