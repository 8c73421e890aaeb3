#!/usr/bin/env python3
"""Run an example and check what it did (the examples' tests).

    check.py [--exit N] [--stdout TEXT] [--stderr TEXT] [--no-stdout TEXT] [--no-stderr TEXT]
             [--metric REGEX (--above | --below) [NUMBER]] [--fresh-dir DIR] -- EXAMPLE ARGS...

--exit: the exit status wanted (default 0). Any sanitizer report on stderr
(a leak, a bad access, undefined behaviour) fails the check whatever the
status: under ASan a leak exits 1, like the error paths being tested. --stdout/--stderr: text the
output must contain; --no-stdout/--no-stderr: text it must not. --metric: the last
match of REGEX in stdout (DOTALL) names the result in its group "value"
and, when there is no NUMBER, the baseline to beat in its group "baseline";
--above/--below say which way beats it. --fresh-dir: a directory made empty
before the run that must be empty after it (a run that fails early leaves
no file behind, not even a probe's).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exit", type=int, default=0)
    p.add_argument("--stdout", action="append", default=[])
    p.add_argument("--stderr", action="append", default=[])
    p.add_argument("--no-stdout", action="append", default=[])
    p.add_argument("--no-stderr", action="append", default=[])
    p.add_argument("--metric")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--above", nargs="?", const="baseline")
    way.add_argument("--below", nargs="?", const="baseline")
    p.add_argument("--fresh-dir")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if a.fresh_dir:
        shutil.rmtree(a.fresh_dir, ignore_errors=True)
        os.makedirs(a.fresh_dir)
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    out, err = r.stdout, r.stderr
    problems = []
    if r.returncode != a.exit:
        problems.append("exit status %d, wanted %d" % (r.returncode, a.exit))
    problems += ["stdout lacks %r" % t for t in a.stdout if t not in out]
    problems += ["stderr lacks %r" % t for t in a.stderr if t not in err]
    problems += ["stdout has %r" % t for t in a.no_stdout if t in out]
    problems += ["stderr has %r" % t for t in a.no_stderr if t in err]
    if a.fresh_dir and os.listdir(a.fresh_dir):
        problems.append("%s holds %s after the run" % (a.fresh_dir, sorted(os.listdir(a.fresh_dir))))
    problems += ["a sanitizer report: %r" % t for t in ("ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                                        "runtime error:") if t in err]
    if a.metric:
        matches = list(re.finditer(a.metric, out, re.S))
        if not matches:
            problems.append("no match for %r in stdout" % a.metric)
        else:
            m = matches[-1]
            value = float(m.group("value"))
            bound = a.above or a.below
            base = float(m.group("baseline")) if bound == "baseline" else float(bound)
            beats = value > base if a.above else value < base
            print("%s: %g, baseline %g: %s" % (cmd[0], value, base, "beats it" if beats else "DOES NOT BEAT IT"))
            if not beats:
                problems.append("the result %g does not beat the baseline %g" % (value, base))
    if problems:
        sys.stdout.write("$ %s\n--- stdout (tail)\n%s\n--- stderr (tail)\n%s\n" % (" ".join(cmd), out[-3000:], err[-3000:]))
        for pr in problems:
            print("FAIL:", pr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
