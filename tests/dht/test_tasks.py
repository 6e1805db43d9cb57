"""Tasks on the node's clock: one-shot and periodic, cancellable, and isolated when they fail."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import events as ev
from dhtviewer.dht.node import DhtNode
from dhtviewer.dht.tasks import Scheduler


def test_call_at_runs_once_at_the_first_timer_after_its_time() -> None:
    s = Scheduler()
    ran: list[float] = []
    s.call_at(5.0, ran.append)
    assert s.next_deadline() == 5.0
    s.run_due(4.9)
    s.run_due(6.0)
    s.run_due(7.0)
    assert ran == [6.0] and s.next_deadline() is None and len(s) == 0


def test_call_every_does_not_drift_and_skips_missed_runs() -> None:
    s = Scheduler()
    ran: list[float] = []
    task = s.call_every(10.0, ran.append, first=10.0)
    s.run_due(10.5)
    assert task.next_run == 20.0  # from the scheduled time, not from the late run
    s.run_due(95.0)  # far behind: one run, then back on a fresh schedule
    assert ran == [10.5, 95.0] and task.next_run == 105.0
    task.cancel()
    assert s.next_deadline() is None
    with pytest.raises(ValueError):
        s.call_every(0.0, ran.append, first=1.0)


def test_a_failing_task_is_reported_and_kept() -> None:
    failures: list[str] = []
    s = Scheduler(on_error=lambda task, err, now: failures.append(f"{task.name}: {err}"))
    calls: list[float] = []

    def flaky(now: float) -> None:
        calls.append(now)
        raise RuntimeError("boom")

    s.call_every(1.0, flaky, first=1.0, name="flaky")
    s.run_due(1.0)
    s.run_due(2.0)
    assert calls == [1.0, 2.0] and failures == ["flaky: boom", "flaky: boom"]


def test_node_tasks_are_part_of_its_deadline_and_never_break_it() -> None:
    node = DhtNode(rng=random.Random(1), now=0.0)
    seen: list[float] = []
    node.call_at(3.0, seen.append, name="probe")
    node.call_every(2.0, lambda now: 1 / 0, first=1.0, name="broken")  # type: ignore[func-returns-value]
    assert node.next_deadline() == 1.0
    node.handle_timer(1.0)
    node.handle_timer(3.0)
    assert seen == [3.0]
    failed = [e for e in node.drain_events() if isinstance(e, ev.TaskFailed)]
    assert [e.name for e in failed] == ["broken", "broken"]
    assert "ZeroDivisionError" in failed[0].error
    assert node.stats(3.0)["task_errors"] == 2 and node.next_deadline() == 5.0
