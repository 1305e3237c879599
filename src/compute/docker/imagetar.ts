/**
 * What the target lets into `docker load`: the source's `docker save` archive with its tags
 * taken out, and no more than [compute] max_image_bytes of it.
 *
 * `docker load` moves a tag that the archive names to the loaded image, even when the target
 * already has that tag on another image (the old one silently loses it). So the target loads
 * images by ID only: `manifest.json` keeps its layers and config but no RepoTags, the legacy
 * `repositories` file is dropped, and an OCI `index.json` loses its image-name annotations.
 * The container is then created by tag only when the tag is free or already names this ID
 * (driver.createShell), otherwise by ID.
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { TransferQuotaExceeded } from '../../common/errors.js';

const NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'];

function untagManifest(text: string): string {
  const m = JSON.parse(text) as { RepoTags?: unknown }[];
  if (!Array.isArray(m)) throw new Error('manifest.json is not a list');
  for (const entry of m) entry.RepoTags = null;
  return JSON.stringify(m);
}

function untagIndex(text: string): string {
  const idx = JSON.parse(text) as { manifests?: { annotations?: Record<string, string> }[] };
  for (const m of idx.manifests ?? []) {
    for (const a of NAME_ANNOTATIONS) delete m.annotations?.[a];
  }
  return JSON.stringify(idx);
}

/** The default of [compute] max_image_manifest_bytes: a manifest of a thousand layers is ~100 KiB. */
export const DEFAULT_MAX_MANIFEST_BYTES = 1024 * 1024;

function manifestTooLarge(name: string, limit: number, host: string): Error {
  return new TransferQuotaExceeded(`the image's ${name} is larger than ${limit} bytes, the limit on ${host} ([compute] max_image_manifest_bytes)`, {
    limit,
    entry: name,
  });
}

/** A manifest is parsed whole, so it is read whole: no more than `limit` bytes of it (its header's size is checked first). */
async function readBounded(s: Readable, name: string, declared: number | undefined, limit: number, host: string): Promise<string> {
  if (declared !== undefined && declared > limit) throw manifestTooLarge(name, limit, host);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    n += (c as Buffer).length;
    if (n > limit) throw manifestTooLarge(name, limit, host);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The image archive `input` without tags; fails with TransferQuotaExceeded past `maxBytes`
 * (counted on the incoming archive) or when manifest.json or index.json is larger than
 * `maxManifestBytes`. `host` names this host in those messages.
 */
export function untaggedImage(input: Readable, maxBytes: number, host: string, maxManifestBytes = DEFAULT_MAX_MANIFEST_BYTES): Readable {
  let seen = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      seen += chunk.length;
      if (seen > maxBytes)
        cb(new TransferQuotaExceeded(`the image is larger than ${maxBytes} bytes, the limit on ${host} ([compute] max_image_bytes)`, { limit: maxBytes }));
      else cb(null, chunk);
    },
  });
  const extract = tar.extract();
  const pack = tar.pack();
  const fail = (e: Error) => {
    pack.destroy(e);
    extract.destroy(e);
  };
  input.on('error', fail);
  cap.on('error', fail);
  (async () => {
    for await (const entry of extract) {
      const name = entry.header.name.replace(/^\.\//, '');
      if (name === 'repositories') {
        entry.resume();
        continue;
      }
      if (name === 'manifest.json' || name === 'index.json') {
        const text = await readBounded(entry as unknown as Readable, name, entry.header.size, maxManifestBytes, host);
        const body = name === 'manifest.json' ? untagManifest(text) : untagIndex(text);
        pack.entry({ ...entry.header, size: Buffer.byteLength(body) }, body);
        continue;
      }
      const sink = pack.entry({ ...entry.header });
      await pipeline(entry, sink);
    }
    pack.finalize();
  })().catch(fail);
  input.pipe(cap).pipe(extract);
  return pack as unknown as Readable;
}
