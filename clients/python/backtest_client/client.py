"""`BacktestClient` (sync) and `AsyncBacktestClient` (asyncio): the same operations (`_core`), each
performed by its own driver over an `httpx.Client` or `httpx.AsyncClient`.

    from backtest_client import BacktestClient, LocalUser

    with BacktestClient("http://127.0.0.1:8007", auth=LocalUser("alice")) as client:
        job = client.run(open("strategy.py").read(), symbol="AAPL", timeframe="1d", on_progress=print)
        print(job.status, job.performance_metrics["sharpe_ratio"])
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar

import httpx
from typing_extensions import Unpack

from backtest_client import _core, models
from backtest_client._core import UNSET, Call, Emit, Notify, Operation, PollPolicy, RetryPolicy, Sleep, Status

__version__ = "0.1.0"
T = TypeVar("T")
ProgressCallback = Callable[[models.JobStatus], Any]


class RequestFields(TypedDict, total=False):
    """The submit body's fields besides the code (openapi.json's SubmitRequest); absent: the service's default."""

    symbol: str
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"]
    start_date: date | str
    end_date: date | str
    initial_capital: float
    commission: float
    slippage: float
    parameters: Mapping[str, bool | int | float | str]
    name: str


class _Base:
    """Configuration and request building shared by the two drivers."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | None,
        *,
        retry: RetryPolicy | None,
        poll: PollPolicy | None,
        timeout: float | httpx.Timeout,
        headers: Mapping[str, str] | None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL (the API root, with its stage), not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=10.0)
        self._headers = {
            "User-Agent": f"backtest-client/{__version__}",
            "Accept": "application/json",
            **(headers or {}),
        }

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if call.read_timeout is not None:
            t = self._timeout
            timeout = httpx.Timeout(
                connect=t.connect, read=max(call.read_timeout, t.read or 0), write=t.write, pool=t.pool
            )
        return http.build_request(call.method, call.target, json=call.json, headers=dict(call.headers), timeout=timeout)

    def _auth_for(self, call: Call) -> Any:
        return httpx.USE_CLIENT_DEFAULT if call.authenticated else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, auth={self.auth!r})"


class BacktestClient(_Base):
    """The backtest service's API, synchronously. `base_url`: the API root (on API Gateway with the stage,
    e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/prod`; `backtest local`: `http://127.0.0.1:8007`).
    `auth`: `CognitoAuth`, `IamAuth`, `LocalUser` (or any httpx Auth). Use as a context manager, or `close()`."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | None = None,
        *,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, auth, retry=retry, poll=poll, timeout=timeout, headers=headers)
        self._http = httpx.Client(
            base_url=self.base_url, auth=auth, timeout=self._timeout, headers=self._headers, transport=transport
        )

    # ---- the driver ----------------------------------------------------------------------------------

    def _perform(self, effect: Any) -> Any:
        if isinstance(effect, Call):
            try:
                return self._http.send(self._request(self._http, effect), auth=self._auth_for(effect))
            except httpx.TransportError as exc:
                return exc
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
            return None
        if isinstance(effect, Notify):
            effect.callback(effect.value)
            return None
        raise TypeError(f"unexpected effect {effect!r}")

    def _run(self, operation: Operation[T]) -> T:
        outcome: Any = None
        try:
            while True:
                outcome = self._perform(operation.send(outcome))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _iterate(self, operation: Operation[None]) -> Iterator[Any]:
        outcome: Any = None
        while True:
            try:
                effect = operation.send(outcome)
            except StopIteration:
                return
            if isinstance(effect, Emit):
                outcome = None
                yield effect.item
            else:
                outcome = self._perform(effect)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BacktestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the API -------------------------------------------------------------------------------------

    def health(self) -> models.HealthResponse:
        return self._run(_core.health(self.retry))

    def symbols(self) -> models.SymbolsResponse:
        return self._run(_core.symbols(self.retry))

    def metric_definitions(self) -> models.MetricDefinitionsResponse:
        return self._run(_core.metric_definitions(self.retry))

    def submit(
        self,
        strategy: str | models.SubmitRequest,
        *,
        wait: float | None = None,
        idempotency_key: str | None = None,
        **fields: Unpack[RequestFields],
    ) -> models.SubmitResponse | models.RunResponse:
        """Queue a backtest: a SubmitResponse (QUEUED, execution_id). With `wait` (≤ 25 s) the service waits
        that long and answers the finished job (RunResponse) when it ends in time. Retries reuse one
        Idempotency-Key (generated unless given), so a submit queues one job however often it is retried."""
        body = _core.request_body(strategy, fields)
        return self._run(_core.submit(body, self.retry, idempotency_key=idempotency_key, wait=wait))

    def validate(
        self, strategy: str | models.SubmitRequest, **fields: Unpack[RequestFields]
    ) -> models.ValidateResponse:
        """Every check of submit (fields, bar cap, compiling the strategy); nothing is queued."""
        return self._run(_core.validate(_core.request_body(strategy, fields), self.retry))

    def status(self, execution_id: str) -> models.JobStatus:
        return self._run(_core.status(execution_id, self.retry))

    def wait(
        self, execution_id: str, timeout: float | None = 600.0, on_progress: ProgressCallback | None = None
    ) -> models.JobStatus:
        """Poll until the job is SUCCEEDED, FAILED or CANCELLED (returned, not raised); `on_progress(job)` on
        every change of status or progress. Raises WaitTimeout (with the last status) after `timeout` s."""
        return self._run(_core.wait(execution_id, self.retry, timeout=timeout, on_progress=on_progress, poll=self.poll))

    def run(
        self,
        strategy: str | models.SubmitRequest,
        *,
        timeout: float | None = 600.0,
        on_progress: ProgressCallback | None = None,
        **fields: Unpack[RequestFields],
    ) -> models.JobStatus:
        """Submit, then wait for the job to finish."""
        submitted = self.submit(strategy, **fields)
        return self.wait(submitted.execution_id, timeout=timeout, on_progress=on_progress)

    def result(self, execution_id: str) -> dict[str, Any]:
        """The full result (request, metrics, every trade as columns, the equity curve, logs; see
        BacktestResultDocument in the service); NotReady when the job is not SUCCEEDED."""
        return self._run(_core.result(execution_id, self.retry))

    def report(self, execution_id: str, path: str | Path) -> Path:
        """Save the job's HTML report to `path`; NoReport when the job has no report_url."""
        out = Path(path)
        out.write_bytes(self._run(_core.report(execution_id, self.retry)))
        return out

    def equity(
        self,
        execution_id: str,
        points: int | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> models.EquityResponse:
        return self._run(_core.equity(execution_id, self.retry, points=points, start=start, end=end))

    def trades_page(
        self, execution_id: str, *, limit: int | None = None, next_token: str | None = None
    ) -> models.TradesResponse:
        return self._run(_core.trades_page(execution_id, self.retry, limit=limit, next_token=next_token))

    def trades(self, execution_id: str, *, page_size: int | None = None) -> Iterator[models.Trade]:
        """Every trade of a SUCCEEDED job in exit order, fetched a page at a time as it is iterated."""
        return self._iterate(_core.trades(execution_id, self.retry, page_size=page_size))

    def cancel(self, execution_id: str) -> models.JobStatus:
        """Cancel: a QUEUED job is CANCELLED at once, a RUNNING one within about a second (wait for it)."""
        return self._run(_core.cancel(execution_id, self.retry))

    def update(self, execution_id: str, *, name: str | None = UNSET, notes: str | None = UNSET) -> models.JobStatus:
        """Rename a job or change its notes (None clears one; a field not given stays)."""
        return self._run(_core.update(execution_id, self.retry, name=name, notes=notes))

    def delete(self, execution_id: str) -> None:
        self._run(_core.delete(execution_id, self.retry))

    def list_page(
        self,
        *,
        limit: int | None = None,
        next_token: str | None = None,
        status: Status | None = None,
        symbol: str | None = None,
        name: str | None = None,
    ) -> models.JobList:
        return self._run(
            _core.list_page(self.retry, limit=limit, next_token=next_token, status=status, symbol=symbol, name=name)
        )

    def list(
        self,
        *,
        status: Status | None = None,
        symbol: str | None = None,
        name: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> Iterator[models.JobSummary]:
        """The caller's jobs, newest first (name: a prefix), fetched a page at a time; at most `limit`."""
        return self._iterate(
            _core.list_jobs(self.retry, status=status, symbol=symbol, name=name, limit=limit, page_size=page_size)
        )


class AsyncBacktestClient(_Base):
    """The same API for asyncio: every method is a coroutine; `trades` and `list` are async iterators.
    `on_progress` may be a plain function or a coroutine function."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | None = None,
        *,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, auth, retry=retry, poll=poll, timeout=timeout, headers=headers)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, auth=auth, timeout=self._timeout, headers=self._headers, transport=transport
        )

    # ---- the driver ----------------------------------------------------------------------------------

    async def _perform(self, effect: Any) -> Any:
        if isinstance(effect, Call):
            try:
                return await self._http.send(self._request(self._http, effect), auth=self._auth_for(effect))
            except httpx.TransportError as exc:
                return exc
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
            return None
        if isinstance(effect, Notify):
            returned = effect.callback(effect.value)
            if inspect.isawaitable(returned):
                await returned
            return None
        raise TypeError(f"unexpected effect {effect!r}")

    async def _run(self, operation: Operation[T]) -> T:
        outcome: Any = None
        try:
            while True:
                outcome = await self._perform(operation.send(outcome))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _iterate(self, operation: Operation[None]) -> AsyncIterator[Any]:
        outcome: Any = None
        while True:
            try:
                effect = operation.send(outcome)
            except StopIteration:
                return
            if isinstance(effect, Emit):
                outcome = None
                yield effect.item
            else:
                outcome = await self._perform(effect)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncBacktestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- the API (see BacktestClient for each method) ------------------------------------------------

    async def health(self) -> models.HealthResponse:
        return await self._run(_core.health(self.retry))

    async def symbols(self) -> models.SymbolsResponse:
        return await self._run(_core.symbols(self.retry))

    async def metric_definitions(self) -> models.MetricDefinitionsResponse:
        return await self._run(_core.metric_definitions(self.retry))

    async def submit(
        self,
        strategy: str | models.SubmitRequest,
        *,
        wait: float | None = None,
        idempotency_key: str | None = None,
        **fields: Unpack[RequestFields],
    ) -> models.SubmitResponse | models.RunResponse:
        body = _core.request_body(strategy, fields)
        return await self._run(_core.submit(body, self.retry, idempotency_key=idempotency_key, wait=wait))

    async def validate(
        self, strategy: str | models.SubmitRequest, **fields: Unpack[RequestFields]
    ) -> models.ValidateResponse:
        return await self._run(_core.validate(_core.request_body(strategy, fields), self.retry))

    async def status(self, execution_id: str) -> models.JobStatus:
        return await self._run(_core.status(execution_id, self.retry))

    async def wait(
        self,
        execution_id: str,
        timeout: float | None = 600.0,
        on_progress: Callable[[models.JobStatus], Awaitable[Any] | Any] | None = None,
    ) -> models.JobStatus:
        operation = _core.wait(execution_id, self.retry, timeout=timeout, on_progress=on_progress, poll=self.poll)
        return await self._run(operation)

    async def run(
        self,
        strategy: str | models.SubmitRequest,
        *,
        timeout: float | None = 600.0,
        on_progress: Callable[[models.JobStatus], Awaitable[Any] | Any] | None = None,
        **fields: Unpack[RequestFields],
    ) -> models.JobStatus:
        submitted = await self.submit(strategy, **fields)
        return await self.wait(submitted.execution_id, timeout=timeout, on_progress=on_progress)

    async def result(self, execution_id: str) -> dict[str, Any]:
        return await self._run(_core.result(execution_id, self.retry))

    async def report(self, execution_id: str, path: str | Path) -> Path:
        out = Path(path)
        out.write_bytes(await self._run(_core.report(execution_id, self.retry)))
        return out

    async def equity(
        self,
        execution_id: str,
        points: int | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> models.EquityResponse:
        return await self._run(_core.equity(execution_id, self.retry, points=points, start=start, end=end))

    async def trades_page(
        self, execution_id: str, *, limit: int | None = None, next_token: str | None = None
    ) -> models.TradesResponse:
        return await self._run(_core.trades_page(execution_id, self.retry, limit=limit, next_token=next_token))

    def trades(self, execution_id: str, *, page_size: int | None = None) -> AsyncIterator[models.Trade]:
        return self._iterate(_core.trades(execution_id, self.retry, page_size=page_size))

    async def cancel(self, execution_id: str) -> models.JobStatus:
        return await self._run(_core.cancel(execution_id, self.retry))

    async def update(
        self, execution_id: str, *, name: str | None = UNSET, notes: str | None = UNSET
    ) -> models.JobStatus:
        return await self._run(_core.update(execution_id, self.retry, name=name, notes=notes))

    async def delete(self, execution_id: str) -> None:
        await self._run(_core.delete(execution_id, self.retry))

    async def list_page(
        self,
        *,
        limit: int | None = None,
        next_token: str | None = None,
        status: Status | None = None,
        symbol: str | None = None,
        name: str | None = None,
    ) -> models.JobList:
        return await self._run(
            _core.list_page(self.retry, limit=limit, next_token=next_token, status=status, symbol=symbol, name=name)
        )

    def list(
        self,
        *,
        status: Status | None = None,
        symbol: str | None = None,
        name: str | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[models.JobSummary]:
        return self._iterate(
            _core.list_jobs(self.retry, status=status, symbol=symbol, name=name, limit=limit, page_size=page_size)
        )


__all__ = ["AsyncBacktestClient", "BacktestClient", "RequestFields"]
