"""bert, dlrm and rnnt: datasets, stand-ins and a full accuracy pipeline without Ray."""

import json
import shutil

import numpy as np
import pytest

from raybench.benchmarks import get_benchmark
from raybench.benchmarks.onnx_util import check_signature
from raybench.errors import DataError
from tests import pipeline

MODELS = ("bert", "dlrm", "rnnt")


@pytest.fixture(scope="module")
def standins(standin):
    """The session's stand-in of each benchmark."""
    return {model: standin(model) for model in MODELS}


def _copy(standin, tmp_path):
    """A private copy of a stand-in's code-root tree, for tests that damage files; returns
    its data directory."""
    root = standin.data_dir.parent.parent
    shutil.copytree(root, tmp_path / "root")
    return tmp_path / "root" / standin.data_dir.relative_to(root)


def run_pipeline(benchmark, standin, batch=5, transform=None):
    return pipeline.run_pipeline(benchmark, standin, batch=batch, transform=transform,
                                 reverse=True)


@pytest.mark.parametrize("benchmark_id, model", [
    ("bert-99", "bert"), ("bert-99.9", "bert"), ("dlrm-99", "dlrm"), ("dlrm-99.9", "dlrm"),
    ("rnnt", "rnnt"),
])
def test_registry(benchmark_id, model):
    assert get_benchmark(benchmark_id).name == model


@pytest.mark.parametrize("model", MODELS)
def test_standin_signature_matches(standins, model):
    benchmark = get_benchmark(model if model == "rnnt" else f"{model}-99")
    check_signature(standins[model].model, benchmark.inputs, model)


@pytest.mark.parametrize("model", MODELS)
def test_pipeline_scores_100(standins, model):
    benchmark = get_benchmark(model if model == "rnnt" else f"{model}-99")
    entries = run_pipeline(benchmark, standins[model])
    assert benchmark.accuracy(entries, standins[model].data_dir).value == pytest.approx(100.0)
    # duplicates of identical entries (LoadGen may log a sample twice) change nothing
    assert benchmark.accuracy(entries + entries[:3], standins[model].data_dir).value == pytest.approx(100.0)


def test_bert_standin_layout(standins):
    bert = get_benchmark("bert-99")
    data_dir = standins["bert"].data_dir
    dataset = bert.open_dataset(data_dir)
    assert dataset.total_count == 32
    dev = json.loads((data_dir.parent / "data" / "squad" / "dev-v1.1.json").read_text())
    questions = sum(len(p["qas"]) for a in dev["data"] for p in a["paragraphs"])
    assert questions < dataset.total_count  # some contexts need several windows
    feeds = dataset.feeds([0, 1])
    assert set(feeds) == {"input_ids", "segment_ids", "input_mask"}
    assert all(a.dtype == np.int32 and a.shape == (2, 384) for a in feeds.values())


def test_bert_exact_match_also_100(standins):
    bert = get_benchmark("bert-99")
    score = bert.accuracy(run_pipeline(bert, standins["bert"]), standins["bert"].data_dir)
    assert json.loads(score.official) == {"exact_match": 100.0, "f1": 100.0}


def test_bert_wrong_logits_score_low(standins):
    bert = get_benchmark("bert-99")
    entries = run_pipeline(bert, standins["bert"])
    rotated = [dict(e, qsl_idx=(e["qsl_idx"] + 1) % len(entries)) for e in entries]
    assert bert.accuracy(rotated, standins["bert"].data_dir).value < 60.0


