#!/usr/bin/env node
/** ferry-devcloud up|down|status [--json]: a whole cloud on one machine, for the demo, tests and benchmarks. */
import { parseCommandLine } from '../common/args.js';
import { InvalidInput } from '../common/errors.js';
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

const OPTIONS = {
  json: { type: 'boolean' },
  'no-services': { type: 'boolean' },
  kill: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The options each command takes; restart alone takes arguments (service names). */
const COMMAND_OPTIONS: Record<string, (keyof typeof OPTIONS)[]> = {
  up: ['json', 'no-services'],
  down: [],
  status: ['json'],
  demo: [],
  restart: ['kill'],
};

/** The command, its arguments and flags; a usage problem is an InvalidInput. */
function parse(argv: string[]) {
  const { values, positionals } = parseCommandLine(argv, OPTIONS, true);
  const [verb, ...rest] = positionals;
  const allowed = verb === undefined ? undefined : COMMAND_OPTIONS[verb];
  if (allowed) {
    const misplaced = (Object.keys(values) as (keyof typeof OPTIONS)[]).find((k) => k !== 'help' && !allowed.includes(k));
    if (misplaced) throw new InvalidInput(`option --${misplaced} does not apply to "${verb}"`);
    if (verb !== 'restart' && rest.length > 0) throw new InvalidInput(`unexpected argument "${rest[0]}" after "${verb}"`);
  }
  return { verb, rest, help: values.help === true, flags: new Set(Object.keys(values).map((k) => `--${k}`)) };
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
  const { verb, rest, flags } = args;
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
      for (const n of rest.length ? rest : serviceSpecs().map((s) => s.name)) {
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
  if (s.horizon) lines.push(`Horizon    ${s.horizon.state.padEnd(5)} ${s.horizon.url}  (Admin -> Compute -> Container Migrations)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`ferry-devcloud: ${err.message}\n`);
    process.exit(1);
  },
);
