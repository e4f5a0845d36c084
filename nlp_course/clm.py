"""A GPT-2 for Python code, trained from scratch with an Accelerate loop (CodeParrot at course scale).

``run_clm(config)`` runs ``python -m nlp_course.pretrain clm``: notebook 06's loop, headless, in
named phases: the checks (``nlp_course.runs.prepare_run``), ``load_corpora``, ``make_accelerator``,
the tokenizer, ``build_data`` (each process packs its own share of the filtered files; a fixed
evaluation set), ``build_model`` (weight-decay groups, AdamW, cosine schedule with warmup),
``start_or_resume`` (exact resume with ``load_state``), ``train`` (gradient accumulation, evaluation
every ``eval_steps``, TensorBoard and optionally W&B logging, checkpoints with ``save_state``) and
``final_metrics`` (with model FLOPs utilisation). Several processes work with ``torchrun``.

Taught in: 06_pretraining_gpt2_code.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets.distributed
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, gather_object
from tqdm.auto import tqdm
from transformers import GPT2LMHeadModel, get_cosine_schedule_with_warmup, set_seed

from nlp_course.checkpoints import TRAINING_STATE, save_accelerate_checkpoint
from nlp_course.code_corpus import filter_code, iter_filtered_code, load_code_corpus
from nlp_course.errors import DataSourceError, HubUnavailableError, PretrainError, RunInterrupted
from nlp_course.evaluation import evaluate_lm, perplexity, pretraining_warnings, unigram_loss
from nlp_course.files import StopRequest, lock_folder, outputs_dir
from nlp_course.models import flops_per_token, gpt2_config, matmul_params, weight_decay_groups
from nlp_course.packing import ConstantLengthDataset
from nlp_course.runs import (
    RunConfig,
    course_model,
    finish_run,
    initial_eval_loss,
    load_tokenizer,
    make_run_config,
    prepare_run,
    start_run,
)
from nlp_course.runtime import DeviceInfo, detect_device, mfu, peak_flops


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def load_corpora(config: RunConfig):
    """The train and validation files, resolved first: a missing Hub dataset offline fails here."""
    try:
        stream_limit = None if config.corpus == "stdlib" else config.max_documents  # streams: read that many
        return (load_code_corpus(config.corpus, split="train", max_files=stream_limit),
                load_code_corpus(config.corpus, split="validation"))
    except (DataSourceError, HubUnavailableError, FileNotFoundError, ValueError) as err:
        raise PretrainError(f"--corpus: {err}") from err


def process_texts(corpus, rank: int, world_size: int, max_files: int | None, counts: dict):
    """The filtered code of this process's share of the files, re-iterable."""
    if hasattr(corpus, "column_names") and not hasattr(corpus, "num_rows"):  # a stream: filtered lazily
        shard = datasets.distributed.split_dataset_by_node(corpus, rank=rank, world_size=world_size)

        class Stream:  # each pass over it filters again, with a new set of hashes
            def __iter__(self):
                return (row["content"] for row in iter_filtered_code(shard, counts=counts))

        return Stream()
    kept, found = filter_code(corpus)
    counts.update(found)
    texts = list(kept["content"])[:max_files]
    return texts[rank::world_size]


@dataclass
class Data:
    train_loader: torch.utils.data.DataLoader
    eval_loader: torch.utils.data.DataLoader
    eval_sequences: int
    unigram_eval_loss: float  # token frequencies of the first training sequences, on the evaluation set
    counts: dict = field(default_factory=dict)  # this process's filter table


