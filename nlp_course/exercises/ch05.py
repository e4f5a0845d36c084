"""Checks for notebook 05 (ELECTRA from scratch): exercises 3 and 4.

Exercises 1, 2 and 5 ask for training runs and comparisons of curves; ``solutions/05_solutions.ipynb``
answers them with small runs and in words. What is checked holds in every profile: the learner's sampler
(3) is run on fixed logits and the frequencies of its samples are compared with the softmax; the learner's
AUC on the masked positions (4) is run on synthetic discriminator outputs with a known answer.
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import call as _call
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind


def _scalar(value):
    """A one-element tensor or array as a Python number; anything else unchanged."""
    size = value.numel() if hasattr(value, "numel") else np.size(value) if hasattr(value, "item") else None
    return value.item() if size == 1 else value


# ---------------------------------------------------------------- 3: sampling from the generator
_ROWS = ([2.0, 1.0, 0.0, -1.0, -3.0, 0.5], [-1.0, 0.0, 3.0, 0.0, 1.0, -2.0])
_DRAWS = 20_000  # per kind of row: a frequency's standard deviation is at most 0.0035


def _softmax(row) -> np.ndarray:
    e = np.exp(np.asarray(row) - max(row))
    return e / e.sum()


def _frequencies(samples: np.ndarray, vocabulary: int) -> np.ndarray:
    return np.bincount(samples, minlength=vocabulary) / len(samples)


@exercise("05", 3, "a sampler that draws from softmax(logits)")
def _(answer) -> str:
    import torch

    name = getattr(answer, "__name__", "sample")
    _function(answer, name, "(logits, generator)")
    vocabulary = len(_ROWS[0])
    logits = torch.tensor(_ROWS * _DRAWS, dtype=torch.float32)  # rows of the two kinds, alternating
    given = logits.clone()
    with torch.random.fork_rng():  # the learner may draw from the global generator: seed it, then restore it
        torch.manual_seed(0)
        samples = _call(answer, name, (given, torch.Generator().manual_seed(0)),
                        f"logits of shape {tuple(logits.shape)}, generator")
    if not torch.equal(given, logits):
        raise Wrong(f"{name} changed the logits it was given (in place, like logits.add_(noise)): the model still "
                    "needs them for the generator's loss and accuracy. Add the noise out of place, logits + noise.")
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(samples)
    if not isinstance(samples, torch.Tensor):
        raise Wrong(f"{name} returned {_kind(samples)}: expected a tensor of token ids, one per row of logits.")
    rows = logits.shape[0]
    if tuple(samples.shape) == (rows, 1):
        raise Wrong(f"{name} returned shape ({rows}, 1): torch.multinomial gives a column of draws for each row. "
                    "Take the single draw, [:, 0] or .squeeze(-1), so that there is one id per masked position.")
    if tuple(samples.shape) != (rows,):
        raise Wrong(f"{name} returned shape {tuple(samples.shape)} for logits of shape {tuple(logits.shape)}: expected "
                    f"one token id per row, shape ({rows},).")
    if samples.is_floating_point() or samples.dtype == torch.bool:
        raise Wrong(f"{name} returned {samples.dtype} values: expected token ids (integers), the index of the "
                    "sampled column of each row.")
    ids = samples.long().numpy()
    if ids.min() < 0 or ids.max() >= vocabulary:
        raise Wrong(f"{name} returned ids from {ids.min()} to {ids.max()} for a vocabulary of {vocabulary}.")
    kinds = [_frequencies(ids[k::2], vocabulary) for k in range(2)]
    expected = [_softmax(row) for row in _ROWS]
    greedy = [int(np.argmax(row)) for row in _ROWS]
    if all(f[g] == 1.0 for f, g in zip(kinds, greedy, strict=True)):
        raise Wrong(f"every sample of {name} is the most likely token of its row: that is argmax (greedy decoding), "
                    "not sampling. Gumbel-max takes the argmax of the logits plus Gumbel noise, -log(-log(u)).")
    if all(np.abs(f - 1 / vocabulary).max() < 0.02 for f in kinds):
        raise Wrong(f"the samples of {name} are spread evenly over the {vocabulary} tokens, whatever the logits: "
                    "did you take the softmax over the batch (dim=0) instead of over the vocabulary (dim=-1)?")
    if np.abs(kinds[0] - kinds[1]).max() < 0.02:
        raise Wrong(f"{name} gives the same distribution for two rows with different logits: each row must be "
                    "sampled from its own softmax.")
    for k, (f, p) in enumerate(zip(kinds, expected, strict=True)):
        if np.abs(f - p).max() > 0.02:
            raise Wrong(f"for logits {_ROWS[k]} your samples' frequencies are {np.round(f, 3).tolist()}, the softmax "
                        f"is {np.round(p, 3).tolist()}: {name} does not sample from softmax(logits). (A softmax over the "
                        "wrong dimension, dim=0 instead of dim=-1, a sign slip in the Gumbel noise, argmax(logits - g), "
                        "or a temperature other than 1 would do this.)")
    return ("right: over 40,000 rows the frequencies match softmax(logits) to within sampling noise. Gumbel-max and "
            "torch.multinomial draw from the same distribution, but they consume different random numbers, so the same "
            "seed gives different samples. Gumbel-max needs no normalised probabilities, only an argmax; in fp16 the "
            "uniform numbers are so coarse that the noise never exceeds 7.6 and is -inf for a uniform of 0 (one draw in "
            "4,000): the tails come out wrong, which is why the package samples in fp32.")


# ---------------------------------------------------------------- 4: the AUC on the masked positions only
def _reference_auc(scores: np.ndarray, positives: np.ndarray, ties: float = 0.5) -> float:
    """P(a positive scores above a negative), ties counting ``ties``."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    pos, neg = scores[positives], scores[~positives]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    above = (pos[:, None] > neg[None, :]).sum()
    equal = (pos[:, None] == neg[None, :]).sum()
    return float((above + ties * equal) / (pos.size * neg.size))


