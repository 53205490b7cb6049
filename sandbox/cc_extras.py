"""CC reads the official ``cf`` CLI makes around the objects the sandbox models.

The sandbox holds no apps and no domains; these answer as Cloud Controller does for a
foundation without them, with CC's envelope and pagination, so ``cf target``/``cf space``
style commands work against the sandbox:

* ``GET /v3/spaces/{guid}/features/ssh`` - the space's SSH feature (enabled, CC's default
  ``allow_ssh``); another feature name is 404 "Feature not found"
  (``SpaceFeaturesController#show``, ``SpaceSshFeaturePresenter``);
* ``GET /v3/apps`` (e.g. ``?space_guids=...``) - an empty list;
* ``GET /v3/organizations/{guid}/domains`` - an empty list (a real foundation lists its
  shared domains here).

Visibility is CC's: a space or org the caller cannot read is 404.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .auth import cc_auth
from .cc_common import list_response, org_or_404, param_error, space_or_404, state_of
from .params import ListSpec, list_spec, parse_list
from .responses import cc_json

router = APIRouter()

APPS_SPEC: ListSpec = list_spec(
    ("names", "space_guids", "organization_guids", "stacks", "lifecycle_type", "include"),
    param_error,
    metadata=True,
    order_by_values=("created_at", "updated_at", "name", "state"),
    include_values=("space", "space.organization"),
)
DOMAINS_SPEC: ListSpec = list_spec(("names",), param_error, metadata=True)


@router.get("/v3/spaces/{guid}/features/{name}")
async def space_feature(request: Request, guid: str, name: str) -> Response:
    state = state_of(request)
    space_or_404(state, cc_auth(state, request), guid)
    if name != "ssh":
        raise errors.resource_not_found("Feature")
    return cc_json({"name": "ssh", "description": "Enable SSHing into apps in the space.", "enabled": True})


@router.get("/v3/apps")
async def list_apps(request: Request) -> Response:
    state = state_of(request)
    cc_auth(state, request)
    q = parse_list(request.query_params, APPS_SPEC)
    return list_response(request, q, "/v3/apps", [], lambda _item, _base: {})


@router.get("/v3/organizations/{guid}/domains")
async def list_org_domains(request: Request, guid: str) -> Response:
    state = state_of(request)
    org_or_404(state, cc_auth(state, request), guid)
    q = parse_list(request.query_params, DOMAINS_SPEC)
    return list_response(request, q, f"/v3/organizations/{guid}/domains", [], lambda _item, _base: {})
