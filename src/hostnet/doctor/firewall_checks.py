"""Doctor checks of other firewalls: a forward chain hostnet did not make that drops by
default (Docker's iptables chains, ufw, firewalld, a hand-made nft table) also drops
hostnet's routed traffic, and with br_netfilter its bridged traffic too.

Pure functions of the nftables ruleset in libnftables' JSON form (iptables-nft rules show
there as well) and of the hostnet switches present.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hostnet.doctor.findings import Finding, error, ok, warning

SWITCH_PREFIXES = ("hn-", "hx-", "ho-")  # nat, external, overlay switches
OWN_TABLE = "hostnet"  # every table hostnet makes starts with it
IP_FAMILIES = ("ip", "ip6", "inet")


@dataclass(frozen=True)
class DroppingChain:
    """A forward base chain, not hostnet's, that drops what no rule accepted."""

    family: str
    table: str
    chain: str
    how: str  # "policy drop" or the final rule's verdict
    owner: str  # docker, ufw, firewalld or ""
    uncovered: tuple[str, ...]  # hostnet switch patterns (hn-*) no accept rule lets through


def switch_patterns(bridges: list[str]) -> tuple[str, ...]:
    """The prefixes of the hostnet switches present (hn- when there is none yet)."""
    used = [p for p in SWITCH_PREFIXES if any(b.startswith(p) for b in bridges)]
    return tuple(used or ["hn-"])


def _matches(right: Any, name: str) -> bool:
    if isinstance(right, dict) and "set" in right:
        return any(_matches(r, name) for r in right["set"])
    if not isinstance(right, str):
        return False
    if right.endswith("*") and not right.endswith("\\*"):
        return name.startswith(right[:-1])
    return right == name


def _verdict(rule: dict[str, Any]) -> str:
    for e in reversed(rule.get("expr", [])):
        for key in ("accept", "drop", "reject", "jump", "goto", "return"):
            if key in e:
                return key
    return ""


def _iface_matches(rule: dict[str, Any]) -> list[tuple[str, Any]] | None:
    """(key, value) of each interface match of a rule, None when it matches anything
    else too (a rule limited to, say, established connections covers no new traffic)."""
    out = []
    for e in rule.get("expr", []):
        if not e.keys() - {"counter", "accept", "log", "comment"}:
            continue
        m = e.get("match")
        if m is None:
            return None  # xt matches (iptables-nft), ct state, payload...
        left = m.get("left", {})
        key = left.get("meta", {}).get("key") if isinstance(left, dict) else None
        if key not in ("iifname", "oifname", "ibrname", "obrname") or m.get("op") not in (
            "==",
            "in",
        ):
            return None
        out.append((key, m.get("right")))
    return out


def _accepts(rules: list[dict[str, Any]], key: str, name: str) -> bool:
    for r in rules:
        ms = _iface_matches(r)
        if _verdict(r) == "accept" and ms and len(ms) == 1:
            k, right = ms[0]
            if k == key and _matches(right, name):
                return True
    return False


def dropping_chains(ruleset: list[dict[str, Any]], bridges: list[str]) -> list[DroppingChain]:
    chains = [o["chain"] for o in ruleset if "chain" in o]
    rules = [o["rule"] for o in ruleset if "rule" in o]
    out = []
    for c in chains:
        fam, table = c.get("family"), c.get("table", "")
        if c.get("hook") != "forward" or table.startswith(OWN_TABLE):
            continue
        if fam not in (*IP_FAMILIES, "bridge"):
            continue
        own = [r for r in rules if r.get("family") == fam and r.get("chain") == c["name"]]
        own = [r for r in own if r.get("table") == table]
        how = "policy drop" if c.get("policy") == "drop" else ""
        if (
            not how
            and own
            and _verdict(own[-1]) in ("drop", "reject")
            and not _iface_matches_any(own[-1])
        ):
            how = f"a final {_verdict(own[-1])} rule"
        if not how:
            continue
        in_table = [r for r in rules if r.get("family") == fam and r.get("table") == table]
        keys = ("ibrname",) if fam == "bridge" else ("iifname", "oifname")
        uncovered = tuple(
            p
            for p in switch_patterns(bridges)
            if not all(_accepts(in_table, k, p + "x") for k in keys)
        )
        names = {x["name"] for x in chains if x.get("family") == fam and x.get("table") == table}
        out.append(DroppingChain(fam, table, c["name"], how, _owner(table, names), uncovered))
    return out


def _iface_matches_any(rule: dict[str, Any]) -> bool:
    """Whether a rule matches anything at all (else it applies to every packet)."""
    return any(e.keys() - {"counter", "log", "drop", "reject"} for e in rule.get("expr", []))


def legacy_ruleset(save: str, family: str = "ip") -> list[dict[str, Any]]:
    """``iptables-legacy-save -t filter`` output in the JSON form of ``ruleset`` (the
    forward policy and the rules as far as the checks read them): iptables-legacy rules
    are invisible to nftables."""
    table = "filter (iptables-legacy)"
    out: list[dict[str, Any]] = []
    for line in save.splitlines():
        if line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            chain: dict[str, Any] = {"family": family, "table": table, "name": name}
            if name == "FORWARD":
                chain.update(hook="forward", type="filter", policy=policy.lower())
            out.append({"chain": chain})
        elif line.startswith("-A "):
            out.append({"rule": _legacy_rule(line.split(), family, table)})
    return out


