"""A PostgreSQL cluster of a test's own, on a free port, that the test may stop at will.

Built with the server's ``initdb`` and ``pg_ctl`` (found through ``pg_config --bindir``, else
Debian's ``/usr/lib/postgresql/*/bin``); run as the ``postgres`` user when the tests run as root
(the server refuses root). Never touches the shared server the other tests use.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from web_server import free_port


def server_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when the server is not installed."""
    pg_config = shutil.which("pg_config")
    candidates: list[str] = []
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


@dataclass
class ThrowawayPostgres:
    """One cluster under ``root``: :meth:`start`, :meth:`stop` (immediate, like a crash).

    ``root`` is a directory of its own in the system's temp dir (pytest's is private to root, and
    the server runs as ``postgres``); :meth:`remove` deletes it.
    """

    root: Path
    bindir: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @classmethod
    def create(cls, bindir: Path) -> ThrowawayPostgres:
        """A new, initialized cluster (not started)."""
        server = cls(Path(tempfile.mkdtemp(prefix="weavegraph-pg-")), bindir)
        server.init()
        return server

    def remove(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.port = free_port()
        self._run("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop at once: connections are cut, nothing is shut down gracefully."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.root / "data" / "postmaster.pid").exists()
