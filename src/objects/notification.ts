/**
 * Versioned notification payloads, as Nova's versioned notifications carry them: each payload
 * object is declared once with its name, version and typed fields, and travels as
 * `{ferry_object.name, ferry_object.namespace, ferry_object.version, ferry_object.data}`.
 * A consumer can rely on the fields a version declares; a change of fields needs a new version
 * (test/unit/objects/notification-payloads.test.ts holds each version's fingerprint).
 */
import { createHash } from 'node:crypto';

export const PAYLOAD_NAMESPACE = 'ferry';

/**
 * A field's type: `string`, `number`, `boolean`, `uuid`, `datetime` (ISO 8601), `object:<Name>`
 * (a nested payload object), `list:object:<Name>`, `dict:number`; a trailing `?` allows null.
 */
export type FieldType = string;

export interface PayloadDefinition {
  readonly name: string;
  /** `major.minor`: a new field is a minor bump, a removed or retyped one a major. */
  readonly version: string;
  readonly fields: Readonly<Record<string, FieldType>>;
}

export interface VersionedObject {
  'ferry_object.name': string;
  'ferry_object.namespace': string;
  'ferry_object.version': string;
  'ferry_object.data': Record<string, unknown>;
}

const SCALARS = new Set(['string', 'number', 'boolean', 'uuid', 'datetime']);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function definePayload(name: string, version: string, fields: Record<string, FieldType>): PayloadDefinition {
  if (!/^\d+\.\d+$/.test(version)) throw new Error(`${name}: version "${version}" is not major.minor`);
  for (const [f, t] of Object.entries(fields)) {
    const base = t.replace(/\?$/, '');
    const known = SCALARS.has(base) || /^object:\w+$/.test(base) || /^list:object:\w+$/.test(base) || base === 'dict:number';
    if (!known) throw new Error(`${name}.${f}: unknown field type "${t}"`);
  }
  return Object.freeze({ name, version, fields: Object.freeze({ ...fields }) });
}

/** `<version>-<hash of the name and the sorted fields>`: what changes when the fields change. */
export function fingerprint(def: PayloadDefinition): string {
  const fields = Object.keys(def.fields)
    .sort()
    .map((f) => [f, def.fields[f]]);
  const hash = createHash('sha256')
    .update(JSON.stringify([def.name, fields]))
    .digest('hex')
    .slice(0, 32);
  return `${def.version}-${hash}`;
}

function isVersioned(v: unknown, name: string): boolean {
  return typeof v === 'object' && v !== null && (v as VersionedObject)['ferry_object.name'] === name;
}

/** Why `value` is not of `type` (null when it is). */
function typeProblem(type: FieldType, value: unknown): string | null {
  const nullable = type.endsWith('?');
  const base = nullable ? type.slice(0, -1) : type;
  if (value === null) return nullable ? null : 'is null but not nullable';
  if (value === undefined) return 'is missing';
  switch (base) {
    case 'string':
      return typeof value === 'string' ? null : 'is not a string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? null : 'is not a number';
    case 'boolean':
      return typeof value === 'boolean' ? null : 'is not a boolean';
    case 'uuid':
      return typeof value === 'string' && UUID_RE.test(value) ? null : 'is not a UUID';
    case 'datetime':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? null : 'is not an ISO 8601 date';
    case 'dict:number':
      return typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((x) => typeof x === 'number') ? null : 'is not a map of numbers';
  }
  if (base.startsWith('list:object:')) {
    const name = base.slice('list:object:'.length);
    return Array.isArray(value) && value.every((x) => isVersioned(x, name)) ? null : `is not a list of ${name}`;
  }
  const name = base.slice('object:'.length);
  return isVersioned(value, name) ? null : `is not a ${name}`;
}

/**
 * The payload object holding `data`, which must have exactly the declared fields with their
 * types (nested objects already built): a payload never carries what its version does not declare.
 */
export function versionedObject(def: PayloadDefinition, data: Record<string, unknown>): VersionedObject {
  const problems: string[] = [];
  for (const [f, t] of Object.entries(def.fields)) {
    const p = typeProblem(t, data[f]);
    if (p) problems.push(`${f} ${p}`);
  }
  for (const f of Object.keys(data)) if (!(f in def.fields)) problems.push(`${f} is not a declared field`);
  if (problems.length) throw new Error(`${def.name} ${def.version}: ${problems.join('; ')}`);
  return {
    'ferry_object.name': def.name,
    'ferry_object.namespace': PAYLOAD_NAMESPACE,
    'ferry_object.version': def.version,
    'ferry_object.data': data,
  };
}

/** The declared fields of `def` taken from `record` (all but `except`, which the caller supplies). */
export function pickFields(def: PayloadDefinition, record: object, except: readonly string[] = []): Record<string, unknown> {
  const src = record as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of Object.keys(def.fields)) if (!except.includes(f)) out[f] = src[f];
  return out;
}
