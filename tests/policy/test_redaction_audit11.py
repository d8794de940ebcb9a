"""Redaction, eleventh audit: numbers and addresses glued to letters of other scripts;
a private key's header mentioned in prose (as before it: to its END line); passwords in
any script; ssh's options before ``user@host``; the router's keys held back only where
one may be arriving; more card networks and separators; the domains reserved for
examples; keys and tokens named without a provider's prefix.

Each case is checked whole and streamed, in two pieces cut at every place and one
character at a time. Secrets below are fake and split into pieces so that secret
scanners leave this file alone.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy._known import KnownValues
from switchman.policy._redaction import StreamRedactor, redact, tag
from tests.policy._streamed import check
from tests.policy.test_known import streams_as_whole

CARD, PHONE, EMAIL = tag("card_number"), tag("phone"), tag("email")
PW, KEY, PEM, URL_PW = tag("password"), tag("api_key"), tag("private_key"), tag("url_password")


def luhn(prefix: str, n: int) -> str:
    """A number of ``n`` digits starting with ``prefix``, its last the Luhn check digit."""
    body = prefix + "0" * (n - 1 - len(prefix))
    total = 0
    for k, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if k % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


# -- 1: numbers glued to letters of other scripts ---------------------------------------

VISA = "4111" + "1111" * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"卡号{VISA}。", f"卡号{CARD}。"),
        ("カード番号4111 1111 1111 1111です", f"カード番号{CARD}です"),
        ("请拨打+1415" + "5552671联系我们", f"请拨打{PHONE}联系我们"),
        ("тел+7495" + "1234567", f"тел{PHONE}"),
        ("번호4111-1111-1111-1111입니다", f"번호{CARD}입니다"),
        ("전화 +44 20 7946 0958로", f"전화 {PHONE}로"),
    ],
)
def test_a_number_glued_to_another_scripts_letters_is_found(text: str, expected: str) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    "text", [f"order{VISA} shipped", f"café{VISA}", f"x_{VISA}", "v2+14155552671"]
)
def test_a_number_glued_to_a_latin_word_is_still_none(text: str) -> None:
    check(text, text, {})


# -- 2: an address ends where the script changes ----------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "请发送邮件至support@acme.com我们会在二十四小时内回复",
            f"请发送邮件至{EMAIL}我们会在二十四小时内回复",
        ),
        ("이메일은test@acme.io입니다", f"이메일은{EMAIL}입니다"),
        ("пишите:ivan@mail.ru,спасибо", f"пишите:{EMAIL},спасибо"),
        ("mail müller@bücher.de now", f"mail {EMAIL} now"),  # accented Latin: one script
        ("用户@例子.广告 ok", f"{EMAIL} ok"),  # wholly another script: one address
        ("邮件用户@例子.cn。", f"{EMAIL}。"),
        ("postgres://u:" + "CjkPw77x@主机.cn/db", f"postgres://u:{URL_PW}@主机.cn/db"),
    ],
)
def test_an_address_ends_where_the_script_changes(text: str, expected: str) -> None:
    check(text, expected)


# -- 3: a private key's header in prose ---------------------------------------------------

BODY = "\n".join(["MIIEowIBAAKCAQEA" * 4, "q7Hk2mP9qR4sT6vW" * 4, "x8Y1zA3bC5dE7fG=="])
KEY_PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + BODY + "\n-----END RSA " + "PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # without an END line: the header's line, but not the paragraph after it
            "The file starts with -----BEGIN OPENSSH "
            + "PRIVATE KEY----- and then base64 lines\n\nNext paragraph",
            f"The file starts with {PEM}\n\nNext paragraph",
        ),
        (  # with one: the header to its END line, whatever lies between
            "A key starts with `-----BEGIN RSA PRIVATE KEY-----` and ends with "
            "`-----END RSA PRIVATE KEY-----`; never commit it.",
            f"A key starts with `{PEM}`; never commit it.",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nyour key goes here\n-----END RSA PRIVATE KEY-----",
            PEM,
        ),
        (  # a mention, then a real key: the mention's header reaches the key's END
            "It starts with -----BEGIN RSA PRIVATE KEY----- like this:\n\n" + KEY_PEM + "\nok",
            f"It starts with {PEM}\nok",
        ),
        (  # without its END: the header and its base64 lines
            "-----BEGIN RSA PRIVATE KEY-----\n" + BODY + "\n\nThat was the key.",
            f"{PEM}\n\nThat was the key.",
        ),
    ],
)
def test_a_header_takes_what_lies_before_its_end_line(text: str, expected: str) -> None:
    check(text, expected)


@pytest.mark.parametrize(
    "key",
    [
        KEY_PEM,
        # armor headers (their values hold spaces) and the blank line after them
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
        "0A1B2C3D\n\n" + BODY + "\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\nComment: my key\n\n"
        + BODY
        + "\n=Ab12\n-----END PGP PRIVATE KEY BLOCK-----",
        # indented (YAML's |), and pasted on one line (newlines become spaces)
        "  -----BEGIN EC PRIVATE KEY-----\n  " + BODY.replace("\n", "\n  ") + "\n"
        "  -----END EC PRIVATE KEY-----",
        KEY_PEM.replace("\n", " "),
        # a JSON string's escapes
        '"-----BEGIN PRIVATE KEY-----\\n'
        + BODY.replace("\n", "\\n")
        + '\\n-----END PRIVATE KEY-----\\n"',
        # and its armor headers, on no lines of their own
        '{"k": "-----BEGIN RSA PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\nDEK-Info: AES-128-CBC,'
        + "0A1B\\n\\n"
        + BODY.replace("\n", "\\n")
        + '\\n-----END RSA PRIVATE KEY-----\\n"}',
    ],
)
def test_a_real_key_is_caught_whole_in_every_chunking(key: str) -> None:
    check(f"key:\n{key}\nand after it, words.", f"key:\n{redact(key).text}\nand after it, words.")
    assert redact(key).counts == {"private_key": 1}
    assert "MIIE" not in redact(key).text


def test_a_header_in_prose_holds_a_stream_to_its_end_or_the_bound() -> None:
    """A header keeps what follows it from a stream until its END line, or for
    ``PEM_HOLD_LIMIT`` characters (whatever lies between may be the key)."""
    redactor = StreamRedactor()
    text = "It starts with -----BEGIN RSA PRIVATE KEY----- as its first line. " + "Words. " * 50
    out = "".join(redactor.feed(text[i : i + 4]) for i in range(0, len(text), 4))
    assert out == "It starts with "
    assert out + redactor.flush() == redact(text).text


# -- 4: passwords in any script -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password: Contrase" + "ña2024!", f"password: {PW}"),
        ("password=паро" + "ль2024!", f"password={PW}"),
        ('"password": "паро' + 'ль 2024"', f'"password": "{PW}"'),
        ("DB_PASSWORD='Pässwört" + "99' ok", f"DB_PASSWORD='{PW}' ok"),
        ("password: abc123!" + "密码 ok", f"password: {PW}密码 ok"),  # up to the Chinese
    ],
)
def test_a_password_in_any_script_is_redacted(text: str, expected: str) -> None:
    check(text, expected, {"password": 1})


@pytest.mark.parametrize(
    "text",
    [
        "password: müssen mindestens acht Zeichen",
        "password\uff1a値123",
        "password: <пароль>",
        "Password: 密码" + "abc123",  # a bare value starting in Chinese: prose
    ],
)
def test_prose_and_placeholders_in_other_scripts_are_left(text: str) -> None:
    check(text, text, {})


# -- 5: ssh's options before user@host ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "ssh -i ~/.ssh/key.pem ec2-user@ec2-54-1-2-3.compute-1.amazonaws.com",
        "ssh -p 2222 deploy@web01.acme.com",
        "ssh -o StrictHostKeyChecking=no admin@server.corp.net",
        "sftp -P 2022 bob@files.acme.io",
        "ssh-copy-id user@server.acme.com",
        "ssh -J bastion@jump.corp.net admin@internal",
        "ssh -v -A -p 22 root@box.acme.io uptime",
        "scp -r -P 2222 ./dist deploy@web01.acme.com:/srv/app",
    ],
)
def test_ssh_options_before_the_address_leave_it(text: str) -> None:
    check(text, text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh -p 2222\nann@acme.io", f"ssh -p 2222\n{EMAIL}"),  # another line
        ("ssh to the box, then mail ann@acme.io", f"ssh to the box, then mail {EMAIL}"),
        ("use - then mail ann@acme.io", f"use - then mail {EMAIL}"),
    ],
)
def test_an_address_after_other_words_is_still_mail(text: str, expected: str) -> None:
    check(text, expected)


# -- 6: the router's keys, redaction off --------------------------------------------------

LONG_KEY = "sk-proj-" + "A1" * 78


def test_known_values_go_out_at_once_where_no_key_may_be_arriving() -> None:
    stream = KnownValues((LONG_KEY,))
    assert stream.feed("The quick ") == "The quick "
    assert stream.feed("brown fox sk") == "brown fox "  # "sk" may start the key
    assert stream.feed("y is blue. ") == "sky is blue. "
    assert stream.feed(LONG_KEY[:50]) == ""
    assert stream.feed(LONG_KEY[50:] + " done") == f"{KEY} done"
    assert stream.flush() == ""
    assert stream.counts == {"api_key": 1}


OVERLAPPING = ("KEYAAAA0000-1", "0000-1BBBBKEY", "-1BBBB", "AAAA0000")


@given(
    pieces=st.lists(st.sampled_from([*OVERLAPPING, "KEYAAAA", "0000", "-1", "BBBB", " ", "x"])),
    cuts=st.lists(st.integers(min_value=1, max_value=9), min_size=1),
)
@settings(max_examples=300, deadline=None)
def test_known_values_stream_as_whole_holding_only_a_secrets_start(
    pieces: list[str], cuts: list[int]
) -> None:
    streams_as_whole(OVERLAPPING, "".join(pieces), cuts)


# -- 7: card networks and separators ------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        luhn("6759", 16),  # Maestro
        luhn("6761", 19),
        luhn("2200", 16),  # Mir
        luhn("2204", 19),
        luhn("6521", 16),  # RuPay
        luhn("8100", 16),
        luhn("5085", 16),
        luhn("9792", 16),  # Troy
        luhn("6362", 16),  # Elo
        luhn("5061", 19),  # Verve
    ],
)
def test_more_networks_cards_are_found(number: str) -> None:
    check(f"card {number} ok", f"card {CARD} ok", {"card_number": 1})
    grouped = " ".join(number[k : k + 4] for k in range(0, len(number), 4))
    check(f"card {grouped} ok", f"card {CARD} ok", {"card_number": 1})


@pytest.mark.parametrize(
    "number", [luhn("9100", 16), luhn("7000", 16), luhn("8100", 15), luhn("5018", 13)]
)
def test_other_prefixes_and_lengths_are_no_cards(number: str) -> None:
    check(f"id {number} ok", f"id {number} ok", {})


@pytest.mark.parametrize("space", ["\u00a0", "\u2009", "\u202f"])
def test_cards_and_phones_grouped_by_other_spaces_are_found(space: str) -> None:
    check(f"card {space.join(['4111', '1111', '1111', '1111'])} ok", f"card {CARD} ok")
    check(f"call +1{space}415{space}555{space}2671 now", f"call {PHONE} now", {"phone": 1})
    check(f"call (415){space}555-2671 now", f"call {PHONE} now", {"phone": 1})


@pytest.mark.parametrize("dash", ["\u2011", "\u2013"])
def test_phones_grouped_by_other_dashes_are_found(dash: str) -> None:
    check(f"call 415{dash}555{dash}2671 now", f"call {PHONE} now", {"phone": 1})
    check(f"call +44 20{dash}7946{dash}0958 now", f"call {PHONE} now", {"phone": 1})


def test_a_card_grouped_by_mixed_separators_is_none() -> None:
    text = "4111 1111\u20091111-1111"
    check(text, text, {})


# -- 8: the domains reserved for examples -------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "user@example.com",
        "Jane.Doe@Example.COM",
        "ops@mail.example.org",
        "a@example.net",
        "x@foo.example",
        "y@ci.test",
        "z@nowhere.invalid",
        "w@host.localhost",
    ],
)
def test_an_address_at_a_reserved_domain_is_left(address: str) -> None:
    check(f"Send mail to {address} (replace it).", f"Send mail to {address} (replace it).", {})


@pytest.mark.parametrize(
    "address", ["user@example.community", "user@myexample.com", "a@example.co", "b@test.io"]
)
def test_an_address_at_another_domain_is_mail(address: str) -> None:
    check(f"mail {address} now", f"mail {EMAIL} now", {"email": 1})


# -- 9: keys and tokens named without a provider's prefix --------------------------------

NAMED = [
    ("DATADOG_API_KEY=", "3f9a8b7c6d5e4f3a" + "2b1c0d9e8f7a6b5c", ""),
    ("api_key: ", "q7Hk2mP9qR4sT6vW" + "8xY1", ""),
    ('"apiKey": "', "q7Hk2mP9qR4sT6vW" + "8xY1", '"'),
    ("x-api-key: ", "7Hk2mP9qR4sT6vW8" + "xY1zA3bC", ""),
    ("--api-key=", "7Hk2mP9qR4sT6vW8" + "xY1zA3bC", " run"),
    ("GITHUB_TOKEN=", "abc123def456ghi7" + "89jkl012mno345pqr678", ""),
    ("TWILIO_AUTH_TOKEN = '", "b7c9d1e3f5a7b9c1" + "d3e5f7a9b1c3d5e7", "'"),
    ('"access_token": "', "ya29.a0AfH6SMBx3" + "k9Q2w8ZplR7", '",'),
    ("refresh_token: ", "1//0gF7kq2Lp9Wv4" + "Tn8Rk3Jp6Hs", ""),
    ("client_secret: ", "Zq8vN2wX4yT6uR1s" + "P3oM5nL7", ""),
    ("API_SECRET=", "9f8e7d6c5b4a3928" + "1706f5e4d3c2b1a0", ""),
    ("clientSecret: '", "Zq8vN2wX4yT6uR1s" + "P3oM5nL7", "'"),
    ("AccountName=acct;AccountKey=", "Eby8vdM02xNOcqFl" + "qUwJPLlmEtlCDXJ1OUzFT50uS==", ";"),
    ("passphrase: ", "Blue-Horse-77-St" + "aple", ""),
    ("Authorization: Token ", "9944b09199c62bcf" + "9418ad846dd0e4bbdfc6ee4b", ""),
]


@pytest.mark.parametrize(("name", "value", "after"), NAMED)
def test_a_key_named_without_a_prefix_is_redacted(name: str, value: str, after: str) -> None:
    check(f"{name}{value}{after}", f"{name}{KEY}{after}", {"api_key": 1})


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=100",
        "max_tokens: 4096",
        "token: str",
        "api_key: str",
        'api_key=os.environ["API_KEY"]',
        'api_key="${OPENAI_API_KEY}"',
        "api_key: <your-api-key>",
        "refresh_token: YOUR_REFRESH_TOKEN",
        "client_secret = settings.CLIENT_SECRET",
        "apiKey: process.env.API_KEY",
        "max_token_length: 12345678901234567",  # no letter
        "the api key 12345678abcdefgh is in the vault",  # no name, no separator
        "GITHUB_TOKEN=abc def 1234567890123",
        "The password is Vm8#kq2Lp!zR for now",  # (not asked)
    ],
)
def test_code_types_placeholders_and_prose_are_left(text: str) -> None:
    check(text, text, {})
