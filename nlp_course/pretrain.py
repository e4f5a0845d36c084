"""Pretraining from the command line: the training code of notebooks 04 and 06, headless, for long runs.

    python -m nlp_course.pretrain mlm --output-dir runs/roberta-toy --profile toy
    python -m nlp_course.pretrain mlm --output-dir runs/roberta-toy --resume          # after a crash
    torchrun --nproc_per_node 2 -m nlp_course.pretrain mlm --output-dir runs/roberta-2p
    python -m nlp_course.pretrain clm --output-dir runs/gpt2-code-toy --profile toy   # GPT-2 on Python code
    torchrun --nproc_per_node 2 -m nlp_course.pretrain clm --output-dir runs/gpt2-code-2p

It writes checkpoints (safetensors weights) every ``--save-steps``, TensorBoard logs in
``<output-dir>/runs/``, the final model and tokenizer in ``<output-dir>/final``, and ``metrics.json``
with ``initial_eval_loss``, ``final_eval_loss``, ``final_perplexity``, ``steps``, ``train_tokens``,
``tokens_per_second`` and ``world_size``. Masks are a pure function of the seed, the epoch and the
example, so a run killed and resumed ends where the uninterrupted run ends.

``mlm`` is notebook 04's model, collator and training arguments with ``Trainer``; the corpus is used
as it comes, in whole documents (the notebook's perplexity sampling is a lesson, not applied here).
``clm`` is notebook 06's Accelerate loop (``nlp_course.clm.run_clm``): CodeParrot's filters,
constant-length packing, a GPT-2, the same ``metrics.json`` keys plus ``mfu`` (model FLOPs
utilisation, null on a CPU or a GPU whose peak is not known); its checkpoints are ``accelerator.save_state``
folders. On CPU, several processes work with ``torchrun`` (gloo), each on its own share of the
files; ``accelerate launch --cpu --num_processes 2`` starts only one process.

Taught in: 04_pretraining_roberta and 06_pretraining_gpt2_code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path

CHECKPOINT_FILES = ("model.safetensors", "trainer_state.json", "optimizer.pt", "scheduler.pt")
# What a complete checkpoint holds, by objective: Trainer's files (mlm) or accelerate's save_state
# plus the loop's own training_state.json, written last (clm).
CHECKPOINT_LAYOUTS = {
    "mlm": {"files": CHECKPOINT_FILES, "state": "trainer_state.json", "states": ("optimizer.pt", "scheduler.pt"),
            "rng": "rng_state*.pth"},
    "clm": {"files": ("model.safetensors", "training_state.json", "optimizer.bin", "scheduler.bin"),
            "state": "training_state.json", "states": ("optimizer.bin", "scheduler.bin"), "rng": "random_states_*.pkl"},
}

class PretrainError(ValueError):
    """A bad option or a bad checkpoint, found before any training starts."""


# --------------------------------------------------------------------------------------------
# Checks that run before anything long
# --------------------------------------------------------------------------------------------
def checkpoints_in(output_dir: Path) -> list[Path]:
    found = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def check_checkpoint(path: Path, objective: str = "mlm") -> None:
    """Raise PretrainError unless ``path`` is a complete, readable checkpoint of ``objective``.

    Complete: weights (safetensors), trainer state, optimizer, scheduler and the random-number states
    of every process (without them a resumed run is no longer exact). Readable: the weights' header
    parses, and the optimizer and scheduler (and, for clm, the random states, which accelerate would
    otherwise skip silently if unreadable) load with ``weights_only=True`` (no code is run).
    """
    import torch
    from safetensors import safe_open

    layout = CHECKPOINT_LAYOUTS[objective]
    if not path.is_dir():
        raise PretrainError(f"Checkpoint {str(path)!r} does not exist.")
    missing = [f for f in layout["files"] if not (path / f).is_file()]
    if not list(path.glob(layout["rng"])):
        missing.append(layout["rng"])
    if missing:
        raise PretrainError(
            f"Checkpoint {str(path)!r} is incomplete (missing {', '.join(missing)}): the run was probably killed "
            "while saving it. Delete that folder to resume from the previous checkpoint."
        )
    try:
        json.loads((path / layout["state"]).read_text(encoding="utf-8"))
        with safe_open(str(path / "model.safetensors"), framework="pt") as weights:
            next(iter(weights.keys()), None)
        for name in layout["states"]:
            torch.load(path / name, map_location="cpu", weights_only=True)
        if objective == "clm":
            from accelerate.utils import load  # torch.load(weights_only=True), NumPy's arrays allowed

            for rng in path.glob(layout["rng"]):
                load(rng)
    except Exception as err:
        raise PretrainError(
            f"Checkpoint {str(path)!r} is corrupt ({type(err).__name__}: {str(err)[:200]}). "
            "Delete that folder to resume from the previous checkpoint."
        ) from err


def write_atomically(path: Path, text: str) -> None:
    """Write a file in full or not at all: a temporary file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


