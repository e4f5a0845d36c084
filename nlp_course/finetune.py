"""Text classification from the command line, in the spirit of ``run_glue.py``.

    python -m nlp_course.finetune --train-file data/reviews_es/train.csv --validation-file data/reviews_es/validation.csv \\
        --test-file data/reviews_es/test.csv --output-dir runs/sentiment-es
    python -m nlp_course.finetune --dataset cornell-movie-review-data/rotten_tomatoes --model FacebookAI/roberta-base \\
        --output-dir runs/rotten --profile colab
    python -m nlp_course.finetune --train-file reviews.jsonl --label-column stars --freeze-base --output-dir runs/head

Files may be csv, json/jsonl or parquet; string labels become a ``ClassLabel``. Without
``--validation-file`` a tenth of the training rows is held out (stratified); without ``--test-file``
the scores are those of the validation split. ``--model`` is a folder saved with ``save_pretrained``
or a Hub id; by default, the course's own small pretrained encoder for the profile (pretrained now,
with ``python -m nlp_course.pretrain mlm``'s code, if no earlier run saved one). ``--freeze-base``
trains only the classification head (transfer learning, as the slides call it).

Writes the model (safetensors) and tokenizer to ``<output-dir>/model`` and ``metrics.json`` with
``accuracy``, ``f1`` (binary for two labels, else macro), ``num_trainable_parameters``,
``num_parameters`` and the majority-class accuracy of the same split. Bad input is reported before
any training starts.

Taught in: 07_fine_tuning_classification (its `TrainingArguments`, collator and `compute_scores`).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)

from nlp_course.data import load_labelled, load_labelled_files, looks_like_path
from nlp_course.errors import (
    DataSourceError,
    FinetuneError,
    HubUnavailableError,
    PretrainError,
    UnknownProfileError,
    output_dir_option,
    run_command,
)
from nlp_course.evaluation import compute_scores, learning_warnings, tfidf_baseline
from nlp_course.files import (
    atomic_folder,
    check_writable,
    interrupts_deferred,
    lock_folder,
    outputs_dir,
    write_atomically,
)
from nlp_course.mlm import run_mlm
from nlp_course.profiles import Profile, get_profile
from nlp_course.runs import course_model, make_run_config
from nlp_course.runtime import DeviceInfo, can_load, detect_device
from nlp_course.tokenization import course_tokenizer, save_tokenizer, tokenizer_fit, train_tokenizer


def course_encoder(profile: Profile, verbose: bool = True) -> Path:
    """The course's pretrained Spanish encoder for a profile: notebook 04's, the CLI's, or trained now."""
    return course_model(outputs_dir() / "roberta" / profile.name,
                        lambda out: run_mlm(make_run_config("mlm", out, profile)), "encoder", "notebook 04's recipe",
                        verbose)


def load_splits(args):
    """The labelled splits, from files or the Hub, with train / validation / test."""
    if bool(args.dataset) == bool(args.train_file):
        raise FinetuneError("Give either --train-file (with optional --validation-file and --test-file) or --dataset.")
    if args.dataset and (args.validation_file or args.test_file):
        raise FinetuneError("--validation-file and --test-file go with --train-file; with --dataset the splits come from the Hub.")
    try:
        if args.dataset:
            dd = load_labelled(args.dataset, config=args.dataset_config, text_column=args.text_column,
                               label_column=args.label_column)
        else:
            files = {"train": args.train_file}
            if args.validation_file:
                files["validation"] = args.validation_file
            if args.test_file:
                files["test"] = args.test_file
            dd = load_labelled_files(files, text_column=args.text_column, label_column=args.label_column)
    except (DataSourceError, HubUnavailableError, FileNotFoundError) as err:
        raise FinetuneError(str(err)) from err
    if "train" not in dd:
        raise FinetuneError(f"The dataset has no 'train' split (it has {list(dd)}).")
    names = dd["train"].features["label"].names
    seen = set(dd["train"]["label"])
    for split, ds in dd.items():  # every label to score must be one the model can learn
        unknown = set(ds["label"]) - seen
        if -1 in unknown:
            raise FinetuneError(f"The {split!r} split has unlabelled rows (label -1), as Hub test splits often do; "
                                "give a labelled --test-file, or score on the validation split.")
        if unknown:
            raise FinetuneError(f"The {split!r} split has labels that never occur in training: "
                                f"{sorted(names[i] for i in unknown)}. Fix the labels, or add examples of them to training.")
    if len(seen) < 2:
        raise FinetuneError(f"The training data holds a single class ({names[next(iter(seen))]!r}); a classifier needs two or more.")
    if len(seen) < len(names):  # classes only validation/test would have had are excluded above: renumber
        raise FinetuneError(f"The label set {names} has classes no training row has: {sorted(set(names) - {names[i] for i in seen})}.")
    if "validation" not in dd:
        n_rows, n_classes = dd["train"].num_rows, len(names)
        n_held = max(n_classes, round(0.1 * n_rows))
        if n_rows - n_held < n_classes:
            raise FinetuneError(f"Too few training rows ({n_rows}) to hold out a validation split; give --validation-file.")
        smallest = min(Counter(dd["train"]["label"]).values())
        stratify = "label" if smallest >= 2 else None  # a class with one row cannot be on both sides
        held = dd["train"].train_test_split(test_size=n_held, seed=args.seed, stratify_by_column=stratify)
        dd["train"], dd["validation"] = held["train"], held["test"]
    return dd


