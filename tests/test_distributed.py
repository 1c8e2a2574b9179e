"""Devices, precision and runs of several processes (Hugging Face Accelerate), on the CPU.

`accelerate launch --multi_gpu --num_processes 2` with ACCELERATE_USE_CPU=true starts two CPU processes through
torchrun (gloo all-reduce): the same code path as two GPUs, without one. (`accelerate launch --cpu` alone starts
one process unless MPI is installed.)"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import workbench as wb
from workbench.models.precision import autocast, check_precision, grad_scaler
from workbench.runs.distributed import configure, context, resolve_device

KEY = ["split", "example_id", "seed", "model", "layer"]


def _launch(args: list[str], tmp_path: Path, processes: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def _single(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import toy_rows, write_csv
    folder = tmp_path_factory.mktemp("distributed")
    # 81 test examples: two processes predict 41 and 40 of them, and not one row may be lost or repeated
    return {"train": write_csv(folder / "train.csv", toy_rows(240, 1)),
            "test": write_csv(folder / "test.csv", toy_rows(81, 2)), "folder": folder}


def test_two_processes_write_exactly_the_rows_of_one(files):
    options = ["reproduce", "--preset", "smoke", "--task", "toy", "--train-file", files["train"], "--test-file",
               files["test"], "--depths", "1", "--cascades", "1>6", "--targets", "2", "--signals", "none",
               "--difficulty-runs", "1"]
    folder = files["folder"]
    one = _single(["-m", "workbench", *options, "--out", str(folder / "one")], folder)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch(["-m", "workbench", *options, "--out", str(folder / "two")], folder)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (pd.read_parquet(folder / run / "outputs.parquet") for run in ("one", "two"))
    assert not b.duplicated(KEY).any() and len(a) == len(b)
    assert sorted(map(tuple, a[KEY].to_numpy())) == sorted(map(tuple, b[KEY].to_numpy()))
    assert len(b[(b["split"] == "test") & (b["model"] == "complete-1L")]) == 81
    execution = wb.Run.load(folder / "two").config["execution"]
    assert execution == {"device": "cpu", "gpu": None, "processes": 2, "precision": "fp32", "global_batch": 16,
                         "per_process_batch": 8}
    # only the main process wrote: one summary, one set of tables
    assert two.stdout.count("main table") == 1 and (folder / "two" / "tables" / "main.csv").is_file()


WEIGHTS = textwrap.dedent('''
    import sys
    from dataclasses import replace
    import torch
    import workbench as wb
    from workbench.config import get_preset
    torch.set_num_threads(1)
    task = wb.TaskOptions(name="toy", train_file=sys.argv[1], test_file=sys.argv[2])
    train = replace(get_preset("smoke").train, dropout=0.0)  # no random masks: one process and two can agree
    config = wb.RunConfig.from_preset("smoke", task=task, depths=(1, 6), study=False, train=train, out=sys.argv[3])
    wb.reproduce(config, progress=False)
''')


def test_without_dropout_two_processes_train_the_same_weights(files):
    """Without dropout and with the same global batch, data-parallel training follows the one-process run: each
    process's loss is weighted by its share of the batch, so the all-reduced gradient is the one-process gradient
    up to the order of float32 sums. Adam divides by sqrt(v), which lets such rounding differences of about 1e-7
    in rarely updated weights grow over the 42 steps: measured, the largest weight differs by 5.5e-6 (weights of
    size about 1) and the stored probabilities by 1.4e-7, every answer the same. The bound below leaves a margin
    of about 20x."""
    folder = files["folder"]
    script = folder / "weights.py"
    script.write_text(WEIGHTS)
    one = _single([str(script), files["train"], files["test"], str(folder / "w1")], folder)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch([str(script), files["train"], files["test"], str(folder / "w2")], folder)
    assert two.returncode == 0, two.stderr[-3000:]
    from safetensors.torch import load_file
    checkpoints = sorted((folder / "w1" / "cache").glob("*/best/**/*.safetensors"))
    assert len(checkpoints) == 4  # encoder and head of complete-1L and complete-6L
    for path in checkpoints:
        mine = load_file(path)
        theirs = load_file(folder / "w2" / path.relative_to(folder / "w1"))
        for name, tensor in mine.items():
            torch.testing.assert_close(theirs[name], tensor, atol=1e-4, rtol=0, msg=f"{path.name}: {name}")
    a, b = (pd.read_parquet(folder / run / "outputs.parquet").set_index(KEY).sort_index() for run in ("w1", "w2"))
    assert (a["pred"] == b["pred"]).all()
    np.testing.assert_allclose(b["prob_0"], a["prob_0"], atol=1e-5)


KILLED = textwrap.dedent('''
    import os, signal, sys
    import torch
    import workbench as wb
    from workbench.config import get_preset
    from workbench.data.registry import prepare_task
    from workbench.models.complete import CompleteModel, ModelSpec
    from workbench.models.training import cross_entropy, fit
    from workbench.runs.distributed import context
    torch.set_num_threads(1)
    task = prepare_task(wb.TaskOptions(name="toy", train_file=sys.argv[1], test_file=sys.argv[2]),
                        get_preset("smoke").train)

    def dies(model, batch, labels, idx, step):
        if context().rank == 1 and step == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return cross_entropy(model, batch, labels, idx, step)
    spec = ModelSpec(backbone="tiny-random-bert", depth=2, num_labels=2)
    fit(lambda: CompleteModel.build(spec, seed=0), dies, task, get_preset("smoke").train, seed=0,
        folder=sys.argv[3], desc="dies", progress=False)
''')


def test_a_killed_process_ends_the_run_with_its_error_and_no_finished_entry(files):
    folder = files["folder"]
    script = folder / "killed.py"
    script.write_text(KILLED)
    entry = folder / "killed-entry"
    run = _launch([str(script), files["train"], files["test"], str(entry)], folder)
    assert run.returncode != 0
    assert "local_rank: 1" in run.stderr and "SIGKILL" in run.stderr, run.stderr[-3000:]
    assert not (entry / "done.json").exists()  # a rerun trains it again (or resumes from its last state)
    assert not list(entry.glob(".*.tmp"))


def test_devices_that_are_absent_are_named():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else
                                           "mps" if torch.backends.mps.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: .*use --device cpu or auto"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, mps"):
        resolve_device("tpu")


def test_precision_on_the_cpu():
    configure("cpu")
    assert context().device.type == "cpu" and not context().distributed
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        check_precision("fp16")
    x = torch.randn(4, 8)
    layer = torch.nn.Linear(8, 3)
    with autocast("bf16"):
        assert layer(x).dtype == torch.bfloat16  # the matrix product in bfloat16
    with autocast("fp32"):
        assert layer(x).dtype == torch.float32
    assert not grad_scaler("bf16").is_enabled() and not grad_scaler("fp32").is_enabled()


def test_the_command_line_refuses_an_absent_gpu_and_fp16_on_the_cpu(tmp_path, capsys):
    from workbench.ui.cli import main
    base = ["train", "--task", "rt", "--depth", "1", "--preset", "smoke", "--out", str(tmp_path / "m")]
    assert main([*base, "--device", "cpu", "--precision", "fp16"]) == 2
    assert "fp16 needs a CUDA GPU" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*base, "--device", "cuda"]) == 2
        assert "--device cuda:" in capsys.readouterr().err
    configure("cpu")


ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_check_runs_on_the_cpu_and_needs_only_the_gpu_machines_packages(tmp_path):
    """benchmarks/gpu_check.py on the CPU, small: the code path of the GPU check (its numbers mean nothing here);
    and what it imports stays within torch, transformers, accelerate, pandas, pyarrow, scikit-learn and tqdm."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu",
                          "--precision", "bf16", "--small"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    fp32 = run.stdout.split("executor against simulation (fp32):")[1].split("\n\n")[0]
    table = pd.read_fwf(__import__("io").StringIO(fp32.strip()))
    assert len(table) == 3 and (table["mismatches"] == 0).all()
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='gpu_check'); "
             "print(sorted(m for m in ('netcal', 'matplotlib', 'seaborn', 'jupytext', 'ipywidgets', 'selenium') "
             "if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe, str(ROOT / "benchmarks" / "gpu_check.py")], env=env,
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0 and imported.stdout.strip() == "[]", imported.stdout + imported.stderr
