"""Microsoft Entra ID as an identity source, on ``msgraph-sdk`` + ``azure-identity`` (async).

Per group: find it by exact ``displayName`` (``$filter=displayName eq '<name>'`` with ``'``
doubled, then an exact, case-sensitive compare on our side - Graph's ``eq`` ignores case),
then list its **transitive** user members (nested groups flattened by Graph, cycles included)
with ``$select`` (``accountEnabled`` is not in Graph's default property set), ``$count=true``
and ``ConsistencyLevel: eventual``, following ``@odata.nextLink``. ``accountEnabled: false``
users are inactive (leavers). The CF username is ``userPrincipalName`` or ``mail``.

Fail closed: a missing group, two groups with the exact name, a ``nextLink`` that errors or
repeats, a member total that differs from ``@odata.count``, a user without the username
attribute or without ``accountEnabled`` (the app lacks ``User.Read.All``), or any SDK failure
raises ``IdentityReadError`` naming the source and group. Client secrets and certificate keys
never appear in error messages or ``repr``.

Authentication (``azure.identity.aio``): client secret, certificate (PEM with its private key,
or PKCS#12), or workload identity federation (``ClientAssertionCredential`` fed the CI's OIDC
token from a file or an environment variable, re-read on every token request). Retries: the
SDK's RetryHandler (429/503/504, honours ``Retry-After``) plus our own bounded retries, which
also honour ``Retry-After`` once the SDK has given up.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.identity.aio import CertificateCredential, ClientAssertionCredential, ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory
from pydantic import SecretStr

from components.identity.base import Person
from components.identity.concurrency import (
    RETRYABLE_STATUSES,
    MemberTally,
    Progress,
    RetryPolicy,
    SdkSource,
    TransientError,
    first_line,
    scrub,
)
from components.identity.defaults import DEFAULT_AUTHORITY, DEFAULT_GRAPH_BASE_URL, DEFAULT_GRAPH_SCOPE

EntraUsernameAttribute = Literal["userPrincipalName", "mail"]
USER_SELECT = ["id", "userPrincipalName", "mail", "accountEnabled", "displayName", "userType"]
ERROR_MAPPING: dict[str, Any] = {"XXX": ODataError}


@dataclass(frozen=True)
class EntraClientSecretAuth:
    client_secret: SecretStr = field(repr=False)

    def __repr__(self) -> str:
        return "EntraClientSecretAuth(client_secret=***)"


@dataclass(frozen=True)
class EntraCertificateAuth:
    """A certificate with its private key: PEM text (cert + key) or PKCS#12 bytes, or a file."""

    certificate: SecretStr | None = field(default=None, repr=False)  # PEM text
    certificate_file: Path | None = None
    password: SecretStr | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"EntraCertificateAuth(certificate_file={self.certificate_file!r}, certificate=***)"

    def data(self) -> bytes:
        if self.certificate is not None:
            return self.certificate.get_secret_value().encode("utf-8")
        if self.certificate_file is not None:
            return self.certificate_file.read_bytes()
        raise ValueError("certificate auth needs a certificate or a certificate file")


@dataclass(frozen=True)
class EntraWorkloadIdentityAuth:
    """Workload identity federation: the CI's OIDC token, read from a file or an env variable
    each time a Graph token is needed (CI tokens are short-lived)."""

    token_file: Path | None = None
    token_env: str | None = None

    def read_token(self) -> str:
        if self.token_file is not None:
            return self.token_file.read_text(encoding="utf-8").strip()
        if self.token_env is not None:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise ValueError(f"environment variable {self.token_env} is not set or empty")
            return value
        path = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        if not path:
            raise ValueError("no tokenFile/tokenEnv configured and AZURE_FEDERATED_TOKEN_FILE is not set")
        return Path(path).read_text(encoding="utf-8").strip()


EntraAuth = EntraClientSecretAuth | EntraCertificateAuth | EntraWorkloadIdentityAuth


@dataclass(frozen=True)
class _Group:
    id: str
    name: str


