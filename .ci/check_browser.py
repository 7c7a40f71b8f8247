#!/usr/bin/env python3
"""Read the built HTML book in a real browser, page by page, as a reader would.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) opens every page of
``_toc.yml`` from a local HTTP server on 127.0.0.1, as GitHub Pages serves it (``--file`` opens the files from
disk instead, as a reader who downloaded the book would). Every host but 127.0.0.1 is unreachable to the browser
(``--host-resolver-rules``), here and on a runner with a network alike, so a page that still needs a CDN fails the
same way everywhere. The scripts that run in the pages are in ``check_browser.js``, beside this file; what they
return is checked here, in Python, by the checks of the table ``CHECKS``. On every page it checks:

- ``js-error``: no uncaught JavaScript error, rejected promise, ``console.error`` or failed load of the book's own
  files (``ALLOWED_ERRORS`` names the few that are allowed, with the reason);
- ``image``: every ``<img>`` has loaded (``naturalWidth > 0``);
- ``raw-text``: no glue placeholder or raw role text in the visible text outside code (``{glue:text}``, ``{glue:``,
  ``{cite``, any ``{role}``` ``, ``???``) and no raw LaTeX once MathJax has run (``\\(``, ``\\[``, ``$$``,
  ``\\frac``...);
  ``math-error``: no formula that MathJax could not typeset;
- ``caption``: every output image is followed directly by its caption (a paragraph "Figure N." as the next
  element), every such caption follows an image, and every ``<figure>`` has a non-empty ``<figcaption>``;
- ``missing-output``: every image and HTML table among the notebook's committed outputs is on the page, and
  ``table``: every table has a header and at least one row of cells;
- ``launch-button``: a notebook page has the Colab launch button, pointing at its own notebook;
- ``explorer``: next to every widget explorer (a code cell calling ``*_explorer(``, which the static book cannot
  run) stands its static counterpart, holding at least one loaded image: the first output image after the explorer
  in its section whose "Figure N." caption names the explorer ("The explorer, frozen."), or any element of the CSS
  class ``explorer-static`` in its section (a notebook cell tagged ``explorer-static``, which myst-nb renders with
  the class ``tag_explorer-static``, or a MyST figure or image with ``:class: explorer-static``);
- ``legibility``: every output figure is shown wide enough that its tick labels are at least 10 px tall;
- readability: ``overflow``, no output block (or the page itself) scrolls sideways at the 1280 px window;
  ``text-table``, no table printed as plain text (a pandas dump: rows of three or more aligned columns) where an
  HTML table belongs; ``float-count``, no column of counts (runs, seeds, wins, ...) printed as floats ("20.0");
  ``narrow-cell``, no table cell narrower than its longest word (measured in the cell's font), so no table wraps a
  word; and no display equation wider than the column, even where the theme lets it scroll (``overflow``);
- ``code-scroll``: no visible code cell scrolls sideways (a line wider than the column hides its end);
- ``duplicate-script``: the page loads each script file and each inline script once;
- ``local-path``: no output or text shows a file path of the machine that built it (``/home/<user>``, ``/tmp/``,
  ``/work/``, ...).

It saves a full-page screenshot of every page as ``_build/screenshots/<page>.png``.

Exit status: 0 if every page passes, 1 if any check fails, 0 with a loud SKIPPED message if no browser is found,
unless the environment variable CI is set (not "", "0" or "false"): then a missing browser fails (exit 2).
``--find`` only prints the browser and driver it would use. Run it after the build:
``.venv/bin/python .ci/check_browser.py`` (see ``--help``).
"""
from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK_PT, FIGURE_DPI = 11 * 1.15, 110  # samlib.plots.style: TICK_PT and savefig.dpi (tests/test_browser.py checks)
WINDOW = (1280, 900)
CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
    # Offline, the same on every machine: no host but the local server resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
HOW_TO_GET = ("install Debian's headless Chromium and its driver: 'sudo apt-get install chromium chromium-driver' "
              "(bash .ci/setup does it when run as root), or set CHROMIUM=/path/to/chrome and "
              "CHROMEDRIVER=/path/to/chromedriver")

