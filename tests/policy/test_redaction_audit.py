"""Cases from the redaction audit: secrets that leaked, text taken for a secret.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

import base64
import random

import pytest

from switchman.policy._redaction import PEM_HOLD_LIMIT, redact, tag
from tests.policy._streamed import same_streamed, streamed

RNG = random.Random(7)


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
    out = same_streamed(text)
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
    out = same_streamed(f"Exported:\n{block}\nImport it with gpg --import.")
    assert out == f"Exported:\n{tag('private_key')}\nImport it with gpg --import."


def test_a_key_without_its_end_line_does_not_take_the_rest_of_the_answer() -> None:
    body = _b64_lines(4)
    text = "\n".join(["-----BEGIN EC " + "PRIVATE KEY-----", *body])
    text += "\n\n(the output was cut here.) Store it safely; END of story.\n-----END RSA KEY"
    out = same_streamed(text)
    assert out.startswith(tag("private_key") + "\n\n(the output was cut here.) Store it")


def test_an_end_line_beyond_the_limit_is_not_reached_for() -> None:
    header, end = "-----BEGIN RSA " + "PRIVATE KEY-----\n", "\n-----END RSA PRIVATE KEY-----"
    prose = "(then prose follows) " * (PEM_HOLD_LIMIT // 21 + 1)
    text = header + "\n".join(_b64_lines(3)) + "\n" + prose + end + " done"
    whole = redact(text)
    assert whole.text.startswith(tag("private_key") + "\n(then prose follows) (then")
    assert whole.text.endswith(end + " done")
    assert streamed(text, 512) == (whole.text, dict(whole.counts))


# -- values named as secrets ---------------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY1x"


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("password=E1nu9F4jHLeoZD\n", "E1nu9F4jHLeoZD", "password"),
        ('DB_PASSWORD="Z$CP!5KKWef2%Z"\n', "Z$CP!5KKWef2%Z", "password"),
        ("spring.datasource.password: q199UnBgCjhbrd", "q199UnBgCjhbrd", "password"),
        ("MYSQL_ROOT_PASSWORD: Zx9!qL2#vB7w\n", "Zx9!qL2#vB7w", "password"),
        (
            "Server=tcp:db.example.net,1433;User ID=app;Password=Lxnr9x3!V9b%Df;Encrypt=True;",
            "Lxnr9x3!V9b%Df",
            "password",
        ),
        ('{"user": "app", "password": "p,a{s}s!w0"}', "p,a{s}s!w0", "password"),
        ('{"user":"app","password":"hunter22"}', "hunter22", "password"),
        ("log in with password Vm8#kq2Lp!zR then", "Vm8#kq2Lp!zR", "password"),
        ("ALTER USER bob WITH PASSWORD 'S3cret!';", "S3cret!", "password"),
        (f"aws_secret_access_key = {AWS_SECRET}\n", AWS_SECRET, "api_key"),
        (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n", AWS_SECRET, "api_key"),
        (f'"SecretAccessKey": "{AWS_SECRET}",', AWS_SECRET, "api_key"),
        (f"Secret key: {AWS_SECRET}\n", AWS_SECRET, "api_key"),
    ],
)
def test_a_value_named_as_a_password_or_secret_key_is_redacted(
    text: str, secret: str, kind: str
) -> None:
    out = same_streamed(text)
    assert secret not in out
    assert tag(kind) in out
    assert redact(text).counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "password = getpass.getpass('Password: ')",
        "db_password = os.environ['DB_PASSWORD']",
        "def login(username: str, password: str) -> bool:",
        "password=password and password: ${{ secrets.DB_PASSWORD }}",
        "PASSWORD=changeme, password: <password>, password: YOUR_PASSWORD",
        'DB_PASSWORD="${DB_PASSWORD}" and password=**** or password: ...',
        "POSTGRES_PASSWORD=mysecretpassword",
        "password = self.password2 or password: 8 characters at least",
        "Use a password manager; the password reset link expires.",
        "cat /etc/passwd: root:x:0:0:root:/root:/bin/bash",
        "Secret key: never share it. SECRET_KEY = os.environ['SECRET_KEY']",
        "aws_secret_access_key = YOUR_SECRET_ACCESS_KEY",
        "password=[REDACTED:password] is what redaction leaves",
    ],
)
def test_a_placeholder_or_code_after_a_password_name_is_left(text: str) -> None:
    assert same_streamed(text) == text


# -- passwords in URLs -----------------------------------------------------------------


@pytest.mark.parametrize("password", ["p@ssw0rd!2024", "Tr0ub4dor#3", "s3cr3t/Key99", "hunter2?x9"])
def test_a_url_password_with_at_hash_slash_or_question_mark_is_redacted_whole(
    password: str,
) -> None:
    text = f"DATABASE_URL=postgres://admin:{password}@db.example.com:5432/app ok"
    out = same_streamed(text)
    assert out == f"DATABASE_URL=postgres://admin:{tag('url_password')}@db.example.com:5432/app ok"
    assert redact(text).counts == {"url_password": 1}


def test_an_at_in_the_path_or_query_is_the_urls_own() -> None:
    text = "https://u:pw12@registry.example.com/@types/node?cc=ops@acme.io"
    assert same_streamed(text) == (
        f"https://u:{tag('url_password')}@registry.example.com/@types/node?cc={tag('email')}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "mongodb://<username>:<password>@cluster0.example.net/test",
        "postgresql://user:${DB_PASSWORD}@localhost:5432/app",
        "postgres://USER:PASSWORD@HOST:PORT/DBNAME",
        "https://user:pass@example.com/ and amqp://guest:****@rabbit:5672",
        "https://example.com:8443/@alice is her profile",
        f"postgres://app:{tag('url_password')}@db.example.com/app",
    ],
)
def test_a_url_placeholder_is_left(text: str) -> None:
    assert same_streamed(text) == text


# -- numbers -----------------------------------------------------------------------------


def test_the_decimals_of_a_float_are_no_card_number() -> None:
    rng = random.Random(7)
    floats = [repr(rng.random()) for _ in range(3000)]
    text = "array([" + ", ".join(floats) + "])"
    assert redact(text).text == text  # 1.7% of them were taken for cards
    for line in ("mean=0.5401996580683129 std=0.1", "lat, lon = 48.4913123299834836, 2.35"):
        assert same_streamed(line) == line


@pytest.mark.parametrize(
    "card",
    ["4721.9511.0295.1591", "4721 9511 0295 1591", "4721-9511-0295-1591", "4721951102951591"],
)
def test_a_card_number_grouped_by_dots_spaces_or_dashes_is_redacted(card: str) -> None:
    assert same_streamed(f"card {card} on file") == f"card {tag('card_number')} on file"


def test_dotted_groups_in_a_longer_list_are_no_card() -> None:
    text = "build 1.4721.9511.0295.1591 and 4721.9511.0295.1591.2024.1234"
    assert same_streamed(text) == text


# -- user@host in commands, Bearer across a line -------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Run: `git@github.com:acme/infra.git`",
        "git clone git@github.com:acme/infra.git && git clone deploy@git.example.com",
        "Run: `ssh ubuntu@ec2-3-120-45-6.eu-central-1.compute.amazonaws.com` first",
        "scp file.txt deploy@web01.internal:/srv/app/ then rsync -a x backup@nas.local:~/x",
        "mosh  admin@bastion.example.org",
        "https://alice@example.com/repo.git",
    ],
)
def test_user_at_host_in_a_command_is_no_email(text: str) -> None:
    assert same_streamed(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Contact jane@acme.io: she knows", f"Contact {tag('email')}: she knows"),
        ("mailto:jane@acme.io", f"mailto:{tag('email')}"),
        ("write to jane@acme.io:)", f"write to {tag('email')}:)"),
        ("the ssh key of jane@acme.io", f"the ssh key of {tag('email')}"),
        (
            "git clone https://ghp_" + "c4sn4PPAq8h4P3H9h4u7JyFfTj8F31GRttDo@github.com/a/b.git",
            f"git clone https://{tag('api_key')}@github.com/a/b.git",
        ),
    ],
)
def test_mail_addresses_are_still_found(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize("gap", ["\n", "\n    ", "\r\n\t", " \n "])
def test_a_bearer_token_on_the_next_line_is_redacted(gap: str) -> None:
    text = f"Authorization: Bearer{gap}hdQ2grE4RJgMDtYyd2zm1Cz3OcWqI5WjqJxR\nAccept: */*"
    assert same_streamed(text) == f"Authorization: Bearer{gap}{tag('bearer_token')}\nAccept: */*"
