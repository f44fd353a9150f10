#!/usr/bin/env python3
"""The Markdown report of each bundled sample rendered as GitHub would (cmark-gfm, GFM tables).

    check_report_markdown.py FPSCOPE

For each sample trace: writes its Markdown report (with its plot folder), renders it with
cmark-gfm (extensions table, strikethrough, autolink, tagfilter) and checks that
  - nothing in it is raw HTML: the safe rendering omits nothing ("raw HTML omitted"), and the
    --unsafe rendering holds only the tags Markdown syntax produces;
  - the first paragraph is the verdict `fpscope summary --json` gives, and the next action follows;
  - the causes table comes first, with the header | # | severity | cause | first step | and one
    row per cause up to ten (the JSON's `causes`), each cell the cause's title as plain text
    (escaped names render back to the literal names);
  - every table row has as many cells as its header (no name splits a row), and the run facts
    and per-tensor tables are there, the per-tensor table listing the JSON's tensor ids.
Exit 77 (CTest SKIP_RETURN_CODE) when cmark-gfm is not installed: scripts/install-deps.sh
installs Debian's `cmark-gfm`.
"""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

SAMPLES = ["sample", "fp16_amp", "fp16_amp_fixed"]
# Tags that Markdown syntax (CommonMark + GFM tables) produces for these reports.
SYNTAX_TAGS = {"h2", "h3", "h4", "p", "strong", "em", "table", "thead", "tbody", "tr", "th", "td",
               "ol", "ul", "li", "img", "hr", "br", "code", "a"}


class Doc(html.parser.HTMLParser):
    """Tags seen, paragraphs' text and tables (rows of cell texts)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = set()
        self.paragraphs = []
        self.tables = []
        self._p = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "p":
            self._p = ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "p" and self._p is not None:
            self.paragraphs.append(self._p)
            self._p = None
        elif tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._p is not None:
            self._p += data
        if self._cell is not None:
            self._cell += data


def render(cmark, md, unsafe):
    cmd = [cmark, "-e", "table", "-e", "strikethrough", "-e", "autolink", "-e", "tagfilter"]
    if unsafe:
        cmd.append("--unsafe")
    return subprocess.run(cmd, input=md, check=True, capture_output=True, text=True).stdout


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    fpscope = os.path.abspath(sys.argv[1])
    cmark = shutil.which("cmark-gfm")
    if not cmark:
        print("SKIP: no cmark-gfm in PATH (Debian package `cmark-gfm`, scripts/install-deps.sh)")
        return 77
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        for s in SAMPLES:
            trace = os.path.join(root, "samples", "pytorch_cpu", s + ".fpst")
            path = os.path.join(tmp, s + ".md")
            subprocess.run([fpscope, "report", trace, "-o", path], check=True,
                           capture_output=True)
            summary = json.loads(subprocess.run([fpscope, "summary", trace, "--json"], check=True,
                                                capture_output=True, text=True).stdout)
            with open(path, encoding="utf-8") as f:
                md = f.read()
            safe = render(cmark, md, unsafe=False)
            check("raw HTML omitted" not in safe, "%s: the Markdown holds raw HTML" % s)
            doc = Doc()
            doc.feed(render(cmark, md, unsafe=True))
            extra = doc.tags - SYNTAX_TAGS
            check(not extra, "%s: tags that are not Markdown syntax: %s" % (s, sorted(extra)))

            v = summary["verdict"]
            check(bool(doc.paragraphs) and
                  doc.paragraphs[0].startswith("Verdict: %s." % v["headline"]),
                  "%s: first paragraph %r, want the verdict %r" %
                  (s, doc.paragraphs[:1], v["headline"]))
            check(len(doc.paragraphs) > 1 and
                  doc.paragraphs[1] == "Next action: " + v["next_action"],
                  "%s: second paragraph is not the next action" % s)

            check(len(doc.tables) >= 3, "%s: %d tables, want causes, run, per-tensor" %
                  (s, len(doc.tables)))
            if not doc.tables:
                continue
            for t in doc.tables:
                for row in t[1:]:
                    check(len(row) == len(t[0]), "%s: a row of %d cells under a header of %d: %s"
                          % (s, len(row), len(t[0]), row[:3]))
            causes = doc.tables[0]
            check(causes[0] == ["#", "severity", "cause", "first step"],
                  "%s: first table header %s" % (s, causes[0]))
            want = summary["causes"][:10]
            check(len(causes) - 1 == len(want), "%s: %d cause rows, want %d" %
                  (s, len(causes) - 1, len(want)))
            for i, (row, c) in enumerate(zip(causes[1:], want)):
                check(row[1] == c["severity"] and row[2] == c["title"],
                      "%s: cause row %d %s, want [%s] %s" % (s, i + 1, row, c["severity"],
                                                             c["title"]))
            run = doc.tables[1]
            check(any(r[:1] == ["trace"] for r in run), "%s: no run facts table" % s)
            per_tensor = [t for t in doc.tables if t[0][:2] == ["tensor", "severity"]]
            check(len(per_tensor) == 1, "%s: no per-tensor table" % s)
            if per_tensor:
                ids = [r[0] for r in per_tensor[0][1:]]
                want_ids = [t["id"] for t in summary["tensors"]][:len(ids)]
                check(ids == want_ids, "%s: per-tensor ids %s, want %s" %
                      (s, ids[:3], want_ids[:3]))
            print("%s: verdict %r; %d tables; %d cause rows; tags %s" %
                  (s, v["headline"], len(doc.tables), len(causes) - 1, sorted(doc.tags)))
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
