"""A GPT-2 for Python code, trained from scratch with an Accelerate loop (CodeParrot at course scale).

- ``gpt2_config``: a ``GPT2Config`` sized by a profile, its vocabulary padded to a multiple of 64.
- ``weight_decay_groups``: AdamW parameter groups, no weight decay on biases and LayerNorm weights.
- ``evaluate``: loss and perplexity on a fixed evaluation set, averaged over every process.
- ``FunctionEndCriteria`` and ``truncate_at_function_end``: stop a code completion where the function
  ends (a new top-level ``def``, ``class``, decorator, ``if __name__`` or comment).
- ``flops_per_token``, ``peak_flops`` and ``mfu``: model FLOPs utilisation, PaLM's way.
- ``run_clm``: the training loop of notebook 06, headless (``python -m nlp_course.pretrain clm``):
  weight-decay groups, AdamW, cosine schedule with warmup, gradient accumulation, evaluation every
  ``eval_steps``, TensorBoard (and optionally W&B) logging, checkpoints with ``accelerator.save_state``
  and exact resume with ``load_state``, several processes with ``torchrun``.

Taught in: 06_pretraining_gpt2_code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import torch
from transformers import GPT2Config, StoppingCriteria

# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
VOCAB_MULTIPLE = 64  # tensor cores (and the output softmax) run faster on a multiple of 64


def padded_vocab_size(n_tokens: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """The smallest multiple of ``multiple`` that holds ``n_tokens`` (4,000 -> 4,032)."""
    return -(-n_tokens // multiple) * multiple


def gpt2_config(tokenizer, profile, seq_length: int | None = None) -> GPT2Config:
    """GPT-2 sized by the profile (hidden size, layers, heads), with a context of ``seq_length`` tokens.

    The vocabulary is padded to a multiple of 64: the extra rows are never seen as inputs and learn
    to get no probability. ``<|endoftext|>`` starts, ends and pads, as in GPT-2. Attention uses
    PyTorch's fused ``scaled_dot_product_attention`` (``"sdpa"``).
    """
    return GPT2Config(
        vocab_size=padded_vocab_size(len(tokenizer)),
        n_positions=seq_length or profile.seq_length,
        n_embd=profile.hidden_size,
        n_layer=profile.num_layers,
        n_head=profile.num_heads,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        attn_implementation="sdpa",
    )


def weight_decay_groups(model: torch.nn.Module, weight_decay: float = 0.1) -> list[dict]:
    """Two AdamW parameter groups: weight decay on the weight matrices, none on biases and LayerNorm.

    Decay pulls weights towards zero; a bias or a LayerNorm gain pulled to zero only hurts. As in
    CodeParrot, the embeddings are decayed. Each group also lists its parameter ``names``.
    """
    no_decay_ids = {id(p) for module in model.modules() if isinstance(module, torch.nn.LayerNorm)
                    for p in module.parameters(recurse=False)}
    groups = [{"params": [], "names": [], "weight_decay": weight_decay},
              {"params": [], "names": [], "weight_decay": 0.0}]
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        group = groups[1] if name.endswith("bias") or id(param) in no_decay_ids else groups[0]
        group["params"].append(param)
        group["names"].append(name)
    return groups


def evaluate(model, dataloader, accelerator) -> tuple[float, float]:
    """Mean loss per predicted token over ``dataloader`` on every process, and its perplexity.

    Each process sums its own losses and token counts; the sums are added over processes, so the
    result is the same whether each process holds a share of the evaluation set or all of it. A
    loss too large for ``exp`` gives an infinite perplexity, not an ``OverflowError``.
    """
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # summed loss, predicted tokens
    with torch.no_grad():
        for batch in dataloader:
            ids = batch["input_ids"].to(accelerator.device)
            loss = model(input_ids=ids, labels=ids).loss  # mean over the shifted tokens of the batch
            n = ids[:, 1:].numel()
            total += torch.stack([loss.double() * n, torch.tensor(n, dtype=torch.float64, device=total.device)])
    model.train()
    total = accelerator.reduce(total, reduction="sum")
    if total[1] == 0:
        raise ValueError("The evaluation set is empty: nothing to evaluate.")
    loss = (total[0] / total[1]).item()
    try:
        perplexity = math.exp(loss)
    except OverflowError:
        perplexity = float("inf")
    return loss, perplexity


# --------------------------------------------------------------------------------------------
# Generation: stop at the end of the function
# --------------------------------------------------------------------------------------------
# A line that starts at column 0 with one of these begins something new (the function or block the
# completion was writing is over). Decorators start a new definition too.
FUNCTION_END = re.compile(r"\n(?=(?:async\s+def|def|class)\s|if\s+__name__\b|#|@)")


def truncate_at_function_end(completion: str) -> str:
    """The completion up to (not including) the first line that begins a new top-level block.

    Only boundaries after a newline count, so a completion that itself starts with ``def`` keeps it.
    """
    match = FUNCTION_END.search(completion)
    return completion[: match.start() + 1] if match else completion


class FunctionEndCriteria(StoppingCriteria):
    """Stop each sequence of a batch once its completion has crossed the end of the function.

    ``prompt_length`` is the number of prompt tokens (``inputs["input_ids"].shape[1]``): only the
    tokens after it are decoded and searched. The boundary itself is generated, so cut the decoded
    completion with ``truncate_at_function_end``.
    """

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        completions = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :], skip_special_tokens=True)
        done = [FUNCTION_END.search(text) is not None for text in completions]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


# --------------------------------------------------------------------------------------------
# Model FLOPs utilisation
# --------------------------------------------------------------------------------------------
# Dense (no sparsity) tensor-core peak in TFLOP/s, in the half precision each GPU trains in, from
# NVIDIA's data sheets. Longer names first: "H100 PCIe" must match before "H100".
PEAK_TFLOPS = {
    "H100 PCIe": 756,  # bf16
    "H100": 989,  # SXM, bf16
    "H200": 989,  # bf16, the H100's compute with more memory
    "A100": 312,  # bf16, SXM and PCIe alike
    "A10G": 125,  # bf16 (the A10's data sheet figure)
    "L4": 121,  # bf16
    "V100": 125,  # fp16, SXM (PCIe: 112)
    "T4": 65,  # fp16; no bf16
}


def flops_per_token(n_params: int, n_layers: int, hidden_size: int, seq_length: int) -> float:
    """Training FLOPs per token, PaLM's estimate: 6N for the weights (forward 2N, backward 4N) plus
    12·L·d·T for attention's scores and weighted sums over a context of T tokens.

    ``n_params``: the parameters used in matrix products (leave out position embeddings, a lookup;
    a tied input embedding counts, since it is the output layer too).
    """
    return 6 * n_params + 12 * n_layers * hidden_size * seq_length


def peak_flops(device_name: str, precision: str) -> float | None:
    """The GPU's dense half-precision peak in FLOP/s, or None (CPU, fp32, or a GPU not in the table)."""
    if precision not in ("fp16", "bf16"):
        return None
    name = device_name.upper()
    for gpu, tflops in PEAK_TFLOPS.items():
        if gpu.upper() in name:
            return tflops * 1e12
    return None


