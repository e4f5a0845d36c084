"""Bad input, run the way a user runs it: each command a subprocess, each mistake an early, clear error.

An early error is exit code 2, one ``error:`` line and no traceback, with nothing written. Run as a
subprocess because ``python -m nlp_course.X`` is what users type (the entry module is then
``__main__``, which once let ``clm``'s own errors slip past its ``except`` as raw tracebacks).
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from helpers import fake_checkpoint, fake_clm_checkpoint
from transformers import RobertaConfig, RobertaForMaskedLM

from nlp_course.errors import TokenizerTrainingError
from nlp_course.finetune import main as finetune_main
from nlp_course.pretrain import main as pretrain_main
from nlp_course.tokenization import course_tokenizer, train_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "NLP_COURSE_PROFILE": "toy", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1"}


def command(module, *args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", f"nlp_course.{module}", *args], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=600)


def early_error(module, *args, cwd=None, env=None) -> str:
    """Run the command; check it ended with one clear error and no traceback; return that error line."""
    done = command(module, *args, cwd=cwd, env=env)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, done.stderr[-2000:]
    return errors[0]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    frame = pd.read_csv(os.path.join(ROOT, "data", "reviews_en", "train.csv")).head(40)
    frame.to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


# ---------------------------------------------------------------- pretrain
def test_clm_errors_are_one_line_under_python_m(tmp_path):
    assert "Hugging Face Hub" in early_error("pretrain", "clm", "--output-dir", str(tmp_path / "o"), "--corpus", "someone/code")
    (tmp_path / "one.py").write_text("x = 1\n")
    assert "is a file" in early_error("pretrain", "clm", "--output-dir", str(tmp_path / "o"), "--corpus", str(tmp_path / "one.py"))
    assert not (tmp_path / "o").exists()


def test_resuming_a_checkpoint_of_the_other_objective_names_it(tmp_path, capsys):
    fake_clm_checkpoint(tmp_path / "clm_run" / "checkpoint-10")
    err = early_error("pretrain", "mlm", "--output-dir", str(tmp_path / "clm_run"), "--resume")
    assert "checkpoint of a clm run" in err and "pretrain clm" in err and "incomplete" not in err
    fake_checkpoint(tmp_path / "mlm_run" / "checkpoint-10")  # the other way round, in this process
    assert "checkpoint of a mlm run" in in_process_error(
        pretrain_main, ["clm", "--output-dir", str(tmp_path / "mlm_run"), "--resume"], capsys)


def test_resume_with_fewer_steps_than_the_checkpoint(tmp_path):
    fake_checkpoint(tmp_path / "checkpoint-10")
    err = early_error("pretrain", "mlm", "--output-dir", str(tmp_path), "--resume", "--max-steps", "5")
    assert "--max-steps 5 is below the step of checkpoint-10 (10)" in err


def test_learning_rates_that_cannot_be(tmp_path, capsys):
    # once the way users run it (a new interpreter: about 7 s), then every value in this process (milliseconds)
    assert "--learning-rate must be between 0 and 1" in early_error(
        "pretrain", "mlm", "--output-dir", str(tmp_path / "o"), "--learning-rate", "nan")
    for rate in ("-1e-3", "-1", "nan", "0", "inf"):
        with pytest.raises(SystemExit) as exit_info:
            pretrain_main(["mlm", "--output-dir", str(tmp_path / "o"), "--learning-rate", rate])
        assert exit_info.value.code == 2, rate
        assert "--learning-rate must be between 0 and 1" in capsys.readouterr().err, rate
    assert not (tmp_path / "o").exists()


def test_output_folders_that_cannot_be(tmp_path, reviews, monkeypatch, capsys):
    assert "must name a folder" in early_error("pretrain", "mlm", "--output-dir", "", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)  # the rest in this process (the line above covers `python -m`)
    assert "must name a folder" in in_process_error(finetune_main, ["--train-file", str(reviews), "--output-dir", " "],
                                                    capsys)
    (tmp_path / "a_file").write_text("x")
    for main, args in ((pretrain_main, ["mlm"]), (finetune_main, ["--train-file", str(reviews)])):
        err = in_process_error(main, [*args, "--output-dir", str(tmp_path / "a_file" / "out")], capsys)
        assert "cannot be created" in err and "a_file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"], "nothing written"


def test_a_corrupt_tokenizer_folder(tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE", "vocab": ')
    err = early_error("pretrain", "mlm", "--output-dir", str(tmp_path / "o"), "--tokenizer", str(tmp_path / "tok"))
    assert "--tokenizer" in err and "could not be loaded" in err


def hold_lock(folder):
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return descriptor


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, reviews):
    held = hold_lock(tmp_path / "busy")  # as a first run holds it, while it trains
    try:
        assert "Another run is writing" in early_error("pretrain", "mlm", "--output-dir", str(tmp_path / "busy"),
                                                       "--max-steps", "2")
        assert "Another run is writing" in early_error("finetune", "--train-file", str(reviews), "--epochs", "1",
                                                       "--output-dir", str(tmp_path / "busy"))
        assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == [".lock"], "nothing written"
    finally:
        os.close(held)


# ---------------------------------------------------------------- finetune
def in_process_error(main, args, capsys) -> str:
    """``main(args)`` in this process: exit code 2 and one ``error:`` line (the subprocess tests cover ``python -m``)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len([line for line in err.splitlines() if "error:" in line]) == 1, err
    return err


