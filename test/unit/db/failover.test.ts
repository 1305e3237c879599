/** The Galera-facing parts of the MariaDB driver that are pure logic: the failover list in the URL, and which errors are run again. */
import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../../src/common/errors.js';
import { parseConnection } from '../../../src/db/connection.js';
import { retryable } from '../../../src/db/mysql.js';

describe('[database] connection with ?failover=', () => {
  it('lists the other nodes after the first, IPv6 and the default port included', () => {
    expect(parseConnection('mysql+pymysql://ferry:s3cret@db1:3311/ferry?failover=db2:3312,[::1]:3313,db4')).toMatchObject({
      kind: 'mysql',
      host: 'db1',
      port: 3311,
      database: 'ferry',
      failover: [
        { host: 'db2', port: 3312 },
        { host: '::1', port: 3313 },
        { host: 'db4', port: 3306 },
      ],
    });
    expect(parseConnection('mysql+pymysql://ferry:s3cret@db1/ferry')).not.toHaveProperty('failover');
  });

  it('refuses a malformed entry with a clear error that does not repeat the password', () => {
    for (const bad of ['db2:x', 'db2:70000', '', 'db 2:3306']) {
      const url = `mysql+pymysql://ferry:s3cret@db1/ferry?failover=${bad}`;
      expect(() => parseConnection(url)).toThrow(ConfigError);
      expect(() => parseConnection(url)).toThrow(/failover/);
      expect(() => parseConnection(url)).not.toThrow(/s3cret/);
    }
  });
});

describe('which failures the driver runs again', () => {
  const err = (code: string, fatal = false, message = code) => Object.assign(new Error(message), { code, fatal });

  it('what the server rolled back or refused: a deadlock or certification conflict (1213), a lock wait time-out (1205), a node not ready (1047)', () => {
    const notReady = err('ER_UNKNOWN_COM_ERROR', false, 'WSREP has not yet prepared node for application use');
    for (const e of [err('ER_LOCK_DEADLOCK'), err('ER_LOCK_WAIT_TIMEOUT'), notReady]) {
      expect(retryable(e, 'before-commit')).toBe(true);
      expect(retryable(e, 'commit')).toBe(true);
    }
    // The same code without Galera's wording is MariaDB's "unknown command": not retried.
    expect(retryable(err('ER_UNKNOWN_COM_ERROR', false, 'Unknown command'), 'before-commit')).toBe(false);
  });

  it('a broken connection only before COMMIT was sent: during it, the outcome is unknown', () => {
    for (const e of [err('PROTOCOL_CONNECTION_LOST', true), err('ECONNRESET'), err('ECONNREFUSED')]) {
      expect(retryable(e, 'before-commit')).toBe(true);
      expect(retryable(e, 'commit')).toBe(false);
    }
  });

  it('never an error of the statement itself', () => {
    for (const code of ['ER_DUP_ENTRY', 'ER_PARSE_ERROR', 'ER_NO_SUCH_TABLE', '']) expect(retryable(err(code), 'before-commit')).toBe(false);
  });
});
