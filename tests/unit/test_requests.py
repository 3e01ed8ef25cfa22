"""Request bodies are parsed into typed models first: every bad one is a clear 400; the
OpenAPI document in the tree is the one the models make."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostnet.errors import InvalidRequest
from hostnet.rest import openapi
from hostnet.rest import requests as rq
from hostnet.rest.app import build_app

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.json")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xff\xfe{}", "not UTF-8 (byte 0 is 0xff)"),
        (b'{"name": ', "not JSON"),
        (b"[" * 100000 + b"]" * 100000, "nests deeper than 32"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "nests deeper than 32"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b"x" * (rq.MAX_BODY + 1), "at most 1048576"),
        (b'{"name": 5}', "field 'name': input should be a valid string (got 5)"),
        (b'{"name": "n", "colour": "red"}', "field 'colour' is not one hostnet takes"),
        (b"{}", "field 'name' is required"),
        (b'{"name": "' + b"a" * 300 + b'"}', "at most 255 characters"),
        (b'{"name": "n", "options": {"a": {"b": 1}}}', "field 'options.a'"),
        (b'{"name": "n", "acl": "x"}', "field 'acl': input should be a valid list"),
    ],
)
def test_bad_network_bodies_say_what_is_wrong(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        rq.parse(rq.NetworkCreate, raw)
    assert says in err.value.message, err.value.message
    assert err.value.remedy and "Traceback" not in str(err.value)


def test_nested_fields_are_named_with_their_place() -> None:
    with pytest.raises(InvalidRequest, match=r"field 'networks\[1\]\.ip': input should be a"):
        rq.parse(rq.ContainerCreate, b'{"networks": [{"network": "a"}, {"network": "b", "ip": 7}]}')
    with pytest.raises(InvalidRequest, match="positive|greater than 0"):
        rq.parse(rq.Process, b'{"pid": -1}')
    ok = rq.parse(rq.NetworkCreate, b'{"name": "n", "options": {"mtu": 1400, "disableicc": true}}')
    assert ok.option_strings() == {"mtu": "1400", "disableicc": "true"}


def test_docker_bodies_ignore_fields_hostnet_does_not_read_but_check_those_it_does() -> None:
    d = rq.validated(rq.CreateEndpoint, {"NetworkID": "n", "EndpointID": "e", "Foo": 1})
    assert d.Interface is None
    with pytest.raises(InvalidRequest, match="field 'EndpointID' is required"):
        rq.validated(rq.CreateEndpoint, {"NetworkID": "n"})
    with pytest.raises(InvalidRequest, match=r"field 'portmap\[0\]'"):
        rq.portmap(["8080"])
    assert rq.portmap([{"Proto": 6, "Port": 80, "HostPort": 8080}])[0]["HostPort"] == 8080


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_parse_or_give_invalid_request(raw: bytes) -> None:
    for model in (rq.NetworkCreate, rq.ContainerCreate, rq.Connect, rq.AclSet):
        try:
            rq.parse(model, raw)
        except InvalidRequest as exc:
            assert exc.status == 400 and exc.message


def test_the_openapi_document_in_the_tree_is_current() -> None:
    with open(DOC) as fh:
        kept = fh.read()
    assert kept == openapi.text(), (
        "docs/openapi.json is stale: python -m hostnet.rest.openapi > docs/openapi.json"
    )


def test_every_route_is_described_and_every_description_is_routed() -> None:
    app = build_app(object(), None)  # type: ignore[arg-type]
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    described = {(r.method, r.path) for r in openapi.ROUTES}
    assert served == described, (served - described, described - served)
    doc: dict[str, Any] = json.loads(openapi.text())
    assert doc["openapi"].startswith("3.1")
    schema = doc["components"]["schemas"]["NetworkCreate"]
    assert schema["additionalProperties"] is False and "name" in schema["required"]
