#!/usr/bin/env python3
"""Subscribe to a circumplex server and print its frames, resuming by seq after a dropped connection.

Needs only the standard `websockets` library (Debian: python3-websockets; pip: websockets).
The wire format is described by clients/protocol.schema.json (JSON Schema of protocol v1).

    /usr/bin/python3 examples/python/subscribe.py --url ws://localhost:8787 --stream '*'
    /usr/bin/python3 examples/python/subscribe.py --url ws://localhost:8787 --json --count 100

How it works (the same rules as the TypeScript client):
- connect to /v1/stream with subprotocol circumplex.v1 and wait for `hello`;
- send `subscribe` with `resumeFrom` = the last seq seen per stream (for streams announced in
  hello and not seen yet: their lastSeq then, or -1 with --from-start), so nothing published
  between hello and the subscribe is lost;
- hand out each (stream, seq) at most once: a seq at or below the last one seen is a duplicate;
- on a dropped connection, reconnect with exponential backoff and jitter and resume as above.
"""
import argparse
import asyncio
import json
import random
import sys

import websockets

SUBPROTOCOL = "circumplex.v1"
STREAM_PATH = "/v1/stream"
# Server message types that belong to a stream and carry its seq.
STREAM_EVENTS = {"affect", "transcript", "status", "turn", "alert"}
# Close codes after which retrying would fail the same way (protocol error, unsupported, policy).
NO_RETRY_CLOSE_CODES = {1002, 1003, 1008}


def stream_url(url):
    """http(s):// becomes ws(s)://, and a bare host gets /v1/stream."""
    if url.startswith("http://"):
        url = "ws://" + url[len("http://"):]
    elif url.startswith("https://"):
        url = "wss://" + url[len("https://"):]
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("ws", "wss"):
        raise SystemExit(f"subscribe.py: unsupported URL {url!r}; use ws://host:port or http://host:port")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}{'/' + path if slash and path else STREAM_PATH}"


def describe(msg):
    """One human-readable line for a stream event."""
    sid, seq, t = msg.get("streamId"), msg.get("seq"), msg.get("tMs", 0) / 1000
    kind = msg["type"]
    if kind == "affect":
        return (f"{sid}  #{seq}  t={t:7.2f}s  {msg['label']:<10} v={msg['valence']:+.2f} "
                f"a={msg['arousal']:+.2f} c={msg['confidence']:.2f}")
    if kind == "transcript":
        return f"{sid}  #{seq}  t={t:7.2f}s  {'final ' if msg.get('final') else 'partial'} \"{msg.get('text', '')}\""
    if kind == "turn":
        mean = msg.get("mean", {})
        return (f"{sid}  #{seq}  t={t:7.2f}s  turn {msg.get('durationMs', 0) / 1000:.1f}s {msg.get('label')} "
                f"v={mean.get('valence', 0):+.2f} a={mean.get('arousal', 0):+.2f}")
    if kind == "alert":
        return f"{sid}  #{seq}  t={t:7.2f}s  ALERT {msg.get('alert')}: {msg.get('reason')}"
    return f"{sid}  #{seq}  t={t:7.2f}s  {kind} {msg.get('state', '')} {msg.get('message', '')}"


