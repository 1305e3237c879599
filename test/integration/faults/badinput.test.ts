/**
 * The bad-input suite on the real dev cloud: REST (badinput/rest.ts), the bus (badinput/bus.ts)
 * and the command lines (badinput/cli.ts), each case answered by a precise 4xx, a clear failure
 * reply or a clear CLI error, with nothing changed on any host. The data channel's bad-input
 * cases live with the data-channel tests and run there; here only their titles are checked (only the
 * requests the channel cannot route are here, in badinput/datachannel.ts). At the end the
 * count per category of the cases that ran and passed here is printed; it must be at least 60.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../helpers/cloud.js';
import { engine, removeQuietly, uniqueName } from '../../helpers/docker.js';
import { ferry, waitKnown } from '../../helpers/ferry.js';
import { sleep } from '../../../src/common/sleep.js';
import { RawBus, busCases } from './badinput/bus.js';
import { cliCases } from './badinput/cli.js';
import { dataChannelCases } from './badinput/datachannel.js';
import { reportGhostHost, restCases } from './badinput/rest.js';
import { Tally, watched } from './badinput/world.js';
import { ensureImage } from './harness.js';

const tally = new Tally();
const c1 = engine('compute1');
const c2 = engine('compute2');
const names = {
  running: uniqueName('bi-run'),
  exited: uniqueName('bi-exit'),
  twin: uniqueName('bi-twin'),
  mover: uniqueName('bi-move'),
};
let exitedId = '';
let bus: RawBus | undefined;

async function waitStatus(name: string, host: string, status: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await ferry().request<{ containers: { name: string; host: string; status: string }[] }>('GET', '/v1/containers');
    if (r.body.containers.some((c) => c.name === name && c.host === host && c.status === status)) return;
    if (Date.now() > deadline) throw new Error(`the conductor never saw ${name} ${status} on ${host}`);
    await sleep(300);
  }
}

beforeAll(async () => {
  watched.names = Object.values(names);
  // A host that reports once and then falls silent: down after [conductor] service_down_time, while the other cases run.
  await reportGhostHost();
  // The dev cloud loads its images into compute1 only; the twin runs on compute2 too, whatever ran before.
  await ensureImage('compute2', 'ferry/counter:latest');
  const start = async (d: typeof c1, name: string) => (await d.createContainer({ Image: 'ferry/counter:latest', name })).start();
  await Promise.all([start(c1, names.running), start(c1, names.twin), start(c2, names.twin), start(c1, names.mover)]);
  const exited = await c1.createContainer({ Image: 'ferry/counter:latest', name: names.exited, Entrypoint: ['/bin/busybox', 'true'] });
  exitedId = exited.id;
  await exited.start();
  await exited.wait();
  await Promise.all([
    waitKnown(names.running, 'compute1'),
    waitKnown(names.twin, 'compute1'),
    waitKnown(names.twin, 'compute2'),
    waitKnown(names.mover, 'compute1'),
    waitStatus(names.exited, 'compute1', 'exited'),
  ]);
  bus = await RawBus.open();
}, 120_000);

afterAll(async () => {
  await bus?.close();
  await Promise.all([c1, c2].flatMap((d) => Object.values(names).map((n) => removeQuietly(d, n))));
});

describe('bad input', () => {
  restCases(() => names, tally);
  busCases(
    () => ({ exitedId }),
    tally,
    () => bus as RawBus,
  );
  dataChannelCases(tally);
  cliCases(() => names, tally);
});

/**
 * The data channel's bad-input cases, owned by the data-channel tests: each title must still be
 * there (a case removed there shows up here). The fault tests in test/integration/faults/
 * datachannel.test.ts count whole, when that file exists.
 */
const DATA_CHANNEL_UNIT = 'test/unit/compute/datachannel.test.ts';
const DATA_CHANNEL_CASES = [
  'a commit naming its own checkpoint ("../../../../../../etc") is refused',
  'parts outside the grant or the plan are refused (403)',
  'missing (401), wrong, unknown and expired (403) tokens',
  'a second PUT of a part is 409, and so is a concurrent one',
  'quota: more content, more entries or more declared bytes than allowed are 413',
  'the symlink chain d -> . ; x -> d/d/d/../../../SECRET in a ${kind} part', // three parts: checkpoint, rootfs, volume
  'hard links and devices in a checkpoint',
  'a mismatched PUT is 400',
  'the upload is bound to the source host: another host of the same CA is refused (403)',
  'a client without a certificate, or with one from another CA, does not get through the handshake',
  'the client refuses a server whose certificate is for another host',
  'plain HTTP to the TLS channel is refused',
  'the image export: one complete GET per token, bound to the receiving host',
];
const SYMLINK_CHAIN_PARTS = 3;

function countDataChannelCases(): { unit: number; faults: number } {
  const unitText = fs.readFileSync(path.join(repoRoot, DATA_CHANNEL_UNIT), 'utf8');
  const missing = DATA_CHANNEL_CASES.filter((t) => !unitText.includes(t));
  if (missing.length) throw new Error(`data-channel cases no longer in ${DATA_CHANNEL_UNIT}: ${missing.join(' | ')}`);
  const faultsFile = path.join(repoRoot, 'test/integration/faults/datachannel.test.ts');
  // Every fault test there that is about input the channel must refuse (not the full-disk one: a 507 is no bad input).
  const titles = fs.existsSync(faultsFile) ? [...fs.readFileSync(faultsFile, 'utf8').matchAll(/^\s*(?:it|test)\((['"`])(.*?)\1/gm)].map((m) => m[2]) : [];
  const faults = titles.filter((t) => !/disk full|\b5\d\d\b/.test(t)).length;
  return { unit: DATA_CHANNEL_CASES.length - 1 + SYMLINK_CHAIN_PARTS, faults };
}

describe('data channel (owned by the data-channel tests, not counted here)', () => {
  it('its bad-input cases are all still there', () => {
    const { unit, faults } = countDataChannelCases();
    const here = tally.counts.get('data channel') ?? 0;
    tally.notes.set(
      'data channel',
      `${here} run here (routing); not counted: ${unit} in ${DATA_CHANNEL_UNIT}${faults ? `, ${faults} in test/integration/faults/datachannel.test.ts` : ''}, run by those files`,
    );
    expect(unit).toBeGreaterThan(0);
  });
});

describe('count', () => {
  it('at least 60 bad-input cases run and passed here', () => {
    console.log(tally.report());
    expect(tally.total).toBeGreaterThanOrEqual(60);
  });
});
