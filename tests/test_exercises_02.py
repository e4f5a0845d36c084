"""Notebook 02's exercise checks: right answers (as solutions/02_solutions.ipynb computes them) pass, and the
mistakes learners make are rejected with a sentence that says what is wrong."""

import random

import torch

from nlp_course.exercises import check


def rejected(number, answer, *words):
    verdict = check("02", number, answer, quiet=True)
    assert not verdict, verdict.message
    for word in words:
        assert word in verdict.message, verdict.message


def accepted(number, answer):
    verdict = check("02", number, answer, quiet=True)
    assert verdict, verdict.message


# ---------------------------------------------------------------- 2
def test_ex2_masked_shares_against_the_binomial():
    real, padded = 1_464, 40 * 48  # real tokens of 40 sentences; positions once padded to 48
    draws = [torch.bernoulli(torch.full((real,), 0.15), generator=torch.Generator().manual_seed(seed)).sum().item()
             for seed in range(10)]  # what mask_tokens draws: one Bernoulli(0.15) per real token
    shares = [d / real for d in draws]
    accepted(2, (shares, real))
    accepted(2, (torch.tensor(shares), torch.tensor(real)))
    rejected(2, ([d / padded for d in draws], real), "real tokens only")
    rejected(2, (draws, real), "more than 1")
    rejected(2, ([shares[0]] * 10, real), "each seed must give its own draw")
    rejected(2, (shares, real * 20), "more than they hold")
    rejected(2, (shares, real * 10), "cannot be")
    rejected(2, (shares[:3], real), "ten seeds")
    rejected(2, (shares, 0.15), "whole")
    rejected(2, (..., real), "not answered yet")


# ---------------------------------------------------------------- 3
def pairs_with(near: int = 2, same_document: bool = True, swap: bool = False, seeded: bool = True):
    def make(documents, seed=0):
        rng = random.Random(seed if seeded else random.random())
        pairs = []
        for d, doc in enumerate(documents):
            for i in range(len(doc) - 1):
                if same_document:
                    pool = [doc[j] for j in range(len(doc)) if abs(j - i) >= near]
                else:
                    pool = [s for e, other in enumerate(documents) if e != d for s in other]
                if pool and rng.random() < 0.5:
                    pairs.append({"sentence_a": doc[i], "sentence_b": rng.choice(pool), "next_sentence_label": 0 if swap else 1})
                else:
                    pairs.append({"sentence_a": doc[i], "sentence_b": doc[i + 1], "next_sentence_label": 1 if swap else 0})
        return pairs

    return make


def test_ex3_same_document_nsp_pairs():
    accepted(3, pairs_with())
    rejected(3, pairs_with(near=1), "right after A")
    rejected(3, pairs_with(same_document=False), "another document")
    rejected(3, pairs_with(swap=True), "labels are swapped")
    rejected(3, pairs_with(seeded=False), "random.Random(seed)")

    def crashes(documents, seed=0):
        rng = random.Random(seed)
        return [{"sentence_a": doc[i], "sentence_b": rng.choice([doc[j] for j in range(len(doc)) if abs(j - i) >= 2]),
                 "next_sentence_label": 1} for doc in documents for i in range(len(doc) - 1)]

    rejected(3, crashes, "IndexError", "two or three sentences")
    rejected(3, lambda documents, seed=0: [], "makes no pair")
    rejected(3, lambda documents, seed=0: None, "not answered yet")
    rejected(3, "pairs", "expected a function")


# ---------------------------------------------------------------- 4
def sampler(scale=lambda logits, t: logits / t):
    def sample(logits, temperature, generator=None):
        probs = scale(logits, temperature).softmax(-1)
        return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(probs.shape[:-1])

    return sample


def test_ex4_sampling_with_a_temperature():
    accepted(4, sampler())
    accepted(4, lambda logits, t, generator=None: torch.distributions.Categorical(logits=logits / t).sample())
    rejected(4, sampler(lambda logits, t: logits * t), "divide the logits by the temperature")
    rejected(4, sampler(lambda logits, t: logits), "the temperature is not used")
    rejected(4, lambda logits, t, generator=None: logits.argmax(-1), "argmax")
    rejected(4, lambda logits, t, generator=None: (logits / t).softmax(-1), "probabilities")
    rejected(4, lambda logits, t, generator=None: sampler()(logits, t, generator).flatten(), "(2, 6)")
    rejected(4, lambda logits, t, generator=None: None, "not answered yet")


# ---------------------------------------------------------------- 5
def two_spans(words, spans):
    source, target, position = [], [], 0
    for n, (start, end) in enumerate(spans):
        source += words[position:start] + [f"<extra_id_{n}>"]
        target += [f"<extra_id_{n}>"] + words[start:end]
        position = end
    return " ".join(source + words[position:]), " ".join(target + [f"<extra_id_{len(spans)}>"])


def test_ex5_two_spans():
    accepted(5, two_spans)

    def shifted(words, spans):  # replaces the first span, then cuts the second at positions that have moved
        words, target = list(words), []
        for n, (start, end) in enumerate(spans):
            target += [f"<extra_id_{n}>"] + words[start:end]
            words[start:end] = [f"<extra_id_{n}>"]
        return " ".join(words), " ".join(target + [f"<extra_id_{len(spans)}>"])

    rejected(5, shifted, "shifts the positions")
    rejected(5, lambda words, spans: (two_spans(words, spans)[0], two_spans(words, spans)[1].rsplit(" ", 1)[0]),
             "closing sentinel")
    rejected(5, lambda words, spans: two_spans(words, [(s, e + 1) for s, e in spans]), "end excluded")
    rejected(5, lambda words, spans: tuple(t.replace("<extra_id_1>", "<extra_id_0>") for t in two_spans(words, spans)),
             "number its sentinels")
    rejected(5, lambda words, spans: " ".join(two_spans(words, spans)), "two strings")