def _legacy_rule(words: list[str], family: str, table: str) -> dict[str, Any]:
    expr: list[dict[str, Any]] = []
    i = 2
    while i < len(words):
        w = words[i]
        if w == "!":  # a negated match: limits the rule like any other
            expr.append({"xt": {"name": "!"}})
            i += 1
            continue
        value = words[i + 1] if i + 1 < len(words) else ""
        if w in ("-i", "-o"):
            key = "iifname" if w == "-i" else "oifname"
            right = value[:-1] + "*" if value.endswith("+") else value
            expr.append({"match": {"op": "==", "left": {"meta": {"key": key}}, "right": right}})
        elif w in ("-j", "-g"):
            target = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return"}
            verdict = target.get(value, "jump")
            expr.append({verdict: {"target": value} if verdict == "jump" else None})
        else:
            expr.append({"xt": {"name": w}})  # any other match limits the rule
        i += 2
    return {"family": family, "table": table, "chain": words[1], "expr": expr}


def _owner(table: str, chains: set[str]) -> str:
    if table == "firewalld":
        return "firewalld"
    if any(n.startswith("DOCKER") for n in chains):
        return "docker"
    if any(n.startswith("ufw-") for n in chains):
        return "ufw"
    return ""


def _remedy(d: DroppingChain, bridges: list[str]) -> tuple[str, str]:
    """(what to do, the command) for one chain."""
    mine = [b for b in bridges if b.startswith(d.uncovered)]
    if d.owner == "docker":
        tool = ("ip6tables" if d.family == "ip6" else "iptables") + (
            "-legacy" if "legacy" in d.table else "-nft"
        )
        cmd = " && ".join(
            f"{tool} -I DOCKER-USER {flag} {p}+ -j ACCEPT"
            for p in d.uncovered
            for flag in ("-i", "-o")
        )
        return "let hostnet's switches through Docker's DOCKER-USER chain", cmd
    if d.owner == "ufw":
        cmd = " && ".join(f"ufw route allow in on {b} && ufw route allow out on {b}" for b in mine)
        return (
            'allow routing on hostnet\'s switches (or DEFAULT_FORWARD_POLICY="ACCEPT" in '
            "/etc/default/ufw, then 'ufw reload')",
            cmd,
        )
    if d.owner == "firewalld":
        cmd = " && ".join(
            f"firewall-cmd --zone=trusted --add-interface={b} && "
            f"firewall-cmd --permanent --zone=trusted --add-interface={b}"
            for b in mine
        )
        return "put hostnet's switches in firewalld's trusted zone", cmd
    keys = ("meta ibrname",) if d.family == "bridge" else ("iifname", "oifname")
    cmd = " && ".join(
        f"nft 'insert rule {d.family} {d.table} {d.chain} {k} \"{p}*\" accept'"
        for p in d.uncovered
        for k in keys
    )
    return f"accept hostnet's switches in {d.family} {d.table} {d.chain} before it drops", cmd


def check_forward_policy(
    ruleset: list[dict[str, Any]] | str, bridges: list[str], nets: list[dict[str, Any]] | None
) -> list[Finding]:
    if isinstance(ruleset, str):
        return [
            warning(
                "firewall.forward",
                f"cannot read the nftables ruleset: {ruleset}",
                "another firewall's forward chain may drop hostnet's traffic",
                "run 'hostnet doctor' as root",
            )
        ]
    found = dropping_chains(ruleset, bridges)
    out = []
    for d in found:
        where = f"{d.family} {d.table} chain {d.chain}"
        owner = f" ({d.owner})" if d.owner else ""
        if not d.uncovered:
            out.append(
                ok(
                    "firewall.forward",
                    f"{where}{owner} drops by default but lets hostnet's switches through",
                )
            )
            continue
        remedy, cmd = _remedy(d, bridges)
        make: Callable[..., Finding] = (
            error if (nets or any(b.startswith(SWITCH_PREFIXES) for b in bridges)) else warning
        )
        out.append(
            make(
                "firewall.forward",
                f"{where}{owner} drops forwarded traffic ({d.how}) and no rule accepts "
                f"traffic in and out of {', '.join(p + '*' for p in d.uncovered)}",
                "every forward base chain must accept a packet: NAT containers get no "
                "way out, mapped ports no answer (and with br_netfilter, containers of one "
                "network cannot reach each other)",
                remedy,
                cmd,
            )
        )
    if not found:
        out.append(ok("firewall.forward", "no other firewall's forward chain drops by default"))
    return out


def check_br_netfilter(
    call_iptables: str | None, ruleset: list[dict[str, Any]] | str, bridges: list[str]
) -> list[Finding]:
    if call_iptables != "1":
        return [
            ok("firewall.br_netfilter", "bridged frames skip the ip/ip6 hooks (br_netfilter off)")
        ]
    blocked = (
        []
        if isinstance(ruleset, str)
        else [
            d for d in dropping_chains(ruleset, bridges) if d.uncovered and d.family in IP_FAMILIES
        ]
    )
    if not blocked:
        return [
            ok(
                "firewall.br_netfilter",
                "br_netfilter is on: bridged frames pass the ip/ip6 forward hooks too "
                "(hostnet needs no br_netfilter; harmless while no forward chain drops them)",
            )
        ]
    return [
        warning(
            "firewall.br_netfilter",
            "br_netfilter is on (net.bridge.bridge-nf-call-iptables=1) and a forward chain "
            "drops: frames between containers of one switch are dropped too",
            "br_netfilter hands bridged frames to the ip/ip6 forward hooks",
            "let hostnet's switches through that chain (see firewall.forward); or, if "
            "nothing else here (Docker's own networks, Kubernetes) needs it, turn it off",
            "sysctl -w net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0",
        )
    ]
