#!/usr/bin/env python3
"""Runs every shell block of a Markdown file that is marked runnable, and fails if any fails.

A block is runnable when the line before its opening fence is exactly `<!-- runnable -->`.
Blocks run in order with bash -euo pipefail, each in its own shell, from the repository root,
with FPSCOPE_BIN (the build's bin/ folder, also prepended to PATH) and FPSCOPE_LIB exported, and
a scratch directory in $WORK. Usage: run-readme-blocks.py README.md BUILD_DIR
"""
import os
import re
import subprocess
import sys
import tempfile


def runnable_blocks(text):
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "<!-- runnable -->" and i + 1 < len(lines) and re.match(r"^```(sh|bash)\s*$", lines[i + 1]):
            start = i + 2
            end = start
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            blocks.append((start + 1, "\n".join(lines[start:end])))
            i = end
        i += 1
    return blocks


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    md, build = sys.argv[1], os.path.abspath(sys.argv[2])
    root = os.path.dirname(os.path.abspath(md))
    blocks = runnable_blocks(open(md, encoding="utf-8").read())
    if not blocks:
        print(f"{md}: no runnable blocks found", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="fpscope-readme-") as work:
        env = dict(os.environ)
        env["FPSCOPE_BIN"] = os.path.join(build, "bin")
        env["FPSCOPE_LIB"] = os.path.join(build, "lib")
        env["PATH"] = env["FPSCOPE_BIN"] + os.pathsep + env.get("PATH", "")
        env["WORK"] = work
        for line, code in blocks:
            print(f"--- {md}:{line}\n{code}", flush=True)
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=root, env=env)
            if r.returncode != 0:
                print(f"FAILED {md}:{line} (exit {r.returncode})", flush=True)
                failed += 1
    print(f"{len(blocks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
