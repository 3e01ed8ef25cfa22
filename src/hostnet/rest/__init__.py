"""hostnet's own REST API on the daemon's unix socket: the app (``app.py``, which also
mounts HNS's ``/hns`` and ``/hcn`` routes from ``hostnet.hns``), the typed request bodies
and the OpenAPI document made from them, the route groups and the read-only views."""