RUN_CONFIG = "run_config.json"
MAX_EVAL_DOCUMENTS = 2_000
RESUMABLE_OPTIONS = ("max_steps", "save_steps", "eval_steps")  # these may change between a run and its resume


def run_config(args, profile) -> dict:
    """What defines a run: a resume must use the same values."""
    return {
        "profile": profile.name, "corpus": args.corpus or profile.corpus_es,
        "corpus_config": args.corpus_config or profile.corpus_es_config,
        "tokenizer": args.tokenizer or "course:es", "max_documents": args.max_documents or profile.max_documents,
        "block_size": args.block_size or profile.seq_length, "batch_size": args.batch_size or profile.batch_size,
        "learning_rate": args.learning_rate or profile.learning_rate, "eval_fraction": args.eval_fraction,
        "seed": args.seed, "hidden_size": profile.hidden_size, "num_layers": profile.num_layers,
        "num_heads": profile.num_heads, "grad_accumulation": profile.grad_accumulation,
    }


def check_same_run(output_dir: Path, config: dict) -> None:
    saved_path = output_dir / RUN_CONFIG
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text(encoding="utf-8"))
    changed = {k: (saved.get(k), v) for k, v in config.items() if saved.get(k) != v}
    if changed:
        detail = ", ".join(f"{k}: {old!r} then, {new!r} now" for k, (old, new) in changed.items())
        raise PretrainError(f"--resume continues the run in {str(output_dir)!r} with other settings ({detail}). "
                            "Resume with the same options, or start a new run in another --output-dir.")


def resolve_resume(args) -> Path | None:
    output_dir = args.output_dir
    if output_dir.exists() and not output_dir.is_dir():
        raise PretrainError(f"--output-dir {str(output_dir)!r} is a file; give a folder.")
    existing = checkpoints_in(output_dir) if output_dir.is_dir() else []
    if args.resume is None:
        if existing:
            raise PretrainError(
                f"{str(output_dir)!r} already holds checkpoints ({existing[-1].name}): pass --resume to continue "
                "that run, or choose another --output-dir."
            )
        return None
    if args.resume == "latest":
        if not existing:
            raise PretrainError(f"Nothing to resume: {str(output_dir)!r} holds no checkpoint. Run without --resume.")
        checkpoint = existing[-1]
    else:
        checkpoint = Path(args.resume)
    check_checkpoint(checkpoint, getattr(args, "objective", "mlm"))
    return checkpoint


POSITIVE_OPTIONS = ("max_steps", "save_steps", "eval_steps", "batch_size", "block_size", "max_documents",
                    "seq_length", "max_files", "grad_accumulation", "eval_sequences")


def validate(args) -> None:
    """Check the numbers of either objective's options (those it has)."""
    for name in POSITIVE_OPTIONS:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise PretrainError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
    if getattr(args, "seq_length", None) is not None and args.seq_length < 2:
        raise PretrainError(f"--seq-length must be at least 2 (a token and the next one to predict), got {args.seq_length}.")
    if hasattr(args, "eval_fraction") and not 0 < args.eval_fraction < 0.5:
        raise PretrainError(f"--eval-fraction must be between 0 and 0.5, got {args.eval_fraction}.")
    if args.learning_rate is not None and not 0 < args.learning_rate < 1:
        raise PretrainError(f"--learning-rate must be between 0 and 1, got {args.learning_rate}.")
    if getattr(args, "weight_decay", None) is not None and not 0 <= args.weight_decay < 1:
        raise PretrainError(f"--weight-decay must be between 0 and 1, got {args.weight_decay}.")
    if getattr(args, "warmup_steps", None) is not None and args.warmup_steps < 0:
        raise PretrainError(f"--warmup-steps must be 0 or more, got {args.warmup_steps}.")


