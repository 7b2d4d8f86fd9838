#!/usr/bin/env python3
"""Checks the structure rules of CONTRIBUTING.md over src/ and crates/*/src/:

- no function longer than 150 lines outside tests (a `#[cfg(test)]` module is skipped);
- no import cycle between the top-level modules of a crate (`use crate::a` inside `b` is an
  edge b -> a; a module's own submodules count as the module).

Prints each breach and exits 1 when there is one; `--list N` prints every function over N lines.
A small reader of Rust text, not a parser: it tracks strings, chars, comments and braces, which
is all these two rules need.
"""
import re
import sys
from pathlib import Path

LIMIT = 150
ROOT = Path(__file__).resolve().parent.parent
FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"C\"\s+)?fn\s+(\w+)")


def code_only(text):
    """The text with comments, strings and char literals blanked (line breaks kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|\\x..|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, length in lines) of every fn with a body outside test modules."""
    lines = code_only(path.read_text()).split("\n")
    found = []
    skip_to = -1
    for no, line in enumerate(lines):
        if no <= skip_to:
            continue
        if line.strip().startswith("#[cfg(test)]"):
            end = block_end(lines, no + 1)
            skip_to = no + 1 if end is None else end
            continue
        m = FN.match(line)
        if not m:
            continue
        end = block_end(lines, no)
        if end is not None:
            found.append((m.group(1), no + 1, end - no + 1))
    return found


def block_end(lines, start):
    """The line where the first `{` block opening at or after `start` closes (None if a `;`
    comes first: a declaration without a body)."""
    depth = 0
    # Brackets and parentheses before the body: a `;` inside them (`[u8; 4]` in a signature)
    # does not end a declaration.
    nesting = 0
    opened = False
    for no in range(start, len(lines)):
        for c in lines[no]:
            if c == "{":
                depth += 1
                opened = True
            elif c == "}":
                depth -= 1
                if opened and depth == 0:
                    return no
            elif not opened and c in "[(":
                nesting += 1
            elif not opened and c in "])":
                nesting -= 1
            elif c == ";" and not opened and depth == 0 and nesting == 0:
                return None
    return None


def module_of(src, path):
    rel = path.relative_to(src).with_suffix("")
    parts = rel.parts
    if parts[0] in ("lib", "main"):
        return None
    return parts[0]


def cycles(src):
    """Import cycles between the top-level modules under `src`."""
    edges = {}
    for path in sorted(src.rglob("*.rs")):
        me = module_of(src, path)
        if me is None:
            continue
        text = code_only(path.read_text())
        named = [m.group(1) for m in re.finditer(r"\bcrate::(\w+)", text)]
        for group in re.finditer(r"\bcrate::\{([^;]*)\}", text):
            named += re.findall(r"(?:^|[{,])\s*(\w+)", group.group(1))
        for other in named:
            if other != me and ((src / f"{other}.rs").exists() or (src / other).is_dir()):
                edges.setdefault(me, set()).add(other)
    found = []
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index, low, stack, on, counter = {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found, edges


def main():
    sys.setrecursionlimit(10000)
    listing = None
    if len(sys.argv) > 2 and sys.argv[1] == "--list":
        listing = int(sys.argv[2])
    srcs = [ROOT / "src"] + sorted(p / "src" for p in (ROOT / "crates").glob("*") if (p / "src").is_dir())
    breaches = 0
    for src in srcs:
        for path in sorted(src.rglob("*.rs")):
            for name, line, length in functions(path):
                rel = path.relative_to(ROOT)
                if listing is not None:
                    if length > listing:
                        print(f"{length:5} {rel}:{line} {name}")
                elif length > LIMIT:
                    print(f"{rel}:{line}: fn {name} is {length} lines (the limit is {LIMIT})")
                    breaches += 1
        if listing is None:
            found, _ = cycles(src)
            for comp in found:
                print(f"{src.relative_to(ROOT)}: import cycle among modules {', '.join(comp)}")
                breaches += 1
    if listing is None:
        print(f"structure: {breaches} breach(es)" if breaches else "structure: no function over "
              f"{LIMIT} lines, no import cycle between modules")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
