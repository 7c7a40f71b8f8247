#!/usr/bin/env python3
"""Read the built HTML book in a real browser, page by page, as a reader would.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) opens every page of
``_toc.yml`` from a local HTTP server on 127.0.0.1, as GitHub Pages serves it (``--file`` opens the files from
disk instead, as a reader who downloaded the book would). Every host but 127.0.0.1 is unreachable to the browser
(``--host-resolver-rules``), here and on a runner with a network alike, so a page that still needs a CDN fails the
same way everywhere. On every page it checks:

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
# What runs in the page

RECORD_ERRORS_JS = r"""
window.__bookErrors = [];
window.addEventListener('error', (e) => {
  if (e instanceof ErrorEvent) {
    window.__bookErrors.push({kind: 'uncaught', message: `${e.message} (${e.filename}:${e.lineno})`});
  } else if (e.target && e.target.tagName && e.target.tagName !== 'IMG') {
    const t = e.target;
    window.__bookErrors.push({kind: 'failed load', message: `<${t.tagName.toLowerCase()}> ${t.src || t.href}`});
  }
}, true);
window.addEventListener('unhandledrejection', (e) => {
  const r = e.reason;
  window.__bookErrors.push({kind: 'unhandled rejection', message: String(r && (r.stack || r.message) || r)});
});
const __consoleError = console.error;
console.error = function (...args) {
  window.__bookErrors.push({kind: 'console.error', message: args.map(String).join(' ')});
  return __consoleError.apply(this, args);
};
"""

# Waits for the images and MathJax, then returns everything the checks need.
PROBE_JS = r"""
const done = arguments[arguments.length - 1];
let stage = 'start';
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const tLoad = Date.now();
  while ((document.readyState !== 'complete' || !document.body) && Date.now() - tLoad < 20000) await sleep(50);
  // Images: load every one, lazy ones too, then wait (10 s at most) until each has loaded or failed.
  for (const img of document.images) img.loading = 'eager';
  const t0 = Date.now();
  while ([...document.images].some((i) => !i.complete) && Date.now() - t0 < 10000) await sleep(50);
  // MathJax: wait until its first typesetting is over (20 s at most).
  const hasMathJax = !!document.querySelector('script[src*="mathjax"]');
  if (hasMathJax) {
    const t1 = Date.now();
    const failed = () => (window.__bookErrors || []).some((e) => e.kind === 'failed load' &&
                                                                 /mathjax/i.test(e.message));
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && !failed() && Date.now() - t1 < 20000) {
      await sleep(50);
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await Promise.race([MathJax.startup.promise, sleep(20000)]);
    }
  }
  await sleep(100);

  const text = (el) => (el.innerText || el.textContent || '').trim();
  const shown = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const short = (s, n = 160) => (s.length > n ? s.slice(0, n) + '...' : s).replace(/\s+/g, ' ');
  const where = (el) => {
    const s = el.closest('section'); const h = s && s.querySelector('h1, h2, h3');
    return h ? `section "${text(h).replace(/#$/, '').replace(/\s+/g, ' ')}"` : 'page';
  };

  stage = 'text';
  // Visible prose and output text (not code input, not typeset math), for placeholders and raw LaTeX.
  const skip = 'script, style, noscript, .cell_input, code.literal, mjx-container, mjx-assistive-mml, .MathJax, ' +
               'nav, .bd-sidebar-primary, .bd-sidebar-secondary, .header-article, .bd-header, .bd-footer, footer';
  const codeBlock = (el) => {
    const b = el.closest('div[class*="highlight"]'); return b && !b.closest('.cell_output');
  };
  const texts = [];
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || !n.textContent.trim() || el.closest(skip) || codeBlock(el) || !shown(el)) continue;
    const block = el.closest('p, li, td, th, pre, div') || el;
    texts.push({text: n.textContent, where: where(el), context: short(text(block), 200)});
  }

  stage = 'images';
  const images = [...document.images].map((img) => ({
    src: img.getAttribute('src'), alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
    width: img.getBoundingClientRect().width, inOutput: !!img.closest('.cell_output'), where: where(img)}));

  stage = 'captions';
  // Captions: an output image is followed (before the next image) by a paragraph "Figure N."; and back.
  const isCaption = (el) => el.tagName === 'P' && /^\s*Figure\s+\d+[A-Za-z]?[.:]/.test(text(el));
  const hasOutputImage = (el) => !!(el.matches('.cell') && el.querySelector('.cell_output img'));
  const uncaptioned = [], orphanCaptions = [], lateCaptions = [];
  for (const cell of document.querySelectorAll('div.cell')) {
    if (!hasOutputImage(cell)) continue;
    let ok = false;
    for (let e = cell.nextElementSibling; e && !hasOutputImage(e) && !/^H[1-6]$/.test(e.tagName) &&
         e.tagName !== 'SECTION'; e = e.nextElementSibling) {
      if (isCaption(e)) { ok = true; break; }
    }
    const what = `${where(cell)}: image ${cell.querySelector('.cell_output img').getAttribute('src')} ` +
                 `after the code "${short(text(cell.querySelector('.cell_input') || cell), 80)}"`;
    if (!ok) uncaptioned.push(what);
    else if (!(cell.nextElementSibling && isCaption(cell.nextElementSibling))) {
      const between = cell.nextElementSibling;
      lateCaptions.push(`${what}: the next element is <${between.tagName.toLowerCase()}> ` +
                        `"${short(text(between), 60)}", not its caption`);
    }
  }
  for (const p of document.querySelectorAll('main p')) {
    if (!isCaption(p)) continue;
    let ok = false;
    for (let e = p.previousElementSibling; e && !/^H[1-6]$/.test(e.tagName); e = e.previousElementSibling) {
      if (hasOutputImage(e) || e.matches('figure') || e.querySelector('img')) { ok = true; break; }
    }
    if (!ok) orphanCaptions.push(`${where(p)}: "${short(text(p), 100)}"`);
  }
  const figures = [...document.querySelectorAll('main figure')].map((f) => ({
    caption: f.querySelector('figcaption') ? text(f.querySelector('figcaption')) : null, where: where(f),
    src: f.querySelector('img') ? f.querySelector('img').getAttribute('src') : null}));

  stage = 'tables';
  const tables = [...document.querySelectorAll('main table')].map((t) => {
    const rows = [...t.querySelectorAll('tr')];
    const headerRows = t.tHead ? [...t.tHead.rows]
                               : rows.filter((r) => r.querySelector('th') && !r.querySelector('td'));
    const bodyRows = rows.filter((r) => !headerRows.includes(r));
    // Column headers: the last header row's cells, aligned to the right of the body's cells.
    const head = headerRows.length ? [...headerRows[headerRows.length - 1].cells].map(text) : [];
    const body = bodyRows.map((r) => [...r.cells].map(text));
    return {inOutput: !!t.closest('.cell_output'), where: where(t), head,
            headerRows: headerRows.map((r) => [...r.cells].map(text)), body,
            cells: t.querySelectorAll('td, th').length, text: short(text(t), 120)};
  });

  stage = 'overflow';
  // Readability: output blocks (and the page) that scroll sideways.
  const overflow = [];
  for (const el of document.querySelectorAll('.cell_output, .cell_output *')) {
    if (el.scrollWidth > el.clientWidth + 4 && el.clientWidth > 0 &&
        !['visible'].includes(getComputedStyle(el).overflowX) && !el.matches('mjx-container, mjx-container *')) {
      overflow.push({where: where(el), tag: el.tagName.toLowerCase(), cls: String(el.getAttribute('class') || ''),
                     scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, text: short(text(el), 120)});
    }
  }
  const page = {scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth};
  // A visible code cell whose lines are wider than the column scrolls sideways: the reader loses its end.
  const codeScroll = [];
  for (const pre of document.querySelectorAll('.cell_input pre')) {
    if (pre.clientWidth > 0 && pre.scrollWidth > pre.clientWidth + 2) {
      const longest = (pre.textContent || '').split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
      codeScroll.push({where: where(pre), scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth,
                       chars: longest.length, text: short(longest, 120)});
    }
  }

  stage = 'outputs';
  // Plain-text outputs (streams and text/plain), for tables printed as text.
  const outputs = [...document.querySelectorAll('.cell_output .output.stream, .cell_output .output.text_plain')]
    .map((o) => ({where: where(o), text: o.innerText || o.textContent}));
  const outputCounts = {images: document.querySelectorAll('.cell_output img').length,
                        tables: document.querySelectorAll('.cell_output table').length};

  const launch = [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map((a) => a.href);

  stage = 'explorers';
  // Widget explorers and their static counterparts: an element of class explorer-static (a cell tagged
  // explorer-static) in the explorer's section, or the first output image after the explorer in its section
  // when that image's 'Figure N.' caption names the explorer.
  const explorers = [...document.querySelectorAll('div.cell')].filter((c) => {
    const input = c.querySelector('.cell_input'); return input && /\b\w+_explorer\s*\(/.test(text(input));
  }).map((c) => {
    const section = c.closest('section') || document.body;
    const statics = [...section.querySelectorAll('.explorer-static, .tag_explorer-static')];
    let next = c.nextElementSibling;
    while (next && !hasOutputImage(next) && !/^H[1-6]$/.test(next.tagName) && next.tagName !== 'SECTION') {
      next = next.nextElementSibling;
    }
    if (next && hasOutputImage(next)) {
      for (let e = next.nextElementSibling; e && !hasOutputImage(e) && !/^H[1-6]$/.test(e.tagName) &&
           e.tagName !== 'SECTION'; e = e.nextElementSibling) {
        if (isCaption(e)) { if (/explorer/i.test(text(e)) && !statics.includes(next)) statics.push(next); break; }
      }
    }
    const imgs = statics.flatMap((s) => (s.tagName === 'IMG' ? [s] : [...s.querySelectorAll('img')]));
    return {where: where(c), code: short(text(c.querySelector('.cell_input')), 100), statics: statics.length,
            loaded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length, images: imgs.length};
  });

  stage = 'scripts';
  // Scripts: each file or inline body once.
  const scripts = [...document.scripts].map((s) => (s.src ? `src ${s.getAttribute('src')}`
                                                          : `inline ${short(s.textContent.trim(), 120)}`));

  stage = 'words';
  // Table cells narrower than their longest word (measured in the cell's own font), and display equations
  // wider than the column they sit in.
  const canvas = document.createElement('canvas').getContext('2d');
  const narrowCells = [];
  for (const cell of document.querySelectorAll('main td, main th')) {
    // A header may wrap after a word's own hyphen ("held-/out"); a data cell never wraps.
    const words = text(cell).split(cell.tagName === 'TH' ? /\s+|(?<=-)/ : /\s+/).filter((w) => w);
    if (!words.length || !shown(cell)) continue;
    const style = getComputedStyle(cell);
    canvas.font = style.font || `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const longest = words.reduce((a, b) => (canvas.measureText(b).width > canvas.measureText(a).width ? b : a));
    const room = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const need = canvas.measureText(longest).width;
    if (need > room + 1) {
      narrowCells.push({where: where(cell), word: longest, need: Math.round(need), room: Math.round(room)});
    }
  }
  // An equation that the theme lets scroll in its own box still hides its end from a reader: it must fit.
  const wideMath = [];
  for (const m of document.querySelectorAll('mjx-container[display="true"]')) {
    const column = (m.closest('article, main') || document.body).getBoundingClientRect();
    const r = m.getBoundingClientRect();
    const inner = m.firstElementChild ? m.firstElementChild.getBoundingClientRect() : r;
    if (inner.right > column.right + 2 || inner.left < column.left - 2 || m.scrollWidth > m.clientWidth + 2) {
      wideMath.push({where: where(m), width: Math.round(inner.width), column: Math.round(column.width),
                     text: short(m.getAttribute('aria-label') || text(m), 80)});
    }
  }

  const mathErrors = [...document.querySelectorAll('mjx-merror, .MathJax_Error')].map((e) =>
    `${where(e)}: ${e.getAttribute('data-mjx-error') || text(e)}`);
  const mathjax = {script: hasMathJax, loaded: !!(window.MathJax && MathJax.version),
                   version: String(window.MathJax && MathJax.version),
                   typeset: document.querySelectorAll('mjx-container').length};

  done(JSON.stringify({errors: window.__bookErrors || [], texts, images, uncaptioned, orphanCaptions, figures, tables,
        overflow, page, outputs, outputCounts, launch, explorers, mathErrors, mathjax, scripts, narrowCells, wideMath,
        lateCaptions, codeScroll,
        height: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)}));
})().catch((e) => done(JSON.stringify({probeError: `${stage}: ${e && e.stack || e}`, url: location.href,
                                         readyState: document.readyState, body: !!document.body})));
"""


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


def analyse(page: Page, probe: dict, browser_log: list[dict] = (), colab_prefix: str | None = None) -> list[Failure]:
    """Every failure that the probe of one page shows."""
    out: list[Failure] = []

    def fail(check: str, detail: str):
        out.append(Failure(page.docname, check, detail))

    if "probeError" in probe:
        fail("js-error", f"the page could not be probed: {probe['probeError']}")
        return out

    errors = [f"{e['kind']}: {e['message']}" for e in probe["errors"]]
    errors += [f"console ({e.get('source', 'browser')}): {e['message']}" for e in browser_log
               if e.get("level") == "SEVERE" and not re.search(r"\.(png|jpe?g|svg|gif)\b", e["message"])]
    for message in dict.fromkeys(errors):
        if not _allowed(message):
            fail("js-error", message)

    for img in probe["images"]:
        if not (img["complete"] and img["naturalWidth"] > 0):
            fail("image", f"{img['where']}: <img src={img['src']!r}> did not load (naturalWidth {img['naturalWidth']})")

    for img in probe["images"]:  # tick labels of an output figure, as the reader sees them
        if not (img["inOutput"] and img["naturalWidth"] > 0):
            continue
        if (px := tick_px(img["width"], img["naturalWidth"])) < MIN_TICK_PX:
            fail("legibility", f"{img['where']}: <img src={img['src']!r}> shown {img['width']:.0f} of "
                               f"{img['naturalWidth']} px wide: tick labels {px:.1f} px tall (< {MIN_TICK_PX})")

    seen = set()
    for t in probe["texts"]:  # one failure per block of text: the first kind of raw text found in it
        hit = next(((name, m) for name, pattern in RAW_TEXT if (m := pattern.search(t["text"]))), None)
        if hit and t["context"] not in seen:
            seen.add(t["context"])
            fail("raw-text", f"{t['where']}: {hit[0]} {hit[1].group()!r} in \"{t['context']}\"")
    for e in probe["mathErrors"]:
        fail("math-error", e)
    if probe["mathjax"]["script"] and not probe["mathjax"]["loaded"]:
        fail("js-error", "the page loads MathJax, but MathJax did not start")

    for u in probe["uncaptioned"]:
        fail("caption", f"output image without a 'Figure N.' caption after it: {u}")
    for c in probe.get("lateCaptions", []):
        fail("caption", f"a figure's caption is not directly under it: {c}")
    for c in probe["orphanCaptions"]:
        fail("caption", f"caption with no image before it: {c}")
    for f in probe["figures"]:
        if not f["caption"]:
            fail("caption", f"{f['where']}: <figure> with image {f['src']!r} has no caption")

    if page.notebook is not None:
        want = notebook_outputs(page.notebook)
        got = probe["outputCounts"]
        for kind in ("images", "tables"):
            if got[kind] < want[kind]:
                fail("missing-output", f"the notebook's outputs hold {want[kind]} {kind}, the page shows {got[kind]}")
    for t in probe["tables"]:
        if not t["head"] or not t["body"] or not any(any(c for c in row) for row in t["body"]):
            fail("table", f"{t['where']}: table without a header or rows: \"{t['text']}\"")
        for name, col in float_count_columns(t["head"], t["body"]):
            fail("float-count", f"{t['where']}: HTML table column {name!r} counts in floats: {', '.join(col[:6])}")

    if page.notebook is not None:
        if not probe["launch"]:
            fail("launch-button", "no Colab launch button on this notebook page")
        elif colab_prefix and not any(h.startswith(colab_prefix) for h in probe["launch"]):
            fail("launch-button", f"the Colab button points at {probe['launch'][0]}, not {colab_prefix}")

    for x in probe["explorers"]:
        if not x["statics"]:
            fail("explorer", f"{x['where']}: the explorer \"{x['code']}\" has no static counterpart (a cell tagged "
                             "explorer-static in its section, or a next output image whose 'Figure N.' caption "
                             "names the explorer)")
        elif not x["loaded"]:
            fail("explorer", f"{x['where']}: the static counterpart of \"{x['code']}\" shows no loaded image")

    for key, n in collections.Counter(probe.get("scripts", [])).items():
        if n > 1:
            fail("duplicate-script", f"the page loads the same script {n} times: {key}")
    for c in probe.get("narrowCells", []):
        fail("narrow-cell", f"{c['where']}: a table cell {c['room']} px wide holds the word {c['word']!r}, "
                            f"{c['need']} px wide, so it wraps mid-word")
    for m in probe.get("wideMath", []):
        fail("overflow", f"{m['where']}: a display equation {m['width']} px wide does not fit the {m['column']} px "
                         f"column: \"{m['text']}\"")
    seen_paths = set()
    for t in probe["texts"]:
        if (m := LOCAL_PATH.search(t["text"])) and t["context"] not in seen_paths:
            seen_paths.add(t["context"])
            fail("local-path", f"{t['where']}: the build machine's file path {m.group()!r} in \"{t['context']}\"")

    for o in probe["overflow"]:
        fail("overflow", f"{o['where']}: <{o['tag']} class=\"{o['cls']}\"> is {o['scrollWidth']} px wide in "
                         f"{o['clientWidth']} px: \"{o['text']}\"")
    for c in probe["codeScroll"]:
        fail("code-scroll", f"{c['where']}: a code cell {c['scrollWidth']} px wide scrolls in the "
                            f"{c['clientWidth']} px column; its longest line has {c['chars']} characters (the "
                            f"column holds about {c['chars'] * c['clientWidth'] // c['scrollWidth']}): \"{c['text']}\"")
    if probe["page"]["scrollWidth"] > probe["page"]["clientWidth"] + 4:
        fail("overflow", f"the page scrolls sideways: {probe['page']['scrollWidth']} px wide in "
                         f"{probe['page']['clientWidth']} px")
    for o in probe["outputs"]:
        for block in text_tables(o["text"]):
            first = " / ".join(ln.strip() for ln in block[:2])
            fail("text-table", f"{o['where']}: a table printed as text, not HTML: \"{first}\"")
            head, body = _text_table_columns(block)
            for name, col in float_count_columns(head, body):
                fail("float-count", f"{o['where']}: printed column {name!r} counts in floats: {', '.join(col[:6])}")
    return out


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
