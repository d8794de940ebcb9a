"""Cases from the fifth redaction audit: what the fourth pass left or broke.

Each test names what a user met, checked whole and streamed (``same_streamed``).
Secrets are fake and split so that secret scanners leave this file alone.
"""

from __future__ import annotations

import pytest

from switchman.policy._redaction import tag
from tests.policy._streamed import same_streamed

URL_PASSWORD = tag("url_password")
PASSWORD = tag("password")

# -- a URL's path holding an @ after an undotted host ------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the regression: only pw is the password, host/bob@x is the host and its path
        ("https://u:" + "pw" + "@host/bob@x", f"https://u:{URL_PASSWORD}@host/bob@x"),
        ("https://u:" + "pw" + "@host?to=a@b", f"https://u:{URL_PASSWORD}@host?to=a@b"),
        ("https://u:" + "pw" + "@host/bob@x.com", f"https://u:{URL_PASSWORD}@host/bob@x.com"),
        # the fourth pass's fix kept: a password holding @ # / before a host with a port
        ("postgres://u:" + "p@ss#w0rd" + "@db:5432/x", f"postgres://u:{URL_PASSWORD}@db:5432/x"),
        ("postgres://u:" + "p@ss/w0rd" + "@db:5432/x", f"postgres://u:{URL_PASSWORD}@db:5432/x"),
        ("mysql://u:" + "p@ss?w0rd" + "@[::1]:3306/x", f"mysql://u:{URL_PASSWORD}@[::1]:3306/x"),
        # neighbours
        ("ssh://git@host/x@y", None),
        ("https://host/@user", None),
        ("http://a:" + "b" + "@localhost/p@q", f"http://a:{URL_PASSWORD}@localhost/p@q"),
        ("https://USER:PASSWORD@host/x@y", None),
    ],
)
def test_an_at_in_the_path_after_an_undotted_host_stays_the_urls(
    text: str, expected: str | None
) -> None:
    assert same_streamed(text) == (text if expected is None else expected)
