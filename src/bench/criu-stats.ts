/**
 * Reading CRIU's own timings from a checkpoint: the `stats-dump` image CRIU writes next to the
 * other images (a service image: two magics, then one length-prefixed protobuf StatsEntry).
 * Times are microseconds. A tiny protobuf reader is enough (varints and nested messages).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DumpStats {
  freezing_us: number | null;
  frozen_us: number | null;
  memdump_us: number | null;
  memwrite_us: number | null;
  pages_scanned: number | null;
  pages_written: number | null;
}

type Fields = Map<number, (number | Buffer)[]>;

function varint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    if (!(b & 0x80)) return [result, pos];
    mul *= 128;
  }
}

export function decodeMessage(buf: Buffer): Fields {
  const out: Fields = new Map();
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = varint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let value: number | Buffer;
    if (wire === 0) {
      [value, pos] = varint(buf, p1);
    } else if (wire === 2) {
      const [len, p2] = varint(buf, p1);
      value = buf.subarray(p2, p2 + len);
      pos = p2 + len;
    } else if (wire === 5) {
      value = buf.readUInt32LE(p1);
      pos = p1 + 4;
    } else if (wire === 1) {
      value = Number(buf.readBigUInt64LE(p1));
      pos = p1 + 8;
    } else throw new Error(`unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const SERVICE_MAGIC = 0x55105940;
const STATS_MAGIC = 0x57093306;

/** Parse a stats-dump image's bytes; null when it is not one. */
export function parseStatsDump(buf: Buffer): DumpStats | null {
  if (buf.length < 12 || buf.readUInt32LE(0) !== SERVICE_MAGIC || buf.readUInt32LE(4) !== STATS_MAGIC) return null;
  const size = buf.readUInt32LE(8);
  const entry = decodeMessage(buf.subarray(12, 12 + size));
  const dump = entry.get(1)?.[0];
  if (!Buffer.isBuffer(dump)) return null;
  const d = decodeMessage(dump);
  const n = (f: number) => {
    const v = d.get(f)?.[0];
    return typeof v === 'number' ? v : null;
  };
  return { freezing_us: n(1), frozen_us: n(2), memdump_us: n(3), memwrite_us: n(4), pages_scanned: n(5), pages_written: n(7) };
}

export function readStatsDump(imageDir: string): DumpStats | null {
  try {
    return parseStatsDump(fs.readFileSync(path.join(imageDir, 'stats-dump')));
  } catch {
    return null;
  }
}
