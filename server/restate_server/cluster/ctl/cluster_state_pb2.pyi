import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from restate_server.cluster.ctl import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RunMode_UNKNOWN: _ClassVar[RunMode]
    LEADER: _ClassVar[RunMode]
    FOLLOWER: _ClassVar[RunMode]

class DetailedRunMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DetailedRunMode_UNKNOWN: _ClassVar[DetailedRunMode]
    DetailedRunMode_CANDIDATE: _ClassVar[DetailedRunMode]
    DetailedRunMode_FOLLOWER: _ClassVar[DetailedRunMode]
    DetailedRunMode_BECOMING_LEADER: _ClassVar[DetailedRunMode]
    DetailedRunMode_LEADER: _ClassVar[DetailedRunMode]

class ReplayStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ReplayStatus_UNKNOWN: _ClassVar[ReplayStatus]
    STARTING: _ClassVar[ReplayStatus]
    ACTIVE: _ClassVar[ReplayStatus]
    CATCHING_UP: _ClassVar[ReplayStatus]
RunMode_UNKNOWN: RunMode
LEADER: RunMode
FOLLOWER: RunMode
DetailedRunMode_UNKNOWN: DetailedRunMode
DetailedRunMode_CANDIDATE: DetailedRunMode
DetailedRunMode_FOLLOWER: DetailedRunMode
DetailedRunMode_BECOMING_LEADER: DetailedRunMode
DetailedRunMode_LEADER: DetailedRunMode
ReplayStatus_UNKNOWN: ReplayStatus
STARTING: ReplayStatus
ACTIVE: ReplayStatus
CATCHING_UP: ReplayStatus

class ClusterState(_message.Message):
    __slots__ = ("last_refreshed", "nodes_config_version", "partition_table_version", "nodes", "logs_metadata_version")
    class NodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: NodeState
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[NodeState, _Mapping]] = ...) -> None: ...
    LAST_REFRESHED_FIELD_NUMBER: _ClassVar[int]
    NODES_CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    LOGS_METADATA_VERSION_FIELD_NUMBER: _ClassVar[int]
    last_refreshed: _duration_pb2.Duration
    nodes_config_version: _common_pb2.Version
    partition_table_version: _common_pb2.Version
    nodes: _containers.MessageMap[int, NodeState]
    logs_metadata_version: _common_pb2.Version
    def __init__(self, last_refreshed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., nodes_config_version: _Optional[_Union[_common_pb2.Version, _Mapping]] = ..., partition_table_version: _Optional[_Union[_common_pb2.Version, _Mapping]] = ..., nodes: _Optional[_Mapping[int, NodeState]] = ..., logs_metadata_version: _Optional[_Union[_common_pb2.Version, _Mapping]] = ...) -> None: ...

class NodeState(_message.Message):
    __slots__ = ("alive", "dead")
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    alive: AliveNode
    dead: DeadNode
    def __init__(self, alive: _Optional[_Union[AliveNode, _Mapping]] = ..., dead: _Optional[_Union[DeadNode, _Mapping]] = ...) -> None: ...

class AliveNode(_message.Message):
    __slots__ = ("generational_node_id", "last_heartbeat_at", "partitions", "uptime_s")
    class PartitionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: PartitionProcessorStatus
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[PartitionProcessorStatus, _Mapping]] = ...) -> None: ...
    GENERATIONAL_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    generational_node_id: _common_pb2.GenerationalNodeId
    last_heartbeat_at: _timestamp_pb2.Timestamp
    partitions: _containers.MessageMap[int, PartitionProcessorStatus]
    uptime_s: int
    def __init__(self, generational_node_id: _Optional[_Union[_common_pb2.GenerationalNodeId, _Mapping]] = ..., last_heartbeat_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., partitions: _Optional[_Mapping[int, PartitionProcessorStatus]] = ..., uptime_s: _Optional[int] = ...) -> None: ...

class DeadNode(_message.Message):
    __slots__ = ("last_seen_alive",)
    LAST_SEEN_ALIVE_FIELD_NUMBER: _ClassVar[int]
    last_seen_alive: _timestamp_pb2.Timestamp
    def __init__(self, last_seen_alive: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PartitionProcessorStatus(_message.Message):
    __slots__ = ("updated_at", "planned_mode", "effective_mode", "last_observed_leader_epoch", "last_observed_leader_node", "last_applied_log_lsn", "last_record_applied_at", "replay_status", "durable_lsn", "target_tail_lsn", "last_archived_log_lsn", "detailed_effective_mode")
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PLANNED_MODE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_MODE_FIELD_NUMBER: _ClassVar[int]
    LAST_OBSERVED_LEADER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    LAST_OBSERVED_LEADER_NODE_FIELD_NUMBER: _ClassVar[int]
    LAST_APPLIED_LOG_LSN_FIELD_NUMBER: _ClassVar[int]
    LAST_RECORD_APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_STATUS_FIELD_NUMBER: _ClassVar[int]
    DURABLE_LSN_FIELD_NUMBER: _ClassVar[int]
    TARGET_TAIL_LSN_FIELD_NUMBER: _ClassVar[int]
    LAST_ARCHIVED_LOG_LSN_FIELD_NUMBER: _ClassVar[int]
    DETAILED_EFFECTIVE_MODE_FIELD_NUMBER: _ClassVar[int]
    updated_at: _timestamp_pb2.Timestamp
    planned_mode: RunMode
    effective_mode: RunMode
    last_observed_leader_epoch: _common_pb2.LeaderEpoch
    last_observed_leader_node: _common_pb2.NodeId
    last_applied_log_lsn: _common_pb2.Lsn
    last_record_applied_at: _timestamp_pb2.Timestamp
    replay_status: ReplayStatus
    durable_lsn: _common_pb2.Lsn
    target_tail_lsn: _common_pb2.Lsn
    last_archived_log_lsn: _common_pb2.Lsn
    detailed_effective_mode: DetailedRunMode
    def __init__(self, updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., planned_mode: _Optional[_Union[RunMode, str]] = ..., effective_mode: _Optional[_Union[RunMode, str]] = ..., last_observed_leader_epoch: _Optional[_Union[_common_pb2.LeaderEpoch, _Mapping]] = ..., last_observed_leader_node: _Optional[_Union[_common_pb2.NodeId, _Mapping]] = ..., last_applied_log_lsn: _Optional[_Union[_common_pb2.Lsn, _Mapping]] = ..., last_record_applied_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replay_status: _Optional[_Union[ReplayStatus, str]] = ..., durable_lsn: _Optional[_Union[_common_pb2.Lsn, _Mapping]] = ..., target_tail_lsn: _Optional[_Union[_common_pb2.Lsn, _Mapping]] = ..., last_archived_log_lsn: _Optional[_Union[_common_pb2.Lsn, _Mapping]] = ..., detailed_effective_mode: _Optional[_Union[DetailedRunMode, str]] = ...) -> None: ...
