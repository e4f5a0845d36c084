"""Checks for the notebooks' exercises.

Each notebook ends with exercises; those with an answer that can be checked have a starter cell::

    from nlp_course.exercises import check
    answer = ...  # your answer here
    check("03", 2, answer)

``check`` prints what is right, or says in words what is wrong, and returns a :class:`Verdict` (true when
right), so a cell with an unfinished answer still runs. The worked answers are in ``solutions/``, one
notebook per chapter, which the tests execute: every check is shown to accept a right answer, and the
tests in ``tests/test_exercises*.py`` show it rejecting typical wrong ones.

A chapter's checks live in ``nlp_course/exercises/chNN.py`` and register themselves with
:func:`exercise`; a check is a function of the answer that returns a sentence about a right answer,
or raises :class:`Wrong` with a sentence that says what is wrong and, where it helps, where to look.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "Wrong", "check", "exercise", "registered"]

_CHECKS: dict[tuple[str, int], tuple[str, Callable[[Any], str]]] = {}


class Wrong(Exception):
    """Raised by a check: the message says what is wrong with the answer."""


@dataclass(frozen=True)
class Verdict:
    """What a check said: ``ok`` and a message. True when the answer is right."""

    chapter: str
    number: int
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"{'✓' if self.ok else '✗'} exercise {self.chapter}.{self.number}: {self.message}"

    def _ipython_display_(self) -> None:  # check() has printed the sentence already: no Out[] line
        pass


def exercise(chapter: str, number: int, title: str):
    """Register ``function(answer) -> str`` as the check of exercise ``number`` of ``chapter``."""

    def register(function: Callable[[Any], str]) -> Callable[[Any], str]:
        _CHECKS[(chapter, number)] = (title, function)
        return function

    return register


def _load(chapter: str) -> None:
    try:
        importlib.import_module(f"{__name__}.ch{chapter}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.ch{chapter}":
            raise


def _chapter_name(chapter) -> str:
    if isinstance(chapter, int):
        chapter = f"{chapter:02d}"
    if not isinstance(chapter, str) or not chapter.isdigit():
        raise ValueError(f"chapter is the notebook's number as a string, like '03', not {chapter!r}.")
    return chapter.zfill(2)


def registered(chapter: str | None = None) -> dict[tuple[str, int], str]:
    """The checks there are, as ``{(chapter, number): title}``; all chapters when ``chapter`` is None."""
    if chapter is None:
        for module in pkgutil.iter_modules(__path__):
            if module.name.startswith("ch"):
                _load(module.name[2:])
    else:
        _load(_chapter_name(chapter))
    return {key: title for key, (title, _) in sorted(_CHECKS.items()) if chapter is None or key[0] == _chapter_name(chapter)}


def check(chapter: str, number: int, answer: Any, *, quiet: bool = False) -> Verdict:
    """Check ``answer`` to exercise ``number`` of notebook ``chapter``; print and return the verdict.

    ``answer`` left as ``...`` gives "not answered yet". An unknown chapter or number is a ``KeyError`` that
    lists the checked exercises.
    """
    chapter = _chapter_name(chapter)
    _load(chapter)
    if (chapter, number) not in _CHECKS:
        known = ", ".join(f"{c}.{n}" for c, n in sorted(_CHECKS)) or "none"
        if not any(c == chapter for c, _ in _CHECKS):
            raise KeyError(f"Notebook {chapter} has no checked exercises. Checked exercises: {known}.")
        numbers = ", ".join(str(n) for c, n in sorted(_CHECKS) if c == chapter)
        raise KeyError(f"Notebook {chapter} has no check for exercise {number}; its checked exercises are {numbers}.")
    title, function = _CHECKS[(chapter, number)]
    if answer is Ellipsis:
        verdict = Verdict(chapter, number, False, f"not answered yet ({title}): replace the ... with your answer.")
    else:
        try:
            verdict = Verdict(chapter, number, True, function(answer))
        except Wrong as wrong:
            verdict = Verdict(chapter, number, False, str(wrong))
    if not quiet:
        print(verdict)
    return verdict
