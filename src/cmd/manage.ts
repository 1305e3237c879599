#!/usr/bin/env node
/** ferry-manage: operator chores: db sync, register in Keystone, host list, config and policy samples. */
import fs from 'node:fs';
import { registerCatalog, registrationFromConf } from '../identity/catalog.js';
import { KeystoneClient, keystoneOptionsFromConf } from '../identity/keystone.js';
import { generatePolicySample } from '../identity/policy.js';
import { parseCommandLine } from '../common/args.js';
import { ConfigError, InvalidInput } from '../common/errors.js';
import { CONFIG_FILE_ARG, configFilesOrDefault, loadConfig, sampleConfig } from '../conf/index.js';
import { openDriver, parseConnection } from '../db/connection.js';
import type { SqlDriver } from '../db/driver.js';
import { SCHEMA_VERSION, syncDatabase } from '../db/schema.js';
import { SqlRepository } from '../conductor/repository.js';
import { toComputeHost } from '../conductor/hosts.js';

const USAGE = `usage: ferry-manage [--config-file FILE] COMMAND

commands:
  db sync           create or upgrade the database schema (SQLite or MariaDB/MySQL)
  db version        the database's schema version, and the one this Ferry needs
  register          register Ferry (service and endpoints) in the Keystone catalog; idempotent
  host list         compute hosts as last reported by their heartbeats
  config sample     print a sample ferry.conf with every option
  policy sample     print a sample policy.yaml with every rule and its default`;

/**
 * Run `fn` on the configured database and close it. `readOnly`: a SQLite file that does not
 * exist is an error (a wrong --config-file must not create an empty database); a database
 * without Ferry's tables says to run db sync.
 */
async function withDriver<T>(connection: string, fn: (d: SqlDriver) => Promise<T>, readOnly = false): Promise<T> {
  const t = parseConnection(connection);
  const noDb = () => new ConfigError(`no database at ${t.kind === 'sqlite' ? t.file : `${t.host}:${t.port}/${t.database}`}: run "ferry-manage db sync" first`);
  if (readOnly && t.kind === 'sqlite' && t.file !== ':memory:' && !fs.existsSync(t.file)) throw noDb();
  const d = openDriver(connection);
  try {
    return await fn(d);
  } catch (e) {
    const msg = (e as Error).message;
    if (/no such table|doesn't exist/.test(msg)) throw noDb();
    if (/ECONNREFUSED|Access denied|Unknown database|ETIMEDOUT|ENOTFOUND/.test(msg)) throw new ConfigError(`cannot use the database ${d.description}: ${msg}`);
    throw e;
  } finally {
    await d.close();
  }
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseCommandLine(argv, { ...CONFIG_FILE_ARG, help: { type: 'boolean', short: 'h' } }, true);
  } catch (e) {
    if (!(e instanceof InvalidInput)) throw e;
    process.stderr.write(`ferry-manage: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const cmd = args.positionals.join(' ');
  const conf = () => loadConfig(configFilesOrDefault(args.values['config-file']));
  switch (cmd) {
    case 'db sync': {
      const [from, to] = await withDriver(conf().database.connection, syncDatabase);
      console.log(from === to ? `database schema is current (version ${to})` : `database schema upgraded from version ${from} to ${to}`);
      return 0;
    }
    case 'db version': {
      const v = await withDriver(conf().database.connection, (d) => d.schemaVersion(), true);
      console.log(`${v} (this Ferry needs ${SCHEMA_VERSION})`);
      return 0;
    }
    case 'register': {
      const c = conf();
      const client = new KeystoneClient(keystoneOptionsFromConf(c));
      const r = await registerCatalog(client, registrationFromConf(c));
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    case 'host list': {
      const c = conf();
      const records = await withDriver(c.database.connection, (d) => new SqlRepository(d).listHostRecords(), true);
      const hosts = records.map((h) => toComputeHost(h, Date.now(), c.conductor.service_down_time));
      console.log(['NAME'.padEnd(16), 'STATE'.padEnd(6), 'DOCKER'.padEnd(10), 'CRIU'.padEnd(8), 'CONTAINERS'.padEnd(11), 'UPDATED'].join(' '));
      for (const h of hosts) {
        console.log(
          [
            h.name.padEnd(16),
            h.state.padEnd(6),
            String(h.docker_version).padEnd(10),
            String(h.criu_version).padEnd(8),
            String(h.containers).padEnd(11),
            h.updated_at,
          ].join(' '),
        );
      }
      return 0;
    }
    case 'config sample':
      process.stdout.write(sampleConfig());
      return 0;
    case 'policy sample':
      process.stdout.write(generatePolicySample());
      return 0;
    default:
      process.stderr.write(`${cmd ? `ferry-manage: unknown command "${cmd}"\n` : ''}${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`ferry-manage: ${e.message}\n`);
    process.exit(1);
  },
);