def check_options(args) -> Profile:
    """The numbers, the output folder and the profile, checked before anything is loaded."""
    if args.tokenizer == "train" and args.model:
        raise FinetuneError("--tokenizer train builds its own encoder for the new tokenizer: leave --model out "
                            "(a pretrained model only works with the tokenizer it was trained with).")
    for name in ("epochs", "batch_size", "max_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise FinetuneError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
    if args.learning_rate is not None and not 0 < args.learning_rate < 1:
        raise FinetuneError(f"--learning-rate must be between 0 and 1, got {args.learning_rate}.")
    check_writable(args.output_dir)
    try:
        return get_profile(args.profile)
    except UnknownProfileError as err:
        raise FinetuneError(str(err)) from err


def check_model_option(model: str | None) -> None:
    """A local ``--model`` must be a whole safetensors folder; a Hub id needs the Hub."""
    if not model:
        return
    model_path = Path(model).expanduser()
    looks_local = model_path.exists() or looks_like_path(model)
    if looks_local and not model_path.is_dir():
        raise FinetuneError(f"--model {model!r}: no such folder. Give a folder saved with save_pretrained, "
                            "a Hub id, or leave --model out to use the course's own encoder.")
    if looks_local:
        missing = [f for f in ("config.json", "tokenizer.json") if not (model_path / f).is_file()]
        if not any(model_path.glob("model*.safetensors*")):
            missing.append("model.safetensors (pickled pytorch_model.bin weights are not loaded)")
        if missing:
            raise FinetuneError(f"--model {model!r} is not a model folder saved with save_pretrained "
                                f"(missing {', '.join(missing)}).")
    elif not can_load(model):
        raise FinetuneError(f"--model {model!r} is a Hub id, but the Hub cannot be reached and it is not in the cache; "
                            "give a local folder, or leave --model out to use the course's own encoder.")


def encoder_for_texts(texts: list[str], profile: Profile, folder: Path) -> Path:
    """An encoder for these texts: a tokenizer trained on them, and notebook 04's recipe pretrained on them.

    Saved in ``folder`` (``tokenizer/``, ``corpus.txt``, the pretraining run in ``run/``) and reused
    when a whole one, trained on the same texts in the same profile, is already there.
    """
    final = folder / "run" / "final"
    corpus = "\n\n".join(" ".join(t.split()) for t in texts if t.split()) + "\n"  # one text a document
    if ((final / "model.safetensors").is_file() and (final / "tokenizer.json").is_file()
            and (folder / "corpus.txt").is_file() and (folder / "corpus.txt").read_text(encoding="utf-8") == corpus
            and json.loads((folder / "run" / "run_config.json").read_text(encoding="utf-8"))["profile"] == profile.name):
        print(f"Using the encoder already trained on these texts in {final}")
        return final
    print(f"Training a tokenizer on the {len(texts):,} training texts, then pretraining an encoder on them "
          f"({profile.name} profile)...")
    save_tokenizer(train_tokenizer(texts, "bpe", profile.vocab_size, family="roberta"), folder / "tokenizer")
    write_atomically(folder / "corpus.txt", corpus)  # the format of load_corpus: a blank line ends a document
    shutil.rmtree(folder / "run", ignore_errors=True)  # an earlier attempt that did not finish
    try:
        run_mlm(make_run_config("mlm", folder / "run", profile, corpus=str(folder / "corpus.txt"),
                                tokenizer=str(folder / "tokenizer")))
    except PretrainError as err:
        raise FinetuneError(f"The encoder could not be pretrained on the training texts: {err}") from err
    return final


AUTO_TRAIN_MIN_ROWS = 1_000


def tokenizer_choice(args, profile: Profile, texts: list[str]) -> str:
    """``"train"`` or ``"model"``. ``auto`` trains a tokenizer (and an encoder with it) in the toy profile,
    with no ``--model``, when the course's Spanish tokenizer clearly does not fit the training texts and
    there are at least 1,000 of them to pretrain on.

    Measured on English text (toy profile, learning rate 1e-3, 10 epochs): on 5,337 standard-library
    docstrings, 7 classes, test accuracy went from 0.37 with the course encoder to 0.52 with a tokenizer
    and encoder trained on the docstrings (TF-IDF baseline 0.48); on 300 English reviews it did not help
    (0.67 to 0.58, within the noise of 60 test reviews).
    """
    if args.tokenizer != "auto":
        return args.tokenizer
    if args.model or profile.name != "toy" or len(texts) < AUTO_TRAIN_MIN_ROWS:
        return "model"
    _, warning = tokenizer_fit(course_tokenizer("es", profile, verbose=False), texts)
    if warning is None:
        return "model"
    print(f"The course's Spanish tokenizer does not fit these {len(texts):,} training texts: training a tokenizer "
          "and an encoder on them first (--tokenizer model to skip this).")
    return "train"


def model_source(args, profile: Profile, texts: list[str], choice: str) -> str:
    """What to load: the ``--model`` folder or Hub id, an encoder trained on ``texts`` (``choice`` "train"),
    or the course encoder (pretrained now if needed)."""
    if choice == "train":
        return str(encoder_for_texts(texts, profile, args.output_dir / "encoder"))
    if args.model:
        local = Path(args.model).expanduser()
        return str(local) if local.exists() else args.model
    if profile.name != "toy":
        print(f"No --model given: pretraining the course encoder at the {profile.name!r} scale first (long). "
              "Pass --model to fine-tune an existing one.")
    try:
        return str(course_encoder(profile))
    except PretrainError as err:
        raise FinetuneError(f"The course encoder could not be pretrained: {err}. Pass --model instead.") from err


def load_model(source: str, names: list[str], args):
    """Tokenizer and classifier (safetensors only), the head sized for ``names``; and the length limit."""
    set_seed(args.seed)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)}, use_safetensors=True,
        )
    except Exception as err:  # a truncated or bogus file raises whatever its reader raises
        raise FinetuneError(f"--model {source!r} could not be loaded ({type(err).__name__}: {str(err)[:300]}). "
                            "Give a folder saved with save_pretrained (or a Hub id), whole.") from err
    if len(tokenizer) > model.config.vocab_size:
        raise FinetuneError(f"The tokenizer ({len(tokenizer)} tokens) does not fit the model ({model.config.vocab_size}).")
    positions = getattr(model.config, "max_position_embeddings", None)
    model_limit = min(x for x in (tokenizer.model_max_length, positions and positions - 2, 512) if x)  # RoBERTa: 2 reserved
    if args.max_length and args.max_length > model_limit:
        raise FinetuneError(f"--max-length {args.max_length} is more than this model takes ({model_limit} tokens).")
    if args.freeze_base:  # transfer learning: the pretrained encoder stays as it is, only the head learns
        for parameter in model.base_model.parameters():
            parameter.requires_grad = False
    return tokenizer, model, model_limit


