"""The CDK app of the backtest service (`python infra/app.py`) and the Lambda layer build."""
