"""What the fuzz test (test_fuzz.py) sends: hypothesis strategies for REST, Docker plugin and
CNI requests, hostile and plausible, and the seed it runs with."""

from __future__ import annotations

import json
import os
import random
import sys
import urllib.parse
from typing import Any

from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "src"))
from hostnet.cni.adapter import SUPPORTED  # noqa: E402
from hostnet.rest.openapi import ROUTES  # noqa: E402
from hostnet.rest.requests import MAX_BODY  # noqa: E402

BASE_NET, BASE_CT = "fz0", "fzc"  # what the baseline holds (besides the default nat)
NEW_NET = "fzn"  # a name accepted requests may create, so later ones can find it

FIELDS = sorted(
    {
        f
        for r in ROUTES
        if r.body is not None
        for f in (*r.body.model_fields, "network", "ip", "aliases")
    }
    | {"NetworkID", "EndpointID", "Options", "Interface", "Address", "MacAddress", "PoolID"}
    | {"Pool", "V6", "SandboxKey", "IPv4Data", "IPv6Data", "com.docker.network.portmap"}
    | {"hostPort", "containerPort", "portMappings", "runtimeConfig", "ips", "name", "type"}
)
DOCKER_PATHS = [
    "/Plugin.Activate",
    "/NetworkDriver.GetCapabilities",
    "/NetworkDriver.CreateNetwork",
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.CreateEndpoint",
    "/NetworkDriver.EndpointOperInfo",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.Join",
    "/NetworkDriver.Leave",
    "/NetworkDriver.ProgramExternalConnectivity",
    "/NetworkDriver.RevokeExternalConnectivity",
    "/NetworkDriver.DiscoverNew",
    "/NetworkDriver.DiscoverDelete",
    "/IpamDriver.GetCapabilities",
    "/IpamDriver.GetDefaultAddressSpaces",
    "/IpamDriver.RequestPool",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.RequestAddress",
    "/IpamDriver.ReleaseAddress",
]
# answered without reading the body: never refused, whatever is sent
DOCKER_BODYLESS = {p for p in DOCKER_PATHS if "Capabilities" in p or "Discover" in p} | {
    "/Plugin.Activate",
    "/IpamDriver.GetDefaultAddressSpaces",
}

# traversal and paths where a name, an id or a path is expected
TRAVERSAL = ["../", "..", "../../etc/passwd", "%2e%2e", "%2e%2e%2f", "..%2f..%2f", "/etc/passwd"]
TRAVERSAL += ["/", "./fz0", "fz0/../nat", "\\..\\..", "/run/netns/../../etc/passwd"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["nat", "10.9.0.0/24", "10.9.0.7", "8080:80", "eth0", "a" * 5000, "", "::1"]),
    st.sampled_from([BASE_NET, BASE_CT, NEW_NET, "10.77.0.0/24", *TRAVERSAL]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
objects = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=12)), values, max_size=6
)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


BIG = b'{"name": "' + b"a" * MAX_BODY + b'"}'  # over 1 MiB, and valid JSON besides
# bodies no route takes: not UTF-8, not JSON, too deep, too large, not an object
broken_bodies = st.one_of(
    st.binary(max_size=64).filter(lambda b: b.strip() and not b.strip().startswith(b"{")),
    st.sampled_from(
        [
            b"\xff\xfe{}",
            b'{"name": "\xc3"}',
            b'{"name": ',
            _deep(100000),
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b"null",
            b'"text"',
            b"[]",
            BIG,
            b" " * (MAX_BODY + 1),
        ]
    ),
)
raw_bodies = st.one_of(
    objects.map(lambda o: json.dumps(o).encode()),
    values.map(lambda v: json.dumps(v).encode()),
    broken_bodies,
    st.sampled_from([b"", b'{"name": "x", "name": 1}']),
)
# an object with a field no model has: every route with a body model refuses it
unknown_field = objects.map(lambda o: json.dumps({**o, "fz-no-such-field": 1}).encode())
# refs that name nothing the daemon has (never the baseline: mutating routes get these)
hostile_refs = st.one_of(
    st.sampled_from(TRAVERSAL), st.text(max_size=20).map(lambda s: "zq" + s)
).filter(lambda r: r.strip("./") not in ("", BASE_NET, BASE_CT, "nat"))
any_refs = st.one_of(st.sampled_from([BASE_NET, BASE_CT, "nat", NEW_NET]), hostile_refs)
queries = st.one_of(
    st.just(""),
    st.dictionaries(
        st.sampled_from(["network", "force", "all", "a", "../", "%2e%2e"]),
        st.one_of(st.sampled_from(["1", "true", BASE_NET, "../..", "%00"]), st.text(max_size=8)),
        max_size=3,
    ).map(urllib.parse.urlencode),
)