BEST_EPOCH_MIN_ROWS = 200  # below this, choosing an epoch on the validation split is choosing noise


def training_arguments(args, profile: Profile, device: DeviceInfo, epochs: int, keep_best: bool) -> TrainingArguments:
    """Notebook 07's arguments; with ``keep_best``, the epoch with the best validation accuracy is kept."""
    batch_size = args.batch_size if args.batch_size is not None else profile.batch_size
    # the toy encoder: 1e-3, the best of 2e-3, 1e-3, 3e-4 and 1e-4 on four labelled sets of 300 to 5,337
    # training rows in Spanish and English (2e-3 learned nothing on the two larger ones); a BERT-sized
    # pretrained one: the usual 2e-5; a head alone: 1e-3
    default_rate = 1e-3 if args.freeze_base or profile.name == "toy" else 2e-5
    return TrainingArguments(
        output_dir=str(args.output_dir / "checkpoints"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=args.learning_rate if args.learning_rate is not None else default_rate,
        weight_decay=0.01,
        warmup_steps=0.1,
        eval_strategy="epoch",
        # checkpoints only to go back to the best epoch (safetensors weights); the final model is saved below
        save_strategy="epoch" if keep_best else "no",
        save_total_limit=1 if keep_best else None,
        load_best_model_at_end=keep_best,
        metric_for_best_model="accuracy",
        logging_steps=10,
        report_to=[],
        fp16=device.precision == "fp16",
        bf16=device.precision == "bf16",
        use_cpu=device.device == "cpu",
        disable_tqdm=False,  # a progress bar even when logging is quieted (it would turn the bar off)
        seed=args.seed,
    )


def save_results(output_dir: Path, model, tokenizer, metrics: dict) -> None:
    """The model folder and ``metrics.json``, each written whole (the model first, the metrics last)."""
    with interrupts_deferred():  # a Ctrl-C here waits: a new model/ always comes with its metrics.json
        (output_dir / "metrics.json").unlink(missing_ok=True)  # an old one never describes a new model
        with atomic_folder(output_dir / "model") as tmp:
            model.save_pretrained(tmp)  # safetensors weights and config, no pickled training arguments
            tokenizer.save_pretrained(tmp)
        write_atomically(output_dir / "metrics.json", json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    print(f"{metrics['split']} accuracy: model {metrics['accuracy']:.3f}, TF-IDF baseline {metrics['baseline_accuracy']:.3f}, "
          f"majority class {metrics['majority_accuracy']:.3f}  |  F1: model {metrics['f1']:.3f}, "
          f"baseline {metrics['baseline_f1']:.3f}")


def run_finetune(args) -> dict:
    profile = check_options(args)
    check_model_option(args.model)
    splits = load_splits(args)  # data problems are reported before any model is loaded or trained
    names = splits["train"].features["label"].names
    choice = tokenizer_choice(args, profile, splits["train"]["text"])
    if choice == "train":
        lock_folder(args.output_dir)  # before the encoder is trained into it
    source = model_source(args, profile, splits["train"]["text"], choice)
    tokenizer, model, model_limit = load_model(source, names, args)
    lock_folder(args.output_dir)  # a second run into the same folder stops here, having written nothing
    fit, fit_warning = tokenizer_fit(tokenizer, splits["train"]["text"])
    print(f"Tokenizer on {min(200, splits['train'].num_rows)} training texts: {fit['fertility']:.2f} tokens per word, "
          f"{fit['continued_words']:.0%} of words cut, {fit['unknown_rate']:.1%} unknown")
    if fit_warning:
        print(f"WARNING: {fit_warning}", file=sys.stderr)
    epochs = args.epochs if args.epochs is not None else (10 if profile.name == "toy" else 3)
    max_length = args.max_length or model_limit
    tokenized = splits.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                           desc="tokenizing")

    def metrics_of(prediction):
        return compute_scores(prediction.label_ids, np.argmax(prediction.predictions, axis=-1), len(names))

    keep_best = splits["validation"].num_rows >= BEST_EPOCH_MIN_ROWS
    trainer = Trainer(model=model, args=training_arguments(args, profile, detect_device(), epochs, keep_best),
                      train_dataset=tokenized["train"], eval_dataset=tokenized["validation"], processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8), compute_metrics=metrics_of)
    try:
        trainer.train()
    finally:
        shutil.rmtree(args.output_dir / "checkpoints", ignore_errors=True)  # the best epoch is in memory now
    history = [{"epoch": round(e["epoch"]), "validation_accuracy": e["eval_accuracy"], "validation_loss": e["eval_loss"]}
               for e in trainer.state.log_history if "eval_accuracy" in e]
    best = max(history, key=lambda e: e["validation_accuracy"]) if keep_best and history else history[-1]
    print(f"Kept the model of epoch {best['epoch']} of {epochs} (validation accuracy {best['validation_accuracy']:.3f})"
          + ("" if keep_best else f": the last one, since {splits['validation'].num_rows} validation rows are too few "
             f"(< {BEST_EPOCH_MIN_ROWS}) to choose an epoch"))

    scored = "test" if "test" in tokenized else "validation"
    prediction = trainer.predict(tokenized[scored])
    metrics = {**score_report(splits, scored, prediction, names, trainer.state.log_history),
               "num_trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
               "num_parameters": sum(p.numel() for p in model.parameters()),
               "freeze_base": bool(args.freeze_base), "model": source, "epochs": epochs,
               "kept_epoch": best["epoch"], "epoch_history": history, "tokenizer_fertility": fit["fertility"]}
    metrics["warnings"] = [fit_warning, *metrics["warnings"]] if fit_warning else metrics["warnings"]
    for warning in metrics["warnings"]:
        print(f"WARNING: {warning}", file=sys.stderr)
    if trainer.is_world_process_zero():
        save_results(args.output_dir, trainer.model, tokenizer, metrics)
    return metrics


