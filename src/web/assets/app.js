// svc web: the page. State comes from /api/events (the daemon's event stream, relayed); every
// change is a POST the daemon checks. Text from programs (names, logs, reasons) only ever goes
// into textContent, never into HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const programs = new Map(); // name -> status object, as the daemon's `status` gives it
const rows = new Map();     // name -> <tr>
let role = null;            // "owner" | "control" | "read_only" | null (older daemon)
let daemonUp = false;
let wasDown = false;
const LIVE = new Set(['STARTING', 'RUNNING', 'STOPPING']);
const SIGNALS = ['HUP', 'INT', 'QUIT', 'TERM', 'USR1', 'USR2', 'KILL'];
const LOG_LIMIT = 400000; // characters of log kept on the page

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

function banner(text, kind) {
  const b = $('banner');
  b.hidden = !text;
  b.textContent = text || '';
  b.className = kind || '';
}

function toast(text, bad) {
  const t = el('div', { className: 'toast' + (bad ? ' bad' : ''), textContent: text });
  $('toasts').append(t);
  setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

function duration(secs) {
  secs = Math.max(0, Math.floor(secs));
  const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600);
  const m = Math.floor(secs % 3600 / 60), s = secs % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function bytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + units[i];
}

function mayControl() { return role !== 'read_only'; }

// One table row per program, built once and updated in place (a select keeps its focus).
function row(name) {
  let tr = rows.get(name);
  if (tr) return tr;
  const cell = (cls, label) => el('td', { className: cls }, '');
  tr = el('tr');
  tr.dataset.name = name;
  const nameBtn = el('button', { type: 'button', title: 'show its log' });
  nameBtn.addEventListener('click', () => openLog(name));
  const tdName = el('td', { className: 'name' }, nameBtn, el('span', { className: 'group' }));
  const labels = ['State', 'Ready', 'PID', 'Uptime', 'Restarts', 'CPU', 'Memory'];
  const classes = ['st', 'ready', 'pid num', 'uptime num', 'restarts num', 'cpu num', 'mem num'];
  tr.append(tdName);
  classes.forEach((c, i) => { const td = cell(c); td.dataset.label = labels[i]; tr.append(td); });
  const act = el('td', { className: 'actions control' });
  for (const verb of ['start', 'stop', 'restart']) {
    const b = el('button', { type: 'button', textContent: verb[0].toUpperCase() + verb.slice(1) });
    b.dataset.verb = verb;
    if (verb === 'stop') b.className = 'danger';
    b.addEventListener('click', () => act_(name, verb, null, tr));
    act.append(b);
  }
  const sel = el('select', { title: 'send a signal' }, el('option', { value: '', textContent: 'Signal…' }));
  for (const s of SIGNALS) sel.append(el('option', { value: s, textContent: 'SIG' + s }));
  sel.addEventListener('change', () => {
    const sig = sel.value;
    sel.value = '';
    if (sig) act_(name, 'signal', sig, tr);
  });
  act.append(sel);
  tr.append(act);
  rows.set(name, tr);
  return tr;
}

function render(name, flash) {
  const p = programs.get(name);
  const tr = row(name);
  const q = (c) => tr.querySelector('td.' + c.split(' ')[0]);
  tr.querySelector('td.name button').textContent = p.name;
  tr.querySelector('td.name .group').textContent = p.group && p.group !== p.name ? p.group : '';
  const st = q('st');
  st.replaceChildren(el('span', { className: 'state s-' + p.state, textContent: p.state }));
  const why = p.waiting || p.reason || p.status_text;
  if (why) st.append(el('span', { className: 'reason', textContent: why }));
  const ready = q('ready');
  let r = '–', rc = '';
  if (p.ready_check || p.health) {
    r = p.ready ? 'ready' : 'not ready';
    rc = p.ready ? 'good' : 'bad';
    if (p.health) { r += ' · ' + p.health; if (p.health === 'unhealthy') rc = 'bad'; }
  } else if (p.state === 'RUNNING') { r = '✓'; rc = 'good'; }
  ready.textContent = r;
  ready.className = 'ready ' + rc;
  q('pid').textContent = p.pid ?? '–';
  q('restarts').textContent = p.restarts ?? 0;
  q('cpu').textContent = p.cpu_percent != null ? p.cpu_percent.toFixed(1) + '%' : '–';
  q('mem').textContent = bytes(p.memory_bytes);
  uptime(tr, p);
  const live = LIVE.has(p.state);
  tr.querySelector('[data-verb=start]').disabled = live;
  tr.querySelector('[data-verb=stop]').disabled = !live && p.state !== 'BACKOFF';
  tr.querySelector('select').disabled = !p.pid;
  if (flash) { tr.classList.remove('flash'); void tr.offsetWidth; tr.classList.add('flash'); }
}

