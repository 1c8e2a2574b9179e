"""Reading TSV / CSV / JSONL files and the errors that name file, line, field and value."""
from __future__ import annotations

import json

import pytest

from workbench.data.files import DataError, check_text, format_of, parse_label, read_table


def write(path, text: str, encoding: str = "utf-8"):
    path.write_text(text, encoding=encoding)
    return path


# ----------------------------------------------------------------------------- TSV traps


def test_tsv_keeps_unbalanced_quotes_inside_fields(tmp_path):
    path = write(tmp_path / "train.tsv", 'sentence\tlabel\nhe said "hi \t1\nno closing quote here\t0\n"starts quoted\t1\n')
    rows = read_table(path)
    assert [line for line, _ in rows] == [2, 3, 4]
    assert rows[0][1] == {"sentence": 'he said "hi ', "label": "1"}
    assert rows[2][1]["sentence"] == '"starts quoted'


def test_byte_order_mark_does_not_stick_to_first_column(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_bytes("\ufeffQuality\t#1 String\n1\tx\n".encode("utf-8"))
    (line, row), = read_table(path)
    assert line == 2 and row == {"Quality": "1", "#1 String": "x"}


def test_header_less_file_takes_given_column_names(tmp_path):
    path = write(tmp_path / "in_domain_train.tsv", "gj04\t1\t\tOur friends won't buy this.\ngj04\t0\t*\tThey drank.\n")
    rows = read_table(path, has_header=False, columns=("source", "label", "original_mark", "sentence"))
    assert [line for line, _ in rows] == [1, 2]
    assert rows[1][1] == {"source": "gj04", "label": "0", "original_mark": "*", "sentence": "They drank."}


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    path = write(tmp_path / "t.tsv", "text\tlabel\n\na\t0\n\nb\t1\n")
    assert [(line, row["text"]) for line, row in read_table(path)] == [(3, "a"), (5, "b")]


def test_columns_only_for_header_less_files(tmp_path):
    path = write(tmp_path / "t.tsv", "text\tlabel\na\t0\n")
    with pytest.raises(ValueError):
        read_table(path, columns=("text", "label"))
    with pytest.raises(ValueError):
        read_table(path, has_header=False)


# ----------------------------------------------------------------------------- CSV and JSONL


def test_csv_uses_standard_quoting_and_reports_record_start_line(tmp_path):
    path = write(tmp_path / "t.csv", 'text,label\n"a, quoted\ntext",1\nplain,0\n')
    rows = read_table(path)
    assert rows == [(2, {"text": "a, quoted\ntext", "label": "1"}), (4, {"text": "plain", "label": "0"})]


def test_jsonl_values_become_strings(tmp_path):
    records = [{"text": "a", "label": 1}, {"text": "b", "label": "neg", "extra": None}, {"text": "c", "label": True}]
    path = write(tmp_path / "t.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    rows = read_table(path)
    assert [line for line, _ in rows] == [1, 2, 3]
    assert rows[0][1] == {"text": "a", "label": "1"}
    assert rows[1][1] == {"text": "b", "label": "neg", "extra": ""}
    assert rows[2][1]["label"] == "true"


def test_format_from_extension_or_explicit(tmp_path):
    assert format_of("x/train.TSV") == "tsv" and format_of("a.csv") == "csv" and format_of("a.jsonl") == "jsonl"
    assert format_of("a.txt", "tsv") == "tsv"
    with pytest.raises(DataError, match=r"a\.txt.*extension"):
        format_of("a.txt")
    with pytest.raises(DataError, match="unknown format 'xml'"):
        format_of("a.csv", "xml")


# ----------------------------------------------------------------------------- errors name file, line, field, value


def test_wrong_field_count_names_file_line_and_counts(tmp_path):
    path = write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\nbad row without tab\nx\t0\textra\n")
    with pytest.raises(DataError) as err:
        read_table(path)
    message = str(err.value)
    assert "train.tsv" in message and "line 3" in message
    assert "expected 2" in message and "got 1" in message and "bad row without tab" in message


def test_missing_file_names_path_and_option(tmp_path):
    path = tmp_path / "nowhere" / "train.tsv"
    with pytest.raises(DataError) as err:
        read_table(path, option="--glue-dir")
    assert str(path) in str(err.value) and "--glue-dir" in str(err.value) and "not found" in str(err.value)
    with pytest.raises(DataError, match="directory"):
        read_table(tmp_path, fmt="tsv")


def test_missing_column_names_found_and_expected(tmp_path):
    path = write(tmp_path / "train.csv", "review,label\nnice,1\n")
    with pytest.raises(DataError) as err:
        read_table(path, required=("text", "label"), option="--train-file")
    message = str(err.value)
    assert "train.csv" in message and "line 1" in message
    assert "['text']" in message and "['review', 'label']" in message and "--train-file" in message


def test_jsonl_object_missing_a_column_names_its_line(tmp_path):
    path = write(tmp_path / "t.jsonl", '{"text": "a", "label": 0}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"t\.jsonl, line 2: .*lacks column\(s\) \['label'\]"):
        read_table(path, required=("text", "label"))


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"text": "a"}\n{"text": oops}\n', r"bad\.jsonl, line 2: not valid JSON"),
        ('{"text": "a"}\n["a", 1]\n', r"bad\.jsonl, line 2: expected a JSON object"),
        ('{"text": ["a", "b"]}\n', r"bad\.jsonl, line 1, field 'text'"),
    ],
)
def test_bad_jsonl_lines(tmp_path, content, expected):
    with pytest.raises(DataError, match=expected):
        read_table(write(tmp_path / "bad.jsonl", content))


