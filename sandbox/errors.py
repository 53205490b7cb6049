"""Cloud Controller V3 and UAA error types and their wire envelopes.

CC errors render as ``{"errors":[{"detail","title","code"}]}`` (key order as on the wire);
UAA errors render as Spring OAuth / SCIM JSON objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class CFError(Exception):
    """A Cloud Controller API error (``CloudController::Errors::ApiError``)."""

    def __init__(
        self,
        status: int,
        title: str,
        code: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.content_type = content_type

    def envelope(self) -> dict[str, Any]:
        return {"errors": [{"detail": self.detail, "title": self.title, "code": self.code}]}


def _join(messages: str | Sequence[str]) -> str:
    return messages if isinstance(messages, str) else ", ".join(messages)


def not_authenticated() -> CFError:
    return CFError(401, "CF-NotAuthenticated", 10002, "Authentication error")


def invalid_auth_token() -> CFError:
    return CFError(401, "CF-InvalidAuthToken", 1000, "Invalid Auth Token")


def not_authorized() -> CFError:
    return CFError(403, "CF-NotAuthorized", 10003, "You are not authorized to perform the requested action")


def bad_query_parameter(messages: str | Sequence[str]) -> CFError:
    return CFError(400, "CF-BadQueryParameter", 10005, f"The query parameter is invalid: {_join(messages)}")


def unprocessable(messages: str | Sequence[str]) -> CFError:
    return CFError(422, "CF-UnprocessableEntity", 10008, _join(messages))


def user_rejected(username: str, origin: str | None, what: str) -> CFError:
    """The ``reject_usernames`` fault: CC refuses to act for this one user."""
    where = f" with origin '{origin}'" if origin else ""
    return unprocessable(f"{what} for user '{username}'{where} could not be created: the user was rejected.")


def resource_not_found(resource: str) -> CFError:
    return CFError(404, "CF-ResourceNotFound", 10010, f"{resource} not found")


def unknown_request() -> CFError:
    return CFError(404, "CF-NotFound", 10000, "Unknown request")


def message_parse_error() -> CFError:
    return CFError(
        400, "CF-MessageParseError", 1001, "Request invalid due to parse error: invalid request body"
    )


def unknown_error() -> CFError:
    return CFError(500, "UnknownError", 10001, "An unknown error occurred.")


def service_unavailable(detail: str = "Database connection failure") -> CFError:
    return CFError(503, "CF-ServiceUnavailable", 10015, detail)


def rate_limit_exceeded() -> CFError:
    return CFError(429, "CF-RateLimitExceeded", 10013, "Rate Limit Exceeded")


def uaa_rate_limited(retry_after_s: int) -> CFError:
    return CFError(
        429,
        "CF-UaaRateLimited",
        20008,
        "The UAA is currently rate limited. Please try again later",
        headers={"Retry-After": str(retry_after_s)},
    )


def ip_rate_limit_exceeded() -> CFError:
    return CFError(
        429,
        "CF-IPBasedRateLimitExceeded",
        10014,
        "Rate Limit Exceeded: Unauthenticated requests from this IP address have exceeded the limit. "
        "Please log in.",
    )


class UAAError(Exception):
    """A UAA error: an arbitrary JSON object body with a status."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(str(body.get("error_description") or body.get("error")))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def scim_error(status: int, error: str, description: str, **extra: Any) -> UAAError:
    """SCIM endpoint error shape: error, error_description, message (+ extra info)."""
    body: dict[str, Any] = {"error": error, "error_description": description, "message": description}
    body.update(extra)
    return UAAError(status, body)


def uaa_unauthorized() -> UAAError:
    return UAAError(
        401,
        {
            "error": "unauthorized",
            "error_description": "Full authentication is required to access this resource",
        },
        {
            "WWW-Authenticate": 'Bearer realm="UAA/oauth", error="unauthorized", '
            'error_description="Full authentication is required to access this resource"'
        },
    )


def uaa_invalid_token(description: str) -> UAAError:
    return UAAError(
        401,
        {"error": "invalid_token", "error_description": description},
        {
            "WWW-Authenticate": 'Bearer realm="UAA/oauth", error="invalid_token", '
            f'error_description="{description}"'
        },
    )


def uaa_insufficient_scope(required: Sequence[str]) -> UAAError:
    return UAAError(
        403,
        {
            "error": "insufficient_scope",
            "error_description": "Insufficient scope for this resource",
            "scope": " ".join(required),
        },
    )


def uaa_bad_client_credentials() -> UAAError:
    return UAAError(
        401,
        {"error": "unauthorized", "error_description": "Bad credentials"},
        {
            "WWW-Authenticate": 'Basic realm="UAA/client", error="unauthorized", '
            'error_description="Bad credentials"'
        },
    )
