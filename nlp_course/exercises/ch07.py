"""Checks for notebook 07 (fine-tuning a classifier): exercises 8, 9 and 10.

Exercises 1 to 7 are experiments whose numbers depend on the run (seed, profile, hardware): their
answers are in ``solutions/07_solutions.ipynb``, in words and small measurements.
"""

from __future__ import annotations

import functools
import numbers

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind


def _whole_number(fn, name: str, args: tuple, what: str) -> int:
    """Call the learner's function and return its answer as an int, or raise Wrong saying what is off."""
    shown = f"{name}({', '.join(repr(a) if not isinstance(a, list) or len(a) < 12 else '[...]' for a in args)})"
    try:
        result = fn(*args)
    except Exception as err:  # the learner's code: any error becomes a sentence
        raise Wrong(f"{shown} raised {type(err).__name__}: {err}") from None
    if result is None:
        raise Wrong(f"not answered yet: {shown} returned None. Write the body of {name} in place of the ... "
                    f"and return {what}.")
    if isinstance(result, bool) or not isinstance(result, numbers.Real):
        raise Wrong(f"{shown} returned {_kind(result)}: expected {what}, a whole number.")
    if result != int(result):
        raise Wrong(f"{shown} returned {result}: expected {what}, a whole number, not a fraction.")
    return int(result)


# ---------------------------------------------------------------- 8: the parameters of a head
def _head(hidden: int, labels: int, roberta: bool) -> int:
    out_proj = hidden * labels + labels  # a Linear(in, out) holds in x out weights and out biases
    return hidden * hidden + hidden + out_proj if roberta else out_proj


@exercise("07", 8, "the trainable parameters of a classification head")
def _(answer) -> str:
    _function(answer, "head_parameters", "(hidden_size, num_labels, roberta)")
    for hidden, labels, roberta in ((768, 6, False), (128, 2, False), (768, 6, True), (128, 2, True), (1024, 3, True)):
        got = _whole_number(answer, "head_parameters", (hidden, labels, roberta), "the number of parameters")
        right = _head(hidden, labels, roberta)
        if got == right:
            continue
        call = f"head_parameters({hidden}, {labels}, roberta={roberta})"
        if got == hidden * labels:
            raise Wrong(f"{call} gave {got:,} = {hidden} x {labels} weights: the {labels} biases of the output "
                        "layer are trainable parameters too.")
        if roberta and got == _head(hidden, labels, False):
            raise Wrong(f"{call} gave {got:,}, BERT's head: RoBERTa's head has a dense {hidden} -> {hidden} layer "
                        "(weights and biases) before out_proj. print(head) in section 4 shows both layers.")
        if roberta and got in (hidden * hidden + hidden * labels + labels, hidden * hidden + hidden * labels):
            raise Wrong(f"{call} gave {got:,}: count the biases of both layers, {hidden} for dense and "
                        f"{labels} for out_proj.")
        if not roberta and got == _head(hidden, labels, True):
            raise Wrong(f"{call} gave {got:,}, a RoBERTa head: with roberta=False it is BERT's head, one linear "
                        "layer on the pooled output (the slides' 768 x 6 + 6 = 4,614).")
        raise Wrong(f"{call} gave {got:,}, which is not the count: each Linear(in, out) holds in x out weights "
                    f"and out biases. Compare with count_parameters(head) in section 4.")
    return ("right: BERT's head is hidden x labels + labels (4,614 for BERT-base and 6 classes), RoBERTa's adds "
            "a dense hidden x hidden + hidden layer (595,206 for 768 hidden and 6 labels). Either way the head is a "
            "tiny share of the model: BERT-base has 109,486,854 parameters.")


# ---------------------------------------------------------------- 9: positions computed with dynamic padding
def _positions(lengths: list[int], batch_size: int) -> int:
    return sum(len(batch) * max(batch) for batch in (lengths[i:i + batch_size]
                                                    for i in range(0, len(lengths), batch_size)))


