// What .ci/check_browser.py runs inside each page of the book. It reads this file when it starts and splits it at
// the lines '// === <name> ===' into its two scripts:
//   record_errors  runs before any script of every page (Page.addScriptToEvaluateOnNewDocument): it records
//                  uncaught errors, rejected promises, console.error and failed loads in window.__bookErrors;
//   probe          runs once the page is open (execute_async_script): it waits for the images and MathJax, then
//                  returns, as JSON, everything the checks of check_browser.py read.

// === record_errors ===
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

// === probe ===
// Waits for the images and MathJax, then returns everything the checks need.
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
