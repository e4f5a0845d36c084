"""The exercise checks as a whole: each has a starter cell, a solution that asserts it, and tests of its own;
``check`` itself on an unanswered, a right and a wrong answer, and on an exercise that has no check."""

import json
import re
from pathlib import Path

import pytest

from nlp_course import exercises
from nlp_course.exercises import Verdict, Wrong, check, exercise, registered

ROOT = Path(__file__).resolve().parent.parent
CHECKS = registered()


def code(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "code")


def test_every_notebook_has_checked_exercises_with_a_starter_a_solution_and_tests():
    chapters = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted({chapter for chapter, _ in CHECKS}) == chapters, "every chapter has checks"
    for chapter in chapters:
        numbers = [n for c, n in CHECKS if c == chapter]
        assert len(numbers) >= 2, f"notebook {chapter}: {numbers}"
        notebook = code(next((ROOT / "notebooks").glob(f"{chapter}_*.ipynb")))
        solutions = code(ROOT / "solutions" / f"{chapter}_solutions.ipynb")
        tests = (ROOT / "tests" / f"test_exercises_{chapter}.py").read_text(encoding="utf-8")
        for number in numbers:
            assert f'check("{chapter}", {number}, ' in notebook, \
                f"notebook {chapter} has no starter cell for exercise {number}"
            assert re.search(rf'assert check\("{chapter}", {number},', solutions), f"solutions/{chapter}: exercise {number}"
            # check("07", 8, ...) or the file's own rejected(8, ...) / accepted(8, ...)
            assert re.search(rf'(?:\(|"{chapter}", ){number}, ', tests), f"tests/test_exercises_{chapter}.py: exercise {number}"


def test_check_says_not_answered_right_and_wrong_in_words(capsys, monkeypatch):
    monkeypatch.setattr(exercises, "_CHECKS", dict(exercises._CHECKS))  # the made-up exercise 99.1 goes away after

    @exercise("99", 1, "the answer to everything")
    def _(answer):
        if answer != 42:
            raise Wrong(f"{answer} is not it: count again")
        return "42, as the book says"

    assert check("99", 1, ...).ok is False
    assert capsys.readouterr().out == "✗ exercise 99.1: not answered yet (the answer to everything): replace the ... with your answer.\n"
    right = check(99, 1, 42)
    assert right == Verdict("99", 1, True, "42, as the book says") and bool(right)
    assert capsys.readouterr().out == "✓ exercise 99.1: 42, as the book says\n"
    wrong = check("99", 1, 41, quiet=True)
    assert not wrong and wrong.message == "41 is not it: count again" and capsys.readouterr().out == ""


def test_an_exercise_without_a_check_is_named():
    with pytest.raises(KeyError, match="Notebook 03 has no check for exercise 5; its checked exercises are 1, 2, 4, 6"):
        check("03", 5, "Unigram")
    with pytest.raises(KeyError, match="Notebook 42 has no checked exercises"):
        check("42", 1, 0)
    with pytest.raises(ValueError, match="like '03'"):
        check("three", 1, 0)
