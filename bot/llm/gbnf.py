"""JSON schema -> GBNF, llama.cpp's grammar language, for the prebuilt runtime (bot.llm.cffi_runtime).

llama-cpp-python brings its own converter; the raw C API takes grammar text. This one covers the
schemas the application sends (the grading reply, the follow-up, the drafted key points) and the
common rest of JSON schema: objects with their properties in schema order (the order the model
must think in), required and optional properties, arrays with minItems/maxItems, strings with
minLength/maxLength, enum and const, integers, numbers, booleans, null, anyOf/oneOf and local
$refs. Anything else is refused with ValueError rather than silently loosened.

Output rules, chosen to match what the compiled binding's grammars let the model write: a single
optional space after each structural token, no raw control characters inside strings (JSON
forbids them), bounded repetitions written as `{m,n}`.
"""
from __future__ import annotations

import json
import re

_SPACE = 'space ::= " "?'
_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_PRIMITIVES = {
    "boolean": 'boolean ::= ("true" | "false") space',
    "null": 'null ::= "null" space',
    "integer": 'integer ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) space',
    "number": 'number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,16})? space',
    "string": 'string ::= "\\"" char* "\\"" space',
}
_ANY = ('value ::= object | array | string | number | boolean | null\n'
        'object ::= "{" space (string ":" space value ("," space string ":" space value)*)? "}" space\n'
        'array ::= "[" space (value ("," space value)*)? "]" space')


def _literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value) -> str:
    """The GBNF for one JSON value written exactly as json.dumps writes it (no spaces)."""
    return _literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _repeat(item: str, lo: int, hi: int | None, sep: str | None = None) -> str:
    """`item` lo..hi times (hi None: unbounded), separated by `sep` when given."""
    if hi is not None and hi < lo:
        raise ValueError(f"maximum {hi} below minimum {lo}")
    if hi == 0:
        return ""
    if sep is None:
        if hi is None:
            return f"{item}{{{lo},}}" if lo else f"{item}*"
        if lo == hi == 1:
            return item
        return f"{item}{{{lo},{hi}}}" if lo != hi else f"{item}{{{lo}}}"
    rest = _repeat(f"({sep} {item})", max(lo - 1, 0), None if hi is None else hi - 1)
    first = _seq(item, rest)
    return f"({first})" if lo else f"({first})?"


def _seq(*parts: str) -> str:
    return " ".join(p for p in parts if p)


class _Converter:
    def __init__(self, schema: dict):
        self.root_schema = schema
        self.rules: dict[str, str] = {"space": _SPACE.split(" ::= ", 1)[1]}
        self.extra: list[str] = []

    def _add(self, name: str, body: str) -> str:
        name = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-") or "r"
        base, n = name, 1
        while name in self.rules and self.rules[name] != body:
            n += 1
            name = f"{base}{n}"
        self.rules[name] = body
        return name

    def _need(self, key: str) -> str:
        if key == "any":
            for line in _ANY.splitlines():
                rule, body = line.split(" ::= ", 1)
                self.rules.setdefault(rule, body)
            self._need("string")
            for p in ("number", "boolean", "null"):
                self._need(p)
            return "value"
        if key == "string" or key == "char":
            self.rules.setdefault("char", _CHAR.split(" ::= ", 1)[1])
            if key == "char":
                return "char"
        rule, body = _PRIMITIVES[key].split(" ::= ", 1)
        self.rules.setdefault(rule, body)
        return rule

    def _resolve(self, schema: dict) -> dict:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref!r}")
        node = self.root_schema
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return self._resolve(node)

    def visit(self, schema, name: str) -> str:
        """The rule name (or an inline expression) matching `schema`, followed by optional space."""
        if schema is True or schema == {}:
            return self._need("any")
        if not isinstance(schema, dict):
            raise ValueError(f"unsupported schema {schema!r}")
        schema = self._resolve(schema)
        if "const" in schema:
            return self._add(name, f"{_json_literal(schema['const'])} space")
        if "enum" in schema:
            alts = " | ".join(_json_literal(v) for v in schema["enum"])
            return self._add(name, f"({alts}) space")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                alts = [self.visit(s, f"{name}-{i}") for i, s in enumerate(schema[key])]
                return self._add(name, " | ".join(alts))
        kind = schema.get("type")
        if isinstance(kind, list):
            alts = [self.visit({**schema, "type": t}, f"{name}-{t}") for t in kind]
            return self._add(name, " | ".join(alts))
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, name)
        if kind == "array":
            return self._array(schema, name)
        if kind == "string":
            return self._string(schema, name)
        if kind in ("integer", "number", "boolean", "null"):
            return self._need(kind)
        if kind is None:
            return self._need("any")
        raise ValueError(f"unsupported schema type {kind!r}")

    def _string(self, schema: dict, name: str) -> str:
        if "pattern" in schema or "format" in schema:
            raise ValueError("string patterns and formats are not supported")
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        if lo == 0 and hi is None:
            return self._need("string")
        char = self._need("char")
        return self._add(name, f'"\\"" {_repeat(char, lo, None if hi is None else int(hi))} "\\"" space')

    def _array(self, schema: dict, name: str) -> str:
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        if hi == 0:
            return self._add(name, '"[" space "]" space')
        item = self.visit(schema.get("items", {}), f"{name}-item")
        body = _repeat(item, lo, None if hi is None else int(hi), sep='"," space')
        return self._add(name, _seq('"[" space', body, '"]" space'))

    def _object(self, schema: dict, name: str) -> str:
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        if extra not in (False, None) and props:
            # Free extra keys after the listed ones would let the model wander; every schema the
            # application sends closes its objects.
            raise ValueError("objects with properties must set additionalProperties: false")
        if not props:
            return self._need("any") if extra is not False else self._add(name, '"{" space "}" space')
        required = set(schema.get("required", []))
        kvs = []
        for key, sub in props.items():
            value = self.visit(sub, f"{name}-{key}")
            kv = self._add(f"{name}-{key}-kv", f'{_literal(json.dumps(key, ensure_ascii=False))} space ":" space {value}')
            kvs.append((kv, key in required))
        sep = '"," space'
        # Required keys in schema order, then the optional ones (each may be left out).
        req = [kv for kv, r in kvs if r]
        opt = [kv for kv, r in kvs if not r]
        if req:
            body = " ".join([f" {sep} ".join(req)] + [f"({sep} {kv})?" for kv in opt])
        elif opt:
            # No required key: any non-empty ordered subset of the optional ones, or none.
            alts = []
            for i, kv in enumerate(opt):
                alts.append(" ".join([kv] + [f"({sep} {later})?" for later in opt[i + 1:]]))
            body = "(" + " | ".join(alts) + ")?"
        else:
            body = ""
        return self._add(name, _seq('"{" space', body, '"}" space'))

    def grammar(self) -> str:
        root = self.visit(self.root_schema, "root")
        if root != "root":
            self.rules["root"] = root
        lines = [f"root ::= {self.rules.pop('root')}"]
        lines += [f"{k} ::= {v}" for k, v in sorted(self.rules.items())]
        return "\n".join(lines) + "\n"


def schema_to_gbnf(schema: dict | str) -> str:
    """The GBNF grammar (root rule `root`) of the JSON values `schema` allows."""
    if isinstance(schema, str):
        schema = json.loads(schema)
    return _Converter(schema).grammar()
