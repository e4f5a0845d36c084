"""A pretraining run: its configuration, resolved once, and what every objective does around training.

- ``RunConfig``: a frozen record of everything a run is, from the profile and the command line's
  options (an option left out takes the profile's value; an option given, even 0, is used as given).
  ``identity()`` is what a resume must repeat; it is saved as ``run_config.json``.
- ``make_run_config(objective, output_dir, profile, **options)``: checks the options and builds it.
- ``prepare_run``: every check that can fail before anything long (existing checkpoints, a resume
  with other settings, a tokenizer folder); returns the checkpoint to resume from, if any.
- ``course_model``: a model a later chapter needs, found where its notebook saved it or trained now.
- ``load_tokenizer``, ``start_run``, ``initial_eval_loss``, ``finish_run``: the tokenizer, the files a
  run writes before training (``run_config.json``, ``initial_metrics.json``) and after it (the final
  model in ``final/``, then ``metrics.json``, written last and whole).

The training itself is in ``nlp_course.mlm``, ``nlp_course.electra`` and ``nlp_course.clm``; the command line in
``nlp_course.pretrain``.

Taught in: 04_pretraining_roberta and 06_pretraining_gpt2_code (their command-line sections).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer

from nlp_course.checkpoints import LAYOUTS, check_checkpoint, checkpoints_in, layout_of
from nlp_course.errors import PretrainError, UnknownProfileError
from nlp_course.files import atomic_folder, check_writable, interrupts_deferred, write_atomically
from nlp_course.profiles import Profile, get_profile
from nlp_course.tokenization import course_tokenizer

RUN_CONFIG = "run_config.json"
INITIAL_METRICS = "initial_metrics.json"
OBJECTIVES = ("mlm", "electra", "clm")
COURSE_TOKENIZER = {"mlm": "es", "electra": "es", "clm": "code"}  # the course tokenizer each objective uses by default
# Options that may change between a run and its resume: how long, how often, where, how fast
RESUMABLE = ("output_dir", "resume", "max_steps", "save_steps", "eval_steps", "compile", "wandb")


@dataclass(frozen=True)
class RunConfig:
    """Everything a pretraining run is. Sizes come from the profile; the rest from options or the profile."""

    objective: str  # "mlm" (a RoBERTa, Trainer), "electra" (generator + discriminator, Trainer) or "clm" (a GPT-2 on code, an Accelerate loop)
    output_dir: Path
    profile: Profile
    resume: str | None  # None, "latest" or a checkpoint folder
    corpus: str  # a course name, a local path or a Hub id; "stdlib" for code
    corpus_config: str | None
    tokenizer: str | None  # a saved tokenizer folder; None: the course tokenizer for the objective
    max_documents: int | None  # documents (code: files) read at most; None: all
    seq_length: int  # tokens per training block (mlm) or sequence (clm)
    batch_size: int  # per device and micro-batch
    grad_accumulation: int
    learning_rate: float
    weight_decay: float
    warmup_steps: int | None  # clm: None is 10 % of the steps (mlm warms up over 6 %)
    max_steps: int
    eval_steps: int
    save_steps: int
    eval_fraction: float  # mlm: share of documents held out
    eval_sequences: int  # clm: sequences in the fixed evaluation set
    compile: bool
    wandb: bool
    seed: int
    hidden_size: int
    num_layers: int
    num_heads: int
    world_size: int  # processes (torchrun); clm: each reads its own share of the files
    generator_ratio: float | None = None  # electra: the generator's width as a share of the discriminator's
    discriminator_weight: float | None = None  # electra: lambda, the weight of the discriminator's loss

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer or f"course:{COURSE_TOKENIZER[self.objective]}"

    def identity(self) -> dict:
        """What defines the run: saved as ``run_config.json``, and a resume must match it."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in RESUMABLE}
        return {**values, "profile": self.profile.name, "tokenizer": self.tokenizer_name}


POSITIVE = ("max_steps", "save_steps", "eval_steps", "batch_size", "seq_length", "max_documents",
            "grad_accumulation", "eval_sequences")


def _check_numbers(options: dict) -> None:
    for name in POSITIVE:
        value = options.get(name)
        if value is not None and value < 1:
            spelled = {"seq_length": "--seq-length (--block-size)", "max_documents": "--max-documents (--max-files)"}
            raise PretrainError(f"{spelled.get(name, '--' + name.replace('_', '-'))} must be a positive integer, got {value}.")
    if options.get("seq_length") is not None and options["seq_length"] < 2:
        raise PretrainError(f"--seq-length must be at least 2 (a token and the next one to predict), got {options['seq_length']}.")
    if options.get("eval_fraction") is not None and not 0 < options["eval_fraction"] < 0.5:
        raise PretrainError(f"--eval-fraction must be between 0 and 0.5, got {options['eval_fraction']}.")
    if options.get("learning_rate") is not None and not 0 < options["learning_rate"] < 1:
        raise PretrainError(f"--learning-rate must be between 0 and 1, got {options['learning_rate']}.")
    if options.get("weight_decay") is not None and not 0 <= options["weight_decay"] < 1:
        raise PretrainError(f"--weight-decay must be between 0 and 1, got {options['weight_decay']}.")
    if options.get("generator_ratio") is not None and not 0 < options["generator_ratio"] <= 1:
        raise PretrainError(f"--generator-ratio must be above 0 and at most 1 (the paper's best: 0.25 to 0.5), "
                            f"got {options['generator_ratio']}.")
    if options.get("discriminator_weight") is not None and not options["discriminator_weight"] > 0:
        raise PretrainError(f"--discriminator-weight must be positive (the paper's: 50), got {options['discriminator_weight']}.")
    if options.get("warmup_steps") is not None and options["warmup_steps"] < 0:
        raise PretrainError(f"--warmup-steps must be 0 or more, got {options['warmup_steps']}.")


