"""ELECTRA (nlp_course.electra): the masking rule, the corruption's labels, the loss, shared embeddings,
sampling, the detector's metrics, the command line (kill and resume, torchrun, bad options) and the saved folders."""

import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.torch
import torch
from helpers import killed_after_saving, notebook_function, torchrun
from sklearn.metrics import roc_auc_score
from transformers import AutoModelForSequenceClassification, ElectraForPreTraining, pipeline, set_seed

from nlp_course.checkpoints import layout_of
from nlp_course.data import load_corpus
from nlp_course.electra import (
    ELECTRA_MASKING,
    ElectraPretrainingModel,
    collapse_warning,
    detection_metrics,
    discriminator_loss,
    electra_collator,
    electra_configs,
    electra_loss,
    electra_model,
    gumbel_max,
    load_electra,
    replaced_labels,
    roc_auc,
    save_electra,
    step_flops,
)
from nlp_course.objectives import IGNORE_INDEX, mask_tokens
from nlp_course.pretrain import main

TINY = SimpleNamespace(hidden_size=64, num_layers=2, num_heads=2)


def ordinary_ids(tokenizer, rows, length, seed=0):
    rng = np.random.default_rng(seed)
    first = max(tokenizer.all_special_ids) + 1
    body = rng.integers(first, len(tokenizer), size=(rows, length - 2))
    bos = np.full((rows, 1), tokenizer.bos_token_id)
    eos = np.full((rows, 1), tokenizer.eos_token_id)
    return torch.tensor(np.concatenate([bos, body, eos], axis=1))


# ---------------------------------------------------------------- masking: 15 %, then 85 / 15, no random token
def test_electra_masking_rule_on_a_large_batch(tokenizer):
    ids = ordinary_ids(tokenizer, 300, 128)
    ids[:5, 60:] = tokenizer.pad_token_id  # some padding too
    inputs, labels = mask_tokens(ids, tokenizer, torch.Generator().manual_seed(0), **ELECTRA_MASKING)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any(), "special and padding tokens are never chosen"
    assert abs(chosen.sum().item() / (~special).sum().item() - 0.15) < 0.005
    as_mask = chosen & (inputs == tokenizer.mask_token_id)
    unchanged = chosen & (inputs == ids)
    assert abs(as_mask.sum().item() / chosen.sum().item() - 0.85) < 0.01
    assert (as_mask | unchanged)[chosen].all(), "no random token: a chosen token is the mask or itself"
    assert torch.equal(inputs[~chosen], ids[~chosen]) and torch.equal(labels[chosen], ids[chosen])


def test_masking_written_out_in_notebook_05_is_the_packages(tokenizer):
    electra_mask = notebook_function("05_pretraining_electra.ipynb", "electra_mask")
    ids = ordinary_ids(tokenizer, 20, 64, seed=1)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    ours = electra_mask(ids, special, tokenizer.mask_token_id, torch.Generator().manual_seed(3))
    theirs = mask_tokens(ids, tokenizer, torch.Generator().manual_seed(3), **ELECTRA_MASKING)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


def test_the_collator_uses_electras_rule(tokenizer):
    collator = electra_collator(tokenizer, seed=0, pad_to_multiple_of=None)
    batch = collator([{"input_ids": row.tolist()} for row in ordinary_ids(tokenizer, 200, 64)])
    chosen = batch["labels"] != IGNORE_INDEX
    changed = batch["input_ids"] != torch.where(chosen, batch["labels"], batch["input_ids"])
    assert (batch["input_ids"][changed] == tokenizer.mask_token_id).all()
    assert 0.80 < (batch["input_ids"][chosen] == tokenizer.mask_token_id).float().mean() < 0.90


# ---------------------------------------------------------------- corruption, labels and loss
def test_a_correct_sample_counts_as_original():
    original = torch.tensor([[5, 6, 7, 8, 1]])
    corrupted = torch.tensor([[5, 9, 7, 3, 1]])  # 6 -> 9 and 8 -> 3 replaced; 7 masked and sampled back as 7
    assert replaced_labels(original, corrupted).tolist() == [[0.0, 1.0, 0.0, 1.0, 0.0]]


