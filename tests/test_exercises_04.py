"""The checks of notebook 04's exercises: right answers pass, typical wrong ones fail with a useful message."""

import numpy as np

from nlp_course.exercises import check, registered
from nlp_course.exercises.ch04 import roberta_mlm_parameters


def gaussian(log_ppl, center):
    return np.exp(-0.5 * ((log_ppl - center) / log_ppl.std()) ** 2)


def scaled(weight, keep_fraction):  # the solution's bisection
    if keep_fraction >= 1:
        return np.ones_like(weight)
    low, high = 0.0, 1.0 / weight.min()
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if np.minimum(1.0, middle * weight).mean() < keep_fraction else (low, middle)
    return np.minimum(1.0, high * weight)


def keep_probability(log_ppl, keep_fraction):
    return scaled(gaussian(log_ppl, np.median(log_ppl)), keep_fraction)


def stepwise(log_ppl, keep_fraction, ratio=2.0):
    q1, q3 = np.quantile(log_ppl, [0.25, 0.75])
    outer = 2 * keep_fraction / (1 + ratio)
    inner, outer = (1.0, 2 * keep_fraction - 1) if ratio * outer > 1 else (ratio * outer, outer)
    return np.where((log_ppl > q1) & (log_ppl <= q3), inner, outer)


def roberta_parameters(v, h, layers, positions):
    return v * h + positions * h + 3 * h + layers * (12 * h * h + 13 * h) + h * h + 3 * h + v


def wrong(number, answer):
    verdict = check("04", number, answer, quiet=True)
    assert not verdict, f"accepted a wrong answer: {verdict.message}"
    return verdict.message


def test_registered():
    assert [n for _, n in registered("04")] == [1, 2, 4]


def test_unanswered_starter_cells_do_not_raise():
    assert "not answered yet" in check("04", 1, ..., quiet=True).message
    for number in (1, 2, 4):
        assert "not answered yet" in wrong(number, lambda *args: None)


def test_keep_probability():
    assert check("04", 1, keep_probability, quiet=True)
    notebook_rule = lambda x, k: np.minimum(1.0, gaussian(x, np.median(x)) * k / gaussian(x, np.median(x)).mean())  # noqa: E731
    assert "what the clip cuts off is lost" in wrong(1, notebook_rule)
    assert "mean of the log perplexities" in wrong(1, lambda x, k: scaled(gaussian(x, x.mean()), k))
    assert "Gaussian shape" in wrong(1, lambda x, k: scaled(np.exp(-np.abs(x - np.median(x))), k))
    assert "Clip at 1" in wrong(1, lambda x, k: gaussian(x, np.median(x)) * k / gaussian(x, np.median(x)).mean())
    assert "draws, not probabilities" in wrong(1, lambda x, k: np.random.default_rng(0).random(len(x)) < keep_probability(x, k))
    assert "one probability per chunk" in wrong(1, lambda x, k: keep_probability(x, k).mean())
    assert "pass the function itself" in wrong(1, 0.8)


def test_stepwise_keep_probability():
    assert check("04", 2, stepwise, quiet=True)
    assert check("04", 2, lambda x, k: stepwise(x, k, ratio=3.0), quiet=True)
    inverted = lambda x, k: stepwise(x, k).max() + stepwise(x, k).min() - stepwise(x, k)  # noqa: E731
    assert "middle quartiles" in wrong(2, inverted)  # the outer quartiles kept more often
    assert "average 0.750" in wrong(2, lambda x, k: np.where(  # fixed steps, not scaled to keep_fraction
        (x > np.quantile(x, 0.25)) & (x <= np.quantile(x, 0.75)), 1.0, 0.5))
    assert "same probability" in wrong(2, keep_probability)  # a smooth curve is not a step function
    assert "same probability" in wrong(2, lambda x, k: np.where(np.abs(x - x.mean()) < x.std(), min(1, 1.2 * k), 0.6 * k))


def test_roberta_parameters():
    assert check("04", 4, roberta_parameters, quiet=True)
    for v, h, layers, positions in ((2000, 128, 2, 130), (500, 32, 1, 34)):  # the formula against real models
        assert roberta_parameters(v, h, layers, positions) == roberta_mlm_parameters(v, h, layers, positions)
    assert roberta_mlm_parameters(2000, 128, 2, 130) == 688_336  # the notebook's toy model
    assert "ties it to the word embeddings" in wrong(4, lambda v, h, n, p: roberta_parameters(v, h, n, p) + v * h)
    assert "MLM head is missing" in wrong(4, lambda v, h, n, p: roberta_parameters(v, h, n, p) - (h * h + 3 * h + v))
    assert "token-type" in wrong(4, lambda v, h, n, p: roberta_parameters(v, h, n, p) - h)
    assert "biases are missing" in wrong(4, lambda v, h, n, p: roberta_parameters(v, h, n, p) - (9 * h * n + h + v))
    assert "count part by part" in wrong(4, lambda v, h, n, p: 12 * h * h * n)  # the rule of thumb, layers only
    assert "whole number" in wrong(4, lambda v, h, n, p: "688k")
