#!/usr/bin/env node
/** ferry-devcloud up|down|status [--json]|restart|upgrade|stop|start: a whole cloud on one machine, for the demo, tests and benchmarks. */
import { parseCommandLine } from '../common/args.js';
import { InvalidInput } from '../common/errors.js';
import { down, status, up } from '../devcloud/cloud.js';
import { runDemo } from '../devcloud/demo.js';
import { RABBIT_CLUSTER_SIZES, brokerNames, restartBroker, type RabbitClusterSize, startBroker, stopBroker } from '../devcloud/rabbit.js';
import { resolveServiceName, restartService, serviceSpecs, upgradeService } from '../devcloud/services.js';
import { MAX_HOSTS } from '../devcloud/layout.js';
import { DATABASES, MAX_CONDUCTORS, type CloudDatabase, type CloudShape } from '../devcloud/shape.js';

const USAGE = `usage: ferry-devcloud up [--no-services] [--db sqlite|mariadb|galera] [--conductors N] [--hosts N] [--rabbit-cluster 1|3] [--release REV] [--fresh-database] [--neutron|--no-neutron]
                      | down | status [--json] | demo | restart [NAME...] [--kill] | upgrade db|SERVICE...
                      | stop BROKER [--kill] | start BROKER

  up       start (or repair) RabbitMQ (two nodes), Keystone, the compute hosts (compute1, compute2),
           the ferry-fabric tenant network, the test images and Ferry's services;
           --db mariadb runs MariaDB on 127.0.0.1:3306 for the conductors (default sqlite),
           --db galera a three-node MariaDB Galera cluster on 127.0.0.1:3311-3313 (conductor i
           writes through node i and fails over to the others),
           --conductors N runs N conductors (ferry-conductor, ferry-conductor2, ...; needs mariadb or galera);
           --hosts N runs compute hosts compute1..computeN (2 to ${MAX_HOSTS}, default 2);
           all three are kept until changed (restart keeps them;
           up --db sqlite --conductors 1 --hosts 2 goes back);
           --rabbit-cluster 3 clusters three RabbitMQ nodes (rabbitmq3 on 5675, TLS 5676) and the
           services declare quorum queues; kept until up --rabbit-cluster 1 (two independent nodes);
           --release REV runs Ferry's services from git revision REV of this repository (unpacked
           and built under .devcloud/releases; for rolling upgrades), up without it from this
           checkout (services on another release are restarted on it);
           --fresh-database empties Ferry's database first (an older release refuses a newer schema);
           --neutron also runs Neutron (neutron-server on MariaDB, a linuxbridge agent per host,
           a flat provider and a VXLAN tenant network), kept until up --no-neutron
  down     stop everything the development cloud started, by PID, and remove its namespaces
  status   describe the cloud (--json for scripts and tests)
  demo     live-migrate the demo workloads (counter, Redis, a TCP stream) compute1 -> compute2
  restart [SERVICE...] [--kill]
           restart Ferry services (all when none is named) or a RabbitMQ node (rabbitmq,
           rabbitmq2, rabbitmq3 in a cluster); --kill ends them with SIGKILL first
  upgrade db|SERVICE...
           one step of a rolling upgrade, in the order given: db runs this checkout's db sync (the
           services carry on); a service (ferry-api or api, ferry-conductor or conductor,
           ferry-compute-compute1 or compute1, ...) restarts on this checkout's code
  stop BROKER [--kill]
           stop one RabbitMQ node (rabbitmq or rabbitmq2) by its PID; the services fail over
  start BROKER
           start a stopped RabbitMQ node again`;

function log(s: string) {
  process.stderr.write(`    ${s}\n`);
}