def test_the_combined_loss_against_a_hand_computation():
    logits = torch.tensor([[2.0, -1.0, 0.0, 3.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    attention = torch.tensor([[1, 1, 1, 0]])  # the last token is padding: left out
    sigmoid = [1 / (1 + math.exp(-x)) for x in (2.0, -1.0, 0.0)]
    by_hand = -(math.log(sigmoid[0]) + math.log(1 - sigmoid[1]) + math.log(sigmoid[2])) / 3
    assert discriminator_loss(logits, labels, attention).item() == pytest.approx(by_hand, rel=1e-6)
    assert electra_loss(torch.tensor(2.5), torch.tensor(by_hand)).item() == pytest.approx(2.5 + 50 * by_hand, rel=1e-6)
    assert electra_loss(torch.tensor(2.5), torch.tensor(0.1), discriminator_weight=1.0).item() == pytest.approx(2.6)


def test_the_models_loss_is_the_sum_of_its_parts(tokenizer):
    torch.manual_seed(0)
    model = electra_model(tokenizer, TINY, 64).eval()
    batch = electra_collator(tokenizer, seed=0)([{"input_ids": row.tolist()} for row in ordinary_ids(tokenizer, 4, 64)])
    out = model(**batch)
    masked = out.generator_token_loss != IGNORE_INDEX
    assert masked.equal(batch["labels"] != IGNORE_INDEX)
    by_parts = out.generator_token_loss[masked].mean() + 50 * discriminator_loss(
        out.discriminator_logits, out.is_replaced.clamp(min=0), batch["attention_mask"])
    assert out.loss.item() == pytest.approx(by_parts.item(), rel=1e-5)
    assert torch.equal(model(**batch).loss, out.loss), "evaluation samples the same replacements every time"
    assert ((out.is_replaced == 1) <= masked).all(), "only masked tokens can be replaced"


def test_gumbel_max_in_fp32_samples_the_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -30.0]).to(torch.float16).repeat(40_000, 1)
    samples = gumbel_max(logits, torch.Generator().manual_seed(0))
    assert samples.dtype == torch.long and samples.min() >= 0 and samples.max() < 5
    frequencies = torch.bincount(samples, minlength=5).float() / len(samples)
    expected = torch.softmax(logits[0].float(), -1)
    assert torch.allclose(frequencies, expected, atol=0.01), (frequencies, expected)


def test_no_gradient_flows_from_the_discriminator_into_the_generator(tokenizer):
    """The generator is trained by maximum likelihood only (not a GAN): lambda changes none of its gradients."""
    torch.manual_seed(0)
    model = electra_model(tokenizer, TINY, 64).eval()  # eval: the same samples in both passes, no dropout
    batch = electra_collator(tokenizer, seed=0)([{"input_ids": row.tolist()} for row in ordinary_ids(tokenizer, 2, 64)])
    shared = {id(p) for p in model.discriminator.electra.embeddings.parameters()}
    generator_only = [p for p in model.generator.parameters() if id(p) not in shared]
    gradients = []
    for weight in (1.0, 50.0):
        model.discriminator_weight = weight
        model.zero_grad()
        model(**batch).loss.backward()
        gradients.append(([p.grad.clone() for p in generator_only],
                          model.discriminator.discriminator_predictions.dense.weight.grad.clone()))
    assert all(torch.equal(a, b) for a, b in zip(gradients[0][0], gradients[1][0], strict=True))
    assert not torch.allclose(gradients[0][1], gradients[1][1]), "the discriminator's gradients do scale with lambda"


# ---------------------------------------------------------------- shared embeddings, saving, loading
def test_shared_embeddings_and_tied_output_survive_saving_and_loading(tokenizer, tmp_path):
    model = electra_model(tokenizer, TINY, 64)
    shared = model.discriminator.electra.embeddings
    assert model.generator.electra.embeddings is shared
    assert model.generator.generator_lm_head.weight is shared.word_embeddings.weight
    before = {name: tensor.clone() for name, tensor in shared.state_dict().items()}
    save_electra(model, tokenizer, tmp_path)
    loaded = load_electra(tmp_path)
    shared = loaded.discriminator.electra.embeddings
    assert loaded.generator.electra.embeddings is shared
    assert loaded.generator.generator_lm_head.weight is shared.word_embeddings.weight
    assert all(torch.equal(before[name], tensor) for name, tensor in shared.state_dict().items())
    generator_alone = type(loaded.generator).from_pretrained(tmp_path / "generator")
    assert generator_alone.generator_lm_head.weight is generator_alone.electra.embeddings.word_embeddings.weight


def test_generator_sizes_scale_width_heads_and_feed_forward():
    disc, gen = electra_configs(1000, 256, 12, 4, 128)
    assert (disc.embedding_size, disc.hidden_size, disc.intermediate_size, disc.num_attention_heads) == (128, 256, 1024, 4)
    assert (gen.embedding_size, gen.hidden_size, gen.intermediate_size, gen.num_attention_heads) == (128, 64, 256, 1)
    assert gen.num_hidden_layers == disc.num_hidden_layers == 12
    _, half = electra_configs(1000, 256, 12, 4, 128, generator_ratio=0.5)
    assert (half.hidden_size, half.num_attention_heads, half.intermediate_size) == (128, 2, 512)
    with pytest.raises(ValueError, match="generator_ratio"):
        electra_configs(1000, 256, 12, 4, 128, generator_ratio=0)


def test_flops_give_mlm_more_steps_at_electra_small_sizes():
    disc, gen = electra_configs(30_522, 256, 12, 4, 128)
    electra, mlm = step_flops("electra", disc, gen, 128), step_flops("mlm", disc, None, 128)
    # by hand: the discriminator's body, 12 layers of 4 h^2 + 2 h ffn and the 128 -> 256 projection, 6 FLOPs each
    body = 6 * (128 * 256 + 12 * (4 * 256**2 + 2 * 256 * 1024)) + 12 * 12 * 256 * 128
    assert mlm == pytest.approx(body + 6 * (256 * 128 + 30_522 * 128) * 0.15)
    # lookups free: about 1.08 (the paper's script, counting lookups as dense products, gave BERT-Small 1.45x the steps)
    assert 1.05 < electra / mlm < 1.2


# ---------------------------------------------------------------- the detector's metrics
def test_roc_auc_equals_scikit_learns_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.2
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounded: many ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0 and roc_auc([0.5, 0.5], [0, 1]) == 0.5
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_detection_metrics_against_a_hand_count():
    logits = [[3.0, -2.0, 1.0, -1.0, 0.5, 9.0]]
    truth = [[1, 0, 0, 1, 1, IGNORE_INDEX]]  # the last token is padding
    m = detection_metrics(logits, truth, generator_argmax_hit=[[1, IGNORE_INDEX, 0, 0, IGNORE_INDEX, IGNORE_INDEX]])
    # called replaced: tokens 0, 2, 4; truly replaced: 0, 3, 4
    assert m["discriminator_accuracy"] == pytest.approx(3 / 5)
    assert m["discriminator_precision"] == pytest.approx(2 / 3) and m["discriminator_recall"] == pytest.approx(2 / 3)
    assert m["replaced_fraction"] == pytest.approx(3 / 5) and m["generator_accuracy"] == pytest.approx(1 / 3)
    assert m["discriminator_auc"] == pytest.approx(roc_auc_score([1, 0, 0, 1, 1], [3.0, -2.0, 1.0, -1.0, 0.5]))


def test_collapse_is_reported_in_words():
    collapsed = {"discriminator_recall": 0.0, "discriminator_accuracy": 0.86, "replaced_fraction": 0.14,
                 "discriminator_auc": 0.5}
    assert "collapsed" in collapse_warning(collapsed) and "0.860" in collapse_warning(collapsed)
    assert collapse_warning({**collapsed, "discriminator_recall": 0.3}) is None


def test_the_discriminator_learns_when_replacements_are_detectable(tokenizer, corpus_blocks):
    """Uniformly random replacements: a wiring bug would leave the AUC at 0.5, as the generator's do at toy scale.

    Against uniform replacements even a detector that ignores the context (a token's rarity) reaches about
    0.83, so this shows that the discriminator's side learns, not that it reads context.
    """
    set_seed(0)
    steps = 100
    model = electra_model(tokenizer, SimpleNamespace(hidden_size=32, num_layers=1, num_heads=1), 32, replacement="uniform")
    collator = electra_collator(tokenizer, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, eps=1e-6, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / steps))
    train, held_out = corpus_blocks
    order = torch.Generator().manual_seed(0)
    for step in range(steps):
        collator.epoch = step
        index = torch.randperm(len(train), generator=order)[:16].tolist()
        model(**collator([{"input_ids": train[i]} for i in index])).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    collator.epoch = -1
    with torch.no_grad():
        out = model(**collator([{"input_ids": block} for block in held_out]))
    assert detection_metrics(out.discriminator_logits, out.is_replaced)["discriminator_auc"] >= 0.8


