from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.settings import SettingsError, load_cf_connection, load_settings


class FakeConfig:
    def __init__(self, **values: object) -> None:
        self.values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}

    def get(self, key: str) -> str | None:
        return self.values.get(key)


BASE = {"cfApiUrl": "https://api.example.com/", "cfClientSecret": "s3cr3t-value"}


def test_defaults_and_normalisation() -> None:
    settings = load_settings(FakeConfig(**BASE), Path("/proj"))
    assert settings.cf.api_url == "https://api.example.com"
    assert settings.cf.client_id == "cf-access"
    assert settings.cf.concurrency == 8
    assert settings.mappings_dir == Path("/proj/mappings")
    assert settings.deprovision_policy == "roles-only"
    assert settings.protected_users == ()


def test_secret_never_in_repr_or_str() -> None:
    connection = load_cf_connection(FakeConfig(**BASE))
    assert "s3cr3t-value" not in repr(connection)
    assert "s3cr3t-value" not in str(connection)
    assert connection.client_secret.get_secret_value() == "s3cr3t-value"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cfApiUrl": None}, "stack config cf-access:cfApiUrl is required"),
        (
            {"cfClientSecret": None},
            "the CF client secret is not set: export CF_CLIENT_SECRET (wins) or set stack",
        ),
        ({"cfApiUrl": "api.example.com"}, "cf-access:cfApiUrl must be an http(s) URL"),
        ({"concurrency": "many"}, "cf-access:concurrency must be an integer, got 'many'"),
        ({"concurrency": "0"}, "cf-access:concurrency must be between 1 and 64, got 0"),
        ({"deprovisionPolicy": "nuke"}, "cf-access:deprovisionPolicy must be one of delete-user, roles-only"),
        ({"usernameAttribute": "upn"}, "cf-access:usernameAttribute must be one of username, email"),
        ({"cfSkipTlsVerify": "maybe"}, "cf-access:cfSkipTlsVerify must be true or false"),
        (
            {"protectedUsers": ["admin", "(unclosed"]},
            "cf-access:protectedUsers[1] is not a valid regular expression",
        ),
        ({"protectedUsers": "admin"}, "cf-access:protectedUsers must be a list of strings"),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, object], message: str) -> None:
    values = {**BASE, **overrides}
    config = FakeConfig(**{k: v for k, v in values.items() if v is not None})
    with pytest.raises(SettingsError) as raised:
        load_settings(config, Path("/proj"))
    assert message in str(raised.value)
    assert "s3cr3t-value" not in str(raised.value)


def test_unanchored_protected_pattern_warns(caplog: pytest.LogCaptureFixture) -> None:
    config = FakeConfig(**BASE, protectedUsers=["^admin", "ci-bot", "^root$"])
    with caplog.at_level("WARNING", logger="components.settings"):
        settings = load_settings(config, Path("/proj"))
    assert settings.protected_users == ("^admin", "ci-bot", "^root$")
    assert len(settings.warnings) == 1
    assert "cf-access:protectedUsers[1] 'ci-bot' has no '^' or '$' anchor" in settings.warnings[0]
    assert "'^ci-bot$'" in settings.warnings[0]
    assert [r.getMessage() for r in caplog.records] == list(settings.warnings)


# -- credentials from the environment (README, "Credentials from the environment") --------------
def test_environment_wins_over_stack_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_CLIENT_ID", "cf-access-read")
    monkeypatch.setenv("CF_CLIENT_SECRET", "from-env")
    monkeypatch.setenv("CF_API_URL", "https://api.other.example.com/")
    connection = load_cf_connection(FakeConfig(**BASE, cfClientId="from-config"))
    assert connection.client_id == "cf-access-read"
    assert connection.client_secret.get_secret_value() == "from-env"
    assert connection.api_url == "https://api.other.example.com"


def test_stack_config_needs_no_secret_when_the_environment_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_CLIENT_SECRET", "from-env")
    connection = load_cf_connection(FakeConfig(cfApiUrl="https://api.example.com", cfClientSecret=""))
    assert connection.client_secret.get_secret_value() == "from-env"
    assert connection.client_id == "cf-access"


def test_empty_environment_values_do_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_CLIENT_SECRET", "")
    monkeypatch.delenv("CF_CLIENT_ID", raising=False)
    connection = load_cf_connection(FakeConfig(**BASE))
    assert connection.client_secret.get_secret_value() == "s3cr3t-value"


def test_neither_environment_nor_config_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_CLIENT_SECRET", raising=False)
    with pytest.raises(SettingsError) as raised:
        load_cf_connection(FakeConfig(cfApiUrl="https://api.example.com", cfClientSecret=""))
    assert str(raised.value) == (
        "the CF client secret is not set: export CF_CLIENT_SECRET (wins) or set stack config "
        "cf-access:cfClientSecret with `pulumi config set --secret cfClientSecret <value>`"
    )


# -- cfUaaUrl: the UAA base URL, to save the discovery call ------------------------------------
def test_uaa_url_is_optional_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_UAA_URL", raising=False)
    assert load_cf_connection(FakeConfig(**BASE)).uaa_url is None
    assert load_cf_connection(FakeConfig(**BASE, cfUaaUrl="https://uaa.example.com/")).uaa_url == (
        "https://uaa.example.com"
    )
    monkeypatch.setenv("CF_UAA_URL", "https://uaa.other.example.com")
    assert load_cf_connection(FakeConfig(**BASE, cfUaaUrl="https://uaa.example.com")).uaa_url == (
        "https://uaa.other.example.com"
    )


def test_uaa_url_must_be_an_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_UAA_URL", raising=False)
    with pytest.raises(SettingsError) as raised:
        load_cf_connection(FakeConfig(**BASE, cfUaaUrl="uaa.example.com"))
    assert str(raised.value) == (
        "stack config cf-access:cfUaaUrl must be an http(s) URL (the links.uaa.href of "
        "`curl https://api.example.com/`), got 'uaa.example.com'; "
        "or unset it to discover UAA from the API root"
    )
