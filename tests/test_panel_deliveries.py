"""The test panel's record of what the hub delivered (tests/panel.py `Deliveries`): the check
the end-to-end tests lean on must see every way a hub can break the order of DESIGN.md §3."""

from __future__ import annotations

import pytest

from tests.panel import Deliveries


def delivered(resume: int | None, *events: tuple[str, int]) -> Deliveries:
    """The record of one connection (resuming after `resume`) that got `events` in order."""
    record = Deliveries()
    record.connecting(resume)
    for kind, seq in events:
        if kind == "snapshot":
            record.snapshot(seq)
        else:
            record.change(seq)
    return record


def test_a_snapshot_then_every_change_once_in_order_is_clean() -> None:
    record = delivered(None, ("snapshot", 7), ("change", 8), ("change", 9), ("change", 10))
    assert record.errors == []
    assert record.log == [(1, "snapshot", 7), (1, "change", 8), (1, "change", 9), (1, "change", 10)]


def test_a_replay_from_the_resume_point_is_clean() -> None:
    assert delivered(4, ("change", 5), ("change", 6)).errors == []
    assert delivered(4, ("snapshot", 9), ("change", 10)).errors == []  # could not replay


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ((("snapshot", 3), ("change", 4), ("change", 4)), "connection 1: change 4 after 4"),
        ((("snapshot", 3), ("change", 5)), "connection 1: change 5 after 3"),
        ((("snapshot", 3), ("change", 5), ("change", 4)), "connection 1: change 5 after 3"),
        ((("snapshot", 3), ("change", 3)), "connection 1: change 3 after 3"),
        ((("change", 1),), "connection 1: change 1 before a snapshot"),
        ((("snapshot", 3), ("snapshot", 3)), "connection 1: a second snapshot, at seq 3"),
    ],
    ids=["repeated", "skipped", "reordered", "already-in-snapshot", "no-snapshot", "two-snapshots"],
)
def test_every_break_of_order_is_an_error(events: tuple[tuple[str, int], ...], error: str) -> None:
    assert delivered(None, *events).errors[0] == error


def test_a_replay_that_repeats_the_resume_point_is_an_error() -> None:
    assert delivered(4, ("change", 4), ("change", 5)).errors == ["connection 1: change 4 after 4"]


def test_each_connection_starts_afresh() -> None:
    record = delivered(None, ("snapshot", 3), ("change", 4))
    record.connecting(4)
    record.change(5)
    record.connecting(None)
    record.snapshot(9)
    record.change(10)
    assert record.errors == []
    assert [c for c, _, _ in record.log] == [1, 1, 2, 3, 3]
