/**
 * Docker's plugin transport for the Neutron driver (src/network/libnetwork.ts): HTTP on a Unix
 * socket that the engine finds in /run/docker/plugins/<name>.sock; each call a POST of JSON,
 * each answer JSON, a failure `{"Err": "..."}` with a non-200 status (Docker shows that text).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { FerryError } from '../common/errors.js';
import type { NeutronDockerDriver } from './libnetwork.js';

export const PLUGIN_DIR = '/run/docker/plugins';
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
const MAX_BODY = 1024 * 1024;

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Serve `driver` on the socket of plugin `name` (in `dir`); resolves once it listens. */
export async function servePlugin(name: string, driver: NeutronDockerDriver, dir = PLUGIN_DIR): Promise<http.Server> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) throw new Error(`plugin name "${name}" is not a valid Docker plugin name`);
  fs.mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, `${name}.sock`);
  fs.rmSync(socket, { force: true });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        if (req.method !== 'POST' || size > MAX_BODY) return reply(res, 400, { Err: 'a plugin call is a POST of at most 1 MiB' });
        let body: Record<string, unknown> = {};
        try {
          const text = Buffer.concat(chunks).toString('utf8').trim();
          if (text && text !== 'null') body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return reply(res, 400, { Err: 'the request body is not JSON' });
        }
        try {
          reply(res, 200, await driver.handle(req.url ?? '', body));
        } catch (e) {
          const status = e instanceof FerryError && e.kind === 'invalid' ? 400 : 500;
          reply(res, status, { Err: (e as Error).message });
        }
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  server.on('close', () => fs.rmSync(socket, { force: true }));
  return server;
}