# Errors that are allowed, by name: (name, regular expression on the message, why).
ALLOWED_ERRORS = [
    ("favicon", r"/favicon\.ico\b", "the browser asks every site for /favicon.ico; the book has none"),
    ("theme mode on a first visit", r"Got invalid theme mode: \. Resetting to auto",
     "pydata-sphinx-theme logs this with console.error when localStorage holds no light/dark choice yet, "
     "i.e. on a reader's first page"),
]

RAW_TEXT = [
    ("glue placeholder", re.compile(r"\{glue(?::[a-z]+)?\}|\{glue:")),
    ("raw cite role", re.compile(r"\{cite")),
    ("raw MyST role", re.compile(r"\{[a-z][a-z0-9:_-]*\}`")),
    ("unresolved reference", re.compile(r"\?\?\?")),
    ("raw math delimiter", re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")),
    ("raw LaTeX command", re.compile(r"\\(?:[a-zA-Z]{2,})")),
]
# A file-system path of the machine that ran the chapter (a home, temporary or workspace folder), in any output.
LOCAL_PATH = re.compile(r"(?<![\w.~])(?:/home/\w+|/Users/\w+|/root/|/tmp/|/work/|/usr/share/|/opt/|/private/var/"
                        r"|[A-Z]:\\Users\\)")
COUNT_HEADER = re.compile(r"\b(n|count|counts|comparisons|runs|seeds|wins|ties|pairs|steps|epochs|images|"
                          r"more even|above|below|beats)\b", re.IGNORECASE)
FLOAT_INTEGER = re.compile(r"^-?\d+\.0+$")


@dataclass(frozen=True)
class Page:
    docname: str            # as in _toc.yml: book/toy
    html: str               # relative to the HTML root: book/toy.html
    notebook: Path | None   # the source notebook, for notebook pages

    @property
    def name(self) -> str:  # the screenshot's name
        return self.docname.replace("/", "_") if self.docname.count("/") > 1 else Path(self.docname).name


@dataclass(frozen=True)
class Failure:
    page: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: [{self.check}] {self.detail}"


# ---------------------------------------------------------------------------------------------------------------
# The pages, the browser and the server

def toc_pages(toc: Path = ROOT / "_toc.yml", source: Path | None = None) -> list[Page]:
    """Every page of a Jupyter Book _toc.yml (root, chapters, parts and sections), in reading order."""
    import yaml

    source = source or toc.parent
    data = yaml.safe_load(toc.read_text())
    files: list[str] = [data["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections", "parts"):
                walk(entry.get(key))

    walk(data.get("chapters"))
    walk(data.get("parts"))
    pages = []
    for docname in files:
        docname = re.sub(r"\.(md|ipynb|rst)$", "", docname)
        notebook = source / f"{docname}.ipynb"
        pages.append(Page(docname, f"{docname}.html", notebook if notebook.is_file() else None))
    return pages


def find_browser() -> tuple[str, str] | None:
    """(Chromium or Chrome, its ChromeDriver): CHROMIUM/CHROMEDRIVER, else Debian's, else a Chrome on the PATH
    (GitHub's Ubuntu runners have Google Chrome, and ChromeDriver in $CHROMEWEBDRIVER)."""
    browsers = [os.environ.get("CHROMIUM"), "/usr/bin/chromium",
                *(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))]
    runner = os.environ.get("CHROMEWEBDRIVER")
    drivers = [os.environ.get("CHROMEDRIVER"), "/usr/bin/chromedriver", shutil.which("chromedriver"),
               os.path.join(runner, "chromedriver") if runner else None]
    browser = next((b for b in browsers if b and os.access(b, os.X_OK)), None)
    driver = next((d for d in drivers if d and os.access(d, os.X_OK)), None)
    return (browser, driver) if browser and driver else None


def browser_required() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(root: Path):
    """A static HTTP server for ``root`` on 127.0.0.1 (a free port), in a thread: yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def start_browser(browser: str, driver: str):
    """A headless Chromium with a new empty profile, logging the console; quits and removes the profile after."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        chrome.set_page_load_timeout(60)
        chrome.set_script_timeout(60)
        chrome.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_ERRORS_JS})
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# What runs in the page: the two scripts of check_browser.js

