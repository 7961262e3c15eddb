// circumplex dashboard: plain browser JS (no bundler), chart.js 4 from /vendor/chart.umd.js.
//
// Speaks the real protocol (core/protocol.ts): WebSocket subprotocol `circumplex.v1` on
// /v1/stream, waits for `hello`, subscribes to ['*'] with `resumeFrom` = last seq seen per stream,
// reconnects on its own with backoff, and drops any seq it already has (so a resume that overlaps
// never draws a point twice). Everything kept in memory is bounded.

/* global Chart */

const SUBPROTOCOL = 'circumplex.v1';
/** Relative, so the page also works behind a reverse proxy that mounts the server under a prefix. */
const STREAM_PATH = 'v1/stream';
/** Affect frames kept per stream (time series + trail source). ~2.5 min at a 250 ms hop. */
const MAX_POINTS = 600;
/** Frames in the fading trail behind the live point. */
const TRAIL = 40;
/** Seconds of history in the time series. */
const SERIES_SECONDS = 60;
/** Final transcript lines kept per stream. */
const MAX_LINES = 50;
/** An alert stays on the badge for this many seconds of the stream's audio after it was raised. */
const ALERT_HOLD_S = 30;
/** On first connect, ask for this much recent history of streams that are already running. */
const HISTORY_FRAMES = 240;
const BACKOFF_MS = { initial: 500, max: 8000, factor: 2 };
/**
 * Ended streams kept; beyond this the oldest ended are forgotten (as the server forgets them), so a
 * page left open on a busy server (every call a stream) stays bounded.
 */
const MAX_ENDED_STREAMS = 256;

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

/** Per-stream state. */
const streams = new Map();
/** Ids of ended streams, oldest ended first. */
const ended = new Set();
/** The stream the URL or the user asked for; shown as soon as it exists, even if another was shown meanwhile. */
let wanted = streamFromHash();
let selected = wanted;
let conn = { state: 'connecting', retryAt: 0, attempt: 0, sessionId: null, everOpened: false };
let globalError = null;
/** Why the server refused our WebSocket, when it is up but would not open one (e.g. no token), or null. */
let refused = null;
let ws = null;
let terms = [];
let circChart = null;
let seriesChart = null;
let redrawQueued = false;
/** Counters exposed for tests and the curious (window.circumplex.stats). */
const stats = { frames: 0, duplicates: 0, reconnects: 0, invalid: 0 };

/** The stream chosen in the URL (`#stream=<id>`), or null; a malformed escape is ignored, never fatal. */
function streamFromHash() {
  const m = location.hash.match(/stream=([^&]+)/);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]) || null;
  } catch {
    return null;
  }
}

/** Tracks which streams have ended, and forgets the oldest ended beyond MAX_ENDED_STREAMS (never the selected one). */
function noteState(s, state) {
  ended.delete(s.id);
  if (state !== 'ended') return;
  ended.add(s.id);
  if (ended.size <= MAX_ENDED_STREAMS) return;
  for (const id of ended) {
    if (ended.size <= MAX_ENDED_STREAMS) break;
    if (id === selected) continue;
    ended.delete(id);
    streams.delete(id);
  }
  refreshSelector();
}

/**
 * Takes a stream's info from the server (`hello` or `stream`). A lower lastSeq than ours means the
 * server restarted the stream: its seqs start over (returns true). A status from before (e.g.
 * 'ended' of a stream that has started again) no longer holds.
 */
function applyInfo(s, info) {
  const restarted = info.lastSeq < s.lastSeq;
  if (restarted) resetStream(s);
  s.info = info;
  if (s.status && s.status.state !== info.state) s.status = null;
  noteState(s, info.state);
  return restarted;
}

function streamState(id) {
  let s = streams.get(id);
  if (!s) {
    s = { id, info: null, points: [], lines: [], partial: '', lastSeq: -1, status: null, error: null, alert: null };
    streams.set(id, s);
    refreshSelector();
  }
  return s;
}

// ---- connection ---------------------------------------------------------------------------

