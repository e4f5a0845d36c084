"""Benchmarks an instructor runs to know what a machine will take.

    python -m nlp_course.bench tokenizers [--megabytes 4] [--repeats 3] [--json results.json]
    python -m nlp_course.bench packing [--megabytes 4] [--seq-length 1024] [--repeats 3]

``tokenizers`` measures, on this machine and offline: training throughput (MB of text per second)
of each kind of tokenizer on Spanish prose and on Python code; encoding throughput batched and one
text at a time; Python's own ``tokenize`` module as a code pre-tokenizer against the Rust byte-level
pre-tokenizer on the same files; and the overhead of ``nlp_course.tokenization.train_tokenizer`` over
calling `tokenizers` directly on the same input (goal: under 10 %). Speeds are reported as ratios
measured in one run, since absolute times vary from machine to machine and run to run.

``packing`` measures the tokens per second that come out of constant-length packing
(``nlp_course.packing.ConstantLengthDataset``: tokenize a buffer of texts joined by the end-of-text
token, cut it into sequences, yield tensors) against ``datasets.map``'s tokenize-then-group
(``nlp_course.packing.group_texts``) on the same Python files with the same tokenizer, and the
share of tokens each drops.

Taught in: 03_tokenizers (section "Speed") and 06_pretraining_gpt2_code (packing).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
import tokenize as py_tokenize
from collections.abc import Callable

import datasets
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm

from nlp_course.code_corpus import iter_python_files
from nlp_course.data import load_corpus
from nlp_course.packing import ConstantLengthDataset, estimate_chars_per_token, group_texts
from nlp_course.tokenization import KINDS, train_tokenizer

MB = 1_000_000
_clock = time.perf_counter  # the clock of every timing below; the tests put a scripted one in its place


def _timed(fn: Callable[[], object]) -> float:
    start = _clock()
    fn()
    return _clock() - start


def _size(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / MB


def _code_sample(megabytes: float) -> list[str]:
    texts, total = [], 0
    for _, text in iter_python_files():
        texts.append(text)
        total += len(text.encode("utf-8"))
        if total >= megabytes * MB:
            break
    return texts


def _python_tokenize(texts: list[str]) -> int:
    n = 0
    for text in texts:
        try:
            n += sum(1 for _ in py_tokenize.generate_tokens(io.StringIO(text).readline))
        except (py_tokenize.TokenError, SyntaxError, IndentationError):
            pass
    return n


def _direct_bpe(texts: list[str], vocab_size: int):
    """Byte-level BPE with `tokenizers` alone: what train_tokenizer wraps."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def bench_tokenizers(megabytes: float = 4.0, repeats: int = 10, vocab_size: int = 8_000, log=print) -> dict:
    spanish = list(load_corpus("corpus_es")["text"])
    code = _code_sample(megabytes)
    # The Spanish corpus is small: repeated to the size of the code sample so that the timing
    # measures throughput, not the fixed cost of starting a training run
    spanish = spanish * max(1, round(megabytes * MB / sum(len(t.encode("utf-8")) for t in spanish)))
    corpora = {"spanish prose": spanish, "python code": code}
    results: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "corpora_mb": {name: round(_size(texts), 3) for name, texts in corpora.items()},
        "vocab_size": vocab_size,
        "train_mb_per_s": {},
    }
    log(f"Corpora: Spanish prose {results['corpora_mb']['spanish prose']} MB (the course corpus, repeated), "
        f"Python code {results['corpora_mb']['python code']} MB (standard library); vocabulary {vocab_size:,}; "
        f"{os.cpu_count()} CPUs")

    # 1. Training throughput of each kind
    steps = [(kind, name) for name in corpora for kind in KINDS]
    for kind, name in tqdm(steps, desc="training", leave=False):
        texts = corpora[name]
        seconds = _timed(lambda texts=texts, kind=kind: train_tokenizer(texts, kind, vocab_size, min_frequency=2))
        results["train_mb_per_s"][f"{kind} / {name}"] = round(_size(texts) / seconds, 3)

    # 2. Encoding throughput: batched vs one text at a time, with the code tokenizer on code
    tokenizer = train_tokenizer(code, "bpe", vocab_size, family="gpt2")
    size = _size(code)
    batched = min(_timed(lambda: tokenizer(code)) for _ in range(repeats))
    one_by_one = min(_timed(lambda: [tokenizer(t) for t in code]) for _ in range(repeats))
    results["encode_mb_per_s"] = {"batched": round(size / batched, 2), "one by one": round(size / one_by_one, 2)}
    results["batched_speedup"] = round(one_by_one / batched, 2)

    # 3. Python's tokenize module (pre-tokenizing only) vs the Rust byte-level pre-tokenizer called
    # file by file, and vs the whole Rust encoding (pre-tokenizer + BPE + offsets) batched
    backend = tokenizer.backend_tokenizer
    python_seconds = min(_timed(lambda: _python_tokenize(code)) for _ in range(repeats))
    rust_pre = min(_timed(lambda: [backend.pre_tokenizer.pre_tokenize_str(t) for t in code]) for _ in range(repeats))
    rust_full = min(_timed(lambda: backend.encode_batch(code)) for _ in range(repeats))
    results["pretokenize_mb_per_s"] = {
        "python tokenize module": round(size / python_seconds, 2),
        "rust pre-tokenizer only": round(size / rust_pre, 2),
        "rust full encoding": round(size / rust_full, 2),
    }
    results["rust_full_vs_python_tokenize"] = round(python_seconds / rust_full, 2)

    # 4. Overhead of train_tokenizer over tokenizers, same input; the order alternates each round
    # so that neither side always runs on a warmer (or busier) machine
    ours, direct = [], []
    for i in tqdm(range(repeats), desc="overhead", leave=False):
        pair = [("direct", lambda: _direct_bpe(code, vocab_size)),
                ("ours", lambda: train_tokenizer(code, "bpe", vocab_size, family="gpt2"))]
        for name, work in (pair if i % 2 == 0 else pair[::-1]):
            (direct if name == "direct" else ours).append(_timed(work))
    ratios = sorted(o / d - 1 for o, d in zip(ours, direct, strict=True))  # one ratio per adjacent pair
    results["train_tokenizer_seconds"] = round(statistics.median(ours), 3)
    results["direct_tokenizers_seconds"] = round(statistics.median(direct), 3)
    results["train_tokenizer_overhead"] = round(statistics.median(ratios), 4)
    results["train_tokenizer_overhead_range"] = [round(ratios[0], 4), round(ratios[-1], 4)]
    return results


