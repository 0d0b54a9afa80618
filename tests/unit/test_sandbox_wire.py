"""The frame reader between the trusted side and a sandbox child: caps first, and a stop poll that never
cuts a frame in two (under load a child's large SIGNALS frame can take longer than one poll interval to
arrive; dropping the bytes already read desynchronized the channel: "frame kind 0 is not expected here")."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np
import pytest

from backtest_engine.sandbox import wire


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def _trickle(fd: int, data: bytes, pieces: int, pause: float) -> threading.Thread:
    def send() -> None:
        step = -(-len(data) // pieces)
        for start in range(0, len(data), step):
            os.write(fd, data[start : start + step])
            time.sleep(pause)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _frame(kind: int, payload: bytes) -> bytes:
    return wire.HEADER.pack(kind, len(payload)) + payload


def test_a_frame_slower_than_the_stop_poll_arrives_whole_and_the_next_one_still_parses(pipe, monkeypatch):
    monkeypatch.setattr(wire, "STOP_POLL_SECONDS", 0.02)
    read_fd, write_fd = pipe
    signals = np.linspace(-1.0, 1.0, 1000).tobytes()
    data = _frame(wire.SIGNALS, signals) + _frame(wire.DONE, b"")
    asked = []
    sender = _trickle(write_fd, data, pieces=8, pause=0.06)  # each pause is three poll intervals
    reader = wire.FrameReader(read_fd, {wire.SIGNALS: len(signals), wire.DONE: 0})
    first = reader.read(time.monotonic() + 30, should_stop=lambda: asked.append(1) or False)
    second = reader.read(time.monotonic() + 30, should_stop=lambda: False)
    sender.join()
    assert (first.kind, bytes(first.payload)) == (wire.SIGNALS, signals)
    assert second.kind == wire.DONE


def test_should_stop_is_asked_while_no_frame_has_begun_and_ends_the_wait(pipe, monkeypatch):
    monkeypatch.setattr(wire, "STOP_POLL_SECONDS", 0.01)
    read_fd, _ = pipe
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(wire.StopRequested):
        wire.FrameReader(read_fd, {wire.DONE: 0}).read(time.monotonic() + 30, should_stop=should_stop)
    assert len(calls) == 3


def test_the_deadline_still_bounds_a_reader_that_polls(pipe, monkeypatch):
    monkeypatch.setattr(wire, "STOP_POLL_SECONDS", 0.01)
    read_fd, _ = pipe
    with pytest.raises(wire.Deadline):
        wire.FrameReader(read_fd, {wire.DONE: 0}).read(time.monotonic() + 0.05, should_stop=lambda: False)


def test_a_kind_or_size_beyond_its_cap_is_refused_before_the_payload_is_read(pipe):
    read_fd, write_fd = pipe
    os.write(write_fd, wire.HEADER.pack(wire.SIGNALS, 1 << 40))
    with pytest.raises(wire.ProtocolError, match="exceeds its cap"):
        wire.FrameReader(read_fd, {wire.SIGNALS: 800}).read(time.monotonic() + 5)
    os.write(write_fd, wire.HEADER.pack(0, 0))
    with pytest.raises(wire.ProtocolError, match="kind 0 is not expected"):
        wire.FrameReader(read_fd, {wire.SIGNALS: 800}).read(time.monotonic() + 5)