@pytest.fixture(scope="module")
def corpus_blocks(tokenizer):
    """Blocks of 32 tokens (<s> ... </s>) from the course corpus: the first five documents held out."""
    documents = [row["text"] for row in load_corpus("corpus_es")]

    def pack(texts, length=32):
        stream = [t for d in texts for t in tokenizer(d, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]]
        n = length - 2
        return [[tokenizer.bos_token_id, *stream[i:i + n], tokenizer.eos_token_id] for i in range(0, len(stream) - n + 1, n)]

    return pack(documents[5:]), pack(documents[:5])


# ---------------------------------------------------------------- the command line
TINY_RUN = ["--profile", "toy", "--block-size", "64", "--batch-size", "8", "--max-documents", "12"]


def cli(*args):
    env = {**os.environ, "NLP_COURSE_PROFILE": "toy", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "nlp_course.pretrain", "electra", *TINY_RUN, *args], env


def test_kill_and_resume_ends_where_the_uninterrupted_run_ends(tmp_path):
    common = ["--max-steps", "16", "--save-steps", "8", "--eval-steps", "8"]
    command, env = cli("--output-dir", str(tmp_path / "straight"), *common)
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=tmp_path)
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())

    command, env = cli("--output-dir", str(tmp_path / "killed"), *common)
    done = subprocess.run(killed_after_saving("electra", 8, command), env=env, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr[-3000:]  # SIGKILL right after checkpoint-8, before checkpoint-16 begins
    assert [p.name for p in (tmp_path / "killed").glob("checkpoint-*")] == ["checkpoint-8"]
    assert not (tmp_path / "killed" / "metrics.json").exists(), "killed before the end"
    assert layout_of(tmp_path / "killed" / "checkpoint-8") == "electra"
    command, env = cli("--output-dir", str(tmp_path / "killed"), *common, "--resume",
                       str(tmp_path / "killed" / "checkpoint-8"))
    subprocess.run(command, env=env, check=True, capture_output=True)
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())

    assert resumed["resumed_from_step"] == 8 and resumed["steps"] == straight["steps"] == 16
    assert abs(resumed["final_eval_loss"] - straight["final_eval_loss"]) < 5e-5
    assert resumed["discriminator_auc"] == pytest.approx(straight["discriminator_auc"], abs=1e-6)
    for key in ("discriminator_accuracy", "discriminator_auc", "replaced_fraction", "generator_accuracy",
                "final_eval_loss", "initial_eval_loss", "final_perplexity", "tokens_per_second"):
        assert straight[key] is not None and math.isfinite(straight[key]), key
    assert straight["final_eval_loss"] < straight["initial_eval_loss"], "it learned"
    assert not list(tmp_path.rglob("pytorch_model*")), "no pickle-based weights"

    final = tmp_path / "straight" / "final"
    discriminator = ElectraForPreTraining.from_pretrained(final / "discriminator", use_safetensors=True)
    classifier = AutoModelForSequenceClassification.from_pretrained(final / "discriminator", num_labels=3)
    assert type(classifier).__name__ == "ElectraForSequenceClassification"
    assert torch.equal(classifier.electra.embeddings.word_embeddings.weight,
                       discriminator.electra.embeddings.word_embeddings.weight)
    fill = pipeline("fill-mask", model=str(final / "generator"), device=-1)
    assert len(fill("El agua del <mask> llegó.", top_k=3)) == 3