def mfu(tokens_per_second: float, flops_per_token_: float, peak: float | None, n_devices: int = 1) -> float | None:
    """Share of the devices' peak that the model's FLOPs use (None when the peak is unknown)."""
    if peak is None or not tokens_per_second:
        return None
    return tokens_per_second * flops_per_token_ / (peak * n_devices)


def matmul_params(model) -> int:
    """Parameters counted by ``flops_per_token``: all but the position embeddings."""
    position = {id(p) for name, p in model.named_parameters() if name.endswith("wpe.weight")}
    return sum(p.numel() for p in model.parameters() if id(p) not in position)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
TRAINING_STATE = "training_state.json"  # written last into a checkpoint: step, tokens, evaluations
EVAL_SEQUENCES = 256
KEEP_CHECKPOINTS = 3


def run_config(args, profile, world_size: int) -> dict:
    """What defines a CLM run: a resume must use the same values."""
    return {
        "objective": "clm", "profile": profile.name, "corpus": args.corpus or profile.code_corpus,
        "tokenizer": args.tokenizer or "course:code", "max_files": args.max_files,
        "seq_length": args.seq_length or profile.seq_length, "batch_size": args.batch_size or profile.batch_size,
        "grad_accumulation": args.grad_accumulation or profile.grad_accumulation,
        "learning_rate": args.learning_rate or profile.learning_rate, "weight_decay": args.weight_decay,
        "warmup_steps": args.warmup_steps, "eval_sequences": args.eval_sequences, "seed": args.seed,
        "hidden_size": profile.hidden_size, "num_layers": profile.num_layers, "num_heads": profile.num_heads,
        "world_size": world_size,  # each process reads its own share of the files
    }