@exercise("07", 9, "positions computed with dynamic padding")
def _(answer) -> str:
    _function(answer, "dynamic_positions", "(lengths, batch_size)")
    cases = (([5, 3, 8, 2, 2], 2), ([1, 2, 3, 4, 5, 6, 7], 3), ([4, 4, 4], 8), ([7], 1),
             ([12, 30, 7, 7, 25, 3, 18, 9, 40, 11], 4))
    for lengths, batch_size in cases:
        got = _whole_number(answer, "dynamic_positions", (list(lengths), batch_size), "the number of positions")
        right = _positions(lengths, batch_size)
        if got == right:
            continue
        call = f"dynamic_positions({lengths}, {batch_size})"
        last = len(lengths) % batch_size
        if got == len(lengths) * max(lengths):
            raise Wrong(f"{call} gave {got}: that pads every row to the longest of the whole dataset. Dynamic padding "
                        "pads each batch only to its own longest row.")
        if got == sum(lengths):
            raise Wrong(f"{call} gave {got}, the tokens alone: in a batch every row is padded to the batch's "
                        "longest row, and the model computes the padded positions too.")
        if got == _positions(sorted(lengths), batch_size) or got == _positions(sorted(lengths, reverse=True),
                                                                                batch_size):
            raise Wrong(f"{call} gave {got}: you sorted the lengths, which is roughly what group_by_length does. The "
                        "DataLoader of section 3 takes the rows in the dataset's order.")
        if last and got == right + (batch_size - last) * max(lengths[-last:]):
            raise Wrong(f"{call} gave {got}: the last batch holds only the rows left over ({last} here), not "
                        "batch_size rows.")
        if got == _positions(lengths[: len(lengths) - last], batch_size):
            raise Wrong(f"{call} gave {got}: the last, shorter batch is missing. It is computed too.")
        raise Wrong(f"{call} gave {got}, expected {right}: cut the lengths, in order, into batches of batch_size "
                    "(the last may be shorter); each batch costs its number of rows times its longest row.")
    return ("right: each batch costs rows x its longest row. On the training set of section 3, "
            "dynamic_positions(lengths, BATCH_SIZE) is the table's 'dynamic padding' count; on sorted(lengths), "
            "batches of similar lengths, it shows what group_by_length can save.")


# ---------------------------------------------------------------- 10: how many right before luck is unlikely
@functools.lru_cache(maxsize=64)
def _fewest(n: int, p: float, level: float = 0.05, alternative: str = "greater") -> int:
    from scipy.stats import binom

    for right in range(n + 1):
        chance = binom.sf(right - 1, n, p)  # P(X >= right)
        if alternative == "two-sided":
            chance = min(1.0, 2 * chance)
        if chance < level:
            return right
    return n + 1


@exercise("07", 10, "right answers needed before luck is unlikely")
def _(answer) -> str:
    _function(answer, "fewest_right", "(n, p)")
    for n, p in ((60, 0.5), (10, 0.5), (870, 0.4), (200, 0.9), (1066, 0.5)):
        call = f"fewest_right({n}, {p})"
        try:
            result = answer(n, p)
        except Exception as err:
            raise Wrong(f"{call} raised {type(err).__name__}: {err}") from None
        if isinstance(result, numbers.Real) and not isinstance(result, bool) and 0 < result < 1:
            raise Wrong(f"{call} returned {result}, a share: the question asks for a number of right answers "
                        f"out of {n} (multiply by n? better: count them).")
        got = _whole_number(answer, "fewest_right", (n, p), "a number of right answers")
        right = _fewest(n, p)
        if got == right:
            continue
        from scipy.stats import binom

        def chance(r, n=n, p=p):
            return binom.sf(r - 1, n, p)

        if got == right - 1:
            raise Wrong(f"{call} gave {got}, one too few: P(X >= {got}) = {chance(got):.3f} is not below 0.05. "
                        "You returned the last count that is not enough.")
        if got == right + 1:
            raise Wrong(f"{call} gave {got}, one too many: already P(X >= {right}) = {chance(right):.3f} < 0.05.")
        if got < n * p:
            raise Wrong(f"{call} gave {got}, fewer right than the {n * p:g} a model at the majority class's rate gets "
                        f"on average. A two-sided test finds too few right answers surprising too; the question is "
                        "one-sided (better than the majority class): P(X >= r) < 0.05, as binomtest(..., "
                        "alternative='greater') in section 7.")
        if got == _fewest(n, p, alternative="two-sided"):
            raise Wrong(f"{call} gave {got}: that is the two-sided test's threshold. The question is one-sided "
                        "(better than the majority class), as binomtest(..., alternative='greater') in section 7.")
        if got == _fewest(n, p, level=0.05 / 2):
            raise Wrong(f"{call} gave {got}: that is the threshold at 0.025. Ask for P(X >= r) < 0.05, one-sided.")
        if got == _fewest(n, 1 - p) or got == _fewest(n, 0.5):
            raise Wrong(f"{call} gave {got}: use p, the rate of the majority class, as each answer's chance of "
                        "being right.")
        raise Wrong(f"{call} gave {got}: find the smallest r with P(X >= r) < 0.05 for X ~ Binomial(n, p): "
                    "scipy.stats.binom.sf(r - 1, n, p), or binomtest(r, n, p, alternative='greater').pvalue.")
    return (f"right: out of 60 balanced test reviews a classifier needs {_fewest(60, 0.5)} right (accuracy "
            f"{_fewest(60, 0.5) / 60:.3f}) before luck is an unlikely explanation; out of 1,066 "
            f"(rotten_tomatoes' test split) {_fewest(1066, 0.5)}, accuracy {_fewest(1066, 0.5) / 1066:.3f}. Few test "
            "examples make a wide band of noise.")
