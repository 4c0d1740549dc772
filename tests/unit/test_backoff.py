"""The one backoff rule every retry loop uses."""

from __future__ import annotations

from domain.backoff import exponential_backoff


def test_it_doubles_from_the_base_up_to_the_cap() -> None:
    assert [exponential_backoff(n, 0.2, 5.0) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert exponential_backoff(0, 1.0, 60.0) == 1.0  # no failure yet counts as the first
    assert exponential_backoff(3, 0.0, 60.0) == 0.0  # a zero base never waits


def test_a_very_long_run_of_failures_stays_at_the_cap() -> None:
    assert exponential_backoff(10**6, 1.0, 3600.0) == 3600.0