def build_data(config: RunConfig, tokenizer, corpora, rank: int, world_size: int) -> Data:
    """Each process packs its own share of the training files; one fixed evaluation set, shared out."""
    train_corpus, eval_corpus = corpora
    counts: dict = {}
    train_texts = process_texts(train_corpus, rank, world_size, config.max_documents, counts)
    if isinstance(train_texts, list) and not train_texts:
        raise PretrainError(f"No training file left for process {rank} of {world_size} after filtering; "
                            "use fewer processes or more files (--max-files).")
    eval_blocks = []
    for block in ConstantLengthDataset(tokenizer, process_texts(eval_corpus, 0, 1, None, {}), config.seq_length,
                                       num_of_sequences=config.eval_sequences):
        eval_blocks.append(block)
        if len(eval_blocks) == config.eval_sequences:
            break
    if not eval_blocks:
        raise PretrainError(f"The validation files are too small for one sequence of {config.seq_length} tokens; "
                            "lower --seq-length.")
    train_data = ConstantLengthDataset(tokenizer, train_texts, config.seq_length, infinite=True, shuffle=True,
                                       seed=config.seed)
    sample = itertools.islice(ConstantLengthDataset(tokenizer, train_texts, config.seq_length), 2 * config.eval_sequences)
    unigram = unigram_loss((block["input_ids"] for block in sample),
                           torch.cat([block["input_ids"][1:] for block in eval_blocks]), len(tokenizer))
    # own generators: creating a DataLoader iterator then draws nothing from the global generator, whose
    # state (dropout) the checkpoints save: a resumed run draws exactly what the uninterrupted one drew
    return Data(
        torch.utils.data.DataLoader(train_data, batch_size=config.batch_size,
                                    generator=torch.Generator().manual_seed(config.seed)),
        torch.utils.data.DataLoader(eval_blocks[rank::world_size], batch_size=config.batch_size,
                                    generator=torch.Generator().manual_seed(config.seed)),
        len(eval_blocks), unigram, counts)


# --------------------------------------------------------------------------------------------
# Accelerator, model, optimizer
# --------------------------------------------------------------------------------------------
def make_accelerator(config: RunConfig, device: DeviceInfo) -> Accelerator:
    if config.wandb and importlib.util.find_spec("wandb") is None:
        raise PretrainError("--wandb needs the wandb package: pip install wandb (and wandb login), or leave --wandb out.")
    return Accelerator(
        cpu=device.device == "cpu",  # on CPU, torchrun's processes join up (gloo)
        mixed_precision={"fp16": "fp16", "bf16": "bf16"}.get(device.precision, "no"),
        gradient_accumulation_steps=config.grad_accumulation,
        step_scheduler_with_optimizer=False,  # we step the schedule once per optimizer step, whatever the world size
        log_with=["tensorboard"] + (["wandb"] if config.wandb else []),
        project_config=ProjectConfiguration(project_dir=str(config.output_dir),
                                            logging_dir=str(config.output_dir / "runs")),
    )


