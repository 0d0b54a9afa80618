"""infra/build_layer.py without the network: the pip command it builds, and its strip, prune, copy and
byte-compile steps on a fake installed tree. The real download build is `make layer`."""

from __future__ import annotations

import csv
import importlib.util
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from infra import build_layer
from infra.runtime import PIP_PLATFORMS, PYTHON_VERSION
from tests.infra.infra_harness import REPO_ROOT

pytestmark = pytest.mark.xdist_group("infra")


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_site_packages(root: Path) -> Path:
    """What `pip install --target` leaves behind, trimmed to the cases the strip step must handle."""
    write(root / "numpy" / "__init__.py", "VERSION = 1\n")
    write(root / "numpy" / "_core" / "tests" / "test_core.py")
    write(root / "numpy" / "_core" / "include" / "numpy" / "ndarrayobject.h")
    write(root / "numpy" / "testing" / "__init__.py")  # a real module named like a test dir: kept
    write(root / "pandas" / "tests" / "frame" / "test_frame.py")
    write(root / "pandas" / "__init__.py")
    write(root / "talib" / "__init__.py")
    write(root / "talib" / "_ta_lib.c", "/* 20 MB of generated C */")
    write(root / "talib" / "_ta_lib.pyx")
    write(root / "talib" / "_ta_lib.pxd")
    write(root / "talib" / "__pycache__" / "__init__.cpython-311.pyc")
    write(root / "dateutil" / "__init__.py")
    write(root / "python_dateutil-2.9.0.post0.dist-info" / "METADATA", "Name: python-dateutil\n")
    for name in ("boto3", "botocore", "s3transfer", "urllib3"):
        write(root / name / "__init__.py")
    write(root / "botocore-1.44.5.dist-info" / "METADATA")
    write(root / "urllib3-2.8.0.dist-info" / "METADATA")
    write(root / "bin" / "f2py", "#!/usr/bin/env python\n")
    write(root / "numpy-2.5.5.dist-info" / "METADATA", "Name: numpy\n")
    with (root / "numpy-2.5.5.dist-info" / "RECORD").open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["numpy/__init__.py", "sha256=abc", "12"],
                ["numpy/_core/tests/test_core.py", "sha256=def", "0"],
                ["numpy/odd,name.py", "sha256=ghi", "0"],
                ["../../bin/f2py", "sha256=jkl", "20"],
                ["numpy-2.5.5.dist-info/RECORD", "", ""],
            ]
        )
    write(root / "numpy" / "odd,name.py")
    return root


# ------------------------------------------------------------------------------------------- pip
def test_pip_command_targets_the_lambda_runtime(tmp_path: Path) -> None:
    command = build_layer.pip_command(tmp_path / "requirements.txt", tmp_path / "python", python="/py")
    assert command[:4] == ["/py", "-m", "pip", "install"]
    assert command[command.index("--requirement") + 1] == str(tmp_path / "requirements.txt")
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == list(PIP_PLATFORMS)
    assert set(platforms) == {"manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64"}
    assert "--only-binary=:all:" in command  # never build from source on this host
    assert command[command.index("--python-version") + 1] == PYTHON_VERSION == "3.12"
    assert command[command.index("--implementation") + 1] == "cp"
    assert "--no-compile" in command  # byte-code comes from the runtime's interpreter, later


def test_requirements_bundle_the_engine_but_not_the_runtime_sdk() -> None:
    lines = (REPO_ROOT / "layers" / "engine" / "requirements.txt").read_text().splitlines()
    requirements = {
        (req := Requirement(line)).name.lower(): req for line in lines if line.strip() and not line.startswith("#")
    }
    assert not {"boto3", "botocore", "s3transfer"} & set(requirements)
    # Every engine dependency of pyproject.toml is in the layer, with a major-version cap.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for dependency in pyproject["project"]["dependencies"]:
        name = Requirement(dependency).name.lower()
        assert name in requirements, name
        assert any(spec.operator == "<" for spec in requirements[name].specifier), name
    assert "tracer" in requirements["aws-lambda-powertools"].extras
    assert not requirements["python-dateutil"].specifier.contains("3.0")
    assert requirements["python-dateutil"].specifier.contains("2.9.0")


# ----------------------------------------------------------------------------------------- strip
def test_strip_removes_tests_caches_build_sources_and_runtime_packages(tmp_path: Path) -> None:
    root = fake_site_packages(tmp_path / "python")
    report = build_layer.strip_tree(root)
    remaining = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    # Kept: code, the real `numpy.testing` module, dateutil (pandas needs it; <3 for botocore).
    assert {
        "numpy/__init__.py",
        "numpy/testing/__init__.py",
        "talib/__init__.py",
        "dateutil/__init__.py",
        "python_dateutil-2.9.0.post0.dist-info/METADATA",
        "numpy-2.5.5.dist-info/METADATA",
    } <= remaining
    # Gone: test suites, byte-code of another interpreter, C/Cython sources and headers, scripts.
    assert not [p for p in remaining if "/tests/" in p or "__pycache__" in p or p.startswith("bin/")]
    assert not [p for p in remaining if p.endswith((".c", ".h", ".pyx", ".pxd", ".pyc"))]
    # Gone: what the Lambda runtime ships, with its metadata.
    for name in ("boto3", "botocore", "s3transfer", "urllib3"):
        assert not (root / name).exists()
    assert sorted(report.removed_distributions) == ["botocore-1.44.5.dist-info", "urllib3-2.8.0.dist-info"]
    assert report.removed_files == 4  # .c, .h, .pyx, .pxd (the .pyc went with its __pycache__)


