import random

import pytest
import torch

import nlp_course
from nlp_course import profiles, runtime
from nlp_course.runtime import choose_precision


@pytest.mark.parametrize(
    "device, capability, expected",
    [
        ("cuda", (7, 5), "fp16"),  # T4: no bf16
        ("cuda", (7, 0), "fp16"),  # V100
        ("cuda", (8, 0), "bf16"),  # A100
        ("cuda", (8, 9), "bf16"),  # L4
        ("cuda", (9, 0), "bf16"),  # H100
        ("mps", None, "fp32"),
        ("cpu", None, "fp32"),
    ],
)
def test_precision_follows_the_hardware(device, capability, expected):
    assert choose_precision(device, capability) == expected


def test_precision_errors():
    with pytest.raises(ValueError, match="compute capability"):
        choose_precision("cuda")
    with pytest.raises(ValueError, match="Unknown device"):
        choose_precision("tpu")


def test_detect_device_on_a_t4(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    info = runtime.detect_device()
    assert (info.device, info.precision) == ("cuda", "fp16")
    assert "Tesla T4" in info.name


def test_detect_device_on_apple(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.detect_device() == nlp_course.DeviceInfo("mps", "fp32", "Apple MPS")


def test_detect_device_here_is_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    info = runtime.detect_device()
    assert (info.device, info.precision) == ("cpu", "fp32")


def test_setup_notebook_returns_profile_with_device_and_prints_summary(capsys, offline, monkeypatch):
    import importlib
    import importlib.metadata
    import platform
    import re

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    profile = nlp_course.setup_notebook("toy", seed=7)
    lines = capsys.readouterr().out.splitlines()
    here = runtime.detect_device()
    assert profile.name == "toy" and profile.device in {"cpu", "mps"} and profile.device == here.device
    assert profile.precision == here.precision == "fp32" and not profile.fp16 and not profile.bf16
    rows = [tuple(re.split(r" {2,}", line, maxsplit=1)) for line in lines]
    versions = [(lib, importlib.import_module(lib).__version__) for lib in ("torch", "transformers", "datasets", "tokenizers")]
    versions += [(lib, importlib.metadata.version(lib)) for lib in ("accelerate", "evaluate")]  # evaluate imports slowly
    assert rows == [("python", platform.python_version()), *versions,
                    ("device", here.name), ("precision", "fp32"), ("Hub reachable", "no (offline)"), ("seed", "7"),
                    ("profile", f"toy: {nlp_course.PROFILES['toy'].description}")]
    assert len({len(line) - len(value) for line, (_, value) in zip(lines, rows, strict=True)}) == 1  # one column


def test_setup_notebook_seeds_everything(offline):
    nlp_course.setup_notebook("toy", seed=123, show=False)
    first = (random.random(), torch.rand(3))
    nlp_course.setup_notebook("toy", seed=123, show=False)
    second = (random.random(), torch.rand(3))
    assert first[0] == second[0] and torch.equal(first[1], second[1])


def test_setup_notebook_fp16_profile_on_a_t4(monkeypatch, offline):
    monkeypatch.setattr(profiles, "detect_device", lambda: nlp_course.DeviceInfo("cuda", "fp16", "Tesla T4"))
    profile = nlp_course.setup_notebook("colab", show=False)
    assert profile.fp16 and not profile.bf16 and profile.device == "cuda"


def test_setup_notebook_rejects_unknown_profile():
    with pytest.raises(nlp_course.UnknownProfileError):
        nlp_course.setup_notebook("enormous", show=False)


def test_a_tpu_runtime_is_named_and_the_summary_says_what_the_course_supports(monkeypatch, capsys, offline):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torch_xla" else real_find_spec(name, *a))
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert runtime.tpu_available()
    nlp_course.setup_notebook("toy")
    assert runtime.TPU_NOTE in capsys.readouterr().out
    monkeypatch.delenv("COLAB_TPU_ADDR")
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: False)
    assert not runtime.tpu_available()  # torch_xla installed but no TPU attached


def test_training_plan_counts_flops_and_minutes_at_the_assumed_t4_rate():
    from transformers import GPT2Config, GPT2LMHeadModel

    from nlp_course.models import flops_per_token, matmul_params, training_plan

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=1000, n_positions=64))
    per_token = flops_per_token(matmul_params(model), 2, 64, 64)
    steps, tokens = 30_000, 4096  # chosen so that the run lasts ten minutes at 8 TFLOP/s
    tflops = steps * tokens * per_token / (10 * 60 * 1e12)
    line = training_plan(model, steps, tokens, 64, tflops=tflops)
    assert f"{steps * tokens:,} tokens" in line and "about 10 min" in line
    assert "under a minute" in training_plan(model, 1, 64, 64)
