// Shared helpers of the dashboard: API calls, DOM building, formatting,
// dialogs and toasts. No framework and no build step: plain ES modules that
// the browser loads as they are.

const KEY_STORAGE = 'acceptd.apiKey';

// Relative to the page (…/ui/), so that a reverse proxy's path prefix is kept.
export function apiUrl(path, params) {
  const url = new URL('../' + path.replace(/^\//, ''), document.baseURI);
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
    }
  }
  return url;
}

export function apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ''; }
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key); else sessionStorage.removeItem(KEY_STORAGE);
}

export function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: 'Bearer ' + key } : extra;
}

// An API error: status, the problem document's detail (RFC 9457) if any.
export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// fetch() with the key; JSON in and out. `raw`: return the Response itself.
export async function api(path, { method = 'GET', params, body, raw = false, signal, redirect = 'follow' } = {}) {
  const headers = authHeaders(body !== undefined ? { 'Content-Type': 'application/json' } : {});
  const res = await fetch(apiUrl(path, params), {
    method, headers, signal, redirect, body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (res.type === 'opaqueredirect') return res;  // redirect: 'manual' (a succeeded job's status)
  if (res.status === 401) {
    onUnauthorized(apiKey() ? 'That key was refused.' : '');
    throw new ApiError(401, 'an API key is needed');
  }
  if (!res.ok && res.status !== 202 && !(res.status >= 300 && res.status < 400)) {
    let problem = null;
    try { problem = await res.json(); } catch { /* not a problem document */ }
    throw new ApiError(res.status, problem?.detail || problem?.title || res.statusText, problem);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// el('div', {class: 'x', onclick: fn}, 'text', child, [children]) -> Element.
// Text is always set as text (never parsed as HTML): payloads may hold anything.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'style') Object.assign(node.style, v);  // CSSOM: allowed by the CSP
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'checked' || k === 'value' || k === 'disabled' || k === 'selected') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  append(node, children);
  return node;
}

// Replaces node's children (null, false and undefined are skipped, arrays flattened).
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  append(node, children);
  return node;
}

export const STATES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];

export function stateBadge(state, extra) {
  return el('span', { class: `badge state-${state}` }, state, extra ? ` ${extra}` : '');
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return '–';
  return Number(n).toLocaleString('en-US');
}

// "3 s", "4 min", "2 h 5 min", "3 d".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return '–';
  const t = Date.parse(iso);
  const d = now - t;
  if (d < 0) return 'in ' + fmtDuration(-d);
  if (d < 1500) return 'just now';
  return fmtDuration(d) + ' ago';
}

// 2026-12-05 12:34:56.789 (UTC: what the API and the logs say).
export function fmtTime(iso) {
  if (!iso) return '–';
  return iso.replace('T', ' ').replace(/Z$/, ' UTC');
}

export function timeCell(iso) {
  return iso ? el('time', { datetime: iso, title: fmtTime(iso) }, fmtAgo(iso)) : el('span', { class: 'muted' }, '–');
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function shortId(id) { return id.length > 12 ? id.slice(0, 8) + '…' + id.slice(-4) : id; }

// Calls fn at most once per `ms` (the first call at once, the last one of a
// burst after the interval): live events never turn into a request storm.
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (wait <= 0 && !timer) {
      last = Date.now();
      fn(...args);
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn(...args);
      }, Math.max(wait, 0));
    }
  };
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const t = el('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(t);
  setTimeout(() => t.classList.add('gone'), kind === 'error' ? 6000 : 3000);
  setTimeout(() => t.remove(), kind === 'error' ? 6500 : 3500);
}

// A modal confirmation; resolves to true for OK. `body`: text or a node.
export function confirmDialog(title, body, okLabel = 'OK', danger = true) {
  const dlg = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  const b = document.getElementById('confirm-body');
  b.replaceChildren(typeof body === 'string' ? el('p', {}, body) : body);
  const ok = document.getElementById('confirm-ok');
  ok.textContent = okLabel;
  ok.className = 'btn ' + (danger ? 'danger' : 'primary');
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

export function errorText(e) {
  if (e instanceof ApiError) return `${e.message} (HTTP ${e.status})`;
  return String(e?.message || e);
}

export function panel(title, ...children) {
  return el('section', { class: 'panel' }, title ? el('h2', {}, title) : null, ...children);
}

export function emptyState(text, hint) {
  return el('div', { class: 'empty' }, el('p', {}, text), hint ? el('p', { class: 'muted' }, hint) : null);
}
