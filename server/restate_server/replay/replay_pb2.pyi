from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReplayRequest(_message.Message):
    __slots__ = ("namespace", "agent_id", "start_ts", "end_ts")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TS_FIELD_NUMBER: _ClassVar[int]
    END_TS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    agent_id: str
    start_ts: int
    end_ts: int
    def __init__(self, namespace: _Optional[str] = ..., agent_id: _Optional[str] = ..., start_ts: _Optional[int] = ..., end_ts: _Optional[int] = ...) -> None: ...

class ReplayEvent(_message.Message):
    __slots__ = ("txn_id", "commit_ts", "operations")
    TXN_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TS_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    txn_id: str
    commit_ts: int
    operations: _containers.RepeatedCompositeFieldContainer[ReplayOperation]
    def __init__(self, txn_id: _Optional[str] = ..., commit_ts: _Optional[int] = ..., operations: _Optional[_Iterable[_Union[ReplayOperation, _Mapping]]] = ...) -> None: ...

class ReplayOperation(_message.Message):
    __slots__ = ("key", "value", "version")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: _struct_pb2.Struct
    version: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...
