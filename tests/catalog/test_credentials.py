"""Which header names carry a credential: a word of the name, split at ``-`` and ``_`` and
at camelCase's capitals; and their values are among the provider's secrets."""

from __future__ import annotations

import pytest

from switchman.catalog import ProviderSpec
from switchman.catalog._credentials import credential_header, header_credentials, provider_secrets


@pytest.mark.parametrize(
    "name",
    [
        "xApiKey",
        "XAuthToken",
        "ProxyAuthorization",
        "APIKey",
        "x-ClientSecret",
        "sessionId",
        "XAPIKEY",  # (in capitals run together: no camelCase to split at)
        "X-AUTHTOKEN",
        "x-subscriptionkey",
    ],
)
def test_a_camel_case_header_name_is_known_for_a_credential(name: str) -> None:
    """Only ``-`` and ``_`` split a name: ``xApiKey``'s value was sent, and shown wherever an
    upstream echoed it, as no secret."""
    assert credential_header(name)
    assert header_credentials({name: "camelSECRET-0123456789"}) == ("camelSECRET-0123456789",)
    provider = ProviderSpec(
        name="p", kind="openai", base_url="http://127.0.0.1:9/v1", headers={name: "hdrSECRET-42"}
    )
    assert provider_secrets(provider, None) == ("hdrSECRET-42",)


@pytest.mark.parametrize(
    "name",
    [
        "X-Passthrough",
        "X-Bypass-Cache",
        "anthropic-version",
        "OpenAI-Organization",
        "X-RapidAPI-Host",
        "X-Request-Id",
        "X-Monkey-Id",
        "AuthorName",
        "X-MONKEY-ID",
        "X-PASSTHROUGH",
    ],
)
def test_other_header_names_are_still_no_credential(name: str) -> None:
    assert not credential_header(name)
    assert header_credentials({name: "plain-value-0123456789"}) == ()
