"""The `backtest` command: run, optimize, report, compare, demo, local, local-aws, replay, datasets; submit,
status, results, list, cancel (against a deployment: local/remote/)."""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

# command → (module with add_arguments(parser) and run(args) -> int, help). A command's module is
# imported only when that command runs, so `backtest run` does not pay for boto3 and powertools.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("local.run_command", "backtest one strategy file in this process"),
    "report": ("local.report_command", "write the HTML report of a stored result (backtest run --json)"),
    "compare": ("local.compare_command", "put several runs' equity curves and metrics side by side in one HTML file"),
    "optimize": (
        "local.optimize_command",
        "search parameters in this process (grid, random, walk-forward)",
    ),
    "demo": ("local.demo", "run one job end to end through the real handlers on the embedded local stack"),
    "local": ("local.http_server", "serve the HTTP API on 127.0.0.1:8007 with workers, on the embedded AWS"),
    "local-aws": ("local.aws_server", "run the embedded AWS (moto) alone, for `backtest local --aws-endpoint`"),
    "replay": ("ops.replay", "move dead-lettered jobs back to the jobs queue (deployed or local stack)"),
    # The API of any deployment (--api-url, --stack-name; default backtest local) through backtest_client.
    "submit": ("local.remote.submit", "submit a strategy file to a deployment (or backtest local); --wait follows it"),
    "status": ("local.remote.status", "show a job of a deployment: status, progress, error or metrics"),
    "results": ("local.remote.results", "download a job's full result (and report) from a deployment"),
    "list": ("local.remote.listing", "list your jobs on a deployment, newest first"),
    "cancel": ("local.remote.cancel", "cancel a job on a deployment"),
    "datasets": ("local.datasets_command", "upload, list, show or delete your own OHLCV datasets on a running API"),
}


def _module(command: str) -> ModuleType:
    return importlib.import_module(COMMANDS[command][0])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's arguments are loaded (the others stay listed)."""
    parser = argparse.ArgumentParser(
        prog="backtest", description="Backtest trading strategies locally or on the service."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            _module(name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else "").parse_args(argv)
    result: int = _module(args.command).run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
