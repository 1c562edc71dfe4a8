"""benchmarks/run_all.py --quick (the CI smoke run): every benchmark has quick settings that its
own argument parser defines, and a benchmark that raises makes the run exit non-zero. Nothing
here times anything."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def defined_options(path: Path) -> set[str]:
    """The ``--flags`` a benchmark's argparse defines (``add_argument("--x", ...)`` calls)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
    return found


def test_every_benchmark_has_quick_settings_its_parser_accepts(run_all):
    benches = {p.stem.removeprefix("bench_"): p for p in BENCH.glob("bench_*.py")}
    # Every benchmark the default run includes (the on-request real-size one excepted: ~14 GB, minutes).
    assert set(run_all.QUICK) == set(benches) - run_all.ON_REQUEST and run_all.ON_REQUEST <= set(benches)
    for name, args in run_all.QUICK.items():
        flags = {a for a in args if a.startswith("--")}
        unknown = flags - defined_options(benches[name])
        assert not unknown, f"bench_{name}.py defines no {sorted(unknown)}"


def test_quick_run_fails_when_a_benchmark_raises(run_all, tmp_path, monkeypatch, capsys):
    (tmp_path / "bench_fine.py").write_text("import sys\nassert sys.argv[1:] == ['--n', '1']\n")
    (tmp_path / "bench_broken.py").write_text("raise RuntimeError('stale import')\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "QUICK", {"fine": ["--n", "1"], "broken": []})
    assert run_all.main(["--quick", "fine"]) == 0
    assert run_all.main(["--quick"]) == 1
    assert "failed: bench_broken.py" in capsys.readouterr().err
    # A benchmark without quick settings is a failure too, not a silent full-size run.
    monkeypatch.setattr(run_all, "QUICK", {"fine": ["--n", "1"]})
    assert run_all.main(["--quick"]) == 1