function uptime(tr, p) {
  const up = p.state === 'RUNNING' || p.state === 'STARTING';
  tr.querySelector('td.uptime').textContent = up ? duration(Date.now() / 1000 - p.since) : '–';
}

function layout() {
  const body = $('programs').tBodies[0];
  const names = [...programs.keys()];
  for (const [name, tr] of rows) if (!programs.has(name)) { tr.remove(); rows.delete(name); }
  names.forEach((n) => body.append(row(n)));
  $('empty').hidden = names.length > 0;
}

function snapshot(msg) {
  programs.clear();
  for (const p of msg.programs) programs.set(p.name, p);
  layout();
  for (const name of programs.keys()) render(name, false);
}

function event(e) {
  if (e.kind === 'reload') {
    const p = e.plan || {};
    const n = (k) => (p[k] || []).length;
    toast(`Config reloaded: ${n('added')} added, ${n('removed')} removed, ${n('changed')} restarted, ${n('updated')} updated`);
    return;
  }
  if (e.kind === 'shutdown') { banner('The svc daemon is shutting down: it stops every program, then exits.', 'bad'); return; }
  if (!e.program) return;
  let p = programs.get(e.program);
  if (!p) {
    p = { name: e.program, group: e.group || e.program, state: 'STOPPED', pid: null, since: e.time, restarts: 0,
      ready: false, ready_check: false, health: null };
    programs.set(e.program, p);
    layout();
  }
  if (e.kind === 'state') {
    p.state = e.to;
    p.since = e.time;
    p.pid = LIVE.has(e.to) ? (e.pid ?? p.pid) : null;
    p.reason = e.reason || null;
    p.waiting = null;
    if (e.to === 'RUNNING' && !p.ready_check) p.ready = true;
    if (e.to !== 'RUNNING') p.ready = false;
    if (!LIVE.has(e.to)) { p.cpu_percent = null; p.memory_bytes = null; p.health = null; }
  } else if (e.kind === 'ready') {
    p.ready = true;
  } else if (e.kind === 'health') {
    p.health = e.health;
    p.reason = e.reason || null;
  }
  render(e.program, true);
}

function resources(list) {
  for (const u of list) {
    const p = programs.get(u.name);
    if (!p) continue;
    Object.assign(p, { restarts: u.restarts, cpu_percent: u.cpu_percent, memory_bytes: u.memory_bytes,
      status_text: u.status_text, waiting: u.waiting });
    if (!p.pid) { p.cpu_percent = null; p.memory_bytes = null; }
    render(u.name, false);
  }
}

function hello(msg) {
  const d = msg.daemon;
  role = d.role || null;
  daemonUp = true;
  $('daemon').textContent = `daemon ${d.pid} · v${d.version}`;
  $('daemon').title = 'config: ' + d.config;
  $('conn').className = 'dot up';
  $('conn').title = 'connected to the daemon';
  document.body.classList.toggle('readonly', !mayControl());
  document.body.classList.remove('stale');
  if (!mayControl()) banner('Read-only access: you can watch programs and read logs; the daemon refuses changes from you.', '');
  else if (wasDown) { banner('The svc daemon is back.', 'good'); setTimeout(() => { if (daemonUp) banner(null); }, 4000); }
  else banner(null);
  wasDown = false;
}

function daemonGone(msg) {
  daemonUp = false;
  wasDown = true;
  $('conn').className = 'dot down';
  $('conn').title = 'the daemon is gone';
  document.body.classList.add('stale');
  banner(`The svc daemon is gone (${msg.message}). Waiting for it to come back… (start it with: svc up)`, 'bad');
}

function connect() {
  const es = new EventSource('/api/events');
  const on = (name, f) => es.addEventListener(name, (m) => f(JSON.parse(m.data)));
  on('hello', hello);
  on('snapshot', snapshot);
  on('event', event);
  on('resources', resources);
  on('daemon', daemonGone);
  on('lagged', () => {});
  es.onerror = () => {
    $('conn').className = 'dot down';
    document.body.classList.add('stale');
    if (es.readyState === EventSource.CLOSED) {
      banner('Lost svc web: it has stopped, or this session is no longer valid. Run svc web again and open its new link.', 'bad');
    } else {
      banner('Lost the connection to svc web; retrying…', 'bad');
    }
  };
}

