"""Every bad option stops before any work with one line that names it (no model is trained)."""
import pytest

from workbench.ui.cli import main


def _args(toy_files, out, *extra):
    return ["reproduce", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file", toy_files["test"],
            "--task", "toy", "--out", str(out), *extra]


CASES = [
    (["--train-limit", "0"], "--train-limit 0"),
    (["--eval-limit", "0"], "--eval-limit 0"),
    (["--cascades", "s1>6"], "--cascades"),           # small members without --small-model
    (["--cascades", "s1>6>s2"], "--cascades"),
    (["--small-model", "tiny-random-bert-64", "--cascades", "s9>6"], "--cascades"),  # deeper than the small model
    (["--batch-size", "0"], "--batch-size 0"),
    (["--epochs", "-1"], "--epochs -1"),
    (["--lr", "0"], "--lr 0.0"),
    (["--lr", "nan"], "--lr nan"),
    (["--max-length", "1"], "--max-length 1"),
    (["--depths", "1,9"], "--depths 9"),
    (["--depths", "1,1"], "--depths '1,1'"),
    (["--seeds", "0,0"], "--seeds '0,0'"),
    (["--seeds", "-1"], "--seeds -1"),
    (["--targets", "0"], "--targets 0.0"),
    (["--targets", "-2"], "--targets -2.0"),
    (["--targets", "2,2"], "--targets '2.0,2.0'"),
    (["--cascades", "1>9"], "--cascades"),
    (["--cascades", "6>1"], "--cascades"),
    (["--cascades", "1>six"], "--cascades"),
    (["--da-margin", "-1"], "--da-margin -1.0"),
    (["--da-weight", "-0.5"], "--da-weight -0.5"),
    (["--difficulty-runs", "0"], "--difficulty-runs 0"),
    (["--difficulty-rule", "kfold", "--difficulty-runs", "1"], "--difficulty-runs 1"),
    (["--model", "./no-such-folder"], "--model './no-such-folder'"),
    (["--small-model", "./no-such-folder"], "--small-model './no-such-folder'"),
    (["--model", "no-such-org/no-such-model"], "--model 'no-such-org/no-such-model': cannot load its configuration"),
    (["--glue-dir", "."], "--glue-dir"),
    (["--source", "hub"], "--source 'hub'"),
]


@pytest.mark.parametrize("extra, named", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_reproduce_options_name_themselves(tmp_path, toy_files, capsys, extra, named):
    assert main(_args(toy_files, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run" / "cache").exists()


def test_a_builtin_task_name_on_your_own_files_is_refused(tmp_path, toy_files, capsys):
    args = _args(toy_files, tmp_path / "run")
    args[args.index("toy")] = "sst2"
    assert main(args) == 2
    assert "--task 'sst2': is a built-in task" in capsys.readouterr().err


def test_out_and_cache_must_be_folders(tmp_path, toy_files, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(_args(toy_files, a_file)) == 2
    assert f"--out '{a_file}': is a file" in capsys.readouterr().err
    assert main(_args(toy_files, tmp_path / "run", "--cache-dir", str(a_file))) == 2
    assert "--cache-dir" in capsys.readouterr().err


def test_train_and_predict_check_their_options(tmp_path, toy_files, capsys):
    train = ["train", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file", toy_files["test"],
             "--task", "toy", "--out", str(tmp_path / "run")]
    assert main([*train, "--depth", "7"]) == 2
    assert "--depth 7: must lie between 1 and the 6 layers" in capsys.readouterr().err
    assert main([*train, "--batch-size", "0"]) == 2
    assert "--batch-size 0" in capsys.readouterr().err
    predict = ["predict", "--train-file", toy_files["train"], "--test-file", toy_files["test"], "--task", "toy",
               "--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path)]
    assert main(predict) == 2
    assert f"--out '{tmp_path}': is a folder" in capsys.readouterr().err
    predict[-1] = str(tmp_path / "p.parquet")
    assert main(predict) == 2
    assert "not a complete-model checkpoint" in capsys.readouterr().err


def test_predict_refuses_a_checkpoint_with_other_labels(tmp_path, toy_files, capsys):
    from workbench.models.complete import CompleteModel, ModelSpec
    from workbench.models.backbones import load_tokenizer
    folder = tmp_path / "three"
    spec = ModelSpec(backbone="tiny-random-bert", depth=1, num_labels=3).resolved()
    CompleteModel.build(spec, seed=0).save_pretrained(folder, tokenizer=load_tokenizer("tiny-random-bert"))
    code = main(["predict", "--train-file", toy_files["train"], "--test-file", toy_files["test"], "--task", "toy",
                 "--checkpoint", str(folder), "--out", str(tmp_path / "p.parquet")])
    assert code == 2
    assert "the model has 3 labels but task toy has 2" in capsys.readouterr().err


def test_predict_refuses_a_checkpoint_trained_on_other_label_names(tmp_path, toy_files, capsys):
    import json
    out = tmp_path / "run"
    train = ["train", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file", toy_files["test"],
             "--task", "toy", "--depth", "1", "--epochs", "1", "--out", str(out)]
    assert main(train) == 0
    checkpoint = next((out / "cache").glob("*/best"))
    assert json.loads((checkpoint / "labels.json").read_text()) == ["0", "1"]
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(open(toy_files["test"]).read().replace(",0\n", ",neg\n").replace(",1\n", ",pos\n"))
    capsys.readouterr()
    code = main(["predict", "--train-file", str(renamed), "--test-file", str(renamed), "--task", "other",
                 "--checkpoint", str(checkpoint), "--out", str(tmp_path / "p.parquet")])
    assert code == 2
    assert "trained on labels ['0', '1'] but task other has ['neg', 'pos']" in capsys.readouterr().err


def test_help_and_import_do_not_load_torch():
    import subprocess
    import sys
    probe = ("import sys, runpy; sys.argv = ['workbench', '--help']\n"
             "try:\n    runpy.run_module('workbench', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "import workbench\nprint(sorted(m for m in ('torch', 'transformers', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "usage: python -m workbench" in done.stdout and done.stdout.strip().endswith("[]")


def test_train_in_bf16_keeps_its_own_cache_entry(tmp_path, toy_files, capsys):
    train = ["train", "--preset", "smoke", "--train-file", toy_files["train"], "--test-file", toy_files["test"],
             "--task", "toy", "--depth", "1", "--out", str(tmp_path / "run")]
    assert main([*train, "--precision", "bf16"]) == 0
    bf16 = capsys.readouterr().out
    assert main(train) == 0
    fp32 = capsys.readouterr().out
    assert "(cached)" not in fp32  # float32 is another model: trained, not read from the bf16 entry
    assert bf16.split("checkpoint: ")[1] != fp32.split("checkpoint: ")[1]
    with pytest.raises(SystemExit):  # argparse names the choices
        main([*train, "--precision", "fp8"])
    assert "--precision: invalid choice: 'fp8'" in capsys.readouterr().err
    assert main([*train, "--precision", "fp16", "--device", "cpu"]) == 2  # float16 autocast is for GPUs
    assert "fp16 needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["bogus", "berxit,berxit"])
def test_unknown_or_repeated_objectives_are_refused(tmp_path, toy_files, capsys, value):
    with pytest.raises(SystemExit) as stop:
        main(_args(toy_files, tmp_path / "run", "--objectives", value))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"--objectives: {value!r}: expected distinct objectives from berxit, mutual" in err, err
    assert not (tmp_path / "run" / "cache").exists()
