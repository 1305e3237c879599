import { describe, expect, it } from '@jest/globals';
import { parseContainerRef, parseMigrateBody, parseMigrationFilters, parseMigrationId, parseNoQuery } from '../../../src/api/schemas.js';
import { ContainerNotFound, InvalidInput, MigrationNotFound } from '../../../src/common/errors.js';

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
    expect(message(() => parseMigrateBody({ host: 'a', hots: 'b', x: 1 }))).toBe(
      'Unknown fields in the request body: "hots", "x" (allowed: host)',
    );
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
    for (const s of ['accepted', 'pre-migrating', 'running', 'post-migrating', 'completed', 'failed', 'cancelled']) {
      expect(parseMigrationFilters({ status: s })).toEqual({ status: s });
    }
    expect(message(() => parseMigrationFilters({ status: 'done' }))).toBe(
      'Invalid query parameter "status": must be one of accepted, pre-migrating, running, post-migrating, completed, failed, cancelled',
    );
  });

  it('rejects unknown and repeated parameters', () => {
    expect(message(() => parseMigrationFilters({ limit: '5' }))).toBe(
      'Unknown query parameter: "limit" (allowed: container, status, source_host, dest_host)',
    );
    expect(message(() => parseMigrationFilters({ source_host: ['a', 'b'] }))).toBe('Invalid query parameter "source_host": must be given only once');
    expect(message(() => parseNoQuery({ a: '1' }))).toBe('Unknown query parameter: "a" (allowed: none)');
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