class EntraSource(SdkSource[GraphServiceClient, _Group]):
    """Identity source backed by Microsoft Entra ID through Microsoft Graph (see module docstring)."""

    idp = "Entra"

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        auth: EntraAuth,
        name: str = "entra",
        origin: str = "azuread",
        username_attribute: EntraUsernameAttribute = "userPrincipalName",
        authority_host: str = DEFAULT_AUTHORITY,
        graph_base_url: str = DEFAULT_GRAPH_BASE_URL,
        graph_scope: str = DEFAULT_GRAPH_SCOPE,
        page_size: int = 999,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        sdk_max_retries: int = 3,
        sdk_retry_delay: float = 3.0,
        request_timeout: float = 100.0,
        ca_file: Path | None = None,
        progress_interval: float = 5.0,
    ) -> None:
        if username_attribute not in ("userPrincipalName", "mail"):
            raise ValueError(
                f"username_attribute must be userPrincipalName or mail, not {username_attribute!r}"
            )
        for what, url in (("authority_host", authority_host), ("graph_base_url", graph_base_url)):
            if not url.startswith("https://"):
                raise ValueError(f"{what} must be an https:// URL, got {url!r}")
        super().__init__(
            name=name,
            origin=origin,
            page_size=page_size,
            max_concurrency=max_concurrency,
            retry=retry,
            sdk_max_retries=sdk_max_retries,
            request_timeout=request_timeout,
            ca_file=ca_file,
            progress_interval=progress_interval,
        )
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.auth = auth
        self.username_attribute: EntraUsernameAttribute = username_attribute
        self.authority_host = authority_host.rstrip("/")
        self.graph_base_url = graph_base_url.rstrip("/")
        self.graph_scope = graph_scope
        self.sdk_retry_delay = sdk_retry_delay

    def __repr__(self) -> str:
        return (
            f"EntraSource(name={self.name!r}, origin={self.origin!r}, tenant_id={self.tenant_id!r}, "
            f"client_id={self.client_id!r}, auth={self.auth!r}, "
            f"username_attribute={self.username_attribute!r})"
        )

    # -- internals -------------------------------------------------------------------------------
    def _secrets(self) -> list[str]:
        if isinstance(self.auth, EntraClientSecretAuth):
            return [self.auth.client_secret.get_secret_value()]
        if isinstance(self.auth, EntraCertificateAuth):
            out = [s.get_secret_value() for s in (self.auth.certificate, self.auth.password) if s is not None]
            return out
        try:
            return [self.auth.read_token()]
        except (OSError, ValueError):
            return []

    def _credential(self) -> Any:
        common: dict[str, Any] = {"authority": self.authority_host}
        if self.ca_file is not None:
            common["connection_verify"] = str(self.ca_file)
        auth = self.auth
        if isinstance(auth, EntraClientSecretAuth):
            return ClientSecretCredential(
                self.tenant_id, self.client_id, auth.client_secret.get_secret_value(), **common
            )
        if isinstance(auth, EntraCertificateAuth):
            password = auth.password.get_secret_value().encode("utf-8") if auth.password else None
            return CertificateCredential(
                self.tenant_id, self.client_id, certificate_data=auth.data(), password=password, **common
            )
        return ClientAssertionCredential(self.tenant_id, self.client_id, auth.read_token, **common)

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[GraphServiceClient]:
        try:
            credential = self._credential()
        except Exception as exc:
            raise self._error(None, f"invalid Entra credential: {type(exc).__name__}: {exc}") from None
        http = httpx.AsyncClient(
            verify=self._tls(),
            timeout=httpx.Timeout(self.request_timeout, connect=min(30.0, self.request_timeout)),
            limits=httpx.Limits(max_connections=max(10, self.max_concurrency * 2)),
        )
        retry_option = RetryHandlerOption(delay=self.sdk_retry_delay, max_retries=self.sdk_max_retries)
        try:
            wrapped = GraphClientFactory.create_with_default_middleware(
                client=http, options={RetryHandlerOption.get_key(): retry_option}
            )
            auth_provider = AzureIdentityAuthenticationProvider(
                credential, scopes=[self.graph_scope], is_cae_enabled=False
            )
            adapter = GraphRequestAdapter(auth_provider, client=wrapped)
            adapter.base_url = self.graph_base_url
            yield GraphServiceClient(request_adapter=adapter)
        finally:
            await http.aclose()
            await credential.close()

    async def _call(self, group: str, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        async def once() -> Any:
            try:
                return await fn()
            except APIError as exc:
                raise self._classify(group, what, exc) from None
            except ClientAuthenticationError as exc:
                raise self._error(
                    group,
                    f"{what}: Entra ID refused to issue a token for app {self.client_id} in tenant "
                    f"{self.tenant_id}: {_aad_message(exc)}",
                ) from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                raise TransientError(
                    f"token request failed: {type(exc).__name__}: {first_line(str(exc))}"
                ) from None
            except httpx.TimeoutException:
                raise TransientError(f"timed out (requestTimeoutSeconds={self.request_timeout:g})") from None
            except httpx.TransportError as exc:
                raise TransientError(
                    f"connection error: {type(exc).__name__}: {first_line(str(exc))}"
                ) from None

        return await self._retrying(group, what, once)

    def _classify(self, group: str, what: str, exc: APIError) -> Exception:
        status = exc.response_status_code
        err = getattr(exc, "error", None)
        code = getattr(err, "code", None)
        message = getattr(err, "message", None) or exc.message or type(exc).__name__
        detail = " ".join(str(x) for x in (f"HTTP {status}" if status else None, code, message) if x)
        detail = scrub(first_line(detail), self._secrets())
        if status in RETRYABLE_STATUSES:
            return TransientError(detail, _retry_after(exc.response_headers))
        if status in (401, 403):
            return self._error(
                group,
                f"{what}: not authorised by Microsoft Graph ({detail}); the app {self.client_id} needs the "
                "application permissions GroupMember.Read.All and User.Read.All with admin consent",
            )
        if status == 404:
            return self._error(group, f"{what}: not found ({detail})")
        if status == 400 and code in ("Directory_ExpiredPageToken", "Request_BadRequest"):
            return self._error(
                group, f"{what}: Graph rejected the paging link ({detail}); the result would be truncated"
            )
        return self._error(group, f"{what} failed: {detail}")

    async def _get_json(
        self, client: GraphServiceClient, group: str, what: str, info: RequestInformation
    ) -> Any:
        """Send a request the SDK built, through its adapter (auth, retry middleware, error
        mapping to ``ODataError``), and parse the JSON body ourselves: msgraph's model
        deserialisation costs ~5 ms of CPU per user object (measured), minutes for a big tenant."""

        async def send() -> Any:
            adapter: Any = client.request_adapter  # its send_primitive_async is typed as returning None
            raw = await adapter.send_primitive_async(info, "bytes", ERROR_MAPPING)
            if not raw:
                raise self._error(group, f"{what}: empty response from Graph")
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise self._error(group, f"{what}: Graph sent invalid JSON ({exc})") from None

        body = await self._call(group, what, send)
        if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
            raise self._error(group, f"{what}: unexpected response shape from Graph")
        return body

    async def _find_group(self, client: GraphServiceClient, name: str) -> _Group:
        escaped = name.replace("'", "''")
        params = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter=f"displayName eq '{escaped}'", select=["id", "displayName"], top=999
        )
        info = client.groups.to_get_request_information(RequestConfiguration(query_parameters=params))
        found: list[dict[str, Any]] = []
        for _ in range(50):
            page = await self._get_json(client, name, "group lookup", info)
            found.extend(g for g in page.get("value") or [] if isinstance(g, dict))
            link = page.get("@odata.nextLink")
            if not link:
                break
            info = client.groups.with_url(str(link)).to_get_request_information()
        else:
            raise self._error(name, "group lookup did not finish paging (50 pages)")
        exact = [_Group(str(g.get("id")), name) for g in found if g.get("displayName") == name]
        near = {str(g["displayName"]) for g in found if g.get("displayName")}
        return self._one_group(name, exact, near, f"Entra tenant {self.tenant_id}")

    def _members_config(self, first: bool) -> RequestConfiguration[Any]:
        params = (
            GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
                select=USER_SELECT, top=self.page_size, count=True
            )
            if first
            else None
        )
        config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=params)
        config.headers.add("ConsistencyLevel", "eventual")
        return config

    async def _members(
        self, client: GraphServiceClient, group: _Group, progress: Progress
    ) -> tuple[Person, ...]:
        builder = client.groups.by_group_id(group.id).transitive_members.graph_user
        tally = MemberTally(group.name, self._error, progress)
        expected: int | None = None
        link: str | None = None
        while True:
            pages = tally.next_page()
            if link is None:
                info = builder.to_get_request_information(self._members_config(first=True))
            else:
                info = builder.with_url(link).to_get_request_information(self._members_config(first=False))
            page = await self._get_json(client, group.name, f"member page {pages}", info)
            if pages == 1 and isinstance(page.get("@odata.count"), int):
                expected = page["@odata.count"]
            for user in page.get("value") or []:
                if not isinstance(user, dict):
                    raise self._error(group.name, f"member page {pages}: unexpected member entry from Graph")
                person = self._person(group.name, user)
                tally.add(str(user.get("id")), person)
            next_link = page.get("@odata.nextLink")
            link = str(next_link) if next_link else None
            if not tally.page_done(link, "@odata.nextLink"):
                break
        return tally.finish(expected, "Graph reported @odata.count")

    def _person(self, group: str, user: dict[str, Any]) -> Person:
        uid = str(user.get("id") or "?")
        upn = user.get("userPrincipalName")
        mail = user.get("mail")
        enabled = user.get("accountEnabled")
        if not isinstance(enabled, bool):
            raise self._error(
                group,
                f"user {uid} ({upn or mail or 'no userPrincipalName'}) came back without accountEnabled; "
                "the app needs User.Read.All (application permission, admin consent) so that disabled "
                "users can be told apart",
            )
        raw = upn if self.username_attribute == "userPrincipalName" else mail
        if not raw:
            raise self._error(
                group,
                f"user {uid} ({upn or 'no userPrincipalName'}) has no {self.username_attribute}; "
                "cannot name them in CF (set it in Entra, or use usernameAttribute: userPrincipalName)",
            )
        username, email = self._usernames(group, uid, raw, mail)
        return Person(
            username=username,
            origin=self.origin,
            active=bool(enabled),
            source=self.name,
            external_id=uid,
            email=email,
            display_name=str(user["displayName"]) if user.get("displayName") else None,
        )


def _retry_after(headers: dict[str, str] | None) -> float | None:
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _aad_message(exc: ClientAuthenticationError) -> str:
    text = getattr(exc, "message", None) or str(exc)
    # azure-identity puts the AADSTS description first; keep it, drop trace/correlation noise.
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return first_line(" ".join(lines[:2]) if lines else type(exc).__name__, 400)
