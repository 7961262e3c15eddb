/**
 * Browser example: follows affect frames with `circumplex/client` (which in a browser bundle is the
 * standard-WebSocket client: no Node modules), draws the latest point on the valence/arousal plane
 * and lists recent frames. Reconnects and resumes by seq on its own; each frame is shown once.
 * See index.html for how to bundle and open it.
 */
import { CircumplexClient, PROTOCOL_VERSION, type AffectFrameMessage, type ConnectionState, type StreamEventMessage } from 'circumplex/client';

const params = new URLSearchParams(location.search);
const server = params.get('server') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
const streamIds = (params.get('stream') ?? '*').split(',').filter((s) => s !== '');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const plane = $<HTMLCanvasElement>('plane');
const ctx = plane.getContext('2d');
const frames: AffectFrameMessage[] = [];
const log: string[] = [];

function draw(f: AffectFrameMessage | undefined): void {
  if (!ctx) return;
  const { width: w, height: h } = plane;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#ddd';
  ctx.beginPath();
  ctx.moveTo(w / 2, 0);
  ctx.lineTo(w / 2, h);
  ctx.moveTo(0, h / 2);
  ctx.lineTo(w, h / 2);
  ctx.stroke();
  if (!f) return;
  // valence → x (right = pleasant), arousal → y (up = activated)
  const x = ((f.valence + 1) / 2) * w;
  const y = ((1 - f.arousal) / 2) * h;
  ctx.fillStyle = `rgba(200, 40, 90, ${0.3 + 0.7 * f.confidence})`;
  ctx.beginPath();
  ctx.arc(x, y, 8, 0, 2 * Math.PI);
  ctx.fill();
}

function show(frame: StreamEventMessage): void {
  if (frame.type !== 'affect') {
    log.unshift(`${frame.streamId} #${frame.seq} ${frame.type}`);
  } else {
    frames.push(frame);
    $('label').textContent = frame.label;
    $('numbers').textContent =
      `${frame.streamId} · valence ${frame.valence.toFixed(2)} · arousal ${frame.arousal.toFixed(2)} · confidence ${frame.confidence.toFixed(2)}`;
    log.unshift(`${frame.streamId} #${frame.seq} t=${(frame.tMs / 1000).toFixed(2)}s ${frame.label}`);
    draw(frame);
  }
  log.length = Math.min(log.length, 20);
  $('log').textContent = log.join('\n');
}

const client = CircumplexClient.connect(server, { streamIds, fromStart: params.has('fromStart') });
client.state$.subscribe((s: ConnectionState) => {
  const el = $('state');
  el.textContent = s;
  el.dataset.state = s;
});
client.frames$.subscribe(show);
$('version').textContent = PROTOCOL_VERSION;
draw(undefined);

// For tests and the console: what the page has received.
(window as unknown as { example: unknown }).example = {
  frames,
  state: () => client.state$.value,
  stats: () => client.stats,
  close: () => client.close(),
};
