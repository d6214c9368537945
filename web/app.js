// The dashboard's shell: the API key, the hash router (#/, #/jobs?…,
// #/jobs/<id>, #/schedules) and the live event stream that pages subscribe to.
import { fill, api, apiKey, setApiKey, authHeaders, apiUrl, setUnauthorizedHandler, el } from './lib.js';
import { renderOverview } from './overview.js';
import { renderJobs } from './jobs.js';
import { renderJob } from './job.js';
import { renderSchedules } from './schedules.js';

const main = document.getElementById('main');

// ---------------------------------------------------------------------------
// Live events: GET /v1/events through fetch() + ReadableStream (an
// EventSource cannot send the Authorization header).

const listeners = new Set();
// fn(event) for each `job` event, and fn({type:'overflow'}) / fn({type:'reconnected'})
// when the page should re-read everything. Returns the unsubscribe function.
export function onLive(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const live = {
  controller: null,
  connected: false,
  everConnected: false,
  retryMs: 1000,
};

function setLiveIndicator(state, text) {
  const node = document.getElementById('live');
  node.className = 'live ' + state;
  node.querySelector('span').textContent = text;
}

function dispatch(type, data) {
  let payload;
  try { payload = data ? JSON.parse(data) : {}; } catch { return; }
  payload.type = type;
  for (const fn of [...listeners]) {
    try { fn(payload); } catch (e) { console.error(e); }
  }
}

async function connectLive() {
  if (live.controller) live.controller.abort();
  const controller = new AbortController();
  live.controller = controller;
  let res;
  try {
    res = await fetch(apiUrl('v1/events'), {
      headers: authHeaders({ Accept: 'text/event-stream' }), signal: controller.signal, cache: 'no-store',
    });
  } catch {
    if (!controller.signal.aborted) scheduleReconnect();
    return;
  }
  if (res.status === 401 || res.status === 403) {
    setLiveIndicator('off', res.status === 403 ? 'no access' : 'key needed');
    return;  // reconnected once a key is given (see askForKey)
  }
  if (res.status === 404) {  // an acceptd without the events route: pages poll
    setLiveIndicator('off', 'polling');
    return;
  }
  if (!res.ok || !res.body) { scheduleReconnect(); return; }
  live.connected = true;
  live.retryMs = 1000;
  setLiveIndicator('on', 'live');
  if (live.everConnected) dispatch('reconnected', '');  // events may have been missed
  live.everConnected = true;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      // Events end with a blank line (the server writes \n only).
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;  // heartbeat comment
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = val;
          else if (field === 'data') data.push(val);
        }
        if (data.length) dispatch(type, data.join('\n'));
      }
    }
  } catch { /* aborted or the connection broke */ }
  live.connected = false;
  if (!controller.signal.aborted) scheduleReconnect();
}

function scheduleReconnect() {
  setLiveIndicator('off', 'reconnecting');
  setTimeout(connectLive, live.retryMs);
  live.retryMs = Math.min(live.retryMs * 2, 15000);
}

export function liveConnected() { return live.connected; }

// ---------------------------------------------------------------------------
// The API key

let keyPromise = null;
function askForKey(message) {
  if (keyPromise) return keyPromise;
  const dlg = document.getElementById('key-dialog');
  const err = document.getElementById('key-error');
  err.hidden = !message;
  err.textContent = message || '';
  document.getElementById('key-input').value = '';
  if (!dlg.open) dlg.showModal();
  keyPromise = new Promise((resolve) => {
    document.getElementById('key-form').addEventListener('submit', () => {
      setApiKey(document.getElementById('key-input').value.trim());
      keyPromise = null;
      updateSignout();
      connectLive();
      route();
      probeOptionalRoutes();
      resolve();
    }, { once: true });
  });
  return keyPromise;
}
setUnauthorizedHandler((message) => { askForKey(message); });

function updateSignout() {
  const b = document.getElementById('signout');
  b.hidden = !apiKey();
}
document.getElementById('signout').addEventListener('click', () => {
  setApiKey('');
  updateSignout();
  location.reload();
});

// ---------------------------------------------------------------------------
// Pages

let cleanup = null;  // the current page's teardown (unsubscribe, timers)

export function parseHash() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  return { path, params: new URLSearchParams(query) };
}

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const { path, params } = parseHash();
  let page = 'overview';
  let render;
  if (path === '/' || path === '') {
    render = () => renderOverview(main);
  } else if (path === '/jobs') {
    page = 'jobs';
    render = () => renderJobs(main, params);
  } else if (path.startsWith('/jobs/')) {
    page = 'jobs';
    render = () => renderJob(main, decodeURIComponent(path.slice('/jobs/'.length)));
  } else if (path === '/schedules') {
    page = 'schedules';
    render = () => renderSchedules(main);
  } else {
    render = () => { fill(main, el('p', {}, 'No such page.')); return null; };
  }
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === page);
  }
  fill(main);
  const result = render();
  Promise.resolve(result).then((c) => { cleanup = typeof c === 'function' ? c : null; });
}

// Tell the user when the whole dashboard is unusable (e.g. a key without admin).
export function showBanner(text) {
  const b = document.getElementById('banner');
  b.hidden = !text;
  b.textContent = text || '';
}

async function probeOptionalRoutes() {
  // The schedules link only where the server has schedules.
  const link = document.getElementById('nav-schedules');
  try {
    await api('v1/schedules');
    link.hidden = false;
  } catch (e) {
    if (e.status === 404) link.hidden = true;
  }
}

window.addEventListener('hashchange', route);
updateSignout();
route();
connectLive();
probeOptionalRoutes();
