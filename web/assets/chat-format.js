// The one way chat text becomes part of a page, on both sides of web chat (the visitor's
// page and the operator console): **bold**, _italic_, lines starting "- " as a list and
// http(s) addresses as links. Everything else — markup included — stays text: this file
// builds nodes with createElement / createTextNode only, never innerHTML.

// Bold inside italic inside bold…: deeper than this is left as text.
const MAX_DEPTH = 6;
// An address starts with http:// or https:// and runs to the next space (or <, >, ").
const URL_AT = /https?:\/\/[^\s<>"]+/iy;
const WORD = /[\p{L}\p{N}_]/u;
const ALNUM = /[\p{L}\p{N}]/u;
const SPACE = /\s/;
// Taken off the end of an address: "see https://example.com/a." means the page a.
const TRAILING = '.,;:!?\'"*_';

/** The chat text `text` as a DocumentFragment (safe to append anywhere). */
export function renderText(text) {
  const frag = document.createDocumentFragment();
  if (text === null || text === undefined) return frag;
  const lines = String(text).replace(/\r\n?/g, '\n').split('\n');
  let list = null;
  let afterLine = false; // the last thing added was a line of text: a <br> goes before the next
  for (const line of lines) {
    const item = /^ {0,3}- /.exec(line);
    if (item) {
      if (!list) {
        list = document.createElement('ul');
        frag.appendChild(list);
      }
      const li = document.createElement('li');
      inline(line.slice(item[0].length), li, 0);
      list.appendChild(li);
      afterLine = false;
    } else {
      list = null;
      if (afterLine) frag.appendChild(document.createElement('br'));
      inline(line, frag, 0);
      afterLine = true;
    }
  }
  return frag;
}

/** `ms` (unix milliseconds) as HH:MM in the browser's time zone; '' when not a time. */
export function formatTime(ms) {
  if (ms === null || ms === undefined || ms === '') return '';
  const d = new Date(Number(ms));
  if (!Number.isFinite(d.getTime())) return '';
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** A file size for people: "820 B", "14 KB", "3.4 MB" (1 MB = 1024 × 1024 bytes). */
export function formatSize(bytes) {
  const n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  const mb = n / (1024 * 1024);
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB`;
}

function isWord(text, i) {
  return i >= 0 && i < text.length && WORD.test(text[i]);
}

function isSpace(text, i) {
  return i < 0 || i >= text.length || SPACE.test(text[i]);
}

// One line (or the inside of a bold / italic run) into `parent`.
function inline(text, parent, depth) {
  // Addresses first: a * or _ inside one is part of it, never the end of a bold run.
  const urls = findUrls(text);
  const inUrl = (j) => urls.some(([s, e]) => j >= s && j < e);
  let next = 0; // the next address in `urls`
  let plain = '';
  // Once an opener found no closer, no later opener of that kind can find one either:
  // remembering it keeps a long line of stray * or _ linear.
  let noBold = false;
  let noItalic = false;
  const flush = () => {
    if (plain) parent.appendChild(document.createTextNode(plain));
    plain = '';
  };
  let i = 0;
  while (i < text.length) {
    while (next < urls.length && urls[next][0] < i) next += 1;
    if (next < urls.length && urls[next][0] === i) {
      flush();
      parent.appendChild(link(text.slice(i, urls[next][1])));
      i = urls[next][1];
      continue;
    }
    const c = text[i];
    if (c === '*' && text[i + 1] === '*' && !noBold && depth < MAX_DEPTH && !isSpace(text, i + 2)) {
      const close = boldClose(text, i, inUrl);
      if (close < 0) noBold = true;
      else {
        flush();
        const b = document.createElement('strong');
        inline(text.slice(i + 2, close), b, depth + 1);
        parent.appendChild(b);
        i = close + 2;
        continue;
      }
    }
    if (c === '_' && !noItalic && depth < MAX_DEPTH && !isWord(text, i - 1)
        && !isSpace(text, i + 1) && text[i + 1] !== '_') {
      const close = italicClose(text, i, inUrl);
      if (close < 0) noItalic = true;
      else {
        flush();
        const em = document.createElement('em');
        inline(text.slice(i + 1, close), em, depth + 1);
        parent.appendChild(em);
        i = close + 1;
        continue;
      }
    }
    plain += c;
    i += 1;
  }
  flush();
}

// [start, end) of every address in `text`.
function findUrls(text) {
  const found = [];
  const re = /https?:\/\//gi;
  let m;
  while ((m = re.exec(text))) {
    // "xhttp://…" is a word, not an address; "(http://…" and "_http://…" are addresses.
    if (m.index > 0 && ALNUM.test(text[m.index - 1])) continue;
    const end = urlEnd(text, m.index);
    if (end > m.index) {
      found.push([m.index, end]);
      re.lastIndex = end;
    }
  }
  return found;
}

// The index of the "**" closing the bold run opened at `open`, or -1.
function boldClose(text, open, inUrl) {
  for (let j = text.indexOf('**', open + 3); j >= 0; j = text.indexOf('**', j + 1)) {
    if (!isSpace(text, j - 1) && !inUrl(j)) return j;
  }
  return -1;
}

// The index of the "_" closing the italic run opened at `open`, or -1. A closer ends a
// word: snake_case_names stay as they are.
function italicClose(text, open, inUrl) {
  for (let j = text.indexOf('_', open + 2); j >= 0; j = text.indexOf('_', j + 1)) {
    if (!isSpace(text, j - 1) && !isWord(text, j + 1) && !inUrl(j)) return j;
  }
  return -1;
}

// Where the address starting at `i` ends, or -1 when there is none.
function urlEnd(text, i) {
  URL_AT.lastIndex = i;
  const m = URL_AT.exec(text);
  if (!m) return -1;
  let url = m[0];
  for (;;) {
    const last = url[url.length - 1];
    if (TRAILING.includes(last)) url = url.slice(0, -1);
    else if (last === ')' && count(url, '(') < count(url, ')')) url = url.slice(0, -1);
    else if (last === ']' && count(url, '[') < count(url, ']')) url = url.slice(0, -1);
    else break;
  }
  try {
    const u = new URL(url);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) return -1;
  } catch (e) {
    return -1;
  }
  return i + url.length;
}

function count(s, ch) {
  let n = 0;
  for (const c of s) if (c === ch) n += 1;
  return n;
}

function link(url) {
  const a = document.createElement('a');
  a.setAttribute('href', url);
  a.setAttribute('rel', 'noopener noreferrer');
  a.setAttribute('target', '_blank');
  a.appendChild(document.createTextNode(url));
  return a;
}
