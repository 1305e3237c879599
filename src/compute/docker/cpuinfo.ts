/**
 * CPU features pre-check: a process restored on a CPU that lacks an instruction set it used
 * (it probed CPUID once, at start) runs until it executes one and then dies with SIGILL. CRIU
 * can tell beforehand: `criu cpuinfo dump` writes this CPU's features to cpuinfo.img, and
 * `criu cpuinfo check` compares such an image with the CPU it runs on. The source dumps at the
 * pre-check, the image travels in its host facts (base64, bounded), the target runs the check
 * and refuses with reason `cpu_features`, naming what is missing.
 *
 * What is compared is CRIU's default (`--cpu-cap fpu,ins`), which `criu cpuinfo check` applies:
 *  - fpu: the FPU bits (fpu, fxsr, osxsave, xsaves) the source has must be on the target, the
 *    source's XSAVE components (xfeatures) must be a subset of the target's, and the XSAVE frame
 *    sizes must be equal (a restored process keeps the frame layout it was started with);
 *  - ins: the instruction-set bits in CRIU's instruction mask (sse*, avx*, aes, bmi*, sha, ...)
 *    the source has must be on the target; a target with more is fine.
 * Other bits (power management, virtualisation, model numbers) are not compared.
 *
 * CRIU's exit code is the verdict; this module decodes the images only to name the features in
 * the refusal (CRIU's log says "do not match" without names). x86 only: elsewhere CRIU has no
 * cpuinfo images and the check is skipped (logged).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_CPUINFO_IMAGE_BYTES, type Refusal } from '../driver.js';
import { run } from './exec.js';

const IMG_COMMON_MAGIC = 0x54564319;
const CPUINFO_MAGIC = 0x61404013;

export interface X86CpuInfo {
  vendor: number; // 1 Intel, 2 AMD
  family: number;
  model: number;
  stepping: number;
  capability_ver: number;
  capability: number[]; // 32-bit words, Linux's x86 capability layout
  model_id: string | null;
  xfeatures_mask: bigint | null;
  xsave_size: number | null;
  xsave_size_max: number | null;
}

// ---- protobuf (proto2, the few wire types cpuinfo.proto uses) ----

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    throw new Error('varint too long');
  }
  bytes(): Buffer {
    const n = Number(this.varint());
    if (this.pos + n > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unknown wire type ${wire}`);
  }
}

function decodeX86(buf: Buffer): X86CpuInfo {
  const r = new Reader(buf);
  const out: X86CpuInfo = {
    vendor: 0,
    family: 0,
    model: 0,
    stepping: 0,
    capability_ver: 0,
    capability: [],
    model_id: null,
    xfeatures_mask: null,
    xsave_size: null,
    xsave_size_max: null,
  };
  while (!r.done()) {
    const key = Number(r.varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 6 && wire === 2) {
      // packed form (proto2 writers may use either)
      const p = new Reader(r.bytes());
      while (!p.done()) out.capability.push(Number(p.varint() & 0xffffffffn));
      continue;
    }
    if (field === 7 && wire === 2) {
      out.model_id = r.bytes().toString('utf8');
      continue;
    }
    if (wire !== 0) {
      r.skip(wire);
      continue;
    }
    const v = r.varint();
    if (field === 1) out.vendor = Number(v);
    else if (field === 2) out.family = Number(v);
    else if (field === 3) out.model = Number(v);
    else if (field === 4) out.stepping = Number(v);
    else if (field === 5) out.capability_ver = Number(v);
    else if (field === 6) out.capability.push(Number(v & 0xffffffffn));
    else if (field === 8) out.xfeatures_mask = v;
    else if (field === 9) out.xsave_size = Number(v);
    else if (field === 10) out.xsave_size_max = Number(v);
  }
  return out;
}

/** The x86 entry of a cpuinfo.img (CRIU's image framing: two magics, a size, the message); throws on anything else. */
export function decodeCpuinfoImage(img: Buffer): X86CpuInfo {
  if (img.length < 12 || img.length > MAX_CPUINFO_IMAGE_BYTES) throw new Error(`not a cpuinfo image (${img.length} bytes)`);
  if (img.readUInt32LE(0) !== IMG_COMMON_MAGIC || img.readUInt32LE(4) !== CPUINFO_MAGIC) throw new Error('not a cpuinfo image (magic)');
  const size = img.readUInt32LE(8);
  if (12 + size > img.length) throw new Error('truncated cpuinfo image');
  const r = new Reader(img.subarray(12, 12 + size));
  while (!r.done()) {
    const key = Number(r.varint());
    if (key >>> 3 === 1 && (key & 7) === 2) return decodeX86(r.bytes());
    r.skip(key & 7);
  }
  throw new Error('cpuinfo image has no x86 entry');
}

