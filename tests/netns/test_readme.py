"""README.md's commands run in labs, section by section in README order: the README is the
user's first test. Each statement of a ```sh block runs as written, or with its
placeholders filled (FORMS: every form must be the README's text with placeholders filled,
each optional group used by some form), or is exempt with a reason (EXEMPT). A statement
the README gains that is neither fails ``test_every_readme_command_is_run_or_exempt``.

Commands run inside the lab host's namespace with HOSTNET_SOCKET naming the lab daemon's
socket and DOCKER_HOST a socket that does not exist (never the machine's Docker); ``$LAB``
is the lab's temp dir. Objects one line makes are there for the next (CustomNat1, web,
DemoNAT...); what the README assumes (an adapter eth1, a network n1) the test makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from readme_runner import Readme, http_answers, names, restart, stop_by_pidfile

from lab import Daemon, Lab, etcd_member, eventually, in_ns, wait_etcd
from readme_blocks import Statement, fills, placeholders, statements, uses_group

RUN = "ip -brief address show eth0"  # a CMD that fails unless the compartment has its vNIC
SERVER = "python3 -m http.server 80"

# README statement -> the forms run, in order ($LAB: the lab's temp dir)
FORMS: dict[str, tuple[str, ...]] = {
    "hostnet network rm [--force] CustomNat1": (
        "hostnet network rm CustomNat1",
        "hostnet network rm --force CustomNat1",
    ),
    "hostnet system reset [--force]": ("hostnet system reset", "hostnet system reset --force"),
    "hostnet create --name DemoNAT --network nat [--ip ADDR] [-p 8082:80] [--image IMG] "
    "[-- CMD...]": (
        f"hostnet create --name DemoNAT --network nat --ip 172.16.0.50 -p 8082:80 "
        f"--image busybox -- {SERVER}",
        "hostnet create --name DemoNAT --network nat",
    ),
    "hostnet adapter add [--name N] [--network NET] DemoNAT": (
        "hostnet adapter add --name backend --network side DemoNAT",
        "hostnet adapter add DemoNAT",
    ),
    "hostnet adapter rm --name N DemoNAT": ("hostnet adapter rm --name backend DemoNAT",),
    "hostnet adapter connect [--name N] DemoNAT NET": (
        "hostnet adapter connect DemoNAT nat",
        "hostnet adapter connect --name spare DemoNAT side",
    ),
    "hostnet adapter disconnect [--name N] DemoNAT": (
        "hostnet adapter disconnect --name spare DemoNAT",
        "hostnet adapter disconnect DemoNAT",
    ),
    "hostnet stop [-t SECONDS] DemoNAT": ("hostnet stop -t 5 DemoNAT", "hostnet stop DemoNAT"),
    "hostnet exec [-d] DemoNAT -- CMD...": (
        f"hostnet exec DemoNAT -- {RUN}",
        f"hostnet exec -d DemoNAT -- {SERVER}",
    ),
    "hostnet ps [-a]": ("hostnet ps", "hostnet ps -a"),
    'hostnet New-ContainerNetwork -Name nat -Mode NAT -SubnetPrefix "172.16.0.0/12" '
    "[-GatewayAddress G] [-DNSServers A,B] [-DNSSuffix S]": (
        'hostnet New-ContainerNetwork -Name nat -Mode NAT -SubnetPrefix "172.16.0.0/12" '
        "-GatewayAddress 172.16.0.1 -DNSServers 198.51.100.53,198.51.100.54 "
        "-DNSSuffix corp.example",
        'hostnet New-ContainerNetwork -Name nat -Mode NAT -SubnetPrefix "172.16.0.0/12"',
    ),
    "hostnet run --net ds --ip6 fd12:3456:789a:1::10 -p 8080:80 -p '[::]:8081:80' -- ...": (
        f"hostnet run --net ds --ip6 fd12:3456:789a:1::10 -p 8080:80 -p '[::]:8081:80' -- {RUN}",
    ),
    "hostnet run --network MyTransparentNet --ip 10.123.174.105 -- ...": (
        f"hostnet run --network MyTransparentNet --ip 10.123.174.105 -- {RUN}",
    ),
    "hostnet network create -d l2bridge --subnet <host subnet> --gateway <host gateway> "
    "-o interface=eth0 L2": (
        "hostnet network create -d l2bridge --subnet 198.51.100.0/24 --gateway 198.51.100.1 "
        "-o interface=eth0 L2",
    ),
    'hostnet run --acl "action=block;dir=in;proto=tcp;lport=80" '
    '--acl "action=allow;dir=in;proto=tcp;lport=80;raddr=10.0.0.0/8;prio=10" -- ...': (
        'hostnet run --acl "action=block;dir=in;proto=tcp;lport=80" '
        f'--acl "action=allow;dir=in;proto=tcp;lport=80;raddr=10.0.0.0/8;prio=10" -- {RUN}',
    ),
    "hostnet endpoint acl ls CONTAINER": ("hostnet endpoint acl ls web",),
    "hostnet endpoint acl add CONTAINER RULE...": (
        'hostnet endpoint acl add web "action=block;dir=in;proto=udp;lport=53"',
    ),
    "hostnet endpoint acl rm CONTAINER N...": ("hostnet endpoint acl rm web 0",),
    "hostnet endpoint inspect CONTAINER": ("hostnet endpoint inspect web",),
    "hostnet network connect --policy '...' NET CONTAINER": (
        'hostnet network connect --policy \'{"Type": "SDNRoute", "Settings": '
        '{"DestinationPrefix": "192.0.2.0/24", "NextHop": "172.20.8.2"}}\' n1 web',
    ),
    "hostnetd --store etcd://10.1.0.1:2379,10.1.0.2:2379,10.1.0.3:2379 [--host-id NAME] "
    "[--advertise-addr UNDERLAY_IP] ...": (
        "hostnetd --store etcd://10.1.0.1:2379,10.1.0.2:2379,10.1.0.3:2379 "
        "--state-dir $LAB/h1 --socket $LAB/h1/hostnet.sock --docker-host none "
        "--docker-plugins none --resolv-conf /dev/null",
        "hostnetd --store etcd://10.1.0.1:2379,10.1.0.2:2379,10.1.0.3:2379 --host-id h2 "
        "--advertise-addr 10.1.0.2 --state-dir $LAB/h2 --socket $LAB/h2/hostnet.sock "
        "--docker-host none --docker-plugins none --resolv-conf /dev/null",
    ),
    "hostnet network create -d overlay -o "
    "com.docker.network.driver.overlay.vxlanid_list=5000 ...": (
        "hostnet network create -d overlay -o "
        "com.docker.network.driver.overlay.vxlanid_list=5000 --subnet 10.0.10.0/24 ov2",
    ),
    "hostnet run --net ov1 --name web -- ...": (f"hostnet run --net ov1 --name web -- {RUN}",),
    "hostnet run --net ov1 --net nat -- ...": (f"hostnet run --net ov1 --net nat -- {RUN}",),
    "hostnet node rm HOST": ("hostnet node rm h2",),
    "docker run --network nat ...": ("docker run --network nat --rm busybox ip addr show eth0",),
    "hostnet docker expose NET": ("hostnet docker expose shared",),
}
for _pol in ("{\"VirtualIP\": \"198.51.100.77\", \"Exceptions\": [\"10.0.0.0/8\"]}",
             "{\"Destinations\": [\"203.0.113.0/24\"]}"):  # fmt: skip
    _st = f'hostnet run --net n1 --policy \'{{"Type": "OutBoundNAT", "Settings": {_pol}}}\''
    FORMS[f"{_st} -- ..."] = (f"{_st} -- {RUN}",)
_SDN = '\'{"Type": "SDNRoute", "Settings": {"DestinationPrefix": "192.0.2.0/24", "NextHop": "172.20.8.2"}}\''
FORMS[f"hostnet run --net n1 --policy {_SDN} -- ..."] = (
    f"hostnet run --net n1 --policy {_SDN} -- {RUN}",
)

EXEMPT: dict[str, str] = {
    "scripts/test.sh": "the whole suite, this test included: CI runs it (.ci/run)",
    "hostnetd --store etcds://10.1.0.1:2379,10.1.0.2:2379,10.1.0.3:2379 --store-ca ca.pem "
    "--store-cert me.pem --store-key me-key.pem ...": "needs an etcd cluster with TLS "
    "certificates: tests/netns/test_overlay.py::test_store_over_tls_with_client_certificates "
    "runs this form against one",
}

# which test runs each README section (a new section fails the coverage test until placed)
SECTIONS = {
    "The two commands": "test_readme_install",
    "Using it": "test_readme_using_it",
    "The seed's workflow: containers created stopped, adapters, PowerShell": (
        "test_readme_seed_workflow, test_readme_powershell"
    ),
    "Dual stack (IPv6)": "test_readme_dual_stack_doctor_topology",
    "Doctor": "test_readme_dual_stack_doctor_topology",
    "Topology": "test_readme_dual_stack_doctor_topology",
    "External switches: transparent, l2bridge, l2tunnel": "test_readme_external_switches",
    "Port ACLs": "test_readme_acls_and_policies",
    "Endpoint policies: OutBoundNAT and SDNRoute": "test_readme_acls_and_policies",
    "Overlay networks across hosts (etcd)": "test_readme_overlay",
    "Docker and Docker Compose": "tests/e2e/test_readme_docker.py",
}
# exit codes a statement documents besides 0 (doctor: 1 warnings, 2 errors)
EXIT_OK: dict[str, tuple[int, ...]] = {
    "hostnet doctor": (0, 1),
    "hostnet doctor --format json": (0, 1),
}
EXIT_OK["hostnet doctor --store etcd://10.1.0.1:2379,10.1.0.2:2379"] = (0, 1)


def forms_of(st: Statement) -> tuple[str, ...]:
    """The forms a statement runs as (itself when it has no placeholders)."""
    if st.text in FORMS:
        return FORMS[st.text]
    missing = placeholders(st.text)
    assert not missing, (
        f"README line {st.line}: `{st.text}` has placeholders {missing}: give its filled "
        "forms in FORMS (tests/netns/test_readme.py) or run it as written"
    )
    return (st.text,)


def readme(lab: Lab, d: Daemon) -> Readme:
    """A runner with this module's tables."""
    return Readme(lab, d, forms=forms_of, exempt=EXEMPT, exit_ok=EXIT_OK)


