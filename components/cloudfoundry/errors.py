"""Exceptions raised by the Cloud Foundry (CC V3) and UAA client.

Every exception carries the HTTP method and the request *path* (never the
query string, headers or body), so messages identify the failing call without
ever containing credentials, tokens or Authorization headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class CfApiError(Exception):
    """Base class of every error raised by :mod:`components.cloudfoundry`."""


@dataclass(frozen=True)
class CfErrorItem:
    """One element of a CC V3 error envelope ``{"errors": [{detail, title, code}]}``."""

    code: int | None
    title: str
    detail: str

    def describe(self) -> str:
        code = f" ({self.code})" if self.code is not None else ""
        return f"{self.title}{code}: {self.detail}"


class CloudFoundryError(CfApiError):
    """A Cloud Controller request failed with an HTTP error status.

    ``code``, ``title`` and ``detail`` come from the first element of the CC
    error envelope; ``errors`` keeps all of them.
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        title: str,
        detail: str,
        method: str,
        path: str,
        *,
        errors: Sequence[CfErrorItem] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.method = method
        self.path = path
        self.errors: tuple[CfErrorItem, ...] = (
            tuple(errors) if errors else (CfErrorItem(code=code, title=title, detail=detail),)
        )
        super().__init__(self._message())

    def _message(self) -> str:
        first = f"{self.method} {self.path} failed: {self.status} {self.errors[0].describe()}"
        rest = [e.describe() for e in self.errors[1:]]
        return "; ".join([first, *rest])

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_cf_error,
            (
                type(self),
                self.status,
                self.code,
                self.title,
                self.detail,
                self.method,
                self.path,
                self.errors,
            ),
        )

    @property
    def is_not_found(self) -> bool:
        return self.status == 404

    @property
    def is_already_has_role(self) -> bool:
        """CC 422 10008 ``User 'x' already has '<type>' role in ...``."""
        return self.status == 422 and self.code == 10008 and "already has" in self.detail

    @property
    def is_already_exists(self) -> bool:
        """CC 422 10008 ``User with guid 'x' already exists.``."""
        return self.status == 422 and self.code == 10008 and "already exists" in self.detail


def _rebuild_cf_error(
    cls: type[CloudFoundryError],
    status: int,
    code: int | None,
    title: str,
    detail: str,
    method: str,
    path: str,
    errors: tuple[CfErrorItem, ...],
) -> CloudFoundryError:
    return cls(status, code, title, detail, method, path, errors=errors)


class JobFailedError(CloudFoundryError):
    """An asynchronous CC job (``/v3/jobs/<guid>``) ended in state FAILED."""

    def __init__(
        self,
        job_guid: str,
        operation: str | None,
        errors: Sequence[CfErrorItem],
        method: str = "GET",
        path: str = "/v3/jobs",
    ) -> None:
        self.job_guid = job_guid
        self.operation = operation
        items = list(errors) or [
            CfErrorItem(code=None, title="JobFailed", detail="job failed without errors")
        ]
        first = items[0]
        super().__init__(200, first.code, first.title, first.detail, method, path, errors=items)

    def _message(self) -> str:
        op = f" ({self.operation})" if self.operation else ""
        return f"job {self.job_guid}{op} FAILED: " + "; ".join(e.describe() for e in self.errors)

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobFailedError, (self.job_guid, self.operation, list(self.errors), self.method, self.path))


class _PickledByArgs(CfApiError):
    """An error that pickles as a call of its class with the attributes named in ``_init_args``
    (its constructor's parameters, in order); Exception's own pickling would pass only the
    message."""

    _init_args: ClassVar[tuple[str, ...]] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), tuple(getattr(self, name) for name in self._init_args))


class JobTimeoutError(_PickledByArgs):
    """An asynchronous CC job did not finish within the configured timeout."""

    _init_args = ("job_guid", "state", "waited_s")

    def __init__(self, job_guid: str, state: str, waited_s: float) -> None:
        self.job_guid = job_guid
        self.state = state
        self.waited_s = waited_s
        super().__init__(f"job {job_guid} still {state} after {waited_s:.1f}s")


class UaaError(_PickledByArgs):
    """A UAA request failed; UAA errors look like ``{"error", "error_description"}``."""

    _init_args = ("status", "error", "description", "method", "path")

    def __init__(self, status: int, error: str, description: str, method: str, path: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        self.method = method
        self.path = path
        desc = f": {description}" if description else ""
        super().__init__(f"UAA {method} {path} failed: {status} {error}{desc}")


class CfConnectionError(_PickledByArgs):
    """The request could not be completed at the transport level (after retries)."""

    _init_args = ("method", "path", "reason")

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        super().__init__(f"{method} {path} failed: {reason}")


class BatchError(CfApiError):
    """Several concurrent operations failed; ``failures`` lists every one of them.

    ``results`` holds the results of the operations that succeeded, in input
    order, so callers can record partial progress.
    """

    def __init__(
        self,
        failures: Sequence[tuple[object, BaseException]],
        total: int,
        results: Sequence[object] = (),
    ) -> None:
        self.failures = list(failures)
        self.total = total
        self.results = list(results)
        lines = [f"{len(self.failures)} of {total} operations failed:"]
        lines += [f"  - {item}: {type(exc).__name__}: {exc}" for item, exc in self.failures]
        super().__init__("\n".join(lines))

    @property
    def exceptions(self) -> list[BaseException]:
        return [exc for _, exc in self.failures]
