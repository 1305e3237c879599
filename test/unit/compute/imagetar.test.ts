/** The target loads images by ID only (no tag of the archive moves one it has) and caps their size. */
import type { Readable } from 'node:stream';
import { expect, test } from '@jest/globals';
import tar from 'tar-stream';
import { FerryError, TransferQuotaExceeded } from '../../../src/common/errors.js';
import { untaggedImage } from '../../../src/compute/docker/imagetar.js';

function saved(): Readable {
  const pack = tar.pack();
  pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: 'abc.json', RepoTags: ['ferry/counter:latest'], Layers: ['l1/layer.tar'] }]));
  pack.entry({ name: 'repositories' }, JSON.stringify({ 'ferry/counter': { latest: 'abc' } }));
  pack.entry(
    { name: 'index.json' },
    JSON.stringify({ manifests: [{ digest: 'sha256:1', annotations: { 'io.containerd.image.name': 'ferry/counter:latest', keep: 'y' } }] }),
  );
  pack.entry({ name: 'abc.json' }, '{"config":{}}');
  pack.entry({ name: 'l1/layer.tar' }, Buffer.alloc(200_000, 3));
  pack.finalize();
  return pack as unknown as Readable;
}

async function entries(s: Readable): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  s.on('error', (e) => ex.destroy(e));
  s.pipe(ex);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    out.set(e.header.name, Buffer.concat(chunks));
  }
  return out;
}

test('tags are taken out of manifest.json, repositories and index.json; everything else passes unchanged', async () => {
  const got = await entries(untaggedImage(saved(), 10_000_000, 'compute2'));
  expect([...got.keys()].sort()).toEqual(['abc.json', 'index.json', 'l1/layer.tar', 'manifest.json']);
  expect(JSON.parse(got.get('manifest.json')!.toString())).toEqual([{ Config: 'abc.json', RepoTags: null, Layers: ['l1/layer.tar'] }]);
  expect(JSON.parse(got.get('index.json')!.toString()).manifests[0].annotations).toEqual({ keep: 'y' });
  expect(got.get('l1/layer.tar')!.equals(Buffer.alloc(200_000, 3))).toBe(true);
});

test('an image over max_image_bytes is refused', async () => {
  await expect(entries(untaggedImage(saved(), 50_000, 'compute2'))).rejects.toThrow(
    /larger than 50000 bytes, the limit on compute2 \(\[compute\] max_image_bytes\)/,
  );
});

test('a manifest.json or index.json over max_image_manifest_bytes is refused (it is read whole), naming the limit; one under it passes', async () => {
  const big = (name: string): Readable => {
    const pack = tar.pack();
    const layers = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(64, '0')}/layer.tar`);
    pack.entry(
      { name },
      name === 'manifest.json'
        ? JSON.stringify([{ Config: 'abc.json', RepoTags: ['x:1'], Layers: layers }])
        : JSON.stringify({ manifests: layers.map((l) => ({ digest: l })) }),
    );
    pack.entry({ name: 'abc.json' }, '{}');
    pack.finalize();
    return pack as unknown as Readable;
  };
  for (const name of ['manifest.json', 'index.json']) {
    const err = await entries(untaggedImage(big(name), 10_000_000, 'compute2', 100_000)).then(
      () => null,
      (e: unknown) => e as FerryError,
    );
    expect(err).toBeInstanceOf(TransferQuotaExceeded);
    expect(err?.message).toBe(`the image's ${name} is larger than 100000 bytes, the limit on compute2 ([compute] max_image_manifest_bytes)`);
    expect(err?.details.limit).toBe(100_000);
  }
  const ok = await entries(untaggedImage(big('manifest.json'), 10_000_000, 'compute2', 1_000_000));
  expect(JSON.parse(ok.get('manifest.json')!.toString())[0].RepoTags).toBeNull();
});
