"""The CNI environment hostnet refuses before anything changes (hostnet/cni/env.py)."""

from __future__ import annotations

import pytest

from hostnet.cni import env as cni_env


@pytest.mark.parametrize("cid", ["../../etc", "%2e%2e", "/abs", "a b", "-x", ".", "", "c" * 1025])
def test_hostile_container_ids_are_refused(cid: str) -> None:
    with pytest.raises(cni_env.EnvError, match="CNI_CONTAINERID"):
        cni_env.check_container_id(cid)


@pytest.mark.parametrize("ifname", ["../x", "a" * 16, ".", "..", "eth0:1", "a/b", "et h0", ""])
def test_hostile_interface_names_are_refused(ifname: str) -> None:
    with pytest.raises(cni_env.EnvError, match="CNI_IFNAME"):
        cni_env.check_ifname(ifname)


def test_runtime_ids_and_names_pass() -> None:
    for cid in ("fzcid1", "c" * 64, "k8s_pod.1-x"):
        cni_env.check_container_id(cid)
    for ifname in ("eth0", "net1", "a" * 15):
        cni_env.check_ifname(ifname)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../../proc/self/ns/net", "neither an absolute path"),
        ("a/../../b", "neither an absolute path"),
        ("..", "neither an absolute path"),
        ("/etc/hostname-that-is-not-there", "cannot be opened"),
        ("/dev/null", "not a network namespace"),
        ("/proc/self/ns/net", "host's own network namespace"),
        ("/proc/thread-self/ns/net", "host's own network namespace"),
    ],
)
def test_hostile_namespaces_are_refused(path: str, why: str) -> None:
    with pytest.raises(cni_env.EnvError, match="CNI_NETNS") as err:
        cni_env.check_netns(path)
    assert why in err.value.why
