/**
 * The dev cloud on a three-node RabbitMQ cluster with quorum queues: the test brings the cloud
 * into that shape itself (`up --rabbit-cluster 3`) and puts the default layout back at the end
 * (`up --rabbit-cluster 1`: two independent brokers). The services' topic queues are quorum
 * queues replicated over the three nodes; the node the services are connected to is SIGKILLed by
 * its PID while a migration is between checkpoint and restore: the services move to another
 * node, the migration completes, the container runs once, on the target, with its state. Then
 * compute1 is evacuated to compute2 with 12 small counters and a second node (the leader of the
 * conductor's quorum queue, when that is not the node killed before) is SIGKILLed after the first
 * counter moved: the evacuation completes, each counter once, on compute2, counting on; the node
 * is started again and rejoins.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { isFinal } from '../../../src/objects/migration.js';
import { rabbitctl } from '../../../src/devcloud/rabbit.js';
import type { CloudStatus } from '../../../src/devcloud/status.js';
import { runDevcloud } from '../../helpers/cloud.js';
import { uniqueName } from '../../helpers/docker.js';
import { faultedEvacuation } from '../../helpers/evacuation.js';
import { startMigration, waitMigration } from '../../helpers/ferry.js';
import { assertInvariant, cleanUp, redisOn1, useFaults } from '../faults/harness.js';

jest.setTimeout(600_000);

const EVACUATED = 12;
// The dev cloud runs one migration per host at a time: the second waits in the conductor's queue.
const MAX_PARALLEL = 2;

/** ferry-devcloud as an operator runs it (no test-only environment). */
async function status(): Promise<CloudStatus> {
  return JSON.parse(await runDevcloud(['status', '--json'])) as CloudStatus;
}

/** Queue name -> type in vhost ferry, asked of `node`. */
async function queueTypes(node: string): Promise<Map<string, string>> {
  const out = (await rabbitctl(['list_queues', '-p', 'ferry', 'name', 'type', '--formatter', 'json'], node)).stdout;
  return new Map((JSON.parse(out) as { name: string; type: string }[]).map((q) => [q.name, q.type]));
}

/** Quorum queue name -> the node leading it, asked of `node`. */
async function queueLeaders(node: string): Promise<Map<string, string>> {
  const out = (await rabbitctl(['list_queues', '-p', 'ferry', 'name', 'leader', '--formatter', 'json'], node)).stdout;
  return new Map((JSON.parse(out) as { name: string; leader: string }[]).map((q) => [q.name, q.leader]));
}

async function runningNodes(node: string): Promise<string[]> {
  const out = (await rabbitctl(['cluster_status', '--formatter', 'json'], node)).stdout;
  return (JSON.parse(out) as { running_nodes: string[] }).running_nodes;
}

