"""`backtest submit | status | results | list | cancel`: the API of any deployment through the Python client
(`backtest_client`): a deployed stack (`--stack-name`, its `ApiUrl` output; or `--api-url`) or
`backtest local` (the default, http://127.0.0.1:8007). Shared arguments and helpers: `common`."""
