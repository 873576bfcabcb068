#!/usr/bin/env python3
"""test_html.py — `fleetsim report --format html` opened in a real browser.

The HTML report promises one self-contained page: nothing fetched, no
script, charts as inline SVG, tables that say what the JSON report says.
This test renders two small runs (the headline scenario, which faults, and a
clean update, which does not) and checks the file as written, then the DOM
that headless Chromium builds from it, then a screenshot of it.  Chromium is
required (.ci/setup installs it): without it the test fails, it does not
skip.  A third case, a store edited to be interrupted and to hold markup in
its strings, checks the warning banner and that store text is escaped.

argv: the fleetsim binary, the scenarios folder.  Output: TAP.
"""
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib
from html.parser import HTMLParser

FLEETSIM, SCENARIOS = sys.argv[1], sys.argv[2]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
checks = 0
failures = 0


def check(desc, ok, detail=""):
    global checks, failures
    checks += 1
    print(f"{'ok' if ok else 'not ok'} {checks} - {desc}")
    if not ok:
        failures += 1
        for line in str(detail).splitlines()[:20]:
            print(f"# {line}")


def bail(message):
    print(f"Bail out! {message}")
    sys.exit(1)


# ---- a small DOM ---------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children = []

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def find(self, tag=None, cls=None, id=None):
        return [n for n in self.walk() if (tag is None or n.tag == tag)
                and (cls is None or cls in n.classes())
                and (id is None or n.attrs.get("id") == id)]

    def child(self, tag):
        return next((c for c in self.children if isinstance(c, Node) and c.tag == tag), None)


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#document", {}, None)
        self.doctype = None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html):
    b = TreeBuilder()
    b.feed(html)
    b.close()
    return b


# ---- PNG ----------------------------------------------------------------------

