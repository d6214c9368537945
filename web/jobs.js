// Jobs: the list with filters (queue, state, time range), search (id prefix,
// payload/result text, JSON field), order, server-side pagination with the
// cursor, and bulk cancel / retry / delete.
import { fill, api, el, panel, fmtNumber, timeCell, toast, confirmDialog, errorText, throttle, STATES, stateBadge, emptyState } from './lib.js';
import { onLive } from './app.js';

const RANGES = [
  ['', 'Any time'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'],
];
const RANGE_MS = { '15m': 15 * 60e3, '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
const SEARCH_KINDS = [
  ['q', 'Payload or result contains'], ['id', 'Job id starts with'], ['field', 'JSON field = value'],
];
const PAGE_SIZE = 50;

// The filters live in the URL (#/jobs?queue=…&state=…), so a view can be bookmarked and shared.
function readFilters(params) {
  return {
    queue: params.get('queue') || '',
    state: params.get('state') || '',
    range: params.get('range') || '',
    kind: params.get('kind') || 'q',
    search: params.get('search') || '',
    order: params.get('order') || 'newest',
  };
}

function writeFilters(f) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v && !(k === 'order' && v === 'newest') && !(k === 'kind' && v === 'q')) p.set(k, v);
  const s = p.toString();
  return '#/jobs' + (s ? '?' + s : '');
}

// The GET /v1/jobs parameters for the filters.
function queryParams(f, cursor) {
  const p = { limit: PAGE_SIZE, queue: f.queue, state: f.state, cursor };
  if (f.order !== 'newest') p.order = f.order;
  if (f.range) p.created_after = String(Date.now() - RANGE_MS[f.range]);
  const s = f.search.trim();
  if (s) {
    if (f.kind === 'id') p.id = s.toLowerCase();
    else if (f.kind === 'q') p.q = s;
    else if (f.kind === 'field') {
      const eq = s.indexOf('=');
      if (eq > 0) { p.field = s.slice(0, eq).trim(); p.value = s.slice(eq + 1).trim(); }
      else p.field = s;  // the server says what is missing
    }
  }
  return p;
}

