"""What every provider call shares: a timeout, and retries with backoff on 429, 5xx and
network errors (tenacity), honouring `Retry-After`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

USER_AGENT = "wee5-xp (+https://github.com/wee5)"
MAX_RETRY_AFTER = 60.0


class ProviderError(Exception):
    """A provider call that failed for good (after its retries, or a non-retryable answer)."""


class RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.request.url.host} answered {response.status_code}")
        self.status_code = response.status_code
        self.retry_after = _retry_after(response)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value))) if value else None
    except ValueError:
        return None  # an HTTP date; the exponential backoff is close enough


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    # The wait before retry n is random in [0, backoff * 2^n], at most max_backoff.
    backoff: float = 0.5
    max_backoff: float = 30.0

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableStatus) and error.retry_after is not None:
            return error.retry_after
        # Full jitter: a random wait up to backoff * 2^attempt, so retrying clients spread out.
        return wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)(state)

    async def send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """The first answer that is neither 429 nor 5xx; ProviderError when none came."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type((httpx.TransportError, RetryableStatus)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await client.send(request)
                    if response.status_code == 429 or response.status_code >= 500:
                        raise RetryableStatus(response)
                    return response
        except (httpx.TransportError, RetryableStatus) as error:
            raise ProviderError(
                f"{request.method} {request.url.copy_with(query=None)} failed after "
                f"{self.attempts} attempts: {error}"
            ) from error
        raise AssertionError("unreachable: tenacity either returns or raises")
