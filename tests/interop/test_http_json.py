"""The HTTP/JSON port as a Python back office calls it (urllib, no gRPC): the same answers as the
gRPC API, in the proto3 JSON mapping that Python's protobuf writes, and errors as
google.rpc.Status JSON."""

import json
import urllib.error
import urllib.request

from google.protobuf import json_format

from contract import TIMEOUT, pb

NUMBER = "4111111111111111"


def call(server, path, body=None):
    """(HTTP status, parsed JSON body) of a GET, or of a POST when a body is given."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://{server.http_address}{path}",
        data=data,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def as_json(message):
    """The proto3 JSON mapping of a message, as protobuf's own json_format writes it."""
    return json_format.MessageToDict(message)


def test_validate_lookup_and_mask_answer_what_grpc_answers(server, stub):
    status, body = call(server, "/v1/cards:validate", {"number": NUMBER})
    assert status == 200
    assert body == as_json(stub.Validate(pb.ValidateRequest(number=NUMBER), timeout=TIMEOUT))
    # A test card Adyen publishes: flagged, with who lists it.
    assert body["testCard"] is True
    assert body["testCardSources"] == ["adyen"]

    status, body = call(server, "/v1/bins/622848")
    assert status == 200
    assert body == as_json(stub.LookupBin(pb.LookupBinRequest(number="622848"), timeout=TIMEOUT))
    assert body["issuer"]["name"] == "AGRICULTURAL BANK OF CHINA"

    request = {"number": NUMBER, "style": "MASK_STYLE_BIN_AND_LAST_FOUR", "keepGrouping": True}
    status, body = call(server, "/v1/cards:mask", request)
    assert status == 200
    expected = stub.MaskCard(json_format.ParseDict(request, pb.MaskCardRequest()), timeout=TIMEOUT)
    assert body == as_json(expected)
    assert body["masked"] == "4111 11** **** 1111"


def test_errors_are_google_rpc_status_json(server):
    status, body = call(server, "/v1/cards:mask", {"number": "4111"})
    assert status == 400
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert "4111" not in body["message"]
    status, body = call(server, "/v1/cards:validate", {"number": NUMBER, "unknown": 1})
    assert status == 400
    assert body["code"] == 3


def test_binlist_lookup(server):
    status, body = call(server, "/622848")
    assert status == 200
    assert body["scheme"] == "unionpay"
    assert body["country"]["alpha2"] == "CN"
    assert body["country"]["currency"] == "CNY"
    status, body = call(server, "/000000")
    assert status == 404


def test_the_openapi_description_is_valid_openapi_3_1(server):
    """The served description passes an independent OpenAPI validator, as the code generators
    and gateways that read it need."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.versions import consts, shortcuts

    status, document = call(server, "/openapi.json")
    assert status == 200
    assert shortcuts.get_spec_version(document) == consts.OPENAPIV31
    validate(document)
    # Every route the port serves is described, with the verb it takes.
    assert {(path, verb) for path, item in document["paths"].items() for verb in item} >= {
        ("/v1/cards:validate", "post"),
        ("/v1/bins/{number}", "get"),
        ("/v1/bins:lookup", "post"),
        ("/v1/cards:mask", "post"),
    }
