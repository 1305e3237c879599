/** The CPU features pre-check's decision (issue 20, hole 8): images decoded, compared, named. */
import { expect, test } from '@jest/globals';
import { compareCpuinfo, cpuRefusals, decodeCpuinfoImage, encodeCpuinfoImage, type X86CpuInfo } from '../../../src/compute/docker/cpuinfo.js';
import { COMPUTE_METHODS } from '../../../src/compute/methods.js';
import { hostFacts } from './host-facts.js';

/** `criu cpuinfo dump` (CRIU 4.2.1) on an AMD EPYC: the form CRIU writes. */
const REAL =
  'GUNWVBNAQGFjAAAACmEIAhAaGAIgASgCMP/3r7wBMP/3z/4CMAAwgIDEEDCD5Oj/DzAAMPOHgAIwADAAMKuP/I0PMA8wxr+BAjAAMIWAyIAFMAQwADAAMAAwkAI6CEFNRCBFUFlDQOUBSIATUIAT';

function real(): X86CpuInfo {
  return decodeCpuinfoImage(Buffer.from(REAL, 'base64'));
}

function withBit(c: X86CpuInfo, word: number, bit: number, on: boolean): X86CpuInfo {
  const capability = [...c.capability];
  capability[word] = on ? (capability[word] | (1 << bit)) >>> 0 : capability[word] & ~(1 << bit);
  return { ...c, capability };
}

test('a real cpuinfo.img decodes, and encodes back to the same bytes', () => {
  const c = real();
  expect(c.vendor).toBe(2);
  expect(c.capability_ver).toBe(2);
  expect(c.capability).toHaveLength(19);
  expect(c.model_id).toBe('AMD EPYC');
  expect(c.xsave_size).toBeGreaterThan(0);
  expect(encodeCpuinfoImage(c).toString('base64')).toBe(REAL);
});

test('anything but a cpuinfo image is refused by the decoder', () => {
  expect(() => decodeCpuinfoImage(Buffer.from('not an image at all'))).toThrow(/not a cpuinfo image/);
  expect(() => decodeCpuinfoImage(Buffer.alloc(5000))).toThrow(/5000 bytes/);
  const img = Buffer.from(REAL, 'base64');
  expect(() => decodeCpuinfoImage(img.subarray(0, 40))).toThrow(/truncated/);
});

test('the same CPU: nothing missing', () => {
  expect(compareCpuinfo(real(), real())).toEqual({ missing: [], mismatches: [] });
});

test('an instruction set the source has and the target lacks is named (/proc/cpuinfo names)', () => {
  const target = withBit(withBit(real(), 9, 16, false), 4, 28, false); // no avx512f, no avx
  const source = withBit(withBit(real(), 9, 16, true), 4, 28, true);
  expect(compareCpuinfo(source, target).missing).toEqual(expect.arrayContaining(['avx512f', 'avx']));
  // a target with more is fine
  expect(compareCpuinfo(target, source).missing).toEqual([]);
});

test("bits outside CRIU's instruction mask are not compared (hypervisor, vmx)", () => {
  const source = withBit(withBit(real(), 4, 31, true), 4, 5, true);
  const target = withBit(withBit(real(), 4, 31, false), 4, 5, false);
  expect(compareCpuinfo(source, target)).toEqual({ missing: [], mismatches: [] });
});

test('XSAVE: extra components are missing features, different frame sizes a mismatch', () => {
  const base = real();
  const source = { ...base, xfeatures_mask: (base.xfeatures_mask ?? 0n) | (1n << 17n) | (1n << 18n), xsave_size: (base.xsave_size ?? 0) + 64 };
  const target = { ...base, xfeatures_mask: (base.xfeatures_mask ?? 0n) & ~((1n << 17n) | (1n << 18n)) };
  const c = compareCpuinfo(source, target);
  expect(c.missing).toEqual(expect.arrayContaining(['xsave:xtilecfg', 'xsave:xtiledata']));
  expect(c.mismatches.join(' ')).toMatch(/XSAVE frame size \d+ on the source, \d+ on the target/);
});

test("the refusal: CRIU's verdict decides, the decoded names say why", () => {
  expect(cpuRefusals({ sourceHost: 'c1', targetHost: 'c2', criuPassed: true, criuLog: '', comparison: { missing: ['avx2'], mismatches: [] } })).toEqual([]);
  const [r] = cpuRefusals({
    sourceHost: 'c1',
    targetHost: 'c2',
    criuPassed: false,
    criuLog: '',
    comparison: { missing: ['avx512f', 'sha_ni'], mismatches: [] },
  });
  expect(r.reason).toBe('cpu_features');
  expect(r.message).toMatch(/target c2 .* lacks avx512f, sha_ni.*SIGILL.*choose a target/);
  // undecodable images: CRIU's own error line is quoted
  const [q] = cpuRefusals({
    sourceHost: 'c1',
    targetHost: 'c2',
    criuPassed: false,
    criuLog: '(00.001) cpu: some debug\n(00.002) Error (criu/cpu.c:223): cpu: CPU instruction capabilities do not match run time\n',
    comparison: null,
  });
  expect(q.message).toContain('CPU instruction capabilities do not match run time');
});

test('the pre-check RPC bounds the image a source may send', () => {
  const args = COMPUTE_METHODS.check_can_migrate_destination.args;
  const base = { migration_id: 'm1', source_host: 'compute1' };
  expect(args.safeParse({ ...base, source: { ...hostFacts(), cpuinfo: REAL } }).success).toBe(true);
  expect(args.safeParse({ ...base, source: { ...hostFacts(), cpuinfo: null } }).success).toBe(true);
  expect(args.safeParse({ ...base, source: { ...hostFacts(), cpuinfo: 'A'.repeat(6000) } }).success).toBe(false);
  expect(args.safeParse({ ...base, source: { ...hostFacts(), cpuinfo: '<not base64>' } }).success).toBe(false);
});
