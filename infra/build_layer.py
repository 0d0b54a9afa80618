"""Build the engine layer for the Lambda runtime, without Docker: `make layer` → build/layer/python.

1. exports the layer's requirements from uv.lock (`uv export --frozen --no-dev --extra service`: the engine
   and the service extra at exactly the locked versions, with their hashes, minus what the runtime ships)
   to build/layer/requirements.txt, and `uv pip install`s them as manylinux wheels for the runtime's
   Python and platform (`--python-platform`, `--python-version`: markers are evaluated for the runtime,
   not this host; `--only-binary :all:`: nothing is compiled on this machine, so the host's glibc and
   compilers cannot leak into the layer; `--no-deps --require-hashes`: nothing but the locked files).
2. copies the first-party packages (backtest_engine, backtest_service) next to them.
3. strips what Lambda never needs: test suites, `__pycache__`, `bin/` scripts, C/Cython sources and
   headers (only a compiler reads them), and the packages the runtime already provides (boto3, botocore,
   s3transfer, urllib3: never exported, and removed should a tree contain them anyway; shadowing the
   runtime's tested copies from /opt/python would only add risk and size). Each kept
   `*.dist-info/RECORD` is pruned to the files still present, so the metadata stays small and truthful.
4. byte-compiles with the runtime's own interpreter (found through pyenv) using
   `--invalidation-mode unchecked-hash`. A default (timestamp) .pyc is trusted only while the source's
   mtime matches the one recorded inside it; CDK zips assets with every mtime set to 1980-01-01 and the
   layer is unpacked onto a read-only filesystem, so timestamp .pyc files would all look stale and every
   cold start would recompile pandas in memory (about 1 s). Unchecked-hash .pyc files are used as they
   are; the build is the only writer, so they cannot go stale.
5. import-checks the result with that interpreter when the host matches the target architecture, and
   prints the unzipped size (functions + layers must stay under Lambda's 250 MB).
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as `python infra/build_layer.py`: make `infra` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.runtime import ARCHITECTURE, LAYER_PACKAGES, PYTHON_PLATFORM, PYTHON_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_SOURCE = REPO_ROOT / "layers" / "engine"
DEFAULT_OUT = REPO_ROOT / "build" / "layer"
# The datasets layer (`--datasets`): what the `datasets` extra adds to the engine layer (pyarrow), for the
# validate_dataset function only, which has both layers.
DATASETS_EXTRA = "datasets"
DATASETS_OUT = REPO_ROOT / "build" / "layer-datasets"
# Parts of the pyarrow wheel the CSV and Parquet readers never load: Flight (RPC), the cloud filesystems,
# ORC, CUDA, Parquet encryption, the Cython sources and C++ headers, the bundled tests, and two copies of
# libarrow_python the loader never opens (its modules need libarrow_python.so.<ABI>). What stays: libarrow,
# libparquet, compute, acero, dataset and substrait (pyarrow.lib links all of them).
PYARROW_UNUSED = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/flight.py",
    "pyarrow/libarrow_python.so",
    "pyarrow/libarrow_python.so.*.*.*",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_gcsfs.*.so",
    "pyarrow/_azurefs.*.so",
    "pyarrow/_hdfs.*.so",
    "pyarrow/_orc.*.so",
    "pyarrow/_dataset_orc.*.so",
    "pyarrow/libarrow_python_parquet_encryption.so*",
    "pyarrow/_parquet_encryption.*.so",
    "pyarrow/_dataset_parquet_encryption.*.so",
    "pyarrow/_cuda.*.so",
)
# What the layer bundles on top of the engine's own dependencies (pyproject.toml's optional-dependencies).
LAYER_EXTRAS = ("service",)
# `make` bootstraps uv here; `--uv`, $UV or uv on PATH take precedence.
BOOTSTRAPPED_UV = REPO_ROOT / ".venv-tools" / "bin" / "uv"
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024

# Import names (and distribution names) the Lambda Python runtime already ships.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3")
# Directory names that only hold a package's own test suite (or stale byte-code).
TEST_DIRS = frozenset({"tests", "__pycache__"})
# Files only a compiler reads: Cython sources (TA-Lib ships its 20 MB generated _ta_lib.c) and C headers.
BUILD_ONLY_SUFFIXES = frozenset({".c", ".cpp", ".h", ".pyx", ".pxd", ".pxi"})
# What the import check loads: the layer's third-party stack plus our own packages.
SMOKE_IMPORTS = (
    "numpy",
    "pandas",
    "talib",
    "RestrictedPython",
    "pydantic",
    "aws_lambda_powertools",
    "dateutil",
    *LAYER_PACKAGES,
)


@dataclass
class StripReport:
    removed_dirs: list[str] = field(default_factory=list)
    removed_distributions: list[str] = field(default_factory=list)
    removed_files: int = 0
    pruned_records: int = 0


def find_uv() -> str | None:
    """The uv that reads uv.lock: $UV (what `uv run` and the Makefile set), the Makefile's bootstrapped
    copy, else uv on PATH."""
    for candidate in (os.environ.get("UV"), str(BOOTSTRAPPED_UV), shutil.which("uv")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def export_command(
    uv: str,
    output: Path,
    *,
    project: Path = REPO_ROOT,
    extras: Sequence[str] = LAYER_EXTRAS,
    runtime_provided: Sequence[str] = RUNTIME_PROVIDED,
) -> list[str]:
    """uv.lock's pins for the layer (the project's dependencies and `extras`, no dev group, not the
    project itself, nothing the runtime ships) as a requirements file with hashes."""
    command = [uv, "export", "--project", str(project), "--frozen", "--no-dev", "--no-emit-project"]
    for extra in extras:
        command += ["--extra", extra]
    for name in runtime_provided:
        command += ["--no-emit-package", name]
    command += ["--format", "requirements.txt", "--output-file", str(output), "--quiet"]
    return command


def install_command(
    uv: str,
    requirements: Path,
    target: Path,
    *,
    python_version: str = PYTHON_VERSION,
    python_platform: str = PYTHON_PLATFORM,
) -> list[str]:
    """The install that puts exactly those wheels, for the Lambda runtime rather than this host, in `target`."""
    return [
        uv,
        "pip",
        "install",
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        "--python-platform",
        python_platform,
        "--python-version",
        python_version,
        "--only-binary",
        ":all:",
        "--no-deps",  # the export is the whole closure: resolve nothing more
        "--require-hashes",
        # Copies, not hard links into uv's cache: the strip step rewrites RECORD files in place.
        "--link-mode",
        "copy",
        "--no-config",  # no uv.toml of this machine changes where the locked files come from
    ]


def copy_packages(source: Path, target: Path, packages: Sequence[str] = LAYER_PACKAGES) -> None:
    """Copy the first-party packages from layers/engine/python, leaving local byte-code behind."""
    for name in packages:
        destination = target / name
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(source / name, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _distribution_key(dist_info: Path) -> str:
    """`python_dateutil-2.9.0.dist-info` → `python-dateutil` (normalized project name)."""
    return dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0].lower().replace("_", "-")


def _prune_record(dist_info: Path, root: Path) -> bool:
    """Drop RECORD lines for files that no longer exist; True when the file changed."""
    record = dist_info / "RECORD"
    if not record.is_file():
        return False
    with record.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    kept = [row for row in rows if (root / row[0]).exists()]
    if len(kept) == len(rows):
        return False
    with record.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(kept)
    return True


def strip_tree(root: Path, runtime_provided: Sequence[str] = RUNTIME_PROVIDED) -> StripReport:
    """Remove test suites, caches, scripts and runtime-provided packages from an installed tree."""
    report = StripReport()
    provided = {name.lower() for name in runtime_provided}

    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.name.endswith(".dist-info") and _distribution_key(entry) in provided:
            shutil.rmtree(entry)
            report.removed_distributions.append(entry.name)
        elif entry.is_dir() and entry.name.lower() in provided:
            shutil.rmtree(entry)
            report.removed_dirs.append(entry.name)
    scripts = root / "bin"
    if scripts.is_dir():
        shutil.rmtree(scripts)
        report.removed_dirs.append("bin")

    # Walk top-down so a removed directory is not descended into.
    for dirpath, dirnames, _ in os.walk(root):
        for name in list(dirnames):
            if name in TEST_DIRS:
                shutil.rmtree(Path(dirpath) / name)
                dirnames.remove(name)
                report.removed_dirs.append(str((Path(dirpath) / name).relative_to(root)))
    for path in list(root.rglob("*")):
        if path.is_file() and (path.suffix in BUILD_ONLY_SUFFIXES or path.suffix == ".pyc"):
            path.unlink()
            report.removed_files += 1

    for dist_info in root.glob("*.dist-info"):
        report.pruned_records += _prune_record(dist_info, root)
    return report


def find_runtime_python(version: str = PYTHON_VERSION) -> str | None:
    """The interpreter matching the Lambda runtime (byte-code is specific to a minor version)."""
    name = f"python{version}"
    candidates: list[str] = []
    if shutil.which("pyenv"):
        try:
            found = subprocess.run(["pyenv", "which", name], capture_output=True, text=True, check=False)
        except OSError:
            found = None
        if found is not None and found.returncode == 0:
            candidates.append(found.stdout.strip())
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(str(pyenv_root / "versions" / f"{version}*" / "bin" / name)), reverse=True)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def compile_command(python: str, root: Path) -> list[str]:
    return [python, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", str(root)]


def byte_compile(python: str, root: Path) -> None:
    subprocess.run(compile_command(python, root), check=True)


def host_matches_target(architecture: str = ARCHITECTURE) -> bool:
    machine = platform.machine().lower()
    return machine == architecture or {machine, architecture} == {"aarch64", "arm64"}


def smoke_test(python: str, root: Path, modules: Sequence[str] = SMOKE_IMPORTS) -> None:
    """Import every module from the built tree alone (`-S`: no site-packages of that interpreter)."""
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); import importlib\n"
        f"for name in {list(modules)!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(root)!r}), (name, module.__file__)\n"
    )
    subprocess.run([python, "-S", "-c", code], check=True)


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes, files) of everything under root, as Lambda counts the unzipped layer."""
    total = files = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            files += 1
    return total, files


