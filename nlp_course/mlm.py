"""Masked language modelling from scratch with ``Trainer``: notebook 04's RoBERTa, headless.

``run_mlm(config)`` runs ``python -m nlp_course.pretrain mlm``, in named phases: the checks
(``nlp_course.runs.prepare_run``), the corpus, ``training_arguments``, the tokenizer, ``build_data``
(documents split, tokenized, grouped into blocks; the evaluation blocks masked once), the model and
``Trainer`` with the seeded collator, an evaluation of the untrained model, training, and
``final_metrics``. Masks are a pure function of the seed, the epoch and the example, so a run killed
and resumed ends where the uninterrupted run ends. The corpus is used as it comes, in whole documents
(the notebook's perplexity sampling is a lesson, not applied here).

Taught in: 04_pretraining_roberta.
"""

from __future__ import annotations

import json
import time

import torch
from transformers import RobertaForMaskedLM, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.integrations import TensorBoardCallback

from nlp_course.data import load_corpus
from nlp_course.errors import DataSourceError, HubUnavailableError, PretrainError, RunInterrupted
from nlp_course.evaluation import perplexity, pretraining_warnings, unigram_loss
from nlp_course.files import StopRequest, lock_folder
from nlp_course.models import roberta_config
from nlp_course.objectives import MaskingEpochCallback, SeededMLMCollator, mask_once
from nlp_course.packing import prepare_blocks
from nlp_course.runs import (
    RunConfig,
    finish_run,
    initial_eval_loss,
    load_tokenizer,
    prepare_run,
    start_run,
)
from nlp_course.runtime import DeviceInfo, detect_device


