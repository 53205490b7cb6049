"""Stack config ``cf-access:identitySources`` → identity source objects.

One object key maps source name (the prefix used in mappings: ``okta:payments-dev``) to its
settings; ``type`` picks the kind::

    cf-access:identitySources:
      okta:
        type: okta
        orgUrl: https://example.okta.com
        origin: okta
        usernameAttribute: login            # or email
        activeStatuses: [ACTIVE]            # everyone else is a leaver
        auth: {method: private-key, clientId: 0oa..., privateKey: {secure: ...}}
        #  or {method: api-token, apiToken: {secure: ...}}
      entra:
        type: entra
        tenantId: 1111...
        clientId: 2222...
        origin: azuread
        usernameAttribute: userPrincipalName  # or mail
        auth: {method: client-secret, clientSecret: {secure: ...}}
        #  or {method: certificate, certificate: {secure: <PEM cert + key>}}  / certificateFile: path
        #  or {method: workload-identity, tokenFile: /path/to/oidc.jwt}      / tokenEnv: VAR
      directory: {type: directory, file: directory/example.yaml, origin: corp-sso}
      ldap:
        type: ldap
        urls: [ldap://ldap1.corp.example, ldap://ldap2.corp.example]   # failover, in order
        startTls: true                     # ldap:// URLs; or ldaps:// URLs
        caBundle: /etc/ssl/corp-ca.pem
        bindDn: cn=cf-access,ou=service,dc=corp,dc=example
        bindPassword: {secure: ...}        # or the variable named by bindPasswordEnv (it wins)
        userBase: ou=people,dc=corp,dc=example
        groupBase: ou=groups,dc=corp,dc=example
        origin: corp-ldap

The program gets the value from ``pulumi.Config().get_object("identitySources")`` with
secrets already decrypted. Unknown keys are errors; every error names the full key
(``cf-access:identitySources.okta.auth.apiToken``) and never shows a secret value.
Relative paths are relative to the project root.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from components.identity.base import IdentitySource
from components.identity.concurrency import RetryPolicy
from components.identity.defaults import (
    DEFAULT_AUTHORITY,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_GRAPH_SCOPE,
    OKTA_READ_SCOPES,
)
from components.identity.directory import DirectorySource
from components.settings import SettingsError

if TYPE_CHECKING:  # the SDK-backed sources are imported only when configured (defaults.py)
    from components.identity.entra import EntraAuth
    from components.identity.okta import OktaAuth

CONFIG_KEY = "cf-access:identitySources"
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SECRET_KEYS = frozenset(
    {"apiToken", "privateKey", "clientSecret", "certificate", "certificatePassword", "bindPassword"}
)
LDAP_PASSWORD_ENV = "CF_ACCESS_LDAP_BIND_PASSWORD"
OktaStatus = Literal[
    "ACTIVE",
    "DEPROVISIONED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "PROVISIONED",
    "RECOVERY",
    "STAGED",
    "SUSPENDED",
]


class IdentityConfigError(SettingsError):
    """``cf-access:identitySources`` is invalid; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack config:\n" + "\n".join(f"  {p}" for p in problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def _https(value: str) -> str:
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise ValueError("must be an https:// URL (the emulators serve TLS too; point caBundle at their CA)")
    return value.rstrip("/")


class RetryConfig(_Model):
    attempts: int = Field(
        default=4, ge=1, le=10, description="attempts per request, on top of the SDK's own retries"
    )
    backoffSeconds: float = Field(default=1.0, ge=0, le=60)
    maxBackoffSeconds: float = Field(default=60.0, ge=0, le=600)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.attempts, self.backoffSeconds, self.maxBackoffSeconds)


class _Common(_Model):
    maxConcurrency: int = Field(default=8, ge=1, le=64)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    caBundle: str | None = None
    progressIntervalSeconds: float = Field(default=5.0, gt=0, le=3600)


# -- Okta -----------------------------------------------------------------------------------------
class OktaApiTokenConfig(_Model):
    method: Literal["api-token"]
    apiToken: SecretStr = Field(min_length=1)


class OktaPrivateKeyConfig(_Model):
    method: Literal["private-key"]
    clientId: str = Field(min_length=1)
    privateKey: SecretStr | None = None
    privateKeyFile: str | None = None
    keyId: str | None = None
    scopes: tuple[str, ...] = OKTA_READ_SCOPES

    @model_validator(mode="after")
    def _one_key(self) -> OktaPrivateKeyConfig:
        if (self.privateKey is None) == (self.privateKeyFile is None):
            raise ValueError("set exactly one of privateKey (a secret: PEM or JWK JSON) or privateKeyFile")
        return self


