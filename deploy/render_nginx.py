"""Write an nginx.conf for N MiniLLM Lab replicas from nginx.conf.template.

    python deploy/render_nginx.py --replica app1:8501 --replica app2:8501 ... > nginx.conf

Used by deploy/local_cluster.py (loopback ports) and for Compose (service names; see
compose.yaml, which mounts deploy/nginx.compose.conf, written with the command in the
README). Each replica gets an upstream of its own, minillm_r1 ... minillm_rN.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def render(replicas: list[str], listen: str, prefix: str, access_log: str = "off") -> str:
    if not replicas:
        raise ValueError("at least one replica (host:port)")
    names = [f"minillm_r{i}" for i in range(1, len(replicas) + 1)]
    # each replica's backup is the next one (see the template: one backup, so that a down
    # replica's students all land on the same other one)
    backups = [f" server {replicas[(i + 1) % len(replicas)]} backup;" if len(replicas) > 1
               else "" for i in range(len(replicas))]
    upstreams = "\n".join(f"    upstream {name} {{ server {address};{backup} }}"
                          for name, address, backup in zip(names, replicas, backups))
    share = 100 / len(names)
    split = "\n".join(f"        {share:.2f}% {name};" for name in names[:-1])
    split += ("\n" if split else "") + f"        * {names[-1]};"
    routes = "\n".join(f"        {name} {name};" for name in names)
    text = TEMPLATE.read_text()
    text = text.split("\nworker_processes", 1)[1]  # drop the template's comment
    text = "worker_processes" + text
    for key, value in {"@UPSTREAMS@": upstreams, "@SPLIT@": split, "@ROUTES@": routes,
                       "@LISTEN@": listen, "@PREFIX@": prefix,
                       "@ACCESS_LOG@": access_log}.items():
        text = text.replace(key, value)
    return "# Written by deploy/render_nginx.py from nginx.conf.template.\n" + text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replica", action="append", required=True, help="host:port")
    parser.add_argument("--listen", default="80")
    parser.add_argument("--prefix", default="/tmp")
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.replica, args.listen, args.prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
