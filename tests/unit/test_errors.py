"""dockops.errors.root_cause: one short line a user can act on, whatever the library chain."""

from __future__ import annotations

import http.client
import ssl

import requests
import urllib3

from dockops.errors import root_cause


def test_root_cause_finds_the_os_error() -> None:
    inner = ConnectionRefusedError(111, "Connection refused")
    outer = requests.exceptions.ConnectionError(("Connection aborted.", inner))
    assert root_cause(outer) == "connection refused"
    assert root_cause(ValueError("plain\n  text")) == "plain text"


def test_an_engine_that_hung_up_reads_as_one_plain_reason() -> None:
    hung_up = http.client.RemoteDisconnected("Remote end closed connection without response")
    wrapped = requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", hung_up)
    )
    assert root_cause(wrapped) == "connection closed without an answer"
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    assert root_cause(refused) == "connection refused"


def _raised_in_chain(*chain: BaseException) -> BaseException:
    """The last of `chain`, each raised while handling the one before it (as urllib3 and
    requests wrap what they catch), so each has the one before as its __context__."""
    last: BaseException | None = None
    for exc in chain:
        exc.__context__ = last
        last = exc
    assert last is not None
    return last


def test_a_certificate_that_does_not_verify_says_openssls_reason() -> None:
    failed = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    failed.verify_message = "self-signed certificate"
    error = _raised_in_chain(
        failed,
        urllib3.exceptions.SSLError(failed),
        requests.exceptions.SSLError("HTTPSConnectionPool(host='r', port=443): Max retries"),
    )
    assert root_cause(error) == "certificate verify failed: self-signed certificate"


def test_an_ssl_error_loses_its_tag() -> None:
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)")
    error = _raised_in_chain(wrong, requests.exceptions.SSLError("pool: Max retries exceeded"))
    assert root_cause(error) == "wrong version number (_ssl.c:1000)"


def test_a_timeout_is_said_in_the_innermost_words() -> None:
    error = _raised_in_chain(
        TimeoutError("timed out"),
        urllib3.exceptions.ReadTimeoutError(None, "/v2/", "Read timed out. (read timeout=1.5)"),  # type: ignore[arg-type]
        requests.exceptions.ReadTimeout("HTTPConnectionPool(host='h', port=1): Read timed out."),
    )
    assert root_cause(error) == "timed out"


def test_the_line_is_cut_at_200_characters() -> None:
    assert root_cause(ValueError("x" * 500)) == "x" * 200
    assert root_cause(OSError(5, "Input/output error " * 30)).startswith("input/output error")
    assert len(root_cause(OSError(5, "Input/output error " * 30))) == 200