export function renderJobs(main, params) {
  const f = readFilters(params);
  const st = { jobs: [], next: null, cursors: [], cursor: null, selected: new Set(), error: null, loading: true, queues: [] };
  let stopped = false;

  const queueSel = el('select', { name: 'queue', 'aria-label': 'Queue' }, el('option', { value: '' }, 'All queues'));
  const stateSel = el('select', { name: 'state', 'aria-label': 'State' }, el('option', { value: '' }, 'All states'),
    STATES.map((s) => el('option', { value: s, selected: f.state === s }, s)));
  const rangeSel = el('select', { name: 'range', 'aria-label': 'Created' }, RANGES.map(([v, l]) => el('option', { value: v, selected: f.range === v }, l)));
  const orderSel = el('select', { name: 'order', 'aria-label': 'Order' },
    el('option', { value: 'newest', selected: f.order === 'newest' }, 'Newest first'),
    el('option', { value: 'oldest', selected: f.order === 'oldest' }, 'Oldest first'));
  const kindSel = el('select', { name: 'kind', 'aria-label': 'Search in' }, SEARCH_KINDS.map(([v, l]) => el('option', { value: v, selected: f.kind === v }, l)));
  const searchInput = el('input', { type: 'search', name: 'search', value: f.search, placeholder: placeholderFor(f.kind), 'aria-label': 'Search', spellcheck: 'false' });
  kindSel.addEventListener('change', () => { searchInput.placeholder = placeholderFor(kindSel.value); });

  const form = el('form', { class: 'filters', id: 'job-filters' },
    el('div', { class: 'search-row' }, kindSel, searchInput, el('button', { class: 'btn primary', type: 'submit' }, 'Search'),
      el('button', { class: 'btn ghost', type: 'button', onclick: () => { location.hash = '#/jobs'; } }, 'Clear')),
    el('div', { class: 'filter-row' }, queueSel, stateSel, rangeSel, orderSel));
  form.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
  for (const s of [queueSel, stateSel, rangeSel, orderSel]) s.addEventListener('change', apply);

  function apply() {
    const nf = { queue: queueSel.value, state: stateSel.value, range: rangeSel.value, kind: kindSel.value, search: searchInput.value, order: orderSel.value };
    const h = writeFilters(nf);
    if (location.hash === h) load(); else location.hash = h;
  }

  const bulkBar = el('div', { class: 'bulk', hidden: true });
  const tableBox = el('div', { class: 'table-wrap' });
  const pager = el('div', { class: 'pager' });
  const status = el('span', { class: 'muted', id: 'jobs-status' });
  main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Jobs'), status), panel(null, form), bulkBar, panel(null, tableBox, pager));

  api('v1/queues').then((d) => {
    st.queues = d.queues.map((q) => q.name);
    queueSel.append(...st.queues.map((n) => el('option', { value: n, selected: f.queue === n }, n)));
  }).catch(() => {});

  async function load() {
    st.loading = true;
    try {
      const page = await api('v1/jobs', { params: queryParams(f, st.cursor) });
      st.jobs = page.jobs;
      st.next = page.next_cursor;
      st.error = null;
      // Forget selections that left the page.
      const ids = new Set(st.jobs.map((j) => j.id));
      for (const id of [...st.selected]) if (!ids.has(id)) st.selected.delete(id);
    } catch (e) {
      st.error = e;
      st.jobs = [];
    }
    st.loading = false;
    if (!stopped) draw();
  }

  function draw() {
    drawBulk();
    status.textContent = st.loading ? 'Loading…' : `${st.jobs.length}${st.next ? '+' : ''} shown`;
    if (st.error) {
      const p = st.error.problem;
      fill(tableBox, emptyState(
        st.error.status === 400 ? `This search is not possible: ${st.error.message}` : 'Could not load jobs.',
        st.error.status === 400 && p?.option ? `(option “${p.option}”; an older acceptd may not support it)` : errorText(st.error)));
      fill(pager);
      return;
    }
    if (!st.jobs.length) {
      fill(tableBox, st.next
        ? emptyState('No match among the jobs searched so far.', 'A search reads a bounded part of the history per page: Next → searches further back.')
        : emptyState('No jobs match.', 'Change the filters, or submit jobs with POST /v1/queues/{queue}/jobs.'));
    } else {
      const all = el('input', { type: 'checkbox', 'aria-label': 'Select all', checked: st.jobs.every((j) => st.selected.has(j.id)) });
      all.addEventListener('change', () => {
        for (const j of st.jobs) { if (all.checked) st.selected.add(j.id); else st.selected.delete(j.id); }
        draw();
      });
      const rows = st.jobs.map((j) => {
        const cb = el('input', { type: 'checkbox', 'aria-label': `Select ${j.id}`, checked: st.selected.has(j.id) });
        cb.addEventListener('change', () => { if (cb.checked) st.selected.add(j.id); else st.selected.delete(j.id); drawBulk(); });
        return el('tr', { dataset: { id: j.id, state: j.state }, class: st.selected.has(j.id) ? 'selected' : null },
          el('td', { class: 'check' }, cb),
          el('td', { class: 'mono' }, el('a', { href: `#/jobs/${j.id}` }, j.id)),
          el('td', {}, el('a', { class: 'plain', href: `#/jobs?queue=${encodeURIComponent(j.queue)}` }, j.queue)),
          el('td', {}, stateBadge(j.state, j.cancel_requested && j.state === 'running' ? '(canceling)' : ''),
            j.progress && j.state === 'running' ? el('span', { class: 'mini-progress', title: j.progress.message || '' },
              el('i', { style: { width: `${j.progress.percent}%` } })) : null),
          el('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
          el('td', {}, timeCell(j.created_at)),
          el('td', {}, timeCell(j.finished_at || j.started_at)),
          el('td', { class: 'err' }, j.error ? el('span', { title: j.error.message }, `${j.error.type}: ${j.error.message}`) : ''));
      });
      fill(tableBox, el('table', { class: 'grid-table jobs' },
        el('thead', {}, el('tr', {}, el('th', { class: 'check' }, all), el('th', {}, 'Job id'), el('th', {}, 'Queue'), el('th', {}, 'State'),
          el('th', { class: 'num' }, 'Attempts'), el('th', {}, 'Created'), el('th', {}, 'Started / finished'), el('th', {}, 'Error'))),
        el('tbody', {}, rows)));
    }
    fill(pager, 
      el('button', { class: 'btn small', disabled: !st.cursors.length, onclick: () => { st.cursor = st.cursors.pop() ?? null; load(); } }, '← Previous'),
      el('span', { class: 'muted' }, `Page ${st.cursors.length + 1}`),
      el('button', { class: 'btn small', disabled: !st.next, onclick: () => { st.cursors.push(st.cursor); st.cursor = st.next; load(); } }, 'Next →'));
  }

  function drawBulk() {
    const n = st.selected.size;
    bulkBar.hidden = n === 0;
    if (!n) return;
    fill(bulkBar, 
      el('strong', {}, `${n} selected`),
      el('button', { class: 'btn small', onclick: () => bulk('cancel') }, 'Cancel'),
      el('button', { class: 'btn small', onclick: () => bulk('retry') }, 'Retry'),
      el('button', { class: 'btn small danger', onclick: () => bulk('delete') }, 'Delete'),
      el('button', { class: 'btn small ghost', onclick: () => { st.selected.clear(); draw(); } }, 'Clear selection'));
  }

  async function bulk(action) {
    const ids = [...st.selected];
    const what = { cancel: 'Cancel', retry: 'Retry', delete: 'Delete' }[action];
    const note = {
      cancel: 'Queued jobs are canceled at once; running ones are asked to stop.',
      retry: 'Failed and canceled jobs are queued again as a new attempt of the same job (same id); others are left alone.',
      delete: 'The jobs and their results are deleted; a running job is canceled first.',
    }[action];
    if (!(await confirmDialog(`${what} ${ids.length} job${ids.length > 1 ? 's' : ''}?`, note, what, action !== 'retry'))) return;
    let ok = 0;
    const failed = [];
    // A few at a time: an operator's click should not flood the server.
    const queue = [...ids];
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (queue.length) {
        const id = queue.shift();
        try {
          if (action === 'delete') await api(`v1/jobs/${id}`, { method: 'DELETE' });
          else await api(`v1/jobs/${id}/${action}`, { method: 'POST' });
          ok++;
        } catch (e) {
          failed.push(`${id.slice(0, 8)}…: ${e.message}`);
        }
      }
    }));
    st.selected.clear();
    if (ok) toast(`${what}: ${ok} job${ok > 1 ? 's' : ''} done`, 'ok');
    if (failed.length) toast(`${what} refused for ${failed.length}: ${failed.slice(0, 3).join('; ')}${failed.length > 3 ? '…' : ''}`, 'error');
    load();
  }

  // Live: re-read the page (at most once a second) when a change may show on it;
  // on later pages only the rows shown are updated in place.
  const reload = throttle(load, 1000);
  const off = onLive((ev) => {
    if (ev.type === 'overflow' || ev.type === 'reconnected') { reload(); return; }
    if (ev.type !== 'job') return;
    if (f.queue && ev.queue !== f.queue) return;
    const shown = st.jobs.find((j) => j.id === ev.id);
    if (shown || (!st.cursor && f.order === 'newest')) reload();
  });
  draw();
  load();
  return () => { stopped = true; off(); };
}

function placeholderFor(kind) {
  return { q: 'text in the payload or result, e.g. cust_4711', id: 'job id prefix, e.g. 01a2f3', field: 'JSON field=value, e.g. customer.id=4711' }[kind];
}
