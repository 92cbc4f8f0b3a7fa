"""Per-node retry policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failing node up to ``max_attempts`` times in all, with exponential backoff.

    Only exceptions that are instances of ``retry_on`` (one class or a tuple of classes) and, when
    ``retry_if`` is given, for which ``retry_if(exc)`` is true are retried; others fail at once.
    ``RetryPolicy(5, 0.2)`` and keyword arguments both work. For model calls,
    ``RetryPolicy(retry_on=wg.ProviderError, retry_if=wg.llm.is_retryable)`` retries rate limits,
    overload, server errors and lost connections, but not a bad request or a wrong API key.
    """

    max_attempts: int = 3
    initial_delay: float = 0.1
    backoff: float = 2.0
    max_delay: float = 10.0
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,)
    retry_if: Callable[[BaseException], bool] | None = None

    def __post_init__(self) -> None:
        attempts: object = self.max_attempts
        if type(attempts) is not int or attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be an int >= 1, got {attempts!r}")
        for name, least in (("initial_delay", 0), ("max_delay", 0), ("backoff", 1)):
            value: object = getattr(self, name)
            # `not >=` also refuses NaN, which would otherwise reach asyncio.sleep mid-run.
            if not isinstance(value, int | float) or isinstance(value, bool) or not value >= least:
                raise ConfigError(f"RetryPolicy.{name} must be a number >= {least}, got {value!r}")
        retry_on = self.retry_on if isinstance(self.retry_on, tuple) else (self.retry_on,)
        for kind in retry_on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise TypeError(f"RetryPolicy.retry_on takes exception classes, got {kind!r}")
        object.__setattr__(self, "retry_on", retry_on)
        if self.retry_if is not None and not callable(self.retry_if):
            raise TypeError(f"RetryPolicy.retry_if must be callable, got {self.retry_if!r}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry)."""
        return min(self.initial_delay * self.backoff ** max(attempt - 2, 0), self.max_delay)

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """True if ``exc`` (raised by ``attempt``, 1 = the first) gets another attempt."""
        if attempt >= self.max_attempts or not isinstance(exc, self.retry_on):
            return False
        return self.retry_if is None or bool(self.retry_if(exc))
