"""`[admin]` options: the admin REST API (upstream `config/admin.rs`)."""

from __future__ import annotations

from dataclasses import dataclass

from restate_server.config.layers import Reader

USED_KEYS = (
    "admin.bind-address",
    "admin.bind-ip",
    "admin.bind-port",
    "admin.advertised-address",
    "admin.advertised-admin-endpoint",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminOptions:
    """`[admin]`: the admin API (`config/admin.rs`)."""

    bind_address: str = "0.0.0.0:9070"
    """`bind-address` (`RESTATE_ADMIN__BIND_ADDRESS`), else `bind-ip` (inherited) and `bind-port`."""
    advertised_admin_endpoint: str | None = None
    """`advertised-admin-endpoint` (or the listener's `advertised-address`): the admin URL this node
    reports; None means derive it from the bind address."""


def read(get: Reader, node_bind_ip: str | None) -> AdminOptions:
    return AdminOptions(
        bind_address=get.listener_address("admin.", 9070, node_bind_ip),
        advertised_admin_endpoint=get.optional_str("admin.advertised-admin-endpoint")
        or get.optional_str("admin.advertised-address"),
    )


def dump(admin: AdminOptions) -> dict[str, object]:
    table: dict[str, object] = {"bind-address": admin.bind_address}
    if admin.advertised_admin_endpoint is not None:
        table["advertised-admin-endpoint"] = admin.advertised_admin_endpoint
    return table
