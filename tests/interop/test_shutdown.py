"""A server of its own: traffic with card numbers in it, then SIGTERM, as an orchestrator sends."""

import grpc
import pytest

from contract import TIMEOUT, connect, pb, pb_grpc, start_server

PANS = ["4111111111111111", "4111111111111112", "5555555555554444", "378282246310005"]


def test_sigterm_exits_0_and_the_logs_never_show_a_card_number():
    server = start_server()
    try:
        channel = connect(server)
        stub = pb_grpc.CardLookupServiceStub(channel)
        for pan in PANS:
            stub.Validate(pb.ValidateRequest(number=pan), timeout=TIMEOUT)
            stub.LookupBin(pb.LookupBinRequest(number=pan), timeout=TIMEOUT)
            stub.MaskCard(pb.MaskCardRequest(number=pan), timeout=TIMEOUT)
            with pytest.raises(grpc.RpcError):
                stub.MaskCard(pb.MaskCardRequest(number=pan, mask_character="7"), timeout=TIMEOUT)
            with pytest.raises(grpc.RpcError):
                stub.LookupBin(pb.LookupBinRequest(number=pan + "x"), timeout=TIMEOUT)
        channel.close()
    finally:
        status = server.stop()
    assert status == 0, server.output
    assert any("shutting down" in line for line in server.lines), server.output
    # The per-call log lines were on (RUST_LOG=card_lookup=debug): they name calls, not cards.
    assert any(" call request_id=" in line for line in server.lines), server.output
    for pan in PANS:
        assert pan not in server.output
