"""The node's gRPC services, served on the node port beside its HTTP routes (see `server`)."""

from restate_server.node_services.server import NodeServices, Registration, grpc_target

__all__ = ["NodeServices", "Registration", "grpc_target"]
