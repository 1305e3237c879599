/**
 * A Guru Meditation report, as oslo.reports writes one on SIGUSR2: what this process is (package
 * and Node.js versions, pid, uptime, memory), the event loop's state (delay, active handles), the
 * configuration in force with its secrets masked, and the sections a service adds (the
 * conductor's open migrations). It goes to stderr, between markers, whatever the log level.
 */
import fs from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { groups, type FerryConfig } from '../conf/index.js';
import type { OptGroup } from '../conf/opts.js';

export const MASK = '***';

/** A part of the report a service adds: a title and the lines under it. */
export interface ReportSection {
  title: string;
  render(): string[] | Promise<string[]>;
}

/** Option names that hold secrets even when not declared secret (defence in depth). */
const SECRET_NAME_RE = /password|secret/i;

/**
 * A URL with the password of each `user:pass@host` masked, keeping users and hosts (what an
 * operator needs to see): `rabbit://u:p@h1,u:p@h2/vh` -> `rabbit://u:***@h1,u:***@h2/vh`.
 * Any query (which may carry key passwords) is masked whole.
 */
export function maskUrlCredentials(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/i.exec(url);
  if (!scheme) return url === '' ? '' : MASK;
  const [, prefix, rest] = scheme;
  const q = rest.indexOf('?');
  const beforeQuery = q === -1 ? rest : rest.slice(0, q);
  const slash = beforeQuery.indexOf('/');
  // The authority ends at the first "/" that follows the last "@" (a password may hold a "/").
  const at = beforeQuery.lastIndexOf('@');
  const authorityEnd = at === -1 ? slash : beforeQuery.indexOf('/', at);
  const authority = authorityEnd === -1 ? beforeQuery : beforeQuery.slice(0, authorityEnd);
  const path = authorityEnd === -1 ? '' : beforeQuery.slice(authorityEnd);
  const hosts = authority.split(',').map((h) => {
    const a = h.lastIndexOf('@');
    if (a === -1) return h;
    const userinfo = h.slice(0, a);
    const colon = userinfo.indexOf(':');
    return colon === -1 ? h : `${userinfo.slice(0, colon)}:${MASK}${h.slice(a)}`;
  });
  return `${prefix}${hosts.join(',')}${path}${q === -1 ? '' : `?${MASK}`}`;
}

/** The configuration with every secret masked: URL-shaped ones keep their users and hosts. */
export function maskedConfig(conf: FerryConfig): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [g, opts] of Object.entries(groups as Record<string, OptGroup>)) {
    out[g] = {};
    const values = (conf as unknown as Record<string, Record<string, unknown>>)[g] ?? {};
    for (const [name, opt] of Object.entries(opts)) {
      const v = values[name];
      const secret = opt.secret === true || SECRET_NAME_RE.test(name);
      if (!secret || v === '' || v === null || v === undefined) out[g][name] = v;
      else out[g][name] = typeof v === 'string' && v.includes('://') ? maskUrlCredentials(v) : MASK;
    }
  }
  return out;
}

/** The version in package.json (what `npm` installed). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface ReportInput {
  service: string;
  conf: FerryConfig;
  sections?: readonly ReportSection[];
  /** The event loop's delay histogram (installReportHandler keeps one); absent: not measured. */
  loopDelay?: IntervalHistogram;
  now?: Date;
}

const ms = (ns: number) => (Number.isFinite(ns) ? (ns / 1e6).toFixed(1) : 'n/a');

/** The report's text. A section that throws says so in its place; the report is still written. */
export async function buildReport(input: ReportInput): Promise<string> {
  const now = input.now ?? new Date();
  const mem = process.memoryUsage();
  const out: string[] = [];
  const section = (title: string, lines: string[]) => {
    out.push('='.repeat(72), `==== ${title} ====`, '='.repeat(72), ...lines, '');
  };
  section('Guru Meditation', [`${input.service} report generated at ${now.toISOString()}`]);
  section('Package', [
    `ferry: ${packageVersion()}`,
    `node: ${process.version}`,
    `v8: ${process.versions.v8}`,
    `platform: ${process.platform} ${os.release()} ${process.arch}`,
  ]);
  section('Process', [
    `pid: ${process.pid}`,
    `ppid: ${process.ppid}`,
    `host: ${os.hostname()}`,
    `uptime: ${process.uptime().toFixed(1)} s`,
    `argv: ${process.argv.slice(1).join(' ')}`,
    `memory: rss ${mem.rss} B, heap used ${mem.heapUsed} of ${mem.heapTotal} B, external ${mem.external} B`,
  ]);
  const resources = process.getActiveResourcesInfo();
  const byType = new Map<string, number>();
  for (const r of resources) byType.set(r, (byType.get(r) ?? 0) + 1);
  const loop: string[] = [];
  if (input.loopDelay) {
    const h = input.loopDelay;
    loop.push(`delay: mean ${ms(h.mean)} ms, p99 ${ms(h.percentile(99))} ms, max ${ms(h.max)} ms (since start or the last report)`);
  }
  loop.push(`active resources: ${resources.length}`, ...[...byType].sort((a, b) => b[1] - a[1]).map(([t, n]) => `  ${t}: ${n}`));
  section('Event loop', loop);
  for (const s of input.sections ?? []) {
    let lines: string[];
    try {
      lines = await s.render();
    } catch (e) {
      lines = [`(could not be gathered: ${(e as Error).message})`];
    }
    section(s.title, lines.length ? lines : ['(none)']);
  }
  const conf = maskedConfig(input.conf);
  const confLines: string[] = [];
  for (const [g, values] of Object.entries(conf)) {
    confLines.push(`[${g}]`);
    for (const [k, v] of Object.entries(values)) confLines.push(`  ${k} = ${Array.isArray(v) ? v.join(',') : String(v)}`);
  }
  section('Configuration', confLines);
  return out.join('\n');
}

/**
 * Write a report to stderr on every SIGUSR2 (the conf is read when the signal comes, so a
 * SIGHUP's changes show). Returns a function that removes the handler.
 */
export function installReportHandler(service: string, conf: () => FerryConfig, sections: readonly ReportSection[]): () => void {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const onSignal = () => {
    void buildReport({ service, conf: conf(), sections, loopDelay })
      .then((text) => {
        process.stderr.write(`${text}\n`);
        loopDelay.reset();
      })
      .catch((e: unknown) => process.stderr.write(`${service}: the Guru Meditation report failed: ${(e as Error).message}\n`));
  };
  process.on('SIGUSR2', onSignal);
  return () => {
    process.off('SIGUSR2', onSignal);
    loopDelay.disable();
  };
}