def make_run_config(objective: str, output_dir: Path, profile: str | Profile | None = None, **options) -> RunConfig:
    """A ``RunConfig`` from the command line's options, by name (``None``: the default), checked.

    Unknown option names are an error, so a caller cannot misspell one silently.
    """
    if objective not in OBJECTIVES:
        raise PretrainError(f"Unknown objective {objective!r}; choose one of {OBJECTIVES}.")
    _check_numbers(options)
    try:
        profile = profile if isinstance(profile, Profile) else get_profile(profile)
    except UnknownProfileError as err:
        raise PretrainError(str(err)) from err

    def option(name, default):
        value = options.pop(name, None)
        return default if value is None else value

    mlm = objective in ("mlm", "electra")  # both pretrain an encoder on the Spanish corpus
    electra = objective == "electra"
    eval_steps = option("eval_steps", profile.eval_steps)
    config = RunConfig(
        objective=objective,
        output_dir=Path(output_dir),
        profile=profile,
        resume=option("resume", None),
        corpus=option("corpus", profile.corpus_es if mlm else profile.code_corpus),
        corpus_config=option("corpus_config", profile.corpus_es_config if mlm else None),
        tokenizer=option("tokenizer", None),
        max_documents=option("max_documents", profile.max_documents if mlm else None),
        # ELECTRA-Small's sequences are 128 tokens
        seq_length=option("seq_length", min(profile.seq_length, 128) if electra else profile.seq_length),
        batch_size=option("batch_size", profile.batch_size),
        grad_accumulation=option("grad_accumulation", profile.grad_accumulation),
        learning_rate=option("learning_rate", profile.learning_rate),
        weight_decay=option("weight_decay", 0.01 if mlm else 0.1),  # RoBERTa's and GPT-3's
        warmup_steps=option("warmup_steps", None),
        # ELECTRA's shorter blocks: the same budget of tokens as the profile's steps (notebook 05 does the same)
        max_steps=option("max_steps", profile.max_steps * profile.seq_length // min(profile.seq_length, 128)
                         if electra else profile.max_steps),
        eval_steps=eval_steps,
        save_steps=option("save_steps", eval_steps),
        eval_fraction=option("eval_fraction", 0.1),
        eval_sequences=option("eval_sequences", 256),
        compile=bool(option("compile", False)),
        wandb=bool(option("wandb", False)),
        seed=option("seed", 42),
        hidden_size=profile.hidden_size,
        num_layers=profile.num_layers,
        num_heads=profile.num_heads,
        world_size=option("world_size", int(os.environ.get("WORLD_SIZE", "1"))),
        generator_ratio=option("generator_ratio", 0.25) if electra else None,
        discriminator_weight=option("discriminator_weight", 50.0) if electra else None,
    )
    if options:
        raise PretrainError(f"Unknown option(s) for a pretraining run: {', '.join(sorted(options))}.")
    return config


# --------------------------------------------------------------------------------------------
# Checks that run before anything long
# --------------------------------------------------------------------------------------------
def resolve_resume(config: RunConfig) -> Path | None:
    """The checkpoint to resume from (checked whole and readable), or None for a new run."""
    output_dir = config.output_dir
    if output_dir.exists() and not output_dir.is_dir():
        raise PretrainError(f"--output-dir {str(output_dir)!r} is a file; give a folder.")
    existing = checkpoints_in(output_dir) if output_dir.is_dir() else []
    if config.resume is None:
        if existing:
            raise PretrainError(
                f"{str(output_dir)!r} already holds checkpoints ({existing[-1].name}): pass --resume to continue "
                "that run, or choose another --output-dir."
            )
        return None
    if config.resume == "latest":
        if not existing:
            raise PretrainError(f"Nothing to resume: {str(output_dir)!r} holds no checkpoint. Run without --resume.")
        checkpoint = existing[-1]
    else:
        checkpoint = Path(config.resume)
    written_by = layout_of(checkpoint) if checkpoint.is_dir() else None
    if written_by not in (None, config.objective):
        article = "an" if written_by[0] in "aeiou" else "a"
        raise PretrainError(f"{str(checkpoint)!r} is a checkpoint of {article} {written_by} run, not of this {config.objective} "
                            f"run: resume it with `python -m nlp_course.pretrain {written_by}`, or start a new run "
                            "in another --output-dir.")
    check_checkpoint(checkpoint, config.objective)
    state = json.loads((checkpoint / LAYOUTS[config.objective]["state"]).read_text(encoding="utf-8"))
    step = state.get("global_step", state.get("step", 0))
    if config.max_steps < step:
        raise PretrainError(f"--max-steps {config.max_steps} is below the step of {checkpoint.name} ({step}): a resumed "
                            f"run cannot train backwards. Give --max-steps {step} or more, or use that checkpoint as it is.")
    return checkpoint


