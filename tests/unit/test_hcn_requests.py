"""``hostnet.hcn`` without a daemon: the requests each verb sends (hcsshim's shapes, one
call each), the client-side refusals hcsshim makes, and the feature computation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hostnet import hcn
from hostnet.errors import InvalidRequest
from hostnet.hns import versions
from hostnet.hns.versions import Version

V91 = Version(9, 1)
NID = "5f0b1190-63be-4e0c-b974-bd0f55675a42"


class Recorder(hcn.HcnClient):
    """Records each call; answers enumerate with ``rows`` and globals with ``version``."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, version: Version = V91):
        super().__init__("/nonexistent")
        self.calls: list[tuple[Any, ...]] = []
        self.rows, self.version = rows or [], version

    def enumerate(self, kind: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls.append(("enumerate", kind, query))
        return self.rows

    def create(self, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", kind, settings))
        return {**settings, "ID": settings.get("ID") or NID}

    def modify(self, kind: str, oid: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("modify", kind, oid, request))
        return {}

    def delete(self, kind: str, oid: str) -> None:
        self.calls.append(("delete", kind, oid))

    def hns_call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append(("hns", method, path))
        return {**self.version.to_json(), "HostnetFeatures": sorted(versions.IMPLEMENTED)}


def test_lookups_filter_as_hcsshim_and_raise_its_not_found() -> None:
    c = Recorder()
    with pytest.raises(hcn.NetworkNotFoundError) as exc:
        hcn.get_network_by_name("GoTestNat", c)
    assert str(exc.value) == 'Network name "GoTestNat" not found'
    query = c.calls[0][2]
    assert query == {"SchemaVersion": {"Major": 2, "Minor": 0}, "Filter": '{"Name": "GoTestNat"}'}
    hcn.list_endpoints_of_network(NID, c)
    assert json.loads(c.calls[1][2]["Filter"]) == {"VirtualNetwork": NID}
    assert hcn.is_not_found_error(exc.value) and not hcn.is_element_not_found_error(exc.value)


def test_verbs_send_hcsshims_requests() -> None:
    c = Recorder()
    net = hcn.HostComputeNetwork.model_validate({"ID": NID, "Type": "NAT"})
    req = hcn.PolicyNetworkRequest.model_validate(
        {"Policies": [{"Type": "HostRoute", "Settings": {}}]}
    )
    net.add_policy(req, c)
    net.remove_policy(req, c)
    ep = net.create_remote_endpoint(hcn.HostComputeEndpoint(), c)
    ep.namespace_attach("ns1", c)
    ep.namespace_detach("ns1", c)
    assert c.calls[0] == ("modify", "networks", NID, {"ResourceType": "Policy", "RequestType": "Add",
                          "Settings": {"Policies": [{"Type": "HostRoute", "Settings": {}}]}})  # fmt: skip
    assert c.calls[1][3]["RequestType"] == "Remove"
    assert c.calls[2][2]["HostComputeNetwork"] == NID and c.calls[2][2]["Flags"] == 1
    assert c.calls[3] == ("modify", "namespaces", "ns1", {"ResourceType": "Endpoint",
                          "RequestType": "Add", "Settings": {"EndpointId": NID}})  # fmt: skip
    assert c.calls[4][3]["RequestType"] == "Remove"


def test_client_side_refusals() -> None:
    c = Recorder()
    no_default = {"Ipams": [{"Subnets": [{"IpAddressPrefix": "10.0.0.0/24",
                  "Routes": [{"NextHop": "10.0.0.1", "DestinationPrefix": "1.1.1.1/0"}]}]}]}  # fmt: skip
    with pytest.raises(InvalidRequest, match="no default gateway"):
        hcn.HostComputeNetwork.model_validate(no_default).create(c)
    with pytest.raises(InvalidRequest, match="no gateway specified"):
        hcn.HostComputeNetwork.model_validate(
            {"Ipams": [{"Subnets": [{"IpAddressPrefix": "10.0.0.0/24", "Routes": [{}]}]}]}
        ).create(c)
    with pytest.raises(InvalidRequest, match="invalid network ID"):
        hcn.HostComputeNetwork.model_validate({"ID": "x"}).delete(c)
    with pytest.raises(InvalidRequest, match="missing endpoints"):
        hcn.add_route([], "10.0.0.0/8", "10.0.0.1", False, c)
    assert c.calls == []  # nothing reached the daemon


def test_route_endpoints_change_by_delete_and_create() -> None:
    c = Recorder(rows=[{"ID": NID}])
    route = hcn.HostComputeRoute.model_validate({"ID": NID, "HostComputeEndpoints": ["a"]})
    route.add_endpoint(hcn.HostComputeEndpoint.model_validate({"ID": "b"}), c)
    kinds = [call[0] for call in c.calls]
    assert kinds == ["enumerate", "delete", "create"]
    assert c.calls[2][2]["HostComputeEndpoints"] == ["a", "b"] and c.calls[2][2]["ID"] == NID


@pytest.mark.parametrize("v", [Version(0, 0), Version(9, 2), Version(10, 0), Version(13, 2)])
def test_features_are_hcsshims_computation(v: Version) -> None:
    c = Recorder(version=v)
    features = hcn.get_cached_supported_features(c)
    assert features.names() == versions.supported_features(v)
    assert features.api.v2 == (v >= Version(9, 2))
    if features.dsr:
        hcn.dsr_supported(c)
    else:
        with pytest.raises(hcn.FeatureNotSupportedError, match=r"Direct Server Return \(DSR\)"):
            hcn.dsr_supported(c)
    assert [k for k in c.calls if k[0] == "hns"] == [("hns", "GET", "/globals/version")]  # cached


def test_reported_version_claims_only_what_hostnet_implements() -> None:
    reported = versions.reported_version()
    assert hcn.SupportedFeatures.for_version(reported).names() <= versions.IMPLEMENTED
