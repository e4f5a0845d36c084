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


HAND_RESULTS = {
    "train_mb_per_s": {"bpe / python code": 5.04, "unigram / python code": 0.23},
    "encode_mb_per_s": {"batched": 4.1, "one by one": 2.4}, "batched_speedup": 1.71,
    "pretokenize_mb_per_s": {"python tokenize module": 4.7, "rust pre-tokenizer only": 1.9, "rust full encoding": 4.2},
    "rust_full_vs_python_tokenize": 0.89, "train_tokenizer_seconds": 0.99, "direct_tokenizers_seconds": 0.98,
    "train_tokenizer_overhead": -0.001, "train_tokenizer_overhead_range": [-0.21, 0.12],
}


def test_report_prints_the_numbers_and_the_verdict():
    text = bench.format_tokenizer_results(HAND_RESULTS)
    for line in ("  bpe / python code                5.04", "  unigram / python code            0.23",
                 "  batched                          4.10", "batched is 1.71x faster",
                 "  python tokenize module           4.70", "0.89x the speed", "0.99 s vs 0.98 s",
                 "-0.1% (within the 10 % goal)", "from -21.0% to +12.0%"):
        assert line in text, line
    over = bench.format_tokenizer_results({**HAND_RESULTS, "train_tokenizer_overhead": 0.2})
    assert "+20.0% (OVER the 10 % goal)" in over and "within" not in over


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