SCRIPTS = Path(__file__).resolve().with_suffix(".js")
_SCRIPT_HEADER = re.compile(r"^// === (\w+) ===$", re.MULTILINE)


def page_scripts(path: Path = SCRIPTS) -> dict[str, str]:
    """The scripts of ``check_browser.js`` by name: each runs from its line ``// === <name> ===`` to the next."""
    parts = _SCRIPT_HEADER.split(path.read_text())
    return {name: body.strip("\n") + "\n" for name, body in zip(parts[1::2], parts[2::2])}


_SCRIPTS = page_scripts()
RECORD_ERRORS_JS = _SCRIPTS["record_errors"]  # before any script of every page: errors into window.__bookErrors
PROBE_JS = _SCRIPTS["probe"]  # once the page is open: waits for the images and MathJax, returns what the checks read


# ---------------------------------------------------------------------------------------------------------------
# The checks (pure Python on the probe's result, so that tests/test_browser.py can test them without a browser)

_FIELD = re.compile(r"\S+(?: \S+)*")  # a field: words separated by single spaces; columns: two or more


def _fields(line: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _FIELD.finditer(line)]


def text_tables(text: str) -> list[list[str]]:
    """Tables printed as plain text in ``text``: blocks of consecutive lines of which at least two have three or
    more columns (fields two or more spaces apart) whose right edges line up at two or more places, as pandas
    prints a DataFrame; and pandas' Series and DataFrame footers ('dtype:', '[N rows x M columns]')."""
    found, block = [], []
    for line in text.splitlines() + [""]:
        padded = len(line) - len(line.rstrip()) >= 2  # pandas pads an index-name line to the table's width
        if line.strip() and (len(_fields(line)) >= 2 or padded):
            block.append(line)
            continue
        wide = [ln for ln in block if len(_fields(ln)) >= 3]
        if len(wide) >= 2:
            ends = [{end for _, end, _ in _fields(ln)} for ln in wide]
            shared = set.intersection(*ends[1:]) if len(ends) > 2 else ends[0] & ends[1]
            if len(shared) >= 2:
                found.append(block)
        block = []
    for m in re.finditer(r"^.*(?:\bdtype: \w+|\[\d+ rows x \d+ columns\])\s*$", text, re.MULTILINE):
        found.append([m.group()])
    return found


def float_count_columns(head: list[str], body: list[list[str]]) -> list[tuple[str, list[str]]]:
    """Columns whose header names a count (runs, seeds, wins, ...) and whose every value is an integer written as a
    float ("20.0"). ``head`` holds the column headers, ``body`` the rows (right-aligned to the headers)."""
    found = []
    for j, name in enumerate(head):
        if not name or not COUNT_HEADER.search(name):
            continue
        col = [row[len(row) - len(head) + j] for row in body if len(row) - len(head) + j >= 0]
        col = [v for v in col if v]
        if col and all(FLOAT_INTEGER.match(v) for v in col):
            found.append((name, col))
    return found


def _text_table_columns(block: list[str]) -> tuple[list[str], list[list[str]]]:
    """A printed table's header (its first line with three or more fields) and rows, split at runs of 2+ spaces."""
    rows = [[f for _, _, f in _fields(ln)] for ln in block if len(_fields(ln)) >= 2]
    return (rows[0], rows[1:]) if rows else ([], [])


def notebook_outputs(notebook: Path) -> dict[str, int]:
    """How many images and HTML tables the notebook's committed outputs show in the HTML book (myst-nb's order of
    preference among each output's formats; outputs of cells tagged remove-output or remove-cell are not shown)."""
    nb = json.loads(notebook.read_text())
    counts = {"images": 0, "tables": 0}
    order = ["application/vnd.jupyter.widget-view+json", "application/javascript", "text/html", "image/svg+xml",
             "image/png", "image/jpeg", "text/markdown", "text/latex", "text/plain"]
    for cell in nb.get("cells", []):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.get("cell_type") != "code" or tags & {"remove-output", "remove_output", "remove-cell", "remove_cell"}:
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            mime = next((m for m in order if m in data), None)
            if mime == "text/html" and "<table" in "".join(data[mime]):
                counts["tables"] += 1
            elif mime and mime.startswith("image/"):
                counts["images"] += 1
    return counts


