"""Checks for notebook 04 (pretraining a RoBERTa): exercises 1, 2 and 4.

Exercises 1 to 5 mostly ask for training runs; what is checked here is the part that can be checked in a
second, in every profile: the learner's keep-probability functions (1: the notebook's Gaussian, scaled so
that the share kept really is ``KEEP_FRACTION``; 2: BERTIN's stepwise variant) run on synthetic log
perplexities, and the learner's parameter count of a ``RobertaForMaskedLM`` (4) is compared with the
count of small models built here. Exercises 3 and 5 are answered in ``solutions/04_solutions.ipynb``.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from nlp_course.exercises import Wrong, exercise
from nlp_course.exercises.answers import call as _call
from nlp_course.exercises.answers import expect_function as _function
from nlp_course.exercises.answers import kind as _kind


# ---------------------------------------------------------------- synthetic log perplexities
@functools.lru_cache(maxsize=1)
def _samples() -> tuple[tuple[str, np.ndarray], ...]:
    """Two sets of 400 distinct log perplexities: symmetric, and skewed (its median is not its mean)."""
    rng = np.random.default_rng(4)
    symmetric = rng.normal(5.5, 0.5, 400)
    skewed = 4.0 + rng.gamma(1.5, 0.5, 400)
    return (("400 symmetric log perplexities", symmetric), ("400 right-skewed log perplexities", skewed))


def gaussian_weight(log_ppl: np.ndarray) -> np.ndarray:
    """The notebook's weight: 1 at the median of the log perplexities, a Gaussian of their standard deviation."""
    return np.exp(-0.5 * ((log_ppl - np.median(log_ppl)) / log_ppl.std()) ** 2)


def scaled_keep_probability(weight: np.ndarray, keep_fraction: float) -> np.ndarray:
    """``min(1, c * weight)`` with the scale ``c`` for which the mean is ``keep_fraction`` (bisection)."""
    if keep_fraction >= 1:
        return np.ones_like(weight)
    low, high = 0.0, 1.0 / weight.min()  # at ``high`` every probability is 1
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if np.minimum(1.0, middle * weight).mean() < keep_fraction else (low, middle)
    return np.minimum(1.0, high * weight)


def _probabilities(result, log_ppl: np.ndarray, keep_fraction: float, name: str, where: str) -> np.ndarray:
    """The learner's result as an array of probabilities, one per chunk, or a sentence saying why not."""
    try:
        p = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"{name} returned {_kind(result)} for {where}: expected an array of probabilities, one per "
                    "chunk.") from None
    if p.shape != log_ppl.shape:
        raise Wrong(f"{name} returned shape {p.shape} for {where}: expected one probability per chunk, shape "
                    f"{log_ppl.shape}.")
    if np.isnan(p).any():
        raise Wrong(f"{name} returned nan for {where}.")
    if keep_fraction < 1 and set(np.unique(p)) <= {0.0, 1.0}:
        raise Wrong(f"{name} returned only 0s and 1s for {where}: those are draws, not probabilities. Return the "
                    "probability of keeping each chunk; the notebook draws with rng.random(n) < keep_probability.")
    if p.max() > 1 + 1e-9 or p.min() < 0:
        raise Wrong(f"{name} returned probabilities from {p.min():.3g} to {p.max():.3g} for {where}: a probability "
                    "is between 0 and 1. Clip at 1 with np.minimum(1.0, ...).")
    return p


