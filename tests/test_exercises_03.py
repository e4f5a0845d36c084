"""Notebook 03's exercise checks: right answers (as solutions/03_solutions.ipynb computes them) pass, and the
mistakes learners make are rejected with a sentence that says what is wrong."""

import ast
import io
import json
import re
import tokenize
from collections import Counter
from functools import cache

from nlp_course.exercises import check


def rejected(number, answer, *words):
    verdict = check("03", number, answer, quiet=True)
    assert not verdict, verdict.message
    for word in words:
        assert word in verdict.message, verdict.message


def accepted(number, answer):
    verdict = check("03", number, answer, quiet=True)
    assert verdict, verdict.message


@cache
def spanish_docs():
    from nlp_course.data import load_corpus

    return load_corpus("corpus_es")["text"]


# ---------------------------------------------------------------- 1
def test_ex1_lowercased_wordpiece():
    from nlp_course.tokenization import tokenizer_report, train_tokenizer

    docs = spanish_docs()
    train, heldout = docs[: int(0.9 * len(docs))], docs[int(0.9 * len(docs)):]
    report = tokenizer_report(train_tokenizer(train, kind="wordpiece", vocab_size=2000, lowercase=True), heldout)
    accepted(1, report)
    cased = tokenizer_report(train_tokenizer(train, kind="wordpiece", vocab_size=2000), heldout)
    rejected(1, cased, "lowercase=True")
    rejected(1, {"fertility": report["fertility"] + 0.1, "unknown_rate": 0.0}, "not what the toy profile gives")
    rejected(1, {"fertility": report["fertility"]}, "unknown_rate")
    rejected(1, report["fertility"], "expected the dict")


# ---------------------------------------------------------------- 2
def ction_merge(docs) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    word_counts = Counter(w for doc in docs for w in doc.lower().split())
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    alphabet = {ch for word in word_counts for ch in word}
    bpe.train_from_iterator([" ".join(w for w, c in word_counts.items() for _ in range(c))],
                            trainer=trainers.BpeTrainer(vocab_size=len(alphabet) + 200, min_frequency=0,
                                                        show_progress=False))
    merges = [m.split(" ") if isinstance(m, str) else m for m in json.loads(bpe.to_str())["model"]["merges"]]
    return next(n for n, (a, b) in enumerate(merges, start=1) if a + b == "ción")


def test_ex2_merges_to_cion():
    right = ction_merge(spanish_docs())
    accepted(2, right)
    accepted(2, float(right))
    rejected(2, right - 1, "one short")
    rejected(2, ction_merge(spanish_docs()[:20]), "first 20 documents")
    rejected(2, "88", "whole number")
    rejected(2, [("c", "i")] * right, "number of merges")


# ---------------------------------------------------------------- 4
def strip_comments(source):  # as in the solutions: comments by tokenize, docstrings by ast
    try:
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, ValueError, tokenize.TokenError):
        return source
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    docstrings = {(n.body[0].lineno, n.body[0].col_offset): "pass" if len(n.body) == 1 and not isinstance(n, ast.Module) else ""
                  for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and ast.get_docstring(n, clean=False) is not None}
    cuts = []
    for tok in tokens:
        start, end = starts[tok.start[0] - 1] + tok.start[1], starts[tok.end[0] - 1] + tok.end[1]
        if tok.type == tokenize.COMMENT:
            cuts.append((start, end, ""))
        elif tok.type == tokenize.STRING and tok.start in docstrings:
            cuts.append((start, end, docstrings[tok.start]))
    for start, end, replacement in sorted(cuts, reverse=True):
        source = source[:start] + replacement + source[end:]
    return source


def remove_docstrings(source):  # ast.unparse drops the comments; an empty body gets `pass`
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def test_ex4_strip_comments_and_docstrings():
    accepted(4, strip_comments)

    def never_raises(source):
        try:
            return remove_docstrings(source)
        except SyntaxError:
            return source

    accepted(4, never_raises)
    rejected(4, remove_docstrings, "raised SyntaxError", "not valid Python")
    rejected(4, lambda source: never_raises("\n".join(re.sub(r"#.*", "", line) for line in source.splitlines())),
             "'#' inside a string is not a comment")

    def comments_only(source):
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        return tokenize.untokenize((t.type, t.string) for t in tokens if t.type != tokenize.COMMENT)

    rejected(4, comments_only, "docstring of the module is left")

    def docstrings_deleted(source):  # removes docstrings, but puts no `pass` where a body becomes empty
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return source
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
                node.body = node.body[1:]
        return ast.unparse(tree)

    rejected(4, docstrings_deleted, "needs `pass`")
    rejected(4, lambda source: None, "not answered yet")
    rejected(4, lambda source: source.splitlines(), "a str")


# ---------------------------------------------------------------- 6
def test_ex6_unknown_rate_of_the_unigram():
    from nlp_course.tokenization import train_tokenizer

    unigram = train_tokenizer(spanish_docs()[:10], kind="unigram", vocab_size=2000)
    accepted(6, (unigram, "日本 語 中文"))
    accepted(6, (unigram, "🤗"))
    rejected(6, (unigram, "¿Qué es 日本?"), "too many of its tokens are known")
    bpe = train_tokenizer(spanish_docs()[:5], kind="bpe", vocab_size=300)
    rejected(6, (bpe, "日本 語"), "always 0")
    rejected(6, (unigram, ["日本"]), "one string")
    rejected(6, (unigram, ""), "empty")
    rejected(6, (unigram, ...), "not answered yet")
    rejected(6, "日本", "expected (tokenizer, text)")
