import json
import os
import random
import subprocess
import sys

import pytest
import torch
from helpers import fake_checkpoint, kill_once_written, notebook_function
from transformers import DataCollatorForLanguageModeling

from nlp_course.checkpoints import check_checkpoint
from nlp_course.errors import PretrainError
from nlp_course.objectives import IGNORE_INDEX, SeededMLMCollator, mask_tokens, nsp_pairs
from nlp_course.packing import group_texts
from nlp_course.pretrain import main


def batch_of_ids(tokenizer, rows=400, length=128, seed=0):
    rng = random.Random(seed)
    first = max(tokenizer.all_special_ids) + 1
    body = [[rng.randrange(first, len(tokenizer)) for _ in range(length - 2)] for _ in range(rows)]
    return torch.tensor([[tokenizer.bos_token_id, *row, tokenizer.eos_token_id] for row in body])


# ---------------------------------------------------------------- masking: 15 %, then 80 / 10 / 10
def test_masking_proportions_on_a_large_batch(tokenizer):
    ids = batch_of_ids(tokenizer)
    inputs, labels = mask_tokens(ids, tokenizer, torch.Generator().manual_seed(0))
    maskable = ids.numel() - 2 * ids.shape[0]  # <s> and </s> are never masked
    masked = labels != IGNORE_INDEX
    assert not masked[:, 0].any() and not masked[:, -1].any()
    assert torch.equal(labels[masked], ids[masked])  # a label is the original token
    assert torch.equal(inputs[~masked], ids[~masked])  # unmasked tokens are untouched
    n = masked.sum().item()
    # 50,800 maskable tokens: the standard deviation of the share is 0.0016, the bounds are 6 sd wide
    assert abs(n / maskable - 0.15) < 0.01
    to_mask = (inputs == tokenizer.mask_token_id) & masked
    unchanged = (inputs == ids) & masked
    randomized = masked & ~to_mask & ~unchanged
    assert abs(to_mask.sum().item() / n - 0.8) < 0.03
    assert abs(randomized.sum().item() / n - 0.1) < 0.025  # a random token can equal the original: ~0.05 % of them
    assert abs(unchanged.sum().item() / n - 0.1) < 0.025


def test_masking_by_hand_equals_the_library_collator(tokenizer):
    examples = [{"input_ids": row[: 20 + i].tolist()} for i, row in enumerate(batch_of_ids(tokenizer, rows=32, length=60))]
    library = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=11)(examples)
    padded = tokenizer.pad(examples, return_tensors="pt")["input_ids"]
    inputs, labels = mask_tokens(padded, tokenizer, torch.Generator().manual_seed(11))
    assert torch.equal(inputs, library["input_ids"]) and torch.equal(labels, library["labels"])
    assert (labels[padded == tokenizer.pad_token_id] == IGNORE_INDEX).all()


@pytest.mark.parametrize("probabilities", [(0.8, 0.1), (1.0, 0.0), (0.5, 0.5)])
def test_masking_written_out_in_notebook_02_is_the_packages(tokenizer, probabilities):
    by_notebook = notebook_function("02_pretraining_objectives.ipynb", "mask_tokens")
    ids = batch_of_ids(tokenizer, rows=50, length=30)
    a = by_notebook(ids, tokenizer, torch.Generator().manual_seed(5), 0.2, *probabilities)
    b = mask_tokens(ids, tokenizer, torch.Generator().manual_seed(5), 0.2, *probabilities)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_group_texts_written_out_in_notebook_04_is_the_packages():
    by_notebook = notebook_function("04_pretraining_roberta.ipynb", "group_texts")
    batch = {"input_ids": [[1, 2, 3], [4, 5, 6, 7, 8], [9]], "attention_mask": [[1] * 3, [1] * 5, [1]]}
    assert by_notebook(batch, 4) == group_texts(batch, 4) == {"input_ids": [[1, 2, 3, 4], [5, 6, 7, 8]],
                                                              "attention_mask": [[1] * 4, [1] * 4]}


