"""MaskCard, as a service prints a card on a receipt or in a support tool."""

import grpc
import pytest

from contract import TIMEOUT, pb


def mask(stub, **fields):
    return stub.MaskCard(pb.MaskCardRequest(**fields), timeout=TIMEOUT)


def test_bin_and_last_four(stub):
    answer = mask(stub, number="4111111111111111", style=pb.MASK_STYLE_BIN_AND_LAST_FOUR)
    assert answer.masked == "411111******1111"
    assert answer.network == pb.CARD_NETWORK_VISA


@pytest.mark.parametrize(
    ("style", "masked"),
    [
        (pb.MASK_STYLE_UNSPECIFIED, "************1111"),
        (pb.MASK_STYLE_LAST_FOUR, "************1111"),
        (pb.MASK_STYLE_ALL, "****************"),
    ],
)
def test_other_styles(stub, style, masked):
    assert mask(stub, number="4111 1111 1111 1111", style=style).masked == masked


def test_network_grouping_and_own_mask_character(stub):
    answer = mask(
        stub,
        number="378282246310005",
        style=pb.MASK_STYLE_BIN_AND_LAST_FOUR,
        mask_character="X",
        keep_grouping=True,
    )
    assert answer.masked == "3782 82XXXX X0005"
    assert answer.network == pb.CARD_NETWORK_AMERICAN_EXPRESS


def test_any_unicode_mask_character(stub):
    assert mask(stub, number="4111111111111111", mask_character="•").masked == "•" * 12 + "1111"


def test_a_short_number_hides_at_least_three_digits(stub):
    # 12 digits cannot show 6 + 4 and hide 3: only the last four show.
    answer = mask(stub, number="123456789012", style=pb.MASK_STYLE_BIN_AND_LAST_FOUR)
    assert answer.masked == "********9012"


def test_something_that_is_not_a_card_number_is_invalid_argument(stub):
    with pytest.raises(grpc.RpcError) as caught:
        mask(stub, number="1234")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1234" not in caught.value.details()


@pytest.mark.parametrize(
    "fields",
    [
        {"mask_character": "7"},
        {"mask_character": ""},
        {"mask_character": "**"},
        {"style": 99},
    ],
    ids=["digit-mask", "empty-mask", "two-character-mask", "unknown-style"],
)
def test_bad_options_are_invalid_argument(stub, fields):
    with pytest.raises(grpc.RpcError) as caught:
        mask(stub, number="4111111111111111", **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "4111111111111111" not in caught.value.details()