class OktaConfig(_Common):
    type: Literal["okta"]
    orgUrl: str
    origin: str = Field(default="okta", min_length=1)
    usernameAttribute: Literal["login", "email"] = "login"
    activeStatuses: tuple[OktaStatus, ...] = Field(default=("ACTIVE",), min_length=1)
    pageSize: int = Field(default=200, ge=1, le=1000)
    checkMemberCount: bool = True
    sdkMaxRetries: int = Field(default=2, ge=0, le=10)
    requestTimeoutSeconds: float = Field(default=60.0, gt=0, le=600)
    auth: Annotated[OktaApiTokenConfig | OktaPrivateKeyConfig, Field(discriminator="method")]

    _https_org = field_validator("orgUrl")(_https)


# -- Entra ----------------------------------------------------------------------------------------
class EntraClientSecretConfig(_Model):
    method: Literal["client-secret"]
    clientSecret: SecretStr = Field(min_length=1)


class EntraCertificateConfig(_Model):
    method: Literal["certificate"]
    certificate: SecretStr | None = None
    certificateFile: str | None = None
    certificatePassword: SecretStr | None = None

    @model_validator(mode="after")
    def _one_cert(self) -> EntraCertificateConfig:
        if (self.certificate is None) == (self.certificateFile is None):
            raise ValueError(
                "set exactly one of certificate (a secret: PEM certificate + key) or certificateFile"
            )
        return self


class EntraWorkloadIdentityConfig(_Model):
    method: Literal["workload-identity"]
    tokenFile: str | None = None
    tokenEnv: str | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> EntraWorkloadIdentityConfig:
        if self.tokenFile is not None and self.tokenEnv is not None:
            raise ValueError("set tokenFile or tokenEnv, not both (neither: AZURE_FEDERATED_TOKEN_FILE)")
        return self


class EntraConfig(_Common):
    type: Literal["entra"]
    tenantId: str = Field(min_length=1)
    clientId: str = Field(min_length=1)
    origin: str = Field(default="azuread", min_length=1)
    usernameAttribute: Literal["userPrincipalName", "mail"] = "userPrincipalName"
    authorityHost: str = DEFAULT_AUTHORITY
    graphBaseUrl: str = DEFAULT_GRAPH_BASE_URL
    graphScope: str = DEFAULT_GRAPH_SCOPE
    pageSize: int = Field(default=999, ge=1, le=999)
    sdkMaxRetries: int = Field(default=3, ge=0, le=10)
    sdkRetryDelaySeconds: float = Field(default=3.0, ge=0, le=180)
    requestTimeoutSeconds: float = Field(default=100.0, gt=0, le=600)
    auth: Annotated[
        EntraClientSecretConfig | EntraCertificateConfig | EntraWorkloadIdentityConfig,
        Field(discriminator="method"),
    ]

    _https_urls = field_validator("authorityHost", "graphBaseUrl")(_https)


# -- directory ------------------------------------------------------------------------------------
class DirectoryConfig(_Model):
    type: Literal["directory"]
    file: str = "directory/example.yaml"
    origin: str = Field(default="uaa", min_length=1)
    usernameAttribute: Literal["username", "email"] = "username"


