"""Where a stream may let go: after whitespace, CJK punctuation and JSON's , { } [ ].

Chinese or Japanese prose has no spaces and compact JSON none either: such answers
came out in one piece at their end. Now they go out at each such character, where no
secret can be open; the stream still equals the whole answer, whatever the chunking.
Secrets are fake and split so that secret scanners leave this file alone.
"""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from switchman.policy import _redaction
from switchman.policy._redaction import StreamRedactor, known_secrets, redact, tag

CJK = "这是一个关于递归的解释。递归是函数调用自身的一种方法\uff0c它需要一个终止条件。"
JA = "再帰とは、関数が自分自身を呼び出すことです。終了条件が必要です。"


def _emitted(text: str, step: int, secrets: tuple[str, ...] = ()) -> list[str]:
    redactor = StreamRedactor(secrets)
    out = [redactor.feed(text[i : i + step]) for i in range(0, len(text), step)]
    return [*out, redactor.flush()]


def test_chinese_and_japanese_prose_goes_out_at_each_punctuation_mark() -> None:
    for text in (CJK * 3, JA * 3):
        out = _emitted(text, 1)
        assert "".join(out) == text
        pieces = [p for p in out if p]
        assert len(pieces) >= text.count("。") + text.count("\uff0c") + text.count("、")
        assert max(len(p) for p in pieces) <= 24


def test_compact_json_goes_out_at_each_comma_and_brace() -> None:
    text = json.dumps([{"id": i, "name": f"item{i}", "ok": True} for i in range(60)])
    text = text.replace(" ", "")
    out = _emitted(text, 4)
    assert "".join(out) == text
    assert max(len(p) for p in out) <= 20


def test_json_after_a_url_or_a_password_name_waits_for_it() -> None:
    text = '[{"db":"postgres://app:p,w{x]y@db.example.com/app"},' + '{"n":1},' * 80 + "{}]"
    out = _emitted(text, 3)
    assert "".join(out) == redact(text).text
    assert "p,w{x]y" not in "".join(out)
    url = next(p for p in out if "postgres" in p)
    assert url.startswith('"db":"postgres://app:' + tag("url_password") + "@db.example.com")
    assert len(url) < 512 + 40  # let go once no URL can reach further
    assert max(len(p) for p in out if p is not url) <= 12


def test_a_known_secret_holding_a_comma_is_never_cut() -> None:
    secret = "team,gateway{secret}7731"
    secrets = known_secrets([secret])
    text = f'{{"key":"{secret}","n":[1,2,3]}}、{secret}。'
    whole = redact(text, secrets)
    assert secret not in whole.text and whole.counts == {"api_key": 2}
    for step in (1, 2, 5):
        assert "".join(_emitted(text, step, secrets)) == whole.text


PIECES = [
    CJK,
    JA[:12],
    "\uff0c",  # fullwidth comma
    "。",
    "、",
    "「",
    "」",
    "\uff1a",  # fullwidth colon
    "\uff08",  # fullwidth parenthesis
    ",",
    "{",
    "}",
    "[",
    "]",
    '"',
    ":",
    " ",
    "\n",
    '{"password":"p,a}ss[1"}',
    "password=a{b,c]9",
    "Secret key: wJalrXUtnFEMI/K7MDENG," + "bPxRfiCYEXAMPLEKEY",
    "postgres://admin:Tr0,b{4}#3@db.example.com:5432/app",
    "https://u:p@ss,w]rd@h.example.com/x",
    "jane.doe@example.com",
    "张三@例子.中国",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "(415) 555-2671",
    "Bearer abc123def456ghi789jkl012",
    "sk-" + "proj-Xa9Kd82LmQpz7Rt4VbN1cW3eYh6UjF0sGi5oPq2LkMn8AbCdEfGh",
    '"private_key": "-----BEGIN '
    + 'PRIVATE KEY-----\\nMIIEvQIB,ADAN\\n-----END PRIVATE KEY-----\\n",',
    "-----BEGIN RSA " + "PRIVATE KEY-----\n",
    "ssh ubuntu@ec2-3-120-45-6.compute.amazonaws.com",
    "0.5401996580683129",
    'auth=("admin", "p,a}ss[1")',
    "aiohttp.BasicAuth('u', 'my pass 9')",
]


@st.composite
def texts_and_cuts(draw: st.DrawFn) -> tuple[str, list[int]]:
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(PIECES), st.text(alphabet="a1,{}[]。、 :@", max_size=5)),
            max_size=16,
        )
    )
    text = "".join(parts)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=25))))
    return text, [b - a for a, b in zip([0, *cuts], cuts, strict=False)]


def _stream(text: str, sizes: list[int]) -> tuple[str, dict[str, int]]:
    redactor = StreamRedactor()
    out, pos = [], 0
    for size in sizes:
        out.append(redactor.feed(text[pos : pos + size]))
        pos += size
    out.append(redactor.feed(text[pos:]))
    out.append(redactor.flush())
    return "".join(out), dict(redactor.counts)


@settings(max_examples=600, deadline=None)
@given(texts_and_cuts())
def test_stream_equals_whole_with_cjk_and_json(case: tuple[str, list[int]]) -> None:
    text, sizes = case
    whole = redact(text)
    assert _stream(text, sizes) == (whole.text, dict(whole.counts))


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([p for p in PIECES if not re.search(r"[0-9] [0-9]|\) ", p)]),
            st.text(alphabet="a,{}[]。、 :@", max_size=5),
        ),
        max_size=16,
    )
)
def test_no_secret_is_cut_by_a_break(parts: list[str]) -> None:
    """Redacted as one block, the text redacts the same: no break splits a secret
    (phone and card numbers aside: a long list of them may be cut, see the module)."""
    text = "".join(parts)
    counts: dict[str, int] = {}
    assert redact(text).text == _redaction._redact_block(text, counts)
    assert redact(text).counts == counts
