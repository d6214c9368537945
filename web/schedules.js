// Schedules: the recurring jobs of [[schedules]] with their next and last fire times.
import { fill, api, el, panel, fmtTime, fmtAgo, errorText, emptyState } from './lib.js';

export function renderSchedules(main) {
  const box = el('div', { class: 'table-wrap' }, el('p', { class: 'muted' }, 'Loading…'));
  main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Schedules')), panel(null, box));
  let stopped = false;

  async function load() {
    let data;
    try {
      data = await api('v1/schedules');
    } catch (e) {
      fill(box, e.status === 404
        ? emptyState('This server has no schedules API.', 'Recurring jobs come with a newer acceptd ([[schedules]] in the config).')
        : emptyState('Could not load the schedules.', errorText(e)));
      return;
    }
    if (stopped) return;
    if (!data.schedules.length) {
      fill(box, emptyState('No schedules are configured.', 'Add [[schedules]] tables to the config (docs/operations.md).'));
      return;
    }
    const when = (iso) => iso ? el('span', { title: fmtTime(iso) }, fmtAgo(iso)) : el('span', { class: 'muted' }, 'never');
    fill(box, el('table', { class: 'grid-table' },
      el('thead', {}, el('tr', {}, ['Name', 'Cron', 'Time zone', 'Queue', 'Next fire', 'Last fire', 'Last job', 'If missed'].map((h) => el('th', {}, h)))),
      el('tbody', {}, data.schedules.map((s) => el('tr', {},
        el('td', {}, el('strong', {}, s.name)),
        el('td', { class: 'mono' }, s.cron),
        el('td', {}, s.timezone),
        el('td', {}, el('a', { href: `#/jobs?queue=${encodeURIComponent(s.queue)}` }, s.queue)),
        el('td', {}, when(s.next_fire_at)),
        el('td', {}, when(s.last_fire_at)),
        el('td', { class: 'mono' }, s.last_job_id ? el('a', { href: `#/jobs/${s.last_job_id}` }, s.last_job_id.slice(0, 12) + '…') : '–'),
        el('td', {}, (s.on_missed || '').replace('_', ' ')))))));
  }

  load();
  const timer = setInterval(load, 10000);  // fire times move on their own
  return () => { stopped = true; clearInterval(timer); };
}
