"""The packet log's display filter: a small language in the spirit of Wireshark's, compiled to one
SQL expression over the capture's ``packets`` table.

One compiler, one evaluator: the capture's writer runs the expression over the history on disk
and over each batch as it is written (``PacketCapture.start_filter``). It uses SQLite's built-in
functions only: a Python callback would hold the GIL for every row of a scan and stall the
window.

Syntax: terms separated by spaces must all match; ``or``, ``and``, ``not`` (also ``||``, ``&&``,
``!``) and parentheses combine them. A term is

- ``field op value`` with op one of ``==`` (or ``=``), ``!=``, ``>``, ``<``, ``>=``, ``<=`` and
  ``~`` (contains); fields: see ``FIELDS``;
- ``unanswered`` (a query without a reply, so far) or ``answered`` (a query or reply of a pair);
- any other word (quote it to include spaces): found in the address, method, type, transaction
  id, node id or the reason a datagram was dropped (ignoring case), or among the datagram's
  bytes: as text (as typed, in lower or in upper case), and as bytes when the word is hex, so an
  info-hash or node id finds every packet carrying it.

Bad input raises ``FilterError`` with a message that names the problem.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from dhtviewer.ui.capture.records import Direction, Kind


class FilterError(ValueError):
    """The filter text does not parse; ``str(err)`` says why, for the inline message."""


@dataclass(frozen=True, slots=True)
class Filter:
    """A compiled filter: ``sql`` is a boolean expression over the ``packets`` table with ``?``
    placeholders for ``params``."""

    sql: str
    params: tuple[object, ...] = ()

    @staticmethod
    def all_of(filters: list[Filter]) -> Filter | None:
        """The conjunction of ``filters``; None (everything) if there are none."""
        if not filters:
            return None
        if len(filters) == 1:
            return filters[0]
        sql = " AND ".join(f"({f.sql})" for f in filters)
        return Filter(sql, tuple(p for f in filters for p in f.params))


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>==|!=|>=|<=|&&|\|\||[=<>~!()])
      | "(?P<dq>[^"]*)"
      | '(?P<sq>[^']*)'
      | (?P<word>[^\s()=!<>~"'&|]+)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_COMPARE = ("==", "=", "!=", ">", "<", ">=", "<=", "~")
_SQL_OP = {"==": "=", "=": "=", "!=": "<>", ">": ">", "<": "<", ">=": ">=", "<=": "<="}
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
_NUMBER = re.compile(r"^(?P<n>[0-9]*\.?[0-9]+)(?P<unit>ms|s)?$")
ADDR_SQL = "(CASE WHEN instr(ip, ':') THEN '[' || ip || ']' ELSE ip END || ':' || port)"
"""The address as the packet log shows it (IPv6 in brackets)."""


def _like(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text`` anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _text_field(column: str, values: tuple[str, ...] | None = None,
                lower: bool = True) -> Callable[[str, str, str], Filter]:
    def build(name: str, op: str, value: str) -> Filter:
        v = value.lower() if lower else value
        if op == "~":
            return Filter(f"{column} LIKE ? ESCAPE '\\'", (_like(v),))
        if op not in ("==", "=", "!="):
            raise FilterError(f"'{name}' is compared with ==, != or ~ (contains), not {op}")
        if values is not None and v not in values:
            raise FilterError(f"'{name}' is one of {', '.join(values)}; got '{value}'")
        return Filter(f"{column} {_SQL_OP[op]} ?", (v,))

    return build


def _number_field(column: str, scale: float = 1.0, integer: bool = False,
                  offset: Callable[[], float] | None = None) -> Callable[[str, str, str], Filter]:
    def build(name: str, op: str, value: str) -> Filter:
        if op == "~":
            raise FilterError(f"'{name}' is a number: compare it with ==, !=, <, >, <= or >=")
        m = _NUMBER.match(value.strip().lower())
        if m is None or (integer and (m["unit"] or "." in m["n"])):
            what = "a whole number" if integer else "a number"
            raise FilterError(f"'{name}' needs {what}, got '{value}'")
        number = float(m["n"])
        if m["unit"] == "s" and scale != 1.0:
            number *= 1000.0  # "rtt > 0.2s": the field is in milliseconds
        x: float = number / scale
        if offset is not None:
            x += offset()
        return Filter(f"{column} {_SQL_OP[op]} ?", (int(x) if integer else x,))

    return build


def _hex_field(column: str, prefix: bool) -> Callable[[str, str, str], Filter]:
    def build(name: str, op: str, value: str) -> Filter:
        v = value.strip().lower()
        if not re.fullmatch(r"[0-9a-f]+", v):
            raise FilterError(f"'{name}' is hexadecimal, got '{value}'")
        if op == "~":
            return Filter(f"lower(hex({column})) LIKE ?", (f"%{v}%",))
        if op not in ("==", "=", "!="):
            raise FilterError(f"'{name}' is compared with ==, != or ~ (contains), not {op}")
        if prefix:  # an id can be given by its first digits, as the tables show it
            sql = f"lower(hex({column})) LIKE ?"
            f = Filter(sql if op != "!=" else f"NOT coalesce({sql}, 0)", (v + "%",))
            return f
        if len(v) % 2:
            raise FilterError(f"'{name}' needs whole bytes (an even number of hex digits)")
        return Filter(f"{column} {_SQL_OP[op]} ?", (bytes.fromhex(v),))

    return build


def _addr_field(name: str, op: str, value: str) -> Filter:
    v = value.strip().lower()
    if op == "~":
        return Filter(f"{ADDR_SQL} LIKE ? ESCAPE '\\'", (_like(v),))
    if op not in ("==", "=", "!="):
        raise FilterError(f"'{name}' is compared with ==, != or ~ (contains), not {op}")
    m = re.fullmatch(r"\[(?P<ip6>[0-9a-f:.]+)\](?::(?P<p6>\d+))?|(?P<ip>[^:\s]+)(?::(?P<p>\d+))?",
                     v)
    if m is None and ":" in v:
        ip, port = v, None  # a bare IPv6 address
    elif m is None:
        ip, port = "", None
    else:
        ip = m["ip6"] or m["ip"]
        port = m["p6"] or m["p"]
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise FilterError(f"'{name}' is an address: ip or ip:port ([ipv6]:port), "
                          f"got '{value}'") from None
    sql = "ip = ?"
    params: list[object] = [ip]
    if port is not None:
        sql += " AND port = ?"
        params.append(int(port))
    return Filter(f"NOT ({sql})" if op == "!=" else sql, tuple(params))


def _data_field(name: str, op: str, value: str) -> Filter:
    if op != "~":
        raise FilterError(f"'{name}' is searched with ~ (contains)")
    needles: list[bytes] = [value.encode("utf-8")]
    if _HEX.match(value):
        needles.append(bytes.fromhex(value))
    return Filter(" OR ".join(["instr(data, ?) > 0"] * len(needles)), tuple(needles))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    build: Callable[[str, str, str], Filter]
    help: str


def fields(time_origin: Callable[[], float]) -> dict[str, FieldSpec]:
    """The filter's fields; ``time_origin`` gives the capture's time zero (``time`` field)."""
    return {
        "no": FieldSpec(_number_field("seq", integer=True), "capture number"),
        "time": FieldSpec(_number_field("at", offset=time_origin), "seconds since the start"),
        "dir": FieldSpec(_text_field("dir", tuple(d.value for d in Direction)), "in or out"),
        "type": FieldSpec(_text_field("type", tuple(k.value for k in Kind)),
                          "query, response, error, malformed, unsolicited"),
        "method": FieldSpec(_text_field("method"), "KRPC method, e.g. get_peers"),
        "addr": FieldSpec(_addr_field, "ip or ip:port"),
        "ip": FieldSpec(_text_field("ip"), "IP address"),
        "port": FieldSpec(_number_field("port", integer=True), "UDP port"),
        "tid": FieldSpec(_hex_field("tid", prefix=False), "transaction id (hex)"),
        "id": FieldSpec(_hex_field("node_id", prefix=True), "sender's node id (hex prefix)"),
        "size": FieldSpec(_number_field("size", integer=True), "datagram bytes"),
        "rtt": FieldSpec(_number_field("rtt", scale=1000.0), "our query to its reply, ms"),
        "data": FieldSpec(_data_field, "raw bytes (text or hex), with ~"),
        "reason": FieldSpec(_text_field("note"), "why a datagram was dropped"),
    }


_KEYWORDS = {
    "unanswered": Filter("type = 'query' AND peer IS NULL"),
    "answered": Filter("peer IS NOT NULL"),
}


def free_text(word: str) -> Filter:
    """A word anywhere in a packet (see the module docstring)."""
    w = word.lower()
    like = _like(w)
    parts = [
        f"{ADDR_SQL} LIKE ? ESCAPE '\\'", "method LIKE ? ESCAPE '\\'",
        "type LIKE ? ESCAPE '\\'", "note LIKE ? ESCAPE '\\'",
    ]
    params: list[object] = [like, like, like, like]
    # the bytes as typed, in lower and in upper case (KRPC's own words are lower case)
    for variant in dict.fromkeys((word, word.lower(), word.upper())):
        parts.append("instr(data, ?) > 0")
        params.append(variant.encode("utf-8"))
    if re.fullmatch(r"[0-9a-fA-F]+", word):
        parts += ["lower(hex(tid)) LIKE ?", "lower(hex(node_id)) LIKE ?"]
        params += [f"%{w}%", f"%{w}%"]
        if len(word) % 2 == 0:
            parts.append("instr(data, ?) > 0")
            params.append(bytes.fromhex(word))
    return Filter(" OR ".join(parts), tuple(params))


class _Parser:
    def __init__(self, text: str, time_origin: Callable[[], float]) -> None:
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(text):
            if m["bad"] is not None:
                raise FilterError(f"unexpected '{m['bad']}'")
            if m["op"] is not None:
                self.tokens.append(("op", m["op"]))
            elif m["word"] is not None:
                self.tokens.append(("word", m["word"]))
            elif m["dq"] is not None or m["sq"] is not None:
                self.tokens.append(("quoted", m["dq"] if m["dq"] is not None else m["sq"]))
        self.pos = 0
        self.fields = fields(time_origin)

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Filter | None:
        if not self.tokens:
            return None
        result = self.or_expr()
        if self.pos < len(self.tokens):
            raise FilterError(f"unexpected '{self.tokens[self.pos][1]}'")
        return result

    def _is(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[0] != "quoted" and token[1].lower() in values

    def or_expr(self) -> Filter:
        parts = [self.and_expr()]
        while self._is("or", "||"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return Filter(" OR ".join(f"({p.sql})" for p in parts),
                      tuple(x for p in parts for x in p.params))

    def and_expr(self) -> Filter:
        parts = [self.unary()]
        while self.peek() is not None and not self._is("or", "||", ")"):
            if self._is("and", "&&"):
                self.take()
            parts.append(self.unary())
        result = Filter.all_of(parts)
        assert result is not None
        return result

    def unary(self) -> Filter:
        if self._is("not", "!"):
            self.take()
            inner = self.unary()
            return Filter(f"NOT coalesce(({inner.sql}), 0)", inner.params)
        return self.primary()

    def primary(self) -> Filter:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends where a term should follow")
        kind, value = token
        if kind == "op" and value == "(":
            self.take()
            if self.peek() is None or self._is(")"):
                raise FilterError("empty parentheses")
            inner = self.or_expr()
            if not self._is(")"):
                raise FilterError("a '(' is not closed")
            self.take()
            return inner
        if kind == "op":
            raise FilterError(f"unexpected '{value}'")
        self.take()
        nxt = self.peek()
        if kind == "word" and nxt is not None and nxt[0] == "op" and nxt[1] in _COMPARE:
            return self.comparison(value.lower())
        if kind == "word" and value.lower() in _KEYWORDS:
            return _KEYWORDS[value.lower()]
        return free_text(value)

    def comparison(self, name: str) -> Filter:
        op = self.take()[1]
        spec = self.fields.get(name)
        if spec is None:
            raise FilterError(f"unknown field '{name}'; fields: {', '.join(self.fields)}")
        token = self.peek()
        if token is None or token[0] == "op":
            raise FilterError(f"'{name} {op}' needs a value")
        self.take()
        return spec.build(name, op, token[1])


def compile_filter(text: str, time_origin: Callable[[], float] = lambda: 0.0) -> Filter | None:
    """The filter for ``text``; None when it is empty (every packet). Raises FilterError."""
    return _Parser(text, time_origin).parse()


def help_text() -> str:
    """A tooltip: the syntax and every field."""
    names = fields(lambda: 0.0)
    lines = [
        "Words must all match; combine with or, and, not, ( ).",
        "A word is looked for in the address, method, type, transaction id, node id, the",
        "reason a datagram was dropped, and the datagram's bytes (text, or hex bytes).",
        "field op value, op: == != > < >= <= ~ (contains):",
    ]
    lines += [f"  {name}: {spec.help}" for name, spec in names.items()]
    lines += ["unanswered: queries without a reply (so far); answered: paired packets",
              "e.g.  method == get_peers and rtt > 200     addr ~ 127.0.93     not dir == out"]
    return "\n".join(lines)
