"""Checks for notebook 03 (tokenizers): exercises 1, 2, 4 and 6.

Exercises 1 and 2 ask for numbers of the toy profile, which the checks recompute from the course's corpus
as the notebook reads it (the first 90 % of the documents for training, the rest held out). Exercise 4 runs
the learner's function on Python sources with known answers; exercise 6 measures the learner's string with
the learner's own Unigram tokenizer, so it holds in every profile. Exercises 3 and 5 (training code
tokenizers of several sizes, timing on your machine) are answered in ``solutions/03_solutions.ipynb``.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import numbers
import tokenize

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import kind as _kind

VOCAB_SIZE = 2_000  # the toy profile's vocabulary


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@functools.lru_cache(maxsize=1)
def _toy_docs() -> tuple[str, ...]:
    from nlp_course.data import load_corpus

    return tuple(load_corpus("corpus_es")["text"])


def _train_heldout() -> tuple[list[str], list[str]]:
    docs = list(_toy_docs())
    cut = int(0.9 * len(docs))
    return docs[:cut], docs[cut:]


# ---------------------------------------------------------------- 1: a lower-cased WordPiece
@functools.cache
def _wordpiece_report(lowercase: bool) -> tuple[float, float]:
    from nlp_course.tokenization import tokenizer_report, train_tokenizer

    train, heldout = _train_heldout()
    report = tokenizer_report(train_tokenizer(train, kind="wordpiece", vocab_size=VOCAB_SIZE, lowercase=lowercase), heldout)
    return report["fertility"], report["unknown_rate"]


def _close(a: float, b: float) -> bool:
    # WordPiece training breaks ties between equally frequent pairs in no fixed order: two trainings with
    # lowercase=True on the same text differ by up to about 0.2 % in fertility. Lower-casing itself moves it by 3 %.
    return abs(a - b) <= max(0.002, 0.006 * abs(b))


@exercise("03", 1, "fertility and unknown rate of the Spanish WordPiece with lowercase=True (toy profile)")
def _(answer) -> str:
    if hasattr(answer, "to_dict"):  # a row of the pandas report
        answer = answer.to_dict()
    if not isinstance(answer, dict):
        raise Wrong(f"expected the dict that tokenizer_report returns (fertility, unknown_rate, ...), got {_kind(answer)}.")
    for key in ("fertility", "unknown_rate"):
        if key not in answer:
            raise Wrong(f"no {key!r} in your dict: pass tokenizer_report(lowercased, measured_es) itself.")
        if not _real(answer[key]):
            raise Wrong(f"{key} should be a number, got {_kind(answer[key])}.")
    fertility, unknown = answer["fertility"], answer["unknown_rate"]
    right_fertility, right_unknown = _wordpiece_report(True)
    if _close(fertility, right_fertility) and _close(unknown, right_unknown):
        cased_fertility, cased_unknown = _wordpiece_report(False)
        unknown_change = (f"the unknown rate stays at {right_unknown:.2%}" if _close(cased_unknown, right_unknown)
                          else f"the unknown rate from {cased_unknown:.2%} to {right_unknown:.2%}")
        return (f"right: lower-casing takes fertility from {cased_fertility:.3f} to {right_fertility:.3f} tokens per word "
                f"and {unknown_change}: 'El' and 'el' now share one "
                "entry, which frees vocabulary for other words. None of the accent collisions of section 1 merges, "
                "though: lowercase=True keeps strip_accents=False, so 'él' and 'el' stay two tokens.")
    if _close(fertility, _wordpiece_report(False)[0]):
        raise Wrong(f"a fertility of {fertility:.3f} is the cased WordPiece's (section 4's table): train a new one with "
                    "train_tokenizer(compare_docs, kind='wordpiece', vocab_size=VOCAB_SIZE, lowercase=True).")
    raise Wrong(f"fertility {fertility:.3f} and unknown rate {unknown:.4f} are not what the toy profile gives: train with "
                "train_tokenizer(compare_docs, kind='wordpiece', vocab_size=VOCAB_SIZE, lowercase=True) and measure "
                "tokenizer_report(lowercased, measured_es), the held-out documents of section 4.")


# ---------------------------------------------------------------- 2: merges before 'ción'
@functools.cache
def _merges(documents: int | None, lower: bool = True) -> int:
    """The number of the merge (counted from 1) that makes 'ción' with section 3's BPE on ``documents`` documents."""
    from collections import Counter

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    docs = _toy_docs()[:documents]
    word_counts = Counter(w for doc in docs for w in (doc.lower() if lower else doc).split())
    text = " ".join(word for word, count in word_counts.items() for _ in range(count))
    alphabet = {ch for word in word_counts for ch in word}
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bpe.train_from_iterator([text], trainer=trainers.BpeTrainer(vocab_size=len(alphabet) + 400, min_frequency=0,
                                                                show_progress=False))
    merges = [m.split(" ") if isinstance(m, str) else m for m in json.loads(bpe.to_str())["model"]["merges"]]
    return next(n for n, (a, b) in enumerate(merges, start=1) if a + b == "ción")