def test_every_readme_command_is_run_or_exempt() -> None:
    every = statements()
    assert len(every) > 50, "the README parser found too few statements"
    texts = {st.text for st in every}
    for st in every:
        assert st.section in SECTIONS, (
            f"README line {st.line}: section {st.section!r} is run by no test"
        )
        if st.text in EXEMPT:
            continue
        forms = forms_of(st)
        for form in forms:
            assert fills(st.text, form), f"`{form}` is not README line {st.line} filled in"
        groups = [g[1:-1] for g in placeholders(st.text) if g.startswith("[")]
        for g in groups:
            assert any(uses_group(st.text, f, g) for f in forms), (
                f"README line {st.line}: no form runs `[{g}]`"
            )
    stale = (set(FORMS) | set(EXEMPT)) - texts
    assert not stale, f"FORMS/EXEMPT name statements the README no longer has: {stale}"


# --- the sections ---------------------------------------------------------------------------


def test_readme_using_it(lab: Lab) -> None:
    d, ip = lab.host()
    client, _ = lab.node("client")
    r = readme(lab, d)
    web = "hostnet run --network CustomNat1 --name web -p 8082:80 -- python3 -m http.server 80"
    r.servers[web] = http_answers(client, ip, 8082)
    r.after["hostnet network rm CustomNat1"] = lambda _: r.sh(
        "hostnet network create --subnet 172.16.1.0/24 CustomNat1 && "
        "hostnet run -d --net CustomNat1 --name keep -- sleep infinity"
    )
    r.after["hostnet network rm --force CustomNat1"] = lambda _: assert_gone(d, "CustomNat1")
    r.inputs["hostnet system reset"] = "y\n"
    r.before["hostnet system reset --force"] = lambda: restart(d)
    r.after["hostnet system reset --force"] = lambda _: d.proc and d.proc.wait(30)
    r.section("Using it")
    assert web in r.ran and not os.path.exists(d.state_dir)