MIN_TICK_PX = 10  # the smallest legible tick label on screen


def tick_px(shown_width: float, natural_width: int) -> float:
    """Screen height of a tick label of a book figure (samlib.plots.style: TICK_PT points at savefig.dpi) whose
    PNG, ``natural_width`` pixels wide, is shown ``shown_width`` pixels wide."""
    return TICK_PT * FIGURE_DPI / 72 * shown_width / natural_width


def _allowed(message: str) -> str | None:
    return next((name for name, pattern, _ in ALLOWED_ERRORS if re.search(pattern, message)), None)


@dataclass(frozen=True)
class Reading:
    """One page as the browser showed it: the probe's result, the browser's log, and the address that the page's
    Colab button should start with (None: any)."""
    page: Page
    probe: dict
    log: Sequence[dict] = ()
    colab_prefix: str | None = None


@dataclass(frozen=True)
class Check:
    """One check of a page: ``find`` lists what fails it, each as the fields of ``message``."""
    name: str                                   # as printed: page: [name] detail
    find: Callable[[Reading], Iterable[dict]]
    message: str                                # str.format template over the fields of one thing found


def _listed(key: str, required: bool = True) -> Callable[[Reading], list]:
    """The probe's list ``key``, each entry a thing that fails (an optional key may be absent)."""
    return lambda r: r.probe[key] if required else r.probe.get(key, [])


def _texts(key: str, required: bool = True) -> Callable[[Reading], list[dict]]:
    """The probe's list of strings ``key``, each a thing that fails, as the field ``text``."""
    return lambda r: [{"text": t} for t in _listed(key, required)(r)]


def _js_errors(r: Reading) -> list[dict]:
    errors = [f"{e['kind']}: {e['message']}" for e in r.probe["errors"]]
    errors += [f"console ({e.get('source', 'browser')}): {e['message']}" for e in r.log
               if e.get("level") == "SEVERE" and not re.search(r"\.(png|jpe?g|svg|gif)\b", e["message"])]
    return [{"message": m} for m in dict.fromkeys(errors) if not _allowed(m)]


def _mathjax_not_started(r: Reading) -> list[dict]:
    return [{}] if r.probe["mathjax"]["script"] and not r.probe["mathjax"]["loaded"] else []


def _unloaded_images(r: Reading) -> list[dict]:
    return [img for img in r.probe["images"] if not (img["complete"] and img["naturalWidth"] > 0)]


def _illegible_figures(r: Reading) -> list[dict]:
    """Output figures whose tick labels, as the reader sees them, are too small."""
    shown = [(img, tick_px(img["width"], img["naturalWidth"])) for img in r.probe["images"]
             if img["inOutput"] and img["naturalWidth"] > 0]
    return [dict(img, px=px, min_px=MIN_TICK_PX) for img, px in shown if px < MIN_TICK_PX]


def _raw_texts(r: Reading) -> list[dict]:
    """One per block of text: the first kind of raw text found in it."""
    found, seen = [], set()
    for t in r.probe["texts"]:
        hit = next(((name, m) for name, pattern in RAW_TEXT if (m := pattern.search(t["text"]))), None)
        if hit and t["context"] not in seen:
            seen.add(t["context"])
            found.append(dict(t, kind=hit[0], match=hit[1].group()))
    return found


def _local_paths(r: Reading) -> list[dict]:
    """One per block of text: the build machine's file path in it."""
    found, seen = [], set()
    for t in r.probe["texts"]:
        if (m := LOCAL_PATH.search(t["text"])) and t["context"] not in seen:
            seen.add(t["context"])
            found.append(dict(t, path=m.group()))
    return found


def _uncaptioned_figures(r: Reading) -> list[dict]:
    return [f for f in r.probe["figures"] if not f["caption"]]


