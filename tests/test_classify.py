"""Reading texts to classify: plain lines, pairs, table columns, and the errors that name the line."""
import io

import pytest

from workbench.data.files import DataError
from workbench.study.classify import _split_inputs, read_inputs


def test_plain_lines_and_pairs_from_stdin():
    assert read_inputs(None, pair=False, stdin=io.StringIO("one\n\n two \n")) == ["one", " two "]
    assert read_inputs("-", pair=True, stdin=io.StringIO("evidence\tclaim\n")) == [("evidence", "claim")]
    assert read_inputs(None, pair=False, stdin=io.StringIO("")) == []
    with pytest.raises(DataError, match=r"stdin, line 2: this task reads pairs; put one tab"):
        read_inputs(None, pair=True, stdin=io.StringIO("a\tb\nno tab here\n"))


def test_columns_of_a_table(tmp_path):
    table = tmp_path / "pairs.csv"
    table.write_text("premise,hypothesis\nA man sleeps.,A person rests.\n")
    assert read_inputs(str(table), pair=True, text_col="premise", text_b_col="hypothesis") == [
        ("A man sleeps.", "A person rests.")]
    with pytest.raises(ValueError, match="--text-b-col"):
        read_inputs(str(table), pair=True, text_col="premise")
    with pytest.raises(DataError, match="text"):
        read_inputs(str(table), pair=False)  # no 'text' column
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": "fine"}\n{"text": "  "}\n')
    with pytest.raises(DataError, match="line 2: empty text"):
        read_inputs(str(empty), pair=False)
    with pytest.raises(DataError, match="not found"):
        read_inputs(str(tmp_path / "absent.txt"), pair=False)


def test_python_inputs_are_checked():
    assert _split_inputs([("a", "b")], pair=True) == [("a", "b")]
    with pytest.raises(DataError, match="input 0: this task reads pairs"):
        _split_inputs(["just one"], pair=True)
    with pytest.raises(DataError, match="input 1: empty text"):
        _split_inputs(["fine", ""], pair=False)
    with pytest.raises(DataError, match="input 0: expected a text"):
        _split_inputs([3], pair=False)


def test_a_notebook_never_starts_a_long_job_by_surprise(tmp_path):
    from workbench.runs.folder import RunNotMade, open_run
    with pytest.raises(RunNotMade) as caught:
        open_run("rt", "quick", root=tmp_path)
    message = str(caught.value)
    assert f"--preset quick --out {tmp_path / 'runs' / 'rt-quick'}" in message and "train=True" in message
    assert caught.value._render_traceback_() == [f"RunNotMade: {message}"]  # IPython shows the message alone
    with pytest.raises(RunNotMade):
        open_run("rt", "smoke", root=tmp_path, train=False)
