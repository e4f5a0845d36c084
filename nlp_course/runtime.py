"""The machine: device and precision, whether the Hub is reachable, seeds, logging, versions, GPU peaks.

Set-up that every notebook needs and no notebook should teach. It imports no other course module, so
anything may import it. ``nlp_course.profiles.setup_notebook()`` puts these pieces together.

- ``detect_device`` and ``choose_precision``: CUDA, MPS or CPU, and bf16, fp16 or fp32.
- ``hub_available``: decided in two seconds, rather than after half a minute of retries.
- ``peak_flops`` and ``mfu``: model FLOPs utilisation, PaLM's way, against the GPU's data-sheet peak.

Taught in: 01_nlp_concepts (set-up cell) and 06_pretraining_gpt2_code (MFU).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

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


TPU_NOTE = ("A TPU runtime (torch_xla) was found. The course has not been run on TPUs: its notebooks train "
            "on the CPU here, which is slow. Choose a GPU runtime (Runtime > Change runtime type > T4 GPU).")


def tpu_available() -> bool:
    """Whether this is a TPU runtime: ``torch_xla`` is installed and names a TPU (Colab's TPU runtimes)."""
    if importlib.util.find_spec("torch_xla") is None:
        return False
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_ACCELERATOR_TYPE")
                or os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0"))


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


def hub_available(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub can be reached now, decided in at most ``timeout`` seconds.

    Offline mode (``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1``) counts as unreachable.
    """
    if offline_mode():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    target = (endpoint.hostname, endpoint.port or (443 if endpoint.scheme == "https" else 80))
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy and endpoint.scheme == "https":  # behind a proxy, being able to reach it is what counts
        proxy_url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        target = (proxy_url.hostname, proxy_url.port or 80)
    result: list[bool] = []

    def connect() -> None:  # DNS lookups ignore socket timeouts: run in a thread we can stop waiting for
        try:
            with socket.create_connection(target, timeout=timeout):
                result.append(True)
        except (OSError, TypeError):
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result and result[0])


def offline_mode() -> bool:
    """Whether the Hugging Face libraries were told not to use the network (``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
               for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def cached_snapshot(repo_id: str, repo_type: str = "model") -> Path | None:
    """The newest snapshot of a Hub repository in the local cache (what ``prefetch`` left), or None."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots"
    snapshots = [p for p in folder.glob("*") if p.is_dir() and any(p.iterdir())] if folder.is_dir() else []
    return max(snapshots, key=lambda p: p.stat().st_mtime) if snapshots else None


def can_load(repo_id: str, repo_type: str = "model") -> bool:
    """Whether ``repo_id`` can be loaded now: the Hub is reachable, or it is offline and the repository is cached."""
    return hub_available() or (offline_mode() and cached_snapshot(repo_id, repo_type) is not None)


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


# What the course assumes a T4 sustains when it plans a Colab run: 8 TFLOP/s, 12 % of the fp16 peak,
# a usual figure for models this small (many small kernels, fp16 loss scaling, data loading on two
# CPUs). An assumption until measured: the notebooks print it beside every estimate.
T4_TFLOPS = 8.0


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


def expect_duration(profile, toy: str, colab: str, colab_measured: bool = False) -> None:
    """Say, before a long cell runs, how long it takes in this profile and in the other one.

    ``toy`` is measured on a 2-core CPU; ``colab`` is an estimate for a T4 until it has been measured there
    (``colab_measured=True``). Other profiles (``rehearsal``, ``full``) get both figures as a guide.

    >>> from nlp_course.profiles import get_profile
    >>> expect_duration(get_profile("toy"), "16 s", "about 12 min")
    ⏱ about 16 s here (toy profile, measured on a 2-core CPU); about 12 min on Colab's T4 (colab profile, estimate)
    """
    name = getattr(profile, "name", profile)
    colab_kind = "measured" if colab_measured else "estimate"
    if name == "toy":
        line = f"⏱ about {toy} here (toy profile, measured on a 2-core CPU); {colab} on Colab's T4 (colab profile, {colab_kind})"
    elif name == "colab":
        line = f"⏱ {colab} on Colab's T4 (colab profile, {colab_kind}); the toy profile takes about {toy} on a 2-core CPU"
    else:
        line = f"⏱ the {name} profile: no timing of its own; toy takes about {toy} on a 2-core CPU, colab {colab} on a T4 ({colab_kind})"
    print(line)
