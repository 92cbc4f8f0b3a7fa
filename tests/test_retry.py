"""RetryPolicy: its fields (SPEC §3.1), the backoff schedule and which failures are retried."""

from __future__ import annotations

import dataclasses

import pytest

import weavegraph as wg


def test_fields_and_defaults() -> None:
    policy = wg.RetryPolicy()
    assert (policy.max_attempts, policy.initial_delay, policy.backoff, policy.max_delay) == (
        3,
        0.1,
        2.0,
        10.0,
    )
    assert policy.retry_on == (Exception,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # pyright: ignore[reportAttributeAccessIssue]


def test_delays_grow_by_backoff_and_are_capped() -> None:
    policy = wg.RetryPolicy(max_attempts=6, initial_delay=0.5, backoff=3.0, max_delay=5.0)
    # attempt 2 is the first retry
    assert [policy.delay_before(n) for n in range(2, 7)] == [0.5, 1.5, 4.5, 5.0, 5.0]


def test_only_listed_exceptions_are_retried_and_only_while_attempts_remain() -> None:
    policy = wg.RetryPolicy(max_attempts=3, retry_on=(ConnectionError, TimeoutError))
    assert policy.should_retry(ConnectionResetError("reset"), attempt=1)
    assert policy.should_retry(TimeoutError(), attempt=2)
    assert not policy.should_retry(TimeoutError(), attempt=3)  # the third attempt was the last
    assert not policy.should_retry(ValueError("bad input"), attempt=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_delay": -1.0},
        {"max_delay": -0.5},
        {"backoff": 0.5},
    ],
)
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        wg.RetryPolicy(**kwargs)  # pyright: ignore[reportArgumentType]


def test_fields_may_be_given_positionally_in_the_spec_order() -> None:
    policy = wg.RetryPolicy(5, 0.2, 3.0, 1.0, (KeyError,))
    assert (policy.max_attempts, policy.initial_delay, policy.backoff, policy.max_delay) == (
        5,
        0.2,
        3.0,
        1.0,
    )
    assert policy.retry_on == (KeyError,)


def test_retry_on_accepts_one_class_and_refuses_non_exceptions() -> None:
    policy = wg.RetryPolicy(retry_on=ValueError)
    assert policy.retry_on == (ValueError,)
    assert policy.should_retry(ValueError("x"), 1)
    assert not policy.should_retry(KeyError("x"), 1)
    with pytest.raises(TypeError, match="exception classes"):
        wg.RetryPolicy(retry_on=("ValueError",))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": "3"}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"initial_delay": -1}, "initial_delay"),
        ({"max_delay": float("nan")}, "max_delay"),
        ({"backoff": 0.5}, "backoff"),
        ({"backoff": "2"}, "backoff"),
    ],
)
def test_bad_options_are_a_config_error_naming_the_field(
    options: dict[str, object], named: str
) -> None:
    with pytest.raises(wg.ConfigError, match=f"RetryPolicy.{named} must be"):
        wg.RetryPolicy(**options)  # type: ignore[arg-type]


def test_retry_if_filters_what_retry_on_admits() -> None:
    policy = wg.RetryPolicy(max_attempts=3, retry_on=wg.ProviderError, retry_if=wg.llm.is_retryable)
    assert policy.should_retry(wg.ProviderError("p", "slow down", status=429), 1)
    assert policy.should_retry(wg.ProviderError("p", "connection cut"), 2)
    assert not policy.should_retry(wg.ProviderError("p", "slow down", status=429), 3)
    assert not policy.should_retry(wg.ProviderError("p", "bad key", status=401), 1)
    assert not policy.should_retry(ValueError("not a provider error"), 1)
    with pytest.raises(TypeError, match="retry_if"):
        wg.RetryPolicy(retry_if="yes")  # type: ignore[arg-type]
