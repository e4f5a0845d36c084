import pytest

from nlp_course import bench


@pytest.fixture(scope="module")
def results():
    return bench.bench_tokenizers(megabytes=0.3, repeats=2, vocab_size=1_000, log=lambda *a: None)


def test_tokenizer_benchmark_measures_everything(results):
    assert set(results["train_mb_per_s"]) == {f"{k} / {c}" for k in ("bpe", "wordpiece", "unigram")
                                              for c in ("spanish prose", "python code")}
    assert all(v > 0 for v in results["train_mb_per_s"].values())
    assert results["corpora_mb"]["python code"] >= 0.3
    assert results["encode_mb_per_s"]["batched"] > 0 and results["batched_speedup"] > 0
    assert set(results["pretokenize_mb_per_s"]) == {"python tokenize module", "rust pre-tokenizer only", "rust full encoding"}
    # the two timed trainings do the same work: the overhead is a ratio near zero, not a wall-clock claim
    assert -0.5 < results["train_tokenizer_overhead"] < 1.0
    assert results["corpora_mb"]["spanish prose"] >= 0.2


def test_report_reads_as_a_table(results):
    text = bench.format_tokenizer_results(results)
    for phrase in ("Training throughput", "batched is", "tokenize module", "Overhead of train_tokenizer", "10 % goal"):
        assert phrase in text


def test_direct_and_wrapped_training_learn_the_same_vocabulary():
    from nlp_course.code_corpus import iter_python_files
    from nlp_course.tokenization import train_tokenizer

    code = [text for _, text in iter_python_files()][:40]
    direct = bench._direct_bpe(code, 600)
    ours = train_tokenizer(code, "bpe", 600, family="gpt2")
    assert direct.get_vocab() == ours.get_vocab()


def test_bad_arguments_exit_with_a_message(capsys):
    with pytest.raises(SystemExit):
        bench.main(["tokenizers", "--megabytes", "0"])
    assert "--megabytes must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["nothing"])


def test_packing_benchmark_measures_both_ways_on_the_same_tokens():
    r = bench.bench_packing(megabytes=0.3, seq_length=128, repeats=1, vocab_size=1_000, log=lambda *a: None)
    assert set(r["tokens_per_second"]) == {"constant_length", "datasets_map"}
    assert all(v > 0 for v in r["tokens_per_second"].values()) and r["megabytes"] >= 0.3
    # both pack the same token stream into whole sequences, losing under one sequence per buffer or batch of files
    for name, n in r["tokens_out"].items():
        assert n % 128 == 0 and 0 <= r["tokens"] - n < 128 * 2, name
    ratio = (r["tokens_out"]["constant_length"] / r["seconds"]["constant_length"]) / (
        r["tokens_out"]["datasets_map"] / r["seconds"]["datasets_map"])
    assert r["constant_length_vs_map"] == pytest.approx(ratio, rel=0.01)
    text = bench.format_packing_results(r)
    assert "ConstantLengthDataset" in text and "datasets.map" in text and "x the throughput" in text
    with pytest.raises(SystemExit):
        bench.main(["packing", "--seq-length", "1"])
