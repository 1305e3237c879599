/**
 * The data channel's grants, plans and tokens (pure bookkeeping, fake clock), and the
 * mapping of its refusals to HTTP statuses.
 */
import { expect, test } from '@jest/globals';
import {
  ChannelTokenMissing,
  ChannelTokenRefused,
  FerryError,
  InsufficientStorage,
  InvalidInput,
  MethodNotAllowed,
  NoSuchResource,
  PartAlreadySent,
  PartNotPlanned,
  TransferCorrupted,
  TransferQuotaExceeded,
  UnsafeArchive,
} from '../../../src/common/errors.js';
import { TransferGrants, bearer, type PlannedPart } from '../../../src/compute/datachannel/grants.js';
import { channelStatus } from '../../../src/compute/datachannel/status.js';

const all = () => true;
const part = (p: string): PlannedPart => ({ part: p, bytes: 10, entries: 2, encoding: 'gzip' });

function setup(ttl = 60_000) {
  let now = 1_000_000;
  const g = new TransferGrants(ttl, () => now);
  return { g, tick: (ms: number) => (now += ms) };
}

test('a plan needs the grant token, from the bound sender, for expected parts only, with a checkpoint', () => {
  const { g } = setup();
  const grant = g.grantUpload('m', 'compute1', ['checkpoint', 'rootfs', 'volume/v']);
  expect(() => g.plan('m', null, ['compute1'], [part('checkpoint')], all)).toThrow(ChannelTokenMissing);
  expect(() => g.plan('m', `${grant}x`, ['compute1'], [part('checkpoint')], all)).toThrow(/wrong token/);
  expect(() => g.plan('other', grant, ['compute1'], [part('checkpoint')], all)).toThrow(/no upload was granted/);
  expect(() => g.plan('m', grant, ['compute3'], [part('checkpoint')], all)).toThrow(/bound to sender compute1/);
  expect(() => g.plan('m', grant, ['compute1'], [part('checkpoint'), part('volume/w')], all)).toThrow(PartNotPlanned);
  expect(() => g.plan('m', grant, ['compute1'], [part('rootfs')], all)).toThrow(/no checkpoint/);
  expect(() => g.plan('m', grant, ['compute1'], [part('checkpoint'), part('checkpoint')], all)).toThrow(/twice/);
  // Without TLS (peer null) only the token counts.
  const answer = g.plan('m', grant, null, [part('checkpoint'), part('volume/v')], (e) => e === 'identity');
  expect(answer.parts.map((p) => [p.part, p.encoding])).toEqual([
    ['checkpoint', 'identity'],
    ['volume/v', 'identity'],
  ]);
  expect(new Set([...answer.parts.map((p) => p.token), answer.commit_token, grant]).size).toBe(4);
});

test('a part token opens one PUT of its own part; a second or concurrent one is 409; failure needs a new plan', () => {
  const { g } = setup();
  const grant = g.grantUpload('m', 'compute1', ['checkpoint', 'rootfs']);
  const a = g.plan('m', grant, ['compute1'], [part('checkpoint'), part('rootfs')], all);
  const [ck, rf] = a.parts;
  expect(() => g.claimPart('m', 'checkpoint', rf.token, ['compute1'])).toThrow(/wrong token/);
  expect(() => g.claimPart('m', 'volume/x', ck.token, ['compute1'])).toThrow(PartNotPlanned);
  expect(() => g.claimPart('m', 'checkpoint', ck.token, ['compute3'])).toThrow(ChannelTokenRefused);
  const claim = g.claimPart('m', 'checkpoint', ck.token, ['compute1']);
  expect(claim).toMatchObject({ part: 'checkpoint', bytes: 10, entries: 2, encoding: 'gzip' });
  expect(() => g.claimPart('m', 'checkpoint', ck.token, ['compute1'])).toThrow(/already being received/);
  expect(g.receiving('m')).toEqual(['checkpoint']);
  g.finishPart('m', 'checkpoint', claim.generation, true);
  expect(() => g.claimPart('m', 'checkpoint', ck.token, ['compute1'])).toThrow(PartAlreadySent);
  const r = g.claimPart('m', 'rootfs', rf.token, ['compute1']);
  g.finishPart('m', 'rootfs', r.generation, false);
  expect(() => g.claimPart('m', 'rootfs', rf.token, ['compute1'])).toThrow(/plan the transfer again/);
  // Re-planning replaces every token; a late finish of the old plan changes nothing.
  const b = g.plan('m', grant, ['compute1'], [part('checkpoint'), part('rootfs')], all);
  expect(() => g.claimPart('m', 'rootfs', rf.token, ['compute1'])).toThrow(/wrong token/);
  g.finishPart('m', 'rootfs', r.generation, true);
  expect(g.claimPart('m', 'rootfs', b.parts[1].token, ['compute1']).generation).toBe(r.generation + 1);
});

