#!/usr/bin/python3
"""Checks that README's "Settings (FPSCOPE_* environment variables)" table lists exactly the
FPSCOPE_* variables the probe and `fpscope record` read (string literals "FPSCOPE_..." in probe/
and analysis/cli/cmd_record.cpp), and that the defaults the probe's config code warns with match
the table. Usage: check_settings.py REPO_ROOT"""
import glob
import os
import re
import sys


def main():
    root = sys.argv[1]
    readme = open(os.path.join(root, "README.md")).read()
    m = re.search(r"^## Settings \(FPSCOPE_\* environment variables\)\n(.*?)(?=^## |\Z)", readme,
                  re.S | re.M)
    if not m:
        print("README.md has no '## Settings (FPSCOPE_* environment variables)' section")
        return 1
    table = {}
    for line in m.group(1).splitlines():
        row = re.match(r"^\| `(FPSCOPE_[A-Z0-9_]+)` \| (.*?) \| (.*) \|$", line)
        if row:
            table[row.group(1)] = row.group(2).replace("\\|", "|").strip("`")
    sources = glob.glob(os.path.join(root, "probe", "**", "*.*"), recursive=True)
    sources.append(os.path.join(root, "analysis", "cli", "cmd_record.cpp"))
    read = set()
    for path in sources:
        if not path.endswith((".cpp", ".h", ".cu", ".py")):
            continue
        read |= set(re.findall(r'"(FPSCOPE_[A-Z0-9_]+)"', open(path, errors="replace").read()))
    errors = []
    for name in sorted(read - set(table)):
        errors.append("%s is read by the code but not documented in README's settings table" % name)
    for name in sorted(set(table) - read):
        errors.append("%s is documented in README but no code reads it" % name)
    # Defaults the probe falls back to on a bad value: bad("NAME", v, "...", "DEFAULT").
    config = open(os.path.join(root, "probe", "src", "config.cpp")).read()
    defaults = re.findall(r'bad\("(FPSCOPE_[A-Z0-9_]+)",\s*v,\s*"[^"]*",\s*"([^"]*)"\)', config)
    if len(defaults) < 10:
        errors.append("only %d defaults found in config.cpp: the check lost track of the code"
                      % len(defaults))
    for name, default in defaults:
        if name in table and table[name] != default:
            errors.append("%s: README says default %r, the code falls back to %r"
                          % (name, table[name], default))
    for e in errors:
        print(e)
    print("%d variables read, %d documented, %d problems" % (len(read), len(table), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
