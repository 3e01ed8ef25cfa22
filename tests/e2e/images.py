"""Container images built locally (no registry): a busybox rootfs from Debian's busybox-static."""

from __future__ import annotations

import os
import shutil
import subprocess


def busybox_tar(workdir: str) -> str:
    """A tarball of a minimal root filesystem: /bin/busybox and its applet links."""
    root = os.path.join(workdir, "busybox-rootfs")
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
    applets = subprocess.run(
        ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "etc", "passwd"), "w") as fh:
        fh.write("root:x:0:0:root:/:/bin/sh\n")
    tar = os.path.join(workdir, "busybox.tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return tar
