"""Validate, as a checkout form and a payment service call it."""

import re

import pytest

from contract import TIMEOUT, pb

VISA_LENGTHS = [13, 16, 18, 19]


def validate(stub, number):
    return stub.Validate(pb.ValidateRequest(number=number), timeout=TIMEOUT)


def test_a_valid_visa(stub):
    answer = validate(stub, "4111111111111111")
    assert answer.valid
    assert answer.failure == pb.VALIDATION_FAILURE_UNSPECIFIED
    assert answer.failure_message == ""
    assert answer.network == pb.CARD_NETWORK_VISA
    assert list(answer.candidate_networks) == [pb.CARD_NETWORK_VISA]
    assert answer.luhn_valid and answer.length_valid and answer.luhn_required
    assert answer.potentially_valid
    assert list(answer.network_lengths) == VISA_LENGTHS
    assert answer.digit_count == 16
    assert answer.masked_number == "************1111"


def test_separators_as_typed_are_ignored(stub):
    answer = validate(stub, "4111 1111-1111 1111")
    assert answer.valid
    assert answer.digit_count == 16
    assert answer.masked_number == "************1111"


def test_a_luhn_failure_is_an_answer_not_an_error(stub):
    answer = validate(stub, "4111111111111112")
    assert not answer.valid
    assert answer.failure == pb.VALIDATION_FAILURE_LUHN_FAILED
    assert answer.network == pb.CARD_NETWORK_VISA
    assert not answer.luhn_valid
    assert answer.length_valid
    assert answer.failure_message
    assert not re.search(r"\d{4}", answer.failure_message), answer.failure_message
    assert answer.masked_number == "************1112"


def test_a_partial_number_lists_the_networks_it_may_become(stub):
    answer = validate(stub, "4")
    assert not answer.valid
    assert answer.network == pb.CARD_NETWORK_UNSPECIFIED
    assert answer.failure == pb.VALIDATION_FAILURE_TOO_SHORT
    assert answer.potentially_valid
    assert list(answer.candidate_networks) == [
        pb.CARD_NETWORK_VISA,
        pb.CARD_NETWORK_MAESTRO,
        pb.CARD_NETWORK_ELO,
        pb.CARD_NETWORK_NARANJA,
    ]
    assert list(answer.network_lengths) == []
    assert answer.digit_count == 1


# Test numbers that payment providers publish for their sandboxes.
@pytest.mark.parametrize(
    ("number", "network"),
    [
        ("4242424242424242", pb.CARD_NETWORK_VISA),
        ("5555555555554444", pb.CARD_NETWORK_MASTERCARD),
        ("2223003122003222", pb.CARD_NETWORK_MASTERCARD),
        ("378282246310005", pb.CARD_NETWORK_AMERICAN_EXPRESS),
        ("6011111111111117", pb.CARD_NETWORK_DISCOVER),
        ("3056930009020004", pb.CARD_NETWORK_DINERS_CLUB),
        ("36227206271667", pb.CARD_NETWORK_DINERS_CLUB),
        ("3566002020360505", pb.CARD_NETWORK_JCB),
        ("6200000000000005", pb.CARD_NETWORK_UNIONPAY),
    ],
)
def test_published_test_cards_are_valid(stub, number, network):
    answer = validate(stub, number)
    assert answer.valid, pb.ValidationFailure.Name(answer.failure)
    assert answer.network == network
    assert answer.digit_count == len(number)
    assert answer.masked_number.endswith(number[-4:])
    assert number[:6] not in answer.masked_number


def test_unionpay_needs_no_luhn_check(stub):
    answer = validate(stub, "6200000000000006")
    assert answer.network == pb.CARD_NETWORK_UNIONPAY
    assert answer.valid
    assert not answer.luhn_valid
    assert not answer.luhn_required


@pytest.mark.parametrize(
    ("number", "failure", "potentially_valid"),
    [
        ("", pb.VALIDATION_FAILURE_EMPTY, True),
        (" - ", pb.VALIDATION_FAILURE_EMPTY, True),
        ("4111-1111-1111-111a", pb.VALIDATION_FAILURE_NON_DIGIT, False),
        ("41111111111111111111", pb.VALIDATION_FAILURE_TOO_LONG, False),
        ("41111111111111111", pb.VALIDATION_FAILURE_LENGTH_INVALID_FOR_NETWORK, True),
        ("0000000000000000", pb.VALIDATION_FAILURE_UNKNOWN_NETWORK, False),
        ("411111", pb.VALIDATION_FAILURE_TOO_SHORT, True),
    ],
)
def test_what_is_wrong_with_a_number_is_an_answer(stub, number, failure, potentially_valid):
    answer = validate(stub, number)
    assert not answer.valid
    assert answer.failure == failure, pb.ValidationFailure.Name(answer.failure)
    assert answer.potentially_valid is potentially_valid
    assert answer.failure_message
    assert not re.search(r"\d{4}", answer.failure_message), answer.failure_message
