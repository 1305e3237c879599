/**
 * The rest of the container's state: a named volume's data (owners, modes, a symlink, a hard
 * link) moves and is removed from the source; the image is streamed from compute1 when
 * compute2 lacks it (by ID, with its tag); the configuration is recreated.
 */
import { expect, jest, test } from '@jest/globals';
import { dk, exists, isRunning, logTimings, uniqueName, useAgents, migrate } from './helpers.js';

jest.setTimeout(300_000);

const name = uniqueName('state');
const vol = `${name}-data`;

const agents = useAgents([name], [vol]);

test('named volume, image transfer and configuration move', async () => {
  // compute2 must lack the image: remove it there (no container of this test uses it there).
  const users = await dk('compute2', ['ps', '-aq', '--filter', 'ancestor=ferry/counter:latest'], { allowFail: true });
  for (const id of users.split('\n').filter(Boolean)) await dk('compute2', ['rm', '-f', id]);
  await dk('compute2', ['rmi', '-f', 'ferry/counter:latest'], { allowFail: true });
  expect(await dk('compute2', ['image', 'inspect', 'ferry/counter:latest'], { allowFail: true })).toBe('');
  const imageId = await dk('compute1', ['image', 'inspect', '-f', '{{.Id}}', 'ferry/counter:latest']);

  await dk('compute1', ['volume', 'create', '--label', 'owner=test', vol]);
  await dk('compute1', [
    'run',
    '-d',
    '--name',
    name,
    '-v',
    `${vol}:/vol`,
    '-e',
    'COUNTER_INTERVAL=0.5',
    '-e',
    'EXTRA=yes please',
    '--label',
    'ferry.test=state',
    '--workdir',
    '/tmp',
    '--memory',
    '64m',
    '--restart',
    'on-failure:3',
    '-p',
    '18080:8080',
    'ferry/counter',
  ]);
  await dk('compute1', [
    'exec',
    name,
    'sh',
    '-c',
    'echo volume-data > /vol/a.txt && mkdir -p /vol/sub && echo deep > /vol/sub/b.txt && chmod 640 /vol/sub/b.txt && ' +
      'ln -s sub/b.txt /vol/link && ln /vol/a.txt /vol/hard && touch /vol/sub/c && chmod 1777 /vol/sub',
  ]);

  const r = await migrate(agents.a1, agents.a2, name);
  logTimings('state (volume + image) compute1->compute2', r);
  expect(r.error).toBeNull();
  expect(r.image_bytes).toBeGreaterThan(1_000_000);
  expect(r.volume_bytes).toBeGreaterThan(0);
  expect(r.connections_preserved).toBe(false); // default bridge: published ports recreated instead
  expect(await isRunning('compute2', name)).toBe(true);
  expect(await exists('compute1', name)).toBe(false);

  // The image arrived by ID, with its tag.
  expect(await dk('compute2', ['image', 'inspect', '-f', '{{.Id}}', 'ferry/counter:latest'])).toBe(imageId);
  // The volume's data, with modes, links and labels; gone from the source.
  expect(await dk('compute2', ['exec', name, 'cat', '/vol/a.txt', '/vol/sub/b.txt', '/vol/link', '/vol/hard'])).toBe('volume-data\ndeep\ndeep\nvolume-data');
  expect(await dk('compute2', ['exec', name, 'ls', '-ld', '/vol/sub/b.txt'])).toMatch(/^-rw-r----- /);
  expect(await dk('compute2', ['exec', name, 'ls', '-ld', '/vol/sub'])).toMatch(/^drwxrwxrwt /);
  expect(await dk('compute2', ['exec', name, 'sh', '-c', 'ls -i /vol/a.txt /vol/hard | cut -d" " -f1 | uniq | wc -l'])).toBe('1');
  expect(await dk('compute2', ['volume', 'inspect', '-f', '{{.Labels.owner}}', vol])).toBe('test');
  expect(await dk('compute1', ['volume', 'inspect', vol], { allowFail: true })).toBe('');
  // The configuration.
  const ins = JSON.parse(await dk('compute2', ['inspect', name]))[0];
  expect(ins.Config.Env).toEqual(expect.arrayContaining(['COUNTER_INTERVAL=0.5', 'EXTRA=yes please']));
  expect(ins.Config.Labels['ferry.test']).toBe('state');
  expect(ins.Config.WorkingDir).toBe('/tmp');
  expect(ins.Config.Cmd).toEqual(['/bin/counter']);
  expect(ins.HostConfig.Memory).toBe(64 * 1024 * 1024);
  expect(ins.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 3 });
  expect(ins.HostConfig.PortBindings['8080/tcp'][0].HostPort).toBe('18080');
  expect(ins.NetworkSettings.Ports['8080/tcp'][0].HostPort).toBe('18080');
  // The published port serves the migrated process (inside compute2's namespace).
  const count = await dk('compute2', ['exec', name, 'wget', '-qO-', 'http://127.0.0.1:8080/']);
  expect(Number(count)).toBeGreaterThan(0);
});