def _missing_outputs(r: Reading) -> list[dict]:
    if r.page.notebook is None:
        return []
    want, got = notebook_outputs(r.page.notebook), r.probe["outputCounts"]
    return [{"kind": kind, "want": want[kind], "got": got[kind]} for kind in ("images", "tables")
            if got[kind] < want[kind]]


def _empty_tables(r: Reading) -> list[dict]:
    return [t for t in r.probe["tables"]
            if not t["head"] or not t["body"] or not any(any(c for c in row) for row in t["body"])]


def _float_counts(where: str, head: list[str], body: list[list[str]]) -> list[dict]:
    return [{"where": where, "name": name, "values": ", ".join(col[:6])}
            for name, col in float_count_columns(head, body)]


def _html_float_counts(r: Reading) -> list[dict]:
    return [f for t in r.probe["tables"] for f in _float_counts(t["where"], t["head"], t["body"])]


def _printed_tables(r: Reading) -> list[tuple[dict, list[str]]]:
    """(output, block) for each table printed as text in a plain-text output."""
    return [(o, block) for o in r.probe["outputs"] for block in text_tables(o["text"])]


def _text_tables(r: Reading) -> list[dict]:
    return [{"where": o["where"], "first": " / ".join(ln.strip() for ln in block[:2])}
            for o, block in _printed_tables(r)]


def _printed_float_counts(r: Reading) -> list[dict]:
    return [f for o, block in _printed_tables(r) for f in _float_counts(o["where"], *_text_table_columns(block))]


def _no_launch_button(r: Reading) -> list[dict]:
    return [{}] if r.page.notebook is not None and not r.probe["launch"] else []


def _misdirected_launch_button(r: Reading) -> list[dict]:
    launch, prefix = r.probe["launch"], r.colab_prefix
    if r.page.notebook is None or not launch or not prefix or any(h.startswith(prefix) for h in launch):
        return []
    return [{"href": launch[0], "prefix": prefix}]


def _duplicate_scripts(r: Reading) -> list[dict]:
    return [{"key": key, "n": n} for key, n in collections.Counter(r.probe.get("scripts", [])).items() if n > 1]


