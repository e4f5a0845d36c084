"""Set-up that every notebook needs and no notebook should teach: seeds, device, precision, logging.

``setup_notebook()`` is the one call a notebook makes after its install cell. It keeps the
environment out of sight (as nlp-with-transformers' ``setup_chapter()`` does), never the lesson.

Taught in: 01_nlp_concepts (set-up cell).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import platform
from dataclasses import dataclass

from nlp_course.profiles import Profile, get_profile

REPO_URL = "https://github.com/nlp-en-es/nlp-de-0-a-100"
"""The course repository: the one place its address is written. Notebooks' set-up cells copy it
(tests/test_notebooks_clean.py checks that they agree)."""

LIBRARIES = ("torch", "transformers", "datasets", "tokenizers", "accelerate", "evaluate")


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cuda", "mps" or "cpu"
    precision: str  # "bf16", "fp16" or "fp32"
    name: str  # what to show a person: "NVIDIA T4", "Apple MPS", "CPU (2 threads)"


def choose_precision(device: str, cuda_capability: tuple[int, int] | None = None) -> str:
    """The training precision for a device.

    CUDA: bf16 from Ampere on (compute capability 8.0: A100, L4, RTX 30xx, H100), where it has
    fp32's range and needs no loss scaling; fp16 below that (T4 is 7.5, V100 7.0), with the loss
    scaling that ``Trainer`` and ``Accelerator`` apply for fp16. MPS and CPU: fp32, since mixed
    precision there is slower or unsupported for training in today's PyTorch.
    """
    if device == "cuda":
        if cuda_capability is None:
            raise ValueError("choose_precision('cuda') needs the GPU's compute capability, e.g. (7, 5).")
        return "bf16" if cuda_capability >= (8, 0) else "fp16"
    if device in {"mps", "cpu"}:
        return "fp32"
    raise ValueError(f"Unknown device {device!r}; expected 'cuda', 'mps' or 'cpu'.")


def detect_device() -> DeviceInfo:
    """The best device here: a CUDA GPU, else Apple's MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        capability = torch.cuda.get_device_capability(0)
        name = f"{torch.cuda.get_device_name(0)} (sm_{capability[0]}{capability[1]}, x{torch.cuda.device_count()})"
        return DeviceInfo("cuda", choose_precision("cuda", capability), name)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return DeviceInfo("mps", choose_precision("mps"), "Apple MPS")
    return DeviceInfo("cpu", choose_precision("cpu"), f"CPU ({torch.get_num_threads()} threads)")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (all devices): ``transformers.set_seed`` does all three."""
    from transformers import set_seed

    set_seed(seed)


def quiet_logging() -> None:
    """Keep the libraries' info and warning log lines out of the lesson; progress bars stay on."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from tokenizers
    # FutureWarnings and DeprecationWarnings stay visible: they announce the library changes that
    # break courses, and this course wants to hear about them first.


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return versions


def format_table(rows: list[tuple[str, str]], title: str | None = None) -> str:
    """A plain two-column table that reads the same in a notebook, a terminal and a log."""
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def setup_notebook(profile: str | Profile | None = None, seed: int = 42, quiet: bool = True, show: bool = True) -> Profile:
    """Seed, pick device and precision, quiet the libraries, print a summary; return the profile.

    ``profile`` is a name (``"toy"``, ``"colab"``, ``"full"``), a ``Profile``, or ``None`` for
    ``$NLP_COURSE_PROFILE`` or detection. The returned profile carries ``device`` and
    ``precision`` (``profile.fp16`` and ``profile.bf16`` feed ``TrainingArguments``).
    """
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    if quiet:
        quiet_logging()
    seed_everything(seed)
    info = detect_device()
    chosen = dataclasses.replace(chosen, device=info.device, precision=info.precision)
    if show:
        from nlp_course.data import hub_available

        rows = list(library_versions().items())
        rows += [
            ("device", info.name),
            ("precision", info.precision),
            ("Hub reachable", "yes" if hub_available() else "no (offline)"),
            ("seed", str(seed)),
            ("profile", f"{chosen.name}: {chosen.description}"),
        ]
        print(format_table(rows))
    return chosen
