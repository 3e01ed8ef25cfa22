"""Imported at start-up by a lab daemon started with ``helpers``-style ``knobs(...)`` (this
directory first on its PYTHONPATH): widens the daemon's own deadlines, so that a test can
hold a slow operation open (a DHCP server, a store, an upstream resolver that does not
answer) for as long as it likes and release it, instead of racing a deadline.

HOSTNET_TEST_KNOBS="module:attr.path=literal;..." e.g.
"hostnet.dns.forward:FORWARD_DEADLINE_S=3600". The variable is removed once applied, so
the daemon's children (containers, DHCP clients, shims) start as they always do.
"""

from __future__ import annotations

import ast
import importlib
import os

_spec = os.environ.pop("HOSTNET_TEST_KNOBS", "")
for _item in filter(None, (s.strip() for s in _spec.split(";"))):
    _where, _value = _item.split("=", 1)
    _module, _path = _where.split(":", 1)
    _obj = importlib.import_module(_module)
    *_parents, _last = _path.split(".")
    for _name in _parents:
        _obj = getattr(_obj, _name)
    getattr(_obj, _last)  # a knob that names nothing is an error, not a silent no-op
    setattr(_obj, _last, ast.literal_eval(_value))
