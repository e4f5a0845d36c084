"""The checks of notebook 09's exercises: right answers pass, typical wrong ones fail with a useful message.

Exercises 2, 3 and 5 run programs written here, in the course's sandbox, as the checks do for a learner.
"""

import json
import math

import sacrebleu
from helpers import ROOT

from nlp_course.exercises import check, registered
from nlp_course.exercises.ch09 import REFERENCE, TESTS
from nlp_course.files import data_dir


def two_perplexities(nlls, tokens):
    kept = [(nll, count) for nll, count in zip(nlls, tokens, strict=True) if count]
    weighted = math.exp(sum(nll for nll, _ in kept) / sum(count for _, count in kept))
    return weighted, sum(math.exp(nll / count) for nll, count in kept) / len(kept)


def wrong(number, answer):
    verdict = check("09", number, answer, quiet=True)
    assert not verdict, f"accepted a wrong answer: {verdict.message}"
    return verdict.message


def test_registered():
    assert [n for _, n in registered("09")] == [1, 2, 3, 4, 5]


def test_the_checks_use_the_notebooks_reference_and_tests():
    cells = json.loads((ROOT / "notebooks" / "09_evaluation.ipynb").read_text(encoding="utf-8"))["cells"]
    section_4 = next("".join(c["source"]) for c in cells if "def average_word_length(text)" in "".join(c["source"]))
    assert f'reference = """{REFERENCE}"""' in section_4 and f'tests = """{TESTS}"""' in section_4


def test_unanswered_starter_cells_do_not_raise():
    assert "not answered yet" in wrong(1, lambda nlls, tokens: None)
    assert "not answered yet" in wrong(2, (..., ..., ...))
    assert "not answered yet" in wrong(3, (..., ...))
    assert "not answered yet" in wrong(4, ...)
    assert "not answered yet" in wrong(5, {"task_id": "course/20", "prompt": ..., "entry_point": ...,
                                           "canonical_solution": ..., "test": ..., "broken_solution": ...})


def test_two_perplexities():
    assert check("09", 1, two_perplexities, quiet=True)
    assert "swapped" in wrong(1, lambda nlls, tokens: two_perplexities(nlls, tokens)[::-1])
    assert "ZeroDivisionError" in wrong(1, lambda nlls, tokens: (
        math.exp(sum(nlls) / sum(tokens)), sum(math.exp(n / t) for n, t in zip(nlls, tokens, strict=True)) / len(nlls)))

    def mean_of_means(nlls, tokens):  # each text weighs the same in the "token-weighted" value
        kept = [(n, t) for n, t in zip(nlls, tokens, strict=True) if t]
        return math.exp(sum(n / t for n, t in kept) / len(kept)), two_perplexities(nlls, tokens)[1]

    assert "1-token text weighs as much" in wrong(1, mean_of_means)
    assert "not 2 to it" in wrong(1, lambda nlls, tokens: (2 ** (sum(nlls) / sum(tokens)), two_perplexities(nlls, tokens)[1]))
    assert "pair of numbers" in wrong(1, lambda nlls, tokens: {"perplexity": 1.0})
    assert "expected a function" in wrong(1, 10.3)


def swap(text, i, j):
    lines = text.splitlines(keepends=True)
    lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def test_bleu_of_a_swapped_candidate():
    swapped = swap(REFERENCE, 1, 2)  # `if not words:` before `words = ...`
    bleu = sacrebleu.sentence_bleu(swapped, [REFERENCE], tokenize="13a").score
    assert 80 < bleu < 100
    assert check("09", 2, (swapped, bleu, "failed"), quiet=True)
    assert "from 0 to 100" in wrong(2, (swapped, bleu / 100, "failed"))
    assert "the tests in the sandbox say 'failed'" in wrong(2, (swapped, bleu, "passed"))
    assert "the reference itself" in wrong(2, (REFERENCE, 100.0, "passed"))
    assert "another number" in wrong(2, (swapped, 33.4, "failed"))
    assert "different from the reference" in wrong(2, (REFERENCE.replace("words", "tokens"), bleu, "failed"))
    assert "expected a tuple" in wrong(2, swapped)


def test_predicting_a_hostile_program():
    program = "from pathlib import Path\nPath('note.txt').write_text('hola')\nassert Path('note.txt').read_text() == 'hola'\n"
    assert check("09", 3, (program, "passed"), quiet=True)
    assert check("09", 3, (program, "Passed "), quiet=True)
    assert "the sandbox says 'passed'" in wrong(3, (program, "failed"))
    assert "one of 'passed'" in wrong(3, (program, "it hangs"))
    assert "source code" in wrong(3, (print, "passed"))
    assert "the sandbox says 'failed'" in wrong(3, ("import os\nos._exit(0)\n", "passed"))


def test_largest_gap():
    assert check("09", 4, 16, quiet=True)
    assert "off by one" in wrong(4, 15)  # the index of np.argmax, counted from 0
    assert "no gap at all" in wrong(4, 1)
    assert "already 1" in wrong(4, 20)
    assert "the gap itself" in wrong(4, 0.154)
    assert "whole number" in wrong(4, "16")


def test_a_twenty_first_problem():
    first = json.loads((data_dir() / "code_problems.jsonl").read_text(encoding="utf-8").splitlines()[0])
    mine = {**first, "task_id": "course/20"}
    another_wrong = "    return sum(1 for ch in text if ch in 'aeiouáéíóúü')\n"  # forgets upper case
    assert check("09", 5, {**mine, "broken_solution": [first["broken_solution"], another_wrong]}, quiet=True)
    assert "already one of the course's" in wrong(5, first)
    weak_tests = "def check(candidate):\n    assert candidate('hola') == 2\n"
    assert "accept broken solution 1" in wrong(5, {**mine, "test": weak_tests})
    assert "canonical solution does not pass" in wrong(5, {**mine, "canonical_solution": "    return 0\n"})
    assert "must define check(candidate)" in wrong(5, {**mine, "test": "assert count_vowels('a') == 1\n"})
    assert "entry_point" in wrong(5, {**mine, "entry_point": "vowels"})
    assert "no 'broken_solution'" in wrong(5, {k: v for k, v in mine.items() if k != "broken_solution"})