def build(
    out: Path,
    *,
    source: Path = LAYER_SOURCE,
    compile_python: str | None = None,
    uv: str | None = None,
    project: Path = REPO_ROOT,
) -> int:
    started = time.monotonic()
    uv = uv or find_uv()
    if uv is None:
        print("error: uv not found: run `make layer` (it bootstraps uv) or pass --uv", file=sys.stderr)
        return 2
    target = out / "python"
    if out.exists():
        shutil.rmtree(out)
    target.mkdir(parents=True)

    # Next to python/, so the layer's own record of what it holds; the layer asset excludes it.
    requirements = out / "requirements.txt"
    subprocess.run(export_command(uv, requirements, project=project), check=True)
    print(f"exported uv.lock's pins for the layer to {requirements}", flush=True)
    subprocess.run(install_command(uv, requirements, target), check=True)
    copy_packages(source / "python", target)
    report = strip_tree(target)
    print(
        f"stripped {len(report.removed_dirs)} directories and {report.removed_files} build-only files, "
        f"runtime-provided {report.removed_distributions}, pruned {report.pruned_records} RECORD files"
    )

    runtime_python = compile_python or find_runtime_python()
    if runtime_python:
        byte_compile(runtime_python, target)
        print(f"byte-compiled with {runtime_python} (unchecked-hash)")
        if host_matches_target():
            smoke_test(runtime_python, target)
            print(f"import check passed: {', '.join(SMOKE_IMPORTS)}")
    else:
        print(
            f"WARNING: no python{PYTHON_VERSION} found (pyenv install {PYTHON_VERSION}); the layer ships "
            "without byte-code and every cold start will compile it in memory (pandas alone: about 1 s).",
            file=sys.stderr,
        )

    size, files = tree_size(out)
    share = 100 * size / LAMBDA_UNZIPPED_LIMIT_BYTES
    elapsed = time.monotonic() - started
    print(
        f"layer: {out} — {size / 1024 / 1024:.1f} MB unzipped in {files} files "
        f"({share:.0f}% of Lambda's 250 MB for functions + layers), built in {elapsed:.0f} s"
    )
    return 0


