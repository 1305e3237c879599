/**
 * Post-copy: the target starts the container from the images without memory and fetches the
 * pages from the source's page server; the migration stays `running`, phase `post-copy`, until
 * the target says every page arrived. Before the target runs it, a failure rolls back as usual;
 * after, the only copy is split between the hosts, so a post-copy that cannot finish ends in
 * `error` for the operator.
 */
import { PostCopyFailed } from '../../common/errors.js';
import { sleep } from '../../common/sleep.js';
import type { FlowMode } from './interface.js';

export const postCopy: FlowMode = {
  name: 'post-copy',
  phases: [
    { status: 'running', phase: 'restore', step: 'restore' },
    { status: 'running', phase: 'post-copy', step: 'settle' },
    { status: 'post-migrating', phase: 'cleanup', step: 'cleanup' },
  ],
  // Only the images without pages moved so far; the pages follow once the target runs.
  processedAtSend: (live) => live.memory_bytes,
  abortedAfterFreeze: 'aborted by request after the freeze, before the target ran the container',
  restoreArgs: (live) => ({ page_server: live.page_server }),
  restoredBy: (post) => post.post_copy,
  settle: {
    // The name older conductors saved it under: a migration one of them started resumes here.
    step: 'post_copy_done',
    async run(ctx) {
      const total = ctx.migration.memory_total_bytes;
      let shown = ctx.migration.memory_processed_bytes ?? 0;
      for (;;) {
        const st = await ctx.ask(ctx.dest, 'post_copy_status', { migration_id: ctx.migrationId });
        if (st.state === 'complete') return st;
        // What the target holds so far stands for the pages that arrived (Nova's processed/remaining).
        const resident = st.resident_bytes ?? null;
        if (total !== null && resident !== null && resident > shown && st.state === 'fetching') {
          shown = Math.min(total, resident);
          await ctx.update({ memory_processed_bytes: shown, memory_remaining_bytes: Math.max(0, total - shown) });
        }
        if (st.state !== 'fetching')
          throw new PostCopyFailed(
            `the post-copy on ${ctx.dest} ${st.state === 'failed' ? 'failed' : 'lost track of its pages'}: ${st.error ?? 'no reason given'}`,
          );
        await sleep(ctx.pollMs);
      }
    },
    stranded: ({ migrationId: id, reason, container: name, source, dest }) =>
      // The target ran the container while its pages were still on the source: neither side holds it whole.
      `post-copy of ${name} did not finish: ${reason}. ${name} had started on ${dest} while part of its memory was still on ` +
      `${source}, so Ferry does not choose a copy: the one on ${dest} stopped without its pages, and ${source} keeps ` +
      `${name} frozen and whole as at the freeze (its CRIU page server was ended by PID, never told that the pages all arrived), ` +
      `unless it shows there as exited. Check ${dest} (docker ps -a --filter label=org.openstack.ferry.migration=${id}) and ` +
      `${source} (docker ps -a --filter name=${name}); resuming it on ${source} loses only what it did on ${dest} since the switch.`,
  },
};