def assert_gone(d: Daemon, net: str) -> None:
    assert net not in [n["Name"] for n in d.json("network", "ls", "--format", "json")]


def test_readme_seed_workflow(lab: Lab) -> None:
    d, ip = lab.host()
    client, _ = lab.node("client")
    r = readme(lab, d)
    full = FORMS[next(k for k in FORMS if k.startswith("hostnet create --name DemoNAT"))][0]

    def full_form_serves(_: object) -> None:
        r.sh("hostnet start DemoNAT")
        eventually(http_answers(client, ip, 8082), timeout=30)
        assert r.sh("hostnet rm DemoNAT").returncode == 0

    r.after[full] = full_form_serves
    # what the adapter lines assume: a second network, an adapter named spare
    r.before["hostnet adapter add --name backend --network side DemoNAT"] = lambda: r.sh(
        "hostnet network create --subnet 172.31.5.0/24 side"
    )
    r.before["hostnet adapter connect --name spare DemoNAT side"] = lambda: r.sh(
        "hostnet adapter add --name spare DemoNAT"
    )

    def one_adapter() -> None:  # without --name, connect and disconnect need a single one
        for a in d.json("adapter", "ls", "--format", "json", "DemoNAT"):
            if a["Name"] != "Network Adapter":
                d.cli("adapter", "rm", "--name", a["Name"], "DemoNAT")

    r.before["hostnet adapter connect DemoNAT nat"] = one_adapter
    r.before["hostnet adapter disconnect DemoNAT"] = one_adapter
    # the lines below use the adapter on nat (its mapping 8082 -> 80)
    r.after["hostnet adapter disconnect DemoNAT"] = lambda _: d.cli(
        "adapter", "connect", "DemoNAT", "nat"
    )
    r.before["hostnet stop DemoNAT"] = lambda: r.sh("hostnet start DemoNAT")
    # the mapping 8082 -> 80 made above reaches the server exec -d started
    r.after[f"hostnet exec -d DemoNAT -- {SERVER}"] = lambda _: eventually(
        http_answers(client, ip, 8082), timeout=30
    )
    r.section(SEED, lambda st: not is_cmdlet(st))
    assert "DemoNAT" in names(d)


