// Job detail: the status document, the attempts timeline, progress, the
// callback, payload and result previews, and the job's actions.
import { fill, api, el, panel, fmtTime, fmtAgo, fmtDuration, fmtBytes, toast, confirmDialog, errorText, throttle, stateBadge, emptyState, authHeaders, apiUrl } from './lib.js';
import { onLive } from './app.js';

const PREVIEW_LIMIT = 64 * 1024;

export function renderJob(main, id) {
  const st = { job: null, attempts: null, attemptsMissing: false, error: null };
  let stopped = false;
  const head = el('div', { class: 'page-head' });
  const actions = el('div', { class: 'job-actions' });
  const facts = el('div', { class: 'facts' });
  const progressBox = el('div');
  const timeline = el('div');
  const timelinePanel = panel('Attempts', timeline);
  const callbackBox = el('div');
  const callbackPanel = panel('Completion callback', callbackBox);
  const payloadBox = el('div', { class: 'preview' });
  const resultBox = el('div', { class: 'preview' });
  const rawBox = el('pre', { class: 'code' });
  main.append(
    el('div', { class: 'crumbs' }, el('a', { href: '#/jobs' }, 'Jobs'), ' / ', el('span', { class: 'mono' }, id)),
    head,
    el('div', { class: 'detail-grid' },
      el('div', {}, panel('Status', facts, progressBox, actions), timelinePanel, callbackPanel),
      el('div', {}, panel('Payload', payloadBox), panel('Result', resultBox),
        el('details', { class: 'panel raw' }, el('summary', {}, 'Status document (GET /v1/jobs/{id})'), rawBox))));

  async function load() {
    try {
      // 200/202 answer the document; a succeeded job answers 302 to its
      // result, which fetch() cannot read: its document comes from the
      // job's event stream instead (a finished job's stream is one event).
      const res = await api(`v1/jobs/${id}`, { raw: true, redirect: 'manual' });
      if (res.type === 'opaqueredirect') st.job = await documentFromEvents();
      else st.job = await res.json();
      st.error = null;
    } catch (e) {
      st.error = e;
    }
    if (!st.attemptsMissing) {
      try {
        st.attempts = await api(`v1/jobs/${id}/attempts`);
      } catch (e) {
        if (e.status === 404) st.attemptsMissing = true;  // an acceptd without the attempts route
      }
    }
    if (!stopped) draw();
  }

  // The status document of a finished job: the `state` event of GET /v1/jobs/{id}/events.
  async function documentFromEvents() {
    const res = await api(`v1/jobs/${id}/events`, { raw: true });
    const text = await res.text();
    const m = /event: state\n(?:id: .*\n)?((?:data: .*\n)+)/.exec(text);
    if (!m) return { id, state: 'succeeded' };
    return JSON.parse(m[1].split('\n').filter(Boolean).map((l) => l.slice(6)).join('\n'));
  }

  function draw() {
    if (st.error && !st.job) {
      fill(head, el('h1', {}, 'Job'));
      fill(facts, emptyState(st.error.status === 404 || st.error.status === 410 ? 'This job does not exist (any more).' : 'Could not load the job.', errorText(st.error)));
      return;
    }
    const j = st.job;
    if (!j) return;
    fill(head, el('h1', {}, 'Job ', el('span', { class: 'mono title-id' }, j.id)), stateBadge(j.state, j.cancel_requested && j.state === 'running' ? '(cancel requested)' : ''));
    const row = (k, v) => [el('dt', {}, k), el('dd', {}, v ?? el('span', { class: 'muted' }, '–'))];
    const when = (iso) => iso ? el('span', { title: fmtTime(iso) }, `${fmtTime(iso)} · ${fmtAgo(iso)}`) : null;
    fill(facts, el('dl', {},
      row('Queue', el('a', { href: `#/jobs?queue=${encodeURIComponent(j.queue)}` }, j.queue)),
      row('State', stateBadge(j.state)),
      row('Attempts', `${j.attempts} of ${j.max_attempts}`),
      row('Priority', String(j.priority ?? 0)),
      row('Created', when(j.created_at)),
      row('Started', when(j.started_at)),
      row('Finished', when(j.finished_at)),
      j.run_at ? row('Runs at', when(j.run_at)) : null,
      row('Expires', when(j.expires_at)),
      j.error ? row('Error', el('span', { class: 'error-text' }, `${j.error.type}: ${j.error.message}`)) : null));
    fill(progressBox);
    if (j.progress) {
      progressBox.append(el('div', { class: 'progress' },
        el('div', { class: 'progress-bar' }, el('i', { style: { width: `${j.progress.percent}%` } })),
        el('span', {}, `${j.progress.percent} %`, j.progress.message ? ` — ${j.progress.message}` : '')));
    }
    const pending = j.state === 'queued' || j.state === 'running';
    fill(actions, 
      pending ? el('button', { class: 'btn', id: 'job-cancel', onclick: cancel, disabled: j.cancel_requested }, j.cancel_requested ? 'Cancel requested' : 'Cancel job') : null,
      j.state === 'failed' || j.state === 'canceled' ? el('button', { class: 'btn primary', id: 'job-retry', onclick: retry }, 'Retry') : null,
      el('button', { class: 'btn ghost-danger', id: 'job-delete', onclick: remove }, 'Delete'));
    rawBox.textContent = JSON.stringify(j, null, 2);
    drawTimeline();
    drawCallback();
  }

  function drawTimeline() {
    timelinePanel.hidden = st.attemptsMissing;
    if (st.attemptsMissing) return;
    const a = st.attempts;
    if (!a) { fill(timeline, el('p', { class: 'muted' }, 'Loading…')); return; }
    if (!a.attempts.length) { fill(timeline, el('p', { class: 'muted' }, 'No attempt has started yet.')); return; }
    const items = a.attempts.map((t) => el('li', { class: `attempt outcome-${t.outcome}` },
      el('div', { class: 'attempt-head' },
        el('strong', {}, `Attempt ${t.attempt}`),
        el('span', { class: `badge outcome ${t.outcome}` }, t.outcome.replace('_', ' ')),
        el('span', { class: 'muted' }, t.duration_ms !== null && t.duration_ms !== undefined ? fmtDuration(t.duration_ms) : 'running…')),
      el('div', { class: 'attempt-meta' },
        el('span', { title: fmtTime(t.started_at) }, `${fmtTime(t.started_at)}`),
        t.ended_at ? el('span', {}, ` → ${fmtTime(t.ended_at)}`) : null,
        t.worker ? el('span', { class: 'worker' }, ` · on ${t.worker}`) : null),
      t.error ? el('div', { class: 'error-text' }, `${t.error.type}: ${t.error.message}`) : null));
    fill(timeline, el('ol', { class: 'timeline' }, items),
      a.dropped ? el('p', { class: 'muted' }, `${a.dropped} older attempt${a.dropped > 1 ? 's' : ''} not kept.`) : null);
  }

  function drawCallback() {
    const c = st.attempts?.callback ?? st.job?.callback;
    callbackPanel.hidden = !c;
    if (!c) return;
    const row = (k, v) => [el('dt', {}, k), el('dd', {}, v ?? el('span', { class: 'muted' }, '–'))];
    fill(callbackBox, el('dl', {},
      row('URL', el('span', { class: 'mono' }, c.url)),
      row('Deliveries tried', String(c.attempts)),
      row('Last status', c.last_status ? String(c.last_status) : null),
      c.last_error ? row('Last error', el('span', { class: 'error-text' }, c.last_error)) : null,
      row('Delivered', c.delivered_at ? fmtTime(c.delivered_at) : null),
      row('Next attempt', c.next_attempt_at ? fmtTime(c.next_attempt_at) : null)));
  }

  async function act(label, fn) {
    try {
      await fn();
      toast(label, 'ok');
    } catch (e) {
      toast(`${label} refused: ${errorText(e)}`, 'error');
    }
    load();
  }
  async function cancel() {
    if (!(await confirmDialog('Cancel this job?', 'A queued job is canceled at once; a running one is asked to stop (its handler sees the cancel).', 'Cancel job'))) return;
    act('Cancel requested', () => api(`v1/jobs/${id}/cancel`, { method: 'POST' }));
  }
  async function retry() {
    act('Queued again (a new attempt of the same job)', () => api(`v1/jobs/${id}/retry`, { method: 'POST' }));
  }
  async function remove() {
    if (!(await confirmDialog('Delete this job?', 'The job, its payload and its result are deleted. A running job is canceled first.', 'Delete'))) return;
    try {
      await api(`v1/jobs/${id}`, { method: 'DELETE' });
      toast('Job deleted', 'ok');
      location.hash = '#/jobs';
    } catch (e) {
      toast(`Delete refused: ${errorText(e)}`, 'error');
    }
  }

  // Payload and result: JSON pretty-printed, text as is, binary as size + download.
  async function loadBody(kind, box) {
    try {
      const res = await fetch(apiUrl(`v1/jobs/${id}/${kind}`), { headers: authHeaders() });
      if (res.status === 404 && kind === 'payload') {
        const p = await res.json().catch(() => null);
        fill(box, el('p', { class: 'muted' }, p?.detail === 'no such resource' ? 'This server does not serve payloads.' : 'No payload.'));
        return;
      }
      if (res.status === 409) { fill(box, el('p', { class: 'muted' }, `No result yet: the job is ${st.job?.state ?? 'not finished'}.`)); return; }
      if (!res.ok) { fill(box, el('p', { class: 'muted' }, `Not available (HTTP ${res.status}).`)); return; }
      const type = res.headers.get('Content-Type') || 'application/octet-stream';
      const blob = await res.blob();
      fill(box, await preview(blob, type, kind));
    } catch (e) {
      fill(box, el('p', { class: 'muted' }, errorText(e)));
    }
  }

  async function preview(blob, type, kind) {
    const meta = el('div', { class: 'preview-meta' }, el('span', { class: 'mono' }, type), el('span', {}, fmtBytes(blob.size)),
      el('a', { href: '#', class: 'download', onclick: (e) => { e.preventDefault(); download(blob, `${id}.${kind}`); } }, 'Download'));
    const textual = /^(text\/|application\/(json|xml|x-ndjson|javascript|yaml|x-www-form-urlencoded))|\+json|\+xml/.test(type);
    const head = await blob.slice(0, PREVIEW_LIMIT).arrayBuffer();
    let text = null;
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(head); } catch { text = null; }
    if (!textual && (text === null || /[\x00-\x08\x0e-\x1f]/.test(text))) {
      return el('div', {}, meta, el('p', { class: 'muted' }, `Binary content (${fmtBytes(blob.size)}): use Download.`));
    }
    if (text === null) text = new TextDecoder('utf-8').decode(head);
    let shown = text;
    if (blob.size <= PREVIEW_LIMIT && /json/.test(type) || /^\s*[{[]/.test(text)) {
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON after all */ }
    }
    return el('div', {}, meta, el('pre', { class: 'code' }, shown),
      blob.size > PREVIEW_LIMIT ? el('p', { class: 'muted' }, `First ${fmtBytes(PREVIEW_LIMIT)} of ${fmtBytes(blob.size)} shown.`) : null);
  }

  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  let lastState = null;
  const refresh = throttle(async () => {
    await load();
    if (st.job && st.job.state !== lastState) {
      if (st.job.state === 'succeeded') loadBody('result', resultBox);
      else if (lastState === null) fill(resultBox, el('p', { class: 'muted' }, `No result: the job is ${st.job.state}.`));
      lastState = st.job.state;
    }
  }, 1000);
  const off = onLive((ev) => {
    if (ev.type === 'overflow' || ev.type === 'reconnected' || (ev.type === 'job' && ev.id === id)) refresh();
  });
  // Progress is not an event on /v1/events: poll while the job runs.
  const timer = setInterval(() => { if (st.job && (st.job.state === 'running' || st.job.state === 'queued')) refresh(); }, 3000);
  refresh();
  loadBody('payload', payloadBox);
  return () => { stopped = true; off(); clearInterval(timer); };
}
