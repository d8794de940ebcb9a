"""Cases from the redaction audit: secrets that leaked, text taken for a secret.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

import base64
import random

import pytest

from switchman.policy._redaction import PEM_HOLD_LIMIT, StreamRedactor, redact, tag

RNG = random.Random(7)


def _stream(text: str, step: int) -> tuple[str, dict[str, int]]:
    redactor = StreamRedactor()
    out = [redactor.feed(text[i : i + step]) for i in range(0, len(text), step)]
    out.append(redactor.flush())
    return "".join(out), dict(redactor.counts)


def _same_streamed(text: str) -> str:
    """``redact(text).text``, checked equal to the stream at a few chunk sizes."""
    whole = redact(text)
    for step in (1, 3, 7, 64):
        assert _stream(text, step) == (whole.text, dict(whole.counts)), step
    return whole.text


def _b64_lines(n: int) -> list[str]:
    return [base64.b64encode(RNG.randbytes(48)).decode() for _ in range(n)]


# -- private keys --------------------------------------------------------------------


def test_a_private_key_in_a_service_account_json_is_redacted_whole() -> None:
    body = _b64_lines(8)
    key = "\\n".join(["-----BEGIN " + "PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----"])
    text = (
        '{\n  "type": "service_account",\n  "private_key": "' + key + '\\n",\n'
        '  "client_id": "1234"\n}'
    )
    out = _same_streamed(text)
    assert out == (
        '{\n  "type": "service_account",\n  "private_key": "'
        + tag("private_key")
        + '\\n",\n  "client_id": "1234"\n}'
    )
    assert not any(line in out for line in body)


@pytest.mark.parametrize(
    "armor",
    [
        "Comment: GPGTools - https://gpgtools.org\n",
        "Version: GnuPG v2 (GNU/Linux)\n",
        "Version: OpenPGP.js v4.10.10\nComment: https://openpgpjs.org\n",
    ],
)
def test_a_pgp_private_key_with_armor_headers_is_redacted_whole(armor: str) -> None:
    body = _b64_lines(6)
    block = "\n".join(
        [
            "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----",
            armor,
            *body,
            "=a1b2",
            "-----END PGP PRIVATE KEY BLOCK-----",
        ]
    )
    out = _same_streamed(f"Exported:\n{block}\nImport it with gpg --import.")
    assert out == f"Exported:\n{tag('private_key')}\nImport it with gpg --import."


def test_a_key_without_its_end_line_does_not_take_the_rest_of_the_answer() -> None:
    body = _b64_lines(4)
    text = "\n".join(["-----BEGIN EC " + "PRIVATE KEY-----", *body])
    text += "\n\n(the output was cut here.) Store it safely; END of story.\n-----END RSA KEY"
    out = _same_streamed(text)
    assert out.startswith(tag("private_key") + "\n\n(the output was cut here.) Store it")


def test_an_end_line_beyond_the_limit_is_not_reached_for() -> None:
    header, end = "-----BEGIN RSA " + "PRIVATE KEY-----\n", "\n-----END RSA PRIVATE KEY-----"
    prose = "(then prose follows) " * (PEM_HOLD_LIMIT // 21 + 1)
    text = header + "\n".join(_b64_lines(3)) + "\n" + prose + end + " done"
    whole = redact(text)
    assert whole.text.startswith(tag("private_key") + "\n(then prose follows) (then")
    assert whole.text.endswith(end + " done")
    assert _stream(text, 512) == (whole.text, dict(whole.counts))