def score_report(splits, scored: str, prediction, names: list[str], log_history: list[dict]) -> dict:
    """The model's scores beside the majority class's and the TF-IDF baseline's, and any warnings."""
    predicted = np.argmax(prediction.predictions, axis=-1)
    majority = Counter(splits["train"]["label"]).most_common(1)[0][0]
    baseline = tfidf_baseline(splits["train"]["text"], splits["train"]["label"], splits[scored]["text"],
                              prediction.label_ids, len(names))
    eval_loss = prediction.metrics.get("test_loss")
    # the last logged training loss; a run shorter than logging_steps has only the mean over the run
    train_losses = [e["loss"] for e in log_history if "loss" in e] or [e["train_loss"] for e in log_history
                                                                      if "train_loss" in e]
    return {
        **compute_scores(prediction.label_ids, predicted, len(names)),
        "split": scored,
        "examples": len(prediction.label_ids),
        "majority_class": names[majority],
        "majority_accuracy": float(np.mean(np.asarray(prediction.label_ids) == majority)),
        "baseline": "tf-idf + logistic regression",
        "baseline_accuracy": baseline["accuracy"],
        "baseline_f1": baseline["f1"],
        "eval_loss": eval_loss if eval_loss is not None and math.isfinite(eval_loss) else None,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "labels": names,
        "f1_positive_label": names[1] if len(names) == 2 else None,
        "warnings": learning_warnings(train_losses[-1] if train_losses else None, predicted, len(names), names),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nlp_course.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=output_dir_option, required=True, help="model, tokenizer and metrics.json go here")
    parser.add_argument("--train-file", help="csv, json/jsonl or parquet")
    parser.add_argument("--validation-file")
    parser.add_argument("--test-file")
    parser.add_argument("--dataset", help="a Hub id instead of files (splits from the Hub)")
    parser.add_argument("--dataset-config", help="the Hub dataset's configuration")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--model", help="a folder saved with save_pretrained or a Hub id (default: the course encoder)")
    parser.add_argument("--freeze-base", action="store_true", help="train only the classification head")
    parser.add_argument("--tokenizer", choices=("auto", "model", "train"), default="auto",
                        help="model: the model's own; train: train one on the training split and pretrain the encoder "
                             "with it first (no --model; minutes in the toy profile); auto (default): train in the toy "
                             "profile when the course tokenizer does not fit 1,000 or more training texts, else model")
    parser.add_argument("--profile", help="toy, colab or full (default: $NLP_COURSE_PROFILE, else detected)")
    parser.add_argument("--epochs", type=int, help="default: 10 in the toy profile, 3 otherwise")
    parser.add_argument("--batch-size", type=int, help="default: the profile's")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--max-length", type=int, help="tokens per text (default: what the model allows, at most 512)")
    parser.add_argument("--seed", type=int, default=42)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run_finetune, argv)


if __name__ == "__main__":
    sys.exit(main())