def _code_scroll(r: Reading) -> list[dict]:
    return [dict(c, holds=c["chars"] * c["clientWidth"] // c["scrollWidth"]) for c in r.probe["codeScroll"]]


def _page_scrolls(r: Reading) -> list[dict]:
    page = r.probe["page"]
    return [page] if page["scrollWidth"] > page["clientWidth"] + 4 else []


# Every check of a page, in the order its failures are reported.
CHECKS = [
    Check("js-error", _js_errors, "{message}"),
    Check("image", _unloaded_images, "{where}: <img src={src!r}> did not load (naturalWidth {naturalWidth})"),
    Check("legibility", _illegible_figures, "{where}: <img src={src!r}> shown {width:.0f} of {naturalWidth} px wide: "
                                            "tick labels {px:.1f} px tall (< {min_px})"),
    Check("raw-text", _raw_texts, "{where}: {kind} {match!r} in \"{context}\""),
    Check("math-error", _texts("mathErrors"), "{text}"),
    Check("js-error", _mathjax_not_started, "the page loads MathJax, but MathJax did not start"),
    Check("caption", _texts("uncaptioned"), "output image without a 'Figure N.' caption after it: {text}"),
    Check("caption", _texts("lateCaptions", required=False), "a figure's caption is not directly under it: {text}"),
    Check("caption", _texts("orphanCaptions"), "caption with no image before it: {text}"),
    Check("caption", _uncaptioned_figures, "{where}: <figure> with image {src!r} has no caption"),
    Check("missing-output", _missing_outputs, "the notebook's outputs hold {want} {kind}, the page shows {got}"),
    Check("table", _empty_tables, "{where}: table without a header or rows: \"{text}\""),
    Check("float-count", _html_float_counts, "{where}: HTML table column {name!r} counts in floats: {values}"),
    Check("launch-button", _no_launch_button, "no Colab launch button on this notebook page"),
    Check("launch-button", _misdirected_launch_button, "the Colab button points at {href}, not {prefix}"),
    Check("explorer", lambda r: [x for x in r.probe["explorers"] if not x["statics"]],
          "{where}: the explorer \"{code}\" has no static counterpart (a cell tagged explorer-static in its section, "
          "or a next output image whose 'Figure N.' caption names the explorer)"),
    Check("explorer", lambda r: [x for x in r.probe["explorers"] if x["statics"] and not x["loaded"]],
          "{where}: the static counterpart of \"{code}\" shows no loaded image"),
    Check("duplicate-script", _duplicate_scripts, "the page loads the same script {n} times: {key}"),
    Check("narrow-cell", _listed("narrowCells", required=False),
          "{where}: a table cell {room} px wide holds the word {word!r}, {need} px wide, so it wraps mid-word"),
    Check("overflow", _listed("wideMath", required=False),
          "{where}: a display equation {width} px wide does not fit the {column} px column: \"{text}\""),
    Check("local-path", _local_paths, "{where}: the build machine's file path {path!r} in \"{context}\""),
    Check("overflow", _listed("overflow"),
          "{where}: <{tag} class=\"{cls}\"> is {scrollWidth} px wide in {clientWidth} px: \"{text}\""),
    Check("code-scroll", _code_scroll, "{where}: a code cell {scrollWidth} px wide scrolls in the {clientWidth} px "
                                       "column; its longest line has {chars} characters (the column holds about "
                                       "{holds}): \"{text}\""),
    Check("overflow", _page_scrolls, "the page scrolls sideways: {scrollWidth} px wide in {clientWidth} px"),
    Check("text-table", _text_tables, "{where}: a table printed as text, not HTML: \"{first}\""),
    Check("float-count", _printed_float_counts, "{where}: printed column {name!r} counts in floats: {values}"),
]


def analyse(page: Page, probe: dict, browser_log: Sequence[dict] = (), colab_prefix: str | None = None
            ) -> list[Failure]:
    """Every failure that the probe of one page shows: the checks of :data:`CHECKS`, in their order."""
    if "probeError" in probe:
        return [Failure(page.docname, "js-error", f"the page could not be probed: {probe['probeError']}")]
    reading = Reading(page, probe, browser_log, colab_prefix)
    return [Failure(page.docname, check.name, check.message.format(**found))
            for check in CHECKS for found in check.find(reading)]


# ---------------------------------------------------------------------------------------------------------------
# Running it

def screenshot(chrome, path: Path, height: int) -> None:
    """A full-page PNG: the whole scroll height at the window's width."""
    # The viewport is made as tall as the page for the shot (so nothing is stitched), then put back.
    metrics = chrome.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    height = min(max(int(size["height"]), height, WINDOW[1]), 60000)
    chrome.execute_script("window.scrollTo(0, 0)")
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WINDOW[0], "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        time.sleep(0.3)
        shot = chrome.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "fromSurface": True})
    finally:
        chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def check_pages(html_root: Path, pages: list[Page], screenshots: Path | None, browser: tuple[str, str] | None,
                use_file: bool = False, colab: str | None = None, log=print, check_index: bool = True,
                chrome=None) -> list[Failure]:
    """Open every page in one browser, check it and save its screenshot: the failures of all pages. ``browser``
    is (Chromium, ChromeDriver) to start one; or pass a running ``chrome`` (from :func:`start_browser`)."""
    failures: list[Failure] = []
    with contextlib.ExitStack() as stack:
        base = html_root.resolve().as_uri() + "/" if use_file else stack.enter_context(serve(html_root))
        chrome = chrome or stack.enter_context(start_browser(*browser))
        chrome.get_log("browser")  # drop what an earlier use of this browser left in its log
        # The reader lands on index.html, which Jupyter Book makes a redirect to the root page.
        if check_index and pages and (html_root / "index.html").is_file():
            chrome.get(base + "index.html")
            t0 = time.monotonic()
            while not chrome.current_url.endswith(pages[0].html) and time.monotonic() - t0 < 10:
                time.sleep(0.1)
            if not chrome.current_url.endswith(pages[0].html):
                failures.append(Failure("index", "missing-page", f"index.html leads to {chrome.current_url}, "
                                                                 f"not to the root page {pages[0].html}"))
        for page in pages:
            t0 = time.monotonic()
            if not (html_root / page.html).is_file():
                failures.append(Failure(page.docname, "missing-page", f"{page.html} is not in {html_root}"))
                continue
            for attempt in range(3):  # a probe that throws is retried on a fresh load, twice
                chrome.get(base + page.html)
                probe = json.loads(chrome.execute_async_script(PROBE_JS))
                if "probeError" not in probe:
                    break
                log(f"  {page.docname}: probe failed ({probe}), {'retrying' if attempt < 2 else 'giving up'}")
            log_entries = chrome.get_log("browser")
            prefix = f"{colab}/{page.docname}.ipynb" if colab and page.notebook else None
            found = analyse(page, probe, log_entries, prefix)
            if screenshots is not None and "probeError" not in probe:
                screenshot(chrome, screenshots / f"{page.name}.png", probe.get("height", 0))
            failures += found
            log(f"  {page.docname:<28} {'ok' if not found else f'{len(found)} failure(s)':<14} "
                f"{time.monotonic() - t0:4.1f} s")
    return failures


