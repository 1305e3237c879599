/**
 * A private three-node RabbitMQ cluster for the quorum-queue bus tests: nodes ferryq1..3@localhost,
 * AMQP on 127.0.0.1:5781-5783, distribution on 25781-25783, one shared Erlang cookie, each node's
 * state in its own temp dir. Never the dev cloud's nodes or ports; stopped by its own PIDs only.
 */
import { randomBytes } from 'node:crypto';
import { PrivateRabbit } from './private-rabbit.js';

export const CLUSTER_PORTS = [5781, 5782, 5783];

export class PrivateRabbitCluster {
  readonly nodes: PrivateRabbit[];

  constructor() {
    const cookie = randomBytes(16).toString('hex').toUpperCase();
    this.nodes = CLUSTER_PORTS.map((port, i) => new PrivateRabbit({ port, distPort: port + 20_000, nodeName: `ferryq${i + 1}@localhost`, cookie }));
  }

  /** Every node, first to last (oslo.messaging's multi-host transport_url), plain AMQP, vhost `/`. */
  get transportUrl(): string {
    return `rabbit://${this.nodes.map((n) => `guest:guest@127.0.0.1:${n.port}`).join(',')}/`;
  }

  /** Boot the three nodes (in parallel), then join the second and third to the first. */
  async start(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.start()));
    const [first, ...rest] = this.nodes;
    for (const n of rest) {
      await n.ctl(['stop_app']);
      await n.ctl(['reset']);
      await n.ctl(['join_cluster', first.nodeName]);
      await n.ctl(['start_app']);
    }
    const status = await first.ctl(['cluster_status', '--formatter', 'json']);
    const running = (JSON.parse(status) as { running_nodes: string[] }).running_nodes;
    if (running.length !== this.nodes.length) throw new Error(`cluster has ${running.length} running nodes: ${running.join(', ')}`);
  }

  /** `name type` of every queue, as the cluster reports them (asked of the first node that answers). */
  async queueTypes(): Promise<Map<string, string>> {
    for (const n of this.nodes) {
      if (n.nodePid === null) continue;
      const out = await n.ctl(['list_queues', 'name', 'type', '--formatter', 'json']);
      return new Map((JSON.parse(out) as { name: string; type: string }[]).map((q) => [q.name, q.type]));
    }
    throw new Error('no node of the cluster runs');
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.destroy()));
  }
}