# sent unquoted too, a traversal the URL itself carries: none resolves to a baseline route
RAW_SAFE = ["../", "..", "../../etc/passwd", "%2e%2e", "%2e%2e%2f", "..%2f..%2f"]
mutating_refs = st.one_of(hostile_refs, st.just(NEW_NET))


def fill(path: str, ref: str, raw: bool = False) -> str:
    """A route's path with ``ref`` in each placeholder: quoted, or (``raw``, refs of
    RAW_SAFE only) as it is."""
    text = ref if raw and ref in RAW_SAFE else urllib.parse.quote(ref, safe="") or "x"
    for name in ("{ref}", "{host}", "{name}"):
        path = path.replace(name, text)
    return path


# -- CNI ---------------------------------------------------------------------------------
CIDS = ["fzcid1", "fzcid2", "fzcid3"]
IFNAMES = ["eth0", "net1"]
HOSTILE_CIDS = ["../../etc", "%2e%2e", "/abs/path", "a b", "-x", ".", "c" * 1100, "a/b"]
HOSTILE_IFNAMES = ["../x", "a" * 16, ".", "..", "eth0:1", "a/b", "et h0", "%2e%2e/x"]
# each refused: none is a container's namespace. Paths to the host's own namespace name
# the lab host's (the daemon's, by its pid), never the machine's: a daemon that took one
# would then change a namespace of the test's, not the machine's
HOSTILE_NETNS = ["/etc/passwd", "/dev/null", "/run/netns/", "/", "%2e%2e", "..", "a/../../b"]
HOSTILE_NETNS += ["/run/netns/nope", "/proc/self/ns/net", "/proc/thread-self/ns/net"]


def hostile_netns(daemon_pid: int) -> list[str]:
    own = f"proc/{daemon_pid}/ns/net"
    return [*HOSTILE_NETNS, f"/{own}", f"../../{own}", f"/run/netns/../../{own}"]


printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


def cni_env(netns: list[str], bad: list[str]) -> st.SearchStrategy[tuple[str, str, str]]:
    """(container id, netns, ifname): mostly ones that work (``netns``: paths of the
    test's own namespaces), often one hostile (``bad``: namespaces, see hostile_netns)."""
    good = st.tuples(st.sampled_from(CIDS), st.sampled_from(netns), st.sampled_from(IFNAMES))
    hostile = st.tuples(
        st.one_of(st.sampled_from(CIDS), st.sampled_from(HOSTILE_CIDS), printable),
        st.one_of(
            st.sampled_from(netns),
            st.sampled_from(bad),
            printable.filter(lambda p: not p.startswith("/")),  # never a path of the machine's
        ),
        st.one_of(st.sampled_from(IFNAMES), st.sampled_from(["lo", *HOSTILE_IFNAMES]), printable),
    )
    return st.integers(0, 9).flatmap(lambda n: good if n < 6 else hostile)


def hostile_cni_env(
    netns: list[str], bad_netns: list[str], command: str
) -> st.SearchStrategy[tuple[str, str, str]]:
    """(container id, netns, ifname) with at least one of them refused for ``command``
    (DEL reads no namespace)."""
    good = (st.sampled_from(CIDS), st.sampled_from(netns), st.sampled_from(IFNAMES))
    bad = (
        st.sampled_from([*HOSTILE_CIDS, ""]),
        st.sampled_from([*bad_netns, ""]),
        st.sampled_from([*HOSTILE_IFNAMES, ""]),
    )
    which = [0, 2] if command == "DEL" else [0, 1, 2]
    return st.sampled_from(which).flatmap(
        lambda i: st.tuples(*(bad[k] if k == i else good[k] for k in range(3)))
    )


