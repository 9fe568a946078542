"""The retry policy waits as Graph asks, backs off otherwise, and never exceeds its budget."""

from __future__ import annotations

import random

from airflow_provider_graphcert.graph.retry import RetryBudget, RetryPolicy, parse_retry_after


def test_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("41") == 41
    assert parse_retry_after(" 0 ") == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0


def test_a_negative_or_non_finite_retry_after_means_back_off_not_retry_at_once() -> None:
    for nonsense in ("-1", "nan", "inf", "-inf", "1e999"):
        assert parse_retry_after(nonsense) is None
    budget = RetryBudget(RetryPolicy(backoff_initial=2.0, jitter=0.0))
    assert budget.next_delay(parse_retry_after("-1")) == 2.0


def test_throttling_is_retried_for_every_method_but_500_only_when_idempotent() -> None:
    policy = RetryPolicy()
    assert policy.retryable_status("POST", 429)
    assert policy.retryable_status("POST", 503)
    assert policy.retryable_status("PATCH", 504)
    assert policy.retryable_status("GET", 500)
    assert not policy.retryable_status("POST", 500)
    assert not policy.retryable_status("GET", 404)
    assert not policy.retryable_status("GET", 507)  # insufficient storage is final (rclone)
    assert policy.retryable_transport_error("GET")
    assert not policy.retryable_transport_error("POST")


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_initial=1, backoff_max=8, jitter=0.25, rng=random.Random(7))
    delays = [policy.backoff(n) for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        base = min(8, 2 ** (n - 1))
        assert 0.75 * base <= delay <= 1.25 * base


def test_budget_stops_on_attempts_and_on_total_wait() -> None:
    budget = RetryBudget(RetryPolicy(max_attempts=3, max_total_wait=100))
    assert budget.next_delay(10) == 10
    budget.spend(10)
    assert budget.next_delay(10) == 10
    budget.spend(10)
    assert budget.next_delay(10) is None  # third attempt was the last one
    huge = RetryBudget(RetryPolicy(max_total_wait=60))
    assert huge.next_delay(3600) is None  # a huge Retry-After ends the wait instead of hanging
