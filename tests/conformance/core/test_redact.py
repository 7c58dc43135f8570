"""The run's API key and its URLs' credentials are redacted from whatever a report quotes (pure:
``conformance.core._redact``)."""
import base64
import json
from urllib.parse import quote

import pytest

from conformance.core import REDACTED, redact, redact_text, secrets_of
from conformance.core._redact import url_credentials

KEY = "sk-live-0123456789abcdef"


def test_gyms_placeholder_and_no_key_are_no_secret():
    assert secrets_of(None) == secrets_of("") == secrets_of("dummy_key") == ()
    assert redact({"a": ["dummy_key"]}, secrets_of("dummy_key")) == {"a": ["dummy_key"]}


def test_the_key_is_replaced_wherever_it_stands():
    s = secrets_of(KEY)
    assert redact_text(f"Bearer {KEY}", s) == f"Bearer {REDACTED}"
    assert redact_text(f"{KEY}{KEY} and {KEY}.", s) == f"{REDACTED}{REDACTED} and {REDACTED}."
    assert redact_text("nothing to see", s) == "nothing to see"


def test_a_copy_cut_short_is_redacted_from_eight_characters_on():
    """An error message quotes the first 200 characters of a body: the key's beginning must not survive it."""
    s = secrets_of(KEY)
    cut = f"'...Bearer {KEY[:12]}'"
    assert redact_text(cut, s) == f"'...Bearer {REDACTED}'"
    assert redact_text(f"x{KEY[:8]}", s) == f"x{REDACTED}"
    assert redact_text(KEY[:7], s) == KEY[:7]  # too little to tell from ordinary text
    # the match runs exactly as far as the key does: what follows it stays
    assert redact_text(f"{KEY[:10]}ZZ", s) == f"{REDACTED}ZZ"


def test_a_short_key_is_redacted_whole_only():
    s = secrets_of("abc123")
    assert redact_text("key abc123, not abc12", s) == f"key {REDACTED}, not abc12"


def test_quoted_spellings_are_redacted_too():
    """A key with characters JSON, repr or a URL escape appears escaped in a quoted body."""
    key = 'we"ird\\key/+ü'
    s = secrets_of(key)
    for quoted in (json.dumps({"k": key}), repr({"k": key}), f"/v1?key={quote(key, safe='')}"):
        assert redact_text(quoted, s).count(REDACTED) == 1, quoted


def test_structures_are_walked_keys_included_and_left_as_they_are_without_a_key():
    s = secrets_of(KEY)
    value = {"message": f"no route for {KEY}", KEY: [1, 2.5, None, True, (f"a{KEY}", "b")],
             "nested": {"list": [{"content": f"You sent {KEY!r}"}]}}
    out = redact(value, s)
    assert KEY not in json.dumps(out)
    assert out[REDACTED] == [1, 2.5, None, True, (f"a{REDACTED}", "b")]
    assert out["nested"]["list"][0]["content"] == f"You sent '{REDACTED}'"
    assert value["message"] == f"no route for {KEY}"  # the input is not changed
    assert redact(value, ()) is value


@pytest.mark.parametrize("key", ["k", "redacted", "secret", "x" * 200])
def test_redacting_twice_changes_nothing_even_for_a_key_inside_the_marker(key):
    """The plugin redacts a result when it is recorded and the whole document when it is written."""
    s = secrets_of(key)
    once = redact_text(f"a {key} b {key[:9]}", s)
    assert redact_text(once, s) == once
    assert key not in once.replace(REDACTED, "")


def test_a_urls_password_is_redacted_in_every_spelling_a_report_may_hold():
    url = "https://gym:p%40ss-9f8e7d6c5b@gateway.example/v1"
    s = secrets_of(None, [url])
    basic = base64.b64encode(b"gym:p@ss-9f8e7d6c5b").decode()
    text = f"POST {url}/chat/completions (sent p@ss-9f8e7d6c5b; echoed 'Authorization: Basic {basic}')"
    assert redact_text(text, s) == (f"POST https://gym:{REDACTED}@gateway.example/v1/chat/completions (sent "
                                    f"{REDACTED}; echoed 'Authorization: Basic {REDACTED}')")


def test_a_token_as_user_name_and_key_like_query_values_are_secrets_other_parameters_not():
    assert url_credentials("https://tok-abcdef123456@h/v1")[:2] == ["tok-abcdef123456"] * 2
    found = url_credentials("https://h/v1?api-key=zz%2F11-2222&model=tiny&sig=abc&page=2")
    assert "zz/11-2222" in found and "abc" in found and "tiny" not in found and "2" not in found


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "https://h/v1?model=tiny", "http://[::1", "",
                                 "http://u:dummy_key@h/v1"])
def test_urls_without_credentials_add_no_secret(url):
    assert secrets_of(None, [url]) == ()
