from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("partition", "record")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    partition: int
    record: bytes
    def __init__(self, partition: _Optional[int] = ..., record: _Optional[bytes] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ("partition", "records")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    partition: int
    records: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, partition: _Optional[int] = ..., records: _Optional[_Iterable[bytes]] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ("last_lsn",)
    LAST_LSN_FIELD_NUMBER: _ClassVar[int]
    last_lsn: int
    def __init__(self, last_lsn: _Optional[int] = ...) -> None: ...

class InvocationRequest(_message.Message):
    __slots__ = ("partition", "invocation_id")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    INVOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    partition: int
    invocation_id: bytes
    def __init__(self, partition: _Optional[int] = ..., invocation_id: _Optional[bytes] = ...) -> None: ...

class Encoded(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("tables",)
    TABLES_FIELD_NUMBER: _ClassVar[int]
    tables: _containers.RepeatedCompositeFieldContainer[TableScan]
    def __init__(self, tables: _Optional[_Iterable[_Union[TableScan, _Mapping]]] = ...) -> None: ...

class TableScan(_message.Message):
    __slots__ = ("table", "columns", "only", "restricted")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ONLY_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    table: str
    columns: _containers.RepeatedScalarFieldContainer[str]
    only: _containers.RepeatedScalarFieldContainer[bytes]
    restricted: bool
    def __init__(self, table: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ..., only: _Optional[_Iterable[bytes]] = ..., restricted: _Optional[bool] = ...) -> None: ...

class ScanChunk(_message.Message):
    __slots__ = ("table", "arrow_ipc")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    table: str
    arrow_ipc: bytes
    def __init__(self, table: _Optional[str] = ..., arrow_ipc: _Optional[bytes] = ...) -> None: ...
