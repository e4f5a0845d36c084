"""The checks of notebook 07's exercises: right answers pass, typical wrong ones fail with a useful message."""

import pytest
import torch
from scipy.stats import binomtest

from nlp_course.exercises import check, registered


def head_parameters(hidden_size, num_labels, roberta):
    out_proj = hidden_size * num_labels + num_labels
    return hidden_size * hidden_size + hidden_size + out_proj if roberta else out_proj


def dynamic_positions(lengths, batch_size):
    batches = [lengths[i:i + batch_size] for i in range(0, len(lengths), batch_size)]
    return sum(len(batch) * max(batch) for batch in batches)


def fewest_right(n, p):
    return next(r for r in range(n + 1) if binomtest(r, n, p, alternative="greater").pvalue < 0.05)


def wrong(number, answer):
    verdict = check("07", number, answer, quiet=True)
    assert not verdict, f"accepted a wrong answer: {verdict.message}"
    return verdict.message


def test_registered():
    assert [n for _, n in registered("07")] == [8, 9, 10]


def test_unanswered_starter_cells_do_not_raise():
    assert "not answered yet" in check("07", 8, ..., quiet=True).message
    for number in (8, 9, 10):
        assert "not answered yet" in wrong(number, lambda *args: None)


def test_head_parameters():
    assert check("07", 8, head_parameters, quiet=True)
    # the formula is the one of the real heads: a linear layer, and RoBERTa's dense + out_proj
    bert_head = torch.nn.Linear(768, 6)
    roberta_head = torch.nn.Sequential(torch.nn.Linear(128, 128), torch.nn.Linear(128, 2))
    assert head_parameters(768, 6, False) == sum(p.numel() for p in bert_head.parameters()) == 4_614
    assert head_parameters(128, 2, True) == sum(p.numel() for p in roberta_head.parameters()) == 16_770
    assert "biases" in wrong(8, lambda h, n, r: h * n + (h * h if r else 0))
    assert "dense" in wrong(8, lambda h, n, r: h * n + n)  # forgot RoBERTa's dense layer
    assert "biases of both layers" in wrong(8, lambda h, n, r: h * n + n + (h * h if r else 0))
    assert "BERT's head" in wrong(8, lambda h, n, r: head_parameters(h, n, not r))  # the flag read backwards
    assert "expected a function" in wrong(8, 4614)
    assert "raised TypeError" in wrong(8, lambda h, n: h * n + n)  # forgot an argument


def test_dynamic_positions():
    assert check("07", 9, dynamic_positions, quiet=True)
    assert "longest of the whole dataset" in wrong(9, lambda lengths, b: len(lengths) * max(lengths))
    assert "sorted" in wrong(9, lambda lengths, b: dynamic_positions(sorted(lengths), b))
    assert "last batch" in wrong(9, lambda lengths, b: sum(b * max(lengths[i:i + b]) for i in range(0, len(lengths), b)))
    assert "the tokens alone" in wrong(9, lambda lengths, b: sum(lengths))
    assert "last, shorter batch is missing" in wrong(
        9, lambda lengths, b: sum(b * max(lengths[i:i + b]) for i in range(0, len(lengths) - b + 1, b)))
    assert "whole number" in wrong(9, lambda lengths, b: dynamic_positions(lengths, b) / 2 + 0.25)


def test_fewest_right():
    assert check("07", 10, fewest_right, quiet=True)
    assert fewest_right(60, 0.5) == 37
    assert "one too few" in wrong(10, lambda n, p: fewest_right(n, p) - 1)
    assert "one too many" in wrong(10, lambda n, p: fewest_right(n, p) + 1)
    two_sided_from_the_mean = lambda n, p: next(r for r in range(round(n * p), n + 1)  # noqa: E731
                                                if binomtest(r, n, p).pvalue < 0.05)
    assert "two-sided" in wrong(10, two_sided_from_the_mean)
    assert "two-sided" in wrong(10, lambda n, p: next(r for r in range(n + 1) if binomtest(r, n, p).pvalue < 0.05))
    assert "a share" in wrong(10, lambda n, p: fewest_right(n, p) / n)


@pytest.mark.parametrize("number", [8, 9, 10])
def test_types(number):
    assert "expected a function" in wrong(number, "37")