def test_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_table(write(tmp_path / "empty.tsv", ""))
    with pytest.raises(DataError, match="no data rows"):
        read_table(write(tmp_path / "header.tsv", "text\tlabel\n"))
    with pytest.raises(DataError, match="no JSON rows"):
        read_table(write(tmp_path / "blank.jsonl", "\n\n"))


def test_duplicate_header_column(tmp_path):
    with pytest.raises(DataError, match=r"line 1: header column 'a' appears twice"):
        read_table(write(tmp_path / "t.tsv", "a\ta\n1\t2\n"))


def test_invalid_utf8_names_file(tmp_path):
    path = tmp_path / "latin.tsv"
    path.write_bytes("text\tlabel\ncaf\u00e9\t1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.tsv.*UTF-8"):
        read_table(path)


def test_check_text_rejects_blank_text_with_location():
    assert check_text("f.tsv", 3, "sentence", " ok ") == " ok "
    with pytest.raises(DataError) as err:
        check_text("f.tsv", 7, "sentence", "   ")
    assert str(err.value).startswith("f.tsv, line 7, field 'sentence': value '   ' is an empty text.")


def test_parse_label_names_allowed_labels():
    labels = {"entailment": 0, "not_entailment": 1}
    assert parse_label("dev.tsv", 2, "label", "not_entailment ", labels) == 1
    with pytest.raises(DataError) as err:
        parse_label("dev.tsv", 9, "label", "neutral", labels)
    message = str(err.value)
    assert "dev.tsv, line 9, field 'label'" in message and "'neutral'" in message
    assert "'entailment', 'not_entailment'" in message


def test_long_values_are_shortened_in_messages():
    with pytest.raises(DataError) as err:
        parse_label("f.tsv", 2, "label", "x" * 500, {"0": 0})
    assert len(str(err.value)) < 300 and "..." in str(err.value)


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl"])
def test_a_bad_byte_is_reported_on_its_own_line(tmp_path, suffix):
    separator = "," if suffix == ".csv" else "\t"
    rows = [f'{{"text": "row {i}", "label": "a"}}' if suffix == ".jsonl" else f"row {i}{separator}a"
            for i in range(2000)]  # far more than one read chunk before the bad byte
    header = [] if suffix == ".jsonl" else ["text,label" if suffix == ".csv" else "text\tlabel"]
    data = "\n".join(header + rows).encode()
    position = data.index(b"row 1500")
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(data[:position + 2] + b"\xff" + data[position + 2:])
    line = 1501 + len(header)
    with pytest.raises(DataError, match=rf"bad{suffix}, line {line}, column \d+: not valid UTF-8 \(byte 0xff"):
        read_table(path)
