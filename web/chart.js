// Small charts drawn as inline SVG (no library): the last hour's finished
// jobs per minute, succeeded and failed stacked.
import { svg, el, fmtNumber } from './lib.js';

// Sums the per-queue arrays of GET /v1/stats into one series per outcome.
export function totals(stats, queue) {
  const n = Math.max(0, ...stats.queues.map((q) => q.succeeded.length));
  const sum = (key) => {
    const out = new Array(n).fill(0);
    for (const q of stats.queues) {
      if (queue && q.queue !== queue) continue;
      (q[key] || []).forEach((v, i) => { out[i] += v; });
    }
    return out;
  };
  return { succeeded: sum('succeeded'), failed: sum('failed'), canceled: sum('canceled') };
}

// A stacked bar chart with axes: width follows the container (viewBox).
// `width`: the container's width in CSS pixels, so that the labels keep their size.
export function throughputChart(stats, { height = 140, width = 1200 } = {}) {
  const t = totals(stats);
  const n = t.succeeded.length;
  const W = Math.max(400, Math.round(width));
  const H = height;
  const pad = { l: 34, r: 8, t: 10, b: 22 };
  const max = Math.max(1, ...t.succeeded.map((v, i) => v + t.failed[i] + t.canceled[i]));
  const niceMax = niceCeil(max);
  const bw = (W - pad.l - pad.r) / Math.max(n, 1);
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / niceMax);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': 'Jobs finished per minute over the last hour' });
  // Grid lines and labels.
  for (const f of [0, 0.5, 1]) {
    const v = niceMax * f;
    root.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' }));
    root.append(svg('text', { x: pad.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmtNumber(Math.round(v))));
  }
  const step = stats.step_seconds || 60;
  for (let i = 0; i < n; i++) {
    const x = pad.l + i * bw + 1;
    let base = 0;
    const minutesAgo = Math.round(((n - i) * step) / 60);
    for (const key of ['succeeded', 'failed', 'canceled']) {
      const v = t[key][i];
      if (!v) continue;
      const rect = svg('rect', { x, y: y(base + v), width: Math.max(bw - 2, 1), height: y(base) - y(base + v), class: `bar ${key}` });
      rect.append(svg('title', {}, `${v} ${key}, ${minutesAgo} min ago`));
      root.append(rect);
      base += v;
    }
  }
  // Time axis: every 15 minutes.
  const minutes = (n * step) / 60;
  for (let m = 0; m <= minutes; m += 15) {
    const x = pad.l + (W - pad.l - pad.r) * (1 - m / minutes);
    root.append(svg('text', { x, y: H - 6, class: 'axis', 'text-anchor': m === 0 ? 'end' : 'middle' }, m === 0 ? 'now' : `−${m} min`));
  }
  return root;
}

// A sparkline of one queue's finished jobs per minute (failed in red).
export function sparkline(stats, queue) {
  const t = totals(stats, queue);
  const n = t.succeeded.length;
  const W = 120;
  const H = 24;
  const max = Math.max(1, ...t.succeeded.map((v, i) => v + t.failed[i]));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'spark', width: W, height: H, preserveAspectRatio: 'none' });
  const bw = W / Math.max(n, 1);
  for (let i = 0; i < n; i++) {
    const s = t.succeeded[i];
    const f = t.failed[i];
    if (s) root.append(svg('rect', { x: i * bw, y: H - (H * (s + f)) / max, width: Math.max(bw - 0.4, 0.6), height: (H * s) / max, class: 'bar succeeded' }));
    if (f) root.append(svg('rect', { x: i * bw, y: H - (H * f) / max, width: Math.max(bw - 0.4, 0.6), height: (H * f) / max, class: 'bar failed' }));
  }
  if (t.succeeded.every((v, i) => !v && !t.failed[i])) {
    root.append(svg('line', { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: 'grid' }));
  }
  return root;
}

export function legend() {
  return el('div', { class: 'legend' },
    el('span', {}, el('i', { class: 'swatch succeeded' }), 'succeeded'),
    el('span', {}, el('i', { class: 'swatch failed' }), 'failed'),
    el('span', {}, el('i', { class: 'swatch canceled' }), 'canceled'));
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
