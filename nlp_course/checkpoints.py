"""Checkpoints: what a whole one holds, finding them, checking them before a resume, writing them whole.

Two layouts, one per training loop:

- ``mlm`` and ``electra`` (``Trainer``): ``model.safetensors``, ``trainer_state.json``, ``optimizer.pt``,
  ``scheduler.pt`` and ``rng_state*.pth`` (one per process). An ``electra`` checkpoint's weights are
  the joint model's (``discriminator.*`` and ``generator.*`` names).
- ``clm`` (the Accelerate loop): ``accelerator.save_state``'s ``model.safetensors``, ``optimizer.bin``,
  ``scheduler.bin`` and ``random_states_<rank>.pkl``, plus the loop's own ``training_state.json``,
  written last.

``check_checkpoint`` reads every file the way a resume will, with no pickled code run
(``weights_only=True``), so that a resume that would fail, or silently be inexact, fails first with
a message saying which folder to delete.

Taught in: 04_pretraining_roberta (resume with ``Trainer``) and 06_pretraining_gpt2_code (``save_state``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from accelerate.utils import load as accelerate_load  # torch.load(weights_only=True), NumPy's arrays allowed
from safetensors import safe_open

from nlp_course.errors import PretrainError
from nlp_course.files import commit_folder, staging_folder

TRAINING_STATE = "training_state.json"  # the clm loop's step, tokens and evaluations, written last
KEEP_CHECKPOINTS = 3

LAYOUTS = {
    "mlm": {"files": ("model.safetensors", "trainer_state.json", "optimizer.pt", "scheduler.pt"),
            "state": "trainer_state.json", "states": ("optimizer.pt", "scheduler.pt"), "rng": "rng_state*.pth"},
    "clm": {"files": ("model.safetensors", TRAINING_STATE, "optimizer.bin", "scheduler.bin"),
            "state": TRAINING_STATE, "states": ("optimizer.bin", "scheduler.bin"), "rng": "random_states_*.pkl"},
}
LAYOUTS["electra"] = LAYOUTS["mlm"]  # both Trainer's; told apart by the names of their weights


def checkpoints_in(output_dir: Path) -> list[Path]:
    """The ``checkpoint-N`` folders of a run, oldest first (by N, not by name: 100 after 20)."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def layout_of(path: Path) -> str | None:
    """Which objective wrote the checkpoint ``path`` (``"mlm"``, ``"electra"`` or ``"clm"``), from its files."""
    path = Path(path)
    if (path / TRAINING_STATE).is_file():
        return "clm"
    if not (path / "trainer_state.json").is_file():
        return None
    try:
        with safe_open(str(path / "model.safetensors"), framework="pt") as weights:
            joint = any(name.startswith("discriminator.") for name in weights.keys())
    except Exception:  # missing or corrupt weights: check_checkpoint says so, in words
        return None
    return "electra" if joint else "mlm"


def check_checkpoint(path: Path, objective: str = "mlm") -> None:
    """Raise PretrainError unless ``path`` is a complete, readable checkpoint of ``objective``.

    Complete: weights (safetensors), training state, optimizer, scheduler and the random-number states
    of every process (without them a resumed run is no longer exact). Readable: the weights' header
    parses, and the optimizer and scheduler (and, for clm, the random states, which accelerate would
    otherwise skip silently if unreadable) load with ``weights_only=True`` (no code is run).
    """
    layout = LAYOUTS[objective]
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
            for rng in path.glob(layout["rng"]):
                accelerate_load(rng)
    except Exception as err:
        raise PretrainError(
            f"Checkpoint {str(path)!r} is corrupt ({type(err).__name__}: {str(err)[:200]}). "
            "Delete that folder to resume from the previous checkpoint."
        ) from err


def save_accelerate_checkpoint(accelerator, output_dir: Path, step: int, state: dict,
                               keep: int = KEEP_CHECKPOINTS) -> Path:
    """``save_state`` into a staging folder that every process writes, then committed by the main one.

    ``state`` (JSON) is written last as ``training_state.json``; a ``checkpoint-N`` folder is always
    whole. Only the ``keep`` newest checkpoints are kept.
    """
    final = Path(output_dir) / f"checkpoint-{step}"
    tmp = final.with_name(f".{final.name}.tmp")
    if accelerator.is_main_process:
        staging_folder(final)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))  # model.safetensors, optimizer.bin, scheduler.bin, random_states_<rank>.pkl
    accelerator.wait_for_everyone()  # every process has written its random states
    if accelerator.is_main_process:
        (tmp / TRAINING_STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
        commit_folder(tmp, final)
        for old in checkpoints_in(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final
