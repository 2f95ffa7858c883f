"""The `x-request-id` metadata that ties a caller's logs to the service's.

The suite's server logs every call (RUST_LOG=card_lookup=debug), so it gives every answer an
id; at the default log level a success carries only an id the caller sent (tests/
request_handling.rs checks that).
"""

import time

import grpc
import pytest

from contract import TIMEOUT, metadata_of, pb

CALLS = {
    "Validate": lambda stub, **kw: stub.Validate.with_call(
        pb.ValidateRequest(number="4111111111111111"), timeout=TIMEOUT, **kw
    ),
    "LookupBin": lambda stub, **kw: stub.LookupBin.with_call(
        pb.LookupBinRequest(number="622848"), timeout=TIMEOUT, **kw
    ),
    "MaskCard": lambda stub, **kw: stub.MaskCard.with_call(
        pb.MaskCardRequest(number="4111111111111111"), timeout=TIMEOUT, **kw
    ),
}


def logged_call(server, request_id):
    """The server's log line for the call with this id, or None (its output is read on another
    thread, so this waits up to TIMEOUT)."""
    wanted = f' call request_id="{request_id}" '
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for line in server.lines:
            if wanted in line:
                return line
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_a_logged_answer_carries_the_id_of_its_log_line(server, stub, rpc):
    _, call = CALLS[rpc](stub)
    request_id = metadata_of(call).get("x-request-id")
    assert request_id
    line = logged_call(server, request_id)
    assert line and f'grpc_method="{rpc}"' in line, line


@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_the_callers_request_id_comes_back(stub, rpc):
    _, call = CALLS[rpc](stub, metadata=[("x-request-id", "interop-1")])
    assert metadata_of(call)["x-request-id"] == "interop-1"


def test_ids_the_service_makes_are_distinct(stub):
    ids = {metadata_of(CALLS["Validate"](stub)[1])["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_errors_carry_the_callers_request_id(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.LookupBin(
            pb.LookupBinRequest(number="62284"),
            timeout=TIMEOUT,
            metadata=[("x-request-id", "interop-2")],
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert metadata_of(caught.value)["x-request-id"] == "interop-2"


@pytest.mark.parametrize(
    "unsafe",
    ["4111111111111111", "order 42", "x" * 65],
    ids=["card-number", "space", "too-long"],
)
def test_an_unsafe_request_id_is_replaced(stub, unsafe):
    # The id is logged: one that could carry a card number or break a log line is not kept.
    _, call = CALLS["Validate"](stub, metadata=[("x-request-id", unsafe)])
    request_id = metadata_of(call)["x-request-id"]
    assert request_id and request_id != unsafe
