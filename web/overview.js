// Overview: every queue with its counts by state, the last hour's
// throughput, the oldest queued job, pause/resume/purge.
import { fill, api, el, panel, fmtNumber, fmtDuration, timeCell, toast, confirmDialog, errorText, throttle, STATES, emptyState } from './lib.js';
import { throughputChart, sparkline, legend, totals } from './chart.js';
import { onLive } from './app.js';

export function renderOverview(main) {
  const state = { queues: null, stats: null, statsMissing: false, oldest: {}, orderMissing: false, error: null, nodes: null, nodesMissing: false };
  const summary = el('div', { class: 'tiles' });
  const chartBox = el('div', { class: 'chart-box' });
  const chartPanel = panel('Finished jobs per minute, last hour', chartBox);
  chartPanel.append(legend());
  const tableBox = el('div', { class: 'table-wrap' });
  const queuesPanel = panel('Queues', tableBox);
  const nodesBox = el('div', { class: 'table-wrap' });
  const nodesPanel = panel('Nodes and workers', nodesBox);
  nodesPanel.hidden = true;
  main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Overview')), summary, chartPanel, queuesPanel, nodesPanel);
  let stopped = false;

  async function loadQueues() {
    try {
      const data = await api('v1/queues');
      state.queues = data.queues;
      state.error = null;
    } catch (e) {
      state.error = e;
    }
    if (!stopped) draw();
  }

  async function loadStats() {
    if (state.statsMissing) return;
    try {
      state.stats = await api('v1/stats', { params: { window: 3600 } });
    } catch (e) {
      if (e.status === 404) state.statsMissing = true;  // an acceptd without /v1/stats
    }
    if (!stopped) draw();
  }

  async function loadNodes() {
    if (state.nodesMissing) return;
    try {
      state.nodes = await api('v1/nodes');
    } catch (e) {
      if (e.status === 404) state.nodesMissing = true;  // an acceptd without /v1/nodes
    }
    if (!stopped) drawNodes();
  }

  function drawNodes() {
    nodesPanel.hidden = state.nodesMissing || !state.nodes;
    if (nodesPanel.hidden) return;
    const n = state.nodes;
    const rows = n.nodes.map((x) => el('tr', { class: x.alive ? null : 'dead' },
      el('td', {}, el('span', { class: 'mono' }, x.name), x.this_node ? el('span', { class: 'badge this-node' }, 'this node') : null),
      el('td', {}, x.alive ? el('span', { class: 'badge active' }, 'alive') : el('span', { class: 'badge state-failed' }, 'not seen')),
      el('td', { class: 'num' }, fmtNumber(x.running)),
      el('td', {}, timeCell(x.started_at)),
      el('td', {}, timeCell(x.seen_at))));
    const workers = n.workers.map((w) => el('tr', {},
      el('td', {}, el('span', { class: 'mono' }, w.owner), el('span', { class: 'sub' }, ' external worker')),
      el('td', {}, el('span', { class: 'badge state-running' }, 'leasing')),
      el('td', { class: 'num' }, fmtNumber(w.running)), el('td', {}, '–'), el('td', {}, '–')));
    fill(nodesBox, el('table', { class: 'grid-table nodes' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Node'), el('th', {}, 'Status'), el('th', { class: 'num' }, 'Running'),
        el('th', {}, 'Started'), el('th', {}, 'Last seen'))),
      el('tbody', {}, rows, workers)));
  }

  // The oldest queued job of each queue with queued jobs (one small list
  // request each; needs order=oldest, which older servers refuse).
  async function loadOldest() {
    if (state.orderMissing || !state.queues) return;
    const now = Date.now();
    await Promise.all(state.queues.map(async (q) => {
      if (!q.counts.queued) { delete state.oldest[q.name]; return; }
      try {
        const page = await api('v1/jobs', { params: { queue: q.name, state: 'queued', order: 'oldest', limit: 1 } });
        const job = page.jobs[0];
        if (job) state.oldest[q.name] = now - Date.parse(job.created_at);
      } catch (e) {
        if (e.status === 400) state.orderMissing = true;
      }
    }));
    if (!stopped) draw();
  }

  function draw() {
    // No numbers before the first answer: a 0 that means "not loaded" misleads.
    summary.hidden = !state.queues;
    if (state.queues) fill(summary, tiles());
    chartPanel.hidden = state.statsMissing || !state.stats;
    if (state.stats) fill(chartBox, throughputChart(state.stats, { width: chartBox.clientWidth || 1200 }));
    if (state.error && !state.queues) {
      fill(tableBox, emptyState('Could not load the queues.', errorText(state.error)));
      return;
    }
    if (!state.queues) { fill(tableBox, el('p', { class: 'muted' }, 'Loading…')); return; }
    fill(tableBox, queueTable());
  }

  function tiles() {
    const sum = (s) => (state.queues || []).reduce((a, q) => a + (q.counts[s] || 0), 0);
    const out = [
      tile('Queued', fmtNumber(sum('queued')), 'queued', '#/jobs?state=queued'),
      tile('Running', fmtNumber(sum('running')), 'running', '#/jobs?state=running'),
    ];
    if (state.stats) {
      const t = totals(state.stats);
      const s = t.succeeded.reduce((a, b) => a + b, 0);
      const f = t.failed.reduce((a, b) => a + b, 0);
      out.push(tile('Succeeded (1 h)', fmtNumber(s), 'succeeded', '#/jobs?state=succeeded'));
      out.push(tile('Failed (1 h)', fmtNumber(f), f ? 'failed' : 'failed zero', '#/jobs?state=failed'));
      out.push(tile('Failure rate (1 h)', s + f ? `${((100 * f) / (s + f)).toFixed(1)} %` : '–', f ? 'failed' : 'neutral'));
    } else {
      out.push(tile('Succeeded (retained)', fmtNumber(sum('succeeded')), 'succeeded', '#/jobs?state=succeeded'));
      out.push(tile('Failed (retained)', fmtNumber(sum('failed')), sum('failed') ? 'failed' : 'failed zero', '#/jobs?state=failed'));
    }
    const paused = (state.queues || []).filter((q) => q.paused).length;
    out.push(tile('Paused queues', String(paused), paused ? 'paused' : 'neutral'));
    return out;
  }

  function tile(label, value, kind, href) {
    const body = [el('div', { class: 'tile-value' }, value), el('div', { class: 'tile-label' }, label)];
    return href ? el('a', { class: `tile tile-${kind}`, href }, body) : el('div', { class: `tile tile-${kind}` }, body);
  }

  function queueTable() {
    if (!state.queues.length) return emptyState('No queues are configured.');
    const showSpark = !!state.stats;
    const showOldest = !state.orderMissing;
    const head = el('tr', {},
      el('th', {}, 'Queue'),
      STATES.map((s) => el('th', { class: 'num' }, s)),
      showOldest ? el('th', { class: 'num', title: 'Age of the oldest queued job' }, 'Oldest queued') : null,
      showSpark ? el('th', {}, 'Last hour') : null,
      el('th', {}, 'Status'),
      el('th', { class: 'actions' }, ''));
    const rows = state.queues.map((q) => el('tr', { dataset: { queue: q.name } },
      el('td', {}, el('a', { class: 'queue-name', href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name),
        el('div', { class: 'sub' }, `${q.handler} · concurrency ${q.concurrency}`)),
      STATES.map((s) => el('td', { class: 'num' }, q.counts[s]
        ? el('a', { class: `count count-${s}`, href: `#/jobs?queue=${encodeURIComponent(q.name)}&state=${s}` }, fmtNumber(q.counts[s]))
        : el('span', { class: 'zero' }, '0'))),
      showOldest ? el('td', { class: 'num' + (state.oldest[q.name] > 60000 ? ' warn' : '') },
        q.counts.queued && state.oldest[q.name] !== undefined ? fmtDuration(state.oldest[q.name]) : '–') : null,
      showSpark ? el('td', {}, sparkline(state.stats, q.name)) : null,
      el('td', {}, q.paused ? el('span', { class: 'badge paused' }, 'paused') : el('span', { class: 'badge active' }, 'active')),
      el('td', { class: 'actions' },
        q.paused
          ? el('button', { class: 'btn small', onclick: () => setPaused(q, false) }, 'Resume')
          : el('button', { class: 'btn small', onclick: () => setPaused(q, true) }, 'Pause'),
        el('button', { class: 'btn small ghost-danger', onclick: () => purge(q) }, 'Purge…'))));
    return el('table', { class: 'grid-table queues' }, el('thead', {}, head), el('tbody', {}, rows));
  }

  async function setPaused(q, paused) {
    try {
      await api(`v1/queues/${encodeURIComponent(q.name)}/${paused ? 'pause' : 'resume'}`, { method: 'POST' });
      toast(`Queue ${q.name} ${paused ? 'paused' : 'resumed'}`, 'ok');
    } catch (e) {
      toast(`Could not ${paused ? 'pause' : 'resume'} ${q.name}: ${errorText(e)}`, 'error');
    }
    loadQueues();
  }

  async function purge(q) {
    const select = el('select', { id: 'purge-state' },
      el('option', { value: '' }, 'all finished jobs (succeeded, failed, canceled)'),
      ['succeeded', 'failed', 'canceled'].map((s) => el('option', { value: s }, `${s} jobs only`)));
    const body = el('div', {},
      el('p', {}, `Delete finished jobs of queue “${q.name}” now, before their retention ends. Queued and running jobs are kept.`),
      el('label', {}, 'Delete ', select));
    if (!(await confirmDialog(`Purge ${q.name}?`, body, 'Purge'))) return;
    try {
      const r = await api(`v1/queues/${encodeURIComponent(q.name)}/purge`, { method: 'POST', params: { state: select.value } });
      toast(`Purged ${fmtNumber(r.deleted)} jobs of ${q.name}`, 'ok');
    } catch (e) {
      toast(`Could not purge ${q.name}: ${errorText(e)}`, 'error');
    }
    loadQueues();
  }

  const refresh = throttle(() => loadQueues().then(loadOldest), 1000);
  const refreshStats = throttle(loadStats, 5000);
  const refreshNodes = throttle(loadNodes, 5000);
  const off = onLive(() => { refresh(); refreshStats(); refreshNodes(); });
  // A safety net for what events do not report (other nodes without a change feed).
  const timer = setInterval(() => { refresh(); refreshStats(); refreshNodes(); }, 15000);
  const ageTimer = setInterval(() => { if (!state.orderMissing) loadOldest(); }, 5000);
  draw();
  loadQueues().then(loadOldest);
  loadStats();
  loadNodes();
  return () => { stopped = true; off(); clearInterval(timer); clearInterval(ageTimer); };
}
