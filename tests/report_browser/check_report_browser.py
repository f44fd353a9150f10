#!/usr/bin/env python3
"""The HTML report of each bundled sample, seen in a real browser (headless Chromium).

    check_report_browser.py FPSCOPE [--screenshot DIR]

For each sample trace: writes its HTML report, appends a script that measures the page and
writes the numbers into the DOM, loads it in headless Chromium at 1280x800 (--dump-dom) and
checks from those numbers that
  - the verdict (the one the summary JSON gives) and the first cause end within the first screen;
  - at most ten causes come before the fold;
  - nothing overflows the page width (scrollWidth <= clientWidth), with every <details> closed
    and with every one open;
  - every SVG (plots; every <details> open) is rendered with a nonzero width and height.
--screenshot DIR also writes DIR/report_<sample>.png (the first screen) for docs/images.
Exit 77 (CTest SKIP_RETURN_CODE) when no chromium is installed: scripts/install-deps.sh installs
Debian's `chromium`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SAMPLES = ["sample", "fp16_amp", "fp16_amp_fixed"]
WIDTH, HEIGHT = 1280, 800

MEASURE = r"""
<script>
(function () {
  const r = {innerWidth: innerWidth, innerHeight: innerHeight};
  const de = document.documentElement;
  const v = document.getElementById('verdict');
  r.verdict_bottom = v ? v.getBoundingClientRect().bottom : -1;
  r.verdict_text = v ? v.querySelector('.vh').textContent : '';
  const first = document.querySelector('ol.causes');
  const items = first ? first.querySelectorAll(':scope > li.cause') : [];
  r.causes_before_fold = items.length;
  r.first_cause_bottom = items.length ? items[0].getBoundingClientRect().bottom : -1;
  r.closed = [de.scrollWidth, de.clientWidth];
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  r.open = [de.scrollWidth, de.clientWidth];
  r.svgs = Array.from(document.querySelectorAll('svg')).map(function (s) {
    const b = s.getBoundingClientRect();
    return [b.width, b.height];
  });
  const out = document.createElement('pre');
  out.id = 'fpscope-measure';
  out.textContent = JSON.stringify(r);
  document.body.appendChild(out);
})();
</script>
"""


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium(binary, *args):
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--window-size=%d,%d" % (WIDTH, HEIGHT), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=180).stdout


def main():
    if len(sys.argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    fpscope = os.path.abspath(sys.argv[1])
    shots = os.path.abspath(sys.argv[3]) if len(sys.argv) == 4 else None
    binary = chromium_binary()
    if not binary:
        print("SKIP: no chromium in PATH (Debian package `chromium`, scripts/install-deps.sh)")
        return 77
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in SAMPLES:
            trace = os.path.join(root, "samples", "pytorch_cpu", s + ".fpst")
            html = os.path.join(tmp, s + ".html")
            subprocess.run([fpscope, "report", trace, "-o", html], check=True,
                           capture_output=True)
            summary = json.loads(subprocess.run([fpscope, "summary", trace, "--json"], check=True,
                                                capture_output=True, text=True).stdout)
            with open(html, encoding="utf-8") as f:
                page = f.read()
            probe = os.path.join(tmp, s + ".probe.html")
            with open(probe, "w", encoding="utf-8") as f:
                f.write(page.replace("</body>", MEASURE + "</body>"))
            dom = chromium(binary, "--virtual-time-budget=5000", "--dump-dom",
                           "file://" + probe)
            start = dom.find('<pre id="fpscope-measure">')
            if start < 0:
                failures.append("%s: the measuring script did not run" % s)
                continue
            m = json.loads(dom[start + len('<pre id="fpscope-measure">'):dom.find("</pre>", start)]
                           .replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                           .replace("&gt;", ">"))
            fold = min(HEIGHT, m["innerHeight"])
            want = "Verdict: " + summary["verdict"]["headline"]
            print("%s: %s; verdict ends at %.0f px, first cause at %.0f px (fold %d); %d causes "
                  "before the fold; width %s closed, %s open; %d SVGs" %
                  (s, m["verdict_text"], m["verdict_bottom"], m["first_cause_bottom"], fold,
                   m["causes_before_fold"], m["closed"], m["open"], len(m["svgs"])))
            if m["verdict_text"] != want:
                failures.append("%s: verdict %r, summary --json says %r" %
                                (s, m["verdict_text"], want))
            if not 0 < m["verdict_bottom"] <= fold:
                failures.append("%s: the verdict ends at %s px, below the fold (%d)" %
                                (s, m["verdict_bottom"], fold))
            if summary["causes"] and not 0 < m["first_cause_bottom"] <= fold:
                failures.append("%s: the first cause ends at %s px, below the fold (%d)" %
                                (s, m["first_cause_bottom"], fold))
            if m["causes_before_fold"] > 10:
                failures.append("%s: %d causes before the fold (at most 10)" %
                                (s, m["causes_before_fold"]))
            for state in ("closed", "open"):
                sw, cw = m[state]
                if sw > cw:
                    failures.append("%s: page wider than the window with <details> %s: "
                                    "scrollWidth %d > clientWidth %d" % (s, state, sw, cw))
            if not m["svgs"]:
                failures.append("%s: no SVG in the report" % s)
            for i, (w, h) in enumerate(m["svgs"]):
                if not (w > 0 and h > 0):
                    failures.append("%s: SVG %d rendered %sx%s" % (s, i, w, h))
            if shots:
                os.makedirs(shots, exist_ok=True)
                chromium(binary, "--screenshot=" + os.path.join(shots, "report_%s.png" % s),
                         "file://" + html)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