def test_bad_labels_files_and_models(tmp_path, reviews, monkeypatch, capsys):
    monkeypatch.setenv("NLP_COURSE_OUTPUTS", str(tmp_path / "outputs"))
    out = ["--output-dir", str(tmp_path / "out")]
    (tmp_path / "dicts.jsonl").write_text('{"text": "a", "label": {"x": 1}}\n{"text": "b", "label": {"x": 2}}\n')
    (tmp_path / "header.csv").write_text("text,label\n")
    (tmp_path / "latin.csv").write_bytes("text,label\ncafé bueno,pos\nmalo,neg\n".encode("latin-1"))
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (bogus / name).write_text("{ not json")
    (bogus / "model.safetensors").write_bytes(b"\x00" * 64)
    for args, message in ((["--train-file", str(tmp_path / "dicts.jsonl")], "not single values"),
                          (["--train-file", str(tmp_path / "header.csv")], "no rows"),
                          (["--train-file", str(tmp_path / "latin.csv")], "not UTF-8"),
                          (["--train-file", str(reviews), "--learning-rate", "0"], "--learning-rate must be"),
                          (["--train-file", str(reviews), "--model", str(bogus)], "could not be loaded")):
        assert message in in_process_error(finetune_main, [*args, *out], capsys), message
    truncated = tmp_path / "truncated"
    tokenizer = course_tokenizer("es", "toy", verbose=False)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=66, pad_token_id=tokenizer.pad_token_id)
    RobertaForMaskedLM(config).save_pretrained(truncated)
    tokenizer.save_pretrained(truncated)
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])  # a download cut short
    assert "could not be loaded" in early_error("finetune", "--train-file", str(reviews), "--model", str(truncated), *out)
    assert not (tmp_path / "out").exists(), "nothing written"


def test_train_tokenizer_refuses_what_it_cannot_use():
    for kwargs, message in ((dict(texts=42), "not int"), (dict(texts=["a b"], batch_size=0), "batch_size"),
                            (dict(texts=["a b"], model_max_length=-1), "model_max_length")):
        with pytest.raises(TokenizerTrainingError, match=message):
            train_tokenizer(**kwargs)


# ---------------------------------------------------------------- Ctrl-C
def test_ctrl_c_in_the_middle_of_fine_tuning_leaves_nothing_half_written(tmp_path, reviews):
    frame = pd.read_csv(reviews)
    pd.concat([frame] * 10).to_csv(tmp_path / "big.csv", index=False)  # long enough to be stopped while training
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "nlp_course.finetune", "--train-file", str(tmp_path / "big.csv"),
                                "--epochs", "50", "--output-dir", str(out)], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / ".lock").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.1)  # the lock is taken once the model is loaded, just before training
    time.sleep(2)
    assert process.poll() is None, "still training when interrupted"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) != 0
    assert sorted(p.name for p in out.iterdir()) == [".lock"], "no model, no metrics, no temporary folder"


def test_ctrl_c_during_the_final_save_waits_for_the_whole_pair(tmp_path):
    """model/ and metrics.json are replaced together even when Ctrl-C arrives between them."""
    from nlp_course.finetune import save_results

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.txt").write_text("old")
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.1}')

    class Saving:
        def save_pretrained(self, folder):
            (folder / "new.txt").write_text("new")
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the save
            time.sleep(0.1)

    with pytest.raises(KeyboardInterrupt):
        save_results(tmp_path, Saving(), Saving(), {"accuracy": 0.9, "split": "test", "majority_accuracy": 0.5,
                                                    "baseline_accuracy": 0.6, "f1": 0.9, "baseline_f1": 0.6})
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["new.txt"]
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model"], "no temporary left"


@pytest.mark.parametrize("objective, options, state", [
    ("mlm", ["--block-size", "64", "--batch-size", "8", "--max-documents", "12"], "trainer_state.json"),
    ("clm", ["--seq-length", "64", "--batch-size", "8", "--eval-sequences", "16", "--max-files", "40"],
     "training_state.json"),
])
def test_ctrl_c_stops_pretraining_at_a_whole_checkpoint(tmp_path, objective, options, state):
    from nlp_course.checkpoints import check_checkpoint, checkpoints_in

    out = tmp_path / "run"
    run = [sys.executable, "-m", "nlp_course.pretrain", objective, "--output-dir", str(out), "--profile", "toy",
           "--eval-steps", "20", "--save-steps", "20", *options]
    process = subprocess.Popen([*run, "--max-steps", "100000"], env={**ENV, "NLP_COURSE_OUTPUTS": str(tmp_path)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "checkpoint-20" / state).exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "Interrupted at step" in stderr and "--resume" in stderr
    assert not (out / "metrics.json").exists() and not (out / "final").exists()
    saved = checkpoints_in(out)
    assert saved and not list(out.glob(".checkpoint-*"))
    for checkpoint in saved:
        check_checkpoint(checkpoint, objective)  # whole and readable, the last one included
    step = int(saved[-1].name.split("-")[1])
    resumed = subprocess.run([*run, "--max-steps", str(step + 4), "--resume"], capture_output=True, text=True,
                             env={**ENV, "NLP_COURSE_OUTPUTS": str(tmp_path)}, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == step + 4