def check_run(args, make_config) -> tuple[Path | None, object, dict]:
    """The checks every objective runs before anything long; return (checkpoint, profile, run config).

    ``make_config(profile)`` builds the objective's run configuration, compared with the saved one on resume.
    """
    from nlp_course.profiles import UnknownProfileError, get_profile

    validate(args)
    checkpoint = resolve_resume(args)
    try:
        profile = get_profile(args.profile)
    except UnknownProfileError as err:
        raise PretrainError(str(err)) from err
    config_of_run = make_config(profile)
    if checkpoint is not None:
        check_same_run(args.output_dir, config_of_run)
    if args.tokenizer and not (Path(args.tokenizer) / "tokenizer.json").is_file():
        raise PretrainError(f"--tokenizer {args.tokenizer!r} is not a folder saved with save_pretrained (no tokenizer.json).")
    return checkpoint, profile, config_of_run


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def prepare_blocks(tokenizer, documents, block_size: int, seed: int, eval_fraction: float, training_args=None):
    """Split documents into train/eval, tokenize them, and pack each side into blocks."""
    import datasets

    from nlp_course.pretraining import group_texts

    docs = datasets.Dataset.from_dict({"text": list(documents)})
    if docs.num_rows < 2:
        raise PretrainError("The corpus needs at least two documents (one for evaluation).")
    n_eval = min(MAX_EVAL_DOCUMENTS, max(1, round(eval_fraction * docs.num_rows)))  # evaluations stay quick
    split = docs.train_test_split(test_size=n_eval, seed=seed)

    def tokenize(batch):
        return tokenizer(batch["text"])

    def pack(ds, name):
        tokenized = ds.map(tokenize, batched=True, remove_columns=["text"], desc=f"tokenizing {name}")
        tokenized = tokenized.remove_columns([c for c in tokenized.column_names if c != "input_ids"])
        return tokenized.map(group_texts, batched=True, fn_kwargs={"block_size": block_size}, desc=f"packing {name}")

    first = training_args.main_process_first(desc="preparing the corpus") if training_args else nullcontext()
    with first:
        return pack(split["train"], "train"), pack(split["test"], "eval")


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
def run_mlm(args) -> dict:
    """Pretrain a RoBERTa with masked language modelling; return (and write) the metrics."""
    import torch
    from transformers import (
        AutoTokenizer,
        RobertaConfig,
        RobertaForMaskedLM,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from nlp_course.data import DataSourceError, HubUnavailableError, load_corpus
    from nlp_course.pretraining import MaskingEpochCallback, SeededMLMCollator, mask_once
    from nlp_course.runtime import detect_device
    from nlp_course.tokenization import course_tokenizer

    checkpoint, profile, config_of_run = check_run(args, lambda profile: run_config(args, profile))
    device = detect_device()
    block_size = config_of_run["block_size"]
    output_dir: Path = args.output_dir
    try:  # the corpus is resolved before any long work: a wrong path or an offline Hub id fails here
        corpus = load_corpus(config_of_run["corpus"], config=config_of_run["corpus_config"],
                             streaming=profile.streaming, max_documents=config_of_run["max_documents"])
    except (DataSourceError, HubUnavailableError, FileNotFoundError) as err:
        raise PretrainError(f"--corpus: {err}") from err

    training_args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=args.max_steps or profile.max_steps,
        per_device_train_batch_size=config_of_run["batch_size"],
        per_device_eval_batch_size=config_of_run["batch_size"],
        gradient_accumulation_steps=profile.grad_accumulation,
        learning_rate=config_of_run["learning_rate"],
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.98,  # RoBERTa's value, as in the slide's run_mlm command
        warmup_steps=0.06,  # a float below 1 is a share of the steps
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=args.eval_steps or profile.eval_steps,
        save_steps=args.save_steps or profile.eval_steps,
        save_total_limit=3,
        logging_steps=max(1, (args.eval_steps or profile.eval_steps) // 4),
        report_to=["tensorboard"],
        include_num_input_tokens_seen="non_padding",  # logs num_input_tokens_seen and train_tokens_per_second
        # RoBERTa's loss is already a mean over its masked tokens; without this, Trainer 5 multiplies
        # it by the number of processes (every loss of a torchrun run would be doubled on two)
        average_tokens_across_devices=False,
        fp16=device.precision == "fp16",
        bf16=device.precision == "bf16",
        use_cpu=device.device == "cpu",  # on CPU, torchrun's processes join up (gloo) only with this set
        seed=args.seed,
        data_seed=args.seed,
        dataloader_num_workers=0,  # the collator's epoch is set by a callback in this process
        disable_tqdm=False,
    )

    with training_args.main_process_first(desc="the tokenizer"):  # trained (and saved) once, then loaded
        try:
            tokenizer = (AutoTokenizer.from_pretrained(args.tokenizer) if args.tokenizer
                         else course_tokenizer("es", profile, verbose=training_args.process_index == 0))
        except OSError as err:
            raise PretrainError(f"--tokenizer {args.tokenizer!r} could not be loaded: {err}") from err
    if tokenizer.mask_token_id is None:
        raise PretrainError("The tokenizer has no mask token; MLM needs one (train it with kind='bpe', family='roberta').")

    train_blocks, eval_blocks = prepare_blocks(tokenizer, (row["text"] for row in corpus), block_size,
                                               args.seed, args.eval_fraction, training_args)
    if train_blocks.num_rows == 0 or eval_blocks.num_rows == 0:
        raise PretrainError(f"The corpus is too small for blocks of {block_size} tokens; lower --block-size.")
    eval_blocks = mask_once(eval_blocks, tokenizer, args.seed)

    set_seed(args.seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=profile.hidden_size,
        num_hidden_layers=profile.num_layers,
        num_attention_heads=profile.num_heads,
        intermediate_size=4 * profile.hidden_size,
        max_position_embeddings=block_size + 2,  # RoBERTa's positions start after the padding index
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="sdpa",  # PyTorch's fused attention: the fast path on a GPU
    )
    model = RobertaForMaskedLM(config)
    collator = SeededMLMCollator(tokenizer, seed=args.seed, pad_to_multiple_of=8)
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=train_blocks,
        eval_dataset=eval_blocks,
        processing_class=tokenizer,
        callbacks=[MaskingEpochCallback(collator)],
    )

    initial_path = output_dir / "initial_metrics.json"
    if checkpoint is None:
        initial_eval_loss = trainer.evaluate()["eval_loss"]
        if trainer.is_world_process_zero():
            output_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(output_dir / RUN_CONFIG, json.dumps(config_of_run, indent=2))
            write_atomically(initial_path, json.dumps({"initial_eval_loss": initial_eval_loss}))
    else:
        initial_eval_loss = json.loads(initial_path.read_text(encoding="utf-8"))["initial_eval_loss"] if initial_path.is_file() else None
    resumed_state = json.loads((checkpoint / "trainer_state.json").read_text()) if checkpoint else {}
    start_step, tokens_at_start = resumed_state.get("global_step", 0), resumed_state.get("num_input_tokens_seen", 0)

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    wall_seconds = time.perf_counter() - started
    # time spent training, without the evaluations that ran inside train()
    eval_seconds = sum(e.get("eval_runtime", 0.0) for e in trainer.state.log_history if e.get("step", 0) > start_step)
    final_eval_loss = trainer.evaluate()["eval_loss"]

    steps = trainer.state.global_step
    train_tokens = trainer.state.num_input_tokens_seen  # summed over processes, restored on resume
    session_tokens = train_tokens - tokens_at_start
    metrics = {
        "objective": "mlm",
        "profile": profile.name,
        "initial_eval_loss": initial_eval_loss,
        "final_eval_loss": final_eval_loss,
        "final_perplexity": math.exp(final_eval_loss) if final_eval_loss < 700 else float("inf"),
        "steps": steps,
        "resumed_from_step": start_step,
        "train_tokens": train_tokens,
        "tokens_per_second": session_tokens / max(wall_seconds - eval_seconds, 1e-9) if steps > start_step else None,
        "world_size": training_args.world_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "block_size": block_size,
        "device": device.name,
        "precision": device.precision,
        "seed": args.seed,
    }
    if trainer.is_world_process_zero():
        final_dir, tmp_dir = output_dir / "final", output_dir / ".final.tmp"
        trainer.save_model(str(tmp_dir))  # model.safetensors, config, tokenizer
        if final_dir.exists():
            shutil.rmtree(final_dir)
        tmp_dir.rename(final_dir)
        write_atomically(output_dir / "metrics.json", json.dumps(metrics, indent=2))  # written last
        print(json.dumps(metrics, indent=2))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return metrics


