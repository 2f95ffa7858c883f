"""gRPC health, as load balancers check it, and server reflection, as tools discover the API."""

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from contract import TIMEOUT, pb

SERVICE = "cardlookup.v1.CardLookupService"


@pytest.mark.parametrize("service", [SERVICE, ""], ids=["card-lookup", "server"])
def test_health_is_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(channel):
    health = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def _schema(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """The file's schema only: no comments, no json_name (protoc and protox differ there)."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file)
    copy.ClearField("source_code_info")
    for message in copy.message_type:
        for field in message.field:
            field.ClearField("json_name")
    return copy


def test_reflection_serves_the_contract_in_proto(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    assert {SERVICE, "grpc.health.v1.Health"} <= set(database.get_services())
    served = database.FindFileContainingSymbol(SERVICE)
    assert served.name == "cardlookup/v1/card_lookup.proto"
    local = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(local)
    assert _schema(served) == _schema(local), (
        "the binary serves another contract than proto/: rebuild it (cargo build --release)"
    )
    # Reflection carries the proto's comments, the API reference, to tools such as grpcurl.
    assert len(served.source_code_info.location) > 0