def training_arguments(config: RunConfig, device: DeviceInfo, **overrides) -> TrainingArguments:
    """The slide's ``run_mlm`` settings, at the run's scale (``overrides``: other values, as ELECTRA's optimizer)."""
    settings = dict(
        output_dir=str(config.output_dir),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accumulation,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.98,  # RoBERTa's value, as in the slide's run_mlm command
        warmup_steps=0.06,  # a float below 1 is a share of the steps
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_steps=config.save_steps,
        save_total_limit=3,
        logging_steps=max(1, config.eval_steps // 4),
        report_to=[],  # TensorBoard is added by run_mlm, with its folder set (see tensorboard_callback)
        include_num_input_tokens_seen="non_padding",  # logs num_input_tokens_seen and train_tokens_per_second
        # RoBERTa's loss is already a mean over its masked tokens; without this, Trainer 5 multiplies
        # it by the number of processes (every loss of a torchrun run would be doubled on two)
        average_tokens_across_devices=False,
        fp16=device.precision == "fp16",
        bf16=device.precision == "bf16",
        use_cpu=device.device == "cpu",  # on CPU, torchrun's processes join up (gloo) only with this set
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=0,  # the collator's epoch is set by a callback in this process
        disable_tqdm=False,
    )
    return TrainingArguments(**{**settings, **overrides})


def tensorboard_callback(config: RunConfig) -> TensorBoardCallback:
    """TensorBoard logging into ``<output-dir>/runs``, from the first evaluation on.

    Left to itself, the callback opens its writer at the first log; an evaluation before training
    (the untrained model's loss) would then write to ``./runs`` in the working directory, and so
    would the evaluation after training, once ``on_train_end`` has closed the writer.
    """
    callback = TensorBoardCallback()
    callback.logging_dir = str(config.output_dir / "runs")
    return callback


class StopOnRequest(TrainerCallback):
    """After a first Ctrl-C: save a checkpoint at the end of the current step and stop training there."""

    def __init__(self, stop: StopRequest):
        self.stop = stop

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop.requested:
            control.should_save = control.should_training_stop = True


def load_documents(config: RunConfig):
    """The corpus, resolved before any long work: a wrong path or an offline Hub id fails here."""
    try:
        return load_corpus(config.corpus, config=config.corpus_config, streaming=config.profile.streaming,
                           max_documents=config.max_documents)
    except (DataSourceError, HubUnavailableError, FileNotFoundError) as err:
        raise PretrainError(f"--corpus: {err}") from err


def build_data(config: RunConfig, tokenizer, corpus, training_args: TrainingArguments):
    """Training blocks, and evaluation blocks masked once (every evaluation scores the same tokens)."""
    train_blocks, eval_blocks = prepare_blocks(tokenizer, (row["text"] for row in corpus), config.seq_length,
                                               config.seed, config.eval_fraction, training_args)
    if train_blocks.num_rows == 0 or eval_blocks.num_rows == 0:
        raise PretrainError(f"The corpus is too small for blocks of {config.seq_length} tokens; lower --block-size.")
    return train_blocks, mask_once(eval_blocks, tokenizer, config.seed)


def unigram_baseline(tokenizer, train_blocks, eval_blocks) -> float:
    """The eval loss of token frequencies counted on the training blocks, on the masked evaluation tokens."""
    train_ids = (row for batch in train_blocks.iter(batch_size=1_000) for row in batch["input_ids"])
    targets = [t for labels in eval_blocks["labels"] for t in labels if t != -100]
    return unigram_loss(train_ids, targets, len(tokenizer))


def final_metrics(config: RunConfig, trainer: Trainer, device: DeviceInfo, start: dict, wall_seconds: float) -> dict:
    """``metrics.json``: losses, steps, tokens and the training throughput (evaluations left out)."""
    start_step, tokens_at_start = start.get("global_step", 0), start.get("num_input_tokens_seen", 0)
    eval_seconds = sum(e.get("eval_runtime", 0.0) for e in trainer.state.log_history if e.get("step", 0) > start_step)
    final_eval_loss = trainer.evaluate()["eval_loss"]
    steps = trainer.state.global_step
    train_tokens = trainer.state.num_input_tokens_seen  # summed over processes, restored on resume
    return {
        "objective": "mlm",
        "profile": config.profile.name,
        "initial_eval_loss": start["initial_eval_loss"],
        "final_eval_loss": final_eval_loss,
        "final_perplexity": perplexity(final_eval_loss),
        "unigram_eval_loss": start["unigram_eval_loss"],
        "warnings": pretraining_warnings(final_eval_loss, start["unigram_eval_loss"], start["initial_eval_loss"]),
        "steps": steps,
        "resumed_from_step": start_step,
        "train_tokens": train_tokens,
        "tokens_per_second": ((train_tokens - tokens_at_start) / max(wall_seconds - eval_seconds, 1e-9)
                              if steps > start_step else None),
        "world_size": trainer.args.world_size,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "block_size": config.seq_length,
        "device": device.name,
        "precision": device.precision,
        "seed": config.seed,
    }


def run_mlm(config: RunConfig) -> dict:
    """Pretrain a RoBERTa with masked language modelling; return (and write) the metrics."""
    checkpoint = prepare_run(config)
    corpus = load_documents(config)
    lock_folder(config.output_dir)  # one run at a time here: a second one stops now, having written nothing
    device = detect_device()
    training_args = training_arguments(config, device)
    with training_args.main_process_first(desc="the tokenizer"):  # trained (and saved) once, then loaded
        tokenizer = load_tokenizer(config, verbose=training_args.process_index == 0)
    if tokenizer.mask_token_id is None:
        raise PretrainError("The tokenizer has no mask token; MLM needs one (train it with kind='bpe', family='roberta').")
    train_blocks, eval_blocks = build_data(config, tokenizer, corpus, training_args)

    set_seed(config.seed)
    model = RobertaForMaskedLM(roberta_config(tokenizer, config, config.seq_length))
    collator = SeededMLMCollator(tokenizer, seed=config.seed, pad_to_multiple_of=8)
    stop = StopRequest()
    trainer = Trainer(model=model, args=training_args, data_collator=collator, train_dataset=train_blocks,
                      eval_dataset=eval_blocks, processing_class=tokenizer,
                      callbacks=[MaskingEpochCallback(collator), tensorboard_callback(config), StopOnRequest(stop)])

    return train_to_the_end(config, trainer, checkpoint, stop, device,
                            unigram_baseline(tokenizer, train_blocks, eval_blocks), final_metrics,
                            lambda folder: trainer.save_model(str(folder)))  # weights, config, tokenizer


def train_to_the_end(config: RunConfig, trainer: Trainer, checkpoint, stop: StopRequest, device: DeviceInfo,
                     unigram_eval_loss: float, metrics_of, save_final) -> dict:
    """What every ``Trainer`` objective does around training (``mlm`` and ``electra``).

    A new run evaluates the untrained model first (``start["initial_evaluation"]``, all its metrics) and
    writes ``run_config.json``; a resumed one reads its step from the checkpoint. Then training, with a
    first Ctrl-C stopping at the end of a step with a checkpoint; ``metrics_of(config, trainer, device,
    start, seconds)``; ``save_final(folder)`` into ``final/`` and ``metrics.json`` last (main process).
    """
    if checkpoint is None:
        first = trainer.evaluate()
        start = {"initial_eval_loss": first["eval_loss"], "initial_evaluation": first}
        if trainer.is_world_process_zero():
            start_run(config, start["initial_eval_loss"])
    else:
        start = {**json.loads((checkpoint / "trainer_state.json").read_text()),
                 "initial_eval_loss": initial_eval_loss(config.output_dir)}
    start["unigram_eval_loss"] = unigram_eval_loss
    started = time.perf_counter()
    with stop:  # a first Ctrl-C stops at the end of a step, with a checkpoint: never half a checkpoint
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if stop.requested:
        raise RunInterrupted(f"Interrupted at step {trainer.state.global_step}, saved as checkpoint-"
                             f"{trainer.state.global_step}: continue with the same command and --resume.")
    metrics = metrics_of(config, trainer, device, start, time.perf_counter() - started)
    if trainer.is_world_process_zero():
        finish_run(config.output_dir, save_final, metrics)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return metrics
