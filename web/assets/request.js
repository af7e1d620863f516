// One way for every page script to talk HTTP to the daemon: the CSRF header, a JSON, form
// or file body, and an answer that always has a sentence to show when it failed.
//
//   const res = await request('POST', '/console/tasks', { title });
//   if (!res.ok) complain(res.error);
//
// The answer: { ok, status, body, error, serverError }
// - body: the JSON the server answered (an object), or {} when it answered no JSON;
// - serverError: the server's own words ({ error } or { message }), or null;
// - error: serverError, or a sentence about the status; null when the request went
//   through, or when the server answered JSON without saying why (the caller's own
//   sentence then). Also set on body.error, for callers that read res.body.error.
// status is 0 when the server could not be reached at all.

// The session's CSRF token: the page puts it on an element as data-csrf (pages without a
// session, like the visitor's chat and the customer's page, have none and send none).
export function csrfToken() {
  return document.querySelector('[data-csrf]')?.dataset.csrf ?? '';
}

function isRawBody(body) {
  return body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)
    || body instanceof URLSearchParams;
}

// `body`: undefined (none), FormData (multipart), a Blob/File (sent as it is, with its type
// unless `type` says otherwise), or anything else (JSON).
// `opts`: { csrf, type, headers, onProgress(loaded, total) for an upload's progress }.
export async function request(method, url, body, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  const csrf = opts.csrf ?? csrfToken();
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const init = { method, headers, credentials: 'same-origin' };
  if (body instanceof FormData) {
    init.body = body;
  } else if (isRawBody(body)) {
    const type = opts.type || body.type || 'application/octet-stream';
    if (!(body instanceof URLSearchParams)) headers['Content-Type'] = type;
    init.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = opts.onProgress ? await viaXhr(url, init, opts.onProgress) : await viaFetch(url, init);
  if (!res) return failed(0, {}, null, 'The server could not be reached. Try again.');
  // A lapsed session is answered with the login page.
  if (res.redirected && new URL(res.url).pathname === '/login') {
    return failed(401, {}, null, 'You have been logged out. Reload the page to log in again.');
  }
  const json = method === 'HEAD' ? null : parseObject(res.text);
  if (res.ok) return { ok: true, status: res.status, body: json ?? {}, error: null, serverError: null };
  const said = json && (json.error || json.message);
  const serverError = typeof said === 'string' && said ? said : null;
  // An answer without JSON (a proxy's page, a crash) gets a sentence about its status; a
  // JSON answer that says nothing leaves the page's own sentence (`res.error || '…'`).
  const error = serverError || statusText(res.status, json === null);
  return failed(res.status, json ?? {}, serverError, error);
}

// The answer as { ok, status, redirected, url, text }, or null when nothing came back.
async function viaFetch(url, init) {
  try {
    const res = await fetch(url, init);
    const text = await res.text().catch(() => '');
    return { ok: res.ok, status: res.status, redirected: res.redirected, url: res.url, text };
  } catch {
    return null;
  }
}

// The same through XMLHttpRequest, the one way to see an upload's progress.
function viaXhr(url, init, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(init.method, url);
    for (const [k, v] of Object.entries(init.headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    };
    xhr.onload = () => {
      const asked = new URL(url, location.href).href;
      resolve({
        ok: xhr.status >= 200 && xhr.status < 300,
        status: xhr.status,
        redirected: Boolean(xhr.responseURL) && xhr.responseURL !== asked,
        url: xhr.responseURL || asked,
        text: xhr.responseText,
      });
    };
    xhr.onerror = () => resolve(null);
    xhr.send(init.body ?? null);
  });
}

function parseObject(text) {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

function failed(status, body, serverError, error) {
  body.error = error;
  return { ok: false, status, body, error, serverError };
}

function statusText(status, noJson) {
  if (status === 401) return 'You have been logged out. Reload the page to log in again.';
  if (status === 403 && noJson) return 'This page has expired. Reload it and try again.';
  if (status === 413) return 'The files are too big to send.';
  if (status === 429) return 'Too many requests right now. Try again in a minute.';
  return noJson ? `The server answered ${status}. Reload the page and try again.` : null;
}

// Shows a failed request's sentence (or `fallback` when it has none) in `el`; clears `el`
// when the request went through. Returns res.ok.
export function report(el, res, fallback, okText = '') {
  if (el) el.textContent = res.ok ? okText : (res.error || fallback);
  return res.ok;
}
