"""An export answer's body, read as it arrives: its records one by one, its shape checked.

SmartUp answers ``{"inventory": [ ... ], "limits": {...}}``. The body is decoded as it
arrives and read one JSON value at a time with the standard library's C scanner
(``raw_decode``): the top level by hand, so the records must be an array at the top level
under their key, once; each record on its own, so memory stays flat and one record
cannot spoil its neighbours. Why not a general streaming parser (ijson): yajl merges a
high surrogate escape with whatever escape follows it, turns a lone one into ``?`` and
raises ``UnicodeDecodeError`` on a low one, from which its iterator cannot go on; it
reads about half as fast as this, too.

Values come out exactly as sent: numbers keep every digit (``Decimal``; integers too long
for a machine word too), lone or reversed surrogate escapes stay lone surrogates, bytes
that are not UTF-8 become lone surrogates (``surrogateescape``), raw control characters in
strings are kept. The record parser rejects what cannot be stored; it is never handed a
changed value. A record that cannot even be built (nested too deep, ``NaN``, an exponent
no Decimal holds) comes out as an :class:`UnreadableRecord` with the reason and the text
members of its top level, where its id may be, and the records after it are read as usual.

The charset. The body is read in the charset its ``Content-Type`` declares (matched
case-insensitively, as :func:`codecs.lookup` does):

- UTF-8, declared or not (no ``charset`` parameter), is read as described above: bytes
  that are not UTF-8 become lone surrogates, and the records holding them are rejected.
- A charset Python knows as a text encoding (windows-1251, koi8-r, utf-16, ...) is decoded
  as declared, incrementally and strictly; the text is then read as for UTF-8. A byte that
  is not valid in it fails the body whole (:class:`BodyProblem` with ``bad_charset``),
  naming the charset and the byte's offset.
- A charset Python does not know, or a codec that is not a text encoding (``rot13``,
  ``hex``, ``base64``, ``zlib``, ...), fails the body whole before anything is read.

A byte order mark. RFC 8259 (8.1) lets a JSON reader ignore a BOM; the WHATWG Encoding
standard's "BOM sniff" makes a UTF-8, UTF-16LE or UTF-16BE BOM decide the encoding over
the declared label. Both are followed: a body that starts with ``EF BB BF`` is read as
UTF-8, with ``FF FE`` as UTF-16LE, with ``FE FF`` as UTF-16BE, whatever charset is
declared, and the mark itself is not part of the document. A BOM that contradicts the
label wins because the label is the likelier to be wrong: read in any ASCII-compatible
charset, or in UTF-16 or UTF-32, those bytes cannot begin a JSON document, so honouring
the label would only refuse the body.
Two exceptions, both stricter than WHATWG: a label Python does not know still fails the
body (the sender's setup is wrong; we do not guess), and under a declared UTF-32 label a
UTF-32 BOM (``FF FE 00 00``, ``00 00 FE FF``) is left to the UTF-32 codec (WHATWG knows no
UTF-32 and would misread it as UTF-16LE). Without a BOM, the labels ``utf-16`` and
``utf-32`` (no byte order named) mean little-endian, as WHATWG says of ``utf-16``. One
U+FEFF at the very start of the decoded text (a BOM the declared codec kept, as
``utf-16-le`` does) is skipped too.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, NamedTuple

CHUNK_BYTES = 256 * 1024
LOOKAHEAD_CHARS = 64 * 1024  # text kept ahead of the reading position: most records fit
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NEXT_TOKEN = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # after the opening quote
_SCALAR_END = re.compile(r"[ \t\n\r,\]}]")
_NOT_JSON_START = re.compile(r"[^\[{\"0-9-]")
_NUMBER_PREFIX = re.compile(r"-?[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")


class UnreadableRecord(NamedTuple):
    """A record that could not be built: why, and the text members of its top level
    that could be read (so that its id can be named in the reject)."""

    reason: str
    fields: dict[str, str]


class BodyProblem(Exception):
    """The body is not the document expected. ``truncated``: it only ended too early
    (worth asking again); ``not_json``: it is not JSON at all (an HTML page, plain text);
    ``bad_charset``: its declared charset is unknown, or its bytes are not valid in it
    (the same bytes would come again: not worth asking again)."""

    def __init__(
        self,
        message: str,
        *,
        truncated: bool = False,
        not_json: bool = False,
        bad_charset: bool = False,
    ) -> None:
        super().__init__(message)
        self.truncated = truncated
        self.not_json = not_json
        self.bad_charset = bad_charset


class _NotJSONConstant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJSONConstant(f"holds {name}, which is not a JSON value")


def _json_int(digits: str) -> int | Decimal:
    """Integers that fit 64 bits as int; longer ones as an exact Decimal (no digit limit,
    and storable as JSON by orjson, which refuses wider ints)."""
    return int(digits) if len(digits) <= 18 else Decimal(digits)


_scan = json.JSONDecoder(
    parse_float=Decimal, parse_int=_json_int, parse_constant=_refuse_constant, strict=False
).raw_decode
_decode_string = json.JSONDecoder(strict=False).decode

UTF8_NAMES = frozenset({"utf-8", "utf-8-sig"})  # codecs.lookup(...).name of UTF-8 labels
_UTF32_NAMES = frozenset({"utf-32", "utf-32-le", "utf-32-be"})
_SNIFFED_BOMS = (  # the WHATWG Encoding standard's BOM sniff, in its order
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16BE"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16LE"),
)
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
SHOWN_LABEL_CHARS = 60


def shown_label(label: str) -> str:
    """A declared charset as it can appear in a one-line message: quoted, with control and
    other unprintable characters escaped, cut to a reasonable length."""
    cut = label[:SHOWN_LABEL_CHARS]
    return repr(cut) + ("..." if len(label) > SHOWN_LABEL_CHARS else "")


def text_codec(label: str | None) -> codecs.CodecInfo:
    """The codec of a declared charset (None or empty: UTF-8), matched case-insensitively.

    Raises :class:`BodyProblem` (``bad_charset``) for a label Python does not know and for
    a codec that is not a text encoding (``rot13``, ``hex``, ``base64``, ``zlib``, ...)."""
    if not label:
        return codecs.lookup("utf-8")
    try:
        codec = codecs.lookup(label)
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        codec = None
    if codec is None or not getattr(codec, "_is_text_encoding", True):
        raise BodyProblem(
            f"declares charset {shown_label(label)}, which is not a text encoding Python knows",
            bad_charset=True,
        )
    return codec


class RecordsReader:
    """Reads one export body: ``for record in reader.records(): ...``; then ``limits``.

    ``read(size)`` gives the next bytes of the body (``b""`` at its end). Every problem with
    the body as a whole raises :class:`BodyProblem`, at the latest before :meth:`records`
    returns, so a caller that applies the records in one transaction can roll them back.

    ``charset`` is the charset the answer declares (its ``Content-Type`` parameter as
    sent; None when it declares none): see the module's docstring for how it is honoured.
    Once :meth:`records` has begun, ``encoding`` is the codec the body is read in.
    """

    def __init__(
        self, read: Callable[[int], bytes], *, records_key: str, charset: str | None = None
    ) -> None:
        self._read = read
        self._key = records_key
        self._charset = charset
        self._decoder: codecs.IncrementalDecoder = codecs.getincrementaldecoder("utf-8")(
            "surrogateescape"
        )
        self.encoding = "utf-8"
        self._encoding_source = ""  # how the encoding was chosen, for messages
        self._bytes_decoded = 0  # body bytes handed to the decoder so far
        self._buf = ""
        self._pos = 0
        self._eof = False
        self.limits: Any = None

    def _choose_decoder(self) -> None:
        """Pick the decoder from the declared charset and a byte order mark (see the
        module's docstring); the first bytes read for the sniff are decoded first."""
        declared = text_codec(self._charset)
        head, ended = b"", False
        while len(head) < 4 and not ended:
            chunk = self._read(CHUNK_BYTES)
            ended = not chunk
            head += chunk
        name = declared.name
        source = f"its declared charset {shown_label(self._charset)}" if self._charset else ""
        skipped = 0
        if not (name in _UTF32_NAMES and head.startswith(_UTF32_BOMS)):
            for bom, sniffed, standard_name in _SNIFFED_BOMS:
                if head.startswith(bom):
                    name, skipped = sniffed, len(bom)
                    source = f"{standard_name}, as its byte order mark says"
                    break
        if name == "utf-16" and not skipped:  # WHATWG: the label "utf-16" is UTF-16LE
            name = "utf-16-le"
        elif name == "utf-32" and not head.startswith(_UTF32_BOMS):  # likewise, for UTF-32
            name = "utf-32-le"
        self.encoding = name
        self._encoding_source = source or "UTF-8"
        if name not in UTF8_NAMES:  # UTF-8 keeps the decoder made in __init__
            self._decoder = codecs.getincrementaldecoder(name)("strict")
        self._bytes_decoded = skipped
        rest, read = head[skipped:], self._read

        def read_rest(size: int) -> bytes:  # the sniffed bytes first, then the body's own
            self._read = _nothing_more if ended else read
            return rest

        self._read = read_rest

    # -- the document ------------------------------------------------------------------

    def records(self) -> Iterator[Any]:
        """Yield each record of the array under the records key (an
        :class:`UnreadableRecord` for one that cannot be built)."""
        self._choose_decoder()
        first = self._peek()
        if first == "\ufeff":  # a byte order mark: tolerated at the very start
            self._pos += 1
            first = self._peek()
        if first != "{":
            raise self._not_an_object(first)
        self._pos += 1
        seen = False
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                if self._peek() != '"':
                    raise self._unexpected("a key")
                key = self._value()
                if self._peek() != ":":
                    raise self._unexpected("':'")
                self._pos += 1
                start = self._peek()
                if key == self._key:
                    if seen:
                        raise BodyProblem(f"holds {self._key!r} twice")
                    if start != "[":
                        raise self._unexpected("an array", shape=f"has {self._key!r} as")
                    seen = True
                    yield from self._array()
                elif start == "[":
                    for _ in self._array():  # another array, perhaps huge: walked, not kept
                        pass
                else:
                    value = self._value()
                    if key == "limits":
                        self.limits = value
                delimiter = self._peek()
                self._pos += 1
                if delimiter == "}":
                    break
                if delimiter != ",":
                    self._pos -= 1
                    raise self._unexpected("',' or '}'")
        if self._peek() != "":
            raise BodyProblem("goes on after its JSON document ends")
        if not seen:
            raise BodyProblem(f"has no {self._key!r} array at its top level")

    def _array(self) -> Iterator[Any]:
        """The values of the array at the reading position, one by one. The common case
        (a whole record in the buffer, a comma right after it) takes the short way."""
        self._pos += 1
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            buf, pos = self._buf, self._pos
            if len(buf) - pos < LOOKAHEAD_CHARS and not self._eof:
                self._fill(LOOKAHEAD_CHARS)
                buf, pos = self._buf, self._pos
            try:
                value, end = _scan(buf, pos)
            except Exception:  # ran out of buffer, or a record that cannot be built
                value = self._value()
            else:
                if end < len(buf):
                    self._pos = end
                else:  # a number at the very end of the buffer may go on
                    value = self._value()
            yield value
            buf, pos = self._buf, self._pos
            if pos + 1 < len(buf) and buf[pos] == "," and buf[pos + 1] not in " \t\n\r":
                self._pos = pos + 1
                continue
            delimiter = self._peek()
            self._pos += 1
            if delimiter == "]":
                return
            if delimiter != ",":
                self._pos -= 1
                raise self._unexpected("',' or ']'")
            self._peek()

    # -- values --------------------------------------------------------------------------

    def _value(self) -> Any:
        """The JSON value at the reading position (which :meth:`_peek` has put on it)."""
        need = LOOKAHEAD_CHARS
        while True:
            self._fill(need)
            buf, pos = self._buf, self._pos
            try:
                value, end = _scan(buf, pos)
            except json.JSONDecodeError as error:
                if self._eof or not _near_end(error, buf):
                    raise _problem(error, buf) from None
                need = 2 * (len(buf) - pos)  # grows geometrically: linear time overall
                continue
            except Exception as error:  # a value that cannot be built: skip it, say why
                return self._unreadable(error)
            if end == len(buf) and not self._eof:
                need = 2 * (len(buf) - pos)
                continue
            self._pos = end
            return value

    def _unreadable(self, error: Exception) -> UnreadableRecord:
        if isinstance(error, RecursionError):
            reason = "nested too deeply to be read"
        elif isinstance(error, _NotJSONConstant):
            reason = str(error)
        elif isinstance(error, ArithmeticError):
            reason = "holds a number whose exponent no decimal can hold"
        else:
            reason = f"cannot be read ({type(error).__name__})"
        need = LOOKAHEAD_CHARS
        while True:
            self._fill(need)
            found = _find_end(self._buf, self._pos)
            if found is not None:
                self._pos, fields = found
                return UnreadableRecord(reason, fields)
            if self._eof:
                raise BodyProblem("ends before its JSON does", truncated=True)
            need = 2 * (len(self._buf) - self._pos)

    # -- the buffer ----------------------------------------------------------------------

    def _fill(self, need: int) -> None:
        """Have at least ``need`` characters ahead of the reading position, or all there is."""
        ahead = len(self._buf) - self._pos
        if ahead >= need or self._eof:
            return
        parts = [self._buf[self._pos :]]
        while ahead < need and not self._eof:
            chunk = self._read(CHUNK_BYTES)
            self._eof = not chunk
            try:
                text = self._decoder.decode(chunk, final=self._eof)
            except ValueError as error:  # UnicodeError, or what an odd codec raises
                raise self._undecodable(error, chunk) from None
            self._bytes_decoded += len(chunk)
            parts.append(text)
            ahead += len(text)
        self._buf = "".join(parts)
        self._pos = 0

    def _peek(self) -> str:
        """Move past white space; the next character, or ``""`` at the end of the body."""
        while True:
            if self._pos >= len(self._buf):
                self._fill(1)
            match = _WHITESPACE.match(self._buf, self._pos)
            assert match is not None  # the pattern matches the empty string
            self._pos = match.end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if self._eof:
                return ""

    # -- problems ------------------------------------------------------------------------

    def _undecodable(self, error: ValueError, chunk: bytes) -> BodyProblem:
        """Bytes not valid in the body's encoding (never UTF-8: that decoder cannot fail)."""
        where = ""
        if isinstance(error, UnicodeDecodeError):
            # A decoder may hold back the bytes of a character begun in the previous chunk
            # and decode them before ``chunk``: the error's offsets count from the first.
            held_back = max(len(error.object) - len(chunk), 0)
            offset = max(self._bytes_decoded - held_back + error.start, 0)
            bad = bytes(error.object[error.start : error.end][:8]).hex(" ")
            reason, where = error.reason, f" (bytes {bad} at offset {offset})"
        else:
            reason = " ".join(str(error).split())[:200]
        return BodyProblem(
            f"is not valid in {self._encoding_source}: {reason}{where}", bad_charset=True
        )

    def _unexpected(self, expected: str, *, shape: str = "") -> BodyProblem:
        found = self._peek()
        if found == "":
            return BodyProblem("ends before its JSON does", truncated=True)
        if shape:
            return BodyProblem(f"{shape} {_kind(found)}, not {expected}")
        return BodyProblem(f"is not valid JSON: expected {expected} at {found!r}")

    def _not_an_object(self, first: str) -> BodyProblem:
        if first == "":
            return BodyProblem("is empty")
        if _NOT_JSON_START.match(first) and first not in "tfn":
            return BodyProblem("is not JSON", not_json=True)
        try:
            value = self._value()
        except BodyProblem:
            return BodyProblem("is not JSON", not_json=True)
        if self._peek() != "" or isinstance(value, UnreadableRecord):
            return BodyProblem("is not JSON", not_json=True)
        return BodyProblem(f"is {_kind(first)}, not an object holding the {self._key!r} array")


def _nothing_more(size: int) -> bytes:
    """What is left of a body whose end has been read already."""
    return b""


def _near_end(error: json.JSONDecodeError, text: str) -> bool:
    """Whether the scanner may have failed only because ``text`` ends (more is coming)."""
    return error.msg.startswith("Unterminated string") or error.pos >= len(text) - 8


def _problem(error: json.JSONDecodeError, text: str) -> BodyProblem:
    """The body ended: truncated when what is left could begin a valid value, else invalid."""
    rest = text[error.pos :].rstrip(" \t\n\r")
    if (
        error.msg.startswith("Unterminated string")
        or ("uXXXX" in error.msg and error.pos >= len(text) - 6)
        or any(word.startswith(rest) for word in ("true", "false", "null"))
        or _NUMBER_PREFIX.fullmatch(rest)
    ):
        return BodyProblem("ends before its JSON does", truncated=True)
    return BodyProblem(f"is not valid JSON: {error.msg} (character {error.pos})")


def _kind(first: str) -> str:
    """What a JSON value starting with ``first`` is, in words."""
    kinds = {"{": "an object", "[": "an array", '"': "a string", "t": "a boolean"}
    kinds.update({"f": "a boolean", "n": "null"})
    return kinds.get(first, "a number" if first in "-0123456789" else f"{first!r}")


def _find_end(text: str, start: int) -> tuple[int, dict[str, str]] | None:
    """Where the value at ``start`` ends, without building it, and the text members of
    its top level; None when ``text`` ends first. For the rare value ``raw_decode``
    cannot build, so plain Python is fast enough."""
    first = text[start]
    if first == '"':
        string = _STRING_REST.match(text, start + 1)
        return (string.end(), {}) if string else None
    if first not in "[{":
        scalar = _SCALAR_END.search(text, start)
        return (scalar.start(), {}) if scalar else None
    fields: dict[str, str] = {}
    depth, at = 0, start
    while True:
        token = _NEXT_TOKEN.search(text, at)
        if token is None:
            return None
        at = token.end()
        char = token.group()
        if char == '"':
            string = _STRING_REST.match(text, at)
            if string is None:
                return None
            key_end = at = string.end()
            if depth == 1 and first == "{":
                colon = _WHITESPACE.match(text, key_end).end()  # type: ignore[union-attr]
                if text[colon : colon + 1] == ":":
                    value_at = _WHITESPACE.match(text, colon + 1).end()  # type: ignore[union-attr]
                    if text[value_at : value_at + 1] == '"':
                        value = _STRING_REST.match(text, value_at + 1)
                        if value is None:
                            return None
                        at = value.end()
                        key = text[token.start() : key_end]
                        fields[_decode_string(key)] = _decode_string(text[value_at:at])
        elif char in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return at, fields
