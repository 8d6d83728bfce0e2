from google.protobuf import empty_pb2 as _empty_pb2
from restate_server.cluster.ctl import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentResponse(_message.Message):
    __slots__ = ("status", "node_id", "cluster_name", "roles", "age_s", "admin_status", "worker_status", "log_server_status", "metadata_server_status", "nodes_config_version", "logs_version", "schema_version", "partition_table_version")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    AGE_S_FIELD_NUMBER: _ClassVar[int]
    ADMIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    WORKER_STATUS_FIELD_NUMBER: _ClassVar[int]
    LOG_SERVER_STATUS_FIELD_NUMBER: _ClassVar[int]
    METADATA_SERVER_STATUS_FIELD_NUMBER: _ClassVar[int]
    NODES_CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOGS_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.NodeStatus
    node_id: _common_pb2.NodeId
    cluster_name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    age_s: int
    admin_status: _common_pb2.AdminStatus
    worker_status: _common_pb2.WorkerStatus
    log_server_status: _common_pb2.LogServerStatus
    metadata_server_status: _common_pb2.MetadataServerStatus
    nodes_config_version: int
    logs_version: int
    schema_version: int
    partition_table_version: int
    def __init__(self, status: _Optional[_Union[_common_pb2.NodeStatus, str]] = ..., node_id: _Optional[_Union[_common_pb2.NodeId, _Mapping]] = ..., cluster_name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., age_s: _Optional[int] = ..., admin_status: _Optional[_Union[_common_pb2.AdminStatus, str]] = ..., worker_status: _Optional[_Union[_common_pb2.WorkerStatus, str]] = ..., log_server_status: _Optional[_Union[_common_pb2.LogServerStatus, str]] = ..., metadata_server_status: _Optional[_Union[_common_pb2.MetadataServerStatus, str]] = ..., nodes_config_version: _Optional[int] = ..., logs_version: _Optional[int] = ..., schema_version: _Optional[int] = ..., partition_table_version: _Optional[int] = ...) -> None: ...

class GetMetadataRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: _common_pb2.MetadataKind
    def __init__(self, kind: _Optional[_Union[_common_pb2.MetadataKind, str]] = ...) -> None: ...

class GetMetadataResponse(_message.Message):
    __slots__ = ("encoded",)
    ENCODED_FIELD_NUMBER: _ClassVar[int]
    encoded: bytes
    def __init__(self, encoded: _Optional[bytes] = ...) -> None: ...

class ClusterHealthResponse(_message.Message):
    __slots__ = ("cluster_name", "metadata_cluster_health")
    CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_CLUSTER_HEALTH_FIELD_NUMBER: _ClassVar[int]
    cluster_name: str
    metadata_cluster_health: EmbeddedMetadataClusterHealth
    def __init__(self, cluster_name: _Optional[str] = ..., metadata_cluster_health: _Optional[_Union[EmbeddedMetadataClusterHealth, _Mapping]] = ...) -> None: ...

class EmbeddedMetadataClusterHealth(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[_common_pb2.NodeId]
    def __init__(self, members: _Optional[_Iterable[_Union[_common_pb2.NodeId, _Mapping]]] = ...) -> None: ...
