"""The school setup of compose.yaml on this machine, without Docker: one PostgreSQL (Debian's
package), N ``streamlit run`` replicas and nginx (Debian's package) with sticky sessions, all
on loopback ports in a temporary folder.

    python deploy/local_cluster.py [--replicas 3] [--teacher-key KEY]

prints the address (nginx) and each replica's, and runs until Ctrl-C; tests/test_deploy_local.py
uses `LocalCluster` the same way. Needs ``apt-get install postgresql nginx-light`` (initdb,
pg_ctl and nginx; no system service is started: everything runs in the temp folder). As root,
PostgreSQL runs as the ``postgres`` user (initdb refuses root) and nginx as ``nobody``.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

from render_nginx import render  # noqa: E402

START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path | None:
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        try:
            found.append((float(Path(initdb).parents[1].name), Path(initdb).parent))
        except ValueError:
            continue
    return max(found)[1] if found else None


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def missing() -> str | None:
    """What this machine lacks for a local cluster, in words (None: nothing)."""
    if postgres_bindir() is None:
        return "no PostgreSQL binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if nginx_binary() is None:
        return "no nginx (apt-get install nginx-light)"
    if os.geteuid() == 0:
        for user in ("postgres", "nobody"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return f"running as root and there is no {user} user"
    return None


def _as(user: str | None) -> dict:
    if user is None or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown(path: Path, user: str | None) -> None:
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def wait_http(url: str, deadline: float, process: subprocess.Popen | None = None,
              log: Path | None = None, want: bytes | None = None) -> None:
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({process.returncode}); log:\n"
                               + (log.read_text(errors="replace")[-4000:] if log else ""))
        try:
            with urllib.request.urlopen(url, timeout=3) as answer:
                if want is None or answer.read().strip() == want:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in time")


class LocalCluster:
    """PostgreSQL + `replicas` Streamlit servers + nginx on loopback; a context manager."""

    def __init__(self, replicas: int = 3, teacher_key: str = "local-cluster-teacher-key",
                 env: dict[str, str] | None = None, folder: Path | None = None):
        self.replicas, self.teacher_key, self.extra_env = replicas, teacher_key, env or {}
        self.folder = Path(folder or tempfile.mkdtemp(prefix="minillm-cluster-"))
        self.folder.chmod(0o755)  # postgres and nobody must reach their folders inside
        self.processes: list[subprocess.Popen] = []
        self.replica_urls: list[str] = []
        self.url = ""
        self.database_url = ""
        self._pg_data: Path | None = None

    # -- PostgreSQL --------------------------------------------------------------------------

    def _start_postgres(self) -> None:
        bindir, user = postgres_bindir(), ("postgres" if os.geteuid() == 0 else None)
        top = self.folder / "pg"
        top.mkdir()
        _chown(top, user)
        data, port = top / "data", free_port()
        run = dict(check=True, capture_output=True, text=True, cwd=str(top), **_as(user))
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                       timeout=120, **run)
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} "
                   f"-c unix_socket_directories={top} -c max_connections=100")
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(top / "log"),
                        "-o", options, "-w", "-t", str(START_SECONDS), "start"],
                       timeout=START_SECONDS + 10, **run)
        self._pg_data, self._pg_bindir, self._pg_user = data, bindir, user
        self.database_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _stop_postgres(self) -> None:
        if self._pg_data is None:
            return
        subprocess.run([str(self._pg_bindir / "pg_ctl"), "-D", str(self._pg_data), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60,
                       cwd=str(self._pg_data.parent), **_as(self._pg_user))
        self._pg_data = None

    # -- the replicas and nginx ------------------------------------------------------------

    def _start_replica(self, number: int) -> str:
        port = free_port()
        env = {**os.environ, "MINILLM_DATABASE_URL": self.database_url,
               "MINILLM_TEACHER_KEY": self.teacher_key,
               "MINILLM_DATA_DIR": str(self.folder / f"data{number}"), **self.extra_env}
        log = self.folder / f"replica{number}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.address", "127.0.0.1", "--server.port", str(port),
                 "--browser.gatherUsageStats", "false"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        process.log = log  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{port}"

    def _start_nginx(self) -> None:
        user = "nobody" if os.geteuid() == 0 else None
        prefix = self.folder / "nginx"
        prefix.mkdir()
        _chown(prefix, user)
        port = free_port()
        replicas = [url.removeprefix("http://") for url in self.replica_urls]
        conf = prefix / "nginx.conf"
        conf.write_text(render(replicas, f"127.0.0.1:{port}", str(prefix)))
        log = self.folder / "nginx.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", "stderr",
                 "-g", "daemon off;"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, **_as(user))
        self.processes.append(process)
        self.url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.url}/_stcore/health", time.monotonic() + 30, process, log, b"ok")

    def start(self) -> "LocalCluster":
        problem = missing()
        if problem:
            raise RuntimeError(problem)
        try:
            self._start_postgres()
            self.replica_urls = [self._start_replica(n) for n in range(1, self.replicas + 1)]
            deadline = time.monotonic() + START_SECONDS
            for url, process in zip(self.replica_urls, self.processes):
                wait_http(f"{url}/_stcore/health", deadline, process, process.log, b"ok")
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def replica_pids(self) -> list[int]:
        return [p.pid for p in self.processes[: self.replicas]]

    def replica_address(self, number: int) -> str:
        """Replica `number`'s (1..N) host:port, as nginx's X-MiniLLM-Upstream names it."""
        return self.replica_urls[number - 1].removeprefix("http://")

    def replica_of_address(self, address: str) -> int | None:
        """Which replica (1..N) answers at `address` (host:port; nginx's $upstream_addr lists
        every server it tried, so the last one), or None."""
        last = address.split(",")[-1].strip()
        for number in range(1, self.replicas + 1):
            if self.replica_address(number) == last:
                return number
        return None

    def kill_replica(self, number: int) -> None:
        """Crash replica `number` (1..N): SIGKILL to its whole process group (the server and
        its training workers), no clean shutdown, as a machine that dies."""
        process = self.processes[number - 1]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                except ProcessLookupError:
                    pass
        self.processes = []
        self._stop_postgres()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def rss_mb(pid: int) -> float:
    """A process's resident memory, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--teacher-key", default=os.environ.get("MINILLM_TEACHER_KEY",
                                                                  "local-cluster-teacher-key"))
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.replicas, args.teacher_key)
    with cluster:
        print(f"MiniLLM Lab behind nginx: {cluster.url}")
        for number, url in enumerate(cluster.replica_urls, start=1):
            print(f"  replica {number}: {url}")
        print(f"  PostgreSQL: {cluster.database_url}")
        print("Ctrl-C stops everything.")
        try:
            while all(p.poll() is None for p in cluster.processes):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    cluster.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
