#!/usr/bin/env node
/**
 * ferry-status: checks for operators (oslo.upgradecheck's `<project>-status upgrade check`).
 * Run it with the upgraded code before and after each step of an upgrade; exit status 0 (all
 * Success), 1 (a Warning), 2 (a Failure), 255 (the checks could not run: command line, config).
 */
import fs from 'node:fs';
import { parseCommandLine } from '../common/args.js';
import { InvalidInput } from '../common/errors.js';
import { CONFIG_FILE_ARG, configFilesOrDefault, configWarnings, loadConfig, type FerryConfig } from '../conf/index.js';
import { SqlRepository, type HostRecord, type ServiceRecord } from '../conductor/repository.js';
import { openDriver, parseConnection } from '../db/connection.js';
import { databaseSchemaState, type SchemaState } from '../db/schema.js';
import {
  checkOldAgents,
  checkOptions,
  checkPolicyFile,
  checkSchema,
  checkServiceVersions,
  formatTable,
  SERVICES_SCHEMA_VERSION,
  worst,
  type CheckResult,
} from '../status/upgrade-checks.js';

const USAGE = `usage: ferry-status [--config-file FILE] [--json] upgrade check

  upgrade check     check this release's needs against the database, the running services'
                    versions, the policy file and the options; exit 0 (Success), 1 (Warning),
                    2 (Failure), 255 (could not run)`;

/** The exit status when the checks could not run at all (oslo.upgradecheck's). */
const CANNOT_RUN = 255;

interface DatabaseView {
  schema: number | Error;
  /** The version with the oldest code schema it admits (the schema check's rule). */
  schemaState: SchemaState | Error;
  services: ServiceRecord[];
  hosts: HostRecord[];
}

/** What the checks need from the database; a database that cannot be read is the schema check's Failure. */
async function readDatabase(connection: string): Promise<DatabaseView> {
  const empty = (e: Error): DatabaseView => ({ schema: e, schemaState: e, services: [], hosts: [] });
  let t;
  try {
    t = parseConnection(connection);
  } catch (e) {
    return empty(e as Error);
  }
  // Never create an empty SQLite file for a wrong --config-file.
  if (t.kind === 'sqlite' && t.file !== ':memory:' && !fs.existsSync(t.file)) {
    return empty(new Error(`no database at ${t.file} (run "ferry-manage db sync", or give the services' --config-file)`));
  }
  const driver = openDriver(connection);
  try {
    const schemaState = await databaseSchemaState(driver);
    const schema = schemaState.version;
    if (schema < SERVICES_SCHEMA_VERSION) return { schema, schemaState, services: [], hosts: [] };
    const repo = new SqlRepository(driver);
    const [services, hosts] = await Promise.all([repo.listServices(), repo.listHostRecords()]);
    return { schema, schemaState, services, hosts };
  } catch (e) {
    return empty(new Error(`${driver.description}: ${(e as Error).message}`));
  } finally {
    await driver.close();
  }
}

function readPolicy(file: string): string | null | Error {
  if (!file) return null;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? null : (e as Error);
  }
}

async function upgradeCheck(conf: FerryConfig, ignoredOptions: readonly string[]): Promise<CheckResult[]> {
  const db = await readDatabase(conf.database.connection);
  const running = { services: db.services, hosts: db.hosts, now: Date.now(), serviceDownTimeS: conf.conductor.service_down_time };
  return [
    checkSchema(db.schemaState),
    checkServiceVersions(db.schema, running, conf.upgrade_levels),
    checkOldAgents(db.schema, running),
    checkPolicyFile(conf.api.policy_file, readPolicy(conf.api.policy_file), conf.oslo_policy),
    checkOptions(ignoredOptions, conf.upgrade_levels),
  ];
}

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseCommandLine(argv, { ...CONFIG_FILE_ARG, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
  } catch (e) {
    if (!(e instanceof InvalidInput)) throw e;
    process.stderr.write(`ferry-status: ${e.message}\n${USAGE}\n`);
    return CANNOT_RUN;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const cmd = args.positionals.join(' ');
  if (cmd !== 'upgrade check') {
    process.stderr.write(`${cmd ? `ferry-status: unknown command "${cmd}"\n` : ''}${USAGE}\n`);
    return CANNOT_RUN;
  }
  const before = configWarnings.length;
  const conf = loadConfig(configFilesOrDefault(args.values['config-file']));
  const results = await upgradeCheck(conf, configWarnings.slice(before));
  if (args.values.json)
    process.stdout.write(
      `${JSON.stringify(
        results.map((r) => ({ check: r.name, result: r.code, details: r.details })),
        null,
        2,
      )}\n`,
    );
  else process.stdout.write(formatTable(results));
  return worst(results);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`ferry-status: ${e.message}\n`);
    process.exit(CANNOT_RUN);
  },
);
