from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class NodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NodeStatus_UNKNOWN: _ClassVar[NodeStatus]
    ALIVE: _ClassVar[NodeStatus]
    STARTING_UP: _ClassVar[NodeStatus]
    SHUTTING_DOWN: _ClassVar[NodeStatus]

class WorkerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WorkerStatus_UNKNOWN: _ClassVar[WorkerStatus]
    WorkerStatus_READY: _ClassVar[WorkerStatus]
    WorkerStatus_STARTING_UP: _ClassVar[WorkerStatus]

class AdminStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AdminStatus_UNKNOWN: _ClassVar[AdminStatus]
    AdminStatus_READY: _ClassVar[AdminStatus]
    AdminStatus_STARTING_UP: _ClassVar[AdminStatus]

class LogServerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LogServerStatus_UNKNOWN: _ClassVar[LogServerStatus]
    LogServerStatus_READY: _ClassVar[LogServerStatus]
    LogServerStatus_STARTING_UP: _ClassVar[LogServerStatus]
    LogServerStatus_FAILSAFE: _ClassVar[LogServerStatus]
    LogServerStatus_STOPPING: _ClassVar[LogServerStatus]

class MetadataServerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MetadataServerStatus_UNKNOWN: _ClassVar[MetadataServerStatus]
    MetadataServerStatus_STARTING_UP: _ClassVar[MetadataServerStatus]
    MetadataServerStatus_AWAITING_PROVISIONING: _ClassVar[MetadataServerStatus]
    MetadataServerStatus_MEMBER: _ClassVar[MetadataServerStatus]
    MetadataServerStatus_STANDBY: _ClassVar[MetadataServerStatus]

class MetadataKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MetadataKind_UNKNOWN: _ClassVar[MetadataKind]
    NODES_CONFIGURATION: _ClassVar[MetadataKind]
    SCHEMA: _ClassVar[MetadataKind]
    PARTITION_TABLE: _ClassVar[MetadataKind]
    LOGS: _ClassVar[MetadataKind]
NodeStatus_UNKNOWN: NodeStatus
ALIVE: NodeStatus
STARTING_UP: NodeStatus
SHUTTING_DOWN: NodeStatus
WorkerStatus_UNKNOWN: WorkerStatus
WorkerStatus_READY: WorkerStatus
WorkerStatus_STARTING_UP: WorkerStatus
AdminStatus_UNKNOWN: AdminStatus
AdminStatus_READY: AdminStatus
AdminStatus_STARTING_UP: AdminStatus
LogServerStatus_UNKNOWN: LogServerStatus
LogServerStatus_READY: LogServerStatus
LogServerStatus_STARTING_UP: LogServerStatus
LogServerStatus_FAILSAFE: LogServerStatus
LogServerStatus_STOPPING: LogServerStatus
MetadataServerStatus_UNKNOWN: MetadataServerStatus
MetadataServerStatus_STARTING_UP: MetadataServerStatus
MetadataServerStatus_AWAITING_PROVISIONING: MetadataServerStatus
MetadataServerStatus_MEMBER: MetadataServerStatus
MetadataServerStatus_STANDBY: MetadataServerStatus
MetadataKind_UNKNOWN: MetadataKind
NODES_CONFIGURATION: MetadataKind
SCHEMA: MetadataKind
PARTITION_TABLE: MetadataKind
LOGS: MetadataKind

class NodeId(_message.Message):
    __slots__ = ("id", "generation")
    ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    id: int
    generation: int
    def __init__(self, id: _Optional[int] = ..., generation: _Optional[int] = ...) -> None: ...

class GenerationalNodeId(_message.Message):
    __slots__ = ("id", "generation")
    ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    id: int
    generation: int
    def __init__(self, id: _Optional[int] = ..., generation: _Optional[int] = ...) -> None: ...

class LeaderEpoch(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class Lsn(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...
