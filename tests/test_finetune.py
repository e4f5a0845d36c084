import json
import math
import os

import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, RobertaConfig, RobertaForMaskedLM

from nlp_course.errors import FinetuneError
from nlp_course.evaluation import compute_scores
from nlp_course.finetune import main
from nlp_course.tokenization import course_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small, untrained RoBERTa saved with the course tokenizer: fast to fine-tune in a test."""
    folder = tmp_path_factory.mktemp("tiny")
    os.environ["NLP_COURSE_OUTPUTS"] = str(folder / "outputs")
    try:
        tokenizer = course_tokenizer("es", "toy", verbose=False)
    finally:
        del os.environ["NLP_COURSE_OUTPUTS"]
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                           pad_token_id=tokenizer.pad_token_id)
    RobertaForMaskedLM(config).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def reviews():
    frames = {split: pd.read_csv(os.path.join(ROOT, "data", "reviews_en", f"{split}.csv")) for split in ("train", "validation", "test")}
    return {split: frame.head(40 if split == "train" else 12) for split, frame in frames.items()}


def write(frames, folder, fmt):
    paths = {}
    for split, frame in frames.items():
        path = folder / f"{split}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "jsonl":
            frame.to_json(path, orient="records", lines=True)
        elif fmt == "json":
            path.write_text(json.dumps(frame.to_dict(orient="records")))
        else:
            frame.to_parquet(path)
        paths[split] = str(path)
    return paths


def run(*args):
    return main([*args, "--profile", "toy", "--epochs", "1", "--batch-size", "8", "--max-length", "64"])


def predict_saved(folder, texts, max_length):
    """Label ids and logits of the classifier saved in ``folder``, reloaded from disk with its own tokenizer.

    In batches of 8 padded to a multiple of 8, as the runs here score, so that a near tie of an untrained
    model's two logits cannot come out the other way by rounding.
    """
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True).eval()
    texts = list(texts)
    with torch.no_grad():
        logits = torch.cat([model(**tokenizer(texts[i:i + 8], truncation=True, max_length=max_length, padding=True,
                                              pad_to_multiple_of=8, return_tensors="pt")).logits
                            for i in range(0, len(texts), 8)])
    return logits.argmax(-1).tolist(), logits, model.config


@pytest.fixture(scope="module")
def format_run(tmp_path_factory, tiny_model, reviews):
    """Runs on the reviews written in one file format, each run once per module: fmt -> its output folder."""
    done = {}

    def run_format(fmt):
        if fmt not in done:
            folder = tmp_path_factory.mktemp(fmt)
            paths = write(reviews, folder, fmt)
            run("--train-file", paths["train"], "--validation-file", paths["validation"], "--test-file", paths["test"],
                "--model", str(tiny_model), "--output-dir", str(folder / "out"))
            done[fmt] = folder / "out"
        return done[fmt]

    return run_format


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_every_file_format(format_run, reviews, fmt):
    out = format_run(fmt)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["negative", "positive"]  # string labels became a ClassLabel
    assert metrics["split"] == "test" and metrics["examples"] == 12
    assert metrics["f1_average"] == "binary" and metrics["f1_positive_label"] == "positive"
    majority = reviews["train"]["label"].value_counts().idxmax()
    assert metrics["majority_class"] == majority
    assert metrics["majority_accuracy"] == pytest.approx((reviews["test"]["label"] == majority).mean())
    saved = out / "model"
    assert (saved / "model.safetensors").is_file() and not list(saved.glob("*.bin")), "no pickled files at all"
    # the scores are those of the saved model's predictions on the test file, counted by hand
    predicted, _, config = predict_saved(saved, reviews["test"]["text"], 64)
    assert config.id2label == {0: "negative", 1: "positive"}
    truth = [config.label2id[label] for label in reviews["test"]["label"]]
    pairs = list(zip(predicted, truth, strict=True))
    right, tp = sum(p == t for p, t in pairs), sum(p == t == 1 for p, t in pairs)
    fp, fn = sum(p == 1 != t for p, t in pairs), sum(t == 1 != p for p, t in pairs)
    assert metrics["accuracy"] == pytest.approx(right / 12)
    assert metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    # the same rows in another format train the same model, seeded: the same scores, to the last digit
    reference = json.loads((format_run("csv") / "metrics.json").read_text())
    for key in ("accuracy", "f1", "baseline_accuracy", "baseline_f1", "majority_accuracy", "eval_loss", "final_train_loss"):
        assert metrics[key] == pytest.approx(reference[key], rel=1e-6), f"{fmt} {key} differs from csv's"


def test_frozen_base_trains_only_the_head(tmp_path, tiny_model, reviews):
    from safetensors.torch import load_file

    paths = write(reviews, tmp_path, "csv")
    run("--train-file", paths["train"], "--model", str(tiny_model), "--freeze-base", "--output-dir", str(tmp_path / "out"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    before, after = load_file(tiny_model / "model.safetensors"), load_file(tmp_path / "out" / "model" / "model.safetensors")
    shared = [k for k in after if k.startswith("roberta.") and k in before]
    assert shared and all((before[k] == after[k]).all() for k in shared), "the encoder did not move"
    hidden, labels = 32, 2  # RoBERTa's head: dense (hidden x hidden + hidden), out_proj (hidden x labels + labels)
    assert metrics["num_trainable_parameters"] == hidden * hidden + hidden + hidden * labels + labels
    assert metrics["num_parameters"] > 10 * metrics["num_trainable_parameters"]
    assert metrics["split"] == "validation"  # no test file: scored on the held-out tenth of train


def test_default_model_is_the_course_encoder_pretrained_on_demand(tmp_path, reviews, monkeypatch):
    monkeypatch.setenv("NLP_COURSE_OUTPUTS", str(tmp_path / "outputs"))
    paths = write(reviews, tmp_path, "csv")
    run("--train-file", paths["train"], "--test-file", paths["test"], "--output-dir", str(tmp_path / "out"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    encoder = tmp_path / "outputs" / "roberta" / "toy" / "course" / "final"
    assert metrics["model"] == str(encoder) and (encoder / "model.safetensors").is_file()


def test_scores_against_a_hand_count():
    # labels 1 1 0 0 1, predictions 1 0 0 1 1: 3 right of 5; positives: tp 2, fp 1, fn 1 -> f1 2/3
    assert compute_scores([1, 1, 0, 0, 1], [1, 0, 0, 1, 1], 2) == {"accuracy": 0.6, "f1": pytest.approx(2 / 3), "f1_average": "binary"}
    # three classes: class 0 f1 1, class 1 f1 0 (never predicted), class 2 f1 2/3 (tp 1, fp 1) -> macro 5/9
    macro = compute_scores([0, 1, 2], [0, 2, 2], 3)
    assert macro["f1_average"] == "macro" and macro["f1"] == pytest.approx(5 / 9) and macro["accuracy"] == pytest.approx(2 / 3)


def test_three_integer_classes_and_an_unbalanced_train_file(tmp_path, tiny_model):
    rows = {"text": [f"texto número {i}" for i in range(21)], "stars": [1] * 10 + [3] * 10 + [5]}  # one row of 5
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    run("--train-file", str(tmp_path / "train.csv"), "--label-column", "stars", "--model", str(tiny_model),
        "--output-dir", str(tmp_path / "out"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["labels"] == ["1", "3", "5"] and metrics["f1_average"] == "macro"
    assert metrics["split"] == "validation" and metrics["examples"] == 3  # max(classes, 10 %) held out


def error_of(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--profile", "toy"])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_bad_input_is_reported_before_training(capsys, tmp_path, tiny_model, reviews, offline):
    paths = write(reviews, tmp_path, "csv")
    out = ["--output-dir", str(tmp_path / "out")]
    assert "no column 'sentiment'" in error_of(capsys, "--train-file", paths["train"], "--label-column", "sentiment", *out)
    reviews["train"].assign(label="positive").to_csv(tmp_path / "one.csv", index=False)
    assert "single class" in error_of(capsys, "--train-file", str(tmp_path / "one.csv"), *out)
    (tmp_path / "empty.csv").write_text("")
    assert "Empty file" in error_of(capsys, "--train-file", str(tmp_path / "empty.csv"), *out)
    assert "no such folder" in error_of(capsys, "--train-file", paths["train"], "--model", "./no/model", *out)
    assert "cannot be reached" in error_of(capsys, "--train-file", paths["train"], "--model", "someone/bert", *out)
    assert "either --train-file" in error_of(capsys, *out)
    assert "No such file" in error_of(capsys, "--train-file", str(tmp_path / "missing.csv"), *out)
    reviews["test"].assign(label=["mixed"] + ["positive"] * 11).to_csv(tmp_path / "odd_test.csv", index=False)
    err = error_of(capsys, "--train-file", paths["train"], "--test-file", str(tmp_path / "odd_test.csv"), *out)
    assert "never occur in training" in err and "mixed" in err
    assert "go with --train-file" in error_of(capsys, "--dataset", "reviews_en", "--test-file", paths["test"], *out)
    assert not (tmp_path / "out").exists(), "nothing written"


def test_unusable_model_folders(capsys, tmp_path, tiny_model, reviews):
    import shutil

    paths = write(reviews, tmp_path, "csv")
    out = ["--train-file", paths["train"], "--output-dir", str(tmp_path / "out")]
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(tiny_model, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    assert "tokenizer.json" in error_of(capsys, "--model", str(no_tokenizer), *out)
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    assert "pickled" in error_of(capsys, "--model", str(pickled), *out)
    assert "more than this model takes (128" in error_of(capsys, "--model", str(tiny_model), *out, "--max-length", "200")
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_unlabelled_hub_test_split_is_refused(capsys, tmp_path, monkeypatch):
    import datasets

    import nlp_course.finetune

    label = datasets.ClassLabel(names=["neg", "pos"])
    fake = datasets.DatasetDict({split: datasets.Dataset.from_dict({"text": ["a", "b"], "label": labels},
                                                                    features=datasets.Features({"text": datasets.Value("string"), "label": label}))
                                 for split, labels in (("train", [0, 1]), ("validation", [0, 1]), ("test", [-1, -1]))})
    monkeypatch.setattr(nlp_course.finetune, "load_labelled", lambda *a, **k: fake)
    assert "unlabelled rows" in error_of(capsys, "--dataset", "glue/sst2", "--output-dir", str(tmp_path / "out"))


def test_unknown_profile_and_bad_numbers(capsys, tmp_path, reviews):
    import re

    from nlp_course.finetune import build_parser, run_finetune

    paths = write(reviews, tmp_path, "csv")
    given = ["--train-file", paths["train"], "--output-dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        main([*given, "--profile", "huge"])
    assert exit_info.value.code == 2
    assert "Unknown profile 'huge' (from the argument). Valid profiles: 'toy', 'colab', 'full'" in capsys.readouterr().err
    for option, value in (("--epochs", "0"), ("--batch-size", "0"), ("--max-length", "-3")):
        assert f"{option} must be a positive integer, got {value}." in error_of(capsys, *given, option, value)
    for value in ("0", "1.5"):
        assert f"--learning-rate must be between 0 and 1, got {float(value)}." in error_of(capsys, *given, "--learning-rate", value)
    both = build_parser().parse_args(["--output-dir", str(tmp_path / "o"), "--dataset", "x", "--train-file", paths["train"]])
    with pytest.raises(FinetuneError, match=re.escape("Give either --train-file (with optional --validation-file and "
                                                      "--test-file) or --dataset.")):
        run_finetune(both)
    assert not (tmp_path / "o").exists(), "nothing written"


def separable(n: int = 60) -> pd.DataFrame:
    """Reviews whose label is one word: any classifier that learns at all gets them right."""
    rows = [(f"la película {i} fue {'excelente' if i % 2 else 'horrible'} según el público", "positive" if i % 2
             else "negative") for i in range(n)]
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.fixture(scope="module")
def learned(tmp_path_factory, tiny_model):
    """One run that learns, shared: separable training rows, and a test file of other sentences, 14 negative and
    6 positive, two of them labelled against their word (a model that learned the word gets 18 of 20 right)."""
    from nlp_course.finetune import build_parser, run_finetune

    folder = tmp_path_factory.mktemp("learned")
    test = separable(28).assign(text=lambda f: f.text.str.replace("según el público", "dijo la crítica"))
    test = test.drop(test.index[test.label == "positive"][6:]).reset_index(drop=True)
    test.loc[[0, 1], "label"] = ["positive", "negative"]  # "horrible" labelled positive, "excelente" negative
    frames = {"train": separable(61), "test": test}  # train: 31 negative, 30 positive
    paths = write(frames, folder, "csv")
    returned = run_finetune(build_parser().parse_args([
        "--train-file", paths["train"], "--test-file", paths["test"], "--model", str(tiny_model), "--output-dir",
        str(folder / "out"), "--profile", "toy", "--epochs", "8", "--batch-size", "8", "--max-length", "32",
        "--learning-rate", "2e-3"]))  # this test's 32-wide model learns its 61 rows fast at this rate
    return frames, folder / "out", returned


def test_the_baseline_is_scikit_learns_tfidf_and_a_run_that_learns_has_no_warning(learned):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    frames, out, _ = learned
    metrics = json.loads((out / "metrics.json").read_text())
    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=1000))
    labels = {"negative": 0, "positive": 1}
    pipeline.fit(frames["train"].text, frames["train"].label.map(labels))
    predicted = pipeline.predict(frames["test"].text)
    truth = frames["test"].label.map(labels)
    assert metrics["baseline_accuracy"] == accuracy_score(truth, predicted)
    assert metrics["baseline_f1"] == f1_score(truth, predicted)
    assert metrics["accuracy"] > metrics["majority_accuracy"] == pytest.approx(0.7)
    assert metrics["warnings"] == [] and metrics["final_train_loss"] < 0.95 * math.log(2)


def test_reported_scores_are_those_of_the_saved_model(learned):
    from sklearn.metrics import accuracy_score, f1_score

    frames, out, returned = learned
    written = json.loads((out / "metrics.json").read_text())
    assert returned == written, "run_finetune returns what it writes"
    assert written["split"] == "test" and written["examples"] == 20
    assert written["majority_class"] == "negative" and written["majority_accuracy"] == pytest.approx(0.7)
    # the word decides 18 of the 20 labels: a model that learned it beats the majority class's 14 by 2 rows or more
    assert written["accuracy"] >= 0.8
    # the scores, recomputed with scikit-learn from the model and tokenizer reloaded from disk
    predicted, logits, config = predict_saved(out / "model", frames["test"]["text"], 32)
    truth = [config.label2id[label] for label in frames["test"]["label"]]
    assert written["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert written["f1"] == pytest.approx(f1_score(truth, predicted, pos_label=config.label2id["positive"]))
    assert written["eval_loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.tensor(truth)).item(),
                                                 rel=1e-4)  # the loss of the test file, by the saved weights


def test_a_run_that_learns_nothing_says_so(tmp_path, tiny_model, capsys):
    paths = write({"train": separable(40), "test": separable(10)}, tmp_path, "csv")
    main(["--train-file", paths["train"], "--test-file", paths["test"], "--model", str(tiny_model), "--output-dir",
          str(tmp_path / "out"), "--profile", "toy", "--epochs", "2", "--batch-size", "8", "--max-length", "32",
          "--learning-rate", "0.9"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["warnings"], "an absurd learning rate must not pass in silence"
    assert all("--learning-rate" in w and "learned nothing" in w for w in metrics["warnings"])
    assert "WARNING: " in capsys.readouterr().err


def test_tokenizer_fit_fires_for_english_on_the_spanish_tokenizer():
    from nlp_course.tokenization import tokenizer_fit

    spanish_tokenizer = course_tokenizer("es", "toy", verbose=False)
    english = pd.read_csv(os.path.join(ROOT, "data", "reviews_en", "train.csv")).text.tolist()
    spanish = pd.read_csv(os.path.join(ROOT, "data", "reviews_es", "train.csv")).text.tolist()
    report, warning = tokenizer_fit(spanish_tokenizer, english)
    assert warning is not None and "does not fit" in warning and "--tokenizer train" in warning
    assert report["fertility"] > 2.5
    report, warning = tokenizer_fit(spanish_tokenizer, spanish)
    assert warning is None and report["fertility"] < 2.5


def test_tokenizer_train_builds_an_encoder_that_fits_the_texts(tmp_path, reviews, capsys):
    paths = write(reviews, tmp_path, "csv")
    main(["--train-file", paths["train"], "--test-file", paths["test"], "--tokenizer", "train", "--output-dir",
          str(tmp_path / "out"), "--profile", "toy", "--epochs", "1", "--batch-size", "8", "--max-length", "64"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    encoder = tmp_path / "out" / "encoder" / "run" / "final"
    assert metrics["model"] == str(encoder) and (encoder / "model.safetensors").is_file()
    assert metrics["tokenizer_fertility"] < 2.5, "a tokenizer trained on English fits English"
    assert not any("does not fit" in w for w in metrics["warnings"])
    with pytest.raises(SystemExit):
        main(["--train-file", paths["train"], "--tokenizer", "train", "--model", str(tmp_path), "--output-dir",
              str(tmp_path / "other")])
    assert "leave --model out" in capsys.readouterr().err


def test_the_best_epoch_is_kept_when_validation_is_large_enough(tmp_path, tiny_model, capsys):
    frames = {"train": separable(60), "validation": separable(200), "test": separable(20)}
    paths = write(frames, tmp_path, "csv")
    main(["--train-file", paths["train"], "--validation-file", paths["validation"], "--test-file", paths["test"],
          "--model", str(tiny_model), "--output-dir", str(tmp_path / "out"), "--profile", "toy", "--epochs", "3",
          "--batch-size", "8", "--max-length", "32"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    accuracies = [e["validation_accuracy"] for e in metrics["epoch_history"]]
    assert [e["epoch"] for e in metrics["epoch_history"]] == [1, 2, 3]
    assert metrics["kept_epoch"] == 1 + accuracies.index(max(accuracies))
    assert f"Kept the model of epoch {metrics['kept_epoch']} of 3" in capsys.readouterr().out
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_auto_trains_a_tokenizer_only_for_many_texts_it_does_not_fit(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from nlp_course.finetune import tokenizer_choice
    from nlp_course.profiles import PROFILES

    monkeypatch.setenv("NLP_COURSE_OUTPUTS", str(tmp_path / "outputs"))
    english = pd.read_csv(os.path.join(ROOT, "data", "reviews_en", "train.csv")).text.tolist()
    spanish = pd.read_csv(os.path.join(ROOT, "data", "reviews_es", "train.csv")).text.tolist()
    toy, colab = PROFILES["toy"], PROFILES["colab"]
    auto = SimpleNamespace(tokenizer="auto", model=None)
    assert tokenizer_choice(auto, toy, english * 4) == "train"  # 1,200 texts the Spanish tokenizer cuts up
    assert tokenizer_choice(auto, toy, spanish * 4) == "model"  # it fits Spanish
    assert tokenizer_choice(auto, toy, english) == "model"  # 300 texts: too few to pretrain on
    assert tokenizer_choice(SimpleNamespace(tokenizer="auto", model="some/model"), toy, english * 4) == "model"
    assert tokenizer_choice(auto, colab, english * 4) == "model"
    assert tokenizer_choice(SimpleNamespace(tokenizer="train", model=None), toy, spanish) == "train"
