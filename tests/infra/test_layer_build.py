"""infra/build_layer.py without the network: the uv commands it builds, the requirements it exports from
uv.lock, and its strip, prune, copy and byte-compile steps on a fake installed tree. The real download
build is `make layer`."""

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
from infra.runtime import PYTHON_PLATFORM, PYTHON_VERSION
from tests.infra.infra_harness import REPO_ROOT

pytestmark = pytest.mark.xdist_group("infra")


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_site_packages(root: Path) -> Path:
    """What an install into `--target` can leave behind, trimmed to the cases the strip step must handle."""
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


# ---------------------------------------------------------------------------------- export, install
def test_export_command_reads_the_lock_for_the_layer(tmp_path: Path) -> None:
    command = build_layer.export_command("/uv", tmp_path / "requirements.txt", project=tmp_path)
    assert command[:2] == ["/uv", "export"]
    assert command[command.index("--project") + 1] == str(tmp_path)
    assert "--frozen" in command  # the lock as committed: never re-resolved by a build
    assert {"--no-dev", "--no-emit-project"} <= set(command)
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--extra"] == ["service"]
    skipped = {command[i + 1] for i, arg in enumerate(command) if arg == "--no-emit-package"}
    assert skipped == {"boto3", "botocore", "s3transfer", "urllib3"}
    assert command[command.index("--output-file") + 1] == str(tmp_path / "requirements.txt")


def test_install_command_targets_the_lambda_runtime(tmp_path: Path) -> None:
    command = build_layer.install_command("/uv", tmp_path / "requirements.txt", tmp_path / "python")
    assert command[:3] == ["/uv", "pip", "install"]
    assert command[command.index("--requirement") + 1] == str(tmp_path / "requirements.txt")
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert command[command.index("--python-platform") + 1] == PYTHON_PLATFORM == "x86_64-manylinux_2_28"
    assert command[command.index("--python-version") + 1] == PYTHON_VERSION == "3.12"
    assert command[command.index("--only-binary") + 1] == ":all:"  # never build from source on this host
    assert {"--no-deps", "--require-hashes"} <= set(command)  # exactly the locked files
    assert command[command.index("--link-mode") + 1] == "copy"  # the strip edits RECORD files in place


def test_locked_requirements_bundle_the_engine_but_not_the_runtime_sdk(tmp_path: Path) -> None:
    # Given the committed uv.lock, When exporting as the build does, Then every line is one exact, hashed
    # pin; the engine's dependencies and powertools with its tracer are there, the runtime's SDK is not.
    uv = build_layer.find_uv()
    if uv is None:
        pytest.skip("no uv (make bootstraps it into .venv-tools)")
    output = tmp_path / "requirements.txt"
    subprocess.run([*build_layer.export_command(uv, output), "--offline"], check=True)
    target = {"python_version": PYTHON_VERSION, "python_full_version": f"{PYTHON_VERSION}.0"}
    # One logical line per requirement (backslash continuations joined); `# via` comments dropped.
    lines = [line for line in output.read_text().replace("\\\n", " ").splitlines() if line.strip()]
    lines = [line for line in lines if not line.lstrip().startswith("#")]
    assert lines and all(" --hash=sha256:" in line for line in lines)
    requirements = [Requirement(line.split(" --hash=")[0]) for line in lines]
    pins = {req.name.lower(): req for req in requirements if req.marker is None or req.marker.evaluate(target)}
    assert all(len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==" for req in pins.values())
    assert not {"boto3", "botocore", "s3transfer", "urllib3"} & set(pins)
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for dependency in pyproject["project"]["dependencies"]:
        assert Requirement(dependency).name.lower() in pins, dependency
    assert {"aws-lambda-powertools", "aws-xray-sdk", "python-dateutil"} <= set(pins)
    assert not pins["python-dateutil"].specifier.contains("3.0")  # the runtime's botocore needs <3
    # No dev tool and no embedded AWS in the layer.
    assert not {"moto", "pytest", "aws-cdk-lib", "cfn-lint", "mypy"} & set(pins)


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


def test_build_orchestrates_export_install_copy_strip_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fake uv that "exports" and "installs" a tree, When building, Then the output is a clean layer root.
    source = tmp_path / "layers" / "engine"
    write(source / "python" / "backtest_engine" / "__init__.py", "__version__ = '0'\n")
    write(source / "python" / "backtest_service" / "__init__.py")
    out = tmp_path / "build" / "layer"
    write(out / "python" / "leftover.py")  # a previous build is removed first
    real_run = subprocess.run
    uv_calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: Any) -> Any:
        if command[0] == "/uv":
            uv_calls.append(command)
            if command[1] == "export":
                write(Path(command[command.index("--output-file") + 1]), "numpy==2.5.5 --hash=sha256:00\n")
            else:
                fake_site_packages(Path(command[command.index("--target") + 1]))
            return subprocess.CompletedProcess(command, 0)
        return real_run(command, **kwargs)

    smoke_roots: list[Path] = []
    monkeypatch.setattr(build_layer.subprocess, "run", fake_run)
    monkeypatch.setattr(build_layer, "smoke_test", lambda python, root: smoke_roots.append(root))
    assert build_layer.build(out, source=source, compile_python=sys.executable, uv="/uv", project=tmp_path) == 0

    target = out / "python"
    export, install = uv_calls
    assert export[1] == "export" and export[export.index("--project") + 1] == str(tmp_path)
    assert install[1:3] == ["pip", "install"] and install[install.index("--target") + 1] == str(target)
    # The exported pins are what was installed, kept next to python/ (the layer asset excludes the file).
    assert install[install.index("--requirement") + 1] == str(out / "requirements.txt")
    assert (out / "requirements.txt").is_file()
    assert not (target / "leftover.py").exists()
    assert (target / "backtest_engine" / "__init__.py").is_file()
    assert not (target / "botocore").exists()
    assert Path(importlib.util.cache_from_source(str(target / "backtest_engine" / "__init__.py"))).is_file()
    if build_layer.host_matches_target():
        assert smoke_roots == [target]
    assert "MB unzipped" in capsys.readouterr().out


def test_build_without_uv_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build_layer, "find_uv", lambda: None)
    assert build_layer.build(tmp_path / "layer") == 2
    assert "make layer" in capsys.readouterr().err
    assert not (tmp_path / "layer").exists()


def test_tree_size_counts_every_file(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "x" * 10)
    write(tmp_path / "pkg" / "b.py", "y" * 5)
    assert build_layer.tree_size(tmp_path) == (15, 2)