SEED = "The seed's workflow: containers created stopped, adapters, PowerShell"


def is_cmdlet(st: Statement) -> bool:
    """A PowerShell line (``hostnet Verb-Noun ...``): its block runs in a test of its own."""
    word = st.text.split()[1] if len(st.text.split()) > 1 else ""
    return word[:1].isupper() and "-" in word


@pytest.fixture
def ps_lab(lab: Lab) -> Iterator[tuple[Lab, Daemon]]:
    """A host whose daemon starts without `nat` (New-ContainerNetwork makes it), with an
    adapter eth1 aliased "Ethernet" (the seed's adapter name)."""
    d, _ = lab.host("host", "-b", "none")
    lab.adapter(d.host, "eth1")
    in_ns(d.host, "ip", "link", "set", "eth1", "alias", "Ethernet")
    yield lab, d


def test_readme_powershell(ps_lab: tuple[Lab, Daemon]) -> None:
    lab, d = ps_lab
    r = readme(lab, d)
    full = FORMS[next(k for k in FORMS if k.startswith("hostnet New-ContainerNetwork -Name nat"))]
    r.before[full[1]] = lambda: r.sh("hostnet network rm nat")
    r.section(SEED, is_cmdlet)
    assert "DemoNAT" in names(d)


def test_readme_dual_stack_doctor_topology(lab: Lab) -> None:
    d, _ = lab.host()
    r = readme(lab, d)
    r.before["hostnet network connect --ip6 fd12:3456:789a:1::11 ds web"] = lambda: r.sh(
        "hostnet run -d --name web -- sleep infinity"
    )
    r.section("Dual stack (IPv6)")
    r.section("Doctor", lambda st: "--store" not in st.text)  # that one: test_readme_overlay
    r.section("Topology")
    assert os.path.getsize(os.path.join(lab.tmp, "host.png")) > 0


def test_readme_external_switches(lab: Lab) -> None:
    lab.router()
    d, _ = lab.host()
    lab.adapter(d.host, "eth1")
    r = readme(lab, d)
    # one adapter carries one external network: each example after the first frees eth1
    r.before["hostnet network create -d transparent -o interface=eth1 MyDhcpNet"] = lambda: r.sh(
        "hostnet network rm MyTransparentNet"
    )
    oob = (
        "ip link add br-oob type bridge && ip link set eth1 master br-oob && ip link set br-oob up"
    )
    r.before[oob] = lambda: r.sh("hostnet network rm MyDhcpNet L2")  # OobNet takes L2's subnet
    r.section("External switches: transparent, l2bridge, l2tunnel")
    assert "OobNet" in [n["Name"] for n in d.json("network", "ls", "--format", "json")]


def test_readme_acls_and_policies(lab: Lab) -> None:
    d, ip = lab.host()
    r = readme(lab, d)
    r.before["hostnet endpoint acl ls web"] = lambda: r.sh(
        "hostnet run -d --name web -- sleep infinity"
    )
    r.section("Port ACLs")
    # what the policies assume: a network n1 whose subnet holds the SDNRoute next hop, and
    # the VirtualIP an address of the host's
    assert r.sh("hostnet network create --subnet 172.20.8.0/24 n1").returncode == 0
    in_ns(d.host, "ip", "addr", "add", "198.51.100.77/24", "dev", "eth0")
    r.section("Endpoint policies: OutBoundNAT and SDNRoute")
    assert ip