def build_model(config: RunConfig, tokenizer, device: DeviceInfo):
    """GPT-2, AdamW with weight-decay groups and a cosine schedule with warmup; and the FLOPs per token."""
    set_seed(config.seed)
    model = GPT2LMHeadModel(gpt2_config(tokenizer, config, config.seq_length))
    per_token = flops_per_token(matmul_params(model), config.num_layers, config.hidden_size, config.seq_length)
    optimizer = torch.optim.AdamW(weight_decay_groups(model, config.weight_decay), lr=config.learning_rate,
                                  betas=(0.9, 0.95), eps=1e-8, fused=device.device == "cuda")
    warmup = config.warmup_steps if config.warmup_steps is not None else max(1, config.max_steps // 10)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=config.max_steps)
    if config.compile:
        model = torch.compile(model)
    return model, optimizer, scheduler, per_token


def start_or_resume(config: RunConfig, accelerator: Accelerator, model, eval_loader, checkpoint) -> dict:
    """A new run's first evaluation, or a checkpoint's state loaded back: step, evaluations, initial loss."""
    if checkpoint is None:
        loss, _ = evaluate_lm(model, eval_loader, accelerator)
        if accelerator.is_main_process:
            start_run(config, loss)
        return {"step": 0, "evaluations": [{"step": 0, "eval_loss": loss}], "initial_eval_loss": loss}
    # accelerate 1.15 reads the weights with safetensors and the optimizer, schedule and random
    # states with torch.load(weights_only=True) (its own default, asked for here explicitly): no
    # pickled code runs. Objects registered with register_for_checkpointing would be read with
    # weights_only=False, so none is registered.
    accelerator.load_state(str(checkpoint), load_kwargs={"weights_only": True})
    state = json.loads((checkpoint / TRAINING_STATE).read_text(encoding="utf-8"))
    return {"step": state["step"], "evaluations": state["evaluations"],
            "initial_eval_loss": initial_eval_loss(config.output_dir)}


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def _fingerprint(ids: torch.Tensor) -> str:
    return hashlib.blake2b(ids.cpu().numpy().tobytes(), digest_size=8).hexdigest()


def train(config: RunConfig, accelerator: Accelerator, model, optimizer, scheduler, data: Data, start: dict,
          stop: StopRequest) -> dict:
    """Optimizer steps from ``start["step"]`` to ``max_steps`` (or to a stop requested by Ctrl-C, with a
    checkpoint there); return what ``final_metrics`` needs."""
    tokens_per_step = config.batch_size * config.seq_length * config.grad_accumulation * accelerator.num_processes
    start_step, evaluations = start["step"], start["evaluations"]
    batches = iter(data.train_loader)
    skip = start_step * config.grad_accumulation  # a resumed run skips the batches already trained on
    main = accelerator.is_local_main_process
    for _ in tqdm(range(skip), desc="skipping the batches already seen", disable=not skip or not main):
        next(batches)
    first_batch = None
    model.train()
    step, train_seconds = start_step, 0.0
    warm = start_step + 1  # the session's first step (compilation, first buffer of data) is not timed
    progress = tqdm(total=config.max_steps, initial=start_step, desc="training", disable=not main)
    started = time.perf_counter()
    while step < config.max_steps:
        batch = next(batches)["input_ids"].to(accelerator.device)
        first_batch = first_batch or _fingerprint(batch)
        with accelerator.accumulate(model):
            loss = model(input_ids=batch, labels=batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if accelerator.sync_gradients:
                scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        step += 1
        progress.update(1)
        if step == warm:
            started = time.perf_counter()
        if step % max(1, config.eval_steps // 4) == 0 or step == config.max_steps:
            accelerator.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0],
                             "train/tokens": step * tokens_per_step}, step=step)
        evaluate_now = step % config.eval_steps == 0 or step == config.max_steps
        save_now = step % config.save_steps == 0 or stop.requested  # a stop requested by Ctrl-C saves where it is
        if evaluate_now or save_now:
            train_seconds += time.perf_counter() - started
            if evaluate_now:
                eval_loss, eval_perplexity = evaluate_lm(model, data.eval_loader, accelerator)
                evaluations.append({"step": step, "eval_loss": eval_loss})
                accelerator.log({"eval/loss": eval_loss, "eval/perplexity": eval_perplexity}, step=step)
                progress.set_postfix(eval_loss=f"{eval_loss:.3f}")
            if save_now:
                save_accelerate_checkpoint(accelerator, config.output_dir, step, {
                    "step": step, "train_tokens": step * tokens_per_step, "evaluations": evaluations})
            started = time.perf_counter()
        if stop.requested:
            break
    progress.close()
    if evaluations[-1]["step"] != step:  # resumed at the end from a checkpoint saved between evaluations
        evaluations.append({"step": step, "eval_loss": evaluate_lm(model, data.eval_loader, accelerator)[0]})
    timed_tokens = (step - warm) * tokens_per_step
    return {"step": step, "evaluations": evaluations, "first_batch": first_batch, "tokens_per_step": tokens_per_step,
            "tokens_per_second": timed_tokens / train_seconds if step > warm and train_seconds > 0 else None}


