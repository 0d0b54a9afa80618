"""`backtest local-aws`: the embedded AWS alone, moto's server in its own process, so that `backtest local
--aws-endpoint URL` (the API and the workers) can stop, crash or be killed without losing jobs, results or
queued messages, and be started again on the same state:

    backtest local-aws --port 4566 &
    backtest local --aws-endpoint http://127.0.0.1:4566

It applies DynamoDB TTL and S3 lifecycle expiry every minute (`local/expiry.py`), holds fake credentials
only and listens on loopback. State lives in its memory: stopping it forgets everything (moto keeps
nothing on disk). The first line it prints is the endpoint; Ctrl-C (or SIGTERM) stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from local.embedded_aws import DEFAULT_REGION, EmbeddedAws, EnvironmentPatch, forget_model_instances
from local.expiry import DEFAULT_INTERVAL_SECONDS, Expiry

DEFAULT_PORT = 4566


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any)")
    p.add_argument("--region", default=DEFAULT_REGION, help=f"region (default {DEFAULT_REGION})")
    p.add_argument(
        "--expiry-interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"apply DynamoDB TTL and S3 lifecycle every SECONDS (default {DEFAULT_INTERVAL_SECONDS:g})",
    )


def run(args: argparse.Namespace) -> int:
    env = EnvironmentPatch()
    aws = EmbeddedAws(server=True, region=args.region, port=args.port)
    try:
        aws.start(env)
    except OSError as exc:
        print(f"error: cannot start moto on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        env.restore()
        return 1
    expiry = Expiry(args.region).start(args.expiry_interval)
    print(f"backtest local-aws: moto at {aws.endpoint_url}", flush=True)
    print(f"  use it    backtest local --aws-endpoint {aws.endpoint_url}", flush=True)
    print(f"  expiry    DynamoDB TTL and S3 lifecycle applied every {args.expiry_interval:g} s", flush=True)
    print("  state     in memory: kept while this process runs, gone when it stops. Ctrl-C to stop.", flush=True)
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not done.wait(60):
            forget_model_instances()  # moto's dashboard list of every model object: unbounded otherwise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        expiry.stop()
        aws.stop()
        env.restore()
    print("stopped.", flush=True)
    return 0
