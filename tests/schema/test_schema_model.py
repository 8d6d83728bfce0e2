"""Input validation and content-type matching, with upstream's error texts."""

from __future__ import annotations

import pytest
from restate_server.schema.model import InputRules, ServiceType, content_type_matches

JSON = InputRules(content_type="application/json", json_schema={"type": "string"})


@pytest.mark.parametrize(
    ("pattern", "actual", "expected"),
    [
        ("*/*", "text/plain", True),
        ("application/*", "application/json", True),
        ("application/*", "text/json", False),
        ("application/json", "application/json; charset=utf-8", True),
        ("application/json", "application/jsonx", False),
        ("application/json", "garbage", False),
    ],
    ids=["any", "type-wildcard", "type-mismatch", "params-ignored", "subtype-mismatch", "no-slash"],
)
def test_content_type_matches_wildcards_as_upstream(pattern: str, actual: str, expected: bool) -> None:
    assert content_type_matches(pattern, actual) is expected


@pytest.mark.parametrize(
    ("rules", "content_type", "body", "error"),
    [
        (JSON, "text/plain", b"hello", "Content-type 'text/plain' does not match 'application/json'"),
        (JSON, None, b"", None),
        (JSON, "application/json", b'"x"', None),
        (JSON, None, b"x", "Empty content-type"),
        (JSON, "application/json", b"", "Empty body not allowed"),
        (
            InputRules(content_type=None),
            "application/json",
            b"1",
            "Expected body and content-type to be empty, but wasn't with content-type 'Some(\"application/json\")'",
        ),
        (InputRules(content_type=None), None, b"", None),
        (InputRules(required=True, content_type="application/json"), None, b"", "Empty content-type"),
        (InputRules(), "anything/else", b"", None),
    ],
    ids=[
        "mismatch",
        "empty-optional",
        "json",
        "body-no-ct",
        "ct-no-body",
        "no-input",
        "no-input-empty",
        "required",
        "default",
    ],
)
def test_input_rules_validate_returns_upstream_text(
    rules: InputRules, content_type: str | None, body: bytes, error: str | None
) -> None:
    assert rules.validate(content_type, body) == error


def test_service_type_keyed() -> None:
    assert not ServiceType.SERVICE.keyed
    assert ServiceType.VIRTUAL_OBJECT.keyed
    assert ServiceType.WORKFLOW.keyed
