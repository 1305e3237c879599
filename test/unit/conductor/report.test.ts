/** The conductor's "Open migrations" section of the Guru Meditation report. */
import { describe, expect, it } from '@jest/globals';
import { buildReport } from '../../../src/common/gmr.js';
import { openMigrationsSection } from '../../../src/conductor/report.js';
import { defaultConfig } from '../../../src/conf/index.js';
import { record } from '../../helpers/repository-suite.js';

describe('open migrations in the report', () => {
  it('one line per unfinished migration: uuid, status/phase, mode, container, hosts, progress, start, request id', async () => {
    const running = {
      ...record(1),
      status: 'running' as const,
      phase: 'checkpoint' as const,
      progress: 40,
      request_id: 'req-abc',
      dest_host: 'compute2',
      container_name: 'web',
    };
    const queued = { ...record(5), dest_host: null, request_id: null, container_name: 'db' };
    const lines = await openMigrationsSection(() => Promise.resolve([running, queued])).render();
    expect(lines).toEqual([
      `${running.uuid} running/checkpoint ${running.mode} web compute1 -> compute2 progress 40% since ${running.created_at} request req-abc`,
      `${queued.uuid} ${queued.status} ${queued.mode} db ${queued.source_host} -> (scheduler) progress ${queued.progress}% since ${queued.created_at} request -`,
    ]);
    const text = await buildReport({ service: 'ferry-conductor', conf: defaultConfig(), sections: [openMigrationsSection(() => Promise.resolve([running]))] });
    expect(text).toContain(`==== Open migrations ====\n${'='.repeat(72)}\n${running.uuid} running/checkpoint`);
  });
});
