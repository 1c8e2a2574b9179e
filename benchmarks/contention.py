"""What a second job on the machine costs: one smoke run alone against two at once, per thread setting.

Each setting runs `python -m workbench reproduce --preset smoke` on a toy task in a fresh folder (nothing
cached), first alone, then two copies at the same time, and reports the wall-clock seconds and the ratio
of the two-at-once time to the alone time. A ratio near 2 on 2 cores is fair sharing; far above it is
threads spinning while they wait for a core the other job holds.

    python benchmarks/contention.py                       # the settings below, on this machine's cores
    python benchmarks/contention.py --settings spinning,default
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

SETTINGS = {  # environment of each run (the workbench sets OMP_WAIT_POLICY=PASSIVE unless it is set)
    "spinning (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
    # an empty value keeps the workbench's default out and is read by libgomp as unset: its own default,
    # spinning for a while before sleeping (what the workbench did before it set a policy)
    "libgomp's own default (spin, then sleep)": {"OMP_WAIT_POLICY": ""},
    "default (passive waits)": {},
    "one thread (OMP_NUM_THREADS=1)": {"OMP_NUM_THREADS": "1"},
}


def _toy(folder: Path) -> tuple[str, str]:
    rng = random.Random(0)
    words = {0: ["bad", "dull", "awful", "boring"], 1: ["good", "great", "fine", "moving"]}
    filler = ["the", "film", "plot", "is", "a", "story", "with", "its", "ending", "very"]
    paths = []
    for name, n in (("train", 600), ("test", 200)):
        lines = ["text,label"]
        for _ in range(n):
            label = rng.randrange(2)
            text = rng.choices(filler, k=rng.randint(4, 20)) + [rng.choice(words[label])]
            rng.shuffle(text)
            lines.append(f"{' '.join(text)},{label}")
        path = folder / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    return paths[0], paths[1]


def _command(train: str, test: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "workbench", "reproduce", "--preset", "smoke", "--train-file", train,
            "--test-file", test, "--task", "toy", "--out", str(out)]


def _run(commands: list[list[str]], env: dict) -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in commands]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a run failed (exit codes {codes}): {' '.join(commands[0])}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", help="comma-separated subset of: " + ", ".join(SETTINGS))
    args = parser.parse_args()
    chosen = {k: v for k, v in SETTINGS.items() if not args.settings or any(s in k for s in args.settings.split(","))}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train, test = _toy(Path(tmp))
        for i, (name, env) in enumerate(chosen.items()):
            alone = _run([_command(train, test, Path(tmp) / f"alone{i}")], env)
            both = _run([_command(train, test, Path(tmp) / f"pair{i}{j}") for j in range(2)], env)
            rows.append({"setting": name, "alone_s": alone, "two_at_once_s": both, "ratio": both / alone})
            print(rows[-1], flush=True)
    print(f"\n{os.cpu_count()} CPU cores; smoke reproduce on a 600-example toy task, nothing cached")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