port_mapping = st.fixed_dictionaries(
    {
        "hostPort": st.one_of(st.integers(18100, 18110), st.integers(-5, 70000), scalars),
        "containerPort": st.one_of(st.just(80), scalars),
    },
    optional={
        "protocol": st.sampled_from(["tcp", "udp", "sctp", "TCP", ""]),
        "hostIP": st.sampled_from(["", "0.0.0.0", "::", "198.51.100.2", "banana", "10.9.0.1"]),
    },
)
runtime_config = st.fixed_dictionaries(
    {},
    optional={
        "portMappings": st.one_of(st.lists(port_mapping, max_size=2), values),
        "ips": st.one_of(
            st.lists(st.sampled_from(["10.9.0.50", "10.9.0.51/24", "10.9.0.1", "fd00::5"])),
            values,
        ),
        "mac": st.sampled_from(["02:11:22:33:44:55", "zz:11", "", "02:11:22:33:44:55:66"]),
        "bandwidth": st.one_of(
            st.fixed_dictionaries({"ingressRate": st.just(8000), "ingressBurst": st.just(800)}),
            values,
        ),
        "dns": values,
        "fz-unknown": values,
    },
)
prev_result = st.one_of(
    st.just({"cniVersion": "1.0.0", "interfaces": [{"name": "x"}], "ips": [], "routes": []}),
    values,
)
cni_extra = st.fixed_dictionaries(
    {},
    optional={
        "runtimeConfig": st.one_of(runtime_config, values),
        "prevResult": prev_result,
        "cni.dev/valid-attachments": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"containerID": st.sampled_from(CIDS), "ifname": st.sampled_from(IFNAMES)}
                ),
                max_size=3,
            ),
            values,
        ),
        "args": values,
        "subnet": st.sampled_from(["10.77.0.0/24", "10.9.0.0/24", "banana", ""]),
        "driver": st.sampled_from(["nat", "bogus", "overlay"]),
        "ipv6": values,
        "options": values,
        "acl": values,
        "policies": values,
        "dns": values,
    },
)


def cni_config(name: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[bytes]:
    """A config with a cniVersion the daemon takes, naming a network, and more fields:
    plausible (it reaches ADD, DEL, CHECK, GC and STATUS) or hostile in its values."""
    names = name or st.one_of(
        st.sampled_from([BASE_NET, BASE_NET, "nat", NEW_NET]), st.sampled_from(TRAVERSAL), values
    )
    hostile = st.builds(
        lambda v, n, extra, more: json.dumps(
            {**more, "cniVersion": v, "name": n, "type": "hostnet", **extra}
        ).encode(),
        st.sampled_from(SUPPORTED),
        names,
        cni_extra,
        st.one_of(st.just({}), objects),
    )
    plausible = st.builds(
        lambda v, n, ports: json.dumps(
            {"cniVersion": v, "name": n, "type": "hostnet", "runtimeConfig": ports}
        ).encode(),
        st.sampled_from(SUPPORTED),
        name or st.sampled_from([BASE_NET, "nat"]),
        st.fixed_dictionaries({}, optional={"portMappings": st.lists(port_mapping, max_size=1)}),
    )
    return st.integers(0, 2).flatmap(lambda n: plausible if n else hostile)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices`` by weight (st.one_of flattens nested one_ofs: equal per leaf)."""
    pool = [s for weight, s in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


cni_args = st.sampled_from(["", "IP=10.9.0.60", "MAC=02:11:22:33:44:66", "garbage", "IP=banana"])


def fuzz_seed() -> tuple[int | None, str]:
    """HOSTNET_FUZZ_SEED: unset, CI's derandomized run (None); ``random``, a fresh seed;
    an integer, that seed again. Returns the seed and how to replay it."""
    given = os.environ.get("HOSTNET_FUZZ_SEED", "")
    if not given:
        return None, "derandomized (as CI runs it)"
    seed = random.SystemRandom().randrange(2**32) if given == "random" else int(given)
    return seed, f"HOSTNET_FUZZ_SEED={seed} replays this run"
