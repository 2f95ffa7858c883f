"""LookupBin, as a payment service routes or risk-scores a card by its BIN."""

import re

import grpc
import pytest

from contract import TIMEOUT, metadata_of, pb


def lookup(stub, number):
    return stub.LookupBin(pb.LookupBinRequest(number=number), timeout=TIMEOUT)


def test_a_known_bin(stub):
    answer = lookup(stub, "622848")
    assert answer.found
    assert answer.bin == "622848"
    assert answer.network == pb.CARD_NETWORK_UNIONPAY
    assert answer.brand == "CHINA UNION PAY"
    assert answer.issuer.name == "AGRICULTURAL BANK OF CHINA"
    assert answer.HasField("country")
    assert (answer.country.alpha2, answer.country.alpha3, answer.country.numeric) == (
        "CN",
        "CHN",
        "156",
    )
    assert answer.dataset_version.startswith("sha256:")


def test_a_whole_number_finds_its_bin(stub):
    answer = lookup(stub, "4111 1111 1111 1111")
    assert answer.found
    assert answer.bin == "411111"
    assert answer.network == pb.CARD_NETWORK_VISA


def test_an_unknown_bin_is_an_answer(stub):
    answer = lookup(stub, "000000")
    assert not answer.found
    assert answer.bin == ""
    assert answer.network == pb.CARD_NETWORK_UNSPECIFIED
    assert not answer.HasField("issuer")
    assert not answer.HasField("country")
    assert answer.card_type == pb.CARD_TYPE_UNSPECIFIED
    assert answer.prepaid == pb.PREPAID_STATUS_UNSPECIFIED
    assert answer.dataset_version.startswith("sha256:")


def test_replies_name_one_dataset_version(stub):
    versions = {lookup(stub, bin_).dataset_version for bin_ in ("622848", "411111", "000000")}
    assert len(versions) == 1


def test_five_digits_are_invalid_argument_without_echoing_them(stub):
    with pytest.raises(grpc.RpcError) as caught:
        lookup(stub, "62284")
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "62284" not in error.details()
    assert metadata_of(error).get("x-request-id")


@pytest.mark.parametrize("number", ["62284800000000000000", "6228-48ab", ""])
def test_other_bad_input_is_invalid_argument(stub, number):
    with pytest.raises(grpc.RpcError) as caught:
        lookup(stub, number)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not re.search(r"\d{4}", caught.value.details()), caught.value.details()
