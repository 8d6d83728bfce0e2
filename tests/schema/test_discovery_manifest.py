"""Sans-IO discovery: Accept header, content-type negotiation, manifest validation, error codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from restate_server.protocol import discovery
from schema_fixtures import V4, manifest


def parse(
    doc: Any, *, content_type: str | None = V4, raw: bytes | None = None
) -> discovery.DiscoveredEndpoint:
    body = raw if raw is not None else json.dumps(doc).encode()
    return discovery.parse_manifest(
        body,
        content_type=content_type,
        http_version=discovery.HTTP_2,
        x_restate_server="restate-sdk-python/1.3.0",
    )


def test_accept_lists_manifest_v1_to_v4() -> None:
    assert (
        ", ".join(f"application/vnd.restate.endpointmanifest.v{v}+json" for v in range(1, 5))
        == discovery.ACCEPT
    )


def test_discover_url_joins_path() -> None:
    assert discovery.discover_url("http://h:9080") == "http://h:9080/discover"
    assert discovery.discover_url("http://h:9080/restate/v1/") == "http://h:9080/restate/v1/discover"


def test_parse_real_manifest() -> None:
    ep = parse(manifest())
    assert ep.protocol_mode == discovery.BIDI_STREAM
    assert (ep.min_protocol_version, ep.max_protocol_version) == (5, 7)
    assert ep.sdk_version == "restate-sdk-python/1.3.0"
    assert [s.name for s in ep.services] == ["Greeter", "Counter", "Signup"]
    get = ep.services[1].handlers[1]
    assert get.input == discovery.InputManifest()


@pytest.mark.parametrize(
    ("content_type", "code"),
    [(None, "META0013"), ("text/html; charset=utf-8", "META0013"), ("application/json", "META0013")],
    ids=["missing", "html", "plain-json"],
)
def test_parse_refuses_foreign_content_type(content_type: str | None, code: str) -> None:
    with pytest.raises(discovery.BadResponse) as info:
        parse(manifest(), content_type=content_type)
    assert info.value.code == code
    assert info.value.message.startswith("received a bad response from the SDK:")


@pytest.mark.parametrize(
    ("versions", "error"),
    [
        ((1, 4), discovery.UnsupportedProtocol),
        ((8, 9), discovery.UnsupportedProtocol),
        ((7, 5), discovery.BadResponse),
    ],
    ids=["too-old", "too-new", "inverted"],
)
def test_parse_checks_protocol_range(
    versions: tuple[int, int], error: type[discovery.DiscoveryError]
) -> None:
    with pytest.raises(error) as info:
        parse(manifest(minProtocolVersion=versions[0], maxProtocolVersion=versions[1]))
    if error is discovery.UnsupportedProtocol:
        assert info.value.code == "META0012"
        assert "Supported versions by this runtime are [5, 7]" in info.value.message


def test_parse_requires_protocol_mode() -> None:
    doc = manifest()
    del doc["protocolMode"]
    with pytest.raises(discovery.BadResponse, match="missing protocol mode"):
        parse(doc)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("services"),
        lambda d: d["services"][0].update(name="1bad"),
        lambda d: d["services"][0]["handlers"][0].update(name="bad-name"),
        lambda d: d["services"][0].update(ty="ACTOR"),
        lambda d: d.update(minProtocolVersion="5"),
    ],
    ids=["no-services", "service-name", "handler-name", "service-type", "version-type"],
)
def test_parse_refuses_malformed_manifest(mutate: Any) -> None:
    doc = manifest()
    mutate(doc)
    with pytest.raises(discovery.UndecodableManifest) as info:
        parse(doc)
    assert info.value.code is None


def test_parse_refuses_non_json() -> None:
    with pytest.raises(discovery.UndecodableManifest, match="cannot be decoded"):
        parse(None, raw=b"<html>hi</html>")


def test_parse_reads_v3_options() -> None:
    doc = manifest()
    doc["services"][0].update(ingressPrivate=True, journalRetention=1000, retryPolicyOnMaxAttempts="KILL")
    options = parse(doc).services[0].options
    assert options.ingress_private is True
    assert options.journal_retention == 1000
    assert options.retry_on_max_attempts == "KILL"