@functools.lru_cache(maxsize=1)
def _discriminator_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, is_replaced and labels for 8 blocks of 40 tokens, with padding, in which the discriminator ranks
    replaced tokens far above the unmasked originals but the generator's correct guesses above its wrong ones."""
    rng = np.random.default_rng(0)
    blocks, width = 8, 40
    padding = np.zeros((blocks, width), dtype=bool)
    padding[:4, -6:] = True
    masked = (rng.random((blocks, width)) < 0.3) & ~padding
    replaced = masked & (rng.random((blocks, width)) < 0.6)
    labels = np.full((blocks, width), -100)
    labels[masked] = rng.integers(5, 500, int(masked.sum()))
    is_replaced = replaced.astype(np.int64)
    is_replaced[padding] = -100
    logits = rng.normal(-3.0, 1.0, (blocks, width))  # unmasked originals: confidently original
    logits[replaced] = rng.normal(0.5, 1.0, int(replaced.sum()))  # wrong guesses
    correct = masked & ~replaced
    logits[correct] = rng.normal(1.0, 1.0, int(correct.sum()))  # correct guesses: scored a little higher still
    logits[padding] = 4.0  # whatever the model says on padding
    return np.round(logits, 1), is_replaced, labels  # rounded: some scores tie


@exercise("05", 4, "the discriminator's AUC on the masked positions only")
def _(answer) -> str:
    name = getattr(answer, "__name__", "masked_auc")
    _function(answer, name, "(discriminator_logits, is_replaced, labels)")
    logits, is_replaced, labels = _discriminator_batch()
    shown = "discriminator_logits, is_replaced, labels"
    got = _call(answer, name, (logits.copy(), is_replaced.copy(), labels.copy()), shown)
    got = _scalar(got)
    if not isinstance(got, numbers.Real) or isinstance(got, bool):
        raise Wrong(f"{name} returned {_kind(got)}: expected one number, the area under the ROC curve.")
    masked = labels != -100
    right = _reference_auc(logits[masked], is_replaced[masked] == 1)
    if math.isnan(got) or abs(got - right) > 1e-6:
        real = is_replaced != -100
        every_token = _reference_auc(logits[real], is_replaced[real] == 1)
        with_padding = _reference_auc(logits, is_replaced != 0)
        unmasked = _reference_auc(logits[~masked & real], is_replaced[~masked & real] == 1)
        if math.isnan(got):
            hint = ("nan: there are both replaced and correctly guessed tokens among the masked positions, so the AUC "
                    "is defined. " + ("Scoring the unmasked positions gives nan (none of them is replaced): keep "
                                      "labels != -100, not == -100." if math.isnan(unmasked) else ""))
        elif abs(got - every_token) < 1e-6:
            hint = (f"{got:.4f} is the AUC over every real token, the notebook's. Keep only the masked positions, "
                    "labels != -100: there the originals are the generator's correct guesses.")
        elif abs(got - with_padding) < 1e-6:
            hint = (f"{got:.4f} is the AUC over every position, padding included (is_replaced is -100 there, which "
                    "bool() counts as replaced). Keep only the masked positions, labels != -100.")
        elif abs(got - (1 - right)) < 1e-6:
            hint = (f"{got:.4f} is 1 minus the right value: the positives are the replaced tokens (is_replaced == 1), "
                    "and the score that should rank them first is the discriminator's logit.")
        elif abs(got - _reference_auc(logits[masked], is_replaced[masked] == 1, ties=0.0)) < 1e-6 or abs(
                got - _reference_auc(logits[masked], is_replaced[masked] == 1, ties=1.0)) < 1e-6:
            hint = ("ties: a replaced and an original token with the same score count one half, as in the "
                    "Mann-Whitney form of the AUC (nlp_course.electra.roc_auc or sklearn's roc_auc_score do it).")
        else:
            hint = ("the AUC is the probability that a replaced token scores above an original one, over the masked "
                    "positions only (nlp_course.electra.roc_auc(scores, replaced) computes it).")
        raise Wrong(f"{name} gives {got:.4f} on a batch whose masked positions give {right:.4f}: {hint}")
    every_replaced = is_replaced.copy()
    every_replaced[labels != -100] = 1  # an untrained generator: no sample hits the original
    undefined = ("\nWhen every masked token was replaced there is no correct guess to rank against: return nan, "
                 "as nlp_course.electra.roc_auc does, rather than fail.")
    got = _call(answer, name, (logits.copy(), every_replaced, labels.copy()), shown + " (every masked token replaced)",
                hint=undefined)
    got = _scalar(got)
    if not (isinstance(got, numbers.Real) and math.isnan(got)):
        raise Wrong(f"{name} gives {got!r} when every masked token was replaced: there is then no correct guess to "
                    "rank the replacements against, and the AUC is undefined. Return nan (float('nan')).")
    return (f"right: {right:.4f} on this batch, where the AUC over every token is "
            f"{_reference_auc(logits[is_replaced != -100], is_replaced[is_replaced != -100] == 1):.4f}. On the masked "
            "positions the originals are the generator's correct guesses, so this AUC asks whether the discriminator "
            "tells a wrong guess from a right one, the hard part of the task: the unmasked tokens, easy to call "
            "original, no longer lift it.")