def _texts(corpus, rank: int, world_size: int, max_files: int | None, counts: dict):
    """The filtered code of this process's share of the files, re-iterable."""
    from nlp_course.data import filter_code, iter_filtered_code

    if hasattr(corpus, "column_names") and not hasattr(corpus, "num_rows"):  # a stream: filtered lazily
        import datasets.distributed

        shard = datasets.distributed.split_dataset_by_node(corpus, rank=rank, world_size=world_size)

        class Stream:  # each pass over it filters again, with a new set of hashes
            def __iter__(self):
                return (row["content"] for row in iter_filtered_code(shard, counts=counts))

        return Stream()
    kept, found = filter_code(corpus)
    counts.update(found)
    texts = list(kept["content"])[:max_files]
    return texts[rank::world_size]


def _fingerprint(ids: torch.Tensor) -> str:
    return hashlib.blake2b(ids.cpu().numpy().tobytes(), digest_size=8).hexdigest()


def _save_checkpoint(accelerator, output_dir: Path, step: int, state: dict) -> Path:
    """``save_state`` into a temporary folder, then renamed: a ``checkpoint-N`` folder is always whole."""
    final, tmp = output_dir / f"checkpoint-{step}", output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # model.safetensors, optimizer.bin, scheduler.bin, random_states_<rank>.pkl
    accelerator.wait_for_everyone()  # every process has written its random states
    if accelerator.is_main_process:
        (tmp / TRAINING_STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        from nlp_course.pretrain import checkpoints_in

        for old in checkpoints_in(output_dir)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def run_clm(args) -> dict:
    """Pretrain a GPT-2 on Python code with causal language modelling; return (and write) the metrics."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, gather_object
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, GPT2LMHeadModel, get_cosine_schedule_with_warmup, set_seed

    from nlp_course.data import ConstantLengthDataset, DataSourceError, HubUnavailableError, load_code_corpus
    from nlp_course.pretrain import RUN_CONFIG, PretrainError, check_run, write_atomically
    from nlp_course.runtime import detect_device
    from nlp_course.tokenization import course_tokenizer

    # ---- every check that can fail runs before anything long
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    checkpoint, profile, config_of_run = check_run(args, lambda profile: run_config(args, profile, world_size))
    if args.wandb:
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            raise PretrainError("--wandb needs the wandb package: pip install wandb (and wandb login), or leave --wandb out.")
    try:  # the corpus is resolved first: a missing Hub dataset offline fails here
        stream_limit = None if config_of_run["corpus"] == "stdlib" else args.max_files  # streams: read that many
        train_corpus = load_code_corpus(config_of_run["corpus"], split="train", max_files=stream_limit)
        eval_corpus = load_code_corpus(config_of_run["corpus"], split="validation")
    except (DataSourceError, HubUnavailableError, FileNotFoundError, ValueError) as err:
        raise PretrainError(f"--corpus: {err}") from err

    output_dir: Path = args.output_dir
    seq_length, batch_size = config_of_run["seq_length"], config_of_run["batch_size"]
    grad_accumulation, max_steps = config_of_run["grad_accumulation"], args.max_steps or profile.max_steps
    eval_steps = args.eval_steps or profile.eval_steps
    save_steps = args.save_steps or eval_steps
    device = detect_device()
    report_to = ["tensorboard"] + (["wandb"] if args.wandb else [])
    accelerator = Accelerator(
        cpu=device.device == "cpu",  # on CPU, torchrun's processes join up (gloo)
        mixed_precision={"fp16": "fp16", "bf16": "bf16"}.get(device.precision, "no"),
        gradient_accumulation_steps=grad_accumulation,
        step_scheduler_with_optimizer=False,  # we step the schedule once per optimizer step, whatever the world size
        log_with=report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "runs")),
    )
    rank, world_size = accelerator.process_index, accelerator.num_processes
    if checkpoint is not None and not (checkpoint / f"random_states_{rank}.pkl").is_file():
        raise PretrainError(f"{checkpoint} was written by fewer processes than {world_size}; resume with as many as wrote it.")

    with accelerator.main_process_first():  # the tokenizer is trained (and saved) once, then loaded
        try:
            tokenizer = (AutoTokenizer.from_pretrained(args.tokenizer) if args.tokenizer
                         else course_tokenizer("code", profile, verbose=accelerator.is_main_process))
        except OSError as err:
            raise PretrainError(f"--tokenizer {args.tokenizer!r} could not be loaded: {err}") from err
    if tokenizer.eos_token_id is None:
        raise PretrainError("The tokenizer has no end-of-text token; a causal LM joins files with one (family='gpt2').")

    # ---- data: each process packs its own share of the files; a fixed evaluation set
    counts: dict = {}
    train_texts = _texts(train_corpus, rank, world_size, args.max_files, counts)
    if isinstance(train_texts, list) and not train_texts:
        raise PretrainError(f"No training file left for process {rank} of {world_size} after filtering; "
                            "use fewer processes or more files (--max-files).")
    eval_texts = _texts(eval_corpus, 0, 1, None, {})
    eval_blocks = []
    for block in ConstantLengthDataset(tokenizer, eval_texts, seq_length, num_of_sequences=args.eval_sequences):
        eval_blocks.append(block)
        if len(eval_blocks) == args.eval_sequences:
            break
    if len(eval_blocks) == 0:
        raise PretrainError(f"The validation files are too small for one sequence of {seq_length} tokens; lower --seq-length.")
    train_data = ConstantLengthDataset(tokenizer, train_texts, seq_length, infinite=True, shuffle=True, seed=args.seed)
    # own generators: creating a DataLoader iterator then draws nothing from the global generator, whose
    # state (dropout) the checkpoints save: a resumed run draws exactly what the uninterrupted one drew
    train_loader = torch.utils.data.DataLoader(train_data, batch_size=batch_size,
                                               generator=torch.Generator().manual_seed(args.seed))
    eval_loader = torch.utils.data.DataLoader(eval_blocks[rank::world_size], batch_size=batch_size,
                                              generator=torch.Generator().manual_seed(args.seed))

    # ---- model, optimizer, schedule
    set_seed(args.seed)
    model = GPT2LMHeadModel(gpt2_config(tokenizer, profile, seq_length))
    n_params, vocab_size = sum(p.numel() for p in model.parameters()), model.config.vocab_size
    per_token = flops_per_token(matmul_params(model), profile.num_layers, profile.hidden_size, seq_length)
    optimizer = torch.optim.AdamW(weight_decay_groups(model, args.weight_decay), lr=config_of_run["learning_rate"],
                                  betas=(0.9, 0.95), eps=1e-8, fused=device.device == "cuda")
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, max_steps // 10)
    scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup, num_training_steps=max_steps)
    if args.compile:
        model = torch.compile(model)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    initial_path = output_dir / "initial_metrics.json"
    if checkpoint is None:
        initial_eval_loss, _ = evaluate(model, eval_loader, accelerator)
        if accelerator.is_main_process:
            output_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(output_dir / RUN_CONFIG, json.dumps(config_of_run, indent=2))
            write_atomically(initial_path, json.dumps({"initial_eval_loss": initial_eval_loss}))
        start_step, evaluations = 0, [{"step": 0, "eval_loss": initial_eval_loss}]
    else:
        # accelerate 1.15 reads the weights with safetensors and the optimizer, schedule and random
        # states with torch.load(weights_only=True) (its own default, asked for here explicitly): no
        # pickled code runs. Objects registered with register_for_checkpointing would be read with
        # weights_only=False, so none is registered.
        accelerator.load_state(str(checkpoint), load_kwargs={"weights_only": True})
        state = json.loads((checkpoint / TRAINING_STATE).read_text(encoding="utf-8"))
        start_step, evaluations = state["step"], state["evaluations"]
        initial_eval_loss = (json.loads(initial_path.read_text(encoding="utf-8"))["initial_eval_loss"]
                             if initial_path.is_file() else None)
    accelerator.init_trackers("clm", config={k: v for k, v in config_of_run.items() if v is not None})

    # ---- the loop
    tokens_per_step = batch_size * seq_length * grad_accumulation * world_size
    batches = iter(train_loader)
    skip = start_step * grad_accumulation  # a resumed run skips the batches already trained on
    for _ in tqdm(range(skip), desc="skipping the batches already seen", disable=not skip or not accelerator.is_local_main_process):
        next(batches)
    first_batch = None
    model.train()
    step, train_seconds = start_step, 0.0
    warm = start_step + 1  # the session's first step (compilation, first buffer of data) is not timed
    progress = tqdm(total=max_steps, initial=start_step, desc="training", disable=not accelerator.is_local_main_process)
    started = time.perf_counter()
    while step < max_steps:
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
        if step % max(1, eval_steps // 4) == 0 or step == max_steps:
            accelerator.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0],
                             "train/tokens": step * tokens_per_step}, step=step)
        if step % eval_steps == 0 or step == max_steps or step % save_steps == 0:
            train_seconds += time.perf_counter() - started
            if step % eval_steps == 0 or step == max_steps:
                eval_loss, perplexity = evaluate(model, eval_loader, accelerator)
                evaluations.append({"step": step, "eval_loss": eval_loss})
                accelerator.log({"eval/loss": eval_loss, "eval/perplexity": perplexity}, step=step)
                progress.set_postfix(eval_loss=f"{eval_loss:.3f}")
            if step % save_steps == 0:
                _save_checkpoint(accelerator, output_dir, step,
                                 {"step": step, "train_tokens": step * tokens_per_step, "evaluations": evaluations})
            started = time.perf_counter()
    progress.close()
    if evaluations[-1]["step"] != step:  # resumed at the end from a checkpoint saved between evaluations
        evaluations.append({"step": step, "eval_loss": evaluate(model, eval_loader, accelerator)[0]})
    final_eval_loss = evaluations[-1]["eval_loss"]

    timed_tokens = (step - warm) * tokens_per_step
    tokens_per_second = timed_tokens / train_seconds if step > warm and train_seconds > 0 else None
    peak = peak_flops(device.name, device.precision)
    metrics = {
        "objective": "clm",
        "profile": profile.name,
        "initial_eval_loss": initial_eval_loss,
        "final_eval_loss": final_eval_loss,
        "final_perplexity": math.exp(final_eval_loss) if final_eval_loss < 700 else float("inf"),
        "steps": step,
        "resumed_from_step": start_step,
        "train_tokens": step * tokens_per_step,
        "tokens_per_second": tokens_per_second,
        "world_size": world_size,
        "flops_per_token": per_token,
        "peak_tflops": peak / 1e12 if peak else None,
        "mfu": mfu(tokens_per_second, per_token, peak, world_size),
        "parameters": n_params,
        "vocab_size": vocab_size,
        "seq_length": seq_length,
        "eval_sequences": len(eval_blocks),
        "files": counts,  # this process's filter table (process 0's in metrics.json)
        "first_batch_digests": gather_object([first_batch]),  # one per process: each reads its own files
        "evaluations": evaluations,
        "device": device.name,
        "precision": device.precision,
        "compile": bool(args.compile),
        "seed": args.seed,
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final_dir, tmp_dir = output_dir / "final", output_dir / ".final.tmp"
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
        accelerator.unwrap_model(model, keep_torch_compile=False).save_pretrained(tmp_dir)  # model.safetensors
        tokenizer.save_pretrained(tmp_dir)
        if final_dir.exists():
            shutil.rmtree(final_dir)
        tmp_dir.rename(final_dir)
        write_atomically(output_dir / "metrics.json", json.dumps(metrics, indent=2))  # written last
        print(json.dumps({k: v for k, v in metrics.items() if k not in ("evaluations", "first_batch_digests")}, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()  # closes the trackers and the process group
    return metrics

