"""Which of a provider's configured values are credentials: the API key and the values of
headers named like one (Azure's ``api-key``, a proxy's token). They are kept out of every
message switchman shows (found by value), and a credential header stands in for the key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from switchman.catalog._spec import ProviderSpec

#: the words of a header's name (split at ``-`` and ``_``, and each also at camelCase's
#: capitals) that say it carries a credential: ``X-Api-Key``, ``xApiKey``, ``X-Proxy-Token``,
#: ``Authorization``, ``ProxyAuthorization``, ``X-Passphrase``; not ``X-Passthrough`` or
#: ``X-Bypass-Cache``
_CREDENTIAL_WORDS: Final = re.compile(
    r"(?:auth(?:orization|entication|n|z)?"
    r"|(?:api|access|secret|private|app|client|account|master|service|subscription)?keys?"
    r"|(?:access|refresh|id|auth|bearer|session|api|csrf|xsrf)?tokens?"
    r"|(?:client|app|api|shared)?secrets?|pass(?:word|wd|phrase)?|pwd|cookie"
    r"|credentials?|signature|sig|session|sid|jwt|hmac|private)",
    re.I,
)


#: the parts of a camelCase word: ``xApiKey`` is x, Api, Key; ``XAuthToken`` X, Auth, Token;
#: ``APIKey`` API, Key
_CAMEL_PARTS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


#: what a credential header's name says run together, in any case (``XAPIKEY``,
#: ``X-AUTHTOKEN``): words no ordinary header's name holds
_RUN_TOGETHER: Final = re.compile(
    r"apikey|accesskey|secretkey|privatekey|subscriptionkey|authtoken|accesstoken|apitoken"
    r"|sessiontoken|bearertoken|password|passwd|passphrase|authorization|credential"
)


def credential_header(name: str) -> bool:
    """Whether a header named ``name`` carries a credential (by a word of its name, or a
    part of a camelCase word: ``xApiKey``, ``XAuthToken``)."""
    return _RUN_TOGETHER.search(name.lower()) is not None or any(
        _CREDENTIAL_WORDS.fullmatch(part)
        for word in re.split(r"[-_]", name)
        for part in (word, *_CAMEL_PARTS.findall(word))
    )


#: a credential (a header's value, a provider's key) shorter than this is not taken for a
#: secret: replacing it wherever it appears would redact ordinary words (``Basic``, a short
#: tenant name, a local server's placeholder key ``EMPTY``); no provider issues such keys
CREDENTIAL_MIN: Final = 8
#: an authorization scheme's name, before its credentials (RFC 9110's token)
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*")


def header_credentials(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials among a provider's (or a request's) ``headers``, longest first:
    the values of headers named like a credential (``auth``, ``key``, ``token``,
    ``secret``, ``pass``, ``cookie``, ``credential``, ``signature``, ``session``), and
    for a scheme's (``Bearer X``, ``Basic X``, ``Token X``, ``ApiKey X``...) also ``X``, each
    word of it; none shorter than ``CREDENTIAL_MIN``. Other headers
    (``anthropic-version: 2023-06-01``) are no secret. ``()`` for no headers."""
    found: set[str] = set()
    for name, raw in headers.items():
        if not credential_header(name):
            continue
        value = raw.strip()
        scheme, _, token = value.partition(" ")
        words = token.split() if _SCHEME.fullmatch(scheme) else []
        for v in (value, *words):
            if len(v) >= CREDENTIAL_MIN:
                found.add(v)
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def provider_secrets(provider: ProviderSpec, key: str | None) -> tuple[str, ...]:
    """Every credential ``provider`` is configured with: its API ``key`` (as
    ``api_key`` read it) and its ``header_credentials``, longest first (so one holding
    another is replaced whole); none shorter than ``CREDENTIAL_MIN`` (a local server's
    placeholder key, ``EMPTY``, is no secret and a word errors use). ``()`` for a
    provider with none (the simulator)."""
    if key is not None and len(key) < CREDENTIAL_MIN:
        key = None
    if not provider.headers:
        return (key,) if key else ()
    found = set(header_credentials(provider.headers))
    if key:
        found.add(key)
    return tuple(sorted(found, key=lambda v: (-len(v), v)))