function wsUrl() {
  const u = new URL(STREAM_PATH, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // Browsers cannot set headers on a WebSocket: the server accepts the token as a query parameter.
  const token = params.get('token');
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

function connect() {
  setConn(conn.everOpened ? 'reconnecting' : 'connecting');
  let sock;
  try {
    sock = new WebSocket(wsUrl(), SUBPROTOCOL);
  } catch (err) {
    globalError = `cannot open a WebSocket: ${err.message}`;
    scheduleReconnect();
    return;
  }
  ws = sock;
  let opened = false;
  sock.onopen = () => {
    opened = true;
  };
  sock.onmessage = (ev) => {
    if (typeof ev.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      stats.invalid++;
      return;
    }
    onMessage(sock, msg);
  };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    // 1002/1008: the server refused us for a reason a retry will not fix; say so, but keep trying
    // slowly (a presenter may fix the token and the page should then recover by itself).
    if (ev.code === 1008 || ev.code === 1002) globalError = `server closed the connection (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
    if (!opened) explainRefusal();
    scheduleReconnect();
  };
  sock.onerror = () => {
    /* a close event always follows; handled there */
  };
}

/**
 * A WebSocket that never opened: the server is down, or it refused the upgrade (401/403), which
 * browsers do not tell the page. The page came from the server, so ask it whether it is up: if it
 * is, the upgrade was refused, and the likely fix is the token.
 */
function explainRefusal() {
  fetch('healthz', { cache: 'no-store' }).then(
    (res) => {
      if (conn.state === 'open') return;
      // Not ok (503): the server is shutting down, which is not a refusal.
      if (!res.ok) refused = null;
      else if (params.get('token')) refused = 'The token in the URL is unknown or lacks the subscribe scope (or this origin is not allowed).';
      else refused = 'It may need a token: open this page with ?token=<subscribe token>.';
      renderBanner();
    },
    () => {
      refused = null;
      renderBanner();
    },
  );
}

function scheduleReconnect() {
  const delay = Math.min(BACKOFF_MS.max, BACKOFF_MS.initial * BACKOFF_MS.factor ** conn.attempt) * (0.8 + Math.random() * 0.4);
  conn.attempt++;
  conn.retryAt = Date.now() + delay;
  setConn('closed');
  setTimeout(connect, delay);
}

function onMessage(sock, msg) {
  switch (msg.type) {
    case 'hello': {
      // A Map, not an object literal: a stream id may be any name, `constructor` or `__proto__` too.
      const resumeFrom = new Map();
      for (const info of msg.streams || []) {
        // What we knew of the stream before this hello (undefined: it is new to us).
        const before = streams.get(info.streamId)?.info;
        const s = streamState(info.streamId);
        // Restarted: everything the server has of the new run is new to us.
        const restarted = applyInfo(s, info);
        if (restarted) resumeFrom.set(info.streamId, -1);
        else if (s.lastSeq >= 0) resumeFrom.set(info.streamId, s.lastSeq);
        else if (!conn.everOpened) resumeFrom.set(info.streamId, Math.max(-1, info.lastSeq - HISTORY_FRAMES));
        // A reconnect, and no frame of it yet: from where it stood when last announced, or all of
        // it if it started while we were away, so what it published meanwhile is drawn.
        else if (before) resumeFrom.set(info.streamId, Math.min(info.lastSeq, before.lastSeq));
        else resumeFrom.set(info.streamId, info.state === 'ended' ? info.lastSeq : -1);
      }
      // Streams the server does not list are not on it (it restarted, or forgot them): no resume.
      // Our last seq would make it skip that many frames of a stream that starts again under the
      // same id; the stream's announcement (lastSeq -1) resets it here when it does.
      sock.send(JSON.stringify({ type: 'subscribe', streamIds: ['*'], ...(resumeFrom.size ? { resumeFrom: Object.fromEntries(resumeFrom) } : {}) }));
      if (conn.everOpened) stats.reconnects++;
      conn.everOpened = true;
      conn.attempt = 0;
      conn.sessionId = msg.sessionId;
      globalError = null;
      refused = null;
      setConn('open');
      refreshSelector();
      break;
    }
    case 'stream': {
      const s = streamState(msg.stream.streamId);
      applyInfo(s, msg.stream);
      if (msg.stream.state === 'live') s.error = null;
      refreshSelector();
      break;
    }
    case 'affect':
    case 'transcript':
    case 'status':
    case 'turn':
    case 'alert':
      onFrame(msg);
      break;
    case 'error':
      if (msg.streamId) streamState(msg.streamId).error = `${msg.code}: ${msg.message}`;
      else globalError = `${msg.code}: ${msg.message}`;
      renderBanner();
      break;
    case 'resumed':
      break;
    default:
      stats.invalid++;
  }
}

function resetStream(s) {
  s.points = [];
  s.lines = [];
  s.partial = '';
  s.lastSeq = -1;
  s.alert = null;
}

function onFrame(msg) {
  if (typeof msg.streamId !== 'string' || !Number.isInteger(msg.seq)) {
    stats.invalid++;
    return;
  }
  const s = streamState(msg.streamId);
  if (msg.seq <= s.lastSeq) {
    stats.duplicates++;
    return;
  }
  s.lastSeq = msg.seq;
  stats.frames++;
  if (msg.type === 'affect') {
    if (![msg.valence, msg.arousal, msg.tMs].every(Number.isFinite)) {
      stats.invalid++;
      return;
    }
    s.points.push(msg);
    if (s.points.length > MAX_POINTS) s.points.splice(0, s.points.length - MAX_POINTS);
  } else if (msg.type === 'transcript') {
    if (msg.final) {
      if (msg.text.trim()) s.lines.push(msg.text.trim());
      if (s.lines.length > MAX_LINES) s.lines.splice(0, s.lines.length - MAX_LINES);
      s.partial = '';
    } else s.partial = msg.text;
  } else if (msg.type === 'turn') {
    // A voiced segment ended (protocol 1.2.0): one line in the transcript panel.
    const f = (v) => (v >= 0 ? '+' : '') + Number(v).toFixed(2);
    s.lines.push(
      `[turn ${(msg.startMs / 1000).toFixed(1)}–${(msg.endMs / 1000).toFixed(1)} s] ${msg.label} v ${f(msg.mean.valence)} a ${f(msg.mean.arousal)}${msg.transcript ? ` “${msg.transcript}”` : ''}`,
    );
    if (s.lines.length > MAX_LINES) s.lines.splice(0, s.lines.length - MAX_LINES);
  } else if (msg.type === 'alert') {
    if (!Number.isFinite(msg.tMs)) {
      stats.invalid++;
      return;
    }
    s.alert = msg;
    s.lines.push(`⚠ ${msg.alert}: ${msg.reason}`);
    if (s.lines.length > MAX_LINES) s.lines.splice(0, s.lines.length - MAX_LINES);
  } else if (msg.type === 'status') {
    s.status = msg;
    if (msg.state === 'error') s.error = msg.message;
    else if (msg.state === 'live') s.error = null;
    if (s.info) s.info = { ...s.info, state: msg.state };
    noteState(s, msg.state);
    refreshSelector();
    renderBanner();
  }
  if (!selected) select(msg.streamId, false);
  if (msg.streamId === selected) queueRedraw();
}

// ---- UI -----------------------------------------------------------------------------------

function setConn(state) {
  conn.state = state;
  document.body.classList.toggle('stale', state !== 'open');
  renderConn();
  renderBanner();
}

function renderConn() {
  const el = $('conn');
  el.dataset.state = conn.state;
  if (conn.state === 'open') el.textContent = '● live';
  else if (conn.state === 'connecting') el.textContent = 'connecting…';
  else if (conn.state === 'reconnecting') el.textContent = 'reconnecting…';
  else {
    const s = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
    el.textContent = `disconnected — retry in ${s}s`;
  }
}
// The countdown ticks while disconnected.
setInterval(() => conn.state === 'closed' && renderConn(), 500);

function renderBanner() {
  const el = $('banner');
  const s = selected ? streams.get(selected) : null;
  let text = null;
  let kind = 'error';
  if (conn.state === 'closed' && refused) text = `The server at ${location.host} refused the connection. ${refused} Retrying…`;
  else if (conn.state === 'closed' && conn.everOpened) text = 'Disconnected from the server. Reconnecting on its own; the picture resumes where it stopped.';
  else if (conn.state === 'closed') text = `Cannot reach the server at ${location.host}. Retrying…`;
  if (globalError) text = text ? `${text} (${globalError})` : globalError;
  if (!text && s && s.error) text = `Stream “${s.id}” has an error: ${s.error}`;
  if (!text && s && s.status && (s.status.state === 'degraded' || s.status.state === 'recorder-restarting')) {
    text = `Stream “${s.id}” is ${s.status.state}: ${s.status.message}`;
    kind = 'warn';
  }
  el.hidden = !text;
  el.dataset.kind = kind;
  el.textContent = text || '';
}

function refreshSelector() {
  const sel = $('stream-select');
  const ids = [...streams.keys()].sort();
  if (ids.length === 0) return;
  const have = [...sel.options].map((o) => o.value).filter(Boolean);
  if (have.join('\n') !== ids.join('\n')) {
    sel.replaceChildren(
      ...ids.map((id) => {
        const o = document.createElement('option');
        o.value = id;
        o.textContent = id;
        return o;
      }),
    );
  }
  for (const o of sel.options) {
    const st = streams.get(o.value)?.info?.state;
    o.textContent = st && st !== 'live' ? `${o.value} (${st})` : o.value;
  }
  if (wanted && wanted !== selected && streams.has(wanted)) select(wanted, false);
  else if (!selected || !streams.has(selected)) {
    const live = ids.find((id) => streams.get(id)?.info?.state === 'live');
    if (live || ids[0]) select(live || ids[0], false);
  }
  sel.value = selected || '';
  renderStreamState();
}

/** Shows a stream. The user's choice goes into the URL; a stand-in shown while the wanted one is absent does not replace it. */
function select(id, byUser = true) {
  selected = id;
  if (byUser) wanted = id;
  $('stream-select').value = id;
  if (byUser || !wanted) history.replaceState(null, '', `${location.pathname}${location.search}#stream=${encodeURIComponent(id)}`);
  renderStreamState();
  renderBanner();
  queueRedraw();
}

function renderStreamState() {
  const el = $('stream-state');
  const s = selected ? streams.get(selected) : null;
  const st = s?.status?.state ?? s?.info?.state ?? 'none';
  el.dataset.state = st;
  el.textContent = s ? st : 'no stream';
}

function fmt(v) {
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;
}

function queueRedraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => {
    redrawQueued = false;
    redraw();
  });
}