@exercise("03", 2, "merges of learn_bpe on the whole toy corpus until 'ción' is learned")
def _(answer) -> str:
    if isinstance(answer, (list, tuple)):
        raise Wrong(f"expected the number of merges, a whole number, got a {type(answer).__name__} of {len(answer)} "
                    "items: count the merges up to and including the one that makes 'ción'.")
    if not _real(answer) or answer != int(answer):
        raise Wrong(f"expected the number of merges, a whole number, got {_kind(answer)}.")
    answer, right = int(answer), _merges(None)
    if answer == right:
        return (f"right: 'ción' is merge number {right}, out of the first hundred or so, on the whole corpus ("
                f"{_merges(20)} on the first 20 documents). 'ción' ends thousands of Spanish nouns (nación, canción, "
                "información): a productive suffix is among the first things BPE learns, so a Spanish tokenizer "
                "splits such words into a stem and the suffix, much as a linguist would.")
    if answer == right - 1:
        raise Wrong(f"{answer} is one short: count the merges from 1, including the merge that makes 'ción' (the index "
                    "in the list of merges starts at 0). And split words as section 3 does, doc.lower().split().")
    if answer == right + 1 and answer != _merges(20):
        raise Wrong(f"{answer} is one too many: the count stops at the merge that makes 'ción'.")
    if answer == _merges(20):
        raise Wrong(f"{answer} is the count on the first 20 documents, section 3's corpus_words: the exercise asks for "
                    "the whole toy corpus, every document of spanish_docs.")
    if answer == _merges(None, lower=False):
        raise Wrong(f"{answer} is the count on words that keep their capitals: split doc.lower(), as section 3 does.")
    raise Wrong(f"{answer} merges is not what learn_bpe (or learn_bpe_with_tokenizers, the same merges, far faster) "
                "gives on Counter(w for doc in spanish_docs for w in doc.lower().split()): find the first merge (a, b) "
                "with a + b == 'ción' and give its number, counted from 1.")


# ---------------------------------------------------------------- 4: strip comments and docstrings
SOURCES = {
    "a module with comments and docstrings": '''"""A module docstring."""
import math  # a trailing comment

# a comment on its own line
def area(width, height):
    """The area of a rectangle."""
    # the product
    return width * height


class Circle:
    """A circle."""

    def __init__(self, radius):
        self.radius = radius  # kept

    def area(self):
        return math.pi * self.radius ** 2
''',
    "a '#' inside strings": '''URL = "https://example.com/#section"  # not the end of the string
COLOR = '#ff0000'
TEMPLATE = f"{URL}#{COLOR}"


def hashtag(word):
    return "#" + word
''',
    "strings that are not docstrings": '''def query():
    sql = """SELECT *
    FROM table  # not a comment
    """
    x = 1
    """a string after the first statement is not a docstring"""
    return sql, x
''',
    "a function whose body is only a docstring": '''class Error(Exception):
    """Raised when something fails."""


def todo():
    """Not written yet."""
''',
}
INVALID = "print 'hello'  # Python 2\n  def broken(:\n"


class _Strip(ast.NodeTransformer):
    """Drops statements that are a bare string (docstrings and the like), ``pass`` and ``...``, so that stripped
    code and the original compare equal whether or not a learner's function replaced a docstring by ``pass``."""

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and (isinstance(node.value.value, str) or node.value.value is Ellipsis):
            return None
        return node

    def visit_Pass(self, node):
        return None


def _normalised(source: str) -> list[str]:
    return ast.unparse(_Strip().visit(ast.parse(source))).splitlines()


def _docstrings(tree) -> list[str]:
    return [getattr(node, "name", "the module") for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and ast.get_docstring(node) is not None]