def format_tokenizer_results(r: dict) -> str:
    lines = ["", "Training throughput (MB of text per second)"]
    lines += [f"  {k:<28} {v:8.2f}" for k, v in r["train_mb_per_s"].items()]
    lines += ["", "Encoding Python code with the code tokenizer (MB/s)"]
    lines += [f"  {k:<28} {v:8.2f}" for k, v in r["encode_mb_per_s"].items()]
    lines += [f"  batched is {r['batched_speedup']}x faster than one text at a time"]
    lines += ["", "Python's tokenize module vs Rust tokenizers on the same code (MB/s)"]
    lines += [f"  {k:<28} {v:8.2f}" for k, v in r["pretokenize_mb_per_s"].items()]
    lines += [f"  the whole Rust encoding runs at {r['rust_full_vs_python_tokenize']}x the speed of tokenize's pre-tokenizing alone"]
    overhead, (low, high) = r["train_tokenizer_overhead"], r["train_tokenizer_overhead_range"]
    lines += ["", "Overhead of train_tokenizer over calling tokenizers directly (byte-level BPE, same input)",
              f"  {r['train_tokenizer_seconds']:.2f} s vs {r['direct_tokenizers_seconds']:.2f} s (medians); median of the "
              f"paired ratios {overhead:+.1%} ({'within' if overhead < 0.10 else 'OVER'} the 10 % goal)",
              f"  single pairs ranged from {low:+.1%} to {high:+.1%}: on a busy or shared machine, use more --repeats"]
    return "\n".join(lines)


def _pack_constant_length(tokenizer, texts: list[str], seq_length: int, chars_per_token: float) -> int:
    packed = ConstantLengthDataset(tokenizer, texts, seq_length, chars_per_token=chars_per_token)
    return sum(sequence["input_ids"].numel() for sequence in packed)


def _pack_with_map(tokenizer, texts: list[str], seq_length: int) -> int:
    """Notebook 04's way: ``map`` a batched tokenizer (end-of-text appended), then ``map(group_texts)``."""
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        return {"input_ids": [ids + [eos] for ids in tokenizer(batch["content"], add_special_tokens=False)["input_ids"]]}

    files = datasets.Dataset.from_dict({"content": texts})
    tokenized = files.map(tokenize, batched=True, remove_columns=["content"], load_from_cache_file=False)
    blocks = tokenized.map(group_texts, batched=True, fn_kwargs={"block_size": seq_length}, load_from_cache_file=False)
    blocks = blocks.with_format("torch")  # tensors, as the training loop gets them
    return sum(row["input_ids"].numel() for row in blocks)


