"""``hostnet-cni`` in Python: the CNI plugin as a pure forwarder.

It passes the runtime's command, environment and config to hostnetd unread
(the daemon validates and answers with the CNI result or error) and prints the
answer. Imports are only os, sys and socket: runtimes exec it for every call.
``cni/hostnet-cni.c`` is the same forwarder in C, used when a compiler exists.
"""

import os
import socket
import sys

DEFAULT_SOCKET = "/run/hostnet/hostnet.sock"
HEADERS = ("COMMAND", "CONTAINERID", "NETNS", "IFNAME", "ARGS")


def socket_path(config: bytes) -> str:
    """``"socket"`` from the config, found without a JSON parser; else env, else default."""
    at = config.find(b'"socket"')
    if at >= 0:
        rest = config[at + 8 :].lstrip().lstrip(b":").lstrip()
        if rest.startswith(b'"'):
            return rest[1:].split(b'"', 1)[0].decode()
    return os.environ.get("HOSTNET_SOCKET") or DEFAULT_SOCKET


def fail(code: int, msg: str, details: str) -> None:
    msg, details = msg.replace('"', "'"), details.replace('"', "'")
    sys.stdout.write(
        f'{{"cniVersion": "1.1.0", "code": {code}, "msg": "{msg}", "details": "{details}"}}\n'
    )
    sys.exit(1)


# the daemon's list (cni/adapter.py: the Windows plugins' 0.2.0 and 0.3.x, then 0.4.0 on)
VERSION = (
    '{"cniVersion": "1.1.0", "supportedVersions": '
    '["0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}'
)


def main() -> None:
    config = sys.stdin.buffer.read()
    if os.environ.get("CNI_COMMAND") == "VERSION":  # answered here: no daemon needed
        sys.stdout.write(VERSION + "\n")
        return
    path = socket_path(config)
    head = "POST /cni HTTP/1.1\r\nHost: hostnet\r\nConnection: close\r\n"
    for name in HEADERS:
        value = os.environ.get("CNI_" + name, "").replace("\r", "").replace("\n", "")
        head += f"X-Cni-{name.capitalize()}: {value}\r\n"
    head += f"Content-Length: {len(config)}\r\n\r\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    try:
        s.connect(path)
        s.sendall(head.encode() + config)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except OSError as exc:
        status = 50 if os.environ.get("CNI_COMMAND") == "STATUS" else 11
        fail(
            status,
            f"cannot reach hostnetd at {path}: {exc.strerror}",
            "start hostnetd, or set socket in the config",
        )
    raw = b"".join(chunks)
    header, _, body = raw.partition(b"\r\n\r\n")
    exit_code = 1
    for line in header.split(b"\r\n"):
        if line.lower().startswith(b"x-cni-exit:"):
            exit_code = int(line.split(b":", 1)[1])
    if not header.startswith(b"HTTP/1.1 200"):
        fail(100, "hostnetd refused the call", raw[:300].decode(errors="replace"))
    sys.stdout.buffer.write(body)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
