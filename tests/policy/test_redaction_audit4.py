"""Cases from the fourth redaction audit: secrets that leaked, and a false positive.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

import base64

import pytest

from switchman.policy._redaction import tag
from tests.policy._streamed import same_streamed

KEY = tag("api_key")

# -- other vendors' tokens --------------------------------------------------------------

GITLAB = "glpat-" + "xY3kq9LpZ2mN7vB4cD1e"
HUGGING_FACE = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY2z"
NPM = "npm_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY2zA4"
SENDGRID = "SG." + "aB3dE5fG7hJ9kL1mN3pQ5r" + "." + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY2zA4bC6dE8f"
SLACK_REFRESH = "xoxe.xoxp-" + "1-Mi0yLTExNjUxMzU4NjAzODYtMTk"
SLACK_REFRESH_BARE = "xoxe-" + "1-My0xLTExNjUxMzU4NjAzODYtMTk"
SLACK_APP = "xapp-" + "1-A0123456789-1234567890123-abcdef0123456789"
STRIPE_TEST = "sk_" + "test_4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RESTRICTED_TEST = "rk_" + "test_51H8abcdEFGHijklMNOPqrst"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"export GITLAB_TOKEN={GITLAB}\n", f"export GITLAB_TOKEN={KEY}\n"),
        (f"git clone https://oauth2:{GITLAB}@gitlab.com/x/y.git", None),
        (f"HF_TOKEN={HUGGING_FACE} huggingface-cli login", f"HF_TOKEN={KEY} huggingface-cli login"),
        (
            f"//registry.npmjs.org/:_authToken={NPM}\nalways-auth=true",
            f"//registry.npmjs.org/:_authToken={KEY}\nalways-auth=true",
        ),
        (f'{{"sendgrid": "{SENDGRID}", "from": "x"}}', f'{{"sendgrid": "{KEY}", "from": "x"}}'),
        (f"refresh_token: {SLACK_REFRESH} (12 h)", f"refresh_token: {KEY} (12 h)"),
        (f"refresh_token: {SLACK_REFRESH_BARE}", f"refresh_token: {KEY}"),
        (f"SLACK_APP_TOKEN={SLACK_APP} # socket mode", f"SLACK_APP_TOKEN={KEY} # socket mode"),
        (f"stripe.api_key = '{STRIPE_TEST}'", f"stripe.api_key = '{KEY}'"),
        (f"STRIPE_KEY={STRIPE_RESTRICTED_TEST}", f"STRIPE_KEY={KEY}"),
    ],
)
def test_other_vendors_tokens_are_redacted(text: str, expected: str | None) -> None:
    out = same_streamed(text)
    if expected is not None:
        assert out == expected
    for token in (GITLAB, HUGGING_FACE, NPM, SENDGRID, SLACK_APP, STRIPE_TEST):
        assert token[6:] not in out
    assert "1-M" not in out  # the Slack refresh tokens' bodies


@pytest.mark.parametrize(
    "text",
    [
        "glpat-xxxxxxxxxxxxxxxxxxxx is what a token looks like",
        "hf_hub_download(repo_id='x') and npm_config_cache",
        "SG.example.com and the SG. prefix",
        "the xapp- prefix, xoxe-",
        "sk_test_your_key_here",
    ],
)
def test_token_prefixes_alone_or_placeholders_are_left(text: str) -> None:
    assert same_streamed(text) == text


# -- branch names starting with sk- ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "git checkout sk-1042-fix",
        "merged feature/sk-12-login into main",
        "feature/sk-1042-fix-login-redirect-loop",
        "git checkout -b sk-12345-add-retry-to-client",
        "git push origin sk-2024-11-fix-the-bug-in-auth-module",
        '{"branch": "sk-proj-77-move-billing-to-new-service"}',
    ],
)
def test_a_branch_named_sk_numbers_and_words_is_no_key(text: str) -> None:
    assert same_streamed(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "sk-" + "proj-Xa9Kd82LmQpz7Rt4VbN1cW3eYh6UjF0sGi5oPq2LkMn8AbCdEfGh",
        "sk-" + "4f8Ke2LmQpz7Rt4VbN1cW3eYh6UjF0sGi5oPq2LkMn8AbCdE",
        "sk-" + "ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrSt-AAAA",
        "sk-" + "3f2a9b7c1d8e4f60a5b2c9d7e1f3a8b4",  # lower-case hex
        "sk-" + "svcacct-k2j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8o9p0",
        "sk-" + "admin-12ab-34cd-56ef-78gh-90ij-12kl",
    ],
)
def test_real_keys_starting_with_sk_are_still_redacted(key: str) -> None:
    assert same_streamed(f"OPENAI_API_KEY={key} set") == f"OPENAI_API_KEY={KEY} set"


# -- a URL password holding # / or ? after an @ ------------------------------------------------

URL_PASSWORD = tag("url_password")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:" + "p@ss#w0rd" + "@db:5432/x", f"postgres://u:{URL_PASSWORD}@db:5432/x"),
        (
            "DATABASE_URL=postgres://app:" + "Xy@9/kq2" + "@db.example.com:5432/app ok",
            f"DATABASE_URL=postgres://app:{URL_PASSWORD}@db.example.com:5432/app ok",
        ),
        (
            '{"url": "redis://:' + "a1@b?c" + '@cache:6379"}',
            f'{{"url": "redis://:{URL_PASSWORD}@cache:6379"}}',
        ),
        (
            "amqp://bot:" + "q@w#e@r/t9" + "@rabbit.internal:5672/vhost",
            f"amqp://bot:{URL_PASSWORD}@rabbit.internal:5672/vhost",
        ),
    ],
)
def test_a_url_password_holding_a_hash_slash_or_question_mark_after_an_at_is_redacted(
    text: str, expected: str
) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://u:pw12@host.io/x?mail=a@b.io",
            f"https://u:{URL_PASSWORD}@host.io/x?mail={tag('email')}",
        ),
        (
            "pip install git+https://u:" + "tok3n" + "@github.com/org/repo.git@v1.0",
            f"pip install git+https://u:{URL_PASSWORD}@github.com/org/repo.git@v1.0",
        ),
        ("https://u:pw12@medium.com/@user", f"https://u:{URL_PASSWORD}@medium.com/@user"),
        ("http://u:pw12@localhost:8080/x#a@b", f"http://u:{URL_PASSWORD}@localhost:8080/x#a@b"),
        ("http://u:pw12@localhost/x?to=a@b", f"http://u:{URL_PASSWORD}@localhost/x?to=a@b"),
    ],
)
def test_an_at_after_the_host_and_its_path_stays_the_urls(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


# -- HTTP Basic credentials ----------------------------------------------------------------

PASSWORD = tag("password")
ADMIN = base64.b64encode(b"admin:" + b"S3cr3t!x").decode()  # fake
DEPLOY = base64.b64encode(b"deploy:" + b"hunter2x").decode()
BOT = base64.b64encode(b"bot:" + b"q9Zk-2024").decode()  # no padding


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"Authorization: Basic {ADMIN}\nAccept: */*",
            f"Authorization: Basic {PASSWORD}\nAccept: */*",
        ),
        (
            f'curl -H "Authorization: Basic {DEPLOY}" https://api.example.com',
            f'curl -H "Authorization: Basic {PASSWORD}" https://api.example.com',
        ),
        (
            f'headers = {{"Authorization": "Basic {BOT}", "X-Id": "1"}}',
            f'headers = {{"Authorization": "Basic {PASSWORD}", "X-Id": "1"}}',
        ),
        (f"AUTHORIZATION: BASIC\n    {ADMIN} end", f"AUTHORIZATION: BASIC\n    {PASSWORD} end"),
    ],
)
def test_http_basic_credentials_are_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Basic auth is the basic scheme; see Basic usage below.",
        "Authorization: Basic " + base64.b64encode(b"username:password").decode(),
        "Authorization: Basic <base64 of user:password>",
        "Authorization: Basic ${CREDENTIALS}",
        "Basic abcd1234 is no user:password",
    ],
)
def test_basic_prose_placeholders_and_non_credentials_are_left(text: str) -> None:
    assert same_streamed(text) == text


# -- a password in a markdown table's row --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("| password | " + "hunter2!x" + " |", "| password | %s |"),
        ("| DB_PASSWORD | " + "s3cr3t-Val" + " |", "| DB_PASSWORD | %s |"),
        (
            "| Key | Value |\n|---|---|\n| user | bob |\n| password | " + "Summer2024!" + " |\n",
            "| Key | Value |\n|---|---|\n| user | bob |\n| password | %s |\n",
        ),
        ("|password|" + "hunter2!x" + "|", "|password|%s|"),
        (
            "| **Password** | `" + "Tr0ub4dor&3" + "` | temporary |",
            "| **Password** | `%s` | temporary |",
        ),
        ("| env | PGPASSWORD |\t" + "S3cr3t_pw" + "\t|", "| env | PGPASSWORD |\t%s\t|"),
    ],
)
def test_a_password_in_a_table_row_is_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected % tag("password")


def test_a_secret_key_in_a_table_row_is_redacted() -> None:
    text = "| AWS_SECRET_ACCESS_KEY | " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + " |"
    assert same_streamed(text) == f"| AWS_SECRET_ACCESS_KEY | {KEY} |"


@pytest.mark.parametrize(
    "text",
    [
        "| password | `<password>` |",
        "| DB_PASSWORD | ${DB_PASSWORD} |",
        "| password | **** |",
        "| password | your-password |",
        "| Field | Type |\n|---|---|\n| password | string |\n| password_hash | bytes |",
        "| password | required, 12+ chars |",
        "echo $password | base64 -d",
        "cat password.txt | sha256sum",
        "grep password | head -n 10",
        "| | | |\n| a | b | c |",
    ],
)
def test_table_placeholders_types_and_shell_pipes_are_left(text: str) -> None:
    assert same_streamed(text) == text


# -- curl -u user:password -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "curl -u admin:" + "S3cr3tPw!" + " https://api.example.com",
            "curl -u admin:%s https://api.example.com",
        ),
        ('curl --user "deploy:' + "hunter2!" + '" -X POST', 'curl --user "deploy:%s" -X POST'),
        ("curl -s -u\t'bot:" + "Xy9kq2Lp" + "' $URL", "curl -s -u\t'bot:%s' $URL"),
        ("$ curl -u ci:" + "gh-2024-rw" + "\n", "$ curl -u ci:%s\n"),
    ],
)
def test_curl_user_passwords_are_redacted(text: str, expected: str) -> None:
    assert same_streamed(text) == expected % tag("password")


@pytest.mark.parametrize(
    "text",
    [
        "docker run -u 1000:1000 img",
        "docker run --user node:node img",
        "curl -u user:pass https://x and curl -u admin:$TOKEN",
        "curl -u 'admin:<password>' https://x",
        "git push -u origin main:main",
        "sudo -u postgres psql",
        "use -u to give the user",
    ],
)
def test_user_options_without_a_password_are_left(text: str) -> None:
    assert same_streamed(text) == text
