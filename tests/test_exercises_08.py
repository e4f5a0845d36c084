"""The checks of notebook 08's exercises: right answers pass, typical wrong ones fail with a useful message."""

import torch
from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor, TopPLogitsWarper

from nlp_course.exercises import check, registered


def with_temperature(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def top_p_tokens(probs, p):
    values, order = torch.sort(probs, descending=True)
    kept = int((torch.cumsum(values, 0) < p).sum()) + 1  # notebook 08's count
    return order[:kept].tolist()


def penalise_repeats(logits, previous_ids, penalty):
    out = logits.clone()
    for i in set(previous_ids):
        out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty
    return out


def wrong(number, answer):
    verdict = check("08", number, answer, quiet=True)
    assert not verdict, f"accepted a wrong answer: {verdict.message}"
    return verdict.message


def test_registered():
    assert [n for _, n in registered("08")] == [6, 7, 8]


def test_unanswered_starter_cells_do_not_raise():
    for number in (6, 7, 8):
        assert "not answered yet" in wrong(number, lambda *args: None)
        assert "expected a function" in wrong(number, 0.9)


def test_temperature():
    assert check("08", 6, with_temperature, quiet=True)
    assert check("08", 6, lambda logits, t: torch.softmax(logits, -1) ** (1 / t) / (torch.softmax(logits, -1) ** (1 / t)).sum())
    assert "multiplied the logits by T" in wrong(6, lambda logits, t: torch.softmax(logits * t, dim=-1))
    assert "sums to" in wrong(6, lambda logits, t: logits / t)  # logits, not probabilities
    assert "sums to" in wrong(6, lambda logits, t: torch.softmax(logits, dim=-1) / t)  # divided after the softmax
    assert "shape" in wrong(6, lambda logits, t: with_temperature(logits, t)[None])
    assert "raised" in wrong(6, lambda logits, t: with_temperature(logits, t, 1))


def test_top_p():
    assert check("08", 7, top_p_tokens, quiet=True)

    def as_transformers(probs, p):  # the library's filter keeps the same tokens
        scores = TopPLogitsWarper(top_p=p)(None, probs.log()[None])[0]
        return torch.isfinite(scores).nonzero().flatten().tolist()

    assert check("08", 7, as_transformers, quiet=True)

    def strict(probs, p):  # stops before the token that crosses p
        values, order = torch.sort(probs, descending=True)
        return order[torch.cumsum(values, 0) < p].tolist()

    def at_most(probs, p):  # a total equal to p is not enough for it
        values, order = torch.sort(probs, descending=True)
        return order[: int((torch.cumsum(values, 0) <= p).sum()) + 1].tolist()

    def unsorted(probs, p):
        return list(range(int((torch.cumsum(probs, 0) < p).sum()) + 1))

    def positions(probs, p):
        return list(range(len(top_p_tokens(probs, p))))

    assert "reach p" in wrong(7, strict)
    assert "too many" in wrong(7, at_most)
    assert "Sort the probabilities" in wrong(7, unsorted)
    assert "positions in the sorted order" in wrong(7, positions)
    assert "not how many" in wrong(7, lambda probs, p: len(top_p_tokens(probs, p)))
    assert "mask of booleans" in wrong(7, lambda probs, p: probs >= 0.1)


def test_repetition_penalty():
    assert check("08", 8, penalise_repeats, quiet=True)
    logits, previous = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0]), [0, 1, 1, 3]
    library = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor([previous]), logits[None].clone())[0]
    assert torch.allclose(penalise_repeats(logits, previous, 1.3), library)

    def divide_all(logits, previous_ids, penalty):
        out = logits.clone()
        out[sorted(set(previous_ids))] /= penalty
        return out

    def every_occurrence(logits, previous_ids, penalty):
        out = logits.clone()
        for i in previous_ids:
            out[i] = out[i] / penalty if out[i] > 0 else out[i] * penalty
        return out

    def in_place(logits, previous_ids, penalty):
        logits[:] = penalise_repeats(logits, previous_ids, penalty)

    assert "in place and returned None" in wrong(8, in_place)
    assert "*more* likely" in wrong(8, divide_all)
    assert "once per distinct token" in wrong(8, every_occurrence)
    assert "not in the text" in wrong(8, lambda logits, ids, p: torch.where(logits < 0, logits * p, logits / p))
    assert "returned probabilities" in wrong(8, lambda logits, ids, p: torch.softmax(penalise_repeats(logits, ids, p), -1))
    assert "subtracted" in wrong(8, lambda logits, ids, p: logits - p * torch.isin(torch.arange(len(logits)),
                                                                                     torch.tensor(ids, dtype=torch.long)))
