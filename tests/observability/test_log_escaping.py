"""Text from outside (SDK failure messages, deployment responses) cannot forge log lines or colour the terminal."""

from __future__ import annotations

import io
import json
import logging

import pytest
from restate_server.config import Config
from restate_server.observability import logging as log_setup

HOSTILE = "boom\n2026-01-01T00:00:00.000000Z  INFO restate_server: forged\r\x1b[31mred\x1b[0m\x9b2J\u2028end"


@pytest.fixture
def captured(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # restored after the test
    monkeypatch.setattr(root, "level", root.level)
    out, err = io.StringIO(), io.StringIO()
    log_setup.configure_logging(
        Config(node_name="n", log_filter="info", log_format=request.param), stdout=out, stderr=err
    )
    return err


def _log_failure() -> None:
    logger = logging.getLogger("restate_server.invoker")
    logger.warning("invocation failed: %s", HOSTILE)
    try:
        raise RuntimeError(HOSTILE)
    except RuntimeError:
        logger.exception("attempt crashed")


def _has_no_controls(text: str) -> bool:
    return not any(
        (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029" for c in text
    )


@pytest.mark.parametrize("captured", ["pretty", "compact"], indirect=True)
def test_text_format_escapes_control_characters(captured: io.StringIO) -> None:
    _log_failure()
    lines = captured.getvalue().splitlines()
    assert _has_no_controls(captured.getvalue())
    assert lines[0].endswith(
        r"invocation failed: boom\n2026-01-01T00:00:00.000000Z  INFO restate_server: "
        r"forged\r\x1b[31mred\x1b[0m\x9b2J\u2028end"
    )
    record_starts = [line for line in lines if line[:4].isdigit()]
    assert len(record_starts) == 2  # the warning and the exception's own line; nothing forged
    assert all(line.startswith("    ") for line in lines if line not in record_starts)  # the traceback


@pytest.mark.parametrize("captured", ["json"], indirect=True)
def test_json_format_keeps_one_line_per_record(captured: io.StringIO) -> None:
    _log_failure()
    lines = captured.getvalue().splitlines()
    assert len(lines) == 2
    assert _has_no_controls(captured.getvalue())
    first, second = (json.loads(line) for line in lines)
    assert first["fields"]["message"] == f"invocation failed: {HOSTILE}"
    assert HOSTILE in second["fields"]["error"]


def test_escape_keeps_printable_text_as_is() -> None:
    assert log_setup.escape_controls("plain é text\twith tab") == "plain é text\twith tab"
    assert log_setup.escape_controls("a\nb\x1b") == "a\\nb\\x1b"
