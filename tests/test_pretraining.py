import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import datasets
import pytest
import torch
from helpers import fake_checkpoint, killed_after_saving, notebook_function, schedule_rates, torchrun
from transformers import DataCollatorForLanguageModeling, Trainer, get_linear_schedule_with_warmup

from nlp_course import mlm
from nlp_course.checkpoints import check_checkpoint
from nlp_course.errors import PretrainError, RunInterrupted
from nlp_course.objectives import IGNORE_INDEX, SeededMLMCollator, mask_once, mask_tokens, nsp_pairs
from nlp_course.packing import group_texts
from nlp_course.pretrain import main
from nlp_course.runs import make_run_config


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
    # one thread per process: a tiny model gains little from two, and loses ten times over when another
    # job keeps a core busy (torch's threads then wait for each other); torchrun sets the same
    env = {**os.environ, "NLP_COURSE_PROFILE": "toy", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "nlp_course.pretrain", "mlm", *TINY, *args], env




def test_resume_after_a_kill_ends_where_the_uninterrupted_run_ends(tmp_path, capsys):
    # 12 documents give about 24 steps an epoch: the run is killed at 20 and crosses an epoch after resuming
    common = ["--max-steps", "40", "--save-steps", "10", "--max-documents", "12"]
    command, env = cli("--output-dir", str(tmp_path / "straight"), *common)
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=tmp_path)
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert not (tmp_path / "runs").exists(), "TensorBoard writes inside --output-dir, never in the working directory"

    killed = tmp_path / "killed"
    command, env = cli("--output-dir", str(killed), *common)
    crash = killed_after_saving("mlm", 20, command)
    done = subprocess.run(crash, env=env, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr[-3000:]  # SIGKILL, not an end or an error
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    assert not (killed / "metrics.json").exists() and not (killed / "final").exists()
    check_checkpoint(killed / "checkpoint-20")
    # what a kill while Trainer writes checkpoint-30 in place leaves: half its weights, nothing else
    weights = (killed / "checkpoint-20" / "model.safetensors").read_bytes()
    (killed / "checkpoint-30").mkdir()
    (killed / "checkpoint-30" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    err = run_main_expecting_error(capsys, "--output-dir", str(killed), *TINY, *common, "--resume")
    assert "checkpoint-30" in err and "incomplete" in err, "the latest checkpoint is never resumed half-written"

    # from checkpoint-20 by name: the half-written checkpoint-30 is neither read nor in the way
    command, env = cli("--output-dir", str(killed), *common, "--resume", str(killed / "checkpoint-20"))
    subprocess.run(command, env=env, check=True, capture_output=True)
    resumed = json.loads((killed / "metrics.json").read_text())
    check_checkpoint(killed / "checkpoint-30")  # written again, whole

    epoch_steps = json.loads((tmp_path / "straight" / "checkpoint-40" / "trainer_state.json").read_text())["epoch"]
    assert 20 / 40 * epoch_steps < 1 < epoch_steps, "the resumed part crosses an epoch boundary"
    assert resumed["resumed_from_step"] == 20 and resumed["steps"] == straight["steps"] == 40
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
    done = torchrun(command, env)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 6
    # an untrained model's loss is near ln(vocabulary): a loss scaled by the number of processes is not
    assert abs(metrics["initial_eval_loss"] - math.log(2_000)) < 0.3
    assert metrics["final_eval_loss"] < metrics["initial_eval_loss"]
    assert 6 * 8 * 64 < metrics["train_tokens"] <= 6 * 8 * 2 * 64  # two processes, each its own batches


# ---------------------------------------------------------------- inside a run: masks, evaluation set, accumulation
# run_mlm in this process on 3 documents (41 training blocks of 64 tokens), 8 blocks a micro-batch, 2 micro-batches a
# step: 3 steps an epoch, the last one of 8 + 1 blocks; 8 steps are 2 epochs and 2 steps of a third (2 s a run).
SMALL_RUN = dict(seq_length=64, batch_size=8, grad_accumulation=2, max_steps=8, eval_steps=8, max_documents=3, seed=42)


@pytest.fixture(scope="module")
def tokenizer_dir(tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


def run_in_process(output_dir, tokenizer_dir, stop_at=None, resume=None):
    """``run_mlm`` on ``SMALL_RUN``, recording what each training micro-batch holds with the learning rate and the
    optimizer steps done before it, and each evaluation's batches. ``stop_at``: a stop requested at that step (what
    a first Ctrl-C does: a checkpoint there, then ``RunInterrupted``)."""
    trained, evaluations, optimizer_steps = [], [], []

    class Recorded(Trainer):
        def create_optimizer(self, *args, **kwargs):  # the optimizer's own steps, not Trainer's count of them
            optimizer = super().create_optimizer(*args, **kwargs)
            optimizer.register_step_post_hook(lambda *_: optimizer_steps.append(len(trained)))
            return optimizer

        def training_step(self, model, inputs, *args, **kwargs):
            trained.append(SimpleNamespace(input_ids=inputs["input_ids"].clone(), labels=inputs["labels"].clone(),
                                           lr=self.optimizer.param_groups[0]["lr"], step=len(optimizer_steps)))
            return super().training_step(model, inputs, *args, **kwargs)

        def evaluate(self, *args, **kwargs):
            evaluations.append([])
            return super().evaluate(*args, **kwargs)

        def prediction_step(self, model, inputs, *args, **kwargs):
            evaluations[-1].append((inputs["input_ids"].clone(), inputs["labels"].clone()))
            return super().prediction_step(model, inputs, *args, **kwargs)

    class StopAt(mlm.StopOnRequest):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == stop_at:
                self.stop.requested = True
            return super().on_step_end(args, state, control, **kwargs)

    config = make_run_config("mlm", output_dir, "toy", tokenizer=str(tokenizer_dir), resume=resume, **SMALL_RUN)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model, and another job may keep the other core busy
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(mlm, "Trainer", Recorded)
            patch.setattr(mlm, "StopOnRequest", StopAt)
            if stop_at is None:
                metrics = mlm.run_mlm(config)
            else:
                with pytest.raises(RunInterrupted, match=f"step {stop_at}"):
                    mlm.run_mlm(config)
                metrics = None
    finally:
        torch.set_num_threads(threads)
    return SimpleNamespace(config=config, metrics=metrics, trained=trained, evaluations=evaluations,
                           optimizer_steps=optimizer_steps)


@pytest.fixture(scope="module")
def small_run(tokenizer_dir, tmp_path_factory):
    return run_in_process(tmp_path_factory.mktemp("mlm") / "run", tokenizer_dir)


def unmasked(inputs, labels):
    """The block before masking: a masked position's label is its original token, the others are unchanged."""
    return torch.where(labels != IGNORE_INDEX, labels, inputs)


def test_every_epoch_masks_anew_the_seeded_collators_masks_of_that_epoch(small_run, tokenizer):
    seen = Counter()
    masks = {}  # (block, epoch) -> labels
    for batch in small_run.trained:
        for inputs, labels in zip(batch.input_ids, batch.labels, strict=True):
            block = tuple(unmasked(inputs, labels).tolist())
            epoch = seen[block]  # every epoch shows each block once: its n-th showing is in epoch n - 1 (from 0)
            seen[block] += 1
            expected = SeededMLMCollator(tokenizer, seed=42, epoch=epoch)([{"input_ids": list(block)}])
            assert torch.equal(inputs, expected["input_ids"][0]) and torch.equal(labels, expected["labels"][0]), (
                f"a block shown for the {epoch + 1}. time is not masked as epoch {epoch}")
            masks[block, epoch] = labels
    assert len(seen) == 41 and sorted(Counter(seen.values()).items()) == [(2, 9), (3, 32)], "2 epochs, then 2 x 16 blocks"
    # dynamic masking: no block keeps its mask from one epoch to the next
    for block, times in seen.items():
        shown = [masks[block, epoch] for epoch in range(times)]
        assert not any(torch.equal(a, b) for a, b in zip(shown, shown[1:], strict=False))


def test_the_evaluation_set_is_masked_once_with_the_runs_seed(small_run, tokenizer):
    first, *others = small_run.evaluations
    assert len(others) == 2, "the untrained model, at step 8, and final_metrics' own evaluation"
    for evaluation in others:  # the same tokens scored, masked the same way, every time
        assert len(evaluation) == len(first)
        assert all(torch.equal(a, b) for batch, again in zip(first, evaluation, strict=True) for a, b in zip(batch, again, strict=True))
    for inputs, labels in first:  # masked as the seeded collator masks them with the run's seed, outside any epoch
        blocks = [{"input_ids": row.tolist()} for row in unmasked(inputs, labels)]
        expected = SeededMLMCollator(tokenizer, seed=42, epoch=-1)(blocks)
        assert torch.equal(inputs, expected["input_ids"]) and torch.equal(labels, expected["labels"])
    # two evaluations of the final model (Trainer's at step 8, final_metrics' after training): one loss
    state = json.loads((small_run.config.output_dir / "checkpoint-8" / "trainer_state.json").read_text())
    at_step_8 = [e["eval_loss"] for e in state["log_history"] if "eval_loss" in e and e["step"] == 8]
    assert at_step_8 == [small_run.metrics["final_eval_loss"]]


def test_mask_once_masks_every_example_once_with_its_own_probabilities(tokenizer):
    rows = batch_of_ids(tokenizer, rows=200, length=64, seed=1)
    dataset = datasets.Dataset.from_dict({"input_ids": [r[: 40 + i % 25].tolist() for i, r in enumerate(rows)]})
    masked = mask_once(dataset, tokenizer, seed=7, mlm_probability=0.3, mask_replace_prob=1.0, random_replace_prob=0.0)
    collator = SeededMLMCollator(tokenizer, mlm_probability=0.3, seed=7, epoch=-1, mask_replace_prob=1.0,
                                 random_replace_prob=0.0)
    n_masked = n_maskable = 0
    for original, row in zip(dataset, masked, strict=True):
        ids, inputs, labels = original["input_ids"], row["input_ids"], row["labels"]
        assert len(inputs) == len(labels) == len(ids)  # unpadded, as the blocks were
        expected = collator([{"input_ids": ids}])
        assert inputs == expected["input_ids"][0].tolist() and labels == expected["labels"][0].tolist()
        chosen = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
        assert all(labels[i] == ids[i] and inputs[i] == tokenizer.mask_token_id for i in chosen)  # all <mask>: 100 %
        assert all(inputs[i] == ids[i] for i in range(len(ids)) if i not in chosen)
        n_masked, n_maskable = n_masked + len(chosen), n_maskable + len(ids) - 2
    # 10,200 maskable tokens: the standard deviation of the share is 0.0045; 0.15 is 33 of them away
    assert abs(n_masked / n_maskable - 0.3) < 0.03
    assert mask_once(dataset, tokenizer, seed=7, mlm_probability=0.3, mask_replace_prob=1.0,
                     random_replace_prob=0.0)["labels"] == masked["labels"]
    assert mask_once(dataset, tokenizer, seed=8)["labels"] != mask_once(dataset, tokenizer, seed=7)["labels"]


def linear_schedule(max_steps, lr):
    """The learning rate of each optimizer step: the linear schedule, 6 % warmup (rounded up), stepped once a step."""
    return schedule_rates(lambda optimizer: get_linear_schedule_with_warmup(optimizer, math.ceil(0.06 * max_steps), max_steps),
                          max_steps, lr)


def test_gradient_accumulation_steps_once_per_two_micro_batches(small_run):
    trained, metrics = small_run.trained, small_run.metrics
    assert metrics["steps"] == 8 and len(small_run.optimizer_steps) == 8, "8 optimizer steps, not 16"
    # each step's micro-batches: 2 of 8 blocks, the last step of an epoch 8 + 1 (41 blocks an epoch)
    per_step = [[len(b.input_ids) for b in trained if b.step == step] for step in range(8)]
    assert per_step == [[8, 8], [8, 8], [8, 1], [8, 8], [8, 8], [8, 1], [8, 8], [8, 8]]
    # the schedule steps with the optimizer: both micro-batches of step m train at step m's rate
    rates = linear_schedule(8, small_run.config.learning_rate)
    assert len(set(rates)) == 8 and [b.lr for b in trained] == pytest.approx([rates[b.step] for b in trained], rel=1e-9)
    state = json.loads((small_run.config.output_dir / "checkpoint-8" / "trainer_state.json").read_text())
    logged = {e["step"]: e for e in state["log_history"] if "learning_rate" in e}
    assert logged.keys() == {2, 4, 6, 8} and all(logged[s]["learning_rate"] == pytest.approx(rates[s - 1]) for s in logged)
    # tokens: batch x block x accumulation (x 1 process) a full step; what was trained on, in metrics.json
    assert logged[2]["num_input_tokens_seen"] == 2 * 8 * 64 * 2
    assert metrics["train_tokens"] == sum(b.input_ids.numel() for b in trained) == (2 * 41 + 2 * 2 * 8) * 64
    assert json.loads((small_run.config.output_dir / "metrics.json").read_text())["train_tokens"] == 7_296
    optimizer = torch.load(small_run.config.output_dir / "checkpoint-8" / "optimizer.pt", weights_only=True)
    assert {s["step"].item() for s in optimizer["state"].values()} == {8.0}


def test_resume_with_gradient_accumulation_trains_on_what_the_uninterrupted_run_trains_on(small_run, tokenizer_dir,
                                                                                        tmp_path):
    # stopped at step 5, the second of epoch 1's three (epoch 1.67 in Trainer's state: rounding it would say 2);
    # resumed, it skips epoch 1's first 4 micro-batches, ends epoch 1 and crosses into epoch 2
    stopped = run_in_process(tmp_path / "run", tokenizer_dir, stop_at=5)
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-5"]
    assert 1.5 < json.loads((tmp_path / "run" / "checkpoint-5" / "trainer_state.json").read_text())["epoch"] < 2
    resumed = run_in_process(tmp_path / "run", tokenizer_dir, resume="latest")
    both = stopped.trained + resumed.trained
    assert len(both) == len(small_run.trained) == 16 and len(resumed.optimizer_steps) == 3
    for a, b in zip(both, small_run.trained, strict=True):  # the same blocks, masks and rates, in the same order
        assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels) and a.lr == pytest.approx(b.lr)
    assert resumed.metrics["resumed_from_step"] == 5 and resumed.metrics["steps"] == 8
    assert resumed.metrics["train_tokens"] == small_run.metrics["train_tokens"]
    assert abs(resumed.metrics["final_eval_loss"] - small_run.metrics["final_eval_loss"]) < 1e-6


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
    from nlp_course.runs import RUN_CONFIG

    fake_checkpoint(tmp_path / "checkpoint-10")
    original = build_parser().parse_args(["mlm", "--output-dir", str(tmp_path), *TINY])
    (tmp_path / RUN_CONFIG).write_text(json.dumps(make_run_config(**vars(original)).identity()))
    err = run_main_expecting_error(capsys, "--output-dir", str(tmp_path), "--resume", *TINY[:2], "--block-size", "32",
                                   "--batch-size", "8")
    assert "other settings" in err and "seq_length: 64 then, 32 now" in err