function varint(v: bigint | number): Buffer {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Buffer.from(out);
}

function field(n: number, wire: number, body: Buffer): Buffer {
  return Buffer.concat([varint((n << 3) | wire), body]);
}

/** The inverse of decodeCpuinfoImage, in the form CRIU writes (tests craft images with it). */
export function encodeCpuinfoImage(c: X86CpuInfo): Buffer {
  const parts: Buffer[] = [
    field(1, 0, varint(c.vendor)),
    field(2, 0, varint(c.family)),
    field(3, 0, varint(c.model)),
    field(4, 0, varint(c.stepping)),
    field(5, 0, varint(c.capability_ver)),
    ...c.capability.map((w) => field(6, 0, varint(w >>> 0))),
  ];
  if (c.model_id !== null) {
    const s = Buffer.from(c.model_id, 'utf8');
    parts.push(field(7, 2, Buffer.concat([varint(s.length), s])));
  }
  if (c.xfeatures_mask !== null) parts.push(field(8, 0, varint(c.xfeatures_mask)));
  if (c.xsave_size !== null) parts.push(field(9, 0, varint(c.xsave_size)));
  if (c.xsave_size_max !== null) parts.push(field(10, 0, varint(c.xsave_size_max)));
  const x86 = Buffer.concat(parts);
  const entry = field(1, 2, Buffer.concat([varint(x86.length), x86]));
  const head = Buffer.alloc(12);
  head.writeUInt32LE(IMG_COMMON_MAGIC, 0);
  head.writeUInt32LE(CPUINFO_MAGIC, 4);
  head.writeUInt32LE(entry.length, 8);
  return Buffer.concat([head, entry]);
}

// ---- what is compared, with the names /proc/cpuinfo uses ----

/** [word, bit, name]: the FPU bits of CRIU's fpu check. */
const FPU_BITS: [number, number, string][] = [
  [0, 0, 'fpu'],
  [0, 24, 'fxsr'],
  [4, 27, 'osxsave'],
  [10, 3, 'xsaves'],
];

