"""Keys in configuration: a key is never echoed, whatever the mistake; what an environment
variable holds is trimmed, and a value no HTTP header can carry is never sent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from switchman._errors import ValidationError
from switchman.catalog import api_key, load_config

CANARY = "sk-proj-LEAKCANARY0123456789abcdef"


def _load(tmp_path: Path, text: str, env: dict[str, str]) -> object:
    path = tmp_path / "switchman.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path, env=env)


def _problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ValidationError) as info:
        _load(tmp_path, text, env or {})
    said = str(info.value) + " ".join(f"{f.field}: {f.message}" for f in info.value.fields)
    assert "LEAKCANARY" not in said
    assert "hunter2" not in said
    return said


def test_a_key_pasted_in_place_of_its_variable_name_is_refused_unechoed(tmp_path: Path) -> None:
    said = _problems(tmp_path, f'[providers.openai]\napi_key_env = "{CANARY}"\n')
    assert "providers.openai.api_key_env" in said
    assert "must be the name of an environment variable" in said
    said = _problems(
        tmp_path,
        f'[[keys]]\nkey_env = "{CANARY}"\nhandle = "a"\n',
        {"X": "y"},
    )
    assert "keys[0].key_env" in said


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:hunter2@api.openai.com/v1",
        "https://api.openai.com/v1?key=LEAKCANARYquery77",
        "https://api.openai.com/v1#LEAKCANARY",
        "https://LEAKCANARY@api.openai.com/v1",
    ],
)
def test_credentials_in_a_base_url_are_refused_unechoed(tmp_path: Path, url: str) -> None:
    said = _problems(tmp_path, f'[providers.openai]\nbase_url = "{url}"\n')
    assert "providers.openai.base_url" in said
    assert "must not carry a user, a password, a query or a fragment" in said


def test_a_plain_base_url_with_a_port_and_path_is_fine(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        '[providers.openai]\nbase_url = "http://127.0.0.1:8300/openai/v1"\n',
        {"OPENAI_API_KEY": CANARY},
    )
    assert config.providers["openai"].disabled_reason is None  # type: ignore[attr-defined]


def test_whitespace_around_a_key_is_trimmed(tmp_path: Path) -> None:
    config = _load(tmp_path, "", {"OPENAI_API_KEY": f"  {CANARY}\n"})
    openai = config.providers["openai"]  # type: ignore[attr-defined]
    assert openai.disabled_reason is None
    assert api_key(openai, {"OPENAI_API_KEY": f"{CANARY}\r\n"}) == CANARY


@pytest.mark.parametrize(
    "value", [f"{CANARY[:10]} {CANARY[10:]}", f"{CANARY}\u201c", f"{CANARY[:8]}\n{CANARY[8:]}"]
)
def test_a_key_no_header_can_carry_disables_its_provider_saying_why_not_what(
    tmp_path: Path, value: str
) -> None:
    config = _load(tmp_path, "", {"OPENAI_API_KEY": value})
    openai = config.providers["openai"]  # type: ignore[attr-defined]
    reason = openai.disabled_reason or ""
    assert reason.startswith("the API key in OPENAI_API_KEY holds whitespace or characters")
    assert "LEAKCANARY" not in reason
    assert api_key(openai, {"OPENAI_API_KEY": value}) is None  # never sent


def test_a_gateway_key_secret_is_trimmed_and_an_unusable_one_is_named(tmp_path: Path) -> None:
    text = '[[keys]]\nkey_env = "GW_A"\nhandle = "a"\n\n[[keys]]\nkey_env = "GW_B"\nhandle = "b"\n'
    config = _load(tmp_path, text, {"GW_A": " team-a-secret-0001\n", "GW_B": "bad secret"})
    (only,) = config.keys  # type: ignore[attr-defined]
    assert only.handle == "a" and only.secret == "team-a-secret-0001"
    said = _problems(tmp_path, text, {"GW_B": "bad secret"})
    assert "GW_B holds whitespace" in said and "bad secret" not in said


@pytest.mark.parametrize(
    "url", ["http://[LEAKCANARY-v6]/v1", "http://[::1/LEAKCANARY", "https://LEAKCANARY]:8/v1"]
)
def test_a_bracketed_host_that_is_no_ipv6_address_is_one_error_unechoed(
    tmp_path: Path, url: str
) -> None:
    """The base_url's API-root check parsed it again, unguarded: a traceback quoting the host
    (and serve's exit 1) after the URL check had said it was not valid."""
    with pytest.raises(ValidationError) as info:
        _load(tmp_path, f'[providers.openai]\nbase_url = "{url}"\n', {})
    assert [(f.field, f.message) for f in info.value.fields] == [
        (
            "providers.openai.base_url",
            "is not a valid URL: a host in brackets must be an IPv6 address "
            "(such as http://[::1]:8000/v1)",
        )
    ]
    assert "LEAKCANARY" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://sk-LEAKCANARY:hunter2@x/v1", "its scheme is not http or https"),
        (
            "HTTPS://LEAKCANARY@x/v1",
            "its scheme must be written in lower case (http:// or https://)",
        ),
        ("sk-proj-LEAKCANARY0123456789", "it does not start with http:// or https://"),
        ("api.openai.com/v1?key=LEAKCANARY", "it does not start with http:// or https://"),
    ],
)
def test_a_base_url_that_is_not_http_is_refused_unechoed(
    tmp_path: Path, url: str, why: str
) -> None:
    """It was quoted back whole: the user and password of ``ftp://user:pw@host``, a key pasted
    in its place. A user or password in it is told too, as in an http(s) URL."""
    said = _problems(tmp_path, f'[providers.openai]\nbase_url = "{url}"\n')
    assert (
        "providers.openai.base_url: must be an http(s) URL (such as https://api.example.com/v1): "
        f"{why}; the value is not shown"
    ) in said
    credentials = "must not carry a user, a password, a query or a fragment"
    assert (credentials in said) is ("@" in url)


def test_a_header_name_that_is_not_one_is_never_shown(tmp_path: Path) -> None:
    """A whole header pasted as a name (``"Authorization: Bearer KEY" = ""``) was quoted in
    the error's path, the key with it: the error is the table's, saying which header and
    what its name holds, and so is its value's."""
    text = (
        "[providers.openai]\nheaders = { "
        f'"X-Org" = "acme", "Authorization: Bearer {CANARY}" = "", "{CANARY}\\u00e9" = "\\n" }}\n'
    )
    with pytest.raises(ValidationError) as info:
        _load(tmp_path, text, {})
    assert "LEAKCANARY" not in str(info.value)
    said = [(f.field, f.message) for f in info.value.fields]
    not_a_name = "name is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only): "
    assert said == [
        (
            "providers.openai.headers",
            f"header 2's {not_a_name}it holds ':' and a space (a header is \"Name\" = "
            '"value", not "Name: value"); the name is not shown',
        ),
        (
            "providers.openai.headers",
            f"header 3's {not_a_name}it holds U+00E9; the name is not shown",
        ),
        (
            "providers.openai.headers",
            "header 3's value must be visible ASCII, spaces and tabs (no line break or other "
            "control character, no letter beyond ASCII); the value is not shown",
        ),
    ]
