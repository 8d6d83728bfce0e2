"""The HTTP face of fakekube: requests parsed into API calls, answers and errors rendered as JSON.

Run it as ``python -m e2e.fakekube --host 127.0.0.1 --port 0 --ready-file F``: once it listens it writes
its URL to F (so a test can start it on a free port). It only binds loopback addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from .. import loopback
from . import discovery, errors, gc, podlogs, routing, subresources, tables, watch
from .objects import Objects
from .resources import Registry, ResourceType
from .selectors import field_selector, label_selector
from .store import JsonObj, Store, meta

logger = logging.getLogger(__name__)

OBJECTS: web.AppKey[Objects] = web.AppKey("objects", Objects)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as e:
        return web.json_response(e.status(), status=e.code)
    except web.HTTPException:
        raise
    except Exception as e:  # a bug here must reach the client as a 500, not a dropped connection
        logger.exception("internal error on %s %s", request.method, request.path)
        return web.json_response(errors.ApiError(500, "InternalError", repr(e)).status(), status=500)


async def _body(request: web.Request) -> Any:
    ctype = request.content_type
    if "protobuf" in ctype:
        raise errors.ApiError(
            415, "UnsupportedMediaType", "fakekube speaks JSON only (use kubectl -f with YAML)"
        )
    raw = await request.read()
    if not raw:
        return {}
    try:
        if ctype == "application/apply-patch+yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise errors.bad_request(f"cannot parse the request body: {e}") from e


def _json(data: JsonObj, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def discovery_handler(request: web.Request) -> web.Response:
    objects = request.app[OBJECTS]
    parts = [p for p in request.path.split("/") if p]
    doc: JsonObj | None = None
    if parts == ["version"]:
        doc = discovery.version_info()
    elif parts == ["api"]:
        doc = discovery.api_versions(f"{request.host}")
    elif parts == ["apis"]:
        doc = discovery.api_group_list(objects.registry)
    elif len(parts) == 2 and parts[0] == "api":
        doc = discovery.api_resource_list(objects.registry, "", parts[1])
    elif len(parts) == 2 and parts[0] == "apis":
        doc = discovery.api_group(objects.registry, parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        doc = discovery.api_resource_list(objects.registry, parts[1], parts[2])
    elif parts in (["healthz"], ["readyz"], ["livez"]):
        return web.Response(text="ok")
    if doc is None:
        raise errors.ApiError(
            404, "NotFound", f"the server could not find the requested resource ({request.path})"
        )
    return _json(doc)


def _list(objects: Objects, rt: ResourceType, namespace: str | None, request: web.Request) -> JsonObj:
    label = label_selector(request.query.get("labelSelector"))
    field = field_selector(request.query.get("fieldSelector"))
    visible = watch.visibility(namespace, label, field)
    items = [objects.present(rt, o) for o in objects.store.objects_of(rt.key) if visible(o)]
    if tables.wants_table(request.headers.get("Accept", "")):
        return tables.table(rt, items, str(objects.store.rv))
    return {
        "kind": f"{rt.kind}List",
        "apiVersion": rt.api_version,
        "metadata": {"resourceVersion": str(objects.store.rv)},
        "items": items,
    }


def _not_found(request: web.Request) -> errors.ApiError:
    return errors.ApiError(
        404, "NotFound", f"the server could not find the requested resource ({request.path})"
    )


def _resolve(request: web.Request, objects: Objects) -> tuple[routing.Target, ResourceType] | None:
    """The target and its type; None for non-resource URLs (discovery); 404 for unknown ones."""
    target = routing.parse(request.path)
    if target is None:
        return None
    rt = objects.registry.lookup(target.group, target.version, target.plural)
    if rt is None or (target.namespace is not None and not rt.namespaced):
        raise _not_found(request)
    allowed = {None, "status" if rt.status else None, "scale" if rt.scale else None}
    if rt.key == ("", "pods"):
        allowed.add("log")
    if target.sub not in allowed or (target.sub is not None and target.name is None):
        raise _not_found(request)
    return target, rt


async def resource_handler(request: web.Request) -> web.StreamResponse:
    objects = request.app[OBJECTS]
    resolved = _resolve(request, objects)
    if resolved is None:
        return await discovery_handler(request)
    target, rt = resolved
    if request.method == "GET":
        return await _read(request, objects, target, rt)
    body = await _body(request)  # the last await of a write: what follows runs atomically
    with objects.dry(request.query.get("dryRun") == "All"):
        return _write(request, objects, target, rt, body)


async def _read(
    request: web.Request, objects: Objects, target: routing.Target, rt: ResourceType
) -> web.StreamResponse:
    ns, name = target.namespace or "", target.name
    table = tables.wants_table(request.headers.get("Accept", ""))
    if name is None:
        scope = target.namespace if rt.namespaced else None
        if request.query.get("watch") not in ("1", "true"):
            return _json(_list(objects, rt, scope, request))
        label = label_selector(request.query.get("labelSelector"))
        field = field_selector(request.query.get("fieldSelector"))
        visible = watch.visibility(scope, label, field)

        def present(o: JsonObj) -> JsonObj:
            obj = objects.present(rt, o)
            return tables.table(rt, [obj], meta(o)["resourceVersion"]) if table else obj

        return await watch.serve(request, objects.store, rt, visible, present)
    if target.sub == "log":
        return await podlogs.pod_log(request, objects, rt, ns, name)
    if target.sub == "scale":
        return _json(subresources.scale_of(rt, objects.get(rt, ns, name)))
    obj = objects.present(rt, objects.get(rt, ns, name))
    if table and target.sub is None:
        return _json(tables.table(rt, [obj], meta(obj)["resourceVersion"]))
    return _json(obj)


def _write(
    request: web.Request, objects: Objects, target: routing.Target, rt: ResourceType, body: Any
) -> web.Response:
    method, ns, name = request.method, target.namespace or "", target.name
    if name is None:
        if method == "POST":
            if rt.namespaced and target.namespace is None:
                raise errors.bad_request("a namespaced object must be created in a namespace")
            if not isinstance(body, dict):
                raise errors.bad_request("the body must be an object")
            return _json(objects.present(rt, objects.create(rt, ns, body)), 201)
        if method == "DELETE":
            listed = _list(objects, rt, target.namespace if rt.namespaced else None, request)
            for item in listed["items"]:
                md = meta(item)
                objects.delete(rt, md.get("namespace", ""), md["name"])
            return _json(listed)
    elif target.sub == "scale" and method == "PUT":
        return _json(subresources.write_scale(objects, rt, ns, name, body))
    elif target.sub == "scale" and method == "PATCH":
        return _json(subresources.patch_scale(objects, rt, ns, name, request.content_type, body))
    elif target.sub in (None, "status") and method == "PUT":
        return _json(objects.present(rt, objects.update(rt, ns, name, body, sub=target.sub)))
    elif target.sub in (None, "status") and method == "PATCH":
        obj, created = objects.patch(
            rt,
            ns,
            name,
            content_type=request.content_type,
            patch=body,
            sub=target.sub,
            field_manager=request.query.get("fieldManager", ""),
        )
        return _json(objects.present(rt, obj), 201 if created else 200)
    elif target.sub is None and method == "DELETE":
        options = dict(body) if isinstance(body, dict) else {}
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        return _json(objects.present(rt, objects.delete(rt, ns, name, options)))
    raise errors.method_not_allowed(f"{method} is not allowed on {request.path}")


def make_app(*, service_prefix: str) -> web.Application:
    app = web.Application(middlewares=[render_errors], client_max_size=64 * 1024 * 1024)
    app[OBJECTS] = Objects(Registry(), Store(), service_prefix=service_prefix)

    async def collector(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(gc.run(app[OBJECTS]), name="fakekube-gc")
        yield
        app[OBJECTS].store.close_watches()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(collector)
    app.router.add_route("*", "/{tail:.*}", resource_handler)
    return app


def random_service_prefix() -> str:
    """A loopback /24 for ClusterIPs (127.1.R.0) that nothing listens on, so parallel runs do not collide."""
    return loopback.free_prefix(1) + "0"


async def serve(host: str, port: int, ready_file: Path | None, service_prefix: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"fakekube binds loopback addresses only, not {host}")
    runner = web.AppRunner(make_app(service_prefix=service_prefix), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    url = f"http://{host}:{bound}"
    logger.info("fakekube listening on %s (service IPs from %s)", url, service_prefix)
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(url)
        tmp.rename(ready_file)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fakekube", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, help="write the server URL here once listening")
    parser.add_argument("--service-prefix", default=None, help="first address of the ClusterIP range")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(args.host, args.port, args.ready_file, args.service_prefix or random_service_prefix())
        )
