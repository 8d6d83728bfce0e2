from restate_server.cluster.ctl import cluster_state_pb2 as _cluster_state_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TailState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TailState_UNKNOWN: _ClassVar[TailState]
    OPEN: _ClassVar[TailState]
    SEALED: _ClassVar[TailState]
TailState_UNKNOWN: TailState
OPEN: TailState
SEALED: TailState

class ClusterStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClusterStateResponse(_message.Message):
    __slots__ = ("cluster_state",)
    CLUSTER_STATE_FIELD_NUMBER: _ClassVar[int]
    cluster_state: _cluster_state_pb2.ClusterState
    def __init__(self, cluster_state: _Optional[_Union[_cluster_state_pb2.ClusterState, _Mapping]] = ...) -> None: ...

class ListLogsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLogsResponse(_message.Message):
    __slots__ = ("logs",)
    LOGS_FIELD_NUMBER: _ClassVar[int]
    logs: bytes
    def __init__(self, logs: _Optional[bytes] = ...) -> None: ...

class CreatePartitionSnapshotRequest(_message.Message):
    __slots__ = ("partition_id", "min_target_lsn", "trim_log")
    PARTITION_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_TARGET_LSN_FIELD_NUMBER: _ClassVar[int]
    TRIM_LOG_FIELD_NUMBER: _ClassVar[int]
    partition_id: int
    min_target_lsn: int
    trim_log: bool
    def __init__(self, partition_id: _Optional[int] = ..., min_target_lsn: _Optional[int] = ..., trim_log: _Optional[bool] = ...) -> None: ...

class CreatePartitionSnapshotResponse(_message.Message):
    __slots__ = ("snapshot_id", "log_id", "min_applied_lsn")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_APPLIED_LSN_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: str
    log_id: int
    min_applied_lsn: int
    def __init__(self, snapshot_id: _Optional[str] = ..., log_id: _Optional[int] = ..., min_applied_lsn: _Optional[int] = ...) -> None: ...

class FindTailRequest(_message.Message):
    __slots__ = ("log_id",)
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    log_id: int
    def __init__(self, log_id: _Optional[int] = ...) -> None: ...

class FindTailResponse(_message.Message):
    __slots__ = ("log_id", "segment_index", "tail_state", "tail_lsn")
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    TAIL_STATE_FIELD_NUMBER: _ClassVar[int]
    TAIL_LSN_FIELD_NUMBER: _ClassVar[int]
    log_id: int
    segment_index: int
    tail_state: TailState
    tail_lsn: int
    def __init__(self, log_id: _Optional[int] = ..., segment_index: _Optional[int] = ..., tail_state: _Optional[_Union[TailState, str]] = ..., tail_lsn: _Optional[int] = ...) -> None: ...
