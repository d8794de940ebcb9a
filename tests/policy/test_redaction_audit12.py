"""Redaction, twelfth audit: what the eleventh's changes broke. A private key is taken
as before them (a header to its END line, whatever lies between; without one, its body
up to a blank line and prose); a bare value in Chinese, Japanese or Korean, or in another
script without a digit and a symbol, is prose; Maestro numbers of 13 to 15 digits are
left; a page's or idempotency key's token, a placeholder and a JWT after a token's name
are no API key; ssh's options end at prose; QQ mail glued to Chinese.

Each case is checked whole and streamed, in two pieces cut at every place and one
character at a time. Secrets below are fake and split into pieces so that secret
scanners leave this file alone.
"""

from __future__ import annotations

import time

import pytest

from switchman.policy._redaction import redact, tag
from tests.policy._streamed import check

PEM, PW, KEY, JWT = tag("private_key"), tag("password"), tag("api_key"), tag("jwt")
EMAIL, CARD = tag("email"), tag("card_number")


# -- F1, F2: a private key quoted, commented, numbered, cut, or in GnuPG's armor ---------

EC = [
    "-----BEGIN EC " + "PRIVATE KEY-----",
    "MHcCAQEEIJA+p9K/vFdi+gbknd8i" + "cqHJ7Z/0TJWF+1SFVFajAXX+oAoGCCqGSM49",
    "AwEHoUQDQgAE9kClVLp/H5dKKnTF" + "8qHy1eslTccV0lrhNToeZIXKQ9P+vs78rPu+",
    "20Mb3dqODEjSAmNb+L882mMRMr" + "MlVn3RPA==",
    "-----END EC " + "PRIVATE KEY-----",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("> " + "\n> ".join(EC), f"> {PEM}"),  # a quote in markdown
        ("# " + "\n# ".join(EC), f"# {PEM}"),  # a shell's comments
        ("\n".join(f"{i + 1}  {line}" for i, line in enumerate(EC)), f"1  {PEM}"),  # numbered
        ("\n".join(EC[:2]) + "\n... (truncated) ...\n" + "\n".join(EC[2:]), PEM),
    ],
)
def test_a_key_between_its_header_and_end_is_taken_whatever_lies_between(
    text: str, expected: str
) -> None:
    check(text, expected, {"private_key": 1})


PGP_BODY = [
    "lFgEawkAEhYJKwYBBAHaRw8BAQdAFP" + "KE4ASXWLiql+BoFLoz1daG31NTH78bRfB/",
    "jxjOg9UAAQCONukXb4ChksWD9lTI" + "6eHvGsHKzuXrZ/MP+jdgRM8icxLftA1UIDx0",
    "=fqIm",
]


@pytest.mark.parametrize(
    "armor",
    [
        "\n\n",  # GnuPG's armor: a blank line right after the header
        "\nVersion: GnuPG v2\n\n",
        "\nComment: my key\n\n",
    ],
)
def test_a_pgp_key_without_its_end_line_is_taken_after_a_blank_line(armor: str) -> None:
    text = "-----BEGIN PGP PRIVATE " + "KEY BLOCK-----" + armor + "\n".join(PGP_BODY) + "\n"
    check(text, f"{PEM}\n", {"private_key": 1})
    check(text + "\nSave it and keep it private.", f"{PEM}\n\nSave it and keep it private.")


def test_a_header_without_an_end_line_leaves_the_paragraphs_after_it() -> None:
    text = (
        "私钥文件以 -----BEGIN RSA PRIVATE KEY----- 开头\n\n请妥善保管\uff0c不要提交到仓库。"
        "\n\nKeep your keys out of git."
    )
    check(
        text,
        f"私钥文件以 {PEM} 开头\n\n请妥善保管\uff0c不要提交到仓库。\n\nKeep your keys out of git.",
    )


def test_json_escaped_headers_then_an_end_line_cost_linear_time() -> None:
    text = "-----BEGIN PRIVATE KEY-----\\n" * 2000 + "-----END PRIVATE KEY-----"
    started = time.perf_counter()
    assert redact(text).text == PEM
    assert time.perf_counter() - started < 2.0  # 58 KB: tens of ms (seconds when quadratic)


# -- F4: bare values in other scripts -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "password: 至少8个字符",
        "**Password:** 至少12个字符",
        "Password: 8文字以上の英数字",
        "password: \u043c\u0438\u043d\u0438\u043c\u0443\u043c8"  # a Russian word, a digit
        "\u0441\u0438\u043c\u0432\u043e\u043b\u043e\u0432",
        "password: 8자 이상",
        "DB_PASSWORD=数据库密码2024",
        "client_secret: 应用密钥123…",
        "client_secret: 应用密钥" + "12345678901234",
        "api_key: 在控制台获取apikey" + "2024xyz",
        "passphrase: 至少12个字符",
    ],
)
def test_a_bare_value_in_other_scripts_without_a_symbol_is_prose(text: str) -> None:
    check(text, text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password: Contrase" + "ña2024!", f"password: {PW}"),
        ("password=Pässwörd" + "123!", f"password={PW}"),
        ("password: паро" + "ль2024!", f"password: {PW}"),
        ("password: Sup3rS3" + "cret!是我的密码", f"password: {PW}是我的密码"),
        ('password: "паро' + 'ль"', f'password: "{PW}"'),  # quoted: as before
    ],
)
def test_a_password_in_another_script_is_still_redacted(text: str, expected: str) -> None:
    check(text, expected, {"password": 1})


