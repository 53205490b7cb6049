"""Every CF client error survives pickling with its attributes and message."""

from __future__ import annotations

import pickle

import pytest

from components.cloudfoundry.errors import (
    CfApiError,
    CfConnectionError,
    CfErrorItem,
    JobFailedError,
    JobTimeoutError,
    UaaError,
)


@pytest.mark.parametrize(
    "err",
    [
        JobTimeoutError("job-1", "PROCESSING", 12.5),
        UaaError(409, "scim_resource_already_exists", "x", "POST", "/Users"),
        UaaError(401, "unauthorized", "", "POST", "/oauth/token"),
        CfConnectionError("GET", "/v3/roles", "connection refused"),
        JobFailedError("job-2", "role.delete", [CfErrorItem(10008, "CF-Unprocessable", "nope")]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_roundtrip(err: CfApiError) -> None:
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert str(again) == str(err)
    assert vars(again) == vars(err)