async function post(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body), credentials: 'same-origin' });
  let data = null;
  try { data = await r.json(); } catch (_) { data = { error: { message: `${r.status} ${r.statusText}` } }; }
  if (!r.ok) throw new Error((data.error && data.error.message) || `${r.status}`);
  return data;
}

async function act_(name, verb, signal, tr) {
  const buttons = tr.querySelectorAll('.actions button, .actions select');
  buttons.forEach((b) => { b.dataset.was = b.disabled; b.disabled = true; });
  try {
    const body = { verb, targets: [name] };
    if (signal) body.signal = signal;
    const data = await post('/api/control', body);
    for (const r of data.results || []) toast(`${r.name}: ${r.message}`, !r.ok);
  } catch (e) {
    toast(`${name}: ${verb} failed: ${e.message}`, true);
  } finally {
    buttons.forEach((b) => { b.disabled = b.dataset.was === 'true'; });
    if (programs.has(name)) render(name, false);
  }
}

// Logs: one stream at a time; stderr in red.
let logSource = null;
function openLog(name) {
  if (logSource) logSource.close();
  $('logs').hidden = false;
  $('logname').textContent = name;
  const pre = $('logtext');
  pre.replaceChildren();
  const es = new EventSource('/api/logs?name=' + encodeURIComponent(name));
  logSource = es;
  const add = (text, cls) => {
    if (!text) return;
    pre.append(cls ? el('span', { className: cls, textContent: text }) : document.createTextNode(text));
    while (pre.textContent.length > LOG_LIMIT && pre.firstChild) pre.firstChild.remove();
    if ($('follow').checked) pre.scrollTop = pre.scrollHeight;
  };
  es.addEventListener('log', (m) => {
    const c = JSON.parse(m.data);
    add(c.data, c.stream === 'stderr' ? 'err' : null);
    for (const n of c.notices || []) add(`(${n})\n`, 'note');
  });
  es.addEventListener('end', (m) => { add(`(${JSON.parse(m.data).message})\n`, 'note'); es.close(); });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) add('(the log stream closed)\n', 'note'); };
  $('logs').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}

function closeLog() {
  if (logSource) logSource.close();
  logSource = null;
  $('logs').hidden = true;
}

// Reload: the dry run's plan first, applied only on confirmation.
function planList(title, names) {
  if (!names || !names.length) return [];
  return [el('h3', { textContent: title }), el('ul', {}, ...names.map((n) => el('li', { textContent: n })))];
}

async function reload() {
  const body = $('planbody');
  const ok = $('planok');
  body.replaceChildren(el('p', { className: 'muted', textContent: 'Reading the config…' }));
  ok.hidden = true;
  $('plan').showModal();
  try {
    const data = await post('/api/reload', { dry_run: true });
    const p = data.plan;
    const parts = [
      ...planList('Start (added)', p.added),
      ...planList('Stop and remove', p.removed),
      ...planList('Restart (definition changed)', p.changed),
      ...planList('Update in place (still running)', p.updated),
    ];
    if (p.access) parts.push(el('p', { textContent: `Access: ${p.access.from || 'owner only'} → ${p.access.to || 'owner only'}` }));
    if (!parts.length) {
      body.replaceChildren(el('p', { textContent: 'Nothing to change: the config matches what is running.' }));
      return;
    }
    parts.push(el('p', { className: 'muted', textContent: `${(p.unchanged || []).length} program(s) left alone.` }));
    body.replaceChildren(...parts);
    ok.hidden = false;
  } catch (e) {
    body.replaceChildren(el('p', { className: 'bad', textContent: 'The config cannot be loaded; nothing would change:' }),
      el('pre', { textContent: e.message }));
  }
}

async function applyReload() {
  $('planok').disabled = true;
  try {
    const data = await post('/api/reload', { dry_run: false });
    $('plan').close();
    const failed = (data.results || []).filter((r) => !r.ok);
    if (failed.length) for (const r of failed) toast(`${r.name}: ${r.message}`, true);
  } catch (e) {
    $('planbody').replaceChildren(el('p', { className: 'bad', textContent: 'Reload failed:' }), el('pre', { textContent: e.message }));
  } finally {
    $('planok').disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('reload').addEventListener('click', reload);
  $('planok').addEventListener('click', applyReload);
  $('plancancel').addEventListener('click', () => $('plan').close());
  $('logclose').addEventListener('click', closeLog);
  // Uptimes tick in the page; the server sends nothing for them.
  setInterval(() => { for (const [name, tr] of rows) { const p = programs.get(name); if (p) uptime(tr, p); } }, 1000);
  connect();
});
