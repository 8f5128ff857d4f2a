"""The one error taxonomy of the gateway, shared by every layer.

    GatewayError                    code, message, client_status, retryable
    ├── ShuttingDown                503: the process is draining (an `error` event mid-stream)
    ├── RequestError                the client's request cannot be served as sent
    │   ├── InvalidRequest          400 / 422: bad JSON, failed validation, unknown model
    │   ├── UnsupportedMediaType    415: body is not application/json
    │   ├── PayloadTooLarge         413: body over server.max_body_bytes
    │   ├── BodyTimeout             408: body not received within server.body_timeout_s
    │   ├── Unauthorized            401: missing or unknown API key
    │   ├── Forbidden               403: model or chain not allowed for the tenant
    │   └── RateLimited             429: a tenant limit; carries retry_after
    └── UpstreamError               a provider failed; carries provider and upstream status
        ├── UpstreamRateLimited     429 upstream → 429, retryable, retry_after
        ├── UpstreamOverloaded      529 upstream → 503, retryable
        ├── UpstreamServerError     5xx upstream → 502, retryable
        ├── UpstreamConnectionError transport failure or cut stream → 502, retryable
        ├── UpstreamTimeout         a time-out before or during the stream → 504, retryable
        ├── UpstreamProtocolError   a malformed frame → 502, retryable
        ├── UpstreamAuthError       401/403 upstream → 502, next target may help
        ├── UpstreamNotFound        404 upstream (model unknown) → 502, next target may help
        ├── TargetCoolingDown       the circuit breaker skips the target → 503, next target
        ├── UpstreamQuotaExhausted  the gateway's own quota at the provider → 503, next target
        └── UpstreamRejected        400/413 upstream: the request itself → 400, final
            └── UnsendableRequest   the request cannot be encoded for the upstream → 422

`retryable` says whether trying the same target again may succeed; `fallback` says
whether another target may succeed; `target_fault` says whether the failure counts
against the target's health (the circuit breaker).  `client_status` is the only place
outside `gateway/` where an HTTP status is named: it is the status the client sees when
this error ends a request before the stream started.  Messages are written by the
gateway, never copied from an upstream body, so they cannot carry an upstream key.
"""

from __future__ import annotations

import email.utils
import time

from providers.base import Usage


class GatewayError(Exception):
    code = "internal_error"
    client_status = 500
    retryable = False
    fallback = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class ShuttingDown(GatewayError):
    code = "shutdown"
    client_status = 503

    def __init__(self) -> None:
        super().__init__("The gateway is shutting down; please retry.", retry_after=1)


class RequestError(GatewayError):
    code = "invalid_request"
    client_status = 400


class InvalidRequest(RequestError):
    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.client_status = status
        self.code = code


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"
    client_status = 415


class PayloadTooLarge(RequestError):
    code = "payload_too_large"
    client_status = 413


class BodyTimeout(RequestError):
    code = "request_timeout"
    client_status = 408


class Unauthorized(RequestError):
    code = "unauthorized"
    client_status = 401


class Forbidden(RequestError):
    code = "forbidden"
    client_status = 403


class RateLimited(RequestError):
    code = "rate_limited"
    client_status = 429


class UpstreamError(GatewayError):
    code = "upstream_error"
    client_status = 502
    retryable = True
    fallback = True
    target_fault = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.provider = provider
        self.status = status
        self.usage = usage  # what a stream that failed midway had used, when known


class UpstreamRateLimited(UpstreamError):
    code = "upstream_rate_limited"
    client_status = 429


class UpstreamOverloaded(UpstreamError):
    code = "upstream_overloaded"
    client_status = 503


class UpstreamServerError(UpstreamError):
    code = "upstream_server_error"


class UpstreamConnectionError(UpstreamError):
    code = "upstream_connection_error"


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    client_status = 504


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


class UpstreamAuthError(UpstreamError):
    code = "upstream_auth_error"
    retryable = False


class UpstreamNotFound(UpstreamError):
    code = "upstream_model_not_found"
    retryable = False


class TargetCoolingDown(UpstreamError):
    code = "target_cooling_down"
    client_status = 503
    retryable = False
    target_fault = False  # the breaker's own answer


class UpstreamQuotaExhausted(UpstreamError):
    code = "upstream_quota_exhausted"
    client_status = 503
    retryable = False
    target_fault = False  # the gateway's own quota, not the upstream's health


class UpstreamRejected(UpstreamError):
    code = "upstream_rejected_request"
    client_status = 400
    retryable = False
    fallback = False
    target_fault = False  # the client's request


class UnsendableRequest(UpstreamRejected):
    """Text that is not valid Unicode (a lone surrogate) cannot be encoded as the upstream's
    JSON.  Validation refuses it first; this keeps any that got past it the client's fault,
    never the target's."""

    code = "invalid_text"
    client_status = 422

    def __init__(self, provider: str) -> None:
        super().__init__(
            "The request contains text that is not valid Unicode (a lone surrogate).",
            provider=provider,
        )


def unreadable_stream(provider: str) -> UpstreamProtocolError:
    """A stream or frame that cannot be parsed, from any provider."""
    return UpstreamProtocolError(
        f"The upstream provider '{provider}' sent a stream the gateway could not read.",
        provider=provider,
    )


def attributed(error: UpstreamError, provider: str, usage: Usage) -> UpstreamError:
    """`error`, marked with the provider that raised it and, when the stream had used any,
    its usage so far (so that a stream that failed midway is still accounted for)."""
    error.provider = provider
    if usage.input_tokens or usage.output_tokens:
        error.usage = usage
    return error


def upstream_error_for_status(
    status: int, provider: str, retry_after: float | None = None
) -> UpstreamError:
    """Classify an upstream HTTP status the same way for every provider."""
    if status == 429:
        return UpstreamRateLimited(
            f"The upstream provider '{provider}' is rate limiting the gateway.",
            provider=provider,
            status=status,
            retry_after=retry_after,
        )
    if status in (401, 403):
        return UpstreamAuthError(
            f"The upstream provider '{provider}' rejected the gateway's credentials ({status}).",
            provider=provider,
            status=status,
        )
    if status == 404:
        return UpstreamNotFound(
            f"The upstream provider '{provider}' does not know the requested model.",
            provider=provider,
            status=status,
        )
    if status == 529:
        return UpstreamOverloaded(
            f"The upstream provider '{provider}' is overloaded.",
            provider=provider,
            status=status,
            retry_after=retry_after,
        )
    if status == 408:
        return UpstreamTimeout(
            f"The upstream provider '{provider}' timed out.", provider=provider, status=status
        )
    if 400 <= status < 500:
        return UpstreamRejected(
            f"The upstream provider '{provider}' rejected the request ({status}).",
            provider=provider,
            status=status,
        )
    return UpstreamServerError(
        f"The upstream provider '{provider}' failed ({status}).",
        provider=provider,
        status=status,
        retry_after=retry_after,
    )


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
