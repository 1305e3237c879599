import { describe, expect, test } from '@jest/globals';
import { parseStatsDump } from '../../../src/bench/criu-stats.js';
import { decades, downtimeChart } from '../../../src/bench/svg.js';

describe('downtimeChart', () => {
  const svg = downtimeChart([
    {
      name: 'Ferry <REST>',
      points: [
        { x: 12e6, y: 2100, label: 'redis-100k' },
        { x: 180e6, y: 9800 },
        { x: 1e6, y: 1400 },
      ],
    },
    {
      name: 'raw CRIU',
      points: [
        { x: 12e6, y: 170 },
        { x: 0, y: 5 },
      ],
    },
  ]);

  test('is one well-formed SVG document', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<svg/g)).toHaveLength(1);
  });

  test('one polyline per series with two or more points, one dot per positive point', () => {
    expect(svg.match(/<polyline/g)).toHaveLength(1); // raw CRIU has a single usable point
    expect(svg.match(/<circle cx="[\d.]+" cy="[\d.]+" r="4" fill="[^"]+"><title>/g)).toHaveLength(4);
  });

  test('escapes names and labels the axes on log scales', () => {
    expect(svg).toContain('Ferry &lt;REST&gt;');
    expect(svg).not.toContain('<REST>');
    expect(svg).toContain('>1 MB<');
    expect(svg).toContain('>1 GB<');
    expect(svg).toContain('>100 ms<');
    expect(svg).toContain('>10 s<');
  });

  test('points stay inside the plot area', () => {
    for (const m of svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)" r="4" fill="[^"]+"><title>/g)) {
      const [x, y] = [Number(m[1]), Number(m[2])];
      expect(x).toBeGreaterThanOrEqual(70);
      expect(x).toBeLessThanOrEqual(760 - 230);
      expect(y).toBeGreaterThanOrEqual(40);
      expect(y).toBeLessThanOrEqual(460 - 55);
    }
  });

  test('decades cover the range', () => {
    expect(decades(12e6, 550e6)).toEqual([1e7, 1e8, 1e9]);
    expect(decades(100, 100)).toEqual([100, 1000]);
  });
});

describe('parseStatsDump', () => {
  test('reads CRIU dump timings from a stats-dump image', () => {
    // DumpStatsEntry: freezing_time=1: 1500, frozen_time=2: 220000, memdump_time=3: 90000, memwrite_time=4: 80000, pages_written=7: 44000
    const varint = (n: number) => {
      const out: number[] = [];
      while (n >= 0x80) {
        out.push((n % 128) | 0x80);
        n = Math.floor(n / 128);
      }
      out.push(n);
      return out;
    };
    const field = (f: number, n: number) => [...varint(f * 8), ...varint(n)];
    const dump = Buffer.from([...field(1, 1500), ...field(2, 220000), ...field(3, 90000), ...field(4, 80000), ...field(7, 44000)]);
    const entry = Buffer.from([0x0a, ...varint(dump.length), ...dump]);
    const head = Buffer.alloc(12);
    head.writeUInt32LE(0x55105940, 0);
    head.writeUInt32LE(0x57093306, 4);
    head.writeUInt32LE(entry.length, 8);
    expect(parseStatsDump(Buffer.concat([head, entry]))).toEqual({
      freezing_us: 1500,
      frozen_us: 220000,
      memdump_us: 90000,
      memwrite_us: 80000,
      pages_scanned: null,
      pages_written: 44000,
    });
    expect(parseStatsDump(Buffer.from('not an image'))).toBeNull();
  });
});
