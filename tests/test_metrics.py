"""Corpus perplexity done right, checked against the model run by hand, and the course's metric modules
loaded offline, checked against scikit-learn.

The language model is a tiny GPT-2 (2 layers, 32 dimensions, a 16-token context) with random weights,
over a word-level tokenizer built from a few sentences: every number is computed again here by hand.
"""

import ast
import inspect
import math
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from nlp_course.evaluation import corpus_perplexity, load_metric, metric_modules_dir, sliding_windows

SENTENCES = ["el gato duerme en la casa", "la niña lee un libro en el jardín", "mañana llueve",
             "un perro corre por el parque y el gato lo mira desde la ventana"]
CONTEXT = 16


@pytest.fixture(scope="module")
def tokenizer():
    words = sorted({word for sentence in SENTENCES for word in sentence.split()})
    vocab = {word: i for i, word in enumerate(["[UNK]", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=CONTEXT,
                        bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(config).eval()


def ids_of(tokenizer, text):
    return tokenizer(text)["input_ids"]


def nll_by_hand(model, ids):
    """Summed -log p(next token) over ``ids`` run alone, and how many tokens were predicted."""
    with torch.no_grad():
        log_probs = model(input_ids=torch.tensor([ids])).logits[0].double().log_softmax(-1)
    return -sum(log_probs[i - 1, ids[i]].item() for i in range(1, len(ids))), len(ids) - 1


def long_text(n_words=40):
    words = " ".join(SENTENCES).split()
    return " ".join(words[i % len(words)] for i in range(n_words))


# ---------------------------------------------------------------- perplexity
def test_token_weighted_perplexity_equals_a_hand_computation(model, tokenizer):
    result = corpus_perplexity(model, tokenizer, SENTENCES, batch_size=3)  # batches mix lengths: padding
    by_hand = [nll_by_hand(model, ids_of(tokenizer, text)) for text in SENTENCES]
    total, count = sum(nll for nll, _ in by_hand), sum(n for _, n in by_hand)
    assert result["tokens"] == count == sum(len(s.split()) - 1 for s in SENTENCES)
    assert result["nll"] == pytest.approx(total / count, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    assert corpus_perplexity(model, tokenizer, SENTENCES, batch_size=1)["nll"] == pytest.approx(result["nll"], rel=1e-5)


def test_the_mean_of_text_perplexities_is_not_the_corpus_perplexity(model, tokenizer):
    result = corpus_perplexity(model, tokenizer, SENTENCES)
    per_text = [math.exp(nll / n) for nll, n in (nll_by_hand(model, ids_of(tokenizer, t)) for t in SENTENCES)]
    assert result["mean_of_text_perplexities"] == pytest.approx(sum(per_text) / len(per_text), rel=1e-5)
    assert abs(result["mean_of_text_perplexities"] - result["perplexity"]) > 1e-3 * result["perplexity"]


def test_stride_equal_to_the_context_scores_disjoint_chunks(model, tokenizer):
    ids = ids_of(tokenizer, long_text(40))
    assert len(ids) == 40 > CONTEXT
    result = corpus_perplexity(model, tokenizer, [long_text(40)], stride=CONTEXT)
    chunks = [nll_by_hand(model, ids[i : i + CONTEXT]) for i in range(0, len(ids), CONTEXT)]
    assert result["tokens"] == sum(n for _, n in chunks) == 40 - 3  # a chunk's first token has no context
    assert result["nll"] == pytest.approx(sum(nll for nll, _ in chunks) / result["tokens"], rel=1e-5)


def test_a_sliding_window_predicts_every_token_once_with_context(model, tokenizer):
    ids = ids_of(tokenizer, long_text(40))
    sliding = corpus_perplexity(model, tokenizer, [long_text(40)], stride=8, batch_size=2)
    assert sliding["tokens"] == len(ids) - 1
    # by hand: token i is scored in the window that first reaches it, with that window's context
    total = 0.0
    for begin, end, first in sliding_windows(len(ids), CONTEXT, 8):
        with torch.no_grad():
            log_probs = model(input_ids=torch.tensor([ids[begin:end]])).logits[0].double().log_softmax(-1)
        total -= sum(log_probs[i - begin - 1, ids[i]].item() for i in range(first, end))
        assert end - begin <= CONTEXT and (begin == 0 or first - begin == CONTEXT - 8)
    assert sliding["nll"] == pytest.approx(total / (len(ids) - 1), rel=1e-5)
    disjoint = corpus_perplexity(model, tokenizer, [long_text(40)], stride=CONTEXT)
    assert sliding["perplexity"] != pytest.approx(disjoint["perplexity"], rel=1e-4)


def test_sliding_windows_cover_each_token_once():
    for n in range(0, 50):
        for stride in range(1, 7):
            predicted = [i for _, end, first in sliding_windows(n, 6, stride) for i in range(first, end)]
            expected = list(range(1, n)) if stride < 6 else [i for i in range(1, n) if i % 6]
            assert predicted == expected, (n, stride)
    with pytest.raises(ValueError, match="stride"):
        sliding_windows(10, 6, 7)


def test_bits_per_byte_is_the_total_nll_in_bits_over_the_utf8_bytes(model, tokenizer):
    result = corpus_perplexity(model, tokenizer, SENTENCES)
    n_bytes = sum(len(s.encode("utf-8")) for s in SENTENCES)
    assert n_bytes > sum(len(s) for s in SENTENCES)  # ñ and í take two bytes
    assert result["bytes"] == n_bytes
    assert result["bits_per_byte"] == pytest.approx(result["nll"] * result["tokens"] / math.log(2) / n_bytes)


def test_perplexity_leaves_the_model_mode_and_refuses_bad_input(model, tokenizer):
    model.train()
    try:
        corpus_perplexity(model, tokenizer, SENTENCES[:1])
        assert model.training
    finally:
        model.eval()
    with pytest.raises(ValueError, match="at most the model's context"):
        corpus_perplexity(model, tokenizer, SENTENCES, max_length=CONTEXT + 1)
    with pytest.raises(ValueError, match="at least two tokens"):
        corpus_perplexity(model, tokenizer, ["gato"])


# ---------------------------------------------------------------- metric modules, offline
REFERENCES = [0, 1, 1, 0, 1, 2, 2, 0, 1, 2]
PREDICTIONS = [0, 1, 0, 0, 2, 2, 1, 1, 1, 2]
BINARY_REFERENCES, BINARY_PREDICTIONS = [0, 1, 1, 0, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1, 1, 0]
SKLEARN = {"f1": f1_score, "precision": precision_score, "recall": recall_score}


@pytest.fixture
def offline_elsewhere(monkeypatch, tmp_path):
    """Offline, from a working directory that holds no metric folder."""
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("name", ["f1", "precision", "recall"])
def test_each_module_equals_scikit_learn(name, offline_elsewhere):
    metric = load_metric(name)
    binary = metric.compute(predictions=BINARY_PREDICTIONS, references=BINARY_REFERENCES)[name]
    assert binary == pytest.approx(SKLEARN[name](BINARY_REFERENCES, BINARY_PREDICTIONS))
    macro = metric.compute(predictions=PREDICTIONS, references=REFERENCES, average="macro")[name]
    assert macro == pytest.approx(SKLEARN[name](REFERENCES, PREDICTIONS, average="macro"))
    zero = metric.compute(predictions=BINARY_PREDICTIONS, references=BINARY_REFERENCES, pos_label=0)[name]
    assert zero == pytest.approx(SKLEARN[name](BINARY_REFERENCES, BINARY_PREDICTIONS, pos_label=0))


def test_accuracy_and_combine_over_the_local_modules(offline_elsewhere):
    import evaluate

    accuracy = load_metric("accuracy").compute(predictions=PREDICTIONS, references=REFERENCES)["accuracy"]
    assert accuracy == pytest.approx(accuracy_score(REFERENCES, PREDICTIONS))
    combined = evaluate.combine([load_metric(name) for name in ["accuracy", "f1", "precision", "recall"]])
    scores = combined.compute(predictions=PREDICTIONS, references=REFERENCES, average="weighted")
    assert scores == pytest.approx({"accuracy": accuracy_score(REFERENCES, PREDICTIONS),
                                    **{name: score(REFERENCES, PREDICTIONS, average="weighted")
                                       for name, score in SKLEARN.items()}})


def test_an_unknown_metric_names_the_available_ones():
    with pytest.raises(ValueError, match="'bleu'.*Available: accuracy, f1, precision, recall"):
        load_metric("bleu")


def test_modules_are_standalone_package_data():
    assert sorted(p.name for p in metric_modules_dir().iterdir() if p.is_dir() and p.name[0] != "_") == [
        "accuracy", "f1", "precision", "recall"]
    for path in metric_modules_dir().glob("*/*.py"):  # evaluate copies each script alone: no course import
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if not name or name.startswith("nlp_course")], path
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'nlp_course = ["metric_modules/*/*.py"]' in pyproject


def test_loading_twice_reuses_one_copy_in_the_modules_cache(offline_elsewhere):
    """evaluate copies the script into HF_MODULES_CACHE, in a folder named by the hash of its code."""
    import evaluate

    first, second = (Path(inspect.getfile(type(load_metric("f1")))) for _ in range(2))
    assert first == second and first.is_relative_to(evaluate.config.HF_MODULES_CACHE)
    assert first.parent.parent == Path(evaluate.config.HF_MODULES_CACHE) / "evaluate_modules" / "metrics" / "f1"
    assert first.read_text(encoding="utf-8") == (metric_modules_dir() / "f1" / "f1.py").read_text(encoding="utf-8")