def requirement_names(requirements: Path) -> set[str]:
    """The (normalized) package names a `uv export` requirements file pins."""
    names = set()
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")) and "==" in line:
            names.add(line.split("==", 1)[0].strip().lower().replace("_", "-"))
    return names


def only_packages(requirements: Path, keep: set[str]) -> None:
    """Rewrite a `uv export` requirements file to the blocks (pin + hash lines) of `keep`'s packages."""
    kept: list[str] = []
    keeping = False
    for line in requirements.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace() and "==" in line:
            keeping = line.split("==", 1)[0].strip().lower().replace("_", "-") in keep
        elif line and not line[0].isspace():
            keeping = False
        if keeping:
            kept.append(line)
    requirements.write_text("\n".join(kept) + "\n", encoding="utf-8")


def strip_unused_pyarrow(root: Path) -> int:
    """Remove `PYARROW_UNUSED` from an installed tree; the bytes removed."""
    removed = 0
    for pattern in PYARROW_UNUSED:
        for path in root.glob(pattern):
            if path.is_dir():
                removed += tree_size(path)[0]
                shutil.rmtree(path)
            elif path.exists():
                removed += path.stat().st_size
                path.unlink()
    return removed


def check_datasets_layer(python: str, datasets: Path, engine: Path) -> None:
    """Read a small CSV and Parquet file with the loader, both layers alone on the path (`-S`)."""
    code = (
        f"import sys, io; sys.path[:0] = [{str(datasets)!r}, {str(engine)!r}]\n"
        "import pyarrow, pyarrow.parquet as pq\n"
        f"assert pyarrow.__file__.startswith({str(datasets)!r}), pyarrow.__file__\n"
        "from backtest_engine.bar_files import read_bars\n"
        "text = b'time,open,high,low,close,volume\\n2024-01-02,1,2,1,2,5\\n2024-01-03,2,3,2,3,5\\n'\n"
        "bars = read_bars(text, 'csv')\n"
        "sink = io.BytesIO(); pq.write_table(pyarrow.table({'time': bars.times, 'open': bars.open, 'high': bars.high,"
        " 'low': bars.low, 'close': bars.close, 'volume': bars.volume}), sink)\n"
        "assert read_bars(sink.getvalue(), 'parquet').fingerprint() == bars.fingerprint()\n"
    )
    subprocess.run([python, "-S", "-c", code], check=True)


