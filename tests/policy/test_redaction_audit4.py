"""Cases from the fourth redaction audit: secrets that leaked, and a false positive.

Each test names what a user met. Secrets are fake and split so that secret scanners
leave this file alone.
"""

from __future__ import annotations

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