describe('up --rabbit-cluster 3: quorum queues, a node killed mid-migration', () => {
  const t0 = Date.now();
  let killed: string | null = null;
  const evacuation = faultedEvacuation(uniqueName('rc-evac'), EVACUATED, MAX_PARALLEL);

  beforeAll(async () => {
    await runDevcloud(['up', '--rabbit-cluster', '3']);
    process.stdout.write(`up --rabbit-cluster 3: ${Math.round((Date.now() - t0) / 1000)} s\n`);
  });

  afterAll(async () => {
    if (killed) await runDevcloud(['start', killed]).catch(() => undefined);
    await cleanUp();
    await evacuation.cleanUp();
    const t = Date.now();
    await runDevcloud(['up', '--rabbit-cluster', '1']);
    const s = await status();
    expect(s.rabbit.cluster_size).toBe(1);
    expect(s.rabbit.nodes.map((n) => n.name)).toEqual(['rabbitmq', 'rabbitmq2']);
    process.stdout.write(`up --rabbit-cluster 1: ${Math.round((Date.now() - t) / 1000)} s; whole file ${Math.round((Date.now() - t0) / 1000)} s\n`);
  }, 600_000);

  test('status lists the three nodes, clustered; the services declared quorum queues', async () => {
    const s = await status();
    expect(s.rabbit.cluster_size).toBe(3);
    expect(s.rabbit.nodes.map((n) => [n.name, n.port])).toEqual([
      ['rabbitmq', 5672],
      ['rabbitmq2', 5673],
      ['rabbitmq3', 5675],
    ]);
    expect(s.rabbit.nodes.every((n) => typeof n.pid === 'number')).toBe(true);
    expect(s.rabbit.services_transport_url).toContain('127.0.0.1:5676');
    expect((await runningNodes('rabbitmq')).sort()).toEqual(['ferry2@localhost', 'ferry3@localhost', 'ferry@localhost']);
    const types = await queueTypes('rabbitmq2');
    for (const q of ['ferry-conductor', 'ferry-compute.compute1', 'ferry-compute.compute2']) expect([q, types.get(q)]).toEqual([q, 'quorum']);
    // Each RPC server's own fanout queue stays classic, as oslo.messaging keeps it.
    const fanouts = [...types].filter(([n]) => n.startsWith('ferry-conductor_fanout_'));
    expect(fanouts.length).toBeGreaterThan(0);
    expect(fanouts.every(([, type]) => type === 'classic')).toBe(true);
  });

  test('the node the services use is SIGKILLed mid-migration: the migration completes, the container runs once with its state', async () => {
    // The source holds the migration in `running` for 6 s after the checkpoint: the window.
    await useFaults({ compute1: { delayAfterCheckpointMs: 6000 } });
    const subject = await redisOn1('rabbit-cluster');
    const started = await startMigration(subject.name, 'compute2');
    const running = await waitMigration(started.uuid, (m) => m.status === 'running' || isFinal(m.status), 60_000);
    expect(running.status).toBe('running');

    const before = await status();
    const first = before.rabbit.nodes[0];
    expect(first.pid).not.toBeNull();
    process.kill(first.pid!, 'SIGKILL');
    killed = first.name;
    const t = Date.now();

    const end = await waitMigration(started.uuid);
    await assertInvariant(end, subject, { status: 'completed', host: 'compute2' });
    process.stdout.write(`migration finished ${Math.round((Date.now() - t) / 1000)} s after the kill\n`);
    // Two nodes of three still run: the queues kept their type (and their quorum).
    expect((await runningNodes('rabbitmq2')).sort()).toEqual(['ferry2@localhost', 'ferry3@localhost']);
    const types = await queueTypes('rabbitmq2');
    expect(types.get('ferry-conductor')).toBe('quorum');
    // The callers' reply queues (declared again on the node they moved to) stay classic.
    const replies = [...types].filter(([n]) => n.startsWith('reply_'));
    expect(replies.length).toBeGreaterThan(0);
    expect(replies.every(([, type]) => type === 'classic')).toBe(true);

    await runDevcloud(['start', first.name]);
    killed = null;
    expect((await runningNodes('rabbitmq')).length).toBe(3);
    await useFaults({});
  });

  test(`a second node is SIGKILLed mid-evacuation of ${EVACUATED} counters: each moves once, with its state; the node rejoins`, async () => {
    await evacuation.start();
    const s = await status();
    const leader = (await queueLeaders('rabbitmq2')).get('ferry-conductor');
    // Another node than the one the migration test killed: the conductor queue's leader when it is another.
    const victim = s.rabbit.nodes.find((n) => n.node === leader && n.name !== 'rabbitmq') ?? s.rabbit.nodes[1];
    const survivor = s.rabbit.nodes.find((n) => n.name !== victim.name)!;
    expect(victim.pid).not.toBeNull();
    const r = await evacuation.run(async () => {
      process.kill(victim.pid!, 'SIGKILL');
      killed = victim.name;
    });
    process.stdout.write(`${r.summary}; killed ${victim.name} (${victim.node}, leader of ferry-conductor: ${leader === victim.node})\n`);
    expect((await runningNodes(survivor.name)).length).toBe(2);
    expect((await queueTypes(survivor.name)).get('ferry-conductor')).toBe('quorum');

    await runDevcloud(['start', victim.name]);
    killed = null;
    expect((await runningNodes(victim.name)).sort()).toEqual(['ferry2@localhost', 'ferry3@localhost', 'ferry@localhost']);
  });
});