# -- LDAP / Active Directory -----------------------------------------------------------------------
class LdapConfig(_Model):
    type: Literal["ldap"]
    urls: tuple[str, ...] = Field(min_length=1)
    startTls: bool = True
    allowPlaintext: bool = False
    caBundle: str | None = None
    tlsMinVersion: Literal["1.2", "1.3"] = "1.2"
    bindDn: str = Field(min_length=1)
    bindPassword: SecretStr | None = None
    bindPasswordEnv: str = Field(default=LDAP_PASSWORD_ENV, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    userBase: str = Field(min_length=1)
    userFilter: str = "(objectClass=person)"
    groupBase: str = Field(min_length=1)
    groupFilter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))"
    groupNameAttribute: str = Field(default="cn", min_length=1)
    memberAttribute: Literal["member", "uniqueMember", "memberUid"] = "member"
    usernameAttribute: Literal["mail", "uid", "userPrincipalName", "sAMAccountName"] = "mail"
    emailAttribute: str = "mail"
    origin: str = Field(default="ldap", min_length=1)
    activeDirectory: bool = False
    disabledFilter: str | None = None
    nestedGroups: bool = True
    maxNestingDepth: int = Field(default=10, ge=1, le=100)
    matchingRuleInChain: bool = False
    connectTimeoutSeconds: float = Field(default=10.0, gt=0, le=600)
    operationTimeoutSeconds: float = Field(default=60.0, gt=0, le=3600)
    pageSize: int = Field(default=500, ge=1, le=10000)

    @field_validator("urls")
    @classmethod
    def _ldap_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        schemes = {u.split("://", 1)[0].lower() for u in urls}
        for url in urls:
            scheme, sep, rest = url.partition("://")
            if not sep or scheme.lower() not in ("ldap", "ldaps") or not rest.strip("/"):
                raise ValueError(f"{url!r} must be ldap://host[:port] or ldaps://host[:port]")
        if len(schemes) > 1:
            raise ValueError("use one scheme for all URLs: ldap:// (with StartTLS) or ldaps://")
        return urls

    @field_validator("userFilter", "groupFilter", "disabledFilter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("(") and value.endswith(")")):
            raise ValueError("must be an LDAP filter in parentheses, e.g. (objectClass=person)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LdapConfig:
        plain = self.urls[0].lower().startswith("ldap://") and not self.startTls
        if plain and not self.allowPlaintext:
            raise ValueError(
                "ldap:// without startTls sends the bind password in clear: set startTls: true, "
                "use ldaps:// URLs, or (local tests only) allowPlaintext: true"
            )
        if self.matchingRuleInChain and not self.activeDirectory:
            raise ValueError("matchingRuleInChain is an Active Directory rule: set activeDirectory: true")
        if self.memberAttribute == "memberUid" and self.matchingRuleInChain:
            raise ValueError("memberUid groups (posixGroup) cannot use matchingRuleInChain")
        return self


MODELS: dict[str, type[_Model]] = {
    "okta": OktaConfig,
    "entra": EntraConfig,
    "directory": DirectoryConfig,
    "ldap": LdapConfig,
}


def parse_identity_sources(raw: object, project_root: Path) -> dict[str, IdentitySource]:
    """Validate ``cf-access:identitySources`` and build one source per entry, keyed by name.

    ``raw`` is what ``pulumi.Config().get_object("identitySources")`` returns (None when the
    key is not set: then ``{}``, and the caller falls back to its default source). Raises
    ``IdentityConfigError`` (a ``SettingsError``) listing every problem, each naming the key.
    """
    if raw is None or raw == {}:
        # Not set (Pulumi.yaml's default is {}): the caller's directory source applies.
        return {}
    if not isinstance(raw, Mapping):
        raise IdentityConfigError([f"{CONFIG_KEY}: must be a mapping of source name to settings"])
    raw = with_secrets_from_env(raw, os.environ)
    problems: list[str] = []
    configs: dict[str, _Model] = {}
    for name, settings in raw.items():
        key = f"{CONFIG_KEY}.{name}"
        if not isinstance(name, str) or not SOURCE_NAME.match(name):
            problems.append(f"{key}: source name must be letters, digits, '-', '_' or '.' (no ':')")
            continue
        if not isinstance(settings, Mapping):
            problems.append(f"{key}: must be a mapping with at least 'type'")
            continue
        kind = settings.get("type")
        if kind not in MODELS:
            shown = f" (got {kind!r})" if isinstance(kind, str) else ""
            problems.append(f"{key}.type: must be one of {', '.join(MODELS)}{shown}")
            continue
        try:
            configs[name] = MODELS[kind].model_validate(dict(settings))
        except ValidationError as exc:
            problems.extend(_describe(key, settings, exc))
    built: dict[str, IdentitySource] = {}
    for name, config in configs.items():
        try:
            built[name] = _build(name, config, project_root)
        except _PathProblem as exc:
            problems.append(f"{CONFIG_KEY}.{name}.{exc.key}: {exc.message}")
    if problems:
        raise IdentityConfigError(problems)
    return built


# The secret each auth method takes, and the file-based alternative an environment value replaces.
_ENV_SECRETS: dict[tuple[str, str], tuple[tuple[str, str | None], ...]] = {
    ("okta", "api-token"): (("apiToken", None),),
    ("okta", "private-key"): (("privateKey", "privateKeyFile"),),
    ("entra", "client-secret"): (("clientSecret", None),),
    ("entra", "certificate"): (("certificate", "certificateFile"), ("certificatePassword", None)),
}


def secret_env_name(source: str, key: str) -> str:
    """``CF_ACCESS_<SOURCE>_<KEY>``: source ``okta``, key ``apiToken`` → ``CF_ACCESS_OKTA_API_TOKEN``."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()
    return f"CF_ACCESS_{re.sub(r'[^A-Za-z0-9]', '_', source).upper()}_{snake}"


def with_secrets_from_env(raw: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``raw`` with each source's auth secret taken from ``CF_ACCESS_<SOURCE>_<KEY>`` when that
    variable is set and non-empty (the environment wins over stack config), so a stack file
    need hold no IdP secret. Only the secret the configured ``auth.method`` takes is read."""
    out: dict[str, Any] = dict(raw)
    for name, settings in raw.items():
        if not isinstance(name, str) or not isinstance(settings, Mapping):
            continue
        auth = settings.get("auth")
        if not isinstance(auth, Mapping):
            continue
        keys = _ENV_SECRETS.get((str(settings.get("type")), str(auth.get("method"))), ())
        new_auth = dict(auth)
        for key, file_key in keys:
            value = environ.get(secret_env_name(name, key))
            if value:
                new_auth[key] = value
                if file_key is not None:
                    new_auth.pop(file_key, None)  # the environment's value replaces the file
        if new_auth != dict(auth):
            out[name] = {**settings, "auth": new_auth}
    return out


class _PathProblem(Exception):
    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message


def _path(project_root: Path, value: str, key: str, must_exist: bool = True) -> Path:
    path = Path(value).expanduser()
    path = path if path.is_absolute() else project_root / path
    if must_exist and not path.is_file():
        raise _PathProblem(key, f"file not found: {path}")
    return path


def _build(name: str, config: _Model, root: Path) -> IdentitySource:
    if isinstance(config, DirectoryConfig):
        return DirectorySource(
            _path(root, config.file, "file"),
            name=name,
            origin=config.origin,
            username_attribute=config.usernameAttribute,
        )
    if isinstance(config, OktaConfig):
        return _build_okta(name, config, root)
    if isinstance(config, LdapConfig):
        return _build_ldap(name, config, root)
    assert isinstance(config, EntraConfig)
    return _build_entra(name, config, root)


def _build_okta(name: str, config: OktaConfig, root: Path) -> IdentitySource:
    from components.identity.okta import OktaApiTokenAuth, OktaPrivateKeyAuth, OktaSource

    okta_auth: OktaAuth
    if isinstance(config.auth, OktaApiTokenConfig):
        okta_auth = OktaApiTokenAuth(config.auth.apiToken)
    else:
        key = config.auth.privateKey
        if key is None:
            pem_file = _path(root, config.auth.privateKeyFile or "", "auth.privateKeyFile")
            key = SecretStr(pem_file.read_text(encoding="utf-8"))
        okta_auth = OktaPrivateKeyAuth(config.auth.clientId, key, config.auth.keyId, config.auth.scopes)
    return OktaSource(
        org_url=config.orgUrl,
        auth=okta_auth,
        username_attribute=config.usernameAttribute,
        active_statuses=config.activeStatuses,
        check_member_count=config.checkMemberCount,
        **_sdk_settings(name, config, root),
    )


def _build_entra(name: str, config: EntraConfig, root: Path) -> IdentitySource:
    from components.identity.entra import (
        EntraCertificateAuth,
        EntraClientSecretAuth,
        EntraSource,
        EntraWorkloadIdentityAuth,
    )

    entra_auth: EntraAuth
    auth = config.auth
    if isinstance(auth, EntraClientSecretConfig):
        entra_auth = EntraClientSecretAuth(auth.clientSecret)
    elif isinstance(auth, EntraCertificateConfig):
        entra_auth = EntraCertificateAuth(
            certificate=auth.certificate,
            certificate_file=_path(root, auth.certificateFile, "auth.certificateFile")
            if auth.certificateFile
            else None,
            password=auth.certificatePassword,
        )
    else:
        entra_auth = EntraWorkloadIdentityAuth(
            token_file=_path(root, auth.tokenFile, "auth.tokenFile", must_exist=False)
            if auth.tokenFile
            else None,
            token_env=auth.tokenEnv,
        )
    return EntraSource(
        tenant_id=config.tenantId,
        client_id=config.clientId,
        auth=entra_auth,
        username_attribute=config.usernameAttribute,
        authority_host=config.authorityHost,
        graph_base_url=config.graphBaseUrl,
        graph_scope=config.graphScope,
        sdk_retry_delay=config.sdkRetryDelaySeconds,
        **_sdk_settings(name, config, root),
    )


def _build_ldap(name: str, config: LdapConfig, root: Path) -> IdentitySource:
    from components.identity.ldap_client import LdapConnectionSettings
    from components.identity.ldap_members import Directory
    from components.identity.ldap_source import LdapSource

    # The environment variable wins over stack config: CI injects the password from its own
    # secret store without it ever being written to a stack file.
    from_env = os.environ.get(config.bindPasswordEnv, "")
    password = SecretStr(from_env) if from_env else config.bindPassword
    if password is None or not password.get_secret_value():
        raise _PathProblem(
            "bindPassword",
            f"no bind password: set {config.bindPasswordEnv} in the environment, or "
            f"pulumi config set --secret --path identitySources.{name}.bindPassword <password>",
        )
    connection = LdapConnectionSettings(
        source=name,
        urls=config.urls,
        bind_dn=config.bindDn,
        bind_password=password,
        start_tls=config.startTls,
        ca_file=_path(root, config.caBundle, "caBundle") if config.caBundle else None,
        tls_min_version=config.tlsMinVersion,
        connect_timeout=config.connectTimeoutSeconds,
        operation_timeout=config.operationTimeoutSeconds,
        page_size=config.pageSize,
    )
    directory = Directory(
        source=name,
        origin=config.origin,
        user_base=config.userBase,
        user_filter=config.userFilter,
        group_base=config.groupBase,
        group_filter=config.groupFilter,
        group_name_attribute=config.groupNameAttribute,
        member_attribute=config.memberAttribute,
        username_attribute=config.usernameAttribute,
        email_attribute=config.emailAttribute,
        disabled_filter=config.disabledFilter,
        active_directory=config.activeDirectory,
        nested_groups=config.nestedGroups,
        max_depth=config.maxNestingDepth,
        in_chain=config.matchingRuleInChain,
    )
    return LdapSource(connection, directory)


class _SdkSettings(TypedDict):
    """The constructor arguments every SDK-backed source (``SdkSource``) takes."""

    name: str
    origin: str
    page_size: int
    max_concurrency: int
    retry: RetryPolicy
    sdk_max_retries: int
    request_timeout: float
    ca_file: Path | None
    progress_interval: float


def _sdk_settings(name: str, config: OktaConfig | EntraConfig, root: Path) -> _SdkSettings:
    return _SdkSettings(
        name=name,
        origin=config.origin,
        page_size=config.pageSize,
        max_concurrency=config.maxConcurrency,
        retry=config.retry.policy(),
        sdk_max_retries=config.sdkMaxRetries,
        request_timeout=config.requestTimeoutSeconds,
        ca_file=_path(root, config.caBundle, "caBundle") if config.caBundle else None,
        progress_interval=config.progressIntervalSeconds,
    )


def _describe(key: str, settings: Mapping[str, Any], exc: ValidationError) -> list[str]:
    """One line per pydantic error: full key, message, and the offending value unless secret."""
    out: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err["loc"]]
        # Drop the discriminator tag pydantic inserts: ('auth', 'api-token', 'apiToken').
        if len(loc) >= 2 and loc[0] == "auth" and loc[1] in _auth_tags():
            loc = [loc[0], *loc[2:]]
        where = ".".join([key, *loc])
        kind = err["type"]
        value = _lookup(settings, loc)
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
            if loc and loc[-1] in SECRET_KEYS:
                source = key.removeprefix(f"{CONFIG_KEY}.")
                message += f" (set it as a secret, or export {secret_env_name(source, loc[-1])})"
        elif isinstance(value, Mapping) and "secure" in value:
            message = "is still encrypted ({secure: ...}); read it with pulumi.Config, which decrypts secrets"
        else:
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            secret = any(part in SECRET_KEYS for part in loc)
            if not secret and isinstance(value, (str, int, float, bool)) and len(str(value)) < 200:
                message += f" (got {value!r})"
        out.append(f"{where}: {message}")
    return out


def _auth_tags() -> set[str]:
    return {"api-token", "private-key", "client-secret", "certificate", "workload-identity"}


def _lookup(settings: Mapping[str, Any], loc: list[str]) -> object:
    current: object = settings
    for part in loc:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, (list, tuple)) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current
