"""UAA OAuth clients and JWT access tokens (HS256, per-process signing key)."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

DEFAULT_TOKEN_VALIDITY = 43199


@dataclass(slots=True)
class Client:
    client_id: str
    secret: str
    authorities: list[str]
    access_token_validity: int | None = None


@dataclass(slots=True)
class Login:
    """A sandbox user who can log in with a password (``cf login``, grant_type=password)."""

    username: str
    password: str
    scopes: list[str]
    origin: str = "uaa"


@dataclass(slots=True)
class TokenInfo:
    """Validated token claims that the sandbox cares about."""

    client_id: str
    user_id: str | None
    scopes: frozenset[str]
    exp: float
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def cc_user_guid(self) -> str:
        return self.user_id or self.client_id


class InvalidToken(Exception):
    pass


class TokenService:
    def __init__(self) -> None:
        self.key = secrets.token_bytes(32)
        self.clients: dict[str, Client] = {}
        self.logins: dict[str, Login] = {}
        self.default_validity = DEFAULT_TOKEN_VALIDITY
        self._cache: dict[str, TokenInfo] = {}

    def add_client(self, client: Client) -> None:
        self.clients[client.client_id] = client

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client

    def add_login(self, login: Login) -> None:
        self.logins[login.username.casefold()] = login

    def check_password(self, username: str, password: str) -> Login | None:
        login = self.logins.get(username.casefold())
        if login is None or not secrets.compare_digest(login.password.encode(), password.encode()):
            return None
        return login

    def issue_for_user(
        self, client: Client, user_id: str, login: Login, scopes: list[str], issuer: str
    ) -> tuple[str, int, str, str]:
        """A user token (password grant) plus a refresh token: (access, validity, jti, refresh)."""
        access, validity, jti = self.issue(
            client,
            scopes,
            issuer,
            user={
                "user_id": user_id,
                "sub": user_id,
                "user_name": login.username,
                "origin": login.origin,
                "grant_type": "password",
            },
        )
        refresh_claims = {
            "jti": uuid.uuid4().hex + "-r",
            "sub": user_id,
            "user_name": login.username,
            "client_id": client.client_id,
            "scope": scopes,
            "iat": int(time.time()),
            "exp": int(time.time()) + 30 * 24 * 3600,
            "iss": issuer,
            "grant_type": "password",
        }
        refresh = jwt.encode(refresh_claims, self.key, algorithm="HS256", headers={"kid": "sandbox-key"})
        return access, validity, jti, refresh

    def read_refresh_token(self, token: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.key, algorithms=["HS256"], options={"verify_aud": False}
            )
        except jwt.PyJWTError:
            return None
        return claims if str(claims.get("jti", "")).endswith("-r") else None

    def issue(
        self, client: Client, scopes: list[str], issuer: str, user: dict[str, Any] | None = None
    ) -> tuple[str, int, str]:
        validity = client.access_token_validity
        if validity is None:
            validity = self.default_validity
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims = {
            "jti": jti,
            "sub": client.client_id,
            "authorities": scopes,
            "scope": scopes,
            "client_id": client.client_id,
            "cid": client.client_id,
            "azp": client.client_id,
            "grant_type": "client_credentials",
            "rev_sig": uuid.uuid4().hex[:8],
            "iat": now,
            "exp": now + validity,
            "iss": issuer,
            "zid": "uaa",
            "aud": sorted({s.split(".", 1)[0] for s in scopes} | {client.client_id}),
        }
        claims.update(user or {})
        token = jwt.encode(claims, self.key, algorithm="HS256", headers={"kid": "sandbox-key"})
        return token, validity, jti

    def validate(self, token: str) -> TokenInfo:
        info = self._cache.get(token)
        now = time.time()
        if info is not None:
            if info.exp <= now:
                raise InvalidToken("expired")
            return info
        try:
            claims = jwt.decode(token, self.key, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if str(claims.get("jti", "")).endswith("-r"):
            raise InvalidToken("a refresh token is not an access token")
        scope = claims.get("scope") or []
        info = TokenInfo(
            client_id=str(claims.get("client_id") or claims.get("cid") or ""),
            user_id=claims.get("user_id"),
            scopes=frozenset(scope if isinstance(scope, list) else str(scope).split()),
            exp=float(claims.get("exp", 0)),
            claims=claims,
        )
        if len(self._cache) > 10000:
            self._cache.clear()
        self._cache[token] = info
        return info
