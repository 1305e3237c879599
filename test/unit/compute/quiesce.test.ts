/** Reading what waits in a namespace's TCP tables: connections a server has not accepted yet. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { pendingConnections, pendingIn } from '../../../src/compute/docker/quiesce.js';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

describe('pending connections', () => {
  it("counts a listener's accept queue (rx_queue of state 0A) and half-open handshakes (state 03)", () => {
    const tcp = [
      HEADER,
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 320 1 0 100 0 0 10 0',
      '   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 321 1 0 100 0 0 10 0',
      '   2: 0100007F:1F90 0100007F:C350 03 00000000:00000000 02:00000064 00000000     0        0 0 0 0',
      '   3: 0100007F:1F90 0100007F:C351 01 00000000:00000010 00:00000000 00000000     0        0 322 1 0 20 4 30 10 -1',
    ].join('\n');
    expect(pendingIn([tcp, ''])).toEqual({ queued: 3, halfOpen: 1 });
  });

  it("reads a real listener's accept queue from /proc: one per connection it has not accepted", async () => {
    // A listener that never accepts (python's socket.listen without accept): the kernel completes each handshake and queues it.
    const child = spawn(
      'python3',
      ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(8)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const clients: net.Socket[] = [];
    try {
      const port = Number(await new Promise<string>((r) => child.stdout.once('data', (d: Buffer) => r(d.toString()))));
      const listener = `:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A `;
      const queued = () => {
        const table = fs.readFileSync(`/proc/${child.pid}/net/tcp`, 'utf8').split('\n');
        return pendingIn([[table[0], ...table.filter((l) => l.includes(listener))].join('\n')]).queued;
      };
      expect(queued()).toBe(0);
      for (const n of [1, 2]) {
        const c = net.connect(port, '127.0.0.1');
        clients.push(c);
        await new Promise<void>((r) => c.once('connect', () => r()));
        expect(queued()).toBe(n);
      }
      // pendingConnections reads the same tables of a process's namespace.
      expect(pendingConnections(child.pid as number).queued).toBeGreaterThanOrEqual(2);
    } finally {
      for (const c of clients) c.destroy();
      child.kill('SIGKILL');
    }
  });
});
