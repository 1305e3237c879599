/**
 * Who may speak for a compute host (report_state, container_event). The host's name is an
 * argument of the message, so on its own it proves nothing:
 * - with [conductor] per_host_bus_users, each host connects to RabbitMQ as a user named like
 *   the host, and a message counts only when the broker-validated sender (its `user_id`) is
 *   that user;
 * - in every case, a host that is up (heartbeat within service_down_time) keeps the data
 *   channel address it registered: a report naming it with another address is refused until it
 *   has been down, so a second agent configured with the same name, or another bus client,
 *   cannot redirect migrations to itself while the real host runs;
 * - an event needs the host's record (made by its first report_state).
 */
import { HostIdentityMismatch, HostNotFound } from '../common/errors.js';
import { hostIsUp } from './hosts.js';
import type { HostRecord } from './repository.js';

export interface ReporterCheck {
  host: string;
  /** The broker-validated publisher of the message; null when it carries none. */
  sender: string | null;
  /** Whether hosts must report as their own bus user. */
  perHostBusUsers: boolean;
}

/** Throws HostIdentityMismatch when the message's sender may not speak for `host`. */
export function checkSender({ host, sender, perHostBusUsers }: ReporterCheck): void {
  if (!perHostBusUsers) return;
  if (sender === null) {
    throw new HostIdentityMismatch(`a message for host ${host} carries no sender identity ([conductor] per_host_bus_users needs one)`, { host });
  }
  if (sender !== host) throw new HostIdentityMismatch(`bus user ${sender} may not speak for host ${host}`, { host, sender });
}

/** Throws HostIdentityMismatch when a report would move an up host's data channel elsewhere. */
export function checkReportAgainstRecord(host: string, migrationAddress: unknown, rec: HostRecord | null, now: number, serviceDownTimeS: number): void {
  if (!rec || !hostIsUp(rec, now, serviceDownTimeS)) return; // new, or back after being down: it (re)registers
  const known = rec.facts?.migration_address;
  if (typeof known === 'string' && known && migrationAddress !== known) {
    throw new HostIdentityMismatch(
      `host ${host} is up with its data channel at ${known}; a report naming it with ${String(migrationAddress)} is refused until it has been down for ${serviceDownTimeS} s`,
      { host },
    );
  }
}

/** Throws HostNotFound for an event from a host that never reported. */
export function checkEventHost(host: string, rec: HostRecord | null): void {
  if (!rec) throw new HostNotFound(`container_event from host ${host}, which never sent report_state`, { host });
}
