"""Pretraining from the command line: the training code of notebooks 04 and 06, headless, for long runs.

    python -m nlp_course.pretrain mlm --output-dir runs/roberta-toy --profile toy
    python -m nlp_course.pretrain mlm --output-dir runs/roberta-toy --resume          # after a crash
    torchrun --nproc_per_node 2 -m nlp_course.pretrain mlm --output-dir runs/roberta-2p
    python -m nlp_course.pretrain electra --output-dir runs/electra-toy --profile toy  # ELECTRA, same options
    python -m nlp_course.pretrain clm --output-dir runs/gpt2-code-toy --profile toy   # GPT-2 on Python code
    torchrun --nproc_per_node 2 -m nlp_course.pretrain clm --output-dir runs/gpt2-code-2p

It writes checkpoints (safetensors weights) every ``--save-steps``, TensorBoard logs in
``<output-dir>/runs/``, the final model and tokenizer in ``<output-dir>/final``, and ``metrics.json``
with ``initial_eval_loss``, ``final_eval_loss``, ``final_perplexity``, ``steps``, ``train_tokens``,
``tokens_per_second`` and ``world_size``. Masks are a pure function of the seed, the epoch and the
example, so a run killed and resumed ends where the uninterrupted run ends.

``electra`` is notebook 05's: ``mlm``'s corpus, tokenizer, blocks, options and checkpoints, with a
generator and a discriminator trained together (``nlp_course.electra.run_electra``) and
``--generator-ratio`` and ``--discriminator-weight``; it writes ``final/discriminator/`` and
``final/generator/`` and adds ``discriminator_accuracy``, ``discriminator_auc``, ``replaced_fraction``
and ``generator_accuracy`` (held-out text) to ``metrics.json``. Blocks are 128 tokens by default
(ELECTRA-Small's), or the profile's if shorter.
``mlm`` is notebook 04's model, collator and training arguments with ``Trainer`` (``nlp_course.mlm.run_mlm``); the corpus is used
as it comes, in whole documents (the notebook's perplexity sampling is a lesson, not applied here).
``clm`` is notebook 06's Accelerate loop (``nlp_course.clm.run_clm``): CodeParrot's filters,
constant-length packing, a GPT-2, the same ``metrics.json`` keys plus ``mfu`` (model FLOPs
utilisation, null on a CPU or a GPU whose peak is not known); its checkpoints are ``accelerator.save_state``
folders. On CPU, several processes work with ``torchrun`` (gloo), each on its own share of the
files; ``accelerate launch --cpu --num_processes 2`` starts only one process.

This module is the command line only: its parser, and a dispatch to the run of each objective with
a ``nlp_course.runs.RunConfig`` built from the options. ``--block-size`` (mlm) and ``--seq-length``
(clm) are one setting, ``seq_length``, and either spelling works for both.

Taught in: 04_pretraining_roberta, 05_pretraining_electra and 06_pretraining_gpt2_code.
"""

from __future__ import annotations

import argparse
import sys

from nlp_course.clm import run_clm
from nlp_course.electra import run_electra
from nlp_course.errors import output_dir_option, run_command
from nlp_course.mlm import run_mlm
from nlp_course.runs import make_run_config

RUNS = {"mlm": run_mlm, "electra": run_electra, "clm": run_clm}


def _add_run_options(sub, tokenizer_help: str) -> None:
    """The options both objectives share: where the run goes, how long, resuming, the tokenizer."""
    sub.add_argument("--output-dir", type=output_dir_option, required=True, help="checkpoints, logs, final model, metrics.json")
    sub.add_argument("--profile", help="toy, colab or full (default: $NLP_COURSE_PROFILE, else detected)")
    sub.add_argument("--max-steps", type=int, help="optimizer steps (default: the profile's)")
    sub.add_argument("--save-steps", type=int, help="steps between checkpoints (default: the eval steps)")
    sub.add_argument("--eval-steps", type=int, help="steps between evaluations (default: the profile's)")
    sub.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                     help="continue from the last checkpoint in --output-dir, or from the one given")
    sub.add_argument("--tokenizer", help=f"a folder saved with save_pretrained (default: {tokenizer_help})")
    sub.add_argument("--learning-rate", type=float, help="peak learning rate (default: the profile's)")
    sub.add_argument("--seed", type=int, help="default 42")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nlp_course.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="objective", required=True)
    mlm = sub.add_parser("mlm", help="masked language modelling: a RoBERTa from scratch on the Spanish corpus")
    _add_run_options(mlm, "the course's Spanish tokenizer")
    mlm.add_argument("--corpus", help="a course corpus name, a local file or folder, or a Hub id (default: the profile's)")
    mlm.add_argument("--corpus-config", help="the Hub dataset's configuration, e.g. 20231101.es")
    mlm.add_argument("--max-documents", type=int, help="read at most this many documents")
    mlm.add_argument("--block-size", "--seq-length", dest="seq_length", type=int,
                     help="tokens per training block (default: the profile's seq_length)")
    mlm.add_argument("--batch-size", type=int, help="blocks per device per step (default: the profile's)")
    mlm.add_argument("--eval-fraction", type=float, help="share of documents held out (default 0.1)")

    electra = sub.add_parser("electra", help="replaced-token detection: an ELECTRA (generator + discriminator) "
                                             "from scratch on the Spanish corpus")
    _add_run_options(electra, "the course's Spanish tokenizer")
    for action in mlm._actions:  # the corpus and data options are mlm's
        if action.dest in ("corpus", "corpus_config", "max_documents", "seq_length", "batch_size", "eval_fraction"):
            electra._add_action(action)
    electra.add_argument("--generator-ratio", type=float,
                         help="the generator's width as a share of the discriminator's (default 0.25; the paper's best 0.25-0.5)")
    electra.add_argument("--discriminator-weight", type=float,
                         help="lambda, the weight of the discriminator's loss (default 50, as the paper)")

    clm = sub.add_parser("clm", help="causal language modelling: a GPT-2 from scratch on Python code (an Accelerate loop)")
    _add_run_options(clm, "the course's code tokenizer")
    clm.add_argument("--corpus", help="'stdlib' (this Python's standard library) or a Hub id with path and content "
                                      "columns, streamed (default: the profile's code corpus)")
    clm.add_argument("--max-files", "--max-documents", dest="max_documents", type=int,
                     help="train on at most this many files (stdlib: after filtering; a stream: the first ones read)")
    clm.add_argument("--seq-length", "--block-size", dest="seq_length", type=int,
                     help="tokens per sequence, the context (default: the profile's)")
    clm.add_argument("--batch-size", type=int, help="sequences per device per micro-batch (default: the profile's)")
    clm.add_argument("--grad-accumulation", type=int, help="micro-batches per optimizer step (default: the profile's)")
    clm.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: GPT-3's 0.1)")
    clm.add_argument("--warmup-steps", type=int, help="linear warmup before the cosine decay (default: 10 %% of the steps)")
    clm.add_argument("--eval-sequences", type=int, help="sequences in the fixed evaluation set (default 256)")
    clm.add_argument("--compile", action="store_true", help="torch.compile the model (worth it on a GPU, for long runs)")
    clm.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs wandb installed)")
    return parser


def run(args: argparse.Namespace) -> dict:
    config = make_run_config(**vars(args))
    return RUNS[config.objective](config)


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
