"""Bearer-token authentication and scope gates for CC and UAA endpoints, plus CC visibility."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import Request

from . import errors
from .state import SandboxState
from .store import SPACE_ROLE_SET, Store
from .tokens import InvalidToken, TokenInfo

CC_ADMIN = "cloud_controller.admin"
CC_GLOBAL_READ = frozenset({CC_ADMIN, "cloud_controller.admin_read_only", "cloud_controller.global_auditor"})
CC_READ = CC_GLOBAL_READ | {"cloud_controller.read"}
CC_WRITE = frozenset({CC_ADMIN, "cloud_controller.write"})
UAA_ADMIN = "uaa.admin"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header or not header.strip():
        return None
    parts = header.split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip()
    return ""  # present but not a bearer token: invalid


@dataclass(slots=True)
class Caller:
    """An authenticated CC caller."""

    token: TokenInfo
    user_guid: str
    admin: bool
    global_read: bool
    _orgs: set[str] | None = field(default=None)
    _spaces: set[str] | None = field(default=None)

    def _compute(self, store: Store) -> None:
        orgs: set[str] = set()
        spaces: set[str] = set()
        managed: set[str] = set()
        for rg in store.user_role_guids(self.user_guid):
            role = store.roles[rg]
            if role.type in SPACE_ROLE_SET:
                assert role.space_guid is not None
                spaces.add(role.space_guid)
                orgs.add(store.spaces[role.space_guid].org_guid)
            else:
                assert role.org_guid is not None
                orgs.add(role.org_guid)
                if role.type == "organization_manager":
                    managed.add(role.org_guid)
        for og in managed:
            spaces.update(store.spaces_by_org.get(og, {}))
        self._orgs, self._spaces = orgs, spaces

    def visible_orgs(self, store: Store) -> set[str]:
        if self._orgs is None:
            self._compute(store)
        assert self._orgs is not None
        return self._orgs

    def visible_spaces(self, store: Store) -> set[str]:
        if self._spaces is None:
            self._compute(store)
        assert self._spaces is not None
        return self._spaces

    def has_role(self, store: Store, scope_guid: str, role_type: str) -> bool:
        return store.find_role(self.user_guid, scope_guid, role_type) is not None


def cc_auth(state: SandboxState, request: Request, *, write: bool | None = None) -> Caller:
    """Validate the token (401s), create the caller's CC user, apply the read/write scope gate."""
    token = bearer_token(request)
    if token is None:
        raise errors.not_authenticated()
    try:
        info = state.tokens.validate(token)
    except InvalidToken:
        raise errors.invalid_auth_token() from None
    user_guid = info.cc_user_guid
    if user_guid not in state.store.cc_users:
        state.store.add_cc_user(user_guid, is_oauth_client=info.user_id is None)
        state.mark_dirty()
    scopes = info.scopes
    if write is None:
        write = request.method not in ("GET", "HEAD")
    allowed = CC_WRITE if write else CC_READ
    if scopes.isdisjoint(allowed):
        raise errors.not_authorized()
    return Caller(
        token=info,
        user_guid=user_guid,
        admin=CC_ADMIN in scopes,
        global_read=not scopes.isdisjoint(CC_GLOBAL_READ),
    )


def uaa_auth(state: SandboxState, request: Request, required_any: Iterable[str]) -> TokenInfo:
    token = bearer_token(request)
    if token is None:
        raise errors.uaa_unauthorized()
    try:
        info = state.tokens.validate(token)
    except InvalidToken as exc:
        if "expired" in str(exc).lower():
            raise errors.uaa_invalid_token("Invalid access token: expired") from None
        raise errors.uaa_invalid_token("Invalid access token") from None
    required = tuple(required_any)
    if UAA_ADMIN in info.scopes or not info.scopes.isdisjoint(required):
        return info
    raise errors.uaa_insufficient_scope((*required, UAA_ADMIN))