def test_readme_install(lab: Lab) -> None:
    """scripts/install.sh as written, into the lab: a copy of this tree, every path moved."""
    ns, _ = lab.node("inst")
    tree = os.path.join(lab.tmp, "tree")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=repo,
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    for f in files:
        if os.path.isfile(os.path.join(repo, f)):
            os.makedirs(os.path.dirname(os.path.join(tree, f)), exist_ok=True)
            shutil.copy2(os.path.join(repo, f), os.path.join(tree, f))
    root = os.path.join(lab.tmp, "root")
    sock = os.path.join(root, "run", "hostnet.sock")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "HOSTNET_PREFIX": f"{root}/opt/hostnet",
        "HOSTNET_BIN_DIR": f"{root}/bin",
        "HOSTNET_CNI_DIRS": f"{root}/cni/bin {root}/lib/cni",
        "HOSTNET_COMPLETION_DIR": f"{root}/completions",
        "HOSTNET_SYSTEMD_DIR": f"{root}/systemd",
        "HOSTNET_SOCKET": sock,
        "HOSTNET_LOG": f"{root}/hostnetd.log",
        "HOSTNETD_ARGS": f"--state-dir {root}/state --docker-host none --docker-plugins none "
        f"--resolv-conf /dev/null",
    }
    st = next(s for s in statements() if s.section == "The two commands" and "install" in s.text)
    assert forms_of(st) == ("scripts/install.sh",)
    pidfile = os.path.join(root, "run", "hostnetd.pid")
    try:
        # pip needs the network, which the lab has not: the files go in first from this
        # namespace (--no-start: nothing of the machine's network is touched), then the
        # README's line runs in the lab as a second run (pip offline, all there already)
        first = subprocess.run(["bash", "scripts/install.sh", "--no-start"], cwd=tree, env=env,
                               capture_output=True, text=True, timeout=900)  # fmt: skip
        assert first.returncode == 0, first.stdout + first.stderr
        # the build requirement (setuptools) offline: a wheelhouse fetched from here
        wheels = os.path.join(lab.tmp, "wheels")
        got = subprocess.run([f"{root}/opt/hostnet/bin/python", "-m", "pip", "download", "-q",
                              "-d", wheels, "setuptools>=64"], env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert got.returncode == 0, got.stdout + got.stderr
        offline = env | {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels}
        res = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "bash", "-c", st.text],
                             cwd=tree, env=offline, capture_output=True, text=True, timeout=900)  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        assert "hostnetd running" in res.stdout, res.stdout
        listed = subprocess.run([f"{root}/bin/hostnet", "network", "ls"], env=env,
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        assert listed.returncode == 0 and "nat" in listed.stdout, listed.stdout + listed.stderr
    finally:
        stop_by_pidfile(pidfile)


# --- overlay: three lab hosts at the README's 10.1.0.x, an etcd member each -----------------


def test_readme_overlay(lab: Lab) -> None:
    if shutil.which("etcd") is None:
        pytest.skip("needs etcd (scripts/test.sh installs etcd-server)")
    nodes = [lab.node(f"h{i}")[0] for i in (1, 2, 3)]
    members = [(ns, f"10.1.0.{i}") for i, ns in enumerate(nodes, 1)]
    for ns, ip in members:  # the README's addresses, on the lab segment
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    cluster = ",".join(f"m{i}=http://{ip}:2380" for i, (_, ip) in enumerate(members, 1))
    etcd = [
        etcd_member(lab, f"m{i}", ns, ip, cluster, os.path.join(lab.tmp, f"etcd-m{i}"), False)
        for i, (ns, ip) in enumerate(members, 1)
    ]
    h1 = Daemon(nodes[0], f"{lab.tmp}/h1", f"{lab.tmp}/h1/hostnet.sock")
    h2 = Daemon(nodes[1], f"{lab.tmp}/h2", f"{lab.tmp}/h2/hostnet.sock")
    try:
        for ns, ip in members:
            wait_etcd(ns, ip)
        r = readme(lab, h1)
        first, second = FORMS[next(k for k in FORMS if k.startswith("hostnetd --store etcd:"))]
        r.daemons = {first: h1, second: h2}
        r.before[second] = lambda: setattr(r, "ns", nodes[1])
        r.before["hostnet network create -d overlay --subnet 10.0.9.0/24 ov1"] = lambda: setattr(
            r, "ns", nodes[0]
        )
        r.before["hostnet node rm h2"] = lambda: h2.stop()  # a host gone for good
        r.section("Overlay networks across hosts (etcd)")
        doctor = next(s for s in statements() if s.text.startswith("hostnet doctor --store"))
        r.one(doctor, doctor.text)
    finally:
        for d in (h1, h2):  # while etcd still runs: removing containers needs the store
            if d.proc is not None and d.proc.poll() is None:
                for c in d.json("ps", "-a", "--format", "json"):
                    d.cli("rm", c["Id"], check=False)
                d.stop()
        for p in etcd:
            p.terminate()
            p.wait(10)