function redraw() {
  const s = selected ? streams.get(selected) : null;
  const pts = s ? s.points : [];
  const last = pts[pts.length - 1];
  // Label, intensity and numbers.
  $('label').textContent = last ? last.label : '—';
  $('intensity-fill').style.width = `${Math.round((last ? last.intensity : 0) * 100)}%`;
  $('intensity-value').textContent = (last ? last.intensity : 0).toFixed(2);
  $('valence-value').textContent = fmt(last ? last.valence : 0);
  $('arousal-value').textContent = fmt(last ? last.arousal : 0);
  // Dominance is optional (protocol 1.1.0): only frames whose models predict it carry it.
  const hasDominance = !!last && Number.isFinite(last.dominance);
  $('dominance-value').textContent = hasDominance ? fmt(last.dominance) : '—';
  $('dominance-value').dataset.present = String(hasDominance);
  $('confidence-value').textContent = (last ? last.confidence : 0).toFixed(2);
  $('time-value').textContent = `${((last ? last.tMs : 0) / 1000).toFixed(1)} s`;
  // The stream's latest alert, on a badge while it is recent (ALERT_HOLD_S of audio), and in the transcript.
  const alert = s && s.alert;
  const now = Math.max(last ? last.tMs : 0, alert ? alert.tMs : 0);
  const showAlert = !!alert && now - alert.tMs <= ALERT_HOLD_S * 1000;
  $('alert').hidden = !showAlert;
  $('alert').textContent = showAlert ? `⚠ ${alert.alert} at ${(alert.tMs / 1000).toFixed(1)} s — ${alert.reason}` : '';
  $('alert').dataset.kind = showAlert ? alert.alert : '';
  // Transcript: the last few finals and the running partial.
  const lines = s ? s.lines.slice(-12) : [];
  $('transcript-lines').replaceChildren(
    ...lines.map((t) => {
      const li = document.createElement('li');
      li.textContent = t;
      if (t.startsWith('⚠')) li.className = 'alert';
      return li;
    }),
  );
  $('transcript-partial').textContent = s && s.partial ? `${s.partial}…` : lines.length === 0 ? 'no transcript yet (serve with --asr-model to add one)' : '';
  if (!circChart || !seriesChart) return;
  // Circumplex: trail (fading) + live point.
  const trail = pts.slice(-TRAIL).map((p) => ({ x: p.valence, y: p.arousal }));
  circChart.data.datasets[1].data = trail;
  circChart.data.datasets[2].data = last ? [{ x: last.valence, y: last.arousal }] : [];
  circChart.update('none');
  // Time series over the last SERIES_SECONDS of audio time.
  const tEnd = last ? last.tMs / 1000 : SERIES_SECONDS;
  const tStart = Math.max(0, tEnd - SERIES_SECONDS);
  const recent = pts.filter((p) => p.tMs / 1000 >= tStart);
  seriesChart.data.datasets[0].data = recent.map((p) => ({ x: p.tMs / 1000, y: p.valence }));
  seriesChart.data.datasets[1].data = recent.map((p) => ({ x: p.tMs / 1000, y: p.arousal }));
  // Frames without dominance are gaps in its line (null), never a fake 0; no dominance at all hides it.
  const anyDominance = recent.some((p) => Number.isFinite(p.dominance));
  seriesChart.data.datasets[2].data = anyDominance ? recent.map((p) => ({ x: p.tMs / 1000, y: Number.isFinite(p.dominance) ? p.dominance : null })) : [];
  seriesChart.data.datasets[2].hidden = !anyDominance;
  seriesChart.options.scales.x.min = tStart;
  seriesChart.options.scales.x.max = Math.max(tStart + 5, tEnd);
  seriesChart.update('none');
}

