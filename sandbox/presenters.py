"""JSON presentation of CC resources (shapes from CC's V3 presenters)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from .responses import encode, rails_escape
from .store import CCUser, Job, Org, Role, Space, Store, UAAUser


def role_json_text(role: Role, base: str) -> str:
    """Encoded role JSON (Rails-escaped), cached on the role per base URL."""
    cache = role.cache
    if cache is not None and cache[0] == base:
        return cache[1]
    text = rails_escape(encode(role_dict(role, base)))
    role.cache = (base, text)
    return text


def role_dict(role: Role, base: str) -> dict[str, Any]:
    links: dict[str, Any] = {
        "self": {"href": f"{base}/v3/roles/{role.guid}"},
        "user": {"href": f"{base}/v3/users/{role.user_guid}"},
    }
    if role.space_guid is not None:
        links["space"] = {"href": f"{base}/v3/spaces/{role.space_guid}"}
    else:
        links["organization"] = {"href": f"{base}/v3/organizations/{role.org_guid}"}
    return {
        "guid": role.guid,
        "created_at": role.created_at,
        "updated_at": role.created_at,
        "type": role.type,
        "relationships": {
            "user": {"data": {"guid": role.user_guid}},
            "organization": {"data": {"guid": role.org_guid} if role.org_guid is not None else None},
            "space": {"data": {"guid": role.space_guid} if role.space_guid is not None else None},
        },
        "links": links,
    }


def user_dict(user: CCUser, uaa: UAAUser | None, base: str) -> dict[str, Any]:
    username = uaa.username if uaa is not None else None
    return {
        "guid": user.guid,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "username": username,
        "presentation_name": username if username is not None else user.guid,
        "origin": uaa.origin if uaa is not None else None,
        "metadata": {"labels": {}, "annotations": {}},
        "links": {"self": {"href": f"{base}/v3/users/{quote_plus(user.guid)}"}},
    }


def store_user_dict(store: Store, guid: str, base: str) -> dict[str, Any]:
    return user_dict(store.cc_users[guid], store.uaa_users.get(guid), base)


def org_dict(org: Org, base: str) -> dict[str, Any]:
    return {
        "guid": org.guid,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
        "name": org.name,
        "suspended": org.suspended,
        "relationships": {"quota": {"data": {"guid": org.quota_guid}}},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": f"{base}/v3/organizations/{org.guid}"},
            "domains": {"href": f"{base}/v3/organizations/{org.guid}/domains"},
            "default_domain": {"href": f"{base}/v3/organizations/{org.guid}/domains/default"},
            "quota": {"href": f"{base}/v3/organization_quotas/{org.quota_guid}"},
        },
    }


def space_dict(space: Space, base: str) -> dict[str, Any]:
    return {
        "guid": space.guid,
        "created_at": space.created_at,
        "updated_at": space.updated_at,
        "name": space.name,
        "suspended": False,
        "relationships": {
            "organization": {"data": {"guid": space.org_guid}},
            "quota": {"data": None},
        },
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": f"{base}/v3/spaces/{space.guid}"},
            "features": {"href": f"{base}/v3/spaces/{space.guid}/features"},
            "organization": {"href": f"{base}/v3/organizations/{space.org_guid}"},
            "apply_manifest": {
                "href": f"{base}/v3/spaces/{space.guid}/actions/apply_manifest",
                "method": "POST",
            },
        },
    }


def job_dict(job: Job, base: str, resource_exists: bool) -> dict[str, Any]:
    links: dict[str, Any] = {"self": {"href": f"{base}/v3/jobs/{job.guid}"}}
    if resource_exists:
        links[job.resource_type] = {"href": f"{base}/v3/{job.resource_type}s/{job.resource_guid}"}
    return {
        "guid": job.guid,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "operation": job.operation,
        "state": job.state,
        "errors": job.errors if job.state == "FAILED" else [],
        "warnings": [],
        "links": links,
    }


def scim_user_dict(user: UAAUser) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": user.id,
        "meta": {"version": user.version, "created": user.created, "lastModified": user.last_modified},
        "userName": user.username,
        "name": user.name,
        "emails": user.emails,
        "groups": [
            {"value": f"group-{g}", "display": g, "type": "DIRECT"}
            for g in ("cloud_controller.read", "cloud_controller.write", "openid", "uaa.user")
        ],
        "approvals": [],
        "active": user.active,
        "verified": user.verified,
        "origin": user.origin,
        "zoneId": "uaa",
        "passwordLastModified": user.password_last_modified,
        "schemas": ["urn:scim:schemas:core:1.0"],
    }
    if user.external_id is not None:
        out["externalId"] = user.external_id
    if user.phone_numbers:
        out["phoneNumbers"] = user.phone_numbers
    return out
