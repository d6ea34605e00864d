"""A real PostgreSQL server for the tests: Debian's binaries (the `postgresql` package, which .ci/run
installs), initdb into a temp dir, `postgres` on a free 127.0.0.1 port with its unix socket in that
dir, and a fresh database per test. initdb refuses to run as root: as root the server runs as the
`postgres` system user, in a dir handed to it."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

MISSING = ("PostgreSQL's server binaries (initdb, pg_ctl) are not installed; .ci/run installs Debian's "
           "`postgresql` (apt-get install postgresql), or set PG_BIN to their folder.")


def bindir() -> Path | None:
    """The folder with initdb and pg_ctl: $PG_BIN, the newest /usr/lib/postgresql/N/bin, or PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    which = shutil.which("initdb")
    candidates += [str(Path(which).parent)] if which else []
    return next((Path(c) for c in candidates
                 if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file()), None)


class Server:
    def __init__(self, port: int):
        self.port = port

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        # FORCE: connections a test's pools still hold are ended with it
        with self._admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@contextmanager
def running(bin_dir: Path):
    """A PostgreSQL server for the block; stopped (and its files removed) when it ends."""
    root = Path(tempfile.mkdtemp(prefix="pg-"))  # in /tmp: pytest's own tmp dirs are closed to other users
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "log"
    try:
        init = subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "-E", "UTF8", "--locale=C.UTF-8"], capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, f"initdb failed: {init.stdout}{init.stderr}"
        port = free_port()
        # fsync off: the tests check behaviour, not durability on power loss; it saves seconds per run.
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        started = subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                  "-o", options, "start"], capture_output=True, text=True, timeout=90)
        assert started.returncode == 0, \
            f"postgres did not start: {started.stderr}\n{log.read_text(errors='replace')[-2000:]}"
        try:
            yield Server(port)
        finally:
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
