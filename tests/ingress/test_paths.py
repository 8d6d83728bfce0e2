"""The ingress URL grammar, as upstream's `path_parsing.rs` reads paths (pure: no app, no I/O)."""

from __future__ import annotations

import pytest
from restate_server.ingress import errors, paths

KEYED = {"Greeter": False, "Counter": True, "Signup": True}


def parse(path: str) -> paths.Route:
    return paths.parse(paths.normalise(path), KEYED.get)


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/Greeter/greet", paths.ServiceCall(service="Greeter", key=None, handler="greet", send=False)),
        ("/Greeter/greet/send/", paths.ServiceCall(service="Greeter", key=None, handler="greet", send=True)),
        ("/Counter/k%C3%A9y/add", paths.ServiceCall(service="Counter", key="kéy", handler="add", send=False)),
        ("/Counter//add", paths.ServiceCall(service="Counter", key="", handler="add", send=False)),
        (
            "/restate/call/Greeter/greet",
            paths.ServiceCall(service="Greeter", key=None, handler="greet", send=False),
        ),
        (
            "/restate/send/Counter/a%2Fb/add",
            paths.ServiceCall(service="Counter", key="a/b", handler="add", send=True),
        ),
        (
            "/restate/scope/s1/call/Greeter/greet",
            paths.ServiceCall(service="Greeter", key=None, handler="greet", send=False, scope="s1"),
        ),
        (
            "/restate/attach/inv_x",
            paths.InvocationRequest(
                target=paths.ByInvocationId(invocation_id="inv_x"), action=paths.Action.ATTACH
            ),
        ),
        ("/restate/output", paths.InvocationRequest(target=None, action=paths.Action.OUTPUT)),
        ("/restate/lookup", paths.Lookup()),
        ("/restate/health", paths.Health()),
        ("/restate/a/sign_x/reject", paths.Awakeable(awakeable_id="sign_x", action="reject")),
        (
            "/restate/invocation/Greeter/greet/ik/output",
            paths.InvocationRequest(
                target=paths.ByIdempotencyKey(
                    service="Greeter", key=None, handler="greet", idempotency_key="ik"
                ),
                action=paths.Action.OUTPUT,
            ),
        ),
        (
            "/restate/invocation/Counter/k%20/add/ik/attach",
            paths.InvocationRequest(
                target=paths.ByIdempotencyKey(
                    service="Counter", key="k ", handler="add", idempotency_key="ik"
                ),
                action=paths.Action.ATTACH,
            ),
        ),
        (
            "/restate/workflow/Signup/u%401/attach",
            paths.InvocationRequest(
                target=paths.ByWorkflow(service="Signup", key="u@1"), action=paths.Action.ATTACH
            ),
        ),
    ],
    ids=[
        "service",
        "send-trailing-slash",
        "utf8-key",
        "empty-key",
        "restate-call",
        "restate-send-object",
        "scope",
        "attach-id",
        "output-by-body",
        "lookup",
        "health",
        "awakeable-alias",
        "idempotent-service",
        "idempotent-object",
        "workflow",
    ],
)
def test_paths_parse_as_upstream(path: str, route: paths.Route) -> None:
    assert parse(path) == route


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/Gr%65eter/greet", errors.ServiceNotFound),  # names are not percent-decoded
        ("/Counter/%FF/add", errors.KeyNotUtf8),
        ("/Greeter/greet/extra", errors.BadServicePath),
        ("/Counter/k", errors.BadServicePath),
        ("/restate/call/Greeter", errors.BadRestateApiPath),
        ("/restate/attach/a/b", errors.BadRestateApiPath),
        ("/restate/awakeables/x", errors.BadAwakeablesPath),
        ("/restate/workflow/Signup/k", errors.BadWorkflowPath),
        ("/restate/invocation/Greeter/greet/ik", errors.BadInvocationPath),
        ("/restate/invocation/x/nope", errors.NotFound),
        ("/restate/nope", errors.NotFound),
        ("/Greeter", errors.BadPath),
    ],
    ids=[
        "encoded-service-name",
        "invalid-utf8-key",
        "extra-segment",
        "object-without-handler",
        "call-without-handler",
        "attach-extra",
        "awakeable-without-action",
        "workflow-without-action",
        "invocation-without-action",
        "invocation-unknown-action",
        "unknown-verb",
        "one-segment",
    ],
)
def test_bad_paths_are_refused_as_upstream(path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse(path)


def test_undecodable_key_message_is_rusts() -> None:
    with pytest.raises(errors.KeyNotUtf8) as caught:
        parse("/Counter/a%FF/add")
    assert caught.value.message == (
        "bad path, cannot decode key: FromUtf8Error { bytes: [97, 255], "
        "error: Utf8Error { valid_up_to: 1, error_len: Some(1) } }"
    )


@pytest.mark.parametrize(
    ("path", "normalised"),
    [("/a/b/", "/a/b"), ("//a/b", "/a/b"), ("/a/b///", "/a/b"), ("/", "/"), ("/a//b", "/a//b")],
    ids=["trailing", "leading", "many-trailing", "root", "inner"],
)
def test_normalise_trims_like_tower(path: str, normalised: str) -> None:
    assert paths.normalise(path) == normalised
