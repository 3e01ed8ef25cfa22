"""hcsshim's version gates and feature computation, ported; the version hostnet reports."""

from __future__ import annotations

import pytest

from hostnet.hns import versions as v
from hostnet.hns.versions import GATE, IMPLEMENTED, Version, is_supported, supported_features

V = Version


# hcn/hcnsupport_test.go TestIsFeatureSupported, point for point
HNS1803 = GATE["ACL.AclRuleId"].ranges
SLASH32 = GATE["Slash32EndpointPrefixes"].ranges
HCSSHIM_CASES = [
    *((V(a, b), HNS1803, False) for a, b in ((0, 0), (7, 0), (7, 1))),
    *((V(a, b), HNS1803, True) for a, b in ((7, 2), (7, 3), (8, 0), (8, 2), (8, 3), (255, 2))),
    *((V(a, b), HNS1803, True) for a, b in ((255, 0), (255, 6))),
    *((V(a, b), SLASH32, False) for a, b in ((8, 0), (8, 2), (8, 3), (8, 4), (8, 5), (9, 0))),
    (V(9, 2), SLASH32, False),
    *((V(9, b), SLASH32, True) for b in (3, 4, 5, 9, 372)),
    *((V(10, b), SLASH32, False) for b in (0, 1, 2, 3)),
    *((V(10, b), SLASH32, True) for b in (4, 5, 9, 410)),
    *((V(11, b), SLASH32, True) for b in (0, 1, 2, 3, 4, 5, 9)),
    (V(255, 2), SLASH32, True),
]


@pytest.mark.parametrize(("version", "ranges", "expected"), HCSSHIM_CASES)
def test_is_feature_supported_as_hcsshim_tests(version, ranges, expected):
    assert is_supported(version, ranges) is expected


def test_hand_checked_points():
    assert {"API.V2", "RemoteSubnet", "HostRoute"} <= supported_features(V(9, 2))
    assert "API.V2" not in supported_features(V(9, 1))
    assert "DSR" in supported_features(V(9, 3)) and "DSR" in supported_features(V(9, 99))
    assert "DSR" not in supported_features(V(10, 0)) and "DSR" not in supported_features(V(10, 1))
    assert "DSR" in supported_features(V(10, 2))
    assert "Slash32EndpointPrefixes" not in supported_features(V(10, 3))
    assert "L4Proxy" in supported_features(V(9, 5))
    assert "L4Proxy" not in supported_features(V(11, 10))
    assert "L4Proxy" in supported_features(V(11, 11))
    assert "L4Proxy" not in supported_features(V(12, 0))
    assert "AclSupportForProtocol252" not in supported_features(V(10, 4))
    assert "AclSupportForProtocol252" in supported_features(V(11, 0))
    assert {"ModifyLoadbalancer", "Accelnet"} <= supported_features(V(15, 4))
    assert supported_features(V(0, 0)) == {"API.V1"}


def test_v1_acl_flags_plain_compare():
    assert not any(v.v1_supported_features(V(7, 1))["ACL"].values())
    assert all(v.v1_supported_features(V(7, 2))["ACL"].values())
    assert all(v.v1_supported_features(V(8, 0))["ACL"].values())


def test_supported_features_json_shape():
    got = v.supported_features_json(V(10, 2))
    assert got["API"] == {"V1": True, "V2": True}
    assert got["ACL"]["AclHostRulePriority"] is True
    assert got["DSR"] is True and got["Slash32EndpointPrefixes"] is False
    assert set(got) == {"ACL", "API"} | {f for f in v.GATE if "." not in f}


def test_reported_never_claims_what_hostnet_lacks():
    reported = v.reported_version()
    assert supported_features(reported) <= IMPLEMENTED
    higher = [b for b in v.boundaries() if b > reported]
    assert higher, "something above must be unimplemented today"
    assert all(supported_features(b) - IMPLEMENTED for b in higher)


def test_reported_today_is_below_v2():
    # RemoteSubnet and HostRoute are not implemented, so 9.2 is not claimed (issue 22)
    assert v.reported_version() < V(9, 2)
    assert v.reported_version() == V(7, 2)


@pytest.mark.parametrize(
    ("implemented", "expected"),
    [
        (frozenset({"API.V1"}), V(0, 0)),
        # with V2, RemoteSubnet and HostRoute but no DSR: 10.0 claims no more than 9.2 does
        (IMPLEMENTED | {"API.V2", "RemoteSubnet", "HostRoute"}, V(10, 0)),
        (frozenset(v.FEATURES), V(15, 4)),
    ],
)
def test_reported_version_is_computed(implemented, expected):
    assert v.reported_version(implemented) == expected
    assert supported_features(expected) <= implemented


def test_boundaries_cover_every_change():
    points = v.boundaries()
    for low, high in zip(points, points[1:], strict=False):
        probe = [low, V(low.major, low.minor + 1)] if low.major == high.major else [low]
        probe += [V(high.major - 1, 999)] if high.major > low.major else []
        sets = {supported_features(p) for p in probe if low <= p < high}
        assert len(sets) == 1, (low, high)


def test_globals_version_answer_shape():
    answer = v.globals_version_answer()
    assert (answer["Major"], answer["Minor"]) == (7, 2)
    assert "NetworkACL" in answer["HostnetFeatures"]  # above the version, still listed
    assert "API.V2" not in answer["HostnetFeatures"]
    assert set(answer["HostnetFeatures"]) == IMPLEMENTED


def test_describe_names_feature_and_versions():
    assert (
        v.describe("DSR") == "Direct Server Return (DSR) (hcsshim feature DSR, HNS 9.3-9.*, 10.2+)"
    )
