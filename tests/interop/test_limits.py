"""Request size limits and concurrent use of one channel."""

import grpc
import pytest

from contract import TIMEOUT, pb

# Over the 128 KiB message limit (Inspect batches need up to about 60 KiB).
LIMIT = 128 * 1024
HUGE = "4" * (LIMIT + 100)

REQUESTS = {
    "Validate": lambda stub, number: stub.Validate(pb.ValidateRequest(number=number), timeout=TIMEOUT),
    "LookupBin": lambda stub, number: stub.LookupBin(pb.LookupBinRequest(number=number), timeout=TIMEOUT),
    "MaskCard": lambda stub, number: stub.MaskCard(pb.MaskCardRequest(number=number), timeout=TIMEOUT),
}


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
def test_a_request_over_128_kib_is_out_of_range(stub, rpc):
    with pytest.raises(grpc.RpcError) as caught:
        REQUESTS[rpc](stub, HUGE)
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "4444" not in (caught.value.details() or "")


def test_a_request_just_under_128_kib_is_answered(stub):
    # The limit is on the message's bytes, not on its digits.
    padded = "4111 1111 1111 1111" + " " * (LIMIT - 100)
    assert len(pb.ValidateRequest(number=padded).SerializeToString()) < LIMIT
    assert REQUESTS["Validate"](stub, padded).valid


def test_many_calls_at_once_on_one_channel(stub):
    numbers = ["4111111111111111", "4111111111111112"] * 50
    futures = [
        stub.Validate.future(pb.ValidateRequest(number=n), timeout=TIMEOUT) for n in numbers
    ]
    answers = [future.result(timeout=TIMEOUT) for future in futures]
    assert [a.valid for a in answers] == [n.endswith("1") for n in numbers]
