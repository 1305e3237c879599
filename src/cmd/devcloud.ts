#!/usr/bin/env node
/** ferry-devcloud up|down|status [--json]: a whole cloud on one machine, for the demo, tests and benchmarks. */
import { down, status, up } from '../devcloud/cloud.js';
import { runDemo } from '../devcloud/demo.js';
import { restartService, serviceSpecs } from '../devcloud/services.js';

const USAGE = `usage: ferry-devcloud up [--no-services] | down | status [--json]

  up       start (or repair) RabbitMQ, Keystone, the compute hosts compute1 and compute2,
           the ferry-fabric tenant network, the test images and Ferry's services
  down     stop everything the development cloud started, by PID, and remove its namespaces
  status   describe the cloud (--json for scripts and tests)
  demo     live-migrate the demo workloads (counter, Redis, a TCP stream) compute1 -> compute2
  restart [SERVICE...] [--kill]
           restart Ferry services (all when none is named); --kill ends them with SIGKILL first`;

function log(s: string) {
  process.stderr.write(`    ${s}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const flags = new Set(rest);
  const unknown = rest.filter((f) => f.startsWith('--') && !['--json', '--no-services', '--kill'].includes(f));
  if (unknown.length > 0) {
    process.stderr.write(`ferry-devcloud: unknown option ${unknown[0]}\n${USAGE}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0 && verb !== 'status') {
    process.stderr.write('ferry-devcloud: run as root (it creates network namespaces and starts Docker engines)\n');
    return 1;
  }
  switch (verb) {
    case 'up': {
      const s = await up(log, { services: !flags.has('--no-services') });
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
      const names = rest.filter((a) => !a.startsWith('--'));
      for (const n of names.length ? names : serviceSpecs().map((s) => s.name)) {
        await restartService(n, log, flags.has('--kill') ? 'SIGKILL' : 'SIGTERM');
      }
      return 0;
    }
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
    `RabbitMQ   ${s.rabbit.state.padEnd(5)} ${s.rabbit.transport_url}`,
    ...s.hosts.map((h) => `${h.name.padEnd(10)} ${h.state.padEnd(5)} ${h.docker_host}  netns ${h.netns}`),
    `fabric     ${s.fabric.network} ${s.fabric.subnet}, clients in netns ${s.fabric.client_netns}`,
    `CRIU       ${s.criu.version} (${s.criu.binary})`,
  ];
  if (s.api) lines.push(`ferry-api  ${s.api.state.padEnd(5)} ${s.api.url}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`ferry-devcloud: ${err.message}\n`);
    process.exit(1);
  },
);
