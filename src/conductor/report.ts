/** The conductor's part of the Guru Meditation report (src/common/gmr.ts): the migrations not yet finished. */
import type { ReportSection } from '../common/gmr.js';
import type { Migration } from '../objects/migration.js';

/** One line per migration: what an operator needs to find it in the logs and the API. */
export function openMigrationLine(m: Migration): string {
  return (
    `${m.uuid} ${m.status}${m.phase ? `/${m.phase}` : ''} ${m.mode} ${m.container_name || m.container_id} ` +
    `${m.source_host} -> ${m.dest_host ?? '(scheduler)'} progress ${m.progress}% since ${m.created_at} request ${m.request_id ?? '-'}`
  );
}

export function openMigrationsSection(unfinished: () => Promise<Migration[]>): ReportSection {
  return { title: 'Open migrations', render: async () => (await unfinished()).map(openMigrationLine) };
}
