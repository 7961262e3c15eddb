/**
 * GET/HEAD of the dashboard's static files (`/` → index.html) and `/vendor/chart.umd.js`, never
 * outside the dashboard folder.
 */
import { createReadStream, statSync } from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

/** Serves one request for a static file (404 as JSON when there is none). */
export type StaticHandler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void;

/** A static-file handler for the dashboard folder. */
export function createStaticHandler(dashboardFolder: string): StaticHandler {
  const dashboardDir = path.resolve(dashboardFolder);
  // Resolved like an import, so it is found wherever npm put chart.js (hoisted above an installed circumplex, too).
  const chartJs = path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js');
  return (req, res, url) => {
    const notFound = () => void res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    let file: string;
    if (url.pathname === '/vendor/chart.umd.js') file = chartJs;
    else {
      let rel: string;
      try {
        rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
      } catch {
        // Malformed percent-encoding (`/%E0%A4%A`): decodeURIComponent throws, which ended the process.
        return void res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'malformed percent-encoding in the path' }));
      }
      file = path.resolve(dashboardDir, '.' + rel);
      // Never serve outside the dashboard folder (../ tricks).
      if (!file.startsWith(dashboardDir + path.sep)) return notFound();
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return notFound();
      size = st.size;
    } catch {
      return notFound();
    }
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  };
}