def colab_base(config: Path = ROOT / "_config.yml") -> str | None:
    """The Colab address of the book's notebooks, from _config.yml's repository and launch_buttons."""
    import yaml

    if not config.is_file():
        return None
    c = yaml.safe_load(config.read_text())
    repo, colab = c.get("repository", {}), c.get("launch_buttons", {}).get("colab_url")
    if not (colab and repo.get("url")):
        return None
    org_repo = re.sub(r"^https://github\.com/", "", repo["url"]).rstrip("/")
    path = repo.get("path_to_book", "").strip("/")
    return f"{colab.rstrip('/')}/github/{org_repo}/blob/{repo.get('branch', 'main')}" + (f"/{path}" if path else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book (_build/html)")
    parser.add_argument("--toc", type=Path, default=ROOT / "_toc.yml", help="the book's _toc.yml")
    parser.add_argument("--config", type=Path, default=ROOT / "_config.yml", help="the book's _config.yml")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots",
                        help="where the full-page PNGs go (_build/screenshots)")
    parser.add_argument("--file", action="store_true", help="open the pages from disk (file://), not over HTTP")
    parser.add_argument("--find", action="store_true", help="only print the browser and driver that would be used")
    parser.add_argument("pages", nargs="*", help="docnames to check (default: every page of the toc)")
    args = parser.parse_args(argv)

    browser = find_browser()
    if args.find:
        print(f"browser: {browser[0]}\ndriver: {browser[1]}" if browser else f"no browser found: {HOW_TO_GET}")
        return 0 if browser else 1
    if browser is None:
        bar = "!" * 100
        if browser_required():
            print(f"{bar}\nFAILED: the browser test of the book cannot run (CI is set): no Chromium and ChromeDriver "
                  f"found.\nTo get them, {HOW_TO_GET}.\n{bar}", file=sys.stderr)
            return 2
        print(f"{bar}\nSKIPPED: the browser test of the book did not run: no Chromium and ChromeDriver found.\n"
              f"To get them, {HOW_TO_GET}.\n{bar}", file=sys.stderr)
        return 0

    pages = toc_pages(args.toc)
    if args.pages:
        pages = [p for p in pages if p.docname in args.pages or p.name in args.pages]
    print(f"browser check of {args.html} ({'file://' if args.file else 'http://127.0.0.1'}, {len(pages)} pages, "
          f"{browser[0]}); screenshots in {args.screenshots}")
    t0 = time.monotonic()
    failures = check_pages(args.html, pages, args.screenshots, browser, args.file, colab_base(args.config),
                           check_index=not args.pages)
    by_check: dict[str, int] = {}
    for f in failures:
        by_check[f.check] = by_check.get(f.check, 0) + 1
    if failures:
        print("\nbrowser check failures (page: [check] detail):")
        for f in failures:
            print(f"  {f}")
    passed = sum(p.docname not in {f.page for f in failures} for p in pages)
    print(f"\nbrowser check: {passed} of {len(pages)} pages passed, "
          f"{len(failures)} failures ({', '.join(f'{k} {v}' for k, v in sorted(by_check.items())) or 'none'}), "
          f"{time.monotonic() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
