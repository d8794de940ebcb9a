"""Redaction, thirteenth audit: a password as a password manager makes it. Written without
quotes, its value had ended at the first ``& ; , ) ] }`` (``password: Xk9#mQ2&vL7;pZ``
showed ``&vL7;pZ``), and a value holding a bracket, a dot or a leading ``$`` had been
taken for code or a placeholder (``Ab3xY9kQ(m7Zp``, ``Ab3xY9kQ.m7Zp``, ``{m7Zp#Ab3x``,
``$Ab3xY9kQ2`` were shown whole): 222 of 300 such passwords after ``password:`` leaked
whole or in part, 7 now. What stays as it was: the names and ``=`` that follow a value in
a connection string or a query, a link's ``](``, code whose names are words, placeholders.
And an AWS secret key after the word ``secret`` alone is hidden (its id was, the secret
shown beside it); a password's name and ``=`` in a code span of their own is no quoted
value (the prose up to the next backtick had been taken for one).

Each case is checked whole and streamed, in two pieces cut at every place and one
character at a time. Secrets below are fake.
"""

from __future__ import annotations

import random
import string

import pytest

from switchman.policy._redaction import redact, tag
from tests.policy._streamed import check

PW = tag("password")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password: Xk9#mQ2&vL7;pZ", f"password: {PW}"),
        ("DB_PASSWORD=Xk9#mQ2)vL7,pZ\n", f"DB_PASSWORD={PW}\n"),
        ("export PGPASSWORD=Tr0ub4dor&3xQ9zLm", f"export PGPASSWORD={PW}"),
        # (the security audit's: a regex's piece, a format's field glued to a password)
        ("password=Hx7qLp2Vz9Rk\\d", f"password={PW}"),
        ("password={0}Hx7qLp2Vz9Rk", f"password={PW}"),
        ("password=<x>Hx7qLp2Vz9Rk", f"password={PW}"),
        ("export PGPASSWORD=tcL21pf]{fW+Q(J#", f"export PGPASSWORD={PW}"),
        ("password: Ab3xY9kQ(m7Zp", f"password: {PW}"),
        ("password: Ab3xY9kQ.m7Zp", f"password: {PW}"),
        ("password: g{oRqG*9hTCzp&pv", f"password: {PW}"),
        ("password: {m7Zp#Ab3x and then", f"password: {PW} and then"),
        ("password: $Ab3xY9kQ2", f"password: {PW}"),
        ("admin password: R9S<eWN];YlLx0o#\n", f"admin password: {PW}\n"),
        # where a value ends, as before
        ("Password=Xk9#mQ2x;Host=db;Port=5432", f"Password={PW};Host=db;Port=5432"),
        ("?user=bob&password=s3cr3t!&next=/home", f"?user=bob&password={PW}&next=/home"),
        ("password: hunter2!, then log in", f"password: {PW}, then log in"),
        ("(password: hunter2!) and", f"(password: {PW}) and"),
        ("[password: p4ss!w0rd](https://x.io/a)", f"[password: {PW}](https://x.io/a)"),
        ("password=hunter2!&&echo ok", f"password={PW}&&echo ok"),
        # code and placeholders, left
        ('password: os.environ["DB_PASSWORD"]', 'password: os.environ["DB_PASSWORD"]'),
        ("password = self.password", "password = self.password"),
        ("password=getenv('PW')", "password=getenv('PW')"),
        ("PASSWORD = config('DB_PASSWORD')", "PASSWORD = config('DB_PASSWORD')"),
        ("password: config[KEY]", "password: config[KEY]"),
        ("password => $request->input('password')", "password => $request->input('password')"),
        ("password: {password}", "password: {password}"),
        ("password: (optional)", "password: (optional)"),
        ("password: <your password>", "password: <your password>"),
        ("password: ${DB_PASS}", "password: ${DB_PASS}"),
        ("password: $DB_PASS2", "password: $DB_PASS2"),
        ("password: hashlib.sha256(", "password: hashlib.sha256("),
        # (the second verification's: regular expressions, shell, connection strings,
        # format strings, Rust, optional chaining)
        ("sed -E 's/(password=)[^&]*/\\1***/g'", "sed -E 's/(password=)[^&]*/\\1***/g'"),
        ('re.search(r"password:\\s*(\\S+)", line)', 're.search(r"password:\\s*(\\S+)", line)'),
        ("(?:password:)|(?:passphrase for key)", "(?:password:)|(?:passphrase for key)"),
        ("password=\\d{4,}", "password=\\d{4,}"),
        ('re.compile(r"password:(.*)$")', 're.compile(r"password:(.*)$")'),
        ("export DB_PASSWORD=$(cat /run/secrets/db)", "export DB_PASSWORD=$(cat /run/secrets/db)"),
        (
            "--from-literal=password=$(openssl rand -hex 16)",
            "--from-literal=password=$(openssl rand -hex 16)",
        ),
        ("PGPASSWORD=$PGPASS;psql -h db", "PGPASSWORD=$PGPASS;psql -h db"),
        (
            "Password=Tr0ub4dor&3;Persist Security Info=True;User ID=sa",
            f"Password={PW};Persist Security Info=True;User ID=sa",
        ),
        ('"password={0}\\r\\n".format(x)', '"password={0}\\r\\n".format(x)'),
        ("fn hash(password: &[u8]) -> Box<[u8; 32]>", "fn hash(password: &[u8]) -> Box<[u8; 32]>"),
        ("password=form?.password?.trim();", "password=form?.password?.trim();"),
        # (the last verification's: compact code, a comparison)
        (
            'const u={email:e,password:pw1,role:"admin"};',
            'const u={email:e,password:pw1,role:"admin"};',
        ),
        ("password=arr[i]?.pw;", "password=arr[i]?.pw;"),
        ('password=pw[:8]+"..."', 'password=pw[:8]+"..."'),
        ("fn hash(password:&[u8])->Vec<u8>{", "fn hash(password:&[u8])->Vec<u8>{"),
        ("if(user.password==hash(pw)){ok()}", "if(user.password==hash(pw)){ok()}"),
        ("if(password==confirm){ok()}", "if(password==confirm){ok()}"),
    ],
)
def test_a_password_with_symbols_is_hidden_whole_and_code_is_left(text: str, expected: str) -> None:
    check(text, expected)


