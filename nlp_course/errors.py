"""The errors a learner or a command-line user can meet, each with a message that says what to do.

They live in one module that every other course module imports, so that the command lines catch the
very classes the package raises: under ``python -m nlp_course.pretrain`` a class defined in the
entry module would exist twice (as ``__main__.X`` and ``nlp_course.pretrain.X``) and slip past its
own ``except``.

Taught in: no notebook; every notebook and command meets them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


class CourseError(Exception):
    """Any error of the course's own: a message for a person, never a traceback on the command line."""


class HubUnavailableError(CourseError, ConnectionError):
    """The Hugging Face Hub cannot be reached (no network, or offline mode is on)."""


class DataSourceError(CourseError, ValueError):
    """A data source that cannot be used as given: the message says what to do instead."""


class UnknownProfileError(CourseError, ValueError):
    """A profile name that is not one of ``nlp_course.profiles.PROFILES``."""


class TokenizerTrainingError(CourseError, ValueError):
    """Bad input to ``train_tokenizer``: the message says what to change."""


class PretrainError(CourseError, ValueError):
    """A bad option or a bad checkpoint, found before any training starts."""


class FinetuneError(CourseError, ValueError):
    """Bad input to fine-tuning, found before any training starts."""


class RunInterrupted(CourseError):
    """A run stopped at a safe point after Ctrl-C: the message says where to resume from."""


# argparse takes "-1e-3" for an option (its own pattern knows only "-1" and "-.5"): such a value is
# glued to the option before it (--learning-rate=-1e-3), to be parsed, then refused with a reason
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|nan)$", re.IGNORECASE)


def _glue_negative_values(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_NUMBER.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def output_dir_option(value: str) -> Path:
    """``type=`` for ``--output-dir``: an empty value would mean the working directory."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must name a folder (an empty value would write into the working directory)")
    return Path(value).expanduser()


def run_command(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], object],
                argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and ``run`` the options; a course error ends as one ``error:`` line and exit code 2."""
    args = parser.parse_args(_glue_negative_values(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        run(args)
    except RunInterrupted as err:
        parser.exit(130, f"error: {err}\n")  # 128 + SIGINT, as a shell reports a Ctrl-C
    except CourseError as err:
        parser.exit(2, f"error: {err}\n")
    return 0
