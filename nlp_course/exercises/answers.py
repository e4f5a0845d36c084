"""What every chapter's checks do with a learner's answer: name its type, insist on a function, call it.

A learner's function may raise anything or return None (its body still ``...``); both become a sentence
(:class:`~nlp_course.exercises.Wrong`) instead of a traceback.
"""

from __future__ import annotations

from nlp_course.exercises import Wrong


def kind(value) -> str:
    """A value's type and the start of its repr, for a message: ``int (3)``."""
    return f"{type(value).__name__} ({value!r:.60})"


def expect_function(answer, name: str, signature: str) -> None:
    """Raise :class:`Wrong` unless ``answer`` is callable (a learner who called the function instead)."""
    if not callable(answer):
        raise Wrong(f"expected a function {name}{signature}, got {kind(answer)}: pass the function itself, "
                    f"check(..., {name}), without calling it.")


def call(fn, name: str, args: tuple, shown: str, *, hint: str = "", **kwargs):
    """The learner's function called on ``args`` (and ``kwargs``); an error or a None result becomes a sentence.

    ``shown`` is how the arguments read in the message; ``hint`` is added to the message of an error.
    """
    try:
        result = fn(*args, **kwargs)
    except Exception as err:  # the learner's code: any error becomes a sentence
        raise Wrong(f"{name}({shown}) raised {type(err).__name__}: {err}{hint}") from None
    if result is None:
        raise Wrong(f"not answered yet: {name}({shown}) returned None. Write the body of {name} in place of the "
                    "... and return the result.")
    return result
