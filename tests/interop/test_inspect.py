"""Inspect, as a batch job checks a settlement file: many numbers on one stream."""

import grpc
import pytest

from contract import TIMEOUT, pb


def batch(*items, style=pb.MASK_STYLE_LAST_FOUR):
    return pb.InspectRequest(
        items=[pb.InspectItem(id=item_id, number=number) for item_id, number in items],
        mask_style=style,
    )


def test_each_item_is_answered_in_order_with_its_own_status(stub):
    requests = [
        batch(("row-1", "4111 1111 1111 1111"), ("row-2", "not a card")),
        batch(("row-3", "6228480000000000000"), style=pb.MASK_STYLE_BIN_AND_LAST_FOUR),
    ]
    answers = list(stub.Inspect(iter(requests), timeout=TIMEOUT))
    assert len(answers) == 2

    first, second = answers
    assert [r.id for r in first.results] == ["row-1", "row-2"]
    visa, garbage = first.results
    assert visa.code == grpc.StatusCode.OK.value[0]
    assert visa.validation.valid
    assert visa.bin.network == pb.CARD_NETWORK_VISA
    assert visa.masked == "************1111"
    assert garbage.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert garbage.validation.failure == pb.VALIDATION_FAILURE_NON_DIGIT
    assert not garbage.HasField("bin")
    # The data's version is named once a response, not in each item's BIN answer.
    assert first.dataset_version.startswith("sha256:")
    assert visa.bin.dataset_version == ""

    (unionpay,) = second.results
    assert unionpay.bin.issuer.name == "AGRICULTURAL BANK OF CHINA"
    assert unionpay.masked == "622848*********0000"


def test_a_batch_over_1000_items_ends_the_stream_with_invalid_argument(stub):
    too_many = batch(*[(str(i), "4111111111111111") for i in range(1001)])
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.Inspect(iter([too_many]), timeout=TIMEOUT))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "4111" not in (caught.value.details() or "")


def test_shared_bin_answers_are_given_once_and_named_by_index(stub):
    request = batch(("a", "4111111111111111"), ("b", "4111 1111 1111 1111"), ("c", "41"))
    request.bin_answers = pb.BIN_ANSWER_LAYOUT_SHARED
    (answer,) = list(stub.Inspect(iter([request]), timeout=TIMEOUT))
    assert [bin.bin for bin in answer.bins] == ["411111"]
    assert answer.bins[0].network == pb.CARD_NETWORK_VISA
    first, second, short = answer.results
    for result in (first, second):
        assert not result.HasField("bin")
        assert result.HasField("bin_index") and result.bin_index == 0
    # No BIN answer for two digits: no index either.
    assert not short.HasField("bin_index")