/** [word, bit, name]: the instruction-set bits of CRIU's ins check (its x86_ins_capability_mask). */
export const INS_BITS: [number, number, string][] = [
  // word 0: CPUID 1 EDX
  ...(
    [
      [0, 'fpu'],
      [4, 'tsc'],
      [8, 'cx8'],
      [11, 'sep'],
      [15, 'cmov'],
      [19, 'clflush'],
      [23, 'mmx'],
      [24, 'fxsr'],
      [25, 'sse'],
      [26, 'sse2'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [0, b, n]),
  // word 1: CPUID 0x80000001 EDX
  ...(
    [
      [11, 'syscall'],
      [22, 'mmxext'],
      [27, 'rdtscp'],
      [30, '3dnowext'],
      [31, '3dnow'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [1, b, n]),
  // word 3: Linux-defined
  ...(
    [
      [16, 'rep_good'],
      [20, 'nopl'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [3, b, n]),
  // word 4: CPUID 1 ECX
  ...(
    [
      [0, 'pni'],
      [1, 'pclmulqdq'],
      [3, 'monitor'],
      [9, 'ssse3'],
      [13, 'cx16'],
      [19, 'sse4_1'],
      [20, 'sse4_2'],
      [22, 'movbe'],
      [23, 'popcnt'],
      [25, 'aes'],
      [26, 'xsave'],
      [27, 'osxsave'],
      [28, 'avx'],
      [29, 'f16c'],
      [30, 'rdrand'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [4, b, n]),
  // word 6: CPUID 0x80000001 ECX
  ...(
    [
      [5, 'abm'],
      [6, 'sse4a'],
      [7, 'misalignsse'],
      [8, '3dnowprefetch'],
      [11, 'xop'],
      [16, 'fma4'],
      [21, 'tbm'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [6, b, n]),
  // word 9: CPUID 7.0 EBX
  ...(
    [
      [0, 'fsgsbase'],
      [3, 'bmi1'],
      [4, 'hle'],
      [5, 'avx2'],
      [8, 'bmi2'],
      [9, 'erms'],
      [11, 'rtm'],
      [14, 'mpx'],
      [16, 'avx512f'],
      [17, 'avx512dq'],
      [18, 'rdseed'],
      [19, 'adx'],
      [23, 'clflushopt'],
      [26, 'avx512pf'],
      [27, 'avx512er'],
      [28, 'avx512cd'],
      [29, 'sha_ni'],
      [30, 'avx512bw'],
      [31, 'avx512vl'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [9, b, n]),
  // word 10: CPUID 0xD.1 EAX
  ...(
    [
      [0, 'xsaveopt'],
      [1, 'xsavec'],
      [2, 'xgetbv1'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [10, b, n]),
  // word 11: CPUID 7.0 ECX
  ...(
    [
      [1, 'avx512vbmi'],
      [6, 'avx512_vbmi2'],
      [8, 'gfni'],
      [9, 'vaes'],
      [10, 'vpclmulqdq'],
      [11, 'avx512_vnni'],
      [12, 'avx512_bitalg'],
      [13, 'tme'],
      [14, 'avx512_vpopcntdq'],
      [22, 'rdpid'],
    ] as [number, string][]
  ).map(([b, n]): [number, number, string] => [11, b, n]),
  // word 13: CPUID 0x80000008 EBX
  [13, 0, 'clzero'],
  // word 18: CPUID 7.0 EDX
  [18, 2, 'avx512_4vnniw'],
  [18, 3, 'avx512_4fmaps'],
];

/** XSAVE state components (XCR0 bits), as the kernel names them. */
const XFEATURES = [
  'x87',
  'sse',
  'avx',
  'bndregs',
  'bndcsr',
  'opmask',
  'zmm_hi256',
  'hi16_zmm',
  'pt',
  'pkru',
  'pasid',
  'cet_user',
  'cet_supervisor',
  'hdc',
  'uintr',
  'lbr',
  'hwp',
  'xtilecfg',
  'xtiledata',
  'apx',
];

function has(c: X86CpuInfo, word: number, bit: number): boolean {
  return (((c.capability[word] ?? 0) >>> bit) & 1) === 1;
}

export interface CpuComparison {
  /** Features the source has and the target lacks (names as in /proc/cpuinfo). */
  missing: string[];
  /** Other differences CRIU's check refuses (XSAVE frame sizes). */
  mismatches: string[];
}

/** CRIU's default check (fpu + ins), decoded so that its result can be named. */
export function compareCpuinfo(source: X86CpuInfo, target: X86CpuInfo): CpuComparison {
  const missing = new Set<string>();
  for (const [w, b, name] of [...FPU_BITS, ...INS_BITS]) if (has(source, w, b) && !has(target, w, b)) missing.add(name);
  const mismatches: string[] = [];
  if (source.xfeatures_mask !== null && target.xfeatures_mask !== null) {
    const extra = source.xfeatures_mask & ~target.xfeatures_mask;
    for (let i = 0; i < 64; i++) if ((extra >> BigInt(i)) & 1n) missing.add(`xsave:${XFEATURES[i] ?? `component${i}`}`);
  }
  if (source.xsave_size !== null && target.xsave_size !== null && source.xsave_size !== target.xsave_size) {
    mismatches.push(`XSAVE frame size ${source.xsave_size} on the source, ${target.xsave_size} on the target`);
  }
  if (source.xsave_size_max !== null && target.xsave_size_max !== null && source.xsave_size_max !== target.xsave_size_max) {
    mismatches.push(`largest XSAVE frame size ${source.xsave_size_max} on the source, ${target.xsave_size_max} on the target`);
  }
  return { missing: [...missing], mismatches };
}

/**
 * The decision: CRIU's verdict (`criu cpuinfo check` exit code) refuses; the names come from the
 * decoded images; when they cannot be decoded, CRIU's own log line says what it found.
 */
export function cpuRefusals(args: {
  sourceHost: string;
  targetHost: string;
  criuPassed: boolean;
  criuLog: string;
  comparison: CpuComparison | null;
}): Refusal[] {
  if (args.criuPassed) return [];
  const what: string[] = [];
  if (args.comparison?.missing.length) what.push(`it lacks ${args.comparison.missing.join(', ')}`);
  if (args.comparison?.mismatches.length) what.push(args.comparison.mismatches.join('; '));
  if (what.length === 0) {
    const line =
      args.criuLog
        .split('\n')
        .filter((l) => /Error|err|mismatch|match|unsupported/i.test(l))
        .pop()
        ?.trim() ??
      args.criuLog.trim().split('\n').pop() ??
      '';
    what.push(`criu cpuinfo check: ${line.slice(0, 300) || 'failed without a reason'}`);
  }
  return [
    {
      reason: 'cpu_features',
      message: `the CPU of target ${args.targetHost} cannot run what the source ${args.sourceHost}'s CPU offered (${what.join('; ')}): a restored process that uses them would die with SIGILL; choose a target with the same or a newer CPU`,
    },
  ];
}

// ---- running CRIU ----

function tmpDir(root: string, tag: string): string {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  return fs.mkdtempSync(path.join(root, `cpuinfo-${tag}-`));
}

/** This CPU's cpuinfo.img (`criu cpuinfo dump`), or null where CRIU has none (not x86) or cannot run. */
export async function dumpCpuinfo(binary: string, workRoot: string = os.tmpdir()): Promise<{ image: Buffer | null; error: string | null }> {
  const dir = tmpDir(workRoot, 'dump');
  try {
    const r = await run(binary, ['cpuinfo', 'dump', '-D', dir, '-o', 'cpuinfo.log', '-v2'], { timeoutMs: 20_000 });
    const file = path.join(dir, 'cpuinfo.img');
    if (r.code !== 0 || !fs.existsSync(file)) {
      return { image: null, error: `criu cpuinfo dump exited ${r.code}: ${readLog(dir).slice(-300)}` };
    }
    return { image: fs.readFileSync(file), error: null };
  } catch (e) {
    return { image: null, error: (e as Error).message };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readLog(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, 'cpuinfo.log'), 'utf8');
  } catch {
    return '';
  }
}

/** `criu cpuinfo check` of a source's image against this CPU: exit code 0 = passes. */
export async function checkCpuinfo(binary: string, image: Buffer, workRoot: string = os.tmpdir()): Promise<{ passed: boolean; log: string }> {
  const dir = tmpDir(workRoot, 'check');
  try {
    fs.writeFileSync(path.join(dir, 'cpuinfo.img'), image, { mode: 0o600 });
    const r = await run(binary, ['cpuinfo', 'check', '-D', dir, '-o', 'cpuinfo.log', '-v2'], { timeoutMs: 20_000 });
    return { passed: r.code === 0, log: readLog(dir) + r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
