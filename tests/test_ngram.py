import math

import pytest

from nlp_course.ngram import EOS, UNK, NGramLanguageModel, word_tokenize

# Three sentences, counted by hand below.
SENTENCES = [["yo", "quiero", "pan"], ["yo", "quiero", "agua"], ["tú", "quieres", "pan"]]


def test_word_tokenize_splits_spanish_punctuation():
    assert word_tokenize("¿Qué es un modelo de lenguaje?") == ["¿", "qué", "es", "un", "modelo", "de", "lenguaje", "?"]
    assert word_tokenize("¡Hola, Ñandú!", lowercase=False) == ["¡", "Hola", ",", "Ñandú", "!"]


def test_bigram_probabilities_match_hand_counts():
    lm = NGramLanguageModel(n=2).fit(SENTENCES)
    assert lm.prob("yo", ["<s>"]) == pytest.approx(2 / 3)  # count(<s> yo) / count(<s>)
    assert lm.prob("quiero", ["yo"]) == 1.0  # count(yo quiero) / count(yo) = 2 / 2
    assert lm.prob("pan", ["quiero"]) == pytest.approx(1 / 2)
    assert lm.prob(EOS, ["pan"]) == 1.0
    assert lm.prob("agua", ["yo"]) == 0.0


def test_trigram_uses_two_words_of_context():
    lm = NGramLanguageModel(n=3).fit(SENTENCES)
    assert lm.prob("pan", ["yo", "quiero"]) == pytest.approx(1 / 2)
    assert lm.prob("pan", ["tú", "quieres"]) == 1.0
    assert lm.prob("quiero", ["yo"]) == 1.0  # context padded with <s>: count(<s> yo quiero) / count(<s> yo)


def test_perplexity_by_hand():
    lm = NGramLanguageModel(n=2).fit(SENTENCES)
    # P(yo|<s>) P(quiero|yo) P(pan|quiero) P(</s>|pan) = 2/3 * 1 * 1/2 * 1 over 4 predictions
    expected = math.exp(-(math.log(2 / 3) + math.log(1 / 2)) / 4)
    assert lm.perplexity([["yo", "quiero", "pan"]]) == pytest.approx(expected)


def test_unseen_bigram_gives_infinite_perplexity_and_smoothing_fixes_it():
    unseen = [["tú", "quiero", "agua"]]
    assert NGramLanguageModel(n=2).fit(SENTENCES).perplexity(unseen) == math.inf
    smoothed = NGramLanguageModel(n=2, k=1.0).fit(SENTENCES)
    vocab = len(smoothed.vocab)  # yo quiero pan agua tú quieres </s> <unk> = 8
    assert vocab == 8
    assert smoothed.prob("quiero", ["tú"]) == pytest.approx((0 + 1) / (1 + vocab))
    assert math.isfinite(smoothed.perplexity(unseen))


def test_smoothed_probabilities_sum_to_one():
    lm = NGramLanguageModel(n=2, k=0.5).fit(SENTENCES)
    for context in (["yo"], ["quiero"], ["nunca-visto"]):
        assert sum(lm.prob(w, context) for w in lm.vocab) == pytest.approx(1.0)


def test_rare_words_become_unk():
    lm = NGramLanguageModel(n=2, min_count=2).fit(SENTENCES)
    assert "agua" not in lm.vocab and UNK in lm.vocab
    assert lm.prob(UNK, ["quiero"]) == pytest.approx(1 / 2)  # "agua" counted as <unk>
    assert lm.prob("zanahoria", ["quiero"]) == lm.prob(UNK, ["quiero"])


def test_generate_is_seeded_and_only_uses_seen_bigrams():
    from nlp_course.data import load_corpus

    sentences = [word_tokenize(line) for doc in load_corpus("corpus_es")["text"] for line in doc.splitlines()]
    lm = NGramLanguageModel(n=2).fit(sentences)
    samples = [lm.generate(max_words=30, seed=s) for s in range(20)]
    assert samples[3] == lm.generate(max_words=30, seed=3)
    assert any(s not in sentences for s in samples), "a bigram model makes up new sentences"
    for sample in samples:
        assert len(sample) <= 30
        padded = ["<s>"] + sample
        assert all(lm.ngram_counts[(a, b)] > 0 for a, b in zip(padded, padded[1:], strict=False))


def test_generate_continues_a_prefix_and_maps_unknown_words():
    lm = NGramLanguageModel(n=2).fit(SENTENCES)
    out = lm.generate(seed=0, prefix=["yo"])
    assert out[:2] == ["yo", "quiero"] and out[2] in {"pan", "agua"} and len(out) == 3
    rare = NGramLanguageModel(n=2, min_count=2).fit(SENTENCES)
    assert rare.generate(seed=0, prefix=["zanahoria"])[0] == "zanahoria"  # looked up as <unk>, kept as written


def test_unigram_model_by_hand():
    lm = NGramLanguageModel(n=1).fit(SENTENCES)
    # 9 words + 3 </s> = 12 predictions; "pan" twice, "yo" twice, "</s>" three times
    assert lm.prob("pan") == pytest.approx(2 / 12) and lm.prob(EOS) == pytest.approx(3 / 12)
    assert lm.prob("pan", ["context", "is", "ignored"]) == lm.prob("pan")
    expected = math.exp(-(math.log(2 / 12) + math.log(2 / 12) + math.log(2 / 12) + math.log(3 / 12)) / 4)
    assert lm.perplexity([["yo", "quiero", "pan"]]) == pytest.approx(expected)


def test_fitting_again_replaces_the_counts():
    lm = NGramLanguageModel(n=2, k=0.5).fit(SENTENCES).fit([["otra", "cosa"]])
    assert sum(lm.prob(w, ["otra"]) for w in lm.vocab) == pytest.approx(1.0)
    assert lm.prob("quiero", ["yo"]) == lm.prob("quiero", ["nunca"])  # "yo quiero" is forgotten


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        NGramLanguageModel(n=0)
    with pytest.raises(ValueError, match="k"):
        NGramLanguageModel(k=-1)
    with pytest.raises(ValueError, match="at least one sentence"):
        NGramLanguageModel().fit(SENTENCES).perplexity([])