// ---- charts -------------------------------------------------------------------------------

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Draws the unit circle, axes and quadrant names under the data, and term labels over it. */
const circumplexBackdrop = {
  id: 'circumplexBackdrop',
  beforeDatasetsDraw(chart) {
    const { ctx, scales } = chart;
    const cx = scales.x.getPixelForValue(0);
    const cy = scales.y.getPixelForValue(0);
    const r = scales.x.getPixelForValue(1) - cx;
    ctx.save();
    ctx.strokeStyle = cssVar('--line');
    ctx.lineWidth = 1;
    for (const f of [0.5, 1]) {
      ctx.beginPath();
      ctx.arc(cx, cy, r * f, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.beginPath();
    ctx.moveTo(cx - r * 1.08, cy);
    ctx.lineTo(cx + r * 1.08, cy);
    ctx.moveTo(cx, cy - r * 1.08);
    ctx.lineTo(cx, cy + r * 1.08);
    ctx.stroke();
    const fs = Math.max(10, Math.round(r / 16));
    ctx.fillStyle = cssVar('--muted');
    ctx.font = `600 ${fs}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('AROUSED', cx, cy - r * 1.16);
    ctx.fillText('CALM', cx, cy + r * 1.16);
    ctx.save();
    ctx.translate(cx + r * 1.17, cy);
    ctx.rotate(Math.PI / 2);
    ctx.fillText('PLEASANT', 0, 0);
    ctx.restore();
    ctx.save();
    ctx.translate(cx - r * 1.17, cy);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText('UNPLEASANT', 0, 0);
    ctx.restore();
    ctx.restore();
    // Term labels, under the data: the live point and its trail must never be hidden by text.
    const lfs = Math.max(9, Math.round(r / 20));
    ctx.save();
    ctx.font = `${lfs}px system-ui, sans-serif`;
    ctx.fillStyle = cssVar('--text');
    ctx.globalAlpha = 0.85;
    ctx.textBaseline = 'middle';
    for (const l of placeLabels(ctx, cx, cy, r, lfs)) {
      ctx.textAlign = l.align;
      ctx.fillText(l.term, l.x, l.y);
    }
    ctx.restore();
  },
};

/**
 * Places the term labels without overlaps. Russell's terms cluster (calm, relaxed, satisfied,
 * at ease and content sit within 8°), so each label tries a few radii, inside and just outside the
 * circle, and takes the first whose box hits nothing placed before it (the axis names included).
 */
function placeLabels(ctx, cx, cy, r, fs) {
  const boxes = [];
  const hits = (b) => boxes.some((o) => b.x0 < o.x1 && b.x1 > o.x0 && b.y0 < o.y1 && b.y1 > o.y0);
  // The axis names drawn by beforeDatasetsDraw are obstacles too.
  const axisW = fs * 6;
  boxes.push({ x0: cx - axisW / 2, x1: cx + axisW / 2, y0: cy - r * 1.16 - fs, y1: cy - r * 1.16 + fs });
  boxes.push({ x0: cx - axisW / 2, x1: cx + axisW / 2, y0: cy + r * 1.16 - fs, y1: cy + r * 1.16 + fs });
  const out = [];
  for (const t of terms) {
    const a = (t.angleDeg * Math.PI) / 180;
    const c = Math.cos(a);
    const sn = Math.sin(a);
    const w = ctx.measureText(t.term).width;
    const h = fs * 1.15;
    let chosen = null;
    for (const k of [0.93, 1.06, 0.8, 0.67, 0.54]) {
      const inside = k < 1;
      // Inside the circle the text runs towards the centre; outside, away from it.
      const align = Math.abs(c) < 0.3 ? 'center' : c > 0 === inside ? 'right' : 'left';
      const x = cx + c * r * k;
      const y = cy - sn * r * k + (Math.abs(c) < 0.3 ? (sn > 0 === inside ? 0.6 : -0.6) * h : 0);
      const x0 = align === 'right' ? x - w : align === 'left' ? x : x - w / 2;
      const b = { x0: x0 - 2, x1: x0 + w + 2, y0: y - h / 2, y1: y + h / 2 };
      const cand = { term: t.term, x, y, align, b };
      if (!hits(b)) {
        chosen = cand;
        break;
      }
      chosen ??= cand;
    }
    boxes.push(chosen.b);
    out.push(chosen);
  }
  return out;
}

function makeCharts() {
  Chart.defaults.color = cssVar('--muted');
  Chart.defaults.font.family = 'system-ui, sans-serif';
  const accent = cssVar('--accent');
  const grid = { color: 'rgba(255,255,255,0.05)' };
  circChart = new Chart($('circumplex'), {
    type: 'scatter',
    data: {
      datasets: [
        {
          label: 'terms',
          data: terms.map((t) => ({ x: t.valence, y: t.arousal })),
          pointRadius: 3,
          pointBackgroundColor: cssVar('--muted'),
          pointBorderWidth: 0,
        },
        {
          label: 'trail',
          data: [],
          showLine: true,
          borderWidth: 3,
          pointRadius: (c) => 2 + (4 * c.dataIndex) / TRAIL,
          // Older points fade out: alpha grows with the index in the trail.
          pointBackgroundColor: (c) => `rgba(255,176,0,${(0.1 + (0.8 * (c.dataIndex + 1)) / (c.dataset.data.length || 1)).toFixed(3)})`,
          pointBorderWidth: 0,
          segment: { borderColor: (c) => `rgba(255,176,0,${(0.05 + 0.6 * (c.p1DataIndex / (c.chart.data.datasets[1].data.length || 1))).toFixed(3)})` },
        },
        { label: 'now', data: [], pointRadius: 14, pointHoverRadius: 14, pointBackgroundColor: accent, pointBorderColor: '#fff', pointBorderWidth: 3 },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      events: [],
      plugins: { legend: { display: false }, tooltip: { enabled: false } },
      scales: {
        x: { type: 'linear', min: -1.25, max: 1.25, grid: { display: false }, ticks: { display: false }, border: { display: false } },
        y: { type: 'linear', min: -1.25, max: 1.25, grid: { display: false }, ticks: { display: false }, border: { display: false } },
      },
    },
    plugins: [circumplexBackdrop],
  });
  seriesChart = new Chart($('series'), {
    type: 'line',
    data: {
      datasets: [
        { label: 'valence', data: [], borderColor: cssVar('--valence'), borderWidth: 3, pointRadius: 0, tension: 0.2 },
        { label: 'arousal', data: [], borderColor: cssVar('--arousal'), borderWidth: 3, pointRadius: 0, tension: 0.2 },
        {
          label: 'dominance',
          data: [],
          borderColor: cssVar('--dominance'),
          borderWidth: 2,
          borderDash: [6, 4],
          pointRadius: 0,
          tension: 0.2,
          spanGaps: false,
          hidden: true,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      normalized: true,
      // The dominance entry is listed only while the stream has dominance to show.
      plugins: {
        legend: { labels: { boxWidth: 14, font: { size: fontPx(0.8) }, filter: (item, data) => item.datasetIndex !== 2 || !data.datasets[2].hidden } },
        tooltip: { enabled: false },
      },
      scales: {
        x: { type: 'linear', min: 0, max: SERIES_SECONDS, title: { display: true, text: 'audio time (s)' }, grid, ticks: { font: { size: fontPx(0.7) } } },
        y: { min: -1, max: 1, grid, ticks: { stepSize: 0.5, font: { size: fontPx(0.7) } } },
      },
    },
  });
}

/** rem → px at the current root size, so chart text scales like the page (projector mode). */
function fontPx(rem) {
  return Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * rem);
}

/** Keeps the circumplex square: as large as its panel allows. */
function fitCircumplex() {
  const panel = document.querySelector('.circ');
  const canvas = $('circumplex');
  const box = canvas.parentElement === panel ? wrapCanvas(canvas) : canvas.parentElement;
  const side = Math.floor(Math.min(panel.clientWidth - 16, panel.clientHeight - 16));
  box.style.width = `${Math.max(200, side)}px`;
  box.style.height = `${Math.max(200, side)}px`;
}

function wrapCanvas(canvas) {
  const box = document.createElement('div');
  box.style.position = 'relative';
  canvas.replaceWith(box);
  box.appendChild(canvas);
  return box;
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else document.documentElement.requestFullscreen().catch(() => document.documentElement.classList.toggle('projector'));
}

function onFullscreenChange() {
  document.documentElement.classList.toggle('projector', Boolean(document.fullscreenElement) || params.has('projector'));
  // Chart text sizes are in px: rebuild the fonts for the new root size.
  if (seriesChart) {
    seriesChart.options.plugins.legend.labels.font.size = fontPx(0.8);
    seriesChart.options.scales.x.ticks.font.size = fontPx(0.7);
    seriesChart.options.scales.y.ticks.font.size = fontPx(0.7);
  }
  setTimeout(() => {
    fitCircumplex();
    queueRedraw();
  }, 50);
}

async function main() {
  if (params.has('projector')) document.documentElement.classList.add('projector');
  try {
    const res = await fetch('terms.json');
    terms = (await res.json()).terms;
  } catch (err) {
    globalError = `could not load terms.json: ${err.message}`;
  }
  fitCircumplex();
  if (typeof Chart === 'function') makeCharts();
  else globalError = 'chart.js did not load (vendor/chart.umd.js)';
  new ResizeObserver(() => fitCircumplex()).observe(document.querySelector('.circ'));
  $('stream-select').addEventListener('change', (e) => select(e.target.value));
  $('fullscreen').addEventListener('click', toggleFullscreen);
  document.addEventListener('fullscreenchange', onFullscreenChange);
  document.addEventListener('keydown', (e) => {
    if ((e.key === 'f' || e.key === 'F') && !e.ctrlKey && !e.metaKey && e.target === document.body) toggleFullscreen();
  });
  connect();
  redraw();
}

// A small read-only window for tests and debugging: where the point is on screen, trail length,
// connection state and counters.
window.circumplex = {
  get connection() {
    return conn.state;
  },
  get selected() {
    return selected;
  },
  get stats() {
    return { ...stats };
  },
  streams() {
    return [...streams.values()].map((s) => ({
      id: s.id,
      lastSeq: s.lastSeq,
      points: s.points.length,
      lines: s.lines.length,
      state: s.status?.state ?? s.info?.state ?? null,
      error: s.error,
    }));
  },
  /** Points of the dominance line in the time series (frames with dominance in the visible range). */
  dominancePoints() {
    return seriesChart ? seriesChart.data.datasets[2].data.filter((p) => p.y !== null).length : 0;
  },
  /** Pixel position of the live point on the circumplex canvas, or null. */
  pointPixel() {
    const el = circChart?.getDatasetMeta(2).data[0];
    return el ? { x: el.x, y: el.y } : null;
  },
  /** Number of points drawn in the trail. */
  trailLength() {
    return circChart ? circChart.getDatasetMeta(1).data.length : 0;
  },
  /** Number of term labels/points drawn. */
  termCount() {
    return circChart ? circChart.getDatasetMeta(0).data.length : 0;
  },
  select,
};

// Module scripts run after the deferred chart.js classic script, so Chart is defined here.
main();
