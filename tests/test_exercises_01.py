"""Notebook 01's exercise checks: right answers (as solutions/01_solutions.ipynb computes them) pass, and the
mistakes learners make are rejected with a sentence that says what is wrong."""

import math
import re
from functools import cache

import numpy as np
import torch

from nlp_course.exercises import check
from nlp_course.ngram import NGramLanguageModel

SMOOTHING_KS = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
PAIR = ("El hombre fue a la tienda.", "Compró un litro de leche.")


def rejected(number, answer, *words):
    verdict = check("01", number, answer, quiet=True)
    assert not verdict, verdict.message
    for word in words:
        assert word in verdict.message, verdict.message


def accepted(number, answer):
    verdict = check("01", number, answer, quiet=True)
    assert verdict, verdict.message


def word_tokenize(text):
    return re.findall(r"\w+|[^\w\s]", text.lower())


@cache
def toy_split():
    from nlp_course.data import load_corpus

    splits = load_corpus("corpus_es").train_test_split(test_size=0.1, seed=42)
    return splits["train"]["text"], splits["test"]["text"]


def sentences(docs):
    return [line for doc in docs for line in doc.splitlines() if line.strip()]


@cache
def wordpiece(vocab_size):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(toy_split()[0], trainer=trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    return tok


# ---------------------------------------------------------------- 1
def test_ex1_tokens_per_sentence():
    held = sentences(toy_split()[1])
    right = {size: float(np.mean([len(wordpiece(size).encode(s).tokens) for s in held])) for size in (300, 8000)}
    accepted(1, right)
    accepted(1, {k: round(v, 1) for k, v in right.items()})
    rejected(1, {300: right[8000], 8000: right[300]}, "wrong way round")
    rejected(1, {300: right[300] + 2, 8000: right[8000]}, "[CLS] and [SEP]")
    per_doc = np.mean([len(wordpiece(300).encode(doc).tokens) for doc in toy_split()[1]])
    rejected(1, {300: per_doc, 8000: right[8000]}, "per held-out document")
    rejected(1, [right[300], right[8000]], "expected a dict")
    rejected(1, {300: ..., 8000: ...}, "not answered yet")


# ---------------------------------------------------------------- 2
def test_ex2_words_that_strip_accents_merges():
    accepted(2, [("el", "él"), ("que", "qué"), ("esta", "está"), ("como", "cómo"), ("una", "uña")])
    rejected(2, [("el", "él"), ("si", "sí"), ("año", "ano")], "at least three more")
    rejected(2, [("que", "qué"), ("el", "la")], "stay different")
    rejected(2, [("Él", "él")], "differ only in case")
    rejected(2, ["el", "él"], "pairs of words")


# ---------------------------------------------------------------- 3
def test_ex3_interpolation():
    def right(word, context, models, lambdas):
        return sum(lam * lm.prob(word, context) for lam, lm in zip(lambdas, models, strict=True))

    accepted(3, right)
    rejected(3, lambda w, c, m, lambdas: right(w, c, m, lambdas[::-1]), "pairs λ1 with the trigram")
    rejected(3, lambda w, c, m, lambdas: right(w, [], m, lambdas), "ignores the context")
    rejected(3, lambda w, c, m, lambdas: sum(lm.prob(w, c) for lm in m), "sum to 3.000")
    rejected(3, lambda w, c, m, lambdas: None, "not answered yet")
    rejected(3, lambda w, c, m, lambdas: [0.5], "expected a probability")
    rejected(3, 0.25, "expected a function")


# ---------------------------------------------------------------- 4
def test_ex4_unseen_bigram_under_add_k():
    train = [word_tokenize(s) for s in sentences(toy_split()[0])]
    lm = NGramLanguageModel(n=2, min_count=2).fit(train)

    def probabilities(word, previous, model=lm):
        values = {}
        for k in SMOOTHING_KS:
            model.k = k  # prob() reads k when called: one fit serves every k
            values[k] = model.prob(word, [previous])
        return values

    right = probabilities("baile", "de")
    accepted(4, (("de", "baile"), right))
    rejected(4, (("de", "la"), right), "occurs", "training sentences")
    rejected(4, (("doña", "eufemia"), right), "<unk>")
    rejected(4, (("mis", "amigas"), right), "<unk>")
    rejected(4, (("de", "nada"), right), "never occurs")
    rejected(4, (("de", "baile"), {k: 0.0 for k in SMOOTHING_KS}), "unsmoothed")
    rejected(4, (("de", "baile"), probabilities("de", "baile")), "the other way")
    loose = NGramLanguageModel(n=2, min_count=1).fit(train)
    rejected(4, (("de", "baile"), probabilities("baile", "de", loose)), "min_count=1")
    rejected(4, (("de", "baile"), list(right.values())), "dict")
    rejected(4, (("de", "baile"), {1.0: right[1.0]}), "no probability for k")
    rejected(4, ("de baile", right), "pair of words")
    rejected(4, (..., ...), "not answered yet")


# ---------------------------------------------------------------- 5
def test_ex5_attention_with_projections():
    def right(x, w_q, w_k):
        return ((x @ w_q) @ (x @ w_k).T / math.sqrt(w_q.shape[1])).softmax(-1)

    accepted(5, right)
    rejected(5, lambda x, q, k: ((x @ q) @ (x @ k).T / math.sqrt(q.shape[1])).softmax(0), "columns sum to 1")
    rejected(5, lambda x, q, k: ((x @ q) @ (x @ k).T).softmax(-1), "sqrt(d_k)")
    rejected(5, lambda x, q, k: ((x @ q) @ (x @ k).T / math.sqrt(x.shape[1])).softmax(-1), "the size of a query")
    rejected(5, lambda x, q, k: (x @ x.T / math.sqrt(x.shape[1])).softmax(-1), "do not use w_q and w_k")
    rejected(5, lambda x, q, k: (right(x, q, k) @ x, right(x, q, k)), "return only the weights")
    rejected(5, lambda x, q, k: torch.ones(3), "shape")


# ---------------------------------------------------------------- 6
def test_ex6_truncation_only_second():
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from nlp_course.tokenization import train_tokenizer

    backend = wordpiece(2000)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, backend.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                        model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    full = tokenizer.convert_ids_to_tokens(tokenizer(*PAIR)["input_ids"])
    kept = len(tokenizer(*PAIR, truncation="only_second", max_length=12)["input_ids"])
    dropped = full[kept - 1: -1]
    accepted(6, (tokenizer, dropped))
    rejected(6, (tokenizer, [*dropped, "[SEP]"]), "[SEP] is not dropped")
    rejected(6, (tokenizer, ["la", "tienda"]), "never touches the first sentence")
    rejected(6, (tokenizer, dropped[1:]), "one token off")
    rejected(6, (tokenizer, " ".join(dropped)), "list of strings")
    roberta = train_tokenizer(toy_split()[0][:5], kind="bpe", vocab_size=300)
    rejected(6, (roberta, dropped), "token_type_ids")
    rejected(6, (tokenizer, ...), "not answered yet")
