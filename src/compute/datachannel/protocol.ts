/**
 * The data channel's wire protocol (HTTP/1.1 between two ferry-compute agents, never the bus):
 *
 *   GET  /v1/migrations/{id}/image                 source -> target: `docker save` stream
 *   PUT  /v1/migrations/{id}/parts/{part}          target receives one tar stream per part
 *        part = checkpoint | rootfs | volume/{name}
 *        chunked body, trailer `x-ferry-sha256` = SHA-256 of the body (hex), `x-ferry-bytes`
 *   POST /v1/migrations/{id}/commit                JSON manifest of every part; consumes the token
 *
 * Every request carries `Authorization: Bearer <one-time token>` issued for that migration:
 * 401 without a token, 403 with a wrong, unknown or already used one. 413 past the size
 * limit, 422 for an unsafe archive or a digest/size mismatch, 400 for a malformed request.
 */
export const PART_RE = /^(checkpoint|rootfs|volume\/[A-Za-z0-9][A-Za-z0-9_.-]{0,254})$/;
export const MIGRATION_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface PartReceipt {
  part: string;
  bytes: number;
  sha256: string;
  entries: number;
}

export interface Manifest {
  checkpoint_name: string;
  parts: { part: string; bytes: number; sha256: string }[];
}

export function partKind(part: string): 'checkpoint' | 'rootfs' | 'volume' {
  if (part === 'checkpoint') return 'checkpoint';
  if (part === 'rootfs') return 'rootfs';
  return 'volume';
}

/** Which parts are missing or differ from what was received; empty when the manifest matches. */
export function manifestProblems(manifest: Manifest, received: Map<string, PartReceipt>): string[] {
  const problems: string[] = [];
  if (!manifest.parts.some((p) => p.part === 'checkpoint')) problems.push('the manifest has no checkpoint');
  for (const p of manifest.parts) {
    const r = received.get(p.part);
    if (!r) problems.push(`part ${p.part} was not received`);
    else if (r.sha256 !== p.sha256 || r.bytes !== p.bytes) problems.push(`part ${p.part} differs (got ${r.bytes} bytes ${r.sha256.slice(0, 12)}, sent ${p.bytes} bytes ${p.sha256.slice(0, 12)})`);
  }
  return problems;
}
