/** Host maintenance from the tests: enabling/disabling through the API, and putting the cloud back after an evacuation. */
import { sleep } from '../../src/common/sleep.js';
import type { ComputeHost } from '../../src/objects/host.js';
import type { Migration } from '../../src/objects/migration.js';
import { admin, waitMigration } from './ferry.js';

/** PUT /v1/hosts/{name} as the admin. */
export function setHost(name: string, status: 'enabled' | 'disabled', reason?: string) {
  return admin<{ host: ComputeHost }>('PUT', `/v1/hosts/${name}`, reason === undefined ? { status } : { status, disabled_reason: reason });
}

/** Enable `hosts` again, asking until ferry-api answers (another test may be restarting it). */
export async function enableHosts(hosts: readonly string[]): Promise<void> {
  for (const h of hosts) {
    for (let i = 0; i < 15; i++) {
      if ((await setHost(h, 'enabled').catch(() => null))?.status === 200) break;
      await sleep(2000);
    }
  }
}

/** Move back to compute1 the containers of other tests that an evacuation took away. */
export async function moveBack(names: Iterable<string>, timeoutMs = 60_000): Promise<void> {
  for (const n of names) {
    const r = await admin<{ migration: Migration }>('POST', `/v1/containers/${n}/migrate`, { host: 'compute1' }).catch(() => null);
    if (r?.status === 202) await waitMigration(r.body.migration.uuid, undefined, timeoutMs).catch(() => undefined);
  }
}
