"""Each benchmark's accuracy on a deliberately imperfect log, against a value worked out
here independently (counting, pycocotools directly, brute-force AUC, edits made on
purpose, voxel counts), not with raybench's own metric code."""

from __future__ import annotations

import json
import pickle
import re
import string
from collections import Counter

import numpy as np
import pytest

from raybench.benchmarks import get_benchmark
from tests.pipeline import run_pipeline


def payload(entry, dtype):
    return np.frombuffer(bytes.fromhex(entry["data"]), dtype).copy()


def with_payload(entry, array):
    return dict(entry, data=np.asarray(array).tobytes().hex())


def test_resnet50_wrong_labels_missing_samples_and_duplicates(standin):
    s = standin("resnet50")
    entries = run_pipeline(get_benchmark("resnet50"), s)
    wrong = {3, 17, 40, 41, 200}
    log = [with_payload(e, payload(e, np.float32) + 1) if e["qsl_idx"] in wrong else e
           for e in entries if e["qsl_idx"] not in (5, 6, 7)]
    log.append(with_payload(entries[10], np.float32([-5])))  # a later duplicate, ignored
    score = get_benchmark("resnet50").accuracy(log, s.data_dir)
    good, total = 253 - 5, 253
    assert score.value == pytest.approx(100.0 * good / total)
    assert score.official == f"accuracy={100.0 * good / total:.3f}%, good={good}, total={total}"


@pytest.mark.parametrize("model, inv_map", [("ssd-mobilenet", False), ("ssd-resnet34", True)])
def test_coco_moved_boxes_and_dropped_detections(standin, model, inv_map):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    s = standin(model)
    entries = run_pipeline(get_benchmark(model), s)
    log = []
    for e in entries:
        rows = payload(e, np.float32).reshape(-1, 7)
        if e["qsl_idx"] == 0:
            rows[:, 1:5] += 0.3  # moved: no longer overlapping
        if e["qsl_idx"] == 1:
            rows = rows[:1]  # only the first detection kept
        log.append(with_payload(e, rows))
    annotations = s.data_dir / "coco" / "annotations" / "instances_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
        images = truth.dataset["images"]
        category = [0] + truth.getCatIds()
        detections = []
        for e in log:
            image = images[e["qsl_idx"]]
            for _, ymin, xmin, ymax, xmax, score, label in payload(e, np.float32).reshape(-1, 7):
                h, w = image["height"], image["width"]
                detections.append({
                    "image_id": image["id"], "score": float(score),
                    "category_id": category[int(label)] if inv_map else int(label),
                    "bbox": [float(xmin * w), float(ymin * h), float((xmax - xmin) * w),
                             float((ymax - ymin) * h)]})
        evaluation = COCOeval(truth, truth.loadRes(detections), iouType="bbox")
        evaluation.params.imgIds = [image["id"] for image in images]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    expected = 100.0 * evaluation.stats[0]
    score = get_benchmark(model).accuracy(log, s.data_dir)
    assert 0 < expected < 100.0
    assert score.value == pytest.approx(expected, abs=1e-9)
    assert score.official == f"mAP={expected:.3f}%"


def _squad_f1(prediction: str, truth: str) -> float:
    """evaluate-v1.1.py's F1, written out here."""
    def norm(text):
        text = "".join(c for c in text.lower() if c not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split()).split()
    common = sum((Counter(norm(prediction)) & Counter(norm(truth))).values())
    if common == 0:
        return 0.0
    p, r = common / len(norm(prediction)), common / len(norm(truth))
    return 2 * p * r / (p + r)


def test_bert_logits_on_the_wrong_word_and_questions_not_logged(standin):
    s = standin("bert")
    bert = get_benchmark("bert-99")
    entries = {e["qsl_idx"]: e for e in run_pipeline(bert, s)}
    root = s.data_dir.parent.parent
    dev = json.loads((root / "build/data/squad/dev-v1.1.json").read_text())
    vocab = (root / "build/models/bert/vocab.txt").read_text().split("\n")
    sep = vocab.index("[SEP]")
    ids = np.load(s.data_dir / "squad_tokenized/input_ids.npy")
    qas = [(p["context"], qa) for a in dev["data"] for p in a["paragraphs"] for qa in p["qas"]]
    # features come question by question; a feature's question is its tokens before [SEP]
    question_of = [tuple(row[1:list(row).index(sep)]) for row in ids]
    order = list(dict.fromkeys(question_of))
    assert len(order) == len(qas)
    features = {q: [i for i, f in enumerate(question_of) if f == q] for q in order}
    dropped = order[:2]  # no feature of these two questions is logged: they score 0
    f1_sum = float(len(qas) - len(dropped))  # every other question is answered right...
    moved = 0
    for k, q in enumerate(order[2:], 2):
        context, qa = qas[k]
        word = context.split()[0]
        (i, *more) = features[q]
        first = list(ids[i]).index(sep) + 1  # the context's first token
        if (more or moved == 2 or not (word.isalpha() and word.islower())
                or vocab[ids[i][first]] != word or vocab[ids[i][first + 1]].startswith("##")):
            continue
        logits = np.full((384, 2), -10.0, np.float32)
        logits[first] = 10.0  # start and end on the context's first word
        entries[i] = with_payload(entries[i], logits)
        # ...except these, now predicted as that word
        f1_sum += max(_squad_f1(word, a["text"]) for a in qa["answers"]) - 1.0
        moved += 1
    assert moved == 2
    log = [e for i, e in sorted(entries.items()) if question_of[i] not in dropped]
    score = bert.accuracy(log, s.data_dir)
    assert score.value == pytest.approx(100.0 * f1_sum / len(qas))
    assert json.loads(score.official)["f1"] == pytest.approx(100.0 * f1_sum / len(qas))
    assert score.value < 100.0


