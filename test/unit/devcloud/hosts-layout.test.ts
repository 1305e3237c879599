import { FABRIC, FERRY_PORTS, MAX_HOSTS, hostNames } from '../../../src/devcloud/layout.js';
import { DEFAULT_SHAPE, checkShape } from '../../../src/devcloud/shape.js';

/** An IPv4 range a.b.c.d/n as [first, last] integers. */
function range(cidr: string): [number, number] {
  const [ip, bits] = cidr.split('/');
  const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  expect(n % size).toBe(0); // aligned, as Docker requires of an --ip-range
  return [n, n + size - 1];
}

describe('dev cloud compute hosts (up --hosts N)', () => {
  const all = hostNames(MAX_HOSTS);

  it('are compute1..computeN, compute1 and compute2 by default', () => {
    expect(hostNames(DEFAULT_SHAPE.hosts)).toEqual(['compute1', 'compute2']);
    expect(all).toHaveLength(MAX_HOSTS);
    expect(all[MAX_HOSTS - 1]).toBe(`compute${MAX_HOSTS}`);
  });

  it('keep the two default hosts on the addresses and ports they always had', () => {
    expect(FABRIC.ipRanges.compute1).toBe('10.250.0.64/26');
    expect(FABRIC.ipRanges.compute2).toBe('10.250.0.128/26');
    expect(FERRY_PORTS.migration.compute1).toBe(9518);
    expect(FERRY_PORTS.migration.compute2).toBe(9519);
  });

  it("each get a fabric range of their own inside the subnet, clear of the gateway, the client and the tests' fixed addresses", () => {
    const [netFirst, netLast] = range(FABRIC.subnet);
    const ranges = all.map((h) => range(FABRIC.ipRanges[h]));
    const below64 = netFirst + 63; // tests give their fabric containers fixed addresses under .64
    for (const [i, [a, b]] of ranges.entries()) {
      expect(a).toBeGreaterThan(below64);
      expect(b).toBeLessThanOrEqual(netLast);
      expect(b - a + 1).toBeGreaterThanOrEqual(8);
      for (const [c, d] of ranges.slice(i + 1)) expect(b < c || d < a).toBe(true);
    }
  });

  it('each get a data channel port of their own, none the API port', () => {
    const ports = all.map((h) => FERRY_PORTS.migration[h]);
    expect(new Set(ports).size).toBe(MAX_HOSTS);
    expect(ports).not.toContain(FERRY_PORTS.api);
  });

  it('number 2 to MAX_HOSTS; another count is refused with the range', () => {
    expect(() => checkShape({ ...DEFAULT_SHAPE, hosts: 5 })).not.toThrow();
    expect(() => checkShape({ ...DEFAULT_SHAPE, hosts: MAX_HOSTS })).not.toThrow();
    for (const hosts of [1, MAX_HOSTS + 1, 2.5]) expect(() => checkShape({ ...DEFAULT_SHAPE, hosts })).toThrow(`--hosts must be 2 to ${MAX_HOSTS}`);
  });
});
