"""Tests for switchman.policy._redaction.

Speed, measured on the shared 2-core dev box (timeit, not asserted here):
``redact()`` on a 300-character prose answer with no trigger takes about 1.3 µs;
with an email in it about 9 µs; with a phone number about 40 µs (phonenumbers
itself is ~25 µs per look-up); a 2,000-line table of numbers (43 KB) about 1.5 ms.
What is asserted instead is the work done: phonenumbers look-ups and break tests.

Secrets below are fake and split into pieces so that secret scanners leave this
file alone.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman._result import RedactionItem, RedactionReport
from switchman.policy import _redact_breaks
from switchman.policy._redaction import (
    KINDS,
    NUMBER_HOLD_LIMIT,
    PEM_HOLD_LIMIT,
    Redacted,
    StreamRedactor,
    known_secrets,
    redact,
    redaction_report,
    tag,
)

OPENAI_PROJECT = "sk-" + "proj-Xa9Kd82LmQpz7Rt4VbN1cW3eYh6UjF0sGi5oPq2LkMn8AbCdEfGh"
OPENAI_LEGACY = "sk-" + "4f8Ke2LmQpz7Rt4VbN1cW3eYh6UjF0sGi5oPq2LkMn8AbCdE"
ANTHROPIC = "sk-" + "ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrSt-AAAA"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SESSION = "ASIA" + "Y34FZKBOKMUTVV7A"
GITHUB = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
GITHUB_OAUTH = "gho_" + "9aZ3kLm2Qp7Rt4VbN1cW3eYh6UjF0sGi5oPq"
GITHUB_APP = "ghs_" + "Qp7Rt4VbN1cW3eYh6UjF0sGi5oPq9aZ3kLm2"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-" + "2233445566-7788990011-AbCdEf123456"
STRIPE = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RESTRICTED = "rk_" + "live_51H8abcdEFGHijklMNOPqrst"
GOOGLE = "AI" + "zaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"
# the keys of the other providers switchman calls, in their documented shapes
XAI = (
    "xai"
    + "-"
    + "Zq8Tn2LkW4vB7yR1mC5xH9pD3sF6gJ0aQ2eU8iO4tY7wE1rK5zX9cV3bN6mL0hG2jP5sA8dF1gH4jK7lZ0x"
)
GROQ = "gsk" + "_" + "b7Xq2Lm9Wv4Tn8Rk3Jp6Hs1Df5Ga0Ze7Yc2Ub9Vi4Oq8Mw3Nx6Pt1Ks5"
PERPLEXITY = "pplx" + "-" + "4f9c2b7e1a8d3f6c0b5e9a2d7f4c1b8e6a3d0f5c9b2e7a4d"
TOGETHER = "tgp" + "_v1_" + "Kx3Lm8Qw2Er7Ty4Ui9Op1As6Df0Gh5Jk2Lz8Xc"

JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
JWT_UNSIGNED = "eyJ" + "hbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."
JWT_RS = (
    "eyJ" + "raWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJpc3MiOiJodHRwczovL2F1dGgifQ.c2lnbmF0dXJlLWJ5dGVz"
)

RSA_KEY = (
    "-----BEGIN RSA " + "PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA7bq9kzXQ0p1V8n2Yc3sT+4uLw/5HjR6mE9dF0gAaBbCcDd==\n"
    "abcDEF123+/xyzXYZ789\n"
    "-----END RSA PRIVATE KEY-----"
)
OPENSSH_KEY = (
    "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBd3fk2pq7r9lXyZ0u\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
ENCRYPTED_KEY = (
    "-----BEGIN EC " + "PRIVATE KEY-----\r\n"
    "Proc-Type: 4,ENCRYPTED\r\n"
    "DEK-Info: AES-128-CBC,2A5E4B7C9D1F3E6A\r\n"
    "\r\n"
    "MHcCAQEEIBkg4LVWM9nuwNSk3yBlLQ0xV+2sZf6sLZgOJ4XPzPsUoAoGCCqGSM49\r\n"
    "-----END EC PRIVATE KEY-----"
)
PKCS8_KEY = (
    "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
)
PGP_KEY = (
    "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\n"
    "Version: GnuPG v2\n\nlQOYBF3abc123DEF\n=x1Yz\n"
    "-----END PGP PRIVATE KEY BLOCK-----"
)

SECRETS: dict[str, list[str]] = {
    "api_key": [
        OPENAI_PROJECT,
        OPENAI_LEGACY,
        ANTHROPIC,
        AWS,
        AWS_SESSION,
        GITHUB,
        GITHUB_OAUTH,
        GITHUB_APP,
        GITHUB_PAT,
        SLACK,
        SLACK_USER,
        STRIPE,
        STRIPE_RESTRICTED,
        GOOGLE,
        XAI,
        GROQ,
        PERPLEXITY,
        TOGETHER,
    ],
    "jwt": [JWT, JWT_UNSIGNED, JWT_RS],
    "private_key": [RSA_KEY, OPENSSH_KEY, ENCRYPTED_KEY, PKCS8_KEY, PGP_KEY],
    "email": [
        "jane.doe@acme.io",
        "first.last+billing@sub.example.co.uk",
        "josé.garcía@correo.es",
        "ops_team-2@my-company.io",
    ],
    "phone": [
        "+1 (415) 555-2671",
        "+1 415 555 2671",
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "00 49 30 901820",
        "+44 (0)20 7946 0958",
        "415.555.2671",
        "1 (800) 555-0199",
        "+49 30 901820",
        "+33 1 42 68 53 00",
        "+81 3-1234-5678",
        "+14155552671",
        "+44 2079 460958",
        "(415) 555-2671",
        "415-555-2671",
        "1-800-555-0199",
    ],
    "card_number": [
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "4012888888881881",
    ],
}

FALSE_POSITIVES = [
    "Your order 123456789 ships on 2026-11-25.",
    "order number 4155552671",
    "Upgrade to v1.2.3 for $1,299.99.",
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "Keep a token budget.",
    "I hate to be the bearer of bad news.",
    "The bearer token goes in a header.",
    "The key insight is simple.",
    "Install sk-learn, or scikit-learn.",
    "Set Authorization: Bearer YOUR_API_KEY",
    "Authorization: Bearer <token>",
    "Bearer $OPENAI_API_KEY",
    "OPENAI_API_KEY=sk-your-api-key-goes-here-placeholder",
    "The server is at 192.168.100.200 on port 8080.",
    "pi is 3.14159265358979",
    "In 2019 2020 2021 sales grew.",
    "Count: 1 2 3 4 5 6 7 8 9 10 11 12",
    "card 4111 1111 1111 1112 fails the check",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "@property\ndef name(self) -> str: ...",
    "ssh user@localhost",
    "The ASIA-PACIFIC region",
    "task-1234567890abcdefghijklmn is queued",
    "id 550e8400-e29b-41d4-a716-446655440000",
    "It costs 1 234 567 yen; call at 10:30.",
    "Grüße aus Köln — 日本語のテキスト、русский текст, emoji 🎉 and ünïcödé.",
    # numbers that are not phone or card numbers
    "1415 2002225 2833148375",
    "The numbers 202 555 0143 and 311 are examples",  # spaces alone: not a phone
    "Sample sizes were 1200 3400 5600 across arms.",
    "Population: 8336817 (NYC), 3822238 (LA), 2665039 (Chicago).",
    "Timestamps 1700000000 1700000060 1700000120 in seconds.",
    "IDs: 12345678, 23456789, 34567890.",
    "Use Python 3.11.4 and Node 20.10.0 with npm 10.2.3 please.",
    "It costs 1 299 000 USD, or 1.299.000 EUR in 2024.",
    "points: (12, 34) (56, 78) (90, 12) (34, 56) (78, 90) done",
    "2024-01-15,1299.99,415,5552671\n2024-01-16,1305.50,416,5552672",
    "Years 2221 2222 2223 2224 2225 2226 2227 2228",  # a list, not a Mastercard
    "Order 00123 4567 890 shipped",
    "Zero-padded ids 0049699645 06543843 and 0035294552",
    "0053 0323 00068\n0018 0266 02529",
]


@pytest.mark.parametrize(
    ("kind", "secret"), [(kind, s) for kind, secrets in SECRETS.items() for s in secrets]
)
def test_each_kind_is_redacted_in_context(kind: str, secret: str) -> None:
    done = redact(f"Here you go: {secret} — keep it safe.")
    assert done.text == f"Here you go: {tag(kind)} — keep it safe."
    assert done.counts == {kind: 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Authorization: Bearer abc123def456ghi789jkl012",
            "Authorization: Bearer [REDACTED:bearer_token]",
        ),
        (
            "curl -H 'authorization: bearer ya29.a0AfH6SMBx3fK9-Lq2pZ8wYt7vRn4Uc1Dm'",
            "curl -H 'authorization: bearer [REDACTED:bearer_token]'",
        ),
        ("BEARER\t0123456789abcdefABCDEF.", "BEARER\t[REDACTED:bearer_token]."),
        (f"Bearer {JWT}", "Bearer [REDACTED:bearer_token]"),
        (
            "Use postgres://admin:s3cr3t@db.example.com:5432/app now",
            "Use postgres://admin:[REDACTED:url_password]@db.example.com:5432/app now",
        ),
        ("redis://:hunter2@cache:6379", "redis://:[REDACTED:url_password]@cache:6379"),
        (
            "mongodb+srv://app:Zx9!pass@cluster0.mongodb.net/db",
            "mongodb+srv://app:[REDACTED:url_password]@cluster0.mongodb.net/db",
        ),
        (
            "https://user:p%40ss@example.com/x?y=1",
            "https://user:[REDACTED:url_password]@example.com/x?y=1",
        ),
    ],
)
def test_bearer_and_url_password_keep_their_frame(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_ordinary_text_survives(text: str) -> None:
    done = redact(text)
    assert done.text == text
    assert done.counts == {}


def test_key_needs_realistic_length_and_no_glued_prefix() -> None:
    assert redact("sk-abc123").text == "sk-abc123"
    assert redact("mask-" + OPENAI_LEGACY[3:]).counts == {}
    assert redact("x" + GITHUB).counts == {}
    assert redact(AWS + "X").counts == {}  # AWS ids are exactly 20 characters


def test_unterminated_private_key_is_still_redacted() -> None:
    truncated = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq9kzXQ\nabcDEF123+/xyz"
    done = redact(f"{truncated}\n\n(output was cut). Sorry!")
    assert done.text == "[REDACTED:private_key]\n\n(output was cut). Sorry!"
    assert done.counts == {"private_key": 1}


def test_phone_glued_to_a_following_number_is_found() -> None:
    assert redact("call +1 415 555 2671 2 times").text == "call [REDACTED:phone] 2 times"


def test_card_glued_to_a_following_number_is_found() -> None:
    assert redact("4111 1111 1111 1111 2027").text == "[REDACTED:card_number] 2027"


def test_long_digit_run_is_bounded_work() -> None:
    text = " ".join(str(n) for n in range(1, 2200))
    assert redact(text).text == text


def test_counts_and_report() -> None:
    text = (
        f"{AWS} and {GITHUB}; mail jane@acme.io or bob@acme.org, "
        f"call +44 20 7946 0958, pay with 4111 1111 1111 1111, token {JWT}\n{RSA_KEY}\n"
        "Authorization: Bearer abc123def456ghi789jkl012 at https://u:pw12@h.example.com\n"
        "DB_PASSWORD=Zx9!qL2#vB7w"
    )
    done = redact(text)
    assert done.counts == {
        "api_key": 2,
        "bearer_token": 1,
        "private_key": 1,
        "jwt": 1,
        "url_password": 1,
        "password": 1,
        "email": 2,
        "phone": 1,
        "card_number": 1,
    }
    assert list(done.counts) == list(KINDS)
    secrets = (AWS, GITHUB, JWT, "7946", "4111", "MIIEpAIBAAKCAQEA", "pw12", "abc123def", "Zx9")
    for secret in secrets:
        assert secret not in done.text
    assert done.report() == redaction_report(done.counts)
    assert done.report().items[0] == RedactionItem(kind="api_key", count=2)
    assert redact("nothing here").report() == RedactionReport(performed=False, items=())


def test_redacted_counts_are_read_only() -> None:
    done = redact("a@acme.io")
    with pytest.raises(TypeError):
        done.counts["email"] = 5  # type: ignore[index]
    assert Redacted(text="x", counts={"phone": 0, "email": 2}).counts == {"email": 2}


def test_redaction_is_idempotent() -> None:
    text = f"{STRIPE} {JWT} x@y.example +1 (415) 555-2671 Bearer abc123def456ghi789jkl012"
    once = redact(text)
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


def test_unicode_text() -> None:
    text = "Grüße, Jürgen! Schreib an jürgen.müller@beispiel.de — 日本語 +81 3-1234-5678 です 🎉"
    done = redact(text)
    assert (
        done.text == "Grüße, Jürgen! Schreib an [REDACTED:email] — 日本語 [REDACTED:phone] です 🎉"
    )
    assert _stream(text, [1] * len(text)) == (done.text, done.counts)


# -- streaming -------------------------------------------------------------------------


def _stream(text: str, sizes: list[int]) -> tuple[str, dict[str, int]]:
    """Feed ``text`` in chunks of ``sizes`` (the rest in one), then flush."""
    redactor = StreamRedactor()
    out = []
    pos = 0
    for size in sizes:
        out.append(redactor.feed(text[pos : pos + size]))
        pos += size
    out.append(redactor.feed(text[pos:]))
    out.append(redactor.flush())
    return "".join(out), dict(redactor.counts)


ALL_SECRETS = [(kind, s) for kind, secrets in SECRETS.items() for s in secrets] + [
    ("bearer_token", "Bearer abc123def456ghi789jkl012"),
    ("url_password", "postgres://admin:s3cr3t@db.example.com/app"),
    ("password", 'auth=("admin", "hunter2-pass")'),
    ("password", "HTTPBasicAuth('svc', 'my pass, 9')"),
]


@pytest.mark.parametrize(("kind", "secret"), ALL_SECRETS)
def test_secret_split_across_two_chunks_at_every_point(kind: str, secret: str) -> None:
    text = f"see {secret} ok"
    whole = redact(text)
    assert kind in whole.counts
    for cut in range(len(text) + 1):
        assert _stream(text, [cut]) == (whole.text, whole.counts)


@pytest.mark.parametrize(("kind", "secret"), ALL_SECRETS)
def test_secret_split_across_many_chunks(kind: str, secret: str) -> None:
    text = f"first line\n{secret}\nlast line with {secret} again"
    whole = redact(text)
    assert whole.counts[kind] == 2
    for size in (1, 2, 3, 7):
        assert _stream(text, [size] * (len(text) // size)) == (whole.text, whole.counts)


def test_plain_text_is_emitted_as_it_arrives() -> None:
    redactor = StreamRedactor()
    assert redactor.feed("Hello wor") == "Hello "
    assert redactor.feed("ld, how are you? ") == "world, how are you? "
    assert redactor.feed("Fine") == ""
    assert redactor.flush() == "Fine"
    assert redactor.counts == {}


def test_possible_secret_is_held_until_it_is_decided() -> None:
    redactor = StreamRedactor()
    assert redactor.feed("Your key is " + OPENAI_PROJECT[:20]) == "Your key is "
    assert redactor.feed(OPENAI_PROJECT[20:]) == ""
    assert redactor.feed(" and more") == "[REDACTED:api_key] and "
    assert redactor.counts == {"api_key": 1}
    # a phone number with spaces stays together
    assert redactor.feed(" text: +44 20 ") == "more text: "
    assert redactor.feed("7946 0958 ") == ""  # the digits before a space hold it
    assert redactor.feed("thanks ") == "[REDACTED:phone] thanks "
    # Bearer waits for its token (and an Authorization header's name for its scheme)
    assert redactor.feed("Authorization: ") == ""
    assert redactor.feed("Bearer ") == ""
    assert redactor.feed("abc123def456ghi789jklmno ") == (
        "Authorization: Bearer [REDACTED:bearer_token] "
    )
    assert redactor.flush() == ""
    assert redactor.counts == {"api_key": 1, "phone": 1, "bearer_token": 1}


def test_private_key_is_held_until_its_end_line() -> None:
    redactor = StreamRedactor()
    out = [redactor.feed(line + "\n") for line in ("Here it is:", *RSA_KEY.splitlines())]
    assert out[0] == "Here it is:\n"
    assert all(piece == "" for piece in out[1:-1])
    assert out[-1] == "[REDACTED:private_key]\n"
    # an explanation that only names the header lets go once no key label can follow
    assert redactor.feed("Files start with -----BEGIN ") == "Files start with "
    assert redactor.feed("RSA ") == ""
    assert redactor.feed("and so on ") == "-----BEGIN RSA and so on "
    # a certificate is no secret: it goes out line by line
    assert redactor.feed("-----BEGIN CERTIFICATE-----\n") == "-----BEGIN CERTIFICATE-----\n"
    assert redactor.feed("MIIBszCCAVmgAwIBAgIU\n") == "MIIBszCCAVmgAwIBAgIU\n"


def test_pem_hold_is_bounded() -> None:
    redactor = StreamRedactor()
    header = "-----BEGIN RSA " + "PRIVATE KEY-----\n"
    assert redactor.feed(header) == ""
    line = "QUJD" * 16 + "\n"  # a body's line (prose would end the hold: audit 11)
    lines = 0
    while not (out := redactor.feed(line)):
        lines += 1
    assert PEM_HOLD_LIMIT < len(header) + len(line) * (lines + 1) <= PEM_HOLD_LIMIT + len(line)
    assert out == tag("private_key") + "\n"  # what follows a header without END: its body
    assert redactor.feed("more ") == "more "
    assert redactor.flush() == ""


def test_feed_after_flush_is_an_error() -> None:
    redactor = StreamRedactor()
    assert redactor.feed("") == ""
    assert redactor.flush() == ""
    assert redactor.flush() == ""
    with pytest.raises(ValueError, match="flush"):
        redactor.feed("more")


PIECES = [s for _, s in ALL_SECRETS] + [
    *FALSE_POSITIVES,
    "Bearer",
    "bearer",
    "-----BEGIN",
    "-----END RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----",
    "PRIVATE KEY-----",
    "-----",
    "@",
    "sk-",
    "eyJ",
    "AKIA",
    "https://",
    "4111",
    "+1",
    "555",
    "2671",
    " ",
    "  ",
    "\n",
    "\t",
    "\u00a0",
    "-",
    ".",
    "(",
    ")",
    ":",
    "/",
    "the",
    "token budget",
    "password",
    "DB_PASSWORD=",
    "Secret key",
    '"password": "',
    "Zx9!qL2#vB7w",
    "=",
    '"',
    "日本語",
    "é",
]


@st.composite
def texts_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(PIECES), st.text(max_size=4)),
            max_size=20,
        )
    )
    joiner = draw(st.sampled_from(["", " ", "\n"]))
    text = joiner.join(parts)
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(text)), max_size=30))
    points = sorted(set(cuts))
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    return text, sizes


@settings(max_examples=400, deadline=None)
@given(texts_and_cuts())
def test_stream_equals_whole_for_any_chunking(case: tuple[str, list[int]]) -> None:
    text, sizes = case
    whole = redact(text)
    assert _stream(text, sizes) == (whole.text, whole.counts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([s for _, s in ALL_SECRETS]), min_size=1, max_size=4))
def test_stream_of_one_character_chunks_finds_every_secret(secrets: list[str]) -> None:
    text = "Results:\n" + "\n".join(f"- item {s};" for s in secrets)
    whole = redact(text)
    assert sum(whole.counts.values()) == len(secrets)
    assert _stream(text, [1] * len(text)) == (whole.text, whole.counts)


# -- numbers: false positives, hold-back, work ----------------------------------------


def _cubes_table(lines: int = 2000) -> str:
    return "\n".join(f"{i} {i * i} {i * i * i}" for i in range(1, lines))


def _csv(lines: int = 2000) -> str:
    return "\n".join(
        f"2024-{m % 12 + 1:02d}-{m % 28 + 1:02d},{m * 37 % 9973}.{m % 100:02d},{m * m},{m * 7919}"
        for m in range(1, lines)
    )


def _one_line_list(count: int = 3000) -> str:
    return " ".join(str(n) for n in range(1, count)) + "."


@pytest.mark.parametrize("text", [_cubes_table(), _csv(), _one_line_list()])
def test_number_tables_and_csv_survive(text: str) -> None:
    done = redact(text)
    assert done.counts == {}
    assert done.text == text


def _max_lag(text: str, sizes: list[int]) -> int:
    """Feed ``text`` (which has nothing to redact) in chunks of ``sizes`` (the rest in
    one): the most characters fed but not yet returned, up to the last whitespace fed."""
    redactor = StreamRedactor()
    emitted = fed = worst = 0
    for size in [*sizes, len(text)]:
        out = redactor.feed(text[fed : fed + size])
        assert text.startswith(out, emitted)
        emitted += len(out)
        fed = min(fed + size, len(text))
        last_ws = max(text.rfind(ch, emitted, fed) for ch in " \n\u00a0")
        worst = max(worst, last_ws + 1 - emitted)
    assert redactor.flush() == text[emitted:]
    return worst


def _chunks(text: str, size: int) -> list[int]:
    return [size] * (len(text) // size)


@pytest.mark.parametrize(
    "text",
    [
        _cubes_table(),
        _csv(),
        _one_line_list(),
        " ".join(f"x={n}" for n in range(2000)),  # runs restarting after every "="
        " ".join(f"({n})" for n in range(2000)),  # a "(" may start a number
        " ".join(f"{n:04d}" for n in range(2000)),
    ],
)
@pytest.mark.parametrize("size", [1, 3, 16])
def test_numeric_hold_back_is_bounded(text: str, size: int) -> None:
    assert _max_lag(text, _chunks(text, size)) <= NUMBER_HOLD_LIMIT


def test_a_plain_list_of_numbers_lets_go_every_few_numbers() -> None:
    numbers, table = _one_line_list(), _cubes_table()
    assert _max_lag(numbers, _chunks(numbers, 1)) <= 40
    assert _max_lag(table, _chunks(table, 1)) <= 24  # a line


def test_number_at_the_end_of_a_long_list_is_still_caught() -> None:
    numbers = " ".join(str(n) for n in range(1, 60))
    for secret, kind in [
        ("+1 415 555 2671", "phone"),
        ("(415) 555-2671", "phone"),
        ("+44 20 7946 0958", "phone"),
    ]:
        text = f"{numbers} {secret} end"
        whole = redact(text)
        assert whole.counts == {kind: 1}
        assert whole.text == f"{numbers} {tag(kind)} end"
        assert _stream(text, [1] * len(text)) == (whole.text, whole.counts)


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = phonenumbers.parse

    def counting(number: str, region: str | None = None) -> phonenumbers.PhoneNumber:
        calls.append(number)
        return real(number, region)

    monkeypatch.setattr(phonenumbers, "parse", counting)
    return calls


def test_a_number_table_costs_no_phone_look_up(parse_calls: list[str]) -> None:
    table = _cubes_table()
    assert redact(table).text == table
    redactor = StreamRedactor()
    out = [redactor.feed(line) for line in table.splitlines(keepends=True)]
    out.append(redactor.flush())
    assert "".join(out) == table
    assert redact(_csv()).counts == {}
    assert parse_calls == []


def test_phone_look_ups_are_one_per_number(parse_calls: list[str]) -> None:
    lines = [f"{n} call (415) 555-{n:04d} or +44 20 7946 {n:04d}" for n in range(100, 200)]
    done = redact("\n".join(lines))
    assert done.counts == {"phone": 200}
    assert len(parse_calls) == 200
    parse_calls.clear()
    # a "+" run glued to more digits: a few prefixes of it, never one per group
    assert redact("+1 " + " ".join("7" * 30)).counts == {}
    assert 0 < len(parse_calls) <= 8


def test_break_tests_grow_linearly_with_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = _redact_breaks._number_held

    def counting(text: str, b: int, c: int) -> bool:
        nonlocal calls
        calls += 1
        return real(text, b, c)

    monkeypatch.setattr(_redact_breaks, "_number_held", counting)
    for text in (_one_line_list(), _cubes_table()):
        calls = 0
        assert _stream(text, [1] * len(text)) == (text, {})
        spaces = text.count(" ") + text.count("\n")
        # about once per cut: no rescans of what is held back
        assert calls <= 3 * spaces


NUMBER_PIECES = [
    "+1",
    "+44",
    "00",
    "0044",
    "(415)",
    "415",
    "555-2671",
    "4111",
    "1111",
    "7946",
    "0958",
    "x=",
    "a1",
    "2024",
    "1.2.3",
    "12/29",
    "1 2 3",
    "(",
    ")",
    "-",
    ".",
    "+",
]


@st.composite
def numeric_texts_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(NUMBER_PIECES),
                st.integers(min_value=0, max_value=99_999).map(str),
                st.text(alphabet="0123456789 -.()+\u00a0\n", max_size=6),
            ),
            max_size=60,
        )
    )
    seps = draw(
        st.lists(
            st.sampled_from(["", " ", " ", "  ", "\n", "-", "\u00a0"]),
            min_size=len(parts),
            max_size=len(parts),
        )
    )
    text = "".join(p + s for p, s in zip(parts, seps, strict=True))
    cuts = draw(st.lists(st.integers(min_value=0, max_value=len(text)), max_size=30))
    points = sorted(set(cuts))
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    return text, sizes


@settings(max_examples=300, deadline=None)
@given(numeric_texts_and_cuts())
def test_numeric_stream_equals_whole_with_bounded_hold(case: tuple[str, list[int]]) -> None:
    text, sizes = case
    whole = redact(text)
    assert _stream(text, sizes) == (whole.text, whole.counts)
    if not whole.counts:  # then what comes out is what went in, so the lag shows
        assert _max_lag(text, sizes) <= NUMBER_HOLD_LIMIT


# -- secrets known by value ---------------------------------------------------------------

# a key of no recognisable shape (Mistral's are 32 letters and digits), and a gateway key
MISTRAL_LIKE = "Qm7Xk2Lp9Wv4Tn8Rk3Jp6Hs1Df5Ga0Ze"
GATEWAY_SECRET = "team-a-gateway-secret-7731"
KNOWN = known_secrets([MISTRAL_LIKE, GATEWAY_SECRET, None, "short-one", "with space inside!"])


def test_known_secrets_are_the_long_ones_without_whitespace_longest_first() -> None:
    assert KNOWN == (MISTRAL_LIKE, GATEWAY_SECRET)
    assert known_secrets(["abc" * 5, "abc" * 4 + "x" * 10]) == ("abc" * 4 + "x" * 10, "abc" * 5)


def test_a_configured_secret_is_redacted_by_value_whatever_its_shape() -> None:
    text = f"Your key is {MISTRAL_LIKE}, and the gateway's ({GATEWAY_SECRET}) too: {MISTRAL_LIKE}"
    done = redact(text, KNOWN)
    assert MISTRAL_LIKE not in done.text and GATEWAY_SECRET not in done.text
    assert done.text.count("[REDACTED:api_key]") == 3
    assert dict(done.counts) == {"api_key": 3}
    # without them, the same text has nothing of a known shape in it
    assert redact(text).text == text
    # other secrets are still found, and counted beside them
    mixed = redact(f"mail ops@acme.io with {MISTRAL_LIKE}", KNOWN)
    assert dict(mixed.counts) == {"api_key": 1, "email": 1}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from([MISTRAL_LIKE, GATEWAY_SECRET, *PIECES]), st.text(max_size=4)),
        max_size=16,
    ),
    st.sampled_from(["", " ", "\n", "x"]),
    st.lists(st.integers(min_value=0, max_value=400), max_size=30),
)
def test_known_secrets_stream_as_they_redact_whole(
    parts: list[str], joiner: str, cuts: list[int]
) -> None:
    text = joiner.join(parts)
    points = sorted({c for c in cuts if c <= len(text)})
    sizes = [b - a for a, b in zip([0, *points], points, strict=False)]
    whole = redact(text, KNOWN)
    redactor = StreamRedactor(KNOWN)
    out, pos = [], 0
    for size in sizes:
        out.append(redactor.feed(text[pos : pos + size]))
        pos += size
    out.append(redactor.feed(text[pos:]))
    out.append(redactor.flush())
    assert ("".join(out), dict(redactor.counts)) == (whole.text, dict(whole.counts))
    assert MISTRAL_LIKE not in whole.text and GATEWAY_SECRET not in whole.text
