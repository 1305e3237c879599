/** `up --db galera`: the conductors' connections spread over the three nodes, each failing over to the others. */
import { describe, expect, it } from '@jest/globals';
import { parseConnection } from '../../../src/db/connection.js';
import { checkShape, databaseUrl } from '../../../src/devcloud/shape.js';

describe('the dev cloud on Galera', () => {
  it('conductor i writes through node i (mod 3) and lists the others, in turn, to fail over to', () => {
    const servers = (i: number) => {
      const t = parseConnection(databaseUrl({ db: 'galera', conductors: 4, hosts: 2 }, i));
      if (t.kind !== 'mysql') throw new Error('not MySQL');
      return [t.port, ...(t.failover ?? []).map((f) => f.port)];
    };
    expect([0, 1, 2, 3].map(servers)).toEqual([
      [3311, 3312, 3313],
      [3312, 3313, 3311],
      [3313, 3311, 3312],
      [3311, 3312, 3313],
    ]);
  });

  it('takes several conductors; SQLite still takes one', () => {
    expect(() => checkShape({ db: 'galera', conductors: 3, hosts: 2 })).not.toThrow();
    expect(() => checkShape({ db: 'sqlite', conductors: 2, hosts: 2 })).toThrow(/mariadb or galera/);
  });
});
