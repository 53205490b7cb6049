"""Client for the sandbox operations API, plus role read-back through the real CC API."""

from __future__ import annotations

from typing import Any

import httpx

from .seed import DEFAULT_CLIENTS

RoleTuple = tuple[str, str, str, str | None, str | None]


class SandboxControl:
    def __init__(self, url: str, *, client_id: str | None = None, client_secret: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=60.0)
        self._client_id = client_id or DEFAULT_CLIENTS[0]["id"]
        self._client_secret = client_secret or DEFAULT_CLIENTS[0]["secret"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- operations API ------------------------------------------------------------------------
    def _ops(self, method: str, path: str, json: Any = None) -> Any:
        resp = self._http.request(method, f"/_sandbox{path}", json=json)
        resp.raise_for_status()
        return resp.json()

    def seed(self, seed: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._ops("POST", "/seed", seed)
        return result

    def reset(self) -> None:
        self._ops("POST", "/reset")

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ops("GET", "/counters")
        return result

    def reset_counters(self) -> None:
        self._ops("POST", "/counters/reset")

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._ops("PUT", "/faults", knobs)
        return result

    def clear_faults(self) -> None:
        self._ops("DELETE", "/faults")

    def set_rate_limit(self, **knobs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._ops("PUT", "/rate-limit", knobs)
        return result

    def clear_rate_limit(self) -> None:
        self._ops("DELETE", "/rate-limit")

    def set_config(self, **knobs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._ops("PUT", "/config", knobs)
        return result

    def complete_jobs(self) -> int:
        """Finish every PROCESSING job now; returns how many there were."""
        result: dict[str, Any] = self._ops("POST", "/jobs/complete")
        return int(result["completed"])

    def processing_jobs(self) -> list[dict[str, Any]]:
        return [job for job in self.state()["jobs"] if job["state"] == "PROCESSING"]

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ops("GET", "/state")
        return result

    # ---- through the real API ------------------------------------------------------------------
    def token(self, client_id: str | None = None, client_secret: str | None = None) -> str:
        resp = self._http.post(
            "/uaa/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id or self._client_id, client_secret or self._client_secret),
        )
        resp.raise_for_status()
        token: str = resp.json()["access_token"]
        return token

    def _list_all(
        self, path: str, token: str, params: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        headers = {"Authorization": f"bearer {token}"}
        resources: list[dict[str, Any]] = []
        included: dict[str, list[dict[str, Any]]] = {}
        url: str | None = path
        query: dict[str, Any] | None = {**params, "per_page": 5000}
        while url:
            resp = self._http.get(url, params=query, headers=headers)
            resp.raise_for_status()
            body = resp.json()
            resources.extend(body["resources"])
            for key, items in (body.get("included") or {}).items():
                included.setdefault(key, []).extend(items)
            nxt = body["pagination"]["next"]
            url, query = (nxt["href"], None) if nxt else (None, None)
        return resources, included

    def roles(self) -> list[RoleTuple]:
        """Every role as (origin, username, type, org_name, space_name), read via GET /v3/roles."""
        token = self.token()
        roles, included = self._list_all("/v3/roles", token, {"include": "user,space,organization"})
        orgs, _ = self._list_all("/v3/organizations", token, {})
        org_names = {o["guid"]: o["name"] for o in orgs}
        users = {u["guid"]: u for u in included.get("users", [])}
        spaces = {s["guid"]: s for s in included.get("spaces", [])}
        out: list[RoleTuple] = []
        for r in roles:
            user = users.get(r["relationships"]["user"]["data"]["guid"], {})
            username = user.get("username") or user.get("presentation_name") or ""
            origin = user.get("origin") or ""
            org_data = r["relationships"]["organization"]["data"]
            space_data = r["relationships"]["space"]["data"]
            if space_data is not None:
                space = spaces[space_data["guid"]]
                org_name = org_names.get(space["relationships"]["organization"]["data"]["guid"])
                out.append((origin, username, r["type"], org_name, space["name"]))
            else:
                out.append((origin, username, r["type"], org_names.get(org_data["guid"]), None))
        return sorted(out, key=lambda t: tuple(x or "" for x in t))
