"""The REST API's OpenAPI 3.1 document, generated from the request models.

The daemon serves it at ``GET /openapi.json``; the tree keeps a copy in
``docs/openapi.json`` (a unit test fails when it is stale). Write it anew with::

    python -m hostnet.rest.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import sys
from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from hostnet import __version__
from hostnet.hns import schema_v1 as v1
from hostnet.rest import requests as rq


class Route(NamedTuple):
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    status: int = 200
    query: tuple[tuple[str, str], ...] = ()


ROUTES: tuple[Route, ...] = (
    Route("get", "/_ping", "Is the daemon up (and its instance)"),
    Route("get", "/openapi.json", "This document"),
    Route("get", "/cluster/hosts", "Hosts of the cluster and their endpoints"),
    Route("delete", "/cluster/hosts/{host}", "Remove a host gone for good from the cluster"),
    Route("get", "/networks", "List networks"),
    Route("post", "/networks", "Create a network", rq.NetworkCreate, 201),
    Route("post", "/networks/prune", "Remove networks without endpoints"),
    Route("get", "/networks/{ref}", "Inspect a network (name, id or id prefix)"),
    Route(
        "delete",
        "/networks/{ref}",
        "Remove a network",
        query=(("force", "1 or true: disconnect its endpoints first"),),
    ),
    Route("post", "/networks/{ref}/connect", "Connect a container (hot add)", rq.Connect, 201),
    Route("post", "/networks/{ref}/disconnect", "Disconnect a container", rq.Disconnect),
    Route(
        "post",
        "/networks/{ref}/docker",
        "Keep a network a Docker network (made again when Docker starts without it)",
    ),
    Route("get", "/containers", "List containers (compartments)"),
    Route(
        "post", "/containers/create", "Create a container STOPPED (intent only)", rq.LifecycleCreate
    ),
    Route(
        "post", "/containers/{ref}/start", "Realize a created container (then register its process)"
    ),
    Route("post", "/containers/{ref}/stop", "Stop its process; the compartment stays", rq.Stop),
    Route(
        "get", "/containers/{ref}/adapters", "Its network adapters (Get-ContainerNetworkAdapter)"
    ),
    Route("post", "/containers/{ref}/adapters", "Add a network adapter", rq.AdapterSpec),
    Route(
        "post",
        "/containers/{ref}/adapters/{name}",
        "Change an adapter (connect: network)",
        rq.AdapterChange,
    ),
    Route("delete", "/containers/{ref}/adapters/{name}", "Remove an adapter"),
    Route("post", "/containers/{ref}/adapters/{name}/mappings", "Add a static mapping", rq.Mapping),
    Route(
        "post",
        "/containers/{ref}/adapters/{name}/mappings/remove",
        "Remove a static mapping",
        rq.Mapping,
    ),
    Route("get", "/containers/{ref}/ipconfig", "The compartment's IP configuration (ipconfig)"),
    Route("post", "/containers", "Create a container on networks", rq.ContainerCreate, 201),
    Route("get", "/containers/{ref}", "Inspect a container"),
    Route("delete", "/containers/{ref}", "Stop and remove a container"),
    Route("post", "/containers/{ref}/process", "Register the container's process", rq.Process),
    Route("post", "/containers/{ref}/ports", "Publish more ports", rq.Ports, 201),
    Route("post", "/containers/{ref}/ports/remove", "Unpublish ports", rq.Ports),
    Route(
        "get",
        "/containers/{ref}/endpoint",
        "An endpoint, as HNS shows it",
        query=(("network", "which network's endpoint (default: the first)"),),
    ),
    Route("put", "/containers/{ref}/acl", "Replace an endpoint's ACL rules", rq.AclSet),
    Route("get", "/endpoints", "List endpoints, attached and unattached"),
    Route("post", "/endpoints", "Create an endpoint, unattached", rq.EndpointCreate, 201),
    Route("get", "/endpoints/{id}", "Inspect an endpoint"),
    Route("delete", "/endpoints/{id}", "Delete an endpoint: its address and ports are free"),
    Route(
        "post",
        "/endpoints/{id}/attach",
        "Attach an endpoint to a container's compartment or the host's",
        rq.EndpointAttach,
    ),
    Route("post", "/endpoints/{id}/detach", "Detach an endpoint; it stays, unattached"),
    Route(
        "get",
        "/hcn/{kind}",
        "HCN v2: enumerate networks, endpoints, namespaces or routes (as hcsshim's hcn)",
        query=(("query", "a HostComputeQuery JSON (Filter: ID, Name, VirtualNetwork)"),),
    ),
    Route("post", "/hcn/{kind}", "HCN v2: create an object (its JSON; ID given or chosen)", None, 201),
    Route("get", "/hcn/{kind}/{id}", "HCN v2: one object"),
    Route("delete", "/hcn/{kind}/{id}", "HCN v2: delete an object"),
    Route(
        "post",
        "/hcn/{kind}/{id}/modify",
        "HCN v2: a Modify*SettingRequest (policies Add/Remove/Update/Refresh, endpoints)",
    ),
    Route("get", "/compartments", "List compartments"),
    Route("get", "/nat", "List port mappings"),
    Route("get", "/switches", "List virtual switches"),
    Route(
        "get",
        "/switches/{name}/extension",
        "The datapath pieces serving a switch, each checked against the kernel",
    ),
    Route("post", "/system/reconcile", "Make the kernel match intent"),
    Route("get", "/system/info", "Versions, store, instance and the kernel pieces in use"),
    Route("get", "/system/reset", "What a reset would remove"),
    Route("post", "/system/reset", "Remove everything this daemon made; it then stops", rq.Reset),
    Route("post", "/cni", "A CNI call forwarded by the hostnet-cni plugin (headers X-Cni-*)"),
    # HNS v1, as hcsshim's internal/hns calls it; every answer is {Success, Error, Output}
    Route("get", "/hns/globals/version", "HNS v1: the HNS version hostnet claims, its features"),
    Route("get", "/hns/networks/", "HNS v1: list networks (HNSNetwork)"),
    Route("post", "/hns/networks/", "HNS v1: create a network", v1.HNSNetwork),
    Route("get", "/hns/networks/{id}", "HNS v1: a network by ID"),
    Route("delete", "/hns/networks/{id}", "HNS v1: delete a network"),
    Route("get", "/hns/endpoints/", "HNS v1: list endpoints (HNSEndpoint)"),
    Route("post", "/hns/endpoints/", "HNS v1: create an endpoint, unattached", v1.HNSEndpoint),
    Route("get", "/hns/endpoints/{id}", "HNS v1: an endpoint by ID"),
    Route("post", "/hns/endpoints/{id}", "HNS v1: update an endpoint (refused)", v1.HNSEndpoint),
    Route("delete", "/hns/endpoints/{id}", "HNS v1: delete an endpoint"),
    Route(
        "post",
        "/hns/endpoints/{id}/attach",
        "HNS v1: attach an endpoint to a container or the host",
        v1.EndpointAttachDetachRequest,
    ),
    Route(
        "post",
        "/hns/endpoints/{id}/detach",
        "HNS v1: detach an endpoint",
        v1.EndpointAttachDetachRequest,
    ),
    Route("get", "/hns/endpointstats/{id}", "HNS v1: an endpoint's counters, from the kernel"),
    Route("get", "/hns/policylists/", "HNS v1: list policy lists (none until load balancers)"),
    Route("post", "/hns/policylists/", "HNS v1: create a policy list (refused)", v1.PolicyList),
    Route("get", "/hns/policylists/{id}", "HNS v1: a policy list by ID"),
    Route("delete", "/hns/policylists/{id}", "HNS v1: delete a policy list"),
)

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "kind": {"type": "string"},
                "message": {"type": "string", "description": "what was wrong, and why"},
                "remedy": {"type": "string", "description": "what to do"},
                "details": {"type": "object"},
                "cni_code": {"type": "integer"},
            },
            "required": ["kind", "message", "remedy"],
        }
    },
}


def document() -> dict[str, Any]:
    models = sorted({r.body for r in ROUTES if r.body is not None}, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas = dict(sorted(defs.get("$defs", {}).items()))
    schemas["Error"] = ERROR
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "responses": {
                str(r.status): {"description": "done", "content": {"application/json": {}}},
                "4XX": {
                    "description": "refused: nothing changed",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        params = [
            {"name": p[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for p in r.path.split("/")
            if p.startswith("{")
        ]
        params += [
            {"name": q, "in": "query", "description": text, "schema": {"type": "string"}}
            for q, text in r.query
        ]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{r.body.__name__}"}
                    }
                },
            }
        paths.setdefault(r.path, {})[r.method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hostnet",
            "version": __version__,
            "description": "The host networking service's REST API, on its unix socket.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def text() -> str:
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(text())
