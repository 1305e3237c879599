/** oslo.messaging's version rules (`oslo_messaging._utils.version_is_compatible`). */

function parts(v: string): [number, number, number] {
  const p = v.split('.');
  const int = (s: string | undefined): number => {
    // Python's int(): optional sign and surrounding blanks, nothing else.
    if (s === undefined || !/^\s*[+-]?\d+\s*$/.test(s)) {
      throw new RangeError(`Version must contain a major and minor integer. Got ${v}`);
    }
    return Number.parseInt(s, 10);
  };
  return [int(p[0]), int(p[1]), p[2] === undefined ? 0 : int(p[2])];
}

/**
 * Whether a peer implementing `impVersion` can serve `version`: same major, minor (then
 * revision) not newer. A missing implemented version accepts anything; a missing requested
 * version is accepted only then.
 */
export function versionIsCompatible(impVersion: string | null | undefined, version: string | null | undefined): boolean {
  if (impVersion === null || impVersion === undefined) return true;
  if (version === null || version === undefined) return false;
  const [maj, min, rev] = parts(version);
  const [imaj, imin, irev] = parts(impVersion);
  if (maj !== imaj) return false;
  if (min > imin) return false;
  if (min === imin && rev > irev) return false;
  return true;
}

/** Throws RangeError unless `v` is a parsable `major.minor[.rev]`. */
export function checkVersionString(v: string): void {
  parts(v);
}

/** Order of two `major.minor[.rev]` versions: negative when `a` is older. */
export function compareVersions(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

/** The oldest of `versions`, or undefined for none. */
export function oldestVersion(versions: Iterable<string>): string | undefined {
  let out: string | undefined;
  for (const v of versions) if (out === undefined || compareVersions(v, out) < 0) out = v;
  return out;
}
