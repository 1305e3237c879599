import { describe, expect, it } from '@jest/globals';
import { parseCommandLine } from '../../../src/common/args.js';
import { InvalidInput } from '../../../src/common/errors.js';

const OPTIONS = {
  runs: { type: 'string' },
  json: { type: 'boolean' },
  'config-file': { type: 'string', multiple: true },
} as const;

function usageError(argv: string[], positionals = false): string {
  try {
    parseCommandLine(argv, OPTIONS, positionals);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInput);
    return (e as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('parseCommandLine', () => {
  it('reads flags, values, repeated options and positionals', () => {
    const r = parseCommandLine(['db', '--runs', '2', '--json', '--config-file', 'a.conf', '--config-file=b.conf', 'sync'], OPTIONS, true);
    expect(r.values).toEqual({ runs: '2', json: true, 'config-file': ['a.conf', 'b.conf'] });
    expect(r.positionals).toEqual(['db', 'sync']);
  });

  it('names an unknown flag plainly', () => {
    expect(usageError(['--frobnicate'])).toBe('unknown option --frobnicate');
    expect(usageError(['-x'])).toBe('unknown option -x');
  });

  it('says when a value is missing or not wanted', () => {
    expect(usageError(['--runs'])).toBe('option --runs needs a value');
    expect(usageError(['--runs', '--json'])).toBe('option --runs needs a value');
    expect(usageError(['--json=yes'])).toBe('option --json takes no value');
  });

  it('refuses stray arguments where none are expected', () => {
    expect(usageError(['sync'])).toBe('unexpected argument "sync"');
  });
});
