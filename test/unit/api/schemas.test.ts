import { describe, expect, it } from '@jest/globals';
import {
  parseContainerPage,
  parseContainerRef,
  parseIsoTime,
  parseMigrateBody,
  parseMigrationFilters,
  parseMigrationId,
  parseNoQuery,
} from '../../../src/api/schemas.js';
import { ContainerNotFound, InvalidInput, MigrationNotFound } from '../../../src/common/errors.js';
import { MIGRATION_STATUSES } from '../../../src/objects/migration.js';

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInput);
    return (e as Error).message;
  }
  throw new Error('expected InvalidInput');
}

describe('migrate body', () => {
  it('accepts {}, no body, a host, host null', () => {
    expect(parseMigrateBody(undefined)).toEqual({});
    expect(parseMigrateBody({})).toEqual({});
    expect(parseMigrateBody({ host: 'compute2' })).toEqual({ host: 'compute2' });
    expect(parseMigrateBody({ host: null })).toEqual({ host: null });
  });

  it('rejects unknown fields, naming them and what is allowed', () => {
    expect(message(() => parseMigrateBody({ host: 'a', hots: 'b', x: 1 }))).toBe('Unknown fields in the request body: "hots", "x" (allowed: host, post_copy)');
  });

  it('rejects wrong types and values', () => {
    expect(message(() => parseMigrateBody({ host: 1 }))).toBe('Invalid field "host": must be a string (a compute host name) or null');
    expect(message(() => parseMigrateBody({ host: ['a'] }))).toMatch(/must be a string/);
    expect(message(() => parseMigrateBody({ host: '' }))).toBe('Invalid field "host": must not be empty');
    expect(message(() => parseMigrateBody({ host: 'a\nb' }))).toMatch(/control characters/);
    expect(message(() => parseMigrateBody({ host: 'h'.repeat(256) }))).toMatch(/at most 255/);
    expect(message(() => parseMigrateBody([]))).toMatch(/must be a JSON object/);
    expect(message(() => parseMigrateBody(null))).toMatch(/must be a JSON object/);
  });
});

describe('migration filters', () => {
  it('passes known filters', () => {
    expect(parseMigrationFilters({})).toEqual({});
    expect(parseMigrationFilters({ container: 'counter', status: 'running', source_host: 'compute1', dest_host: 'compute2' })).toEqual({
      container: 'counter',
      status: 'running',
      source_host: 'compute1',
      dest_host: 'compute2',
    });
  });

  it('status must be one of the statuses', () => {
    for (const s of MIGRATION_STATUSES) {
      expect(parseMigrationFilters({ status: s })).toEqual({ status: s });
    }
    expect(message(() => parseMigrationFilters({ status: 'done' }))).toBe(`Invalid query parameter "status": must be one of ${MIGRATION_STATUSES.join(', ')}`);
  });

  it('rejects unknown and repeated parameters', () => {
    expect(message(() => parseMigrationFilters({ limits: '5' }))).toBe(
      'Unknown query parameter: "limits" (allowed: container, status, source_host, dest_host, user_id, project_id, changes-since, changes-before, limit, marker, sort_key, sort_dir)',
    );
    expect(message(() => parseMigrationFilters({ source_host: ['a', 'b'] }))).toBe('Invalid query parameter "source_host": must be given only once');
    expect(message(() => parseNoQuery({ a: '1' }))).toBe('Unknown query parameter: "a" (allowed: none)');
  });
});