def test_seeded_collator_masks_are_a_function_of_seed_epoch_and_example(tokenizer):
    rows = [{"input_ids": r.tolist()} for r in batch_of_ids(tokenizer, rows=6, length=40)]
    collator = SeededMLMCollator(tokenizer, seed=3, epoch=0)
    a = collator(rows)
    b = collator(list(reversed(rows)))  # other batch order: same mask for the same example
    assert torch.equal(a["input_ids"], b["input_ids"].flip(0)) and torch.equal(a["labels"], b["labels"].flip(0))
    collator.epoch = 1
    assert not torch.equal(collator(rows)["labels"], a["labels"])  # a new mask each epoch (dynamic masking)
    assert not torch.equal(SeededMLMCollator(tokenizer, seed=4, epoch=0)(rows)["labels"], a["labels"])


def test_a_mask_does_not_depend_on_the_batch_partners(tokenizer):
    rows = [{"input_ids": r.tolist()} for r in batch_of_ids(tokenizer, rows=3, length=60)]
    example = rows[0]
    short, long = {"input_ids": rows[1]["input_ids"][:10]}, {"input_ids": rows[2]["input_ids"] * 2}
    collator = SeededMLMCollator(tokenizer, seed=8, epoch=2)
    alone = collator([example])
    for partner in (short, long):
        together = collator([example, partner])
        assert torch.equal(together["input_ids"][0, :60], alone["input_ids"][0])
        assert torch.equal(together["labels"][0, :60], alone["labels"][0])


def test_seeded_collator_never_remasks_an_already_masked_example(tokenizer):
    rows = [{"input_ids": r.tolist()} for r in batch_of_ids(tokenizer, rows=4, length=40)]
    masked = SeededMLMCollator(tokenizer, seed=3)(rows)
    premasked = [{"input_ids": i.tolist(), "labels": label.tolist()} for i, label in zip(masked["input_ids"], masked["labels"], strict=True)]
    again = SeededMLMCollator(tokenizer, seed=99, epoch=5, pad_to_multiple_of=8)(premasked)
    assert torch.equal(again["input_ids"][:, :40], masked["input_ids"]) and (again["labels"][:, 40:] == IGNORE_INDEX).all()


def test_collator_needs_a_mask_token():
    class NoMask:
        mask_token_id, pad_token_id = None, 0

    with pytest.raises(ValueError, match="mask token"):
        SeededMLMCollator(NoMask())


# ---------------------------------------------------------------- packing and NSP
@pytest.mark.parametrize("seed", range(5))
def test_packing_keeps_order_and_drops_at_most_one_partial_block(seed):
    rng = random.Random(seed)
    block = rng.randint(3, 50)
    texts = [[rng.randint(0, 999) for _ in range(rng.randint(0, 120))] for _ in range(rng.randint(1, 30))]
    out = group_texts({"input_ids": texts, "attention_mask": [[1] * len(t) for t in texts]}, block)
    flat = [t for text in texts for t in text]
    kept = [t for b in out["input_ids"] for t in b]
    assert all(len(b) == block for b in out["input_ids"])
    assert kept == flat[: len(kept)] and len(flat) - len(kept) < block
    assert len(out["attention_mask"]) == len(out["input_ids"])


def test_packing_rejects_a_bad_block_size():
    with pytest.raises(ValueError, match="block_size"):
        group_texts({"input_ids": [[1, 2]]}, 0)


