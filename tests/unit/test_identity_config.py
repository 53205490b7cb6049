"""parse_identity_sources: the cf-access:identitySources stack config object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.identity.config import IdentityConfigError, parse_identity_sources, secret_env_name
from components.identity.directory import DirectorySource
from components.identity.entra import (
    EntraCertificateAuth,
    EntraClientSecretAuth,
    EntraSource,
    EntraWorkloadIdentityAuth,
)
from components.identity.okta import OktaApiTokenAuth, OktaPrivateKeyAuth, OktaSource
from components.settings import SettingsError

TOKEN = "00aBcD-okta-api-token-that-is-secret"
SECRET = "entra~client~secret~value"
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ"
PEM = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"


def okta(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "okta",
        "orgUrl": "https://acme.okta.com",
        "auth": {"method": "api-token", "apiToken": TOKEN},
    }
    base.update(kw)
    return base


def entra(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "entra",
        "tenantId": "tenant-1",
        "clientId": "client-1",
        "auth": {"method": "client-secret", "clientSecret": SECRET},
    }
    base.update(kw)
    return base


def problems(raw: object, root: Path = Path("/nonexistent")) -> list[str]:
    with pytest.raises(IdentityConfigError) as info:
        parse_identity_sources(raw, root)
    assert isinstance(info.value, SettingsError), "the program's existing except clause catches it"
    return info.value.problems


def test_not_set_means_no_sources() -> None:
    assert parse_identity_sources(None, Path()) == {}


def test_all_three_kinds(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").write_text("users: []\ngroups: {}\n", encoding="utf-8")
    got = parse_identity_sources(
        {
            "okta": okta(
                origin="okta-sso", usernameAttribute="email", activeStatuses=["ACTIVE", "PASSWORD_EXPIRED"]
            ),
            "entra": entra(usernameAttribute="mail", maxConcurrency=4),
            "corp": {"type": "directory", "file": "dir.yaml", "origin": "corp-sso"},
        },
        tmp_path,
    )
    o, e, d = got["okta"], got["entra"], got["corp"]
    assert isinstance(o, OktaSource) and isinstance(e, EntraSource) and isinstance(d, DirectorySource)
    assert (o.name, o.origin, o.username_attribute) == ("okta", "okta-sso", "email")
    assert o.active_statuses == {"ACTIVE", "PASSWORD_EXPIRED"}
    assert isinstance(o.auth, OktaApiTokenAuth) and o.auth.token.get_secret_value() == TOKEN
    assert (e.name, e.origin, e.username_attribute, e.max_concurrency) == ("entra", "azuread", "mail", 4)
    assert e.authority_host == "https://login.microsoftonline.com"
    assert e.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert isinstance(e.auth, EntraClientSecretAuth)
    assert (d.name, d.origin, d.path) == ("corp", "corp-sso", tmp_path / "dir.yaml")


def test_defaults() -> None:
    got = parse_identity_sources({"okta": okta(), "entra": entra()}, Path())
    o, e = got["okta"], got["entra"]
    assert isinstance(o, OktaSource) and isinstance(e, EntraSource)
    assert (o.origin, o.username_attribute, o.active_statuses, o.page_size, o.max_concurrency) == (
        "okta",
        "login",
        frozenset({"ACTIVE"}),
        200,
        8,
    )
    assert (o.retry.attempts, o.sdk_max_retries, o.check_member_count) == (4, 2, True)
    assert (e.origin, e.username_attribute, e.page_size, e.sdk_max_retries) == (
        "azuread",
        "userPrincipalName",
        999,
        3,
    )


def test_okta_private_key_and_emulator_overrides(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("ca", encoding="ascii")
    (tmp_path / "key.pem").write_text(PEM, encoding="ascii")
    got = parse_identity_sources(
        {
            "a": okta(
                orgUrl="https://127.0.0.1:9031/",
                caBundle="ca.pem",
                auth={"method": "private-key", "clientId": "0oa1", "privateKey": PEM, "keyId": "k1"},
                retry={"attempts": 2, "backoffSeconds": 0.1, "maxBackoffSeconds": 1},
            ),
            "b": okta(auth={"method": "private-key", "clientId": "0oa1", "privateKeyFile": "key.pem"}),
        },
        tmp_path,
    )
    a, b = got["a"], got["b"]
    assert isinstance(a, OktaSource) and isinstance(b, OktaSource)
    assert a.org_url == "https://127.0.0.1:9031" and a.ca_file == tmp_path / "ca.pem"
    assert isinstance(a.auth, OktaPrivateKeyAuth) and a.auth.key_id == "k1"
    assert a.auth.scopes == ("okta.groups.read", "okta.users.read")
    assert (a.retry.attempts, a.retry.backoff_seconds, a.retry.max_backoff_seconds) == (2, 0.1, 1)
    assert isinstance(b.auth, OktaPrivateKeyAuth) and b.auth.private_key.get_secret_value() == PEM


def test_entra_certificate_and_workload_identity(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text(PEM, encoding="ascii")
    got = parse_identity_sources(
        {
            "c": entra(auth={"method": "certificate", "certificateFile": "cert.pem"}),
            "c2": entra(auth={"method": "certificate", "certificate": PEM, "certificatePassword": "pw"}),
            "w": entra(
                auth={"method": "workload-identity", "tokenFile": "oidc.jwt"},
                authorityHost="https://127.0.0.1:9032",
                graphBaseUrl="https://127.0.0.1:9032/v1.0/",
            ),
            "w2": entra(auth={"method": "workload-identity", "tokenEnv": "CI_TOKEN"}),
        },
        tmp_path,
    )
    c, c2, w, w2 = got["c"], got["c2"], got["w"], got["w2"]
    assert isinstance(c, EntraSource) and isinstance(c.auth, EntraCertificateAuth)
    assert c.auth.certificate_file == tmp_path / "cert.pem"
    assert isinstance(c2, EntraSource) and isinstance(c2.auth, EntraCertificateAuth) and c2.auth.password
    assert isinstance(w, EntraSource) and isinstance(w.auth, EntraWorkloadIdentityAuth)
    assert w.auth.token_file == tmp_path / "oidc.jwt", "token file need not exist yet (CI writes it)"
    assert w.graph_base_url == "https://127.0.0.1:9032/v1.0"
    assert isinstance(w2, EntraSource) and isinstance(w2.auth, EntraWorkloadIdentityAuth)
    assert w2.auth.token_env == "CI_TOKEN"


def test_errors_name_full_keys() -> None:
    got = problems(
        {
            "okta": okta(orgUrl="http://acme.okta.com", usernameAtribute="login", pageSize=0),
            "entra": entra(usernameAttribute="upn", auth={"method": "client-secret"}),
            "e2": entra(auth={"method": "password", "clientSecret": SECRET}),
            "x": {"type": "saml"},
            "y": {"origin": "z"},
            "bad:name": okta(),
            "z": "not a mapping",
        }
    )
    text = "\n".join(got)
    assert "cf-access:identitySources.okta.orgUrl: must be an https:// URL" in text
    assert "cf-access:identitySources.okta.usernameAtribute: unknown key" in text
    assert (
        "cf-access:identitySources.okta.pageSize: Input should be greater than or equal to 1 (got 0)" in text
    )
    assert (
        "cf-access:identitySources.entra.usernameAttribute: "
        "Input should be 'userPrincipalName' or 'mail' (got 'upn')" in text
    )
    assert "cf-access:identitySources.entra.auth.clientSecret: required key is missing" in text
    assert "cf-access:identitySources.e2.auth: Input tag 'password'" in text
    assert (
        "cf-access:identitySources.x.type: must be one of okta, entra, directory, ldap (got 'saml')" in text
    )
    assert "cf-access:identitySources.y.type: must be one of okta, entra, directory" in text
    assert "cf-access:identitySources.bad:name: source name must be" in text
    assert "cf-access:identitySources.z: must be a mapping" in text
    assert SECRET not in text and TOKEN not in text


def test_secret_values_never_in_errors() -> None:
    got = problems(
        {
            "o": okta(auth={"method": "api-token", "apiToken": TOKEN, "extra": TOKEN}),
            "p": okta(
                auth={"method": "private-key", "clientId": "c", "privateKey": PEM, "privateKeyFile": "x"}
            ),
            "e": entra(auth={"method": "client-secret", "clientSecret": ["x", SECRET]}),
            "f": entra(auth={"method": "client-secret", "clientSecret": {"secure": "v1:abcd"}}),
        }
    )
    text = "\n".join(got)
    assert "cf-access:identitySources.o.auth.extra: unknown key" in text
    assert "cf-access:identitySources.p.auth: set exactly one of privateKey" in text
    assert "cf-access:identitySources.e.auth.clientSecret: Input should be a valid string" in text
    assert "cf-access:identitySources.f.auth.clientSecret: is still encrypted" in text
    for secret in (TOKEN, SECRET, KEY_BODY):
        assert secret not in text


def test_missing_files_are_reported(tmp_path: Path) -> None:
    got = problems(
        {
            "o": okta(caBundle="missing-ca.pem"),
            "p": okta(auth={"method": "private-key", "clientId": "c", "privateKeyFile": "missing.pem"}),
            "d": {"type": "directory", "file": "missing.yaml"},
        },
        tmp_path,
    )
    assert f"cf-access:identitySources.o.caBundle: file not found: {tmp_path / 'missing-ca.pem'}" in got
    assert (
        f"cf-access:identitySources.p.auth.privateKeyFile: file not found: {tmp_path / 'missing.pem'}" in got
    )
    assert f"cf-access:identitySources.d.file: file not found: {tmp_path / 'missing.yaml'}" in got


@pytest.mark.parametrize("raw", [[], "okta"])
def test_must_be_a_mapping(raw: object) -> None:
    assert problems(raw) == ["cf-access:identitySources: must be a mapping of source name to settings"]


def test_empty_mapping_means_not_configured() -> None:
    # Pulumi.yaml's default for identitySources is {}: the directory* keys apply.
    assert parse_identity_sources({}, Path("/proj")) == {}


def test_reprs_hide_secrets() -> None:
    got = parse_identity_sources(
        {
            "o": okta(),
            "p": okta(auth={"method": "private-key", "clientId": "c", "privateKey": PEM}),
            "e": entra(),
            "c": entra(
                auth={"method": "certificate", "certificate": PEM, "certificatePassword": "hunter2-pass"}
            ),
        },
        Path(),
    )
    text = " ".join(
        repr(s) + repr(getattr(s, "auth", "")) + str(getattr(s, "__dict__", "")) for s in got.values()
    )
    for secret in (TOKEN, SECRET, KEY_BODY, "hunter2-pass"):
        assert secret not in text


def test_directory_only_stacks_do_not_import_the_idp_sdks(tmp_path: Path) -> None:
    """The Okta and Graph SDKs take ~2.4 s to import; a stack that reads only a directory file
    must not pay that on every run (components/identity/defaults.py)."""
    import subprocess
    import sys

    directory = tmp_path / "people.yaml"
    directory.write_text("users: []\ngroups: {}\n", encoding="utf-8")
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from components.identity.config import parse_identity_sources\n"
        f"parse_identity_sources({{'hr': {{'type': 'directory', 'file': {str(directory)!r}}}}}, Path('.'))\n"
        "sdks = ('okta', 'msgraph', 'azure', 'kiota_http')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in sdks)\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- LDAP -----------------------------------------------------------------------------------------
LDAP: dict[str, object] = {
    "type": "ldap",
    "urls": ["ldap://ldap1.corp.example", "ldap://ldap2.corp.example:3389"],
    "bindDn": "cn=cf-access,ou=service,dc=corp,dc=example",
    "bindPassword": "ldap-Secret-in-config",
    "userBase": "ou=people,dc=corp,dc=example",
    "groupBase": "ou=groups,dc=corp,dc=example",
}


def _ldap_problems(**overrides: object) -> str:
    with pytest.raises(IdentityConfigError) as caught:
        parse_identity_sources({"corp": {**LDAP, **overrides}}, Path.cwd())
    text = str(caught.value)
    assert "ldap-Secret-in-config" not in text
    return text


def test_ldap_source_is_built_with_defaults_and_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.identity.ldap_source import LdapSource

    monkeypatch.delenv("CF_ACCESS_LDAP_BIND_PASSWORD", raising=False)
    source = parse_identity_sources({"corp": LDAP}, Path.cwd())["corp"]
    assert isinstance(source, LdapSource)
    assert (source.name, source.origin) == ("corp", "ldap")
    assert source.connection.urls == ("ldap://ldap1.corp.example", "ldap://ldap2.corp.example:3389")
    assert source.connection.start_tls and source.connection.tls_min_version == "1.2"
    assert source.directory.member_attribute == "member" and source.directory.username_attribute == "mail"
    assert "ldap-Secret-in-config" not in repr(source) + repr(source.connection)
    assert source.connection.bind_password.get_secret_value() == "ldap-Secret-in-config"


def test_ldap_password_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.identity.ldap_source import LdapSource

    monkeypatch.setenv("CF_ACCESS_LDAP_BIND_PASSWORD", "from-the-env")
    source = parse_identity_sources({"corp": LDAP}, Path.cwd())["corp"]
    assert isinstance(source, LdapSource)
    assert source.connection.bind_password.get_secret_value() == "from-the-env"
    monkeypatch.delenv("CF_ACCESS_LDAP_BIND_PASSWORD")
    text = _ldap_problems(bindPassword=None)
    assert "cf-access:identitySources.corp.bindPassword: no bind password" in text
    assert "CF_ACCESS_LDAP_BIND_PASSWORD" in text


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"urls": ["https://ldap.corp.example"]}, "identitySources.corp.urls: Value error"),
        ({"urls": ["ldap://a", "ldaps://b"]}, "use one scheme for all URLs"),
        ({"urls": []}, "identitySources.corp.urls"),
        ({"startTls": False}, "sends the bind password in clear"),
        ({"matchingRuleInChain": True}, "set activeDirectory: true"),
        ({"memberAttribute": "members"}, "identitySources.corp.memberAttribute"),
        ({"usernameAttribute": "cn"}, "identitySources.corp.usernameAttribute"),
        ({"userFilter": "objectClass=person"}, "must be an LDAP filter in parentheses"),
        ({"bindPassword": ["not", "a", "string"]}, "identitySources.corp.bindPassword"),
        ({"pageSize": 0}, "identitySources.corp.pageSize"),
        ({"tlsMinVersion": "1.0"}, "identitySources.corp.tlsMinVersion"),
        ({"followReferrals": True}, "identitySources.corp.followReferrals: unknown key"),
    ],
)
def test_ldap_config_errors_name_the_key(overrides: dict[str, object], expected: str) -> None:
    assert expected.replace("Value error", "") in _ldap_problems(**overrides)


# -- IdP secrets from the environment (README, "Credentials from the environment") --------------
def test_secret_env_names() -> None:
    assert secret_env_name("okta", "apiToken") == "CF_ACCESS_OKTA_API_TOKEN"
    assert secret_env_name("entra-corp", "clientSecret") == "CF_ACCESS_ENTRA_CORP_CLIENT_SECRET"
    assert secret_env_name("entra", "certificatePassword") == "CF_ACCESS_ENTRA_CERTIFICATE_PASSWORD"


def test_okta_token_and_entra_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_ACCESS_OKTA_API_TOKEN", "token-from-env")
    monkeypatch.setenv("CF_ACCESS_ENTRA_CLIENT_SECRET", "secret-from-env")
    raw = {
        "okta": {"type": "okta", "orgUrl": "https://acme.okta.com", "auth": {"method": "api-token"}},
        "entra": entra(auth={"method": "client-secret", "clientSecret": "from-config"}),
    }
    sources = parse_identity_sources(raw, Path("/proj"))
    okta_source, entra_source = sources["okta"], sources["entra"]
    assert isinstance(okta_source, OktaSource) and isinstance(okta_source.auth, OktaApiTokenAuth)
    assert okta_source.auth.token.get_secret_value() == "token-from-env"
    assert isinstance(entra_source, EntraSource) and isinstance(entra_source.auth, EntraClientSecretAuth)
    assert entra_source.auth.client_secret.get_secret_value() == "secret-from-env", "the environment wins"


def test_okta_private_key_from_the_environment_replaces_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_ACCESS_OKTA_PRIVATE_KEY", PEM)
    auth = {"method": "private-key", "clientId": "0oa1", "privateKeyFile": "missing.pem"}
    source = parse_identity_sources({"okta": okta(auth=auth)}, Path("/proj"))["okta"]
    assert isinstance(source, OktaSource) and isinstance(source.auth, OktaPrivateKeyAuth)
    assert source.auth.private_key.get_secret_value() == PEM


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_ACCESS_OKTA_API_TOKEN", raising=False)
    with pytest.raises(IdentityConfigError) as raised:
        parse_identity_sources({"okta": okta(auth={"method": "api-token"})}, Path("/proj"))
    assert raised.value.problems == [
        "cf-access:identitySources.okta.auth.apiToken: required key is missing "
        "(set it as a secret, or export CF_ACCESS_OKTA_API_TOKEN)"
    ]


def test_only_the_configured_methods_secret_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_ACCESS_ENTRA_CLIENT_SECRET", "unused")
    raw = {"entra": entra(auth={"method": "workload-identity", "tokenEnv": "CI_TOKEN"})}
    source = parse_identity_sources(raw, Path("/proj"))["entra"]
    assert isinstance(source, EntraSource) and isinstance(source.auth, EntraWorkloadIdentityAuth)