def bench_packing(megabytes: float = 4.0, seq_length: int = 1024, repeats: int = 3, vocab_size: int = 8_000,
                  log=print) -> dict:
    """Tokens per second out of each packing, best of ``repeats``, the two alternating; and tokens dropped."""
    code = _code_sample(megabytes)
    tokenizer = train_tokenizer(code, "bpe", vocab_size, family="gpt2")
    total = sum(len(ids) + 1 for ids in tokenizer(code, add_special_tokens=False)["input_ids"])
    chars_per_token = estimate_chars_per_token(tokenizer, code)  # estimated once, outside the timing
    log(f"Python code {_size(code):.2f} MB ({len(code)} files, {total:,} tokens), sequences of {seq_length} "
        f"tokens, {os.cpu_count()} CPUs")
    seconds: dict[str, list[float]] = {"constant_length": [], "datasets_map": []}
    out: dict[str, int] = {}
    work = {"constant_length": lambda: _pack_constant_length(tokenizer, code, seq_length, chars_per_token),
            "datasets_map": lambda: _pack_with_map(tokenizer, code, seq_length)}
    progress_bars = datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        for i in range(repeats):
            for name in (list(work) if i % 2 == 0 else list(work)[::-1]):
                start = _clock()
                out[name] = work[name]()
                seconds[name].append(_clock() - start)
    finally:
        if progress_bars:
            datasets.enable_progress_bars()
    best = {name: min(times) for name, times in seconds.items()}
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "megabytes": round(_size(code), 3),
        "seq_length": seq_length,
        "tokens": total,
        "tokens_out": out,
        "tokens_lost": {name: round(1 - n / total, 5) for name, n in out.items()},
        "seconds": {name: round(t, 6) for name, t in best.items()},  # to the microsecond: ratios recompute exactly
        "tokens_per_second": {name: round(out[name] / t) for name, t in best.items()},
        "constant_length_vs_map": round((out["constant_length"] / best["constant_length"])
                                        / (out["datasets_map"] / best["datasets_map"]), 3),
    }


def format_packing_results(r: dict) -> str:
    names = {"constant_length": "ConstantLengthDataset", "datasets_map": "datasets.map + group_texts"}
    lines = ["", f"Packing {r['megabytes']} MB of Python ({r['tokens']:,} tokens) into sequences of {r['seq_length']} tokens"]
    lines += [f"  {names[k]:<28} {v:>12,} tokens/s   {r['tokens_lost'][k]:.2%} of the tokens dropped"
              for k, v in r["tokens_per_second"].items()]
    lines += [f"  ConstantLengthDataset runs at {r['constant_length_vs_map']}x the throughput of datasets.map"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp_course.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    tok = sub.add_parser("tokenizers", help="tokenizer training and encoding throughput")
    tok.add_argument("--megabytes", type=float, default=4.0, help="size of the Python code sample (default 4)")
    tok.add_argument("--repeats", type=int, default=10, help="repeats of the timed comparisons (default 10)")
    tok.add_argument("--vocab-size", type=int, default=8_000)
    tok.add_argument("--json", type=argparse.FileType("w"), help="also write the results as JSON to this file")
    pack = sub.add_parser("packing", help="constant-length packing against datasets.map + group_texts")
    pack.add_argument("--megabytes", type=float, default=4.0, help="size of the Python code sample (default 4)")
    pack.add_argument("--seq-length", type=int, default=1024, help="tokens per sequence (default 1024)")
    pack.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3; the best counts)")
    pack.add_argument("--vocab-size", type=int, default=8_000)
    pack.add_argument("--json", type=argparse.FileType("w"), help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.megabytes <= 0 or args.repeats < 1:
        parser.error("--megabytes must be positive and --repeats at least 1")
    if args.benchmark == "packing" and args.seq_length < 2:
        parser.error("--seq-length must be at least 2")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    if args.benchmark == "packing":
        results = bench_packing(args.megabytes, args.seq_length, args.repeats, args.vocab_size)
        print(format_packing_results(results))
    else:
        results = bench_tokenizers(args.megabytes, args.repeats, args.vocab_size)
        print(format_tokenizer_results(results))
    if args.json:
        json.dump(results, args.json, indent=2)
        print(f"\nwritten: {args.json.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