# -- F5: Maestro at 16 to 19 digits only -------------------------------------------------


@pytest.mark.parametrize(
    "text", ["条码 6901234567892", "EAN 6938462910014", "条码6901234567892。", "ref 501812345678"]
)
def test_a_barcode_is_no_maestro_card(text: str) -> None:
    check(text, text, {})


def test_a_maestro_card_of_sixteen_digits_is_still_found() -> None:
    check("card 6759" + "000000000000 ok", f"card {CARD} ok", {"card_number": 1})


# -- F6: tokens that are no secret, placeholders, a JWT ----------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"nextPageToken": "CiAKGjBpNDd2Nmp2" + "Zml2cXRjbmgyYw"}'.replace('" + "', ""),
        "next_page_token: CiAKGjBpNDd2Nmp2" + "Zml2cXRjbmgyYw",
        "page_token=CiAKGjBpNDd2Nmp2" + "Zml2cXRjbmgyYw",
        "ContinuationToken: 1ueGcxLPRx1Tr/XYExHnhbYLg" + "veDs2J/wm36Hy4vbOwM=",
        "idempotency_token: 3f2a9b1c-4d5e-6f70-" + "8192-a3b4c5d6e7f8",
        "cache_token=3f2a9b1c4d5e6f70" + "8192a3b4c5d6e7f8",
        "syncToken: CPDAlvWDx70CEPDAlv" + "WDx70CGAU=",
        "API_KEY=your_api_key_" + "here_123",
        "CLIENT_SECRET=REPLACE_ME_" + "WITH_SECRET_1",
        "GITHUB_TOKEN=changeme" + "1234567890abc",
        "api_key: xxxx" + "xxxx1234abcd5678",
        "ACCESS_TOKEN=abc123-" + "placeholder-token",
    ],
)
def test_a_page_or_idempotency_token_or_a_placeholder_is_no_key(text: str) -> None:
    check(text, text, {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("session_token: 9fceb02d0ae598e9" + "5dc970b74767f19372d61af8", f"session_token: {KEY}"),
        ("csrf_token=9fceb02d0ae598e9" + "5dc970b74767f19372d61af8", f"csrf_token={KEY}"),
        ("NEXTCLOUD_TOKEN=9fceb02d0ae598e9" + "5dc970b7", f"NEXTCLOUD_TOKEN={KEY}"),
    ],
)
def test_a_session_token_is_still_a_key(text: str, expected: str) -> None:
    check(text, expected, {"api_key": 1})


def test_a_jwt_after_a_tokens_name_counts_as_a_jwt() -> None:
    jwt = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        + "eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    check(f'access_token: "{jwt}"', f'access_token: "{JWT}"', {"jwt": 1})
    check(f"ACCESS_TOKEN={jwt}", f"ACCESS_TOKEN={JWT}", {"jwt": 1})


# -- F7: ssh's options end at prose; QQ mail glued to Chinese -----------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I use scp -r often - ask admin@acme.io for keys",
            f"I use scp -r often - ask {EMAIL} for keys",
        ),
        ("run ssh -v and then mail ann@acme.io", f"run ssh -v and then mail {EMAIL}"),
        ("ssh -p 22 -- often ann@acme.io", f"ssh -p 22 -- often {EMAIL}"),
        ("我的邮箱是123456789@qq.com\uff0c谢谢", f"我的邮箱是{EMAIL}\uff0c谢谢"),
        ("联系李雷12345@qq.com或者电话", f"联系李雷{EMAIL}或者电话"),
        ("用户123@例子.广告 ok", f"{EMAIL} ok"),  # wholly another script: one address
    ],
)
def test_an_address_after_prose_is_mail_and_swallows_no_chinese(text: str, expected: str) -> None:
    check(text, expected, {"email": 1})


@pytest.mark.parametrize(
    "text",
    [
        "ssh -p 22 -- deploy@web01.acme.com",
        "ssh -i ~/.ssh/id_ed25519 -o StrictHostKeyChecking=no -p 2222 deploy@web01.acme.com",
        "ssh -o ProxyCommand=ssh -W %h:%p ops@app.acme.io",
        "sftp -oPort=2222 user@files.acme.io",
    ],
)
def test_ssh_options_before_the_address_still_leave_it(text: str) -> None:
    check(text, text, {})
