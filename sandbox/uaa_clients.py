"""UAA client administration, read side: ``GET /uaa/oauth/clients/{id}``.

Official tools ask for a client's details (e.g. to show its authorities). As real UAA
(``client-admin-endpoints.xml``): ``clients.read``, ``clients.admin`` or ``uaa.admin``
(our stand-in for ``zones.uaa.admin``) gets 200 with the client, secret removed; any other
valid token gets 403 ``insufficient_scope``; an unknown id is 404 with an empty body
(``ClientAdminEndpoints#handleNoSuchClient``).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .auth import uaa_auth
from .responses import uaa_json
from .state import SandboxState

router = APIRouter(prefix="/uaa")
READ_SCOPES = ("clients.read", "clients.admin")


@router.get("/oauth/clients/{client_id}")
async def get_client(request: Request, client_id: str) -> Response:
    state: SandboxState = request.app.state.sandbox
    uaa_auth(state, request, READ_SCOPES)
    client = state.tokens.clients.get(client_id)
    if client is None:
        return Response(status_code=404)
    return uaa_json(
        {
            "client_id": client.client_id,
            "scope": ["uaa.none"],
            "resource_ids": ["none"],
            "authorized_grant_types": ["client_credentials"],
            "autoapprove": [],
            "authorities": list(client.authorities),
            "lastModified": 0,
            "required_user_groups": [],
            "access_token_validity": client.access_token_validity,
        }
    )
