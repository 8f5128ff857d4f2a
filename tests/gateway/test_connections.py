"""The connection cap's counting and its rate-limited log, on an injected clock."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, generate_latest

from gateway.connections import ConnectionCap


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admits_up_to_the_limit_and_again_after_a_release():
    cap = ConnectionCap(2, clock=Clock())
    assert [cap.admit(), cap.admit(), cap.admit()] == [True, True, False]
    assert (cap.open, cap.refused) == (2, 1)
    cap.release()
    assert cap.admit()
    assert cap.open == 2


def test_a_burst_of_refusals_is_one_log_line_then_one_per_interval(caplog):
    clock = Clock()
    cap = ConnectionCap(1, clock=clock, log_every_s=10)
    cap.admit()
    with caplog.at_level(logging.WARNING, logger="gateway"):
        for _ in range(500):
            cap.admit()
        clock.now += 9.9
        cap.admit()
        clock.now += 0.1
        cap.admit()
    lines = [r.getMessage() for r in caplog.records if "connection limit" in r.getMessage()]
    assert [line.split("refused ")[1].split()[0] for line in lines] == ["1", "501"]
    assert cap.refused == 502


def test_counts_are_exposed_as_metrics():
    registry = CollectorRegistry()
    cap = ConnectionCap(1, clock=Clock())
    cap.register(registry)
    cap.admit()
    cap.admit()
    text = generate_latest(registry).decode()
    assert "aigw_connections_refused_total 1.0" in text
    assert "aigw_open_connections 1.0" in text
