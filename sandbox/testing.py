"""Small helpers for tests that talk to a running sandbox over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx

ADMIN = ("cf-access", "sandbox-secret")
AUDITOR = ("auditor", "auditor-secret")


def get_token(url: str, client: tuple[str, str] = ADMIN, **form: str) -> str:
    resp = httpx.post(
        f"{url}/uaa/oauth/token", data={"grant_type": "client_credentials", **form}, auth=client
    )
    resp.raise_for_status()
    token: str = resp.json()["access_token"]
    return token


class Api:
    """A thin bearer-token HTTP client for the sandbox's CC + UAA API."""

    def __init__(self, url: str, client: tuple[str, str] = ADMIN, token: str | None = None) -> None:
        self.url = url
        self.token = token or get_token(url, client)
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"bearer {self.token}"}, timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def post(self, path: str, json: Any) -> httpx.Response:
        return self.http.post(path, json=json)

    def put(self, path: str, json: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.put(path, json=json, headers=headers)

    def delete(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.delete(path, headers=headers)

    def close(self) -> None:
        self.http.close()

    # convenience
    def wait_job(self, location: str) -> dict[str, Any]:
        """The job at ``location`` (a Location header) once it left PROCESSING."""
        for _ in range(200):
            job: dict[str, Any] = self.http.get(location).json()
            if job["state"] != "PROCESSING":
                return job
            time.sleep(0.01)
        raise AssertionError(f"job {location} did not finish")

    def org_guid(self, name: str) -> str:
        guid: str = self.get("/v3/organizations", names=name).json()["resources"][0]["guid"]
        return guid

    def space_guid(self, org: str, name: str) -> str:
        org_guid = self.org_guid(org)
        body = self.get("/v3/spaces", names=name, organization_guids=org_guid).json()
        guid: str = body["resources"][0]["guid"]
        return guid

    def org_role(
        self,
        role_type: str,
        org_guid: str,
        *,
        guid: str | None = None,
        username: str | None = None,
        origin: str | None = None,
    ) -> httpx.Response:
        return self.post("/v3/roles", _role_body(role_type, "organization", org_guid, guid, username, origin))

    def space_role(
        self,
        role_type: str,
        space_guid: str,
        *,
        guid: str | None = None,
        username: str | None = None,
        origin: str | None = None,
    ) -> httpx.Response:
        return self.post("/v3/roles", _role_body(role_type, "space", space_guid, guid, username, origin))


def _role_body(
    role_type: str, scope: str, scope_guid: str, guid: str | None, username: str | None, origin: str | None
) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if guid is not None:
        user["guid"] = guid
    if username is not None:
        user["username"] = username
    if origin is not None:
        user["origin"] = origin
    return {
        "type": role_type,
        "relationships": {"user": {"data": user}, scope: {"data": {"guid": scope_guid}}},
    }


def error_of(resp: httpx.Response) -> tuple[int, str, int, str]:
    """(status, title, code, detail) of a CC error response."""
    err = resp.json()["errors"][0]
    assert list(err) == ["detail", "title", "code"], list(err)
    return resp.status_code, err["title"], err["code"], err["detail"]
