from __future__ import annotations

import logging

import pytest

from chatserver import logs


def test_redact_scrubs_addresses_tokens_and_ciphertext() -> None:
    line = ("from 192.168.1.20 and 2001:db8::1 token=Zm9vYmFyYmF6cXV4cXV1eGNvcmdl "
            "id=0123456789abcdef0123456789abcdef ok")
    out = logs.redact(line)
    assert "192.168" not in out and "2001:db8" not in out
    assert "Zm9vYmFy" not in out and "0123456789abcdef" not in out
    assert out.endswith("ok")


def test_library_logger_keeps_templates_only(caplog: pytest.LogCaptureFixture) -> None:
    logger = logs.library_logger()
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger=logs.LIBRARY_LOGGER):
        logger.info("Received packet %s data %s", "MESSAGE", "secret-payload-xyz")
    assert "secret-payload-xyz" not in caplog.text
    assert "Received packet %s data %s" in caplog.text


def test_exception_text_is_dropped() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("payload",), None)
    try:
        raise ValueError("contains secret-abc")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    logs.Redact().filter(record)
    assert "secret-abc" not in record.getMessage()
    assert record.exc_info is None and "ValueError" in record.getMessage()
