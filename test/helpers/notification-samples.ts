/**
 * The versioned notification samples of docs/notifications/samples/, and how a notification is
 * compared with its sample: the same keys at every level and the same JSON types, values aside
 * (ids, times and counters differ). A field its payload object declares nullable may be null
 * in one and set in the other.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PAYLOADS } from '../../src/objects/notification-payloads.js';
import { repoRoot } from './cloud.js';

export const SAMPLES_DIR = path.join(repoRoot, 'docs/notifications/samples');

export interface NotificationSample {
  event_type: string;
  payload: Record<string, unknown>;
  priority: string;
  publisher_id: string;
}

/** Every sample, by event type (the file is named after it). */
export function loadSamples(): Map<string, NotificationSample> {
  const out = new Map<string, NotificationSample>();
  for (const f of fs
    .readdirSync(SAMPLES_DIR)
    .filter((x) => x.endsWith('.json'))
    .sort()) {
    const s = JSON.parse(fs.readFileSync(path.join(SAMPLES_DIR, f), 'utf8')) as NotificationSample;
    if (`${s.event_type}.json` !== f) throw new Error(`${f} holds the sample of ${s.event_type}; name it ${s.event_type}.json`);
    out.set(s.event_type, s);
  }
  return out;
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

const nullableOf = new Map(
  PAYLOADS.map((d) => [
    d.name,
    new Set(
      Object.entries(d.fields)
        .filter(([, t]) => t.endsWith('?'))
        .map(([f]) => f),
    ),
  ]),
);

/**
 * Where `actual` differs in shape from `sample` (empty when it has the sample's shape);
 * `nullable`: the keys of this object that may be null in one and set in the other.
 */
export function shapeDifferences(sample: unknown, actual: unknown, where = '', nullable: ReadonlySet<string> = new Set()): string[] {
  const ks = kind(sample);
  const ka = kind(actual);
  if (ks !== ka) return [`${where || 'the notification'}: ${ka} where the sample has ${ks}`];
  if (ks === 'array') {
    const [first] = sample as unknown[];
    if (first === undefined) return [];
    return (actual as unknown[]).flatMap((x, i) => shapeDifferences(first, x, `${where}[${i}]`));
  }
  if (ks !== 'object') return [];
  const s = sample as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  const at = (k: string) => (where ? `${where}.${k}` : k);
  const out: string[] = [];
  for (const k of Object.keys(s)) if (!(k in a)) out.push(`${at(k)} is missing`);
  for (const k of Object.keys(a)) if (!(k in s)) out.push(`${at(k)} is not in the sample`);
  const objectName = s['ferry_object.name'];
  for (const k of Object.keys(s)) {
    if (!(k in a)) continue;
    if ((s[k] === null || a[k] === null) && s[k] !== a[k] && nullable.has(k)) continue;
    // The fields of a payload object's data may be null where its definition says so.
    const inner = k === 'ferry_object.data' && typeof objectName === 'string' ? (nullableOf.get(objectName) ?? new Set<string>()) : new Set<string>();
    out.push(...shapeDifferences(s[k], a[k], at(k), inner));
  }
  if (typeof objectName === 'string' && objectName !== a['ferry_object.name'])
    out.push(`${where}: ${String(a['ferry_object.name'])} where the sample has ${objectName}`);
  if (typeof s['ferry_object.version'] === 'string' && s['ferry_object.version'] !== a['ferry_object.version']) {
    out.push(`${where}: version ${String(a['ferry_object.version'])} where the sample has ${String(s['ferry_object.version'])}`);
  }
  return out;
}

/** A notification as received compared with the sample of its event type. */
export function sampleDifferences(sample: NotificationSample, n: { eventType: string; priority: string; publisherId: string; payload: unknown }): string[] {
  const out: string[] = [];
  if (n.eventType !== sample.event_type) out.push(`event type ${n.eventType}, sample ${sample.event_type}`);
  if (n.priority.toUpperCase() !== sample.priority) out.push(`priority ${n.priority}, sample ${sample.priority}`);
  const service = sample.publisher_id.split(':')[0];
  if (!n.publisherId.startsWith(`${service}:`)) out.push(`publisher ${n.publisherId}, sample ${sample.publisher_id}`);
  return [...out, ...shapeDifferences(sample.payload, n.payload, 'payload')];
}
