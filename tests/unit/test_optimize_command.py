"""`backtest optimize`: its parameter and rule syntax, and a small search end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.cli import main
from local.optimize_command import parse_rule, parse_space

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sma_crossover_vectorized.py"


def test_param_specs_are_ranges_lists_or_fixed_values():
    assert parse_space("fast=5:50:5") == ("fast", {"min": 5, "max": 50, "step": 5})
    assert parse_space("x=0.1:0.5:0.1") == ("x", {"min": 0.1, "max": 0.5, "step": 0.1})
    assert parse_space("slow=20,40,60") == ("slow", {"values": [20, 40, 60]})
    assert parse_space("mode=long") == ("mode", "long")
    with pytest.raises(ValueError, match="MIN:MAX"):
        parse_space("a=1:b")


def test_rules_name_an_operator():
    assert parse_rule("total_trades>=10", "--constraint") == ("total_trades", ">=", 10)
    assert parse_rule(" fast < slow ", "--where") == ("fast", "<", "slow")
    with pytest.raises(ValueError, match="expected NAME OP VALUE"):
        parse_rule("total_trades=>10", "--constraint")


def test_a_search_prints_a_ranked_table_and_json(capsys):
    args = [
        "optimize", str(EXAMPLE), "--timeframe", "1d", "--start", "2023-01-01", "--end", "2024-12-31",
        "--param", "fast=5:15:5", "--param", "slow=20,40", "--where", "fast<slow", "--top", "2",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "6 combinations: 6 succeeded" in out and out.count("fast=") == 2
    assert main([*args, "--json", "--constraint", "total_trades>=1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["combinations"]) == 6 and result["target"] == "sharpe_ratio"


def test_bad_input_exits_2(capsys):
    assert main(["optimize", str(EXAMPLE), "--param", "fast=5:50:5", "--target", "nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err