test('the commit token, then nothing opens anything', () => {
  const { g } = setup();
  const grant = g.grantUpload('m', 'compute1', ['checkpoint']);
  const a = g.plan('m', grant, ['compute1'], [part('checkpoint')], all);
  expect(() => g.checkCommit('m', a.parts[0].token, ['compute1'])).toThrow(/wrong token/);
  expect(g.checkCommit('m', a.commit_token, ['compute1']).map((p) => p.part)).toEqual(['checkpoint']);
  g.markCommitted('m');
  expect(() => g.checkCommit('m', a.commit_token, ['compute1'])).toThrow(/already committed/);
  expect(() => g.claimPart('m', 'checkpoint', a.parts[0].token, ['compute1'])).toThrow(/already committed/);
  expect(() => g.plan('m', grant, ['compute1'], [part('checkpoint')], all)).toThrow(/already committed/);
  g.revoke('m');
  expect(g.has('m')).toBe(false);
  expect(() => g.plan('m', grant, ['compute1'], [part('checkpoint')], all)).toThrow(/no upload was granted/);
});

test('tokens expire: the grant ttl after it was issued, the plan ttl after its last finished part', () => {
  const { g, tick } = setup(60_000);
  const grant = g.grantUpload('m', 'compute1', ['checkpoint', 'rootfs']);
  tick(59_000);
  const a = g.plan('m', grant, ['compute1'], [part('checkpoint'), part('rootfs')], all);
  tick(50_000);
  const c = g.claimPart('m', 'checkpoint', a.parts[0].token, ['compute1']);
  tick(9_000);
  expect(() => g.plan('m', grant, ['compute1'], [part('checkpoint')], all)).toThrow(/grant expired/);
  g.finishPart('m', 'checkpoint', c.generation, true); // pushes the plan's expiry
  tick(30_000);
  g.claimPart('m', 'rootfs', a.parts[1].token, ['compute1']);
  tick(61_000);
  expect(() => g.checkCommit('m', a.commit_token, ['compute1'])).toThrow(/expired/);
});

test('the export token: bound to the receiver, one GET at a time, spent by a complete one', () => {
  const { g, tick } = setup();
  const t = g.grantExport('m', 'compute2');
  expect(() => g.claimExport('m', null, ['compute2'])).toThrow(ChannelTokenMissing);
  expect(() => g.claimExport('m', t, ['compute3'])).toThrow(/bound to receiver compute2/);
  g.claimExport('m', t, ['compute2']);
  expect(() => g.claimExport('m', t, ['compute2'])).toThrow(/already being sent/);
  g.finishExport('m', false); // cut short: may be fetched again
  g.claimExport('m', t, ['compute2']);
  g.finishExport('m', true);
  expect(() => g.claimExport('m', t, ['compute2'])).toThrow(/already used/);
  const t2 = g.grantExport('n', 'compute2');
  tick(60_001);
  expect(() => g.claimExport('n', t2, ['compute2'])).toThrow(/expired/);
  expect(bearer('Bearer abc')).toBe('abc');
  expect(bearer('Basic abc')).toBeNull();
});

test('statuses of the data channel come from the error registry', () => {
  const cases: [FerryError, number][] = [
    [new ChannelTokenMissing('x'), 401],
    [new ChannelTokenRefused('x'), 403],
    [new PartNotPlanned('x'), 403],
    [new PartAlreadySent('x'), 409],
    [new TransferQuotaExceeded('x'), 413],
    [new UnsafeArchive('x'), 422],
    [new TransferCorrupted('x'), 422],
    [new InsufficientStorage('x'), 507],
    [new InvalidInput('x'), 400],
    [new NoSuchResource('x'), 404],
    [new MethodNotAllowed('x'), 405],
  ];
  for (const [e, status] of cases) expect([e.code, channelStatus(e)]).toEqual([e.code, status]);
  expect(channelStatus(new Error('plain'))).toBe(500);
});