def png_colours(path, most=64):
    """The PNG's size and how many distinct pixel colours it has (up to `most`)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace or ctype not in (0, 2, 4, 6):
        raise ValueError(f"unexpected PNG format: depth {depth}, colour type {ctype}")
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours, p = bytearray(stride), set(), 0
    for _ in range(height):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, width, 7):
            colours.add(bytes(line[x * bpp:(x + 1) * bpp]))
        if len(colours) >= most:
            break
        prev = line
    return width, height, len(colours)


# ---- running things -------------------------------------------------------------

def run(args, expect=(0,)):
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if p.returncode not in expect:
        bail(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p.stdout


def chromium(tmp, *args):
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-dev-shm-usage",
                        f"--user-data-dir={os.path.join(tmp, 'chromium-profile')}", *args],
                       capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        bail(f"chromium {' '.join(args)} exited {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout


def report(store, html):
    run([FLEETSIM, "report", store, "--format", "html", "-o", html])
    return json.loads(run([FLEETSIM, "report", store, "--format", "json"]))


# ---- the checks -------------------------------------------------------------------

NUMERIC = {"x", "y", "x1", "x2", "y1", "y2", "width", "height", "points", "viewbox", "rx"}


def check_static(name, path):
    html = open(path, encoding="utf-8").read()
    doc = parse(html)
    check(f"{name}: starts with an HTML5 doctype", html.startswith("<!DOCTYPE html>"),
          html[:80])
    htm = doc.root.child("html")
    check(f"{name}: <html> has a lang", htm is not None and htm.attrs.get("lang"))
    check(f"{name}: declares utf-8",
          any(m.attrs.get("charset", "").lower() == "utf-8" for m in doc.root.find("meta")))
    remote = [(n.tag, k, v) for n in doc.root.walk() for k, v in n.attrs.items()
              if k in ("src", "href", "xlink:href", "action") and v
              and re.match(r"\s*(https?:)?//", v, re.I)]
    check(f"{name}: no src or href points off the page", not remote, remote)
    check(f"{name}: no <script> at all", not doc.root.find("script"))
    check(f"{name}: no <link rel=stylesheet>",
          not [n for n in doc.root.find("link") if "stylesheet" in n.attrs.get("rel", "")])
    check(f"{name}: no url(...) fetch in the style", "url(" not in html)
    bad = [(n.tag, k, v) for s in doc.root.find("svg") for n in [s, *s.walk()]
           for k, v in n.attrs.items() if k in NUMERIC and v
           and re.search(r"nan|inf|[^-0-9., ]", v, re.I)]
    check(f"{name}: SVG geometry is plain numbers (no NaN, no inf)", not bad, bad[:5])


def check_dom(name, dom, rep):
    doc = parse(dom)
    svgs = {s.attrs.get("id"): s for s in doc.root.find("svg")}
    for id in ("heatmap", "timeline", "buckets"):
        s = svgs.get(id)
        title = s and s.child("title")
        check(f"{name}: <svg id={id}> is there with a <title>",
              title is not None and title.text().strip(), list(svgs))
    cohorts = rep["cohorts"]
    heat = svgs.get("heatmap")
    cells = heat.find("g", cls="cell") if heat else []
    labels = sorted(c.child("title").text().split(": faulted")[0] for c in cells)
    check(f"{name}: the heat map has one cell per cohort ({len(cohorts)})",
          labels == sorted(c["label"] for c in cohorts),
          f"cells {labels}\ncohorts {sorted(c['label'] for c in cohorts)}")
    for c in cells:
        title = c.child("title").text()
        if "fault rate" not in title or not re.search(r"faulted \d+ of \d+ reached", title):
            check(f"{name}: heat map cells say faulted/reached and the interval", False, title)
            break
    table = next(iter(doc.root.find("table", id="cohorts")), None)
    rows = table.child("tbody").find("tr") if table else []
    check(f"{name}: the cohort table has a row per cohort ({len(cohorts)})",
          len(rows) == len(cohorts), len(rows))
    failing = [c["label"] for c in cohorts if not c["passed"]]
    marked = [r.find("td")[0].text() for r in rows if "fail" in r.classes()]
    check(f"{name}: rows of the {len(failing)} cohorts that broke the gate are marked",
          marked == failing, f"marked {marked}\nfailing {failing}")
    lines = svgs["timeline"].find("polyline") if "timeline" in svgs else []
    check(f"{name}: the timeline draws four series", len(lines) == 4, len(lines))
    ticks = [t.text() for t in svgs["timeline"].find("text")] if "timeline" in svgs else []
    check(f"{name}: the timeline's axis has UTC clock times",
          sum(bool(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t)) for t in ticks) >= 3, ticks)
    verdict = next(iter(doc.root.find(id="verdict")), None)
    want = "pass" if rep["verdict"]["passed"] else "fail"
    check(f"{name}: the verdict element is {want.upper()} and says the verdict line",
          verdict is not None and want in verdict.classes()
          and verdict.text().strip() == rep["verdict"]["line"]
          and verdict.text().startswith(want.upper()),
          verdict.text() if verdict else "no #verdict")
    return doc, svgs


def faulty_case(tmp):
    store, html = os.path.join(tmp, "s.db"), os.path.join(tmp, "r.html")
    run([FLEETSIM, "run", os.path.join(SCENARIOS, "channel-file-291.yaml"), "--fleet-size", "200",
         "--db", store, "--quiet"], expect=(1,))
    rep = report(store, html)
    check_static("cf291", html)
    doc, svgs = check_dom("cf291", chromium(tmp, "--dump-dom", "file://" + html), rep)
    top = rep["buckets"][0]["bucket"] if rep["buckets"] else None
    check("cf291: the run has crash buckets", top is not None)
    bars = svgs["buckets"].find("g", cls="bar") if "buckets" in svgs else []
    check(f"cf291: the bucket chart has a bar per bucket ({len(rep['buckets'])})",
          len(bars) == len(rep["buckets"]), len(bars))
    check("cf291: the top bucket is named in the bucket chart",
          top and top in svgs["buckets"].text())
    table = next(iter(doc.root.find("table", id="buckets-table")), None)
    check("cf291: the top bucket is named in the bucket table",
          table is not None and top and top in table.text())
    details = doc.root.find("details")
    check("cf291: each bucket has details with its stack and replay commands",
          len(details) == len(rep["buckets"]) and all(
              len(d.find("pre")) == 3 and "fleetsim" in d.find("pre")[2].text() for d in details))
    check("cf291: the verdict says FAIL", "FAIL" in doc.root.find(id="verdict")[0].text())

    shot = os.path.join(tmp, "r.png")
    chromium(tmp, f"--screenshot={shot}", "--window-size=1280,2000", "file://" + html)
    try:
        width, height, colours = png_colours(shot)
        check("cf291: the screenshot is 1280x2000", (width, height) == (1280, 2000),
              (width, height))
        check(f"cf291: the screenshot is not blank ({colours} colours seen)", colours > 8)
    except (OSError, ValueError, zlib.error) as e:
        check("cf291: the screenshot is a readable PNG", False, e)
    return store


def clean_case(tmp):
    store, html = os.path.join(tmp, "clean.db"), os.path.join(tmp, "clean.html")
    run([FLEETSIM, "run", os.path.join(SCENARIOS, "clean-update.yaml"), "--fleet-size", "100",
         "--db", store, "--quiet"])
    rep = report(store, html)
    check_static("clean", html)
    doc, svgs = check_dom("clean", chromium(tmp, "--dump-dom", "file://" + html), rep)
    check("clean: no buckets in the JSON report", not rep["buckets"])
    check("clean: the bucket chart is there and empty",
          "buckets" in svgs and not svgs["buckets"].find("g", cls="bar")
          and "No crashes" in svgs["buckets"].text())
    check("clean: the verdict says PASS", "PASS" in doc.root.find(id="verdict")[0].text())


def hostile_case(tmp, faulty_store):
    """A store whose run was cut short and whose strings hold markup."""
    store, html = os.path.join(tmp, "hostile.db"), os.path.join(tmp, "hostile.html")
    shutil.copy(faulty_store, store)
    db = sqlite3.connect(store)
    db.execute("UPDATE run SET status = 'interrupted', scenario_name = 'cf<b>291</b>', "
               "reason = '<script>alert(1)</script> & \"quoted\"'")
    db.commit()
    db.close()
    report(store, html)
    check_static("interrupted", html)
    doc = parse(chromium(tmp, "--dump-dom", "file://" + html))
    banner = doc.root.find(cls="banner")
    check("interrupted: a warning banner says the run is incomplete",
          banner and "interrupted" in banner[0].text(), banner and banner[0].text())
    check("interrupted: store text is escaped, never markup",
          not doc.root.find("script") and not doc.root.find("b")
          and "<script>alert(1)</script>" in banner[0].text()
          and "cf<b>291</b>" in doc.root.find("h1")[0].text())
    check("interrupted: the verdict fails", "fail" in doc.root.find(id="verdict")[0].classes())


CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
if not CHROMIUM:
    bail("chromium is not installed: the HTML report is checked in a real browser "
         "(.ci/setup installs the Debian package `chromium`)")
with tempfile.TemporaryDirectory(prefix="fleetsim-html-") as tmp:
    faulty = faulty_case(tmp)
    clean_case(tmp)
    hostile_case(tmp, faulty)
print(f"1..{checks}")
sys.exit(1 if failures else 0)