def test_bert_missing_samples_count_as_wrong(standins):
    bert = get_benchmark("bert-99")
    entries = run_pipeline(bert, standins["bert"])
    assert bert.accuracy(entries[: len(entries) // 2], standins["bert"].data_dir).value < 100.0


def test_dlrm_feeds_concatenate_pairs(standins):
    dlrm = get_benchmark("dlrm-99")
    dataset = dlrm.open_dataset(standins["dlrm"].data_dir)
    feeds = dataset.feeds([3, 0])
    pairs = int(dataset.pair_counts([3, 0]).sum())
    assert feeds["dense_x"].shape == (pairs, 13) and feeds["dense_x"].dtype == np.float32
    assert feeds["indices"].shape == (26, pairs) and feeds["offsets"].shape == (26, pairs)
    assert (feeds["offsets"][5] == np.arange(pairs)).all()


def test_dlrm_log_format_is_prediction_label_pairs(standins):
    dlrm = get_benchmark("dlrm-99")
    dataset = dlrm.open_dataset(standins["dlrm"].data_dir)
    outputs = {"pred": np.linspace(0, 1, int(dataset.pair_counts([2]).sum()), dtype=np.float32)[:, None]}
    data = np.frombuffer(dlrm.responses(outputs, [2], dataset)[0], np.float32).reshape(-1, 2)
    lo, hi = dataset.partition[2], dataset.partition[3]
    assert np.array_equal(data[:, 0], outputs["pred"][:, 0])
    assert np.array_equal(data[:, 1], dataset.labels[lo:hi].astype(np.float32))


def test_dlrm_misaligned_pairs_lower_auc(standins):
    dlrm = get_benchmark("dlrm-99")

    def scramble(feeds):
        feeds = dict(feeds)
        feeds["dense_x"] = feeds["dense_x"][::-1].copy()
        feeds["indices"] = feeds["indices"][:, ::-1].copy()
        return feeds

    entries = run_pipeline(dlrm, standins["dlrm"], transform=scramble)
    assert dlrm.accuracy(entries, standins["dlrm"].data_dir).value < 95.0


def test_rnnt_lengths_mask_padding(standins):
    rnnt = get_benchmark("rnnt")

    def ignore_lengths(feeds):
        return dict(feeds, feature_lengths=np.full_like(feeds["feature_lengths"], 512))

    entries = run_pipeline(rnnt, standins["rnnt"], transform=ignore_lengths)
    assert rnnt.accuracy(entries, standins["rnnt"].data_dir).value < 50.0


def test_rnnt_manifest_filters_long_utterances(standins):
    rnnt = get_benchmark("rnnt")
    data_dir = standins["rnnt"].data_dir
    dataset = rnnt.open_dataset(data_dir)
    manifest = json.loads((data_dir / "LibriSpeech" / "dev-clean-wav.json").read_text())
    assert len(manifest) == dataset.total_count + 1
    assert dataset.names == [f"RNNT_input_512_{i}" for i in range(dataset.total_count)]
    assert all(set(t) <= set(" abcdefghijklmnopqrstuvwxyz'") for t in dataset.transcripts)
    assert dataset.transcripts[0] == manifest[0]["transcript"].lower()


def test_rnnt_val_map_names_the_files_and_must_match_the_manifest(standins, tmp_path):
    rnnt = get_benchmark("rnnt")
    data_dir = _copy(standins["rnnt"], tmp_path)
    names = rnnt.open_dataset(data_dir).names
    beside = data_dir / "rnnt_dev_clean_512" / "val_map_512.txt"  # where NVIDIA's script writes it
    beside.write_text("\n".join(names[::-1]) + "\n")
    dataset = rnnt.open_dataset(data_dir)
    assert dataset.names == names[::-1]
    assert dataset.transcripts == rnnt.open_dataset(standins["rnnt"].data_dir).transcripts
    beside.write_text("\n".join(names[:-1]) + "\n")
    with pytest.raises(DataError, match=f"val_map_512.txt: {len(names) - 1} utterances"):
        rnnt.open_dataset(data_dir)


# --- bad files -------------------------------------------------------------------


def test_bert_bad_files(standins, tmp_path):
    bert = get_benchmark("bert-99")
    data_dir = _copy(standins["bert"], tmp_path)
    tokens = data_dir / "squad_tokenized"
    np.save(tokens / "segment_ids.npy", np.zeros((3, 384), np.int32))
    with pytest.raises(DataError, match="segment_ids.npy"):
        bert.open_dataset(data_dir)
    np.save(tokens / "segment_ids.npy", np.zeros((32, 384), np.int64))
    with pytest.raises(DataError, match="segment_ids.npy"):
        bert.open_dataset(data_dir)
    shutil.copy(standins["bert"].data_dir / "squad_tokenized" / "segment_ids.npy", tokens)
    raw = (tokens / "input_mask.npy").read_bytes()
    (tokens / "input_mask.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="input_mask.npy"):
        bert.open_dataset(data_dir)
    (tokens / "input_ids.npy").unlink()
    with pytest.raises(DataError, match="input_ids.npy"):
        bert.open_dataset(data_dir)
    shutil.rmtree(tokens)
    with pytest.raises(DataError, match="squad_tokenized"):
        bert.open_dataset(data_dir)


def test_bert_accuracy_needs_annotations(standins, tmp_path):
    bert = get_benchmark("bert-99")
    entries = run_pipeline(bert, standins["bert"])
    data_dir = _copy(standins["bert"], tmp_path)
    vocab = data_dir.parent / "models" / "bert" / "vocab.txt"
    saved = vocab.read_bytes()
    vocab.unlink()
    with pytest.raises(DataError, match=r"missing BERT vocab.txt: tried .*squad/vocab.txt, "
                                        r".*build/models/bert/vocab.txt"):
        bert.accuracy(entries, data_dir)
    vocab.write_bytes(saved)
    (data_dir.parent / "data" / "squad" / "dev-v1.1.json").write_text("{not json")
    with pytest.raises(DataError, match="dev-v1.1.json"):
        bert.accuracy(entries, data_dir)


def test_bert_feature_count_mismatch(standins, tmp_path):
    bert = get_benchmark("bert-99")
    data_dir = _copy(standins["bert"], tmp_path)
    np.save(data_dir / "squad_tokenized" / "input_ids.npy", np.zeros((5, 384), np.int32))
    with pytest.raises(DataError, match="input_ids.npy"):
        bert.accuracy([], data_dir)


def test_dlrm_bad_files(standins, tmp_path):
    dlrm = get_benchmark("dlrm-99")
    data_dir = _copy(standins["dlrm"], tmp_path)
    root = data_dir / "criteo" / "full_recalib"
    pairs = np.load(root / "categorical_int32.npy").shape[0]
    np.save(root / "sample_partition.npy", np.array([0, 5, 3, pairs], np.int32))
    with pytest.raises(DataError, match="sample_partition.npy"):
        dlrm.open_dataset(data_dir)
    np.save(root / "sample_partition.npy", np.array([0, 5, pairs + 4], np.int32))
    with pytest.raises(DataError, match="sample_partition.npy"):
        dlrm.open_dataset(data_dir)
    np.save(root / "sample_partition.npy", np.array([0, 5], np.int32))  # N entries: count appended
    assert dlrm.open_dataset(data_dir).total_count == 2
    np.save(root / "categorical_int32.npy", np.zeros((pairs, 13), np.int32))
    with pytest.raises(DataError, match="categorical_int32.npy"):
        dlrm.open_dataset(data_dir)
    raw = (root / "numeric_int8_chw4.npy").read_bytes()
    (root / "numeric_int8_chw4.npy").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(DataError, match="numeric_int8_chw4.npy"):
        dlrm.open_dataset(data_dir)
    (root / "numeric_int8_chw4.npy").unlink()
    with pytest.raises(DataError, match="numeric"):
        dlrm.open_dataset(data_dir)
    (root / "ground_truth.npy").unlink()
    with pytest.raises(DataError, match="ground_truth.npy"):
        dlrm.accuracy([], data_dir)


def test_dlrm_rejects_logged_labels_that_differ_from_ground_truth(standins):
    dlrm = get_benchmark("dlrm-99")
    entries = run_pipeline(dlrm, standins["dlrm"])
    data = np.frombuffer(bytes.fromhex(entries[0]["data"]), np.float32).reshape(-1, 2).copy()
    data[0, 1] = 1 - data[0, 1]
    entries[0] = dict(entries[0], data=data.tobytes().hex())
    with pytest.raises(DataError, match=f"sample {entries[0]['qsl_idx']} logs labels"):
        dlrm.accuracy(entries, standins["dlrm"].data_dir)


def test_dlrm_prefers_fp32_numeric(standins, tmp_path):
    dlrm = get_benchmark("dlrm-99")
    data_dir = _copy(standins["dlrm"], tmp_path)
    root = data_dir / "criteo" / "full_recalib"
    reference = dlrm.open_dataset(data_dir).feeds([0, 1])["dense_x"]
    pairs = np.load(root / "categorical_int32.npy").shape[0]
    np.save(root / "numeric_fp32.npy", np.full((pairs, 13), 7.0, np.float32))
    dense = dlrm.open_dataset(data_dir).feeds([0, 1])["dense_x"]
    assert dense.shape == reference.shape and (dense == 7.0).all()


def test_rnnt_bad_files(standins, tmp_path):
    rnnt = get_benchmark("rnnt")
    data_dir = _copy(standins["rnnt"], tmp_path)
    dataset = rnnt.open_dataset(data_dir)
    name = dataset.names[0] + ".npy"
    np.save(data_dir / "rnnt_dev_clean_512" / "fp16" / name, np.zeros((500, 240), np.float16))
    with pytest.raises(DataError, match=name):
        dataset.load([0])
    np.save(data_dir / "rnnt_dev_clean_512" / "int32" / (dataset.names[1] + ".npy"),
            np.array([600], np.int32))
    with pytest.raises(DataError, match=dataset.names[1]):
        dataset.load([1])
    (data_dir / "rnnt_dev_clean_512" / "fp16" / (dataset.names[2] + ".npy")).unlink()
    with pytest.raises(DataError, match=dataset.names[2]):
        dataset.feeds([2])
    (data_dir / "LibriSpeech" / "dev-clean-wav.json").write_text('[{"transcript": "x"}]')
    with pytest.raises(DataError, match="dev-clean-wav.json"):
        rnnt.open_dataset(data_dir)
    (data_dir / "LibriSpeech" / "dev-clean-wav.json").unlink()
    with pytest.raises(DataError, match="dev-clean-wav.json"):
        rnnt.open_dataset(data_dir)
    shutil.rmtree(data_dir / "rnnt_dev_clean_512" / "int32")
    with pytest.raises(DataError, match="int32"):
        rnnt.open_dataset(data_dir)


def test_synth_is_deterministic(tmp_path):
    from raybench.standins import build_standin

    for benchmark_id in ("bert-99", "dlrm-99", "rnnt"):
        a = build_standin(benchmark_id, tmp_path / f"{benchmark_id}_a", 8, seed=4)
        b = build_standin(benchmark_id, tmp_path / f"{benchmark_id}_b", 8, seed=4)
        root_a, root_b = a.data_dir.parent.parent, b.data_dir.parent.parent
        files_a = sorted(p.relative_to(root_a) for p in root_a.rglob("*") if p.is_file())
        files_b = sorted(p.relative_to(root_b) for p in root_b.rglob("*") if p.is_file())
        assert files_a == files_b
        for rel in files_a:
            assert (root_a / rel).read_bytes() == (root_b / rel).read_bytes(), rel