class Subscriber:
    def __init__(self, args):
        self.args = args
        self.url = stream_url(args.url)
        self.last_seq = {}  # stream id -> last seq handed out
        self.frames = 0
        self.duplicates = 0
        self.gaps = 0
        self.connections = 0

    def log(self, text):
        print(f"subscribe.py: {text}", file=sys.stderr, flush=True)

    def resume_from(self, announced):
        wanted = lambda sid: "*" in self.args.stream or sid in self.args.stream
        resume = {}
        for s in announced:
            sid = s["streamId"]
            if not wanted(sid):
                continue
            # A lower lastSeq than ours means the server restarted the stream: seqs start over.
            if sid in self.last_seq and s["lastSeq"] < self.last_seq[sid]:
                del self.last_seq[sid]
            if sid not in self.last_seq:
                resume[sid] = -1 if self.args.from_start else s["lastSeq"]
        for sid, seq in self.last_seq.items():
            if wanted(sid):
                resume[sid] = seq
        return resume

    def handle(self, msg):
        """Returns True when --count frames have been printed."""
        kind = msg.get("type")
        if kind == "resumed":
            if msg.get("missed"):
                self.log(f"{msg['streamId']}: {msg['missed']} frame(s) were no longer in the server's ring")
            return False
        if kind == "error":
            self.log(f"server error {msg.get('code')}: {msg.get('message')}")
            return False
        if kind not in STREAM_EVENTS:
            return False  # hello, stream, and types from later minor versions
        sid, seq = msg["streamId"], msg["seq"]
        last = self.last_seq.get(sid, -1)
        if seq <= last:
            self.duplicates += 1
            return False
        if last >= 0 and seq > last + 1:
            self.gaps += seq - last - 1
        self.last_seq[sid] = seq
        self.frames += 1
        print(json.dumps(msg) if self.args.json else describe(msg), flush=True)
        return self.args.count is not None and self.frames >= self.args.count

    async def connect_once(self):
        headers = {"Authorization": f"Bearer {self.args.token}"} if self.args.token else {}
        major = int(websockets.__version__.split(".")[0])
        header_kw = "additional_headers" if major >= 14 else "extra_headers"
        async with websockets.connect(self.url, subprotocols=[SUBPROTOCOL], **{header_kw: headers},
                                      open_timeout=10, max_size=2**24) as ws:
            if ws.subprotocol != SUBPROTOCOL:
                raise SystemExit(f"subscribe.py: {self.url} did not accept subprotocol {SUBPROTOCOL}")
            hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            if hello.get("type") != "hello":
                raise SystemExit(f"subscribe.py: expected hello, got {hello.get('type')!r}")
            self.connections += 1
            resume = self.resume_from(hello.get("streams", []))
            sub = {"type": "subscribe", "streamIds": self.args.stream}
            if resume:
                sub["resumeFrom"] = resume
            await ws.send(json.dumps(sub))
            self.log(f"connected to {self.url} (protocol {hello.get('version')}), "
                     f"{'resuming ' + json.dumps(resume) if resume else 'live'}")
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                if self.handle(json.loads(raw)):
                    return True
        return False

    async def run(self):
        attempt = 0
        while True:
            try:
                if await self.connect_once():
                    return 0
                self.log("server closed the connection")
                attempt = 0
            except websockets.exceptions.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else 1006
                if code in NO_RETRY_CLOSE_CODES:
                    self.log(f"closed with {code} ({e.rcvd.reason if e.rcvd else ''}); not retrying")
                    return 2
                self.log(f"connection lost (code {code})")
            except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake) as e:
                self.log(f"cannot connect: {e}")
            if not self.args.reconnect or attempt >= self.args.max_retries:
                return 1
            delay = min(self.args.max_backoff, 0.25 * 2 ** attempt) * (1 + 0.2 * (2 * random.random() - 1))
            attempt += 1
            await asyncio.sleep(delay)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="ws://localhost:8787", help="server address (ws://, wss://, http://, https://)")
    p.add_argument("--stream", action="append", help="stream id to follow (repeatable); default every stream ('*')")
    p.add_argument("--from-start", action="store_true", help="also replay what the server still has of running streams")
    p.add_argument("--json", action="store_true", help="print each frame as its JSON message")
    p.add_argument("--count", type=int, help="exit 0 after printing this many frames")
    p.add_argument("--token", help="bearer token (when the server has CIRCUMPLEX_TOKENS)")
    p.add_argument("--no-reconnect", dest="reconnect", action="store_false", help="exit when the connection drops")
    p.add_argument("--max-retries", type=int, default=1_000_000, help="give up after this many failed attempts in a row")
    p.add_argument("--max-backoff", type=float, default=10.0, help="longest wait between attempts, seconds")
    args = p.parse_args()
    args.stream = args.stream or ["*"]
    sub = Subscriber(args)
    try:
        code = asyncio.run(sub.run())
    except KeyboardInterrupt:
        code = 130
    sub.log(f"{sub.frames} frames, {sub.duplicates} duplicates dropped, {sub.gaps} seqs missing, "
            f"{sub.connections} connection(s)")
    sys.exit(code)


if __name__ == "__main__":
    main()
