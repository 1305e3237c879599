/**
 * The one data-channel category the data-channel tests do not have: requests the running
 * ferry-compute's channel cannot route (unknown path, wrong method, a migration id or part name
 * that could climb out of the staging, no token at all), sent by a peer with a valid
 * certificate. Each gets its exact 4xx with the channel's JSON error body, and nothing is
 * staged. Token, plan, archive, quota and TLS refusals are counted from the data-channel
 * tests, not repeated here.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { cloud } from '../../../helpers/cloud.js';
import { unchangedBy, type Tally } from './world.js';

interface ChannelAnswer {
  status: number;
  body: { error?: { code: number; ferry_code: string; message: string } } | string;
}

/** The channel of compute2 as compute1 talks to it (compute1's certificate, the dev cloud's CA). */
function channel(method: string, urlPath: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<ChannelAnswer> {
  const pki = path.join(cloud().state_dir, 'pki');
  const [host, port] = (cloud().hosts.find((h) => h.name === 'compute2')?.migration_address ?? '').split(':');
  return new Promise((resolve, reject) => {
    const req = https.request({
      host,
      port: Number(port),
      method,
      path: urlPath,
      headers: opts.headers,
      ca: fs.readFileSync(path.join(pki, 'ca.crt')),
      cert: fs.readFileSync(path.join(pki, 'compute1.crt')),
      key: fs.readFileSync(path.join(pki, 'compute1.key')),
      servername: 'compute2',
      checkServerIdentity: () => undefined,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: ChannelAnswer['body'] = text;
        try {
          body = JSON.parse(text) as ChannelAnswer['body'];
        } catch {
          /* shown by the assertion */
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('the data channel did not answer in 10 s')));
    req.end(opts.body);
  });
}

function expectChannelError(r: ChannelAnswer, status: number, ferryCode: string, message: RegExp): void {
  expect({ status: r.status, body: r.body }).toEqual({
    status,
    body: { error: { code: status, ferry_code: ferryCode, message: expect.stringMatching(message) } },
  });
}

/** Nothing staged on compute2 for the suite's migration ids. */
function stagedBadInput(): string[] {
  const dir = path.join(cloud().hosts.find((h) => h.name === 'compute2')?.data_root ?? '', 'ferry-staging', 'compute2');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((d) => d.startsWith('badinput')) : [];
}

export function dataChannelCases(tally: Tally): void {
  const bad = (title: string, run: () => Promise<void>) => {
    it(
      title,
      tally.counting('data channel', () =>
        unchangedBy(async () => {
          await run();
          expect(stagedBadInput()).toEqual([]);
        }),
      ),
    );
  };

  describe('data channel: requests it cannot route (the running compute2 agent, as compute1)', () => {
    bad('an unknown path -> 404', async () => {
      expectChannelError(await channel('GET', '/v1/hello'), 404, 'no_such_resource', /no such resource \/v1\/hello/);
    });
    bad('GET on a plan -> 405', async () => {
      expectChannelError(await channel('GET', '/v1/migrations/badinput-dc/plan'), 405, 'method_not_allowed', /POST only/);
    });
    bad('a migration id that climbs out ("../../etc") -> 400', async () => {
      expectChannelError(
        await channel('POST', '/v1/migrations/..%2F..%2Fetc/plan', { body: '{}' }),
        400,
        'invalid_input',
        /bad migration id "\.\.\/\.\.\/etc"/,
      );
    });
    bad('a part name that climbs out ("../../etc/passwd") -> 400', async () => {
      expectChannelError(
        await channel('PUT', '/v1/migrations/badinput-dc/parts/..%2F..%2Fetc%2Fpasswd', { body: 'x' }),
        400,
        'invalid_input',
        /bad part name "\.\.\/\.\.\/etc\/passwd"/,
      );
    });
    bad('a plan without any token -> 401', async () => {
      const r = await channel('POST', '/v1/migrations/badinput-dc/plan', { headers: { 'content-type': 'application/json' }, body: '{"parts": []}' });
      expect(r.status).toBe(401);
      expect((r.body as { error: { ferry_code: string } }).error.ferry_code).toBe('channel_token_missing');
    });
  });
}