def test_dlrm_scrambled_predictions_against_brute_force_auc(standin):
    s = standin("dlrm")
    entries = run_pipeline(get_benchmark("dlrm-99"), s)
    rng = np.random.default_rng(3)
    log, pairs = [], []
    for e in entries[:-4]:  # four samples not logged
        data = payload(e, np.float32).reshape(-1, 2)
        if e["qsl_idx"] % 3 == 0:
            data[:, 0] = rng.uniform(0, 1, len(data)).astype(np.float32)
        log.append(with_payload(e, data))
        pairs.append(data)
    log.append(entries[0])  # a duplicate of a logged sample: the first entry counts
    pairs = np.concatenate(pairs)
    pos, neg = pairs[pairs[:, 1] == 1, 0], pairs[pairs[:, 1] == 0, 0]
    auc = (np.sum(pos[:, None] > neg[None, :]) + 0.5 * np.sum(pos[:, None] == neg[None, :])) / (
        len(pos) * len(neg))
    good = int(np.sum(np.round(pairs[:, 0]) == pairs[:, 1]))
    score = get_benchmark("dlrm-99").accuracy(log, s.data_dir)
    assert score.value == pytest.approx(100.0 * auc, abs=1e-9)
    assert score.official == (f"AUC={100.0 * auc:.3f}%, accuracy={100.0 * good / len(pairs):.3f}%, "
                              f"good={good}, total={len(pairs)}, queries={len(entries) - 4}")


def test_rnnt_substituted_and_dropped_words_and_a_duplicate(standin):
    s = standin("rnnt")
    rnnt = get_benchmark("rnnt")
    transcripts = rnnt.open_dataset(s.data_dir).transcripts
    labels = " abcdefghijklmnopqrstuvwxyz'"
    text = {i: t for i, t in enumerate(transcripts)}
    text[0] = " ".join(["zzz"] + transcripts[0].split()[1:])  # one substitution
    text[1] = " ".join(transcripts[1].split()[:-1])  # one deletion
    log = [{"seq_id": i, "qsl_idx": i,
            "data": np.array([labels.index(c) for c in t], np.int64).tobytes().hex()}
           for i, t in text.items()]
    log.append(log[2])  # accuracy_eval.py scores every entry, duplicates too
    words = sum(len(t.split()) for t in transcripts) + len(transcripts[2].split())
    wer = 2 / words
    score = rnnt.accuracy(log, s.data_dir)
    assert score.value == pytest.approx(100.0 * (1 - wer))
    assert score.official == "Word Error Rate: {:}%, accuracy={:}%".format(wer * 100, (1 - wer) * 100)


def test_unet_voxels_flipped_to_background(standin):
    import nibabel

    s = standin("3d-unet")
    unet = get_benchmark("3d-unet-99")
    entries = run_pipeline(unet, s, batch=1)
    brats = s.data_dir / "brats"
    cases = (s.data_dir.parent.parent / "data_maps/brats/val_map.txt").read_text().split()
    log, dices = [], []
    for e, case in zip(sorted(entries, key=lambda e: e["qsl_idx"]), cases):
        logits = payload(e, np.float16).reshape(4, 224, 224, 160)
        with open(brats / "brats_reference_preprocessed" / f"{case}.pkl", "rb") as f:
            props = pickle.load(f)[1]
        size, bbox = props["size_after_cropping"], props["crop_bbox"]
        before = [(p - n) // 2 for p, n in zip((224, 224, 160), size)]
        truth = np.asarray(nibabel.load(str(
            brats / f"brats_reference_raw/Task043_BraTS2019/labelsTr/{case}.nii.gz")).dataobj).T
        # flip a slab through the middle of the tumour to background
        z = int(np.nonzero(truth)[0].mean())
        logits[0, before[0] + z - bbox[0][0]:before[0] + z - bbox[0][0] + 3] = 100
        predicted = truth.copy()
        predicted[z:z + 3] = 0
        log.append(with_payload(e, logits))
        row = []
        for region in ((1, 2, 3), (2, 3), (3,)):
            a, b = np.isin(predicted, region), np.isin(truth, region)
            total = a.sum() + b.sum()
            row.append(np.nan if total == 0 else 2 * (a & b).sum() / total)
        dices.append(row)
    regions = [round(float(np.nanmean(col)), 4) for col in np.array(dices).T]
    mean = sum(regions) / 3
    score = unet.accuracy(log, s.data_dir)
    assert 0 < mean < 1 and score.value == pytest.approx(mean)
    assert score.official == ("Accuracy: mean = {:.5f}, whole tumor = {:.4f}, tumor core = {:.4f}, "
                              "enhancing tumor = {:.4f}").format(mean, *regions)