@pytest.mark.parametrize("form", ["password: {}", "password={}", "export PGPASSWORD={}"])
def test_passwords_as_password_managers_make_them_seldom_leak(form: str) -> None:
    """300 passwords of 16 letters, digits and symbols (a digit and a symbol in each):
    how many show four characters or more of themselves after ``password:``."""
    symbols = "!@#$%^&*()-_=+[]{};:,.<>/?~|"
    rng = random.Random(3)
    leaked = 0
    for _ in range(300):
        while True:
            pw = "".join(
                rng.choice(string.ascii_letters + string.digits + symbols) for _ in "x" * 16
            )
            if any(c.isdigit() for c in pw) and any(c in symbols for c in pw):
                break
        out = redact(form.format(pw)).text
        leaked += any(pw[i : i + 4] in out for i in range(len(pw) - 3))
    assert leaked <= 10, leaked  # (5-8 each; 222 before, and 87 after = for a while)


KEY = tag("api_key")
AWS_SECRET = "yEZDz+q8Lw3K/aP0vN2m" + "R7tB9xC4fH6jU1sT5kQlY7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an AWS secret key beside its id, named by the word secret alone
        (
            f"Access key id AKIA2E0A8F3B244C9986, secret: {AWS_SECRET}",
            f"Access key id {KEY}, secret: {KEY}",
        ),
        (f"Secret: {AWS_SECRET}\n", f"Secret: {KEY}\n"),
        (f"SECRET={AWS_SECRET}", f"SECRET={KEY}"),
        ("The secret: it works", "The secret: it works"),
        (
            "Top secret: Operation2024-Northwind was late",
            "Top secret: Operation2024-Northwind was late",
        ),
        ("secret: " + "9f86d081884c7d659a2feaa0" + "c55ad015a3bf4f1b2b0b822c", f"secret: {KEY}"),
        ("secret: hx7qlp2vz9" + "rk8qmm3nf4tt", f"secret: {KEY}"),
        ("secret: Hx7q-Lp2V-z9Rk-" + "8QmM-3nF4", f"secret: {KEY}"),
        (f"https://h/secret: {AWS_SECRET}", f"https://h/secret: {KEY}"),
        ("secret: app-secrets-v2-production9", "secret: app-secrets-v2-production9"),
        (
            "arn:aws:secretsmanager:us-east-1:1234:secret:My-a1b2",
            "arn:aws:secretsmanager:us-east-1:1234:secret:My-a1b2",
        ),
        (
            '"AWS::SecretsManager::Secret": "c85175a4ebcce361"',
            '"AWS::SecretsManager::Secret": "c85175a4ebcce361"',
        ),
        ("Keep it secret: 42 of them", "Keep it secret: 42 of them"),
        ("secret: str", "secret: str"),
        # a name and its = in a code span of their own: its backtick closes the span
        ("Add `DB_PASSWORD=` and `DB_USER=` to .env", "Add `DB_PASSWORD=` and `DB_USER=` to .env"),
        ("the `password=` field and the `user`", "the `password=` field and the `user`"),
        ("`DB_PASSWORD=`S3cr3t!xZ`", f"`DB_PASSWORD=`{PW}`"),
        ("`password`: `hunter2!x`", f"`password`: `{PW}`"),
        ("Password: `Tr0ub4dor&3`", f"Password: `{PW}`"),
    ],
)
def test_an_aws_secret_by_its_word_and_a_name_in_its_own_code_span(
    text: str, expected: str
) -> None:
    check(text, expected)
