"""A TCP proxy that holds every client-to-server chunk for DELAY seconds while FLAG exists:
a slow store (etcd on a busy disk, or far away) for the tests.

usage: slow_proxy.py LISTEN_IP:PORT TARGET_IP:PORT DELAY FLAG
"""

from __future__ import annotations

import asyncio
import os
import sys


async def _pump(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float, flag: str
) -> None:
    try:
        while data := await src.read(65536):
            if delay and os.path.exists(flag):
                await asyncio.sleep(delay)
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        dst.close()


async def main() -> None:
    listen, target, delay, flag = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(thost, int(tport))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_w, delay, flag), _pump(up_r, writer, 0, flag))

    server = await asyncio.start_server(handle, lhost, int(lport))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
