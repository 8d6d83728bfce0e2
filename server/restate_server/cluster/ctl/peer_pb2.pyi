from google.protobuf import empty_pb2 as _empty_pb2
from restate_server.cluster.ctl import cluster_ctrl_svc_pb2 as _cluster_ctrl_svc_pb2
from restate_server.cluster.ctl import cluster_state_pb2 as _cluster_state_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
