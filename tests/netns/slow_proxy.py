"""A TCP proxy in front of etcd's JSON gateway that holds key-value requests while FLAG
exists: a store that does not answer (etcd on a stalled disk, or far away) until the test
releases it by removing FLAG. Lease keepalives and watches pass (the daemon's identity
lease stays alive meanwhile).

While requests are held, STATUS holds a JSON list of them, one per connection that has a
request waiting: {"conn": its number, "path": "/v3/kv/...", "keys": the keys it names}.
A test reads it to see what is pending at the store, and how many round trips at once.

usage: slow_proxy.py LISTEN_IP:PORT TARGET_IP:PORT FLAG STATUS
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import sys
from typing import Any

HELD: dict[int, dict[str, Any]] = {}  # connection -> the first request it has waiting
_conns = itertools.count(1)
_KV = re.compile(rb"^POST (/v3/kv/\S*) HTTP", re.M)


def _keys(chunk: bytes) -> list[str]:
    """The keys a request's JSON body names (base64 in etcd's JSON), decoded."""
    body = chunk.split(b"\r\n\r\n", 1)[-1]
    out: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "key" and isinstance(v, str):
                    with contextlib.suppress(ValueError):
                        out.append(base64.b64decode(v).decode(errors="replace"))
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    with contextlib.suppress(ValueError):
        walk(json.loads(body))
    return out


def _write_status(status: str) -> None:
    tmp = status + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(list(HELD.values()), fh)
    os.replace(tmp, status)


async def _pump(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    flag: str | None,
    status: str,
    conn: int,
) -> None:
    try:
        while data := await src.read(65536):
            m = _KV.search(data) if flag else None
            if m is not None and os.path.exists(flag or ""):
                HELD[conn] = {"conn": conn, "path": m.group(1).decode(), "keys": _keys(data)}
                _write_status(status)
                while os.path.exists(flag or ""):  # held until the test removes the flag
                    await asyncio.sleep(0.01)
                del HELD[conn]
                _write_status(status)
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        dst.close()


async def main() -> None:
    listen, target, flag, status = sys.argv[1:5]
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    _write_status(status)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(thost, int(tport))
        except OSError:
            writer.close()
            return
        conn = next(_conns)
        await asyncio.gather(
            _pump(reader, up_w, flag, status, conn), _pump(up_r, writer, None, status, conn)
        )

    server = await asyncio.start_server(handle, lhost, int(lport))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