def build_datasets(out: Path, *, uv: str | None = None, project: Path = REPO_ROOT) -> int:
    """The datasets layer: the packages the `datasets` extra adds to the engine layer (pyarrow), stripped
    of what reading CSV and Parquet never loads. The validate_dataset function has it on top of the engine
    layer (Lambda's 250 MB counts both)."""
    started = time.monotonic()
    uv = uv or find_uv()
    if uv is None:
        print("error: uv not found: run `make layer` (it bootstraps uv) or pass --uv", file=sys.stderr)
        return 2
    target = out / "python"
    if out.exists():
        shutil.rmtree(out)
    target.mkdir(parents=True)
    engine, requirements = out / "engine-requirements.txt", out / "requirements.txt"
    subprocess.run(export_command(uv, engine, project=project), check=True)
    subprocess.run(export_command(uv, requirements, project=project, extras=(DATASETS_EXTRA,)), check=True)
    added = requirement_names(requirements) - requirement_names(engine)
    engine.unlink()
    only_packages(requirements, added)
    print(f"the datasets layer adds {', '.join(sorted(added))} to the engine layer", flush=True)
    subprocess.run(install_command(uv, requirements, target), check=True)
    report = strip_tree(target)
    removed = strip_unused_pyarrow(target)
    for dist_info in target.glob("*.dist-info"):
        _prune_record(dist_info, target)
    print(f"stripped {len(report.removed_dirs)} directories, {removed / 1024 / 1024:.1f} MB of unused pyarrow parts")
    runtime_python = find_runtime_python()
    if runtime_python:
        byte_compile(runtime_python, target)
        if host_matches_target() and (DEFAULT_OUT / "python").is_dir():
            check_datasets_layer(runtime_python, target, DEFAULT_OUT / "python")
            print("import check passed: pyarrow.csv and pyarrow.parquet read a CSV and a Parquet file")
    size, files = tree_size(out)
    print(
        f"datasets layer: {out} — {size / 1024 / 1024:.1f} MB unzipped in {files} files, "
        f"built in {time.monotonic() - started:.0f} s (validate_dataset: this + the engine layer ≤ 250 MB)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="layer root (gets python/ inside)")
    parser.add_argument("--compile-python", help=f"interpreter to byte-compile with (default: python{PYTHON_VERSION})")
    parser.add_argument("--uv", help="the uv binary (default: $UV, .venv-tools/bin/uv, uv on PATH)")
    parser.add_argument("--datasets", action="store_true", help=f"build the datasets layer into {DATASETS_OUT}")
    args = parser.parse_args(argv)
    if args.datasets:
        return build_datasets(args.out if args.out != DEFAULT_OUT else DATASETS_OUT, uv=args.uv)
    return build(args.out, compile_python=args.compile_python, uv=args.uv)


if __name__ == "__main__":
    sys.exit(main())