def check_same_run(config: RunConfig) -> None:
    """A resume must repeat the settings saved in ``run_config.json``."""
    saved_path = config.output_dir / RUN_CONFIG
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text(encoding="utf-8"))
    now = json.loads(json.dumps(config.identity()))  # as JSON reads it back: tuples as lists ...
    changed = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
    if changed:
        detail = ", ".join(f"{k}: {old!r} then, {new!r} now" for k, (old, new) in changed.items())
        raise PretrainError(f"--resume continues the run in {str(config.output_dir)!r} with other settings ({detail}). "
                            "Resume with the same options, or start a new run in another --output-dir.")


def prepare_run(config: RunConfig) -> Path | None:
    """The checks every objective runs before anything long; return the checkpoint to resume from."""
    checkpoint = resolve_resume(config)
    check_writable(config.output_dir)
    if checkpoint is not None:
        check_same_run(config)
    if config.tokenizer and not (Path(config.tokenizer) / "tokenizer.json").is_file():
        raise PretrainError(f"--tokenizer {config.tokenizer!r} is not a folder saved with save_pretrained (no tokenizer.json).")
    return checkpoint


# --------------------------------------------------------------------------------------------
# Before and after training
# --------------------------------------------------------------------------------------------
def load_tokenizer(config: RunConfig, verbose: bool = True):
    """The ``--tokenizer`` folder, or the course tokenizer of the objective (trained and saved if needed)."""
    if not config.tokenizer:
        return course_tokenizer(COURSE_TOKENIZER[config.objective], config.profile, verbose=verbose)
    try:
        return AutoTokenizer.from_pretrained(config.tokenizer)
    except Exception as err:  # a corrupt tokenizer.json raises whatever its parser raises
        raise PretrainError(f"--tokenizer {config.tokenizer!r} could not be loaded ({type(err).__name__}: "
                            f"{str(err)[:200]}); save it again with save_pretrained, or leave --tokenizer out.") from err


def start_run(config: RunConfig, initial_eval_loss: float) -> None:
    """Write ``run_config.json`` and the untrained model's eval loss (main process, new runs only)."""
    config.output_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(config.output_dir / RUN_CONFIG, json.dumps(config.identity(), indent=2, default=str))
    write_atomically(config.output_dir / INITIAL_METRICS, json.dumps({"initial_eval_loss": initial_eval_loss}))


def initial_eval_loss(output_dir: Path) -> float | None:
    """The eval loss ``start_run`` saved, for a resumed run's metrics (None if it is missing)."""
    path = Path(output_dir) / INITIAL_METRICS
    return json.loads(path.read_text(encoding="utf-8"))["initial_eval_loss"] if path.is_file() else None


def finish_run(output_dir: Path, save_final: Callable[[Path], None], metrics: dict, shown: dict | None = None) -> None:
    """``save_final(folder)`` into ``final/`` as one step, then ``metrics.json`` last; print ``shown`` (default:
    the metrics) and any warnings."""
    with interrupts_deferred():  # a Ctrl-C here waits: a new final/ always comes with its metrics.json
        (Path(output_dir) / "metrics.json").unlink(missing_ok=True)  # an old one never describes a new model
        with atomic_folder(Path(output_dir) / "final") as tmp:
            save_final(tmp)
        write_atomically(Path(output_dir) / "metrics.json", json.dumps(metrics, indent=2))  # written last
    print(json.dumps(metrics if shown is None else shown, indent=2))
    for warning in metrics.get("warnings", []):
        print(f"WARNING: {warning}", file=sys.stderr)


def course_model(base: Path, train: Callable[[Path], None], what: str, recipe: str, verbose: bool = True) -> Path:
    """A course model a later chapter needs: ``base/final`` (its notebook's), ``base/course/final`` (an earlier
    call's), or trained now by ``train(base / "course")``, a run that writes ``final/``."""
    for candidate in (base / "final", base / "course" / "final"):
        if (candidate / "model.safetensors").is_file() and (candidate / "tokenizer.json").is_file():
            if verbose:
                print(f"Using the course {what} in {candidate}")
            return candidate
    if verbose:
        print(f"No course {what} for the {base.name!r} profile yet: training one ({recipe}).")
    out = base / "course"
    if out.exists():  # an earlier attempt that did not finish
        shutil.rmtree(out)
    train(out)
    return out / "final"
