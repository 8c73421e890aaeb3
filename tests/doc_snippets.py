#!/usr/bin/env python3
"""The documentation stays true to the code.

    doc_snippets.py SOURCE_ROOT BUILD_ROOT CC [CC_ARG...]

Reads the READMEs (README.md, bench/README.md, tests/cuda_emu/README.md,
data/README.md), the comments of the public headers (include/graph/*.h,
tools/viz/viz.h, tools/plot/plot.h) and of the examples' shared headers
(examples/common, cells and text), and the examples' header comments, and
fails, listing each stale place as FILE:LINE, when

  code    a ```c block of a README, a call shown inline in one
          (`lg_f(a, b)`), or an indented C block of a header comment,
          does not compile: each becomes the body of a function
          after PRELUDE (every public header, and the variables the
          examples assume: g, x, tr, ...), compiled with CC -fsyntax-only
          -std=c11, with implicit declarations and incompatible pointers as
          errors; #line makes the compiler name the document's own lines.
          Blocks that are not C (formulas, file layouts, prose) are told
          apart by an lg_ call or declaration and their line endings
          (is_c_block);
  names   an lg_*/LG_* name the documents mention is nowhere in the code
          (comments stripped), e.g. a function renamed away, or a value
          shown for an environment variable (LG_GEMM=onednn) is no string
          of the code;
  fields  an `lg_type.field` mention names no field of that struct;
  flags   a command line shown for a program of examples/, bench/, tools/,
          scripts/ or fuzz/ passes a --flag the program does not know: an
          example's flags are what its --help lists (BUILD_ROOT/examples),
          another program's are the "--flag" strings of its source; a
          --flag shown alone must be some program's (or meson test's,
          mpirun's, pkg-config's);
  tests   a `meson test` line names a test or suite no meson.build has;
  paths   a path into the repository (src/..., tests/test_x.c, ...) names
          nothing that exists, a file named alone (fake_cudnn.c) is
          nowhere in it, or build/examples/X, build/bench/X or
          build/tools/X is no program.

Exit status 0 when everything holds, 1 otherwise, 77 (skip) when CC cannot
be run. About a second: one syntax-only compile per document, side by
side, and one --help per example.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

READMES = ["README.md", "bench/README.md", "tests/cuda_emu/README.md", "data/README.md"]
HEADER_GLOBS = ["include/graph/*.h", "tools/viz/viz.h", "tools/plot/plot.h", "examples/common/cli.h",
                "examples/cells/*.h", "examples/text/*.h"]

# What every snippet may use without declaring it: the values, handles and
# counts the examples' prose has just introduced.
PRELUDE_VARS = {
    "argc": "int argc;",
    "argv": "char **argv;",
    "g": "lg_graph *g;",
    "x": "lg_value x;",
    "y": "lg_value y;",
    "h": "lg_value h;",
    "h0": "lg_value h0;",
    "c0": "lg_value c0;",
    "w": "lg_value w;",
    "b": "lg_value b;",
    "kernel": "lg_value kernel;",
    "recurrent": "lg_value recurrent;",
    "recurrent_kernel": "lg_value recurrent_kernel;",
    "pred": "lg_value pred;",
    "loss": "lg_value loss;",
    "logits": "lg_value logits;",
    "eval_loss": "lg_value eval_loss;",
    "eval_logits": "lg_value eval_logits;",
    "h_train": "lg_value h_train;",
    "h_eval": "lg_value h_eval;",
    "enc_seq": "lg_value enc_seq;",
    "enc_states": "lg_value enc_states[2];",
    "params": "lg_value params[2];",
    "states": "lg_value states[2];",
    "x1": "lg_value x1;",
    "x2": "lg_value x2;",
    "s1_0": "lg_value s1_0;",
    "s2_0": "lg_value s2_0;",
    "ys": "lg_value ys;",
    "hs": "lg_value hs;",
    "h_last": "lg_value h_last;",
    "seed": "uint64_t seed;",
    "x_batch": "lg_tensor *x_batch;",
    "y_batch": "lg_tensor *y_batch;",
    "x_tensor": "lg_tensor *x_tensor;",
    "y_tensor": "lg_tensor *y_tensor;",
    "data": "lg_tensor *data;",
    "temperature": "lg_tensor *temperature;",
    "series": "lg_tensor *series;",
    "n_train": "int64_t n_train;",
    "feeds": "lg_feed feeds[2];",
    "n_feeds": "int n_feeds;",
    "n": "int n;",
    "steps": "int steps;",
    "n_pieces": "int n_pieces;",
    "out": "lg_tensor *out[3];",
    "opt": "lg_optimizer *opt;",
    "tr": "lg_trainer *tr;",
    "bn": "lg_batch_norm_result bn;",
    "train": "lg_dataset *train;",
    "validation": "lg_dataset *validation;",
    "test": "lg_dataset *test;",
    "cell": "lg_cell *cell;",
    "d": "lg_dist *d;",
    "val": "lg_dataset *val;",
    "F": "enum { F = 28 };",
    "O": "enum { O = 10 };",
    "H": "enum { H = 64 };",
}
# Where a document's snippets give a name another type than the prelude's.
PRELUDE_OVERRIDES = {
    "include/graph/dataset.h": {"x": "lg_tensor *x;", "y": "lg_tensor *y;"},
    "include/graph/norm.h": {"o": "lg_batch_norm_opts o;", "train": "lg_batch_norm_result train;",
                             "eval": "lg_batch_norm_result eval;"},
}
# api.h's template of a public header's declaration names a made-up type.
PRELUDE_TYPES = "typedef struct lg_thing lg_thing;\n"
PRELUDE_HEADERS = ["graph/loopgrad.h", "graph/keras.h", "graph/distributed_mpi.h",
                   "graph/distributed_nccl.h", "viz/viz.h", "plot/plot.h", "common/cli.h",
                   "cells/hand_lstm.h", "cells/nested.h", "cells/peephole.h", "text/classify.h", "text/licences.h",
                   "stdio.h", "stddef.h"]
# distributed_mpi.h and distributed_nccl.h need MPI_Comm; the snippets check
# loopgrad's declarations, not MPI's, so a stub stands in for <mpi.h>.
MPI_STUB = "typedef struct lg_doc_mpi_comm *MPI_Comm;\n#define MPI_COMM_WORLD ((MPI_Comm)0)\n"
CC_FLAGS = ["-fsyntax-only", "-std=c11", "-D_POSIX_C_SOURCE=200809L",
            "-Werror=implicit-function-declaration", "-Werror=implicit-int",
            "-Werror=incompatible-pointer-types", "-Werror=int-conversion"]

# Names a document may mention that the code does not have.
NAMES_NOT_IN_CODE = {
    "lg_thing", "lg_thing_do",  # api.h's template of a declaration
}
# Paths a document may name that a checkout does not hold: what a script
# makes. (A program is named by its source without the extension, and
# passes: bench/cudnn_lstm for bench/cudnn_lstm.c.)
MADE_PATHS = {"bench/.venv"}  # bench/keras_venv.sh
# Files named without a directory that are not the repository's.
OTHER_FILES = {"nccl.h", "lstm_stateful.py"}  # NCCL's header; keras-team's example
# Flags of tools that are not the repository's (meson test's, mpirun's,
# pkg-config's), and viz.h's "--flag FILE", any flag.
OTHER_TOOLS_FLAGS = {"print-errorlogs", "suite", "no-suite", "setup", "timeout-multiplier", "reconfigure",
                     "allow-run-as-root", "oversubscribe", "mca", "timeout", "cflags", "libs", "flag"}
TOP_DIRS = "include|src|tests|examples|bench|tools|scripts|fuzz|docs|data"
CODE_EXTS = (".c", ".h", ".cu", ".cpp")
SCRIPT_EXTS = (".py", ".sh", ".pl")


def read(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


def strip_c_comments(text):
    """C source without its comments; strings kept (env names live there)."""
    out, i = [], 0
    pattern = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
    for m in pattern.finditer(text):
        out.append(text[i:m.start()])
        tok = m.group(0)
        out.append(tok if tok[0] in "\"'" else " ")
        i = m.end()
    out.append(text[i:])
    return "".join(out)


def c_comments(text):
    """(first line number, text) of each /* */ comment, ' * ' prefixes kept."""
    for m in re.finditer(r"/\*.*?\*/", text, re.S):
        yield text.count("\n", 0, m.start()) + 1, m.group(0)


def first_comment(text):
    """The comment a file opens with (an example's usage text), if any."""
    m = re.match(r"\s*(/\*.*?\*/)", text, re.S)
    return (text.count("\n", 0, m.start(1)) + 1, m.group(1)) if m else None


# ---- code blocks ---------------------------------------------------------

def markdown_c_blocks(text):
    """(line of the block's first code line, lines) of each ```c block."""
    lines, i = text.split("\n"), 0
    while i < len(lines):
        if lines[i].strip() == "```c":
            start, i = i + 2, i + 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            yield start, body
        i += 1


def comment_blocks(comment_line, comment):
    """(line, lines) of each run of lines indented 4+ beyond ' * '."""
    block, start = [], 0
    for k, line in enumerate(comment.split("\n")):
        m = re.match(r"\s*\*( {4,}\S.*)$", line)
        if m:
            if not block:
                start = comment_line + k
            block.append(m.group(1))
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def drop_line_comment(line):
    return re.sub(r'//.*$', "", re.sub(r'"(?:\\.|[^"\\])*"', '""', line)).rstrip()


def is_c_block(lines):
    """Statements, not a formula, a file layout or indented prose: a line
    calls or declares with an lg_ (or the examples' cli_) name, a line ends
    in ';', and at least half end as C lines do."""
    code = [drop_line_comment(s).strip() for s in lines]
    code = [s for s in code if s and s != "..."]
    if not any(re.search(r"\b(?:lg|cli)_\w+\s*(?:\(|\*?\s*\w+\s*[=;\[,])", s) for s in code):
        return False
    if not any(s.endswith(";") for s in code):
        return False
    c_like = sum(1 for s in code if s.endswith((";", "{", "}", ",", "(")))
    return 2 * c_like >= len(code)


def elide(line):
    """'...' standing for code left out becomes a comment, and so does a
    line that opens with it ('...feed bx and by...')."""
    if line.strip().startswith("..."):
        return "/* %s */" % line.replace("*/", "* /")
    return re.sub(r"(?<![\w.])\.\.\.(?![\w.])", "/* ... */", line)


def snippet_source(doc, blocks):
    """A translation unit of one document's snippets, each in a function."""
    names = dict(PRELUDE_VARS)
    names.update(PRELUDE_OVERRIDES.get(doc, {}))
    decls = " ".join(names.values())
    parts = [prelude()]
    for j, (line, body) in enumerate(blocks):
        # the snippet in an inner block, so that it may declare the
        # prelude's names again
        parts.append("int snippet_%d(void) { %s {" % (j, decls))
        parts.append('#line %d "%s"' % (line, doc))
        parts.extend(elide(s) for s in body)
        parts.append("} return 0; }")
    return "\n".join(parts) + "\n"


def compile_all(root, cc, units):
    """Compile the sources (one per document, so that an error in one does
    not hide another's) side by side; the compilers' error lines."""
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "mpi.h"), "w") as f:
            f.write(MPI_STUB)
        includes = ["-I" + tmp] + ["-I" + os.path.join(root, d) for d in ("include", "tools", "examples")]
        running = []
        for k, source in enumerate(units):
            src = os.path.join(tmp, "doc_%d.c" % k)
            with open(src, "w") as f:
                f.write(source)
            running.append(subprocess.Popen(cc + CC_FLAGS + includes + [src], cwd=root, text=True,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            if len(running) >= (os.cpu_count() or 1):
                errors += compiler_errors(running.pop(0))
        for p in running:
            errors += compiler_errors(p)
    return errors


def compiler_errors(p):
    err = p.communicate()[1]
    lines = [l for l in err.splitlines() if re.search(r"\berror\b", l)]
    if p.returncode != 0 and not lines:
        lines = err.splitlines() or ["compiler failed with status %d" % p.returncode]
    return lines


def prelude():
    inc = "".join("#include <%s>\n" % h for h in PRELUDE_HEADERS)
    return inc + PRELUDE_TYPES + "#pragma GCC diagnostic ignored \"-Wunused\"\n"


# ---- names and fields ----------------------------------------------------

def tree_files(root):
    """(directory, file name) of every file of the checkout, build trees and
    dot directories left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "build"))]
        for f in filenames:
            yield dirpath, f


def code_names(root):
    """Every lg_/LG_ name in the tree's code (comments stripped), and every
    C string literal's text (an environment variable's values live there)."""
    names, strings = set(), set()
    for dirpath, f in tree_files(root):
        path = os.path.join(dirpath, f)
        if f.endswith(CODE_EXTS):
            text = strip_c_comments(open(path, encoding="utf-8", errors="replace").read())
            strings.update(re.findall(r'"((?:\\.|[^"\\\n])*)"', text))
        elif f.endswith(SCRIPT_EXTS) or f in ("meson.build", "run", "setup", "gpu-check", "gpu-deps"):
            text = re.sub(r"(^|\s)#[^\n]*", " ", open(path, encoding="utf-8", errors="replace").read())
        else:
            continue
        names.update(re.findall(r"\b(?:lg|LG)_\w+", text))
    return names, strings


def header_code(root):
    """The documented headers' text, comments stripped."""
    return "\n".join(strip_c_comments(read(root, os.path.relpath(path, root)))
                     for pattern in HEADER_GLOBS for path in glob.glob(os.path.join(root, pattern)))


def public_names(root):
    """The lg_ names the headers declare."""
    return set(re.findall(r"\blg_\w+", header_code(root)))


def struct_types(root):
    """The struct types the headers define (typedef struct ... { } lg_x;)."""
    return set(re.findall(r"\}\s*(lg_\w+)\s*;", header_code(root)))


# ---- command lines -------------------------------------------------------

def programs(root):
    """name -> (kind, source): the repository's runnable programs."""
    progs = {}
    for path in glob.glob(os.path.join(root, "examples", "*.c")):
        progs[os.path.basename(path)[:-2]] = ("example", path)
    for path in glob.glob(os.path.join(root, "bench", "*")):
        name, ext = os.path.splitext(os.path.basename(path))
        if ext in (".c", ".sh", ".py"):
            progs.setdefault(name if ext == ".c" else name + ext, ("source", path))
    progs["lg-plot"] = ("source", os.path.join(root, "tools/plot/lg_plot.c"))
    progs["lg-render"] = ("source", os.path.join(root, "tools/viz/lg_render.c"))
    for path in glob.glob(os.path.join(root, "scripts", "*")):
        progs[os.path.basename(path)] = ("source", path)
    progs["fuzz/run"] = ("source", os.path.join(root, "fuzz/run"))
    return progs


def example_flags(build, name):
    """An example's flags: what its --help lists; None when it cannot say."""
    exe = os.path.join(build, "examples", name)
    if not os.access(exe, os.X_OK):
        return None
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None
    return set(re.findall(r"(?<![\w-])--([a-z][\w-]*)", r.stdout)) | {"help"}


def source_flags(path):
    """Another program's flags: the --flag strings of its source."""
    return set(re.findall(r"--([a-z][\w-]*)", open(path, encoding="utf-8", errors="replace").read()))


def code_spans(text):
    """(line, text) of every piece a reader would type: `inline` spans,
    indented or fenced blocks (C blocks excluded)."""
    lines, fence = text.split("\n"), None
    for k, line in enumerate(lines, 1):
        if line.strip().startswith("```"):
            fence = None if fence is not None else line.strip()[3:]
            continue
        if fence is not None:
            if fence != "c":
                yield k, line
            continue
        if line.startswith("    ") and line.strip():
            yield k, line
            continue
        for m in re.finditer(r"`([^`]+)`", line):
            yield k, m.group(1)


def command_flags(span, progs):
    """(program, [flags]) for each program invoked in a span of text."""
    names = "|".join(re.escape(p) for p in sorted(progs, key=len, reverse=True))
    pattern = re.compile(r"(?<![\w/.-])(?:build/)?(?:(?:examples|bench|tools|scripts)/)?(%s)(?![\w.-])" % names)
    for m in pattern.finditer(span):
        rest = re.split(r"[|;`#]|&&|\)", span[m.end():])[0]
        nxt = pattern.search(rest)
        if nxt:
            rest = rest[:nxt.start()]
        yield m.group(1), re.findall(r"(?<!\S)--([a-z][\w-]*)", rest)


# ---- the checks ----------------------------------------------------------

def documents(root):
    """(path, line, text) of every piece of documentation checked."""
    for rel in READMES:
        yield rel, 1, read(root, rel)
    for pattern in HEADER_GLOBS:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            rel = os.path.relpath(path, root)
            for line, comment in c_comments(read(root, rel)):
                yield rel, line, comment
    for path in sorted(glob.glob(os.path.join(root, "examples", "*.c"))):
        rel = os.path.relpath(path, root)
        found = first_comment(read(root, rel))
        if found:
            yield rel, found[0], found[1]


def line_of(text, pos, first):
    return first + text.count("\n", 0, pos)


def check_code(root, cc):
    docs, public = {}, public_names(root)
    for rel in READMES:
        text = read(root, rel)
        for line, body in markdown_c_blocks(text):
            docs.setdefault(rel, []).append((line, body))
        # a call of the API shown inline, `lg_dist_local_new(2, &d)`, with
        # its arguments
        for line, span in code_spans(text):
            m = re.fullmatch(r"(lg_\w+)\((?!\)).*\)", span)
            if m and m.group(1) in public and "..." not in span:
                docs.setdefault(rel, []).append((line, [span + ";"]))
    for pattern in HEADER_GLOBS:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            rel = os.path.relpath(path, root)
            for cline, comment in c_comments(read(root, rel)):
                for line, body in comment_blocks(cline, comment):
                    if is_c_block(body):
                        docs.setdefault(rel, []).append((line, body))
    units = [snippet_source(doc, blocks) for doc, blocks in sorted(docs.items())]
    return sum(len(b) for b in docs.values()), compile_all(root, cc, units)


def check_names(root, known, strings):
    stale = []
    for rel, first, text in documents(root):
        # an environment variable's values, LG_GEMM=openblas|onednn
        for m in re.finditer(r"\b(LG_[A-Z0-9_]+)=([\w,|]+)", text):
            for value in re.split(r"[,|]", m.group(2)):
                if value and not value.isdigit() and value not in strings:
                    stale.append("%s:%d: %s takes no value %s" % (rel, line_of(text, m.start(), first),
                                                                m.group(1), value))
        for m in re.finditer(r"\b(?:lg|LG)_\w+", text):
            name = m.group(0)
            if name in known or name in NAMES_NOT_IN_CODE:
                continue
            if text[m.end():m.end() + 1] == "*" or name.endswith("_"):
                if any(k.startswith(name) for k in known):
                    continue  # a family: lg_cpu_*, LG_ERR_
            stale.append("%s:%d: %s is not in the code" % (rel, line_of(text, m.start(), first), name))
    return stale


def check_fields(root, cc, types):
    checks = []
    for rel, first, text in documents(root):
        for m in re.finditer(r"\b(lg_\w+)\.([a-z_]\w*)", text):
            if m.group(1) in types:
                checks.append((rel, line_of(text, m.start(), first), m.group(1), m.group(2)))
    body = []
    for k, (rel, line, typ, field) in enumerate(checks):
        body.append('#line %d "%s"' % (line, rel))
        body.append("enum { field_%d = sizeof(((%s *)0)->%s) };" % (k, typ, field))
    return len(checks), compile_all(root, cc, [prelude() + "\n".join(body) + "\n"])


def check_flags(root, build):
    progs = programs(root)
    known, stale, count = {}, [], 0

    def flags_of(name):
        if name not in known:
            kind, source = progs[name]
            if kind == "example":
                known[name] = example_flags(build, name)
                if known[name] is None:
                    stale.append("%s/examples/%s --help failed: its flags cannot be checked" % (build, name))
                    known[name] = set()
            else:
                known[name] = source_flags(source)
        return known[name]

    for rel in READMES:
        for line, span in code_spans(read(root, rel)):
            for name, flags in command_flags(span, progs):
                for flag in flags:
                    count += 1
                    if flag not in flags_of(name):
                        stale.append("%s:%d: %s has no --%s" % (rel, line, name, flag))
    # A flag shown alone (`--data`, "(was `--text`)") must be some program's.
    every = set(OTHER_TOOLS_FLAGS)
    for name in progs:
        every |= flags_of(name)
    for rel, first, text in documents(root):
        for m in re.finditer(r"(?<![\w-])--([a-z][\w-]*)", text):
            count += 1
            if m.group(1) not in every:
                stale.append("%s:%d: no program has --%s" % (rel, line_of(text, m.start(), first), m.group(1)))
    for path in sorted(glob.glob(os.path.join(root, "examples", "*.c"))):
        rel, name = os.path.relpath(path, root), os.path.basename(path)[:-2]
        found = first_comment(read(root, rel))
        if not found:
            continue
        for m in re.finditer(r"(?<![\w-])--([a-z][\w-]*)", found[1]):
            count += 1
            if m.group(1) not in flags_of(name):
                stale.append("%s:%d: %s has no --%s" % (rel, line_of(found[1], m.start(), found[0]), name, m.group(1)))
    return count, stale


def meson_names(root):
    """The quoted strings of every meson.build: test and suite names."""
    names = set()
    for dirpath, f in tree_files(root):
        if f == "meson.build":
            names.update(re.findall(r"'([\w-]+)'", open(os.path.join(dirpath, f)).read()))
    return names


def check_meson_tests(root):
    """`meson test [-C DIR] [--suite S] [NAME]`: S and NAME are registered."""
    known, stale, count = meson_names(root), [], 0
    for rel in READMES:
        for line, span in code_spans(read(root, rel)):
            for m in re.finditer(r"meson test((?:\s+\S+)*)", span):
                words = m.group(1).split()
                k = 0
                while k < len(words):
                    word = words[k]
                    if word in ("-C", "--suite", "--no-suite", "--setup") and k + 1 < len(words):
                        if word != "-C":
                            count += 1
                            if words[k + 1] not in known:
                                stale.append("%s:%d: no test suite %s" % (rel, line, words[k + 1]))
                        k += 2
                        continue
                    if re.fullmatch(r"\w[\w-]*", word):
                        count += 1
                        if word not in known:
                            stale.append("%s:%d: no test %s" % (rel, line, word))
                    k += 1
    return count, stale


def check_paths(root):
    stale, count, progs, files = [], 0, programs(root), {f for _, f in tree_files(root)}
    pattern = re.compile(r"(?<![\w./-])((?:%s)/[\w./*-]*[\w*/])" % TOP_DIRS)
    for rel, first, text in documents(root):
        for m in pattern.finditer(text):
            path = m.group(1)
            count += 1
            if path not in MADE_PATHS and not any(glob.glob(os.path.join(root, path + ext)) for ext in ("", ".c")):
                stale.append("%s:%d: %s does not exist" % (rel, line_of(text, m.start(), first), path))
        # a source named alone (`rnn_bench.c`, "fake_cudnn.c") is somewhere
        for m in re.finditer(r"(?<![\w/.-])([\w-]+\.(?:c|h|cu|cpp|py|sh|pl))\b(?![\w/-])", text):
            count += 1
            if m.group(1) not in files and m.group(1) not in OTHER_FILES:
                stale.append("%s:%d: no file %s" % (rel, line_of(text, m.start(), first), m.group(1)))
        for m in re.finditer(r"(?<![\w/.-])build/(?:examples|bench|tools)/([\w.-]+)", text):
            count += 1
            if m.group(1) not in progs:
                stale.append("%s:%d: %s is no program" % (rel, line_of(text, m.start(), first), m.group(0)))
    return count, stale


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    root, build, cc = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        subprocess.run(cc + ["--version"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        print("SKIP: cannot run the C compiler %s" % " ".join(cc))
        sys.exit(77)
    known, strings = code_names(root)
    failures = []
    n, errors = check_code(root, cc)
    print("code: %d snippets compiled" % n)
    failures += errors
    stale = check_names(root, known, strings)
    print("names: %d stale" % len(stale))
    failures += stale
    n, errors = check_fields(root, cc, struct_types(root))
    print("fields: %d checked" % n)
    failures += errors
    n, stale = check_flags(root, build)
    print("flags: %d checked" % n)
    failures += stale
    n, stale = check_meson_tests(root)
    print("meson tests: %d checked" % n)
    failures += stale
    n, stale = check_paths(root)
    print("paths: %d checked" % n)
    failures += stale
    for f in failures:
        print(f)
    if failures:
        print("%d stale places in the documentation" % len(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