def _add_run_options(sub, tokenizer_help: str) -> None:
    """The options both objectives share: where the run goes, how long, resuming, the tokenizer."""
    sub.add_argument("--output-dir", type=Path, required=True, help="checkpoints, logs, final model, metrics.json")
    sub.add_argument("--profile", help="toy, colab or full (default: $NLP_COURSE_PROFILE, else detected)")
    sub.add_argument("--max-steps", type=int, help="optimizer steps (default: the profile's)")
    sub.add_argument("--save-steps", type=int, help="steps between checkpoints (default: the eval steps)")
    sub.add_argument("--eval-steps", type=int, help="steps between evaluations (default: the profile's)")
    sub.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                     help="continue from the last checkpoint in --output-dir, or from the one given")
    sub.add_argument("--tokenizer", help=f"a folder saved with save_pretrained (default: {tokenizer_help})")
    sub.add_argument("--learning-rate", type=float, help="peak learning rate (default: the profile's)")
    sub.add_argument("--seed", type=int, default=42)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nlp_course.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="objective", required=True)
    mlm = sub.add_parser("mlm", help="masked language modelling: a RoBERTa from scratch on the Spanish corpus")
    _add_run_options(mlm, "the course's Spanish tokenizer")
    mlm.add_argument("--corpus", help="a course corpus name, a local file or folder, or a Hub id (default: the profile's)")
    mlm.add_argument("--corpus-config", help="the Hub dataset's configuration, e.g. 20231101.es")
    mlm.add_argument("--max-documents", type=int, help="read at most this many documents")
    mlm.add_argument("--block-size", type=int, help="tokens per training block (default: the profile's seq_length)")
    mlm.add_argument("--batch-size", type=int, help="blocks per device per step (default: the profile's)")
    mlm.add_argument("--eval-fraction", type=float, default=0.1, help="share of documents held out (default 0.1)")

    clm = sub.add_parser("clm", help="causal language modelling: a GPT-2 from scratch on Python code (an Accelerate loop)")
    _add_run_options(clm, "the course's code tokenizer")
    clm.add_argument("--corpus", help="'stdlib' (this Python's standard library) or a Hub id with path and content "
                                      "columns, streamed (default: the profile's code corpus)")
    clm.add_argument("--max-files", type=int, help="train on at most this many files (stdlib: after filtering; "
                                                    "a stream: the first ones read)")
    clm.add_argument("--seq-length", type=int, help="tokens per sequence, the context (default: the profile's)")
    clm.add_argument("--batch-size", type=int, help="sequences per device per micro-batch (default: the profile's)")
    clm.add_argument("--grad-accumulation", type=int, help="micro-batches per optimizer step (default: the profile's)")
    clm.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay, GPT-3's 0.1 (default)")
    clm.add_argument("--warmup-steps", type=int, help="linear warmup before the cosine decay (default: 10 %% of the steps)")
    clm.add_argument("--eval-sequences", type=int, default=256, help="sequences in the fixed evaluation set (default 256)")
    clm.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on a GPU, for long runs)")
    clm.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs wandb installed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if args.objective == "clm":
            from nlp_course.clm import run_clm

            run_clm(args)
        else:
            run_mlm(args)
    except PretrainError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
