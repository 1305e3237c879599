/**
 * After a restore on the shared tenant network, announce the move: a gratuitous ARP from the
 * container's network namespace (as hypervisors do after a VM moves), so that the fabric's
 * switches learn the MAC's new port and neighbours refresh their caches at once.
 */
import { run } from './exec.js';

/** `ip -o -4 addr show` output -> the interface that holds `ip` ("eth0@if12" -> "eth0"). */
export function interfaceFor(ipAddrOutput: string, ip: string): string | null {
  for (const line of ipAddrOutput.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([0-9.]+)\//.exec(line.trim());
    if (m && m[2] === ip) return m[1].split('@')[0];
  }
  return null;
}

export async function gratuitousArp(pid: number, ip: string): Promise<boolean> {
  const addrs = await run('nsenter', ['-t', String(pid), '-n', 'ip', '-o', '-4', 'addr', 'show'], { timeoutMs: 5000 });
  const dev = interfaceFor(addrs.stdout, ip);
  if (!dev) return false;
  // Thomas Habets' arping: -U unsolicited, source = target = our address; two, 50 ms apart.
  const habets = await run('nsenter', ['-t', String(pid), '-n', 'arping', '-q', '-U', '-c', '2', '-W', '0.05', '-i', dev, '-S', ip, ip], {
    timeoutMs: 3000,
  }).catch(() => null);
  if (habets && (habets.code === 0 || habets.code === 1)) return true; // 1 = no replies, expected for a GARP
  const bb = await run('nsenter', ['-t', String(pid), '-n', 'busybox', 'arping', '-q', '-U', '-c', '1', '-I', dev, ip], { timeoutMs: 3000 }).catch(() => null);
  return bb !== null && bb.code === 0;
}