@exercise("03", 4, "strip comments and docstrings from Python source")
def _(answer) -> str:
    if not callable(answer):
        raise Wrong(f"expected a function strip_comments(source) returning a str, got {_kind(answer)}: pass the "
                    "function itself, check(..., strip_comments), without calling it.")
    for name, source in SOURCES.items():
        try:
            got = answer(source)
        except Exception as err:  # the learner's code: any error becomes a sentence
            raise Wrong(f"strip_comments raised {type(err).__name__}: {err} on {name}.") from None
        if got is None:
            raise Wrong("not answered yet: strip_comments returned None. Write its body in place of the ... and "
                        "return the source without its comments and docstrings.")
        if not isinstance(got, str):
            raise Wrong(f"strip_comments returned {_kind(got)} on {name}: expected the stripped source, a str.")
        try:
            tree = ast.parse(got)
        except SyntaxError as err:
            hint = {"a function whose body is only a docstring": " A body that held only a docstring needs `pass` "
                                                                  "in its place.",
                    "a '#' inside strings": " A '#' inside a string is not a comment: let the tokenize module find "
                                            "the COMMENT tokens rather than a regular expression."}.get(name, "")
            raise Wrong(f"on {name} your output is not valid Python any more ({err.msg}, line {err.lineno}).{hint}") from None
        comments = [t.string for t in tokenize.generate_tokens(io.StringIO(got).readline) if t.type == tokenize.COMMENT]
        if comments:
            raise Wrong(f"on {name} a comment is left: {comments[0]!r}. The tokenize module marks every comment as a "
                        "COMMENT token.")
        left = _docstrings(tree)
        if left:
            raise Wrong(f"on {name} the docstring of {left[0]} is left: a docstring is a string that is the first "
                        "statement of a module, class or function.")
        expected, yours = _normalised(source), _normalised(got)
        if yours != expected:
            line = next((f"{e!r} became {y!r}" for e, y in zip(expected, yours, strict=False) if e != y),
                        f"{len(expected)} lines of code became {len(yours)}")
            raise Wrong(f"on {name} your function changed code that is neither a comment nor a docstring: {line}. "
                        "A '#' inside a string is not a comment.")
    try:
        got = answer(INVALID)
    except Exception as err:
        raise Wrong(f"strip_comments raised {type(err).__name__} on a file that is not valid Python (Python 2 code, "
                    "say): the standard library holds such files (test data). Return the source as it is, or "
                    "with what could be stripped, but do not raise.") from None
    if not isinstance(got, str):
        raise Wrong(f"on a file that is not valid Python strip_comments returned {_kind(got)}: return a str (the source "
                    "unchanged is fine).")
    return ("right: comments and docstrings go, the code stays the same, '#' in strings included, and files that are "
            "not valid Python do not stop the training run. Trained on stripped files, the tokenizer stops spending "
            "entries on comment rules and docstring prose (runs of '#', '-', '=' and English words).")


# ---------------------------------------------------------------- 6: a string the Unigram cannot spell
@exercise("03", 6, "a string whose unknown rate with the Spanish Unigram is at least 0.4")
def _(answer) -> str:
    from nlp_course.tokenization import unknown_rate

    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"expected (tokenizer, text), got {_kind(answer)}.")
    tokenizer, text = answer
    if text is Ellipsis:
        raise Wrong("not answered yet: replace the ... with your string.")
    if not hasattr(tokenizer, "backend_tokenizer"):
        raise Wrong(f"the first item should be the Spanish Unigram, spanish_tokenizers['unigram'], got {_kind(tokenizer)}.")
    model = type(tokenizer.backend_tokenizer.model).__name__
    if model != "Unigram":
        zero = " A byte-level BPE spells anything with its 256 bytes: its unknown rate is always 0." if model == "BPE" else ""
        raise Wrong(f"this tokenizer is a {model}, not a Unigram: pass spanish_tokenizers['unigram'].{zero}")
    if not isinstance(text, str):
        raise Wrong(f"expected one string, got {_kind(text)}.")
    if not text.strip():
        raise Wrong("an empty string has no tokens, so no unknown rate: write some text.")
    rate = unknown_rate(tokenizer, [text])
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])
    if rate < 0.4:
        raise Wrong(f"the unknown rate of {text!r} is {rate:.2f} ({tokens[:12]}{' ...' if len(tokens) > 12 else ''}): "
                    "too many of its tokens are known. Use characters the Spanish corpus never has (another script, "
                    "emoji), with no known letters between them.")
    return (f"right: {text!r} gives {tokens[:8]}{' ...' if len(tokens) > 8 else ''}, unknown rate {rate:.2f}. It can "
            "never pass 0.5: a run of unknown characters becomes a single <unk>, and two runs are always separated by a "
            "known token, a known character or the '▁' that Metaspace puts before every word (including the first). So "
            "there are at least as many known tokens as <unk>. Byte-level BPE gives 0: every byte is in its vocabulary.")