def final_metrics(config: RunConfig, device: DeviceInfo, start: dict, done: dict, model, data: Data,
                  per_token: float) -> dict:
    """``metrics.json``: the ``mlm`` keys, plus MFU, the filter table and every evaluation."""
    final_eval_loss = done["evaluations"][-1]["eval_loss"]
    peak = peak_flops(device.name, device.precision)
    return {
        "objective": "clm",
        "profile": config.profile.name,
        "initial_eval_loss": start["initial_eval_loss"],
        "final_eval_loss": final_eval_loss,
        "final_perplexity": perplexity(final_eval_loss),
        "unigram_eval_loss": data.unigram_eval_loss,
        "warnings": pretraining_warnings(final_eval_loss, data.unigram_eval_loss, start["initial_eval_loss"]),
        "steps": done["step"],
        "resumed_from_step": start["step"],
        "train_tokens": done["step"] * done["tokens_per_step"],
        "tokens_per_second": done["tokens_per_second"],
        "world_size": config.world_size,
        "flops_per_token": per_token,
        "peak_tflops": peak / 1e12 if peak else None,
        "mfu": mfu(done["tokens_per_second"], per_token, peak, config.world_size),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": model.config.vocab_size,
        "seq_length": config.seq_length,
        "eval_sequences": data.eval_sequences,
        "files": data.counts,  # this process's filter table (process 0's in metrics.json)
        "first_batch_digests": gather_object([done["first_batch"]]),  # one per process: each reads its own files
        "evaluations": done["evaluations"],
        "device": device.name,
        "precision": device.precision,
        "compile": config.compile,
        "seed": config.seed,
    }


def run_clm(config: RunConfig) -> dict:
    """Pretrain a GPT-2 on Python code with causal language modelling; return (and write) the metrics."""
    checkpoint = prepare_run(config)  # every check that can fail runs before anything long
    corpora = load_corpora(config)
    lock_folder(config.output_dir)  # one run at a time here: a second one stops now, having written nothing
    device = detect_device()
    accelerator = make_accelerator(config, device)
    rank, world_size = accelerator.process_index, accelerator.num_processes
    if checkpoint is not None and not (checkpoint / f"random_states_{rank}.pkl").is_file():
        raise PretrainError(f"{checkpoint} was written by fewer processes than {world_size}; resume with as many as wrote it.")
    with accelerator.main_process_first():  # the tokenizer is trained (and saved) once, then loaded
        tokenizer = load_tokenizer(config, verbose=accelerator.is_main_process)
    if tokenizer.eos_token_id is None:
        raise PretrainError("The tokenizer has no end-of-text token; a causal LM joins files with one (family='gpt2').")
    data = build_data(config, tokenizer, corpora, rank, world_size)
    model, optimizer, scheduler, per_token = build_model(config, tokenizer, device)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    start = start_or_resume(config, accelerator, model, data.eval_loader, checkpoint)
    accelerator.init_trackers("clm", config={k: v for k, v in config.identity().items() if v is not None})
    with StopRequest() as stop:  # a first Ctrl-C stops at the end of a step, with a checkpoint
        done = train(config, accelerator, model, optimizer, scheduler, data, start, stop)
    if stop.requested:
        accelerator.end_training()
        raise RunInterrupted(f"Interrupted at step {done['step']}, saved as checkpoint-{done['step']}: continue with "
                             "the same command and --resume.")
    metrics = final_metrics(config, device, start, done, accelerator.unwrap_model(model, keep_torch_compile=False), data,
                            per_token)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:

        def save_final(folder):
            accelerator.unwrap_model(model, keep_torch_compile=False).save_pretrained(folder)  # model.safetensors
            tokenizer.save_pretrained(folder)

        finish_run(config.output_dir, save_final, metrics,
                   shown={k: v for k, v in metrics.items() if k not in ("evaluations", "first_batch_digests")})
    accelerator.wait_for_everyone()
    # Free the DDP wrapper while the process group is still registered, then close the group. Otherwise the
    # wrapper's reducer is the group's last owner when this function returns, and torch's gloo group, destroyed
    # from there, joins its threads holding the GIL while one of them needs the GIL to free a gathered tensor:
    # under load, a process of a two-process run hung that way after writing its results.
    model, optimizer, scheduler = accelerator.free_memory(model, optimizer, scheduler)  # also runs the garbage collector
    accelerator.end_training()  # closes the trackers and the process group
    return metrics


def course_code_model(profile, verbose: bool = True) -> Path:
    """The course's GPT-2 for Python code at a profile's scale: notebook 06's, an earlier call's, or trained now
    (``python -m nlp_course.pretrain clm``'s code), as a folder with the model and its tokenizer."""
    return course_model(outputs_dir() / "codeparrot" / profile.name,
                        lambda out: run_clm(make_run_config("clm", out, profile)), "code model",
                        "notebook 06's recipe", verbose)