# ---------------------------------------------------------------- 1: a keep fraction that means what it says
@exercise("04", 1, "keep probabilities that keep KEEP_FRACTION of the chunks")
def _(answer) -> str:
    name = getattr(answer, "__name__", "keep_probability")
    _function(answer, name, "(log_ppl, keep_fraction)")
    for label, log_ppl in _samples():
        weight = gaussian_weight(log_ppl)
        for keep_fraction in (1.0, 0.8, 0.5):
            where = f"{label} and keep_fraction={keep_fraction}"
            p = _probabilities(_call(answer, name, (log_ppl.copy(), keep_fraction), f"log_ppl, {keep_fraction}"),
                               log_ppl, keep_fraction, name, where)
            mean = p.mean()
            if abs(mean - keep_fraction) > 2e-3:
                naive = np.minimum(1.0, weight * keep_fraction / weight.mean()).mean()
                if abs(mean - naive) < 2e-3:
                    raise Wrong(
                        f"with keep_fraction={keep_fraction} your probabilities average {mean:.3f}, not "
                        f"{keep_fraction} ({label}): that is the notebook's rule, min(1, weight x keep_fraction / "
                        "mean(weight)). Near the median the scaled weight is above 1, and what the clip cuts off is "
                        "lost. Find instead the scale c for which mean(min(1, c x weight)) = keep_fraction (the "
                        "mean grows with c: bisection finds it).")
                raise Wrong(f"with keep_fraction={keep_fraction} your probabilities average {mean:.3f} ({label}): "
                            f"the expected share of chunks kept must be {keep_fraction}.")
            reference = scaled_keep_probability(weight, keep_fraction)
            gap = np.abs(p - reference)
            if gap.max() > 5e-3:
                median, average = np.median(log_ppl), log_ppl.mean()
                around_mean = np.exp(-0.5 * ((log_ppl - average) / log_ppl.std()) ** 2)
                if np.abs(p - scaled_keep_probability(around_mean, keep_fraction)).max() < 5e-3:
                    raise Wrong(f"the right average, but your curve is centred on the mean of the log perplexities "
                                f"({average:.2f}), not on their median ({median:.2f}) as the notebook's ({label}).")
                worst = int(np.argmax(gap))
                raise Wrong(
                    f"the right average, but not the notebook's Gaussian shape ({label}, keep_fraction="
                    f"{keep_fraction}): at log perplexity {log_ppl[worst]:.2f} you give {p[worst]:.3f}, the scaled "
                    f"Gaussian {reference[worst]:.3f}. Keep the weight exp(-(x - median)^2 / (2 std^2)) of the "
                    "notebook and change only its scale.")
    return ("right: the expected share kept is now exactly keep_fraction, with the notebook's Gaussian shape. The "
            "notebook's rule, clipped at 1 after scaling, undershoots: on the toy corpus KEEP_FRACTION = 1.0 keeps "
            "about 84 % of the chunks and 0.8 about 77 %, because every chunk near the median asks for more than "
            "a probability of 1. With the scale found by bisection, 1.0 keeps everything, as the exercise meant.")


# ---------------------------------------------------------------- 2: the stepwise variant
@exercise("04", 2, "a stepwise keep probability on the quartiles")
def _(answer) -> str:
    name = getattr(answer, "__name__", "stepwise_keep_probability")
    _function(answer, name, "(log_ppl, keep_fraction)")
    for label, log_ppl in _samples():
        quartiles = np.array_split(np.argsort(log_ppl), 4)  # 100 chunks each; no value on a boundary
        for keep_fraction in (0.8, 0.5, 1.0):
            where = f"{label} and keep_fraction={keep_fraction}"
            p = _probabilities(_call(answer, name, (log_ppl.copy(), keep_fraction), f"log_ppl, {keep_fraction}"),
                               log_ppl, keep_fraction, name, where)
            values = []
            for q, members in enumerate(quartiles, start=1):
                inside = p[members]
                if inside.max() - inside.min() > 1e-9:
                    raise Wrong(f"in quartile Q{q} your probabilities go from {inside.min():.3f} to {inside.max():.3f} "
                                f"({where}): a stepwise function gives every chunk of a quartile the same probability. "
                                "np.quantile(log_ppl, [0.25, 0.5, 0.75]) gives the boundaries.")
                values.append(float(inside[0]))
            if keep_fraction < 1 and min(values[1], values[2]) <= max(values[0], values[3]):
                raise Wrong(f"your probabilities by quartile are {', '.join(f'{v:.3f}' for v in values)} (Q1 to Q4, "
                            f"{where}): the middle quartiles, Q2 and Q3, must be kept more often than the outer ones.")
            if abs(p.mean() - keep_fraction) > 5e-3:
                raise Wrong(f"your probabilities average {p.mean():.3f} ({where}), so the expected share of chunks "
                            f"kept is not keep_fraction={keep_fraction}: scale them (each quartile holds a quarter of "
                            "the chunks, so the mean is the average of the four steps), capping at 1.")
    return ("right: one probability per quartile, higher in the middle two, and keep_fraction of the chunks kept on "
            "average. Unlike the Gaussian it is blunt: the most extreme chunks of Q1 and Q4 are kept exactly as "
            "often as those next to the median's quartiles, and the boundaries move with the corpus.")


