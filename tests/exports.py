#!/usr/bin/env python3
"""A shared library exports exactly the API its public headers declare.

    exports.py NM LIBRARY HEADER|DIR... [--exclude HEADER]... [--not-built HEADER]...

Fails, listing the names, when `nm -D --defined-only LIBRARY` shows a name
that no HEADER mentions (an internal function that leaked: the library is
built with -fvisibility=hidden and exports what its headers declare between
LG_API_BEGIN and LG_API_END, include/graph/api.h), or when a function a
HEADER declares is not exported (a public header without LG_API_BEGIN).
A DIR stands for its *.h files. --exclude leaves a header out (it belongs
to another library); a --not-built header counts for the first check only:
its functions belong to a part left out of this build (keras.h without
libhdf5).
"""
import os
import re
import subprocess
import sys

NAME = re.compile(r"\blg_\w+")


def strip(text):
    """The header without comments, preprocessor lines and extern "C"."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'extern\s*"C"\s*\{', " ", text)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)


def declared_functions(text):
    """Names of the functions declared (not defined inline) at file level."""
    found, stmt, depth, body = set(), "", 0, False
    for c in strip(text):
        if c == "{":
            if depth == 0 and stmt.rstrip().endswith(")"):
                body = True  # a static inline definition: not a symbol
            depth += 1
        elif c == "}":
            depth = max(depth - 1, 0)  # the } of extern "C" is on a line of its own
            if depth == 0 and body:
                stmt, body = "", False
        elif depth == 0 and c == ";":
            words = stmt.split()
            if words and words[0] != "typedef" and "static" not in words:
                # "lg_x lg_f(" declares lg_f; "lg_status (*fn)(" is no function
                found.update(re.findall(r"\b(lg_\w+)\s*\((?!\s*\*)", stmt))
            stmt = ""
        elif depth == 0:
            stmt += c
    return found


def main(argv):
    nm, lib, args = argv[1], argv[2], argv[3:]
    paths, excluded, not_built = [], set(), set()
    while args:
        a = args.pop(0)
        if a in ("--exclude", "--not-built"):
            (excluded if a == "--exclude" else not_built).add(os.path.realpath(args.pop(0)))
        elif os.path.isdir(a):
            paths += sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith(".h"))
        else:
            paths.append(a)
    headers = [h for h in paths if os.path.realpath(h) not in excluded]
    built = [h for h in headers if os.path.realpath(h) not in not_built]
    texts = {h: open(h, encoding="utf-8").read() for h in headers}
    mentioned = set()
    for t in texts.values():
        mentioned |= set(NAME.findall(t))
    functions = set()
    for h in built:
        functions |= declared_functions(texts[h])
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
    extra = sorted(exported - mentioned)
    missing = sorted(functions - exported)
    print(f"{lib}: {len(exported)} exported names, {len(functions)} functions declared in {len(built)} headers")
    if extra:
        print(f"exported but declared in no public header ({len(extra)}):\n  " + "\n  ".join(extra))
    if missing:
        print(f"declared in a public header but not exported ({len(missing)}; LG_API_BEGIN missing?):\n  "
              + "\n  ".join(missing))
    if not functions:
        print("no function declarations found in the headers")
    return 1 if extra or missing or not functions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
