"""The web UI under `/ui/` on the admin port: one static page that reads the admin API.

Upstream serves restatedev/restate-web-ui here, a React application built from its own repository;
that source is not published to any package registry, so it cannot be built here. This page is
this server's own, small and dependency-free: services, deployments, the latest invocations (through
`POST /query`, the CLI's SQL) and state. Its three files ship inside the package (`webui/`), are read
once, and are served with a content security policy that allows only themselves and the admin API
(same origin), so text from services can never run as script. `admin.disable-web-ui` turns it off.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

_ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self';"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


def _load() -> dict[str, bytes]:
    folder = resources.files("restate_server.admin") / "webui"
    return {name: (folder / name).read_bytes() for name in _ASSETS}


def install(app: web.Application) -> None:
    """Serve the UI at `/ui/` (and `/ui` redirects there) on the admin application."""
    assets = _load()

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info.get("name") or "index.html"
        if name not in assets:
            raise web.HTTPNotFound()
        return web.Response(body=assets[name], headers={"content-type": _ASSETS[name], **_HEADERS})

    async def to_slash(request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"location": "/ui/"})

    app.router.add_get("/ui", to_slash)
    app.router.add_get("/ui/", asset)
    app.router.add_get("/ui/{name}", asset)
