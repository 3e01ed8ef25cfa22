"""`hostnet network ls`'s Docker column says what is true now (issue 21): on a host where
nothing answers on Docker's socket (no socket at all, or a dead one) the default `nat` is
exposed "when Docker answers", never "exposed"; with --docker-host none hostnetd says it
does not follow Docker; a Docker that answers but has no network bound to `nat` is not
called exposed either, and when it goes away the column says so again."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import socketserver
import threading
from collections.abc import Iterator

from lab import Daemon, Lab, eventually

PENDING = "when Docker answers"


def docker_column(d: Daemon) -> dict[str, str]:
    return {n["Name"]: n["Docker"] for n in d.json("network", "ls", "--format", "json")}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextlib.contextmanager
def engine_without_networks(path: str) -> Iterator[None]:
    """A Docker Engine API on ``path`` that answers /_ping, lists no networks, has none
    and refuses to create any (as a Docker without hostnet's plugins would); its event
    stream stays open until it stops."""
    stopping = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.endswith("/_ping"):
                self._send(200, b"OK")
            elif self.path.endswith("/networks"):
                self._send(200, b"[]")
            elif self.path.endswith("/events"):
                self.send_response(200)
                self.end_headers()
                self.wfile.flush()
                stopping.wait(60)  # closing the stream is Docker stopping
            else:
                self._send(404, b'{"message": "network not found"}')

        def do_POST(self) -> None:
            self._send(400, b'{"message": "plugin \\"nat\\" not found"}')

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def test_the_docker_column_says_what_is_true_now(lab: Lab) -> None:
    missing = os.path.join(lab.tmp, "no-docker", "docker.sock")  # no engine installed
    dead = os.path.join(lab.tmp, "docker.sock")  # a socket file nothing listens on
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(dead)
    off, _ = lab.host("off")  # the lab's default: --docker-host none
    gone, _ = lab.host("gone", "--docker-host", f"unix://{missing}")
    quiet, _ = lab.host("quiet", "--docker-host", dead)
    assert docker_column(off) == {"nat": "not followed (--docker-host none)"}
    for d in (gone, quiet):
        assert docker_column(d) == {"nat": PENDING}
        table = d.cli("network", "ls").stdout
        assert PENDING in table and "exposed" not in table, table
    # a network never meant for Docker
    quiet.cli("network", "create", "--subnet", "172.30.7.0/24", "web")
    assert docker_column(quiet)["web"] == "-"
    # Docker answers, but it has no network bound to nat (it refused to make one)
    os.unlink(dead)
    with engine_without_networks(dead):
        eventually(lambda: docker_column(quiet)["nat"] == "not in Docker (see the daemon log)", 15)
        assert "could not make nat a Docker network" in quiet.log()
    # Docker stopped: hostnetd waits for it again, and says so
    eventually(lambda: docker_column(quiet)["nat"] == PENDING, 15)
    assert docker_column(gone) == {"nat": PENDING}
