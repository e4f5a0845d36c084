"""The checks of notebook 05's exercises: right answers pass, typical wrong ones fail with a useful message."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from nlp_course.electra import gumbel_max, roc_auc
from nlp_course.exercises import check, registered


def sample(logits, generator):
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)


def masked_auc(scores, is_replaced, labels):
    masked = labels != -100
    return roc_auc(scores[masked], is_replaced[masked])


def wrong(number, answer):
    verdict = check("05", number, answer, quiet=True)
    assert not verdict, f"accepted a wrong answer: {verdict.message}"
    return verdict.message


def test_registered():
    assert [n for _, n in registered("05")] == [3, 4]


def test_unanswered_starter_cells_do_not_raise():
    assert "not answered yet" in check("05", 3, ..., quiet=True).message
    for number in (3, 4):
        assert "not answered yet" in wrong(number, lambda *args: None)


def test_sampler():
    assert check("05", 3, sample, quiet=True)
    assert check("05", 3, gumbel_max, quiet=True)  # the package's Gumbel-max
    assert check("05", 3, lambda logits, g: torch.multinomial(logits.softmax(-1), 1).squeeze(-1), quiet=True)  # global RNG
    assert "squeeze" in wrong(3, lambda logits, g: torch.multinomial(logits.softmax(-1), 1, generator=g))
    assert "greedy" in wrong(3, lambda logits, g: logits.argmax(-1))
    assert "sign slip" in wrong(3, lambda logits, g: (  # argmax(logits - gumbel)
        logits + torch.log(-torch.log(torch.rand(logits.shape, generator=g)))).argmax(-1))
    assert "temperature" in wrong(3, lambda logits, g: sample(logits / 2, g))
    assert "in place" in wrong(3, lambda logits, g: logits.add_(-torch.log(-torch.log(torch.rand(logits.shape)))).argmax(-1))
    assert "token ids" in wrong(3, lambda logits, g: logits.softmax(-1).max(-1).values)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")  # one class: nan, as it should
def test_masked_auc():
    assert check("05", 4, masked_auc, quiet=True)
    sklearn_version = lambda s, r, labels: roc_auc_score(r[labels != -100], s[labels != -100])  # noqa: E731
    assert check("05", 4, sklearn_version, quiet=True)  # it gives nan (with a warning) for one class
    assert "every real token" in wrong(4, lambda s, r, labels: roc_auc(s[r != -100], r[r != -100]))
    assert "padding included" in wrong(4, lambda s, r, labels: roc_auc(s, r))
    assert "1 minus" in wrong(4, lambda s, r, labels: 1 - masked_auc(s, r, labels))
    assert "ties" in wrong(4, lambda s, r, labels: float(np.mean(  # P(replaced > original), ties not counted
        s[(labels != -100) & (r == 1)][:, None] > s[(labels != -100) & (r == 0)][None, :])))
    assert "undefined" in wrong(4, lambda s, r, labels: roc_auc(s[labels != -100], r[labels != -100]) if (
        r[labels != -100] == 0).any() else 0.5)
    assert "return nan" in wrong(4, lambda s, r, labels: sklearn_version(s, r, labels) if (  # sklearn raising, as older versions do
        r[labels != -100] == 0).any() else roc_auc_score([1, 1], [0.1, 0.2]) / 0)
    assert "one number" in wrong(4, lambda s, r, labels: s[labels != -100])