def test_two_processes_with_torchrun(tmp_path):
    command, env = cli("--output-dir", str(tmp_path / "ddp"), "--max-steps", "4", "--save-steps", "4",
                       "--eval-steps", "4")
    done = torchrun(command, env)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 4
    # an untrained generator's loss is near ln(vocabulary) and the discriminator's near ln 2, not doubled
    assert abs(metrics["initial_eval_loss"] - (math.log(2_000) + 50 * math.log(2))) < 3
    assert (tmp_path / "ddp" / "final" / "discriminator" / "model.safetensors").is_file()


def test_bad_electra_options_are_reported_before_training(capsys, tmp_path):
    for option, value, words in (("--generator-ratio", "0", "--generator-ratio must be above 0"),
                                 ("--generator-ratio", "1.5", "--generator-ratio"),
                                 ("--discriminator-weight", "-1", "--discriminator-weight must be positive")):
        with pytest.raises(SystemExit) as exit_info:
            main(["electra", "--output-dir", str(tmp_path / "run"), option, value])
        assert exit_info.value.code == 2
        assert words in capsys.readouterr().err
    assert not (tmp_path / "run").exists(), "nothing written"


def test_an_electra_checkpoint_is_not_resumed_as_mlm(capsys, tmp_path):
    model = ElectraPretrainingModel(*electra_configs(100, 32, 1, 1, 16))
    checkpoint = tmp_path / "checkpoint-4"
    checkpoint.mkdir()
    safetensors.torch.save_model(model, str(checkpoint / "model.safetensors"))
    (checkpoint / "trainer_state.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["mlm", "--output-dir", str(tmp_path), "--resume"])
    assert "checkpoint of an electra run" in capsys.readouterr().err