def test_nsp_pairs_labels():
    docs = [[f"d{d}s{s}" for s in range(8)] for d in range(30)]
    pairs = nsp_pairs(docs, seed=1)
    assert len(pairs) == 30 * 7
    for pair in pairs:
        doc_a, sent_a = pair["sentence_a"][1:].split("s")
        doc_b, sent_b = pair["sentence_b"][1:].split("s")
        if pair["next_sentence_label"] == 0:  # IsNext: the very next sentence of the same document
            assert doc_a == doc_b and int(sent_b) == int(sent_a) + 1
        else:  # NotNext: a sentence of another document
            assert pair["next_sentence_label"] == 1 and doc_a != doc_b
    share = sum(p["next_sentence_label"] for p in pairs) / len(pairs)
    assert 0.4 < share < 0.6 and nsp_pairs(docs, seed=1) == pairs
    with pytest.raises(ValueError, match="two documents"):
        nsp_pairs([["a", "b"]])


# ---------------------------------------------------------------- the command line
TINY = ["--profile", "toy", "--block-size", "64", "--batch-size", "8", "--eval-steps", "20"]


def cli(*args, cwd=None):
    env = {**os.environ, "NLP_COURSE_PROFILE": "toy", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "nlp_course.pretrain", "mlm", *TINY, *args], env



def test_resume_after_a_kill_ends_where_the_uninterrupted_run_ends(tmp_path):
    # 12 documents give about 24 steps an epoch: the run is killed at 20 and crosses an epoch after resuming
    common = ["--max-steps", "40", "--save-steps", "10", "--max-documents", "12"]
    command, env = cli("--output-dir", str(tmp_path / "straight"), *common)
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=tmp_path)
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert not (tmp_path / "runs").exists(), "TensorBoard writes inside --output-dir, never in the working directory"

    command, env = cli("--output-dir", str(tmp_path / "killed"), *common)
    state = tmp_path / "killed" / "checkpoint-20" / "trainer_state.json"
    kill_once_written(command, env, state)
    assert state.exists() and not (tmp_path / "killed" / "metrics.json").exists(), "killed before the end"

    # from checkpoint-20 by name: Trainer writes checkpoint-30 in place half a second later, and the kill may
    # land in the middle of it (the CLM loop writes whole checkpoints only, so its test can say "latest")
    command, env = cli("--output-dir", str(tmp_path / "killed"), *common, "--resume",
                       str(tmp_path / "killed" / "checkpoint-20"))
    subprocess.run(command, env=env, check=True, capture_output=True)
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())

    epoch_steps = json.loads((tmp_path / "straight" / "checkpoint-40" / "trainer_state.json").read_text())["epoch"]
    assert 20 / 40 * epoch_steps < 1 < epoch_steps, "the resumed part crosses an epoch boundary"
    assert resumed["resumed_from_step"] >= 20 and resumed["steps"] == straight["steps"] == 40
    assert abs(resumed["final_eval_loss"] - straight["final_eval_loss"]) < 5e-5
    assert resumed["initial_eval_loss"] == straight["initial_eval_loss"]
    assert resumed["train_tokens"] == straight["train_tokens"]
    assert straight["final_eval_loss"] < straight["initial_eval_loss"] - 0.5  # it learned
    # Trainer's own count: full batches are 8 x 64 tokens, the last batch of an epoch is smaller
    assert 0.8 * 40 * 8 * 64 < straight["train_tokens"] < 40 * 8 * 64
    final = tmp_path / "straight" / "final"
    assert (final / "model.safetensors").is_file() and (final / "tokenizer.json").is_file()
    # weights only as safetensors; Trainer's own state files (optimizer.pt ...) load with weights_only=True
    assert not list((tmp_path / "straight").rglob("pytorch_model*")), "no pickle-based weights"
    assert all((c / "model.safetensors").is_file() for c in (tmp_path / "straight").glob("checkpoint-*"))
    assert list((tmp_path / "straight" / "runs").rglob("events.out.tfevents.*")), "TensorBoard logs"
    for key in ("final_perplexity", "tokens_per_second", "world_size"):
        assert straight[key] is not None and straight[key] > 0


