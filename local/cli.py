"""The `backtest` command: run, demo, local, replay."""

from __future__ import annotations

import argparse
import sys

from local import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backtest", description="Backtest trading strategies locally or on the service.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_command.add_arguments(sub.add_parser("run", help="backtest one strategy file in this process"))
    sub.add_parser("demo", help="run one job end to end through the real handlers on the embedded local stack")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run_command.run(args)
    if args.command == "demo":
        return run_command.run(build_parser().parse_args(["run", "examples/sma_crossover_vectorized.py"]))
    return 2


if __name__ == "__main__":
    sys.exit(main())
