"""Nothing leaves the machine: starting the server opens no connection to an outside address.

A headless Streamlit server asks checkip.amazonaws.com for the machine's external IP, only to
print an "External URL", unless ``browser.serverAddress`` is set (.streamlit/config.toml). The
server here runs as a class server is started (``streamlit run app.py``, headless, no
``--server.address``), in a process where every TCP connection to an address that is not
loopback, and every name lookup other than localhost, is refused and written down (on a machine
without a network the lookup of checkip.amazonaws.com fails before any connection is tried).
"""

import subprocess
import sys
import textwrap
import time
import urllib.request

from conftest import ROOT, free_port, stop_process_group

GUARD = textwrap.dedent("""
    import ipaddress, socket, sys

    LOG = sys.argv.pop(1)
    _connect = socket.socket.connect

    def _is_loopback(address):
        host = address[0] if isinstance(address, tuple) else address
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return host == "localhost"

    def guarded_connect(self, address):
        if self.type == socket.SOCK_STREAM and self.family in (socket.AF_INET, socket.AF_INET6) \\
                and not _is_loopback(address):
            with open(LOG, "a") as log:
                log.write(f"{address}\\n")
            raise ConnectionRefusedError(f"test: no connection to {address}")
        return _connect(self, address)

    socket.socket.connect = guarded_connect
    _getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback((name,)):
            try:
                ipaddress.ip_address(name)  # an address, not a name: no lookup leaves here
            except ValueError:
                with open(LOG, "a") as log:
                    log.write(f"name lookup: {name}\\n")
                raise socket.gaierror(f"test: no name lookup of {name}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = guarded_getaddrinfo

    from streamlit.web.cli import main
    sys.argv = ["streamlit", *sys.argv[1:]]
    main()
""")


def test_starting_the_server_contacts_no_outside_address(tmp_path):
    guard = tmp_path / "guard.py"
    guard.write_text(GUARD)
    attempts = tmp_path / "outside-connections.log"
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, str(guard), str(attempts), "run", "app.py",
             "--server.headless", "true", "--server.port", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text(errors="replace")
            printed = log_path.read_text(errors="replace")
            if "URL:" in printed:  # printed once the server listens, after any IP lookup
                break
            time.sleep(0.25)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.read().decode().strip() == "ok"
        printed = log_path.read_text(errors="replace")
    finally:
        stop_process_group(server)
    outside = attempts.read_text() if attempts.exists() else ""
    assert not outside, f"the server tried to reach outside addresses:\n{outside}\n{printed}"
    assert "External URL" not in printed
    assert f"http://localhost:{port}" in printed  # the address to open is still printed