def test_two_processes_with_torchrun(tmp_path):
    command, env = cli("--output-dir", str(tmp_path / "ddp"), "--max-steps", "6", "--save-steps", "6")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--standalone", *command[1:]]
    done = subprocess.run(torchrun, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 6
    # an untrained model's loss is near ln(vocabulary): a loss scaled by the number of processes is not
    import math

    assert abs(metrics["initial_eval_loss"] - math.log(2_000)) < 0.3
    assert metrics["final_eval_loss"] < metrics["initial_eval_loss"]
    assert 6 * 8 * 64 < metrics["train_tokens"] <= 6 * 8 * 2 * 64  # two processes, each its own batches


# ---------------------------------------------------------------- bad options, before any training
def run_main_expecting_error(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["mlm", *args])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_bad_numbers(capsys, tmp_path):
    assert "--max-steps must be a positive" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--max-steps", "0")
    assert "--eval-fraction" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--eval-fraction", "0.9")


def test_resume_without_checkpoint_and_checkpoints_without_resume(capsys, tmp_path):
    assert "Nothing to resume" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--resume")
    (tmp_path / "checkpoint-10").mkdir()
    assert "pass --resume" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path))


def test_incomplete_and_corrupt_checkpoints_are_named(capsys, tmp_path):
    ckpt = tmp_path / "checkpoint-10"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text("{}")
    assert "incomplete" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--resume")
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt"):
        (ckpt / name).write_bytes(b"\x00garbage")
    err = run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--resume")
    assert "corrupt" in err and "checkpoint-10" in err
    with pytest.raises(PretrainError, match="does not exist"):
        check_checkpoint(tmp_path / "checkpoint-99")


def test_output_dir_that_is_a_file_and_missing_tokenizer(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is a file" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path / "file"))
    (tmp_path / "not_a_tokenizer").mkdir()
    for folder in ("nope", "not_a_tokenizer"):
        err = run_main_expecting_error(capsys, "--output-dir", str(tmp_path / "out"), "--tokenizer", str(tmp_path / folder))
        assert "--tokenizer" in err and "tokenizer.json" in err
    assert not (tmp_path / "out").exists(), "nothing written"


def test_unknown_profile_and_corpus(capsys, tmp_path, offline):
    assert "Valid profiles" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--profile", "bogus")
    assert "No such file" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--corpus", "/no/such/corpus.txt")
    assert "Hugging Face Hub" in run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--corpus", "someone/corpus")
    assert not any(tmp_path.iterdir()), "nothing written"


def test_checkpoint_without_random_states_or_with_a_truncated_optimizer(tmp_path):
    fake_checkpoint(tmp_path / "a" / "checkpoint-10", rng=False)
    with pytest.raises(PretrainError, match="rng_state"):
        check_checkpoint(tmp_path / "a" / "checkpoint-10")
    fake_checkpoint(tmp_path / "b" / "checkpoint-10")
    check_checkpoint(tmp_path / "b" / "checkpoint-10")  # complete and readable: no error
    good = (tmp_path / "b" / "checkpoint-10" / "optimizer.pt").read_bytes()
    fake_checkpoint(tmp_path / "c" / "checkpoint-10", optimizer_bytes=good[: len(good) // 2])
    with pytest.raises(PretrainError, match="corrupt"):
        check_checkpoint(tmp_path / "c" / "checkpoint-10")


def test_resume_with_other_settings_is_refused(capsys, tmp_path):
    from nlp_course.pretrain import build_parser
    from nlp_course.runs import RUN_CONFIG, make_run_config

    fake_checkpoint(tmp_path / "checkpoint-10")
    original = build_parser().parse_args(["mlm", "--output-dir", str(tmp_path), *TINY])
    (tmp_path / RUN_CONFIG).write_text(json.dumps(make_run_config(**vars(original)).identity()))
    err = run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--resume", *TINY[:2], "--block-size", "32",
                                   "--batch-size", "8")
    assert "other settings" in err and "seq_length: 64 then, 32 now" in err
