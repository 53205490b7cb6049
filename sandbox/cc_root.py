"""CC root documents: ``/``, ``/v3``, ``/v3/info`` and ``/v2/info``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .cc_common import API_VERSION, base_url, state_of
from .responses import cc_json

router = APIRouter()


# ---- root ----------------------------------------------------------------------------------------
@router.get("/")
async def root(request: Request) -> Response:
    base = base_url(request)
    host = request.url.hostname or "127.0.0.1"
    return cc_json(
        {
            "links": {
                "self": {"href": base},
                "bits_service": None,
                "cloud_controller_v2": None,
                "cloud_controller_v3": {"href": f"{base}/v3", "meta": {"version": API_VERSION}},
                "network_policy_v0": {"href": f"{base}/networking/v0/external"},
                "network_policy_v1": {"href": f"{base}/networking/v1/external"},
                "login": {"href": f"{base}/uaa"},
                "uaa": {"href": f"{base}/uaa"},
                "credhub": None,
                "routing": {"href": f"{base}/routing"},
                "logging": None,
                "log_cache": {"href": f"{base}/log-cache"},
                "log_stream": None,
                "app_ssh": {
                    "href": f"{host}:2222",
                    "meta": {"host_key_fingerprint": "sandbox", "oauth_client": "ssh-proxy"},
                },
            }
        }
    )


@router.get("/v3")
async def v3_root(request: Request) -> Response:
    base = base_url(request)
    names = [
        "app_usage_events",
        "audit_events",
        "buildpacks",
        "builds",
        "deployments",
        "domains",
        "droplets",
        "environment_variable_groups",
        "feature_flags",
        "info",
        "isolation_segments",
        "organizations",
        "organization_quotas",
        "packages",
        "processes",
        "resource_matches",
        "roles",
        "routes",
        "security_groups",
        "service_brokers",
        "service_instances",
        "service_credential_bindings",
        "service_offerings",
        "service_plans",
        "service_route_bindings",
        "service_usage_events",
        "spaces",
        "space_quotas",
        "stacks",
        "tasks",
        "users",
    ]
    links: dict[str, Any] = {"self": {"href": f"{base}/v3"}}
    links.update({n: {"href": f"{base}/v3/{n}"} for n in names})
    links["apps"] = {"href": f"{base}/v3/apps"}
    return cc_json({"links": dict(sorted(links.items()))})


@router.get("/v3/info")
async def v3_info(request: Request) -> Response:
    base = base_url(request)
    return cc_json(
        {
            "build": "sandbox",
            "cli_version": {"minimum": "", "recommended": ""},
            "custom": {},
            "description": "cf-access local sandbox",
            "name": "sandbox",
            "version": 0,
            "osbapi_version": "2.15",
            "rate_limits": {
                "enabled": state_of(request).limiter.enabled,
                "general_limit": state_of(request).limiter.limit,
                "reset_interval_in_minutes": state_of(request).limiter.reset_interval_s // 60,
            },
            "links": {"self": {"href": f"{base}/v3/info"}, "support": {"href": ""}},
        }
    )


@router.get("/v2/info")
async def v2_info(request: Request) -> Response:
    base = base_url(request)
    return cc_json(
        {
            "name": "sandbox",
            "build": "sandbox",
            "support": "",
            "version": 0,
            "description": "cf-access local sandbox",
            "authorization_endpoint": f"{base}/uaa",
            "token_endpoint": f"{base}/uaa",
            "min_cli_version": None,
            "min_recommended_cli_version": None,
            "app_ssh_endpoint": "",
            "app_ssh_host_key_fingerprint": "",
            "app_ssh_oauth_client": "ssh-proxy",
            "doppler_logging_endpoint": "",
            "api_version": "2.250.0",
            "osbapi_version": "2.15",
        }
    )
