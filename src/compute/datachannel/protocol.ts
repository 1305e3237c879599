/**
 * The data channel's wire protocol (HTTPS with mutual TLS between two ferry-compute agents,
 * never the bus; plain HTTP only with [compute] data_channel_insecure = true):
 *
 *   GET  /v1/migrations/{id}/image         target <- source: `docker save` stream (export token)
 *   POST /v1/migrations/{id}/plan          source -> target, grant token from pre_migration:
 *        {"parts": [{"part", "bytes", "entries", "encoding"}]}  ->  one token per part + commit token
 *   PUT  /v1/migrations/{id}/parts/{part}  one tar stream per part, with that part's token
 *        part = checkpoint | rootfs | volume/{name} | sync/rootfs | sync/volume/{name} (a disk
 *        pre-copy round, ../disksync/); `content-encoding` as negotiated in the plan;
 *        chunked body, trailers `x-ferry-sha256` (SHA-256 of the body as sent) and `x-ferry-bytes`
 *   POST /v1/migrations/{id}/commit        {"parts": [{"part", "bytes", "sha256"}]}, commit token
 *
 * Who may do what is tokens.ts; the HTTP statuses come from the error registry through
 * status.ts (401 no token, 403 refused token or part outside the plan, 409 a part sent twice,
 * 413 past the declared sizes, 422 unsafe or corrupted archive, 507 no space on the target).
 * A plan holds the checkpoint, except a disk pre-copy round before the freeze (sync/ parts only),
 * whose commit leaves the grant open for the next round and the freeze's send.
 * The checkpoint name is the target's own choice (checkpointName of the migration id):
 * a commit that names another one is refused.
 */
export const PART_RE = /^(checkpoint|rootfs|volume\/[A-Za-z0-9][A-Za-z0-9_.-]{0,254}|sync\/(rootfs|volume\/[A-Za-z0-9][A-Za-z0-9_.-]{0,254}))$/;

/** A disk pre-copy round's part: the delta of the tree `part` names without its `sync/`. */
export const SYNC_PREFIX = 'sync/';

/** Whether a plan is a disk pre-copy round (before the freeze: no checkpoint, sync/ parts only). */
export function isPrecopyRound(parts: string[]): boolean {
  return parts.length > 0 && parts.every((p) => p.startsWith(SYNC_PREFIX));
}
export const MIGRATION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const ENCODINGS = ['identity', 'gzip'] as const;
export type Encoding = (typeof ENCODINGS)[number];

export interface PartReceipt {
  part: string;
  bytes: number;
  sha256: string;
  entries: number;
}

/** The body of POST /commit. */
export interface CommitManifest {
  /** Optional; when present it must be the name the target chose. */
  checkpoint_name?: string;
  parts: { part: string; bytes: number; sha256: string }[];
}

/** What the target committed: every part with its wire bytes and digest, under the checkpoint name it chose. */
export interface Manifest {
  checkpoint_name: string;
  parts: { part: string; bytes: number; sha256: string }[];
}

export function partKind(part: string): 'checkpoint' | 'rootfs' | 'volume' {
  if (part === 'checkpoint') return 'checkpoint';
  // A pre-copy round of the writable layer carries its whiteouts and opaque directories too.
  if (part === 'rootfs' || part === `${SYNC_PREFIX}rootfs`) return 'rootfs';
  return 'volume';
}

/**
 * The most a part may hold given what the sender declared: its entries exactly, its content
 * bytes exactly, and the tar stream its content plus tar's overhead (a 512-byte header, a pax
 * header of up to 3 blocks for long names, times and xattrs, padding of up to 511 bytes per
 * entry, and 1 MiB for the end-of-archive blocks and slack).
 */
export const TAR_OVERHEAD_PER_ENTRY = 4096;
export const TAR_OVERHEAD_FIXED = 1 << 20;

export interface PartLimits {
  maxEntries: number;
  maxPayloadBytes: number;
  maxTarBytes: number;
}

export function partLimits(declared: { bytes: number; entries: number }): PartLimits {
  return {
    maxEntries: declared.entries,
    maxPayloadBytes: declared.bytes,
    maxTarBytes: declared.bytes + declared.entries * TAR_OVERHEAD_PER_ENTRY + TAR_OVERHEAD_FIXED,
  };
}

/** Which parts are missing or differ from what was planned and received; empty when all match. */
export function commitProblems(manifest: CommitManifest, planned: string[], received: Map<string, PartReceipt>): string[] {
  const problems: string[] = [];
  const listed = new Set(manifest.parts.map((p) => p.part));
  if (!listed.has('checkpoint') && !isPrecopyRound(planned)) problems.push('the manifest has no checkpoint');
  for (const p of planned) if (!listed.has(p)) problems.push(`planned part ${p} is not in the manifest`);
  for (const p of manifest.parts) {
    const r = received.get(p.part);
    if (!planned.includes(p.part)) problems.push(`part ${p.part} was not planned`);
    else if (!r) problems.push(`part ${p.part} was not received`);
    else if (r.sha256 !== p.sha256 || r.bytes !== p.bytes)
      problems.push(`part ${p.part} differs (got ${r.bytes} bytes ${r.sha256.slice(0, 12)}, sent ${p.bytes} bytes ${p.sha256.slice(0, 12)})`);
  }
  return problems;
}