const OPTIONS = {
  json: { type: 'boolean' },
  'no-services': { type: 'boolean' },
  db: { type: 'string' },
  conductors: { type: 'string' },
  'rabbit-cluster': { type: 'string' },
  hosts: { type: 'string' },
  release: { type: 'string' },
  'fresh-database': { type: 'boolean' },
  neutron: { type: 'boolean' },
  'no-neutron': { type: 'boolean' },
  kill: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The options each command takes; restart alone takes arguments (service names). */
const COMMAND_OPTIONS: Record<string, (keyof typeof OPTIONS)[]> = {
  up: ['json', 'no-services', 'db', 'conductors', 'hosts', 'rabbit-cluster', 'release', 'fresh-database', 'neutron', 'no-neutron'],
  down: [],
  status: ['json'],
  demo: [],
  restart: ['kill'],
  upgrade: [],
  stop: ['kill'],
  start: [],
};

/** The commands that take arguments (service or broker names). */
const TAKES_NAMES = new Set(['restart', 'upgrade', 'stop', 'start']);

/** The command, its arguments and flags; a usage problem is an InvalidInput. */
function parse(argv: string[]) {
  const { values, positionals } = parseCommandLine(argv, OPTIONS, true);
  const [verb, ...rest] = positionals;
  const allowed = verb === undefined ? undefined : COMMAND_OPTIONS[verb];
  if (allowed) {
    const misplaced = (Object.keys(values) as (keyof typeof OPTIONS)[]).find((k) => k !== 'help' && !allowed.includes(k));
    if (misplaced) throw new InvalidInput(`option --${misplaced} does not apply to "${verb}"`);
    if ((verb === 'stop' || verb === 'start') && rest.length !== 1) throw new InvalidInput(`"${verb}" takes one broker: ${brokerNames().join(' or ')}`);
    if ((verb === 'stop' || verb === 'start') && !brokerNames().includes(rest[0])) {
      throw new InvalidInput(`"${verb}" applies to a RabbitMQ node (${brokerNames().join(', ')}), not "${rest[0]}"`);
    }
    if (verb === 'upgrade' && rest.length === 0)
      throw new InvalidInput('"upgrade" takes what to upgrade: db, or services (e.g. upgrade db conductor compute1)');
    if (!TAKES_NAMES.has(verb) && rest.length > 0) throw new InvalidInput(`unexpected argument "${rest[0]}" after "${verb}"`);
  }
  const shape: Partial<CloudShape> = {};
  if (values.db !== undefined) {
    if (!DATABASES.includes(values.db as CloudDatabase)) throw new InvalidInput(`--db must be one of ${DATABASES.join(', ')}, not "${values.db}"`);
    shape.db = values.db as CloudDatabase;
  }
  if (values.conductors !== undefined) {
    const n = Number(values.conductors);
    if (!/^\d+$/.test(values.conductors) || n < 1 || n > MAX_CONDUCTORS)
      throw new InvalidInput(`--conductors must be a number from 1 to ${MAX_CONDUCTORS}, not "${values.conductors}"`);
    shape.conductors = n;
  }
  if (values.hosts !== undefined) {
    const n = Number(values.hosts);
    if (!/^\d+$/.test(values.hosts) || n < 2 || n > MAX_HOSTS) throw new InvalidInput(`--hosts must be a number from 2 to ${MAX_HOSTS}, not "${values.hosts}"`);
    shape.hosts = n;
  }
  if (values.neutron && values['no-neutron']) throw new InvalidInput('--neutron and --no-neutron contradict each other');
  if (values.neutron || values['no-neutron']) shape.neutron = values.neutron === true;
  let rabbitCluster: RabbitClusterSize | undefined;
  if (values['rabbit-cluster'] !== undefined) {
    rabbitCluster = RABBIT_CLUSTER_SIZES.find((n) => String(n) === values['rabbit-cluster']);
    if (rabbitCluster === undefined) throw new InvalidInput(`--rabbit-cluster must be ${RABBIT_CLUSTER_SIZES.join(' or ')}, not "${values['rabbit-cluster']}"`);
  }
  if (values.release !== undefined && !/^[\w./^~-]+$/.test(values.release))
    throw new InvalidInput(`--release takes a git revision (tag, branch or commit), not "${values.release}"`);
  return { verb, rest, shape, rabbitCluster, release: values.release, help: values.help === true, flags: new Set(Object.keys(values).map((k) => `--${k}`)) };
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parse(argv);
  } catch (e) {
    if (!(e instanceof InvalidInput)) throw e;
    process.stderr.write(`ferry-devcloud: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  const { verb, rest, flags, shape, rabbitCluster, release } = args;
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0 && verb !== 'status') {
    process.stderr.write('ferry-devcloud: run as root (it creates network namespaces and starts Docker engines)\n');
    return 1;
  }
  switch (verb) {
    case 'up': {
      const s = await up(log, { services: !flags.has('--no-services'), shape, rabbitCluster, release, freshDatabase: flags.has('--fresh-database') });
      printStatus(s, flags.has('--json'));
      return 0;
    }
    case 'down':
      await down(log);
      return 0;
    case 'demo': {
      printStatus(await up(log), false);
      process.stdout.write('\n');
      return (await runDemo((s) => process.stdout.write(`${s}\n`))) ? 0 : 1;
    }
    case 'restart': {
      const signal = flags.has('--kill') ? 'SIGKILL' : 'SIGTERM';
      const known = [...serviceSpecs().map((s) => s.name), ...brokerNames()];
      const unknown = rest.find((n) => !known.includes(n));
      if (unknown) {
        process.stderr.write(`ferry-devcloud: unknown service "${unknown}"; services: ${known.join(', ')}\n`);
        return 2;
      }
      for (const n of rest.length ? rest : serviceSpecs().map((s) => s.name)) {
        if (brokerNames().includes(n)) await restartBroker(n, log, signal);
        else await restartService(n, log, signal);
      }
      return 0;
    }
    case 'upgrade': {
      const names = rest.map((n) => (n === 'db' ? n : resolveServiceName(n)));
      const unknown = rest.find((_, i) => names[i] === null);
      if (unknown !== undefined) {
        process.stderr.write(
          `ferry-devcloud: cannot upgrade "${unknown}": db, or one of ${serviceSpecs()
            .map((s) => s.name)
            .join(', ')}\n`,
        );
        return 2;
      }
      for (const n of names as string[]) await upgradeService(n, log);
      return 0;
    }
    case 'stop':
      await stopBroker(rest[0], flags.has('--kill') ? 'SIGKILL' : 'SIGTERM');
      log(`stopped ${rest[0]}`);
      return 0;
    case 'start':
      await startBroker(rest[0], log);
      return 0;
    case 'status': {
      const s = await status();
      printStatus(s, flags.has('--json'));
      const allUp = s.keystone.state === 'up' && s.rabbit.state === 'up' && s.hosts.every((h) => h.state === 'up');
      return allUp ? 0 : 3;
    }
    default:
      process.stderr.write(`${verb ? `ferry-devcloud: unknown command "${verb}"\n` : ''}${USAGE}\n`);
      return 2;
  }
}

function printStatus(s: Awaited<ReturnType<typeof status>>, json: boolean) {
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const lines = [
    `Keystone   ${s.keystone.state.padEnd(5)} ${s.keystone.auth_url}  (admin / ${s.keystone.admin.password}, demo / ${s.keystone.demo.password})`,
    ...s.rabbit.brokers.map((b) => `${b.name.padEnd(10)} ${b.state.padEnd(5)} ${b.transport_url}, TLS ${b.tls_port}  (node ${b.node})`),
    ...s.hosts.map((h) => `${h.name.padEnd(10)} ${h.state.padEnd(5)} ${h.docker_host}  netns ${h.netns}`),
    `fabric     ${s.fabric.network} ${s.fabric.subnet}, clients in netns ${s.fabric.client_netns}`,
    `CRIU       ${s.criu.version} (${s.criu.binary})`,
    `database   ${s.database.kind}${s.database.mariadb ? ` ${s.database.mariadb.state} 127.0.0.1:${s.database.mariadb.port}` : ''}, ${s.database.conductors} conductor(s)`,
    ...(s.database.galera ?? []).map(
      (n) => `${n.name.padEnd(10)} ${(n.state ?? 'down').padEnd(5)} 127.0.0.1:${n.port}  (PID ${n.pid ?? '-'}, cluster size ${n.cluster_size ?? '-'})`,
    ),
  ];
  if (s.api) lines.push(`ferry-api  ${s.api.state.padEnd(5)} ${s.api.url}`);
  if (s.neutron)
    lines.push(
      `Neutron    ${s.neutron.state.padEnd(5)} ${s.neutron.url}  networks: ${Object.values(s.neutron.networks)
        .map((n) => `${n.name} (${n.network_type})`)
        .join(', ')}`,
    );
  if (s.horizon) lines.push(`Horizon    ${s.horizon.state.padEnd(5)} ${s.horizon.url}  (Admin -> Compute -> Container Migrations)`);
  for (const [name, r] of Object.entries(s.releases ?? {})) lines.push(`release    ${name} runs ${r.revision} (${r.commit.slice(0, 12)}), not this checkout`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`ferry-devcloud: ${err.message}\n`);
    process.exit(1);
  },
);