describe('paging and sorting (Nova habits)', () => {
  const uuid = '0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10';

  it('takes limit, marker, sort_key, sort_dir, changes-since/before, user_id and project_id', () => {
    expect(
      parseMigrationFilters({
        limit: '50',
        marker: uuid.toUpperCase(),
        sort_key: 'updated_at',
        sort_dir: 'asc',
        'changes-since': '2026-11-30T06:00:00Z',
        'changes-before': '2026-11-30T07:00:00.5+01:00',
        user_id: 'u1',
        project_id: 'p1',
      }),
    ).toEqual({
      limit: 50,
      marker: uuid,
      sort_key: 'updated_at',
      sort_dir: 'asc',
      changes_since: '2026-11-30T06:00:00.000Z',
      changes_before: '2026-11-30T06:00:00.500Z',
      user_id: 'u1',
      project_id: 'p1',
    });
  });

  it('bad values are a 400 that says what is wrong', () => {
    for (const bad of ['0', '-1', 'ten', '1.5', '1e3', '9999999999']) {
      expect(message(() => parseMigrationFilters({ limit: bad }))).toBe('Invalid query parameter "limit": must be a positive integer');
    }
    expect(message(() => parseMigrationFilters({ limit: ['1', '2'] }))).toBe('Invalid query parameter "limit": must be given only once');
    expect(message(() => parseMigrationFilters({ marker: 'nope' }))).toBe('Invalid query parameter "marker": must be the uuid of a migration');
    expect(message(() => parseMigrationFilters({ sort_key: 'colour' }))).toMatch(
      /^Invalid query parameter "sort_key": must be one of created_at, updated_at, /,
    );
    expect(message(() => parseMigrationFilters({ sort_dir: 'up' }))).toBe('Invalid query parameter "sort_dir": must be one of asc, desc');
    expect(message(() => parseMigrationFilters({ 'changes-since': 'yesterday' }))).toBe(
      'Invalid query parameter "changes-since": must be an ISO 8601 date-time, e.g. 2026-11-30T06:00:00Z',
    );
    expect(message(() => parseMigrationFilters({ 'changes-before': '2026-13-45T99:00:00Z' }))).toMatch(/"changes-before": must be an ISO 8601/);
    expect(message(() => parseMigrationFilters({ 'changes-since': '2026-11-30T07:00:00Z', 'changes-before': '2026-11-30T06:00:00Z' }))).toBe(
      'The value of changes-since (2026-11-30T07:00:00.000Z) must be earlier than or equal to changes-before (2026-11-30T06:00:00.000Z)',
    );
    expect(message(() => parseMigrationFilters({ changes_since: '2026-11-30' }))).toMatch(/^Unknown query parameter: "changes_since"/);
  });

  it('ISO 8601 times without a zone are UTC; a date alone is its midnight', () => {
    expect(parseIsoTime('2026-11-30T06:00:00')).toBe('2026-11-30T06:00:00.000Z');
    expect(parseIsoTime('2026-11-30 06:00')).toBe('2026-11-30T06:00:00.000Z');
    expect(parseIsoTime('2026-11-30')).toBe('2026-11-30T00:00:00.000Z');
    expect(parseIsoTime('2026-11-30T08:00:00+0200')).toBe('2026-11-30T06:00:00.000Z');
    expect(parseIsoTime('30/11/2026')).toBeNull();
  });

  it('containers page with limit and marker only', () => {
    expect(parseContainerPage({})).toEqual({});
    expect(parseContainerPage({ limit: '2', marker: 'abc' })).toEqual({ limit: 2, marker: 'abc' });
    expect(message(() => parseContainerPage({ limit: 'x' }))).toBe('Invalid query parameter "limit": must be a positive integer');
    expect(message(() => parseContainerPage({ sort_key: 'name' }))).toBe('Unknown query parameter: "sort_key" (allowed: limit, marker)');
  });
});

describe('identifiers', () => {
  it('migration ids are UUIDs, lower-cased; anything else is not found', () => {
    expect(parseMigrationId('0B6B2C1E-4E1A-4F43-9A3E-2F1F3C7A9D10')).toBe('0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10');
    for (const bad of ['1', 'abc', '0b6b2c1e4e1a4f439a3e2f1f3c7a9d10', `${'0b6b2c1e-4e1a-4f43-9a3e-2f1f3c7a9d10'}x`]) {
      expect(() => parseMigrationId(bad)).toThrow(MigrationNotFound);
    }
    expect(() => parseMigrationId('x'.repeat(500))).toThrow(/^Migration x{80}\.\.\. could not be found\.$/);
  });

  it('container refs follow Docker names and ids', () => {
    expect(parseContainerRef('counter')).toBe('counter');
    expect(parseContainerRef('/counter')).toBe('counter');
    expect(parseContainerRef('a1b2c3')).toBe('a1b2c3');
    expect(parseContainerRef('my_app.v2-1')).toBe('my_app.v2-1');
    for (const bad of ['', '-x', 'a b', 'a/b', '../etc', 'x'.repeat(300)]) expect(() => parseContainerRef(bad)).toThrow(ContainerNotFound);
  });
});
