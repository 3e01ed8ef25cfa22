"""The core: ``HostNetworkingService`` (``service.py``) and its collaborators, every face's
one way in. What it knows (``index``), plans (``planning``, ``ipam``, ``ports``) and
realizes (``firewall``, ``policies``, ``acl``, ``cluster``, ``loopback``); its
transactions, each a module of its own (``attach``, ``endpoints``, ``namespaces``,
``modify``); keeping the kernel in step (``reconcile``, ``reset``, ``nswatch``); the
seed's lifecycle (``lifecycle``); and what it counts and serves (``stats``, ``metrics``).

Nothing is imported here: the model and the drivers import single modules of it."""