def test_strip_prunes_record_to_files_still_present(tmp_path: Path) -> None:
    root = fake_site_packages(tmp_path / "python")
    report = build_layer.strip_tree(root)
    with (root / "numpy-2.5.5.dist-info" / "RECORD").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert [row[0] for row in rows] == [
        "numpy/__init__.py",
        "numpy/odd,name.py",
        "numpy-2.5.5.dist-info/RECORD",
    ]
    assert rows[0] == ["numpy/__init__.py", "sha256=abc", "12"]  # hashes of kept files are untouched
    assert report.pruned_records == 1


def test_distribution_key_normalizes_names() -> None:
    assert build_layer._distribution_key(Path("python_dateutil-2.9.0.post0.dist-info")) == "python-dateutil"
    assert build_layer._distribution_key(Path("botocore-1.44.5.dist-info")) == "botocore"
    assert build_layer._distribution_key(Path("aws_lambda_powertools-3.37.0.dist-info")) == "aws-lambda-powertools"


# ------------------------------------------------------------------------------- copy and compile
def test_copy_packages_leaves_local_bytecode_behind(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "backtest_engine" / "__init__.py", "X = 1\n")
    write(source / "backtest_engine" / "__pycache__" / "__init__.cpython-311.pyc")
    write(source / "backtest_service" / "topology.py")
    target = tmp_path / "python"
    write(target / "backtest_engine" / "stale.py")  # a previous copy is replaced, not merged
    build_layer.copy_packages(source, target)
    copied = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert copied == {"backtest_engine/__init__.py", "backtest_service/topology.py"}


def test_byte_compile_writes_unchecked_hash_pyc(tmp_path: Path) -> None:
    # Given a module, When compiled as the build does, Then its .pyc is hash-based and never checked
    # against the source (PEP 552 flags == 0b01), so a zip's 1980 mtimes cannot invalidate it.
    root = tmp_path / "python"
    write(root / "pkg" / "__init__.py", "VALUE = 42\n")
    assert "unchecked-hash" in build_layer.compile_command(sys.executable, root)
    build_layer.byte_compile(sys.executable, root)
    pyc = Path(importlib.util.cache_from_source(str(root / "pkg" / "__init__.py")))
    header = pyc.read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b01


def test_smoke_test_imports_only_from_the_built_tree(tmp_path: Path) -> None:
    root = tmp_path / "python"
    write(root / "layer_only_module" / "__init__.py", "OK = True\n")
    build_layer.smoke_test(sys.executable, root, modules=["layer_only_module"])
    # `json` resolves to the interpreter's stdlib, not the tree: the check refuses it.
    with pytest.raises(subprocess.CalledProcessError):
        build_layer.smoke_test(sys.executable, root, modules=["json"])
    with pytest.raises(subprocess.CalledProcessError):
        build_layer.smoke_test(sys.executable, root, modules=["not_in_the_layer"])


def test_find_runtime_python_looks_in_pyenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_layer.shutil, "which", lambda name: None)  # no pyenv, nothing on PATH
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert build_layer.find_runtime_python("3.12") is None
    interpreter = write(tmp_path / "versions" / "3.12.9" / "bin" / "python3.12", "#!/bin/sh\n")
    interpreter.chmod(interpreter.stat().st_mode | stat.S_IXUSR)
    write(tmp_path / "versions" / "3.11.7" / "bin" / "python3.11")
    assert build_layer.find_runtime_python("3.12") == str(interpreter)
    assert build_layer.find_runtime_python("3.13") is None


def test_build_orchestrates_install_copy_strip_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fake pip that "installs" a tree, When building, Then the output is a clean layer root.
    source = tmp_path / "layers" / "engine"
    write(source / "requirements.txt", "numpy>=2,<3\n")
    write(source / "python" / "backtest_engine" / "__init__.py", "__version__ = '0'\n")
    write(source / "python" / "backtest_service" / "__init__.py")
    out = tmp_path / "build" / "layer"
    write(out / "python" / "leftover.py")  # a previous build is removed first
    real_run = subprocess.run
    pip_calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> Any:
        if command[1:4] == ["-m", "pip", "install"]:
            pip_calls.append(command)
            fake_site_packages(Path(command[command.index("--target") + 1]))
            return subprocess.CompletedProcess(command, 0)
        return real_run(command, **kwargs)

    smoke_roots: list[Path] = []
    monkeypatch.setattr(build_layer.subprocess, "run", fake_run)
    monkeypatch.setattr(build_layer, "smoke_test", lambda python, root: smoke_roots.append(root))
    assert build_layer.build(out, source=source, compile_python=sys.executable) == 0

    target = out / "python"
    assert len(pip_calls) == 1 and pip_calls[0][pip_calls[0].index("--target") + 1] == str(target)
    assert not (target / "leftover.py").exists()
    assert (target / "backtest_engine" / "__init__.py").is_file()
    assert not (target / "botocore").exists()
    assert Path(importlib.util.cache_from_source(str(target / "backtest_engine" / "__init__.py"))).is_file()
    if build_layer.host_matches_target():
        assert smoke_roots == [target]
    assert "MB unzipped" in capsys.readouterr().out


def test_tree_size_counts_every_file(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "x" * 10)
    write(tmp_path / "pkg" / "b.py", "y" * 5)
    assert build_layer.tree_size(tmp_path) == (15, 2)
