"""Helpers shared by the tests."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def notebook_function(notebook: str, name: str):
    """The function ``name`` as a notebook writes it out: its cell's imports, constants and that definition only.

    Lets a test check the code a learner reads against the library or the package, with no copy of it.
    """
    cells = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"]))
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                 or (isinstance(n, ast.FunctionDef) and n.name == name)
                 or (isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in n.targets))]
    namespace: dict = {}
    exec(compile(tree, f"{notebook}:{name}", "exec"), namespace)
    return namespace[name]


def fake_checkpoint(path, optimizer_bytes=None, rng=True):
    """A small complete mlm (Trainer) checkpoint at step 10, or one without its random states."""
    import torch
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, str(path / "model.safetensors"))
    (path / "trainer_state.json").write_text(json.dumps({"global_step": 10}))
    torch.save({"state": {}}, path / "scheduler.pt")
    if optimizer_bytes is None:
        torch.save({"state": {}, "param_groups": []}, path / "optimizer.pt")
    else:
        (path / "optimizer.pt").write_bytes(optimizer_bytes)
    if rng:
        torch.save({"python": 1}, path / "rng_state.pth")


def fake_clm_checkpoint(path, rng=True):
    """A small complete clm (accelerate save_state) checkpoint at step 10, or one without its random states."""
    import torch
    from accelerate.utils import save
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, str(path / "model.safetensors"))
    (path / "training_state.json").write_text(json.dumps({"step": 10, "evaluations": []}))
    torch.save({"state": {}, "param_groups": []}, path / "optimizer.bin")
    torch.save({"last_epoch": 10}, path / "scheduler.bin")
    if rng:
        import random

        import numpy as np

        save({"random_state": random.getstate(), "numpy_random_seed": np.random.get_state(),
              "torch_manual_seed": torch.get_rng_state()}, path / "random_states_0.pkl")


def killed_after_saving(objective: str, step: int, command: list[str]) -> list[str]:
    """``command`` (``python -m nlp_course.pretrain OBJECTIVE ...``) as a process that SIGKILLs itself once
    checkpoint-``step`` is saved whole.

    mlm and electra: Trainer calls ``on_save`` after a checkpoint's last file; clm: the Accelerate loop's
    ``save_accelerate_checkpoint`` returns once the checkpoint is committed. So the crash lands at a known moment,
    with no later checkpoint begun. Killing from outside once a file appears could land in the middle of the next
    checkpoint (Trainer writes in place), or after a fast run has already ended.
    """
    if objective == "clm":
        patch = f"""
from nlp_course import clm
saved = clm.save_accelerate_checkpoint

def save_then_die(accelerator, output_dir, step, *args, **kwargs):
    folder = saved(accelerator, output_dir, step, *args, **kwargs)
    if step == {step}:
        os.kill(os.getpid(), signal.SIGKILL)
    return folder

clm.save_accelerate_checkpoint = save_then_die
"""
    else:
        module = {"mlm": "mlm", "electra": "electra"}[objective]
        patch = f"""
from nlp_course import {module} as trained

class KilledAfterSaving(trained.StopOnRequest):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == {step}:
            os.kill(os.getpid(), signal.SIGKILL)

trained.StopOnRequest = KilledAfterSaving
"""
    wrapper = f"import os, signal, sys\n{patch}\nfrom nlp_course.pretrain import main\nsys.exit(main(sys.argv[1:]))\n"
    assert command[1:3] == ["-m", "nlp_course.pretrain"], command[:3]
    return [command[0], "-c", wrapper, *command[3:]]


def schedule_rates(make_scheduler, max_steps: int, lr: float) -> list[float]:
    """The learning rate of each of ``max_steps`` optimizer steps under ``make_scheduler(optimizer)``, stepped once a
    step: the oracle a training loop's logged rates are compared with."""
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(max_steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def torchrun(command: list[str], env: dict, nproc: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a course command (``[python, -m, module, ...]``) under ``torchrun --standalone``. On a timeout torchrun and
    every process under it are killed (``subprocess.run`` would kill torchrun only, and torchrun starts each worker
    in a session of its own, so a hung worker would outlive the test and hold its pipes open), and the test fails
    saying so."""
    import psutil

    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                                "--standalone", *command[1:]], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]:
            try:
                child.kill()
            except psutil.NoSuchProcess:  # ended between the listing and the kill
                pass
        stdout, stderr = process.communicate()
        raise AssertionError(f"torchrun did not finish in {timeout} s (its processes were killed): {stderr[-3000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