# ---------------------------------------------------------------- 4: the size of a RobertaForMaskedLM
@functools.lru_cache(maxsize=8)
def roberta_mlm_parameters(vocab_size: int, hidden_size: int, num_layers: int, max_positions: int) -> int:
    """The parameters of a ``RobertaForMaskedLM`` built as notebook 04 builds it (counted once when tied)."""
    import torch
    from transformers import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                           num_attention_heads=1, intermediate_size=4 * hidden_size,
                           max_position_embeddings=max_positions, type_vocab_size=1, pad_token_id=1)
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = RobertaForMaskedLM(config)
    return sum(p.numel() for p in model.parameters())


_SIZES = ((1000, 64, 2, 130), (500, 32, 1, 34), (3000, 96, 3, 66))


def _diagnose(difference: int, v: int, h: int, n_layers: int, p: int) -> str:
    known = {
        v * h: "you counted the output layer's matrix: RoBERTa ties it to the word embeddings, one tensor counted once",
        -(h * h + 3 * h + v): "the MLM head is missing: a dense layer h x h with its bias, a LayerNorm, and an output "
                              "bias of one value per token (its matrix is the word embeddings)",
        -v: "the output bias is missing: the MLM head adds one value per vocabulary entry",
        -h: "the token-type embeddings are missing: type_vocab_size=1 is still one row of h values",
        -p * h: "the position embeddings are missing: max_position_embeddings rows of h",
        -2 * h * (2 * n_layers + 2): "the LayerNorms are missing (a gain and a bias of h each: one after the "
                                     "embeddings, two per layer, one in the head)",
        -(9 * h * n_layers + h + v): "the biases are missing (four attention projections, two feed-forward layers, "
                                     "the head's dense layer and the output bias)",
        -(8 * h * h * n_layers + 5 * h * n_layers): "the feed-forward layers are missing (h x 4h and 4h x h, with "
                                                    "their biases, in every layer)",
        -(4 * h * h * n_layers + 4 * h * n_layers): "the attention projections are missing (query, key, value and "
                                                    "output, h x h with a bias each, in every layer)",
    }
    return known.get(difference, "count part by part: embeddings (words v x h, positions P x h, one token type h, "
                                 "LayerNorm 2h); each layer: attention 4(h^2 + h) and a LayerNorm 2h, feed-forward "
                                 "h x 4h + 4h + 4h x h + h and a LayerNorm 2h; the MLM head: dense h^2 + h, LayerNorm "
                                 "2h, output bias v (its matrix is the word embeddings)")


@exercise("04", 4, "the parameters of a RobertaForMaskedLM")
def _(answer) -> str:
    name = getattr(answer, "__name__", "roberta_parameters")
    _function(answer, name, "(vocab_size, hidden_size, num_layers, max_positions)")
    for v, h, n_layers, p in _SIZES:
        shown = f"{v}, {h}, {n_layers}, {p}"
        got = _call(answer, name, (v, h, n_layers, p), shown)
        if hasattr(got, "item") and np.size(got) == 1:
            got = got.item()
        if not isinstance(got, numbers.Real) or isinstance(got, bool) or got != int(got):
            raise Wrong(f"{name}({shown}) returned {_kind(got)}: expected a whole number of parameters.")
        right = roberta_mlm_parameters(v, h, n_layers, p)
        if int(got) != right:
            difference = int(got) - right
            raise Wrong(f"{name}({shown}) gives {int(got):,}; a RobertaForMaskedLM of that size has {right:,} "
                        f"({difference:+,}): {_diagnose(difference, v, h, n_layers, p)}.")
    return ("right, for every size tried. The layers hold 12 h^2 + 13 h parameters each, so doubling the width and "
            "halving the depth does not keep the size: the layers' share doubles ((L/2) x 12 (2h)^2 = 2 x L x 12 h^2) "
            "and the embeddings double too. To compare shapes at equal size, solve your "
            "function for the width that matches.")
