"""The gateway's one error taxonomy: every error any layer raises or answers with.

It lives in the lowest layer, beside the other normalized types (`providers.base`), only
so that every layer can import it; it is not a list of provider errors.  Its first
branches say whose fault an error is: the client's request, the gateway's own state, or
an upstream provider.

    GatewayError                    code, message, client_status, retryable, fallback
    ├── RequestError                the client's request cannot be served as sent (4xx)
    │   ├── InvalidRequest          400 invalid_request: not JSON, not an object, not UTF-8
    │   │   ├── InvalidBody         422 invalid_request: a field fails validation
    │   │   ├── InvalidText         422 invalid_text: a lone surrogate, which is not text
    │   │   ├── UnknownModel        400 unknown_model: names only what the tenant may use
    │   │   └── MalformedHttp       400 bad_request: HTTP the server could not parse
    │   ├── Unauthorized            401 unauthorized: missing or unknown API key
    │   ├── Forbidden               403 forbidden: model or chain not allowed for the tenant
    │   ├── NotFound                404 not_found: no endpoint at this path
    │   ├── MethodNotAllowed        405 method_not_allowed
    │   ├── BodyTimeout             408 request_timeout: body not in within body_timeout_s
    │   ├── StreamStopped           409 stopped: the client stopped its stream (DELETE)
    │   ├── EventsExpired           410 events_expired: a resume from events no longer kept
    │   ├── ClientLeft              499 client_disconnected: it left, and its stream ended
    │   ├── PayloadTooLarge         413 payload_too_large: body over server.max_body_bytes
    │   ├── UnsupportedMediaType    415 unsupported_media_type: body is not JSON
    │   └── RateLimited             429 rate_limited: a tenant limit; retry_after, headers
    ├── GatewayUnavailable          the gateway cannot take the request now (503)
    │   ├── ShuttingDown            503 shutdown: the process is draining
    │   ├── LimiterUnavailable      503 rate_limiter_unavailable: Redis down, fail_closed
    │   └── TooManyConnections      503 too_many_connections: at server.max_connections
    ├── InternalError               500 internal_error: a bug; details only in the log
    ├── GatewayTimeout              504 timeout: a handler took too long
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
        ├── TargetCannotServe       the request needs tools or images it lacks → 400, next target
        └── UpstreamRejected        400/413 upstream: the request itself → 400, final
            └── UnsendableRequest   the request cannot be encoded for the upstream → 422

Status and code are the class's, never an instance's.  `retryable` says whether trying
the same target again may succeed; `fallback` whether another target may; `target_fault`
whether the failure counts against the target's health (the circuit breaker: no error the
client's input caused does).  `client_status` is the only place outside `gateway/` where
an HTTP status is named: it is the status the client sees when this error ends a request
before the stream started.  `headers` are extra response headers (a 429's `RateLimit-*`).
Messages are written by the gateway, never copied from an upstream body, so they cannot
carry an upstream key.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping

from providers.base import Usage


class GatewayError(Exception):
    code = "internal_error"
    client_status = 500
    retryable = False
    fallback = False
    target_fault = False

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})


# --- the client's request ---------------------------------------------------------------


class RequestError(GatewayError):
    code = "invalid_request"
    client_status = 400


class InvalidRequest(RequestError):
    pass


class InvalidBody(InvalidRequest):
    client_status = 422


class InvalidText(InvalidRequest):
    code = "invalid_text"
    client_status = 422


class UnknownModel(InvalidRequest):
    code = "unknown_model"


class MalformedHttp(InvalidRequest):
    code = "bad_request"


class Unauthorized(RequestError):
    code = "unauthorized"
    client_status = 401


class Forbidden(RequestError):
    code = "forbidden"
    client_status = 403


class NotFound(RequestError):
    code = "not_found"
    client_status = 404


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"
    client_status = 405


class BodyTimeout(RequestError):
    code = "request_timeout"
    client_status = 408


class StreamStopped(RequestError):
    """`DELETE /ai/stream/resume/<id>`: the user's Stop button, from any replica."""

    code = "stopped"
    client_status = 409

    def __init__(self) -> None:
        super().__init__("The stream was stopped (DELETE /ai/stream/resume/<id>).")


class EventsExpired(RequestError):
    code = "events_expired"
    client_status = 410

    def __init__(self) -> None:
        super().__init__(
            "The events after that one are no longer kept (resume.max_events); start again."
        )


class ClientLeft(RequestError):
    """The last event of a logged stream whose client left (without
    `resume.continue_after_disconnect`): a later resume learns that it ended."""

    code = "client_disconnected"
    client_status = 499

    def __init__(self) -> None:
        super().__init__(
            "The stream ended when its client left (resume.continue_after_disconnect is off)."
        )


class PayloadTooLarge(RequestError):
    code = "payload_too_large"
    client_status = 413


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"
    client_status = 415


class RateLimited(RequestError):
    """A tenant limit refused the request; `limit` names which."""

    code = "rate_limited"
    client_status = 429

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        limit: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, headers=headers)
        self.limit = limit


# --- the gateway's own state ------------------------------------------------------------


class GatewayUnavailable(GatewayError):
    code = "unavailable"
    client_status = 503


class ShuttingDown(GatewayUnavailable):
    code = "shutdown"

    def __init__(self) -> None:
        super().__init__("The gateway is shutting down; please retry.", retry_after=1)


class LimiterUnavailable(GatewayUnavailable):
    code = "rate_limiter_unavailable"


class TooManyConnections(GatewayUnavailable):
    code = "too_many_connections"


class InternalError(GatewayError):
    code = "internal_error"
    client_status = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "The gateway failed while handling this request; see its logs.")


class GatewayTimeout(GatewayError):
    code = "timeout"
    client_status = 504


# --- an upstream provider ---------------------------------------------------------------


class UpstreamError(GatewayError):
    code = "upstream_error"
    client_status = 502
    retryable = True
    fallback = True
    target_fault = True  # unless a subclass says the failure is not the target's

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.provider = provider
        self.status = status
        self.usage = usage  # what a stream that failed midway had used, when known
        # The upstream's own words: for the provider to learn from, never for the client.
        self.detail = detail


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


class TargetCannotServe(UpstreamError):
    """The request needs what this target does not take (tools, images): the next target
    may, and nothing was sent, so it is neither retried nor held against the target."""

    code = "unservable_request"
    client_status = 400
    retryable = False
    target_fault = False

    def __init__(self, model: str, provider: str, missing: Iterable[str]) -> None:
        super().__init__(
            f"The model '{model}' cannot take {' or '.join(sorted(missing))}; name a model "
            "or chain that can.",
            provider=provider,
        )


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
    status: int, provider: str, retry_after: float | None = None, detail: str = ""
) -> UpstreamError:
    """Classify an upstream HTTP status the same way for every provider; `detail` is the
    upstream's error message, kept on a rejection (400/413) for the provider's lessons."""
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
            detail=detail,
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
