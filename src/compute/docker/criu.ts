/** CRIU availability: version (>= [criu] min_version) and `criu check`. */
import { run } from './exec.js';

export interface CriuStatus {
  version: string | null;
  ok: boolean;
  error: string | null;
  /** Built with Ferry's rlimits patch (scripts/criu/): dumps another user's processes without CAP_SYS_RESOURCE. */
  readsLimitsFromProc: boolean;
}

/** The line Ferry's CRIU patch adds to `criu --version`; a build without it is taken as unpatched. */
export function hasRlimitsPatch(versionText: string): boolean {
  return /^Ferry-patch:\s*rlimits-from-proc\s*$/m.test(versionText);
}

/** "Version: 4.2.1" (first line of `criu --version`) -> "4.2.1". */
export function parseCriuVersion(text: string): string | null {
  const m = /Version:\s*([0-9]+(?:\.[0-9]+)*)/.exec(text);
  return m ? m[1] : null;
}

/** Numeric dotted-version comparison: versionAtLeast("4.2.1", "4.2") === true. */
export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split('.').map((x) => parseInt(x, 10) || 0);
  const b = min.split('.').map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/** The decision, separate from running the binary (unit-tested). */
export function judgeCriu(
  binary: string,
  min: string,
  versionOut: { code: number; text: string } | null,
  check: { code: number; text: string } | null,
): CriuStatus {
  if (!versionOut || versionOut.code !== 0) {
    return { version: null, ok: false, error: `CRIU not found (${binary}): install CRIU ${min} or newer and set [criu] binary`, readsLimitsFromProc: false };
  }
  const version = parseCriuVersion(versionOut.text);
  if (!version) return { version: null, ok: false, error: `cannot read the CRIU version from "${versionOut.text.trim()}"`, readsLimitsFromProc: false };
  if (!versionAtLeast(version, min)) {
    return {
      version,
      ok: false,
      error: `CRIU ${version} is older than ${min}: install CRIU ${min} or newer (older ones cannot dump TCP sockets on this kernel)`,
      readsLimitsFromProc: false,
    };
  }
  if (!check || check.code !== 0 || !/Looks good/i.test(check.text)) {
    const out = (check?.text ?? '').trim().split('\n').slice(-3).join(' | ');
    return { version, ok: false, error: `\`criu check\` failed: ${out || 'no output'}: fix the kernel/CRIU mismatch it reports`, readsLimitsFromProc: false };
  }
  return { version, ok: true, error: null, readsLimitsFromProc: hasRlimitsPatch(versionOut.text) };
}

const cache = new Map<string, { at: number; status: CriuStatus }>();

export async function criuStatus(binary: string, min: string, maxAgeMs = 60_000): Promise<CriuStatus> {
  const key = `${binary}|${min}`;
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < maxAgeMs) return hit.status;
  let v: { code: number; text: string } | null = null;
  let c: { code: number; text: string } | null = null;
  try {
    const r = await run(binary, ['--version'], { timeoutMs: 10_000 });
    v = { code: r.code, text: r.stdout + r.stderr };
    if (r.code === 0) {
      const k = await run(binary, ['check'], { timeoutMs: 30_000 });
      c = { code: k.code, text: k.stdout + k.stderr };
    }
  } catch {
    v = null;
  }
  const status = judgeCriu(binary, min, v, c);
  cache.set(key, { at: Date.now(), status });
  return status;
}
