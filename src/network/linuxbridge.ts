/**
 * Plugging a Neutron port on a host that runs Neutron's linuxbridge agent, as os-vif's
 * linuxbridge plugin does for Nova: a veth pair whose host end is the port's `tap` device,
 * enslaved into the network's `brq` bridge (made here when the agent has not made it yet), and
 * whose other end carries the port's MAC and address. For `compute:*` ports the agent leaves
 * the enslaving to the plugger ("added elsewhere") and applies the security-group and
 * anti-spoofing rules to the tap; the port turns ACTIVE once it has.
 *
 * Every command runs in the host's network namespace (`ip -n`): the dev cloud's hosts are
 * namespaces; a real host passes null and the commands run where Ferry runs.
 */
import { execFile } from 'node:child_process';
import { InvalidInput, NetworkUnavailable } from '../common/errors.js';
import { bridgeName, tapName, type NeutronPort } from './neutron.js';

export interface PlugTarget {
  /** The host's network namespace (null: the current one). */
  hostNetns: string | null;
  /** Where the port's end goes: a network namespace (a container's), and its interface name there. */
  netns: string;
  ifname: string;
  /** The network's MTU (Neutron's `mtu`: 1450 on VXLAN over a 1500 fabric). */
  mtu: number;
}

function ip(args: string[], hostNetns: string | null, allowFail = false): Promise<{ code: number; out: string }> {
  const argv = hostNetns ? ['-n', hostNetns, ...args] : args;
  return new Promise((resolve, reject) => {
    execFile('ip', argv, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      if (err && !allowFail) reject(new NetworkUnavailable(`ip ${argv.join(' ')} failed: ${stderr.trim() || err.message}`));
      else resolve({ code, out: stdout });
    });
  });
}

/** The port's first IPv4 address with the subnet's prefix length. */
function portCidr(port: NeutronPort, prefix: number): string {
  const v4 = port.fixed_ips.find((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f.ip_address));
  if (!v4) throw new InvalidInput(`port ${port.id} has no IPv4 address`);
  return `${v4.ip_address}/${prefix}`;
}

/** The veth pair of the port in the host's namespace, its tap end enslaved into the network's bridge; the name of the other end. */
async function plugVeth(port: NeutronPort, hostNetns: string | null, mtu: number): Promise<{ tap: string; bridge: string; peer: string }> {
  const tap = tapName(port.id);
  const bridge = bridgeName(port.network_id);
  const peer = `t${port.id.slice(0, 11)}`;
  const h = hostNetns;
  if ((await ip(['link', 'show', 'dev', tap], h, true)).code === 0) await ip(['link', 'del', tap], h);
  await ip(['link', 'add', tap, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', peer, 'mtu', String(mtu)], h);
  await ip(['link', 'set', peer, 'address', port.mac_address], h);
  // As os-vif: the bridge is made by whoever comes first, the plugger or the agent.
  if ((await ip(['link', 'show', 'dev', bridge], h, true)).code !== 0) {
    await ip(['link', 'add', bridge, 'type', 'bridge'], h, true);
  }
  await ip(['link', 'set', bridge, 'up'], h);
  await ip(['link', 'set', tap, 'master', bridge, 'up'], h);
  return { tap, bridge, peer };
}

/**
 * Plug the port: tap in the host's namespace, enslaved into the network's bridge; the other end
 * in `target.netns` as `target.ifname` with the port's MAC and address (prefix `prefix`).
 */
export async function plugPort(port: NeutronPort, prefix: number, target: PlugTarget): Promise<{ tap: string; bridge: string }> {
  const { tap, bridge, peer } = await plugVeth(port, target.hostNetns, target.mtu);
  await ip(['link', 'set', peer, 'netns', target.netns], target.hostNetns);
  const inner = ['-n', target.netns];
  await ip([...inner, 'link', 'set', peer, 'name', target.ifname], null);
  await ip([...inner, 'addr', 'add', portCidr(port, prefix), 'dev', target.ifname], null);
  await ip([...inner, 'link', 'set', target.ifname, 'up'], null);
  return { tap, bridge };
}

/** Plug the port for a Docker engine: the veth's other end stays in the host's namespace, where libnetwork takes it into the container. */
export async function plugPortForDocker(port: NeutronPort, hostNetns: string | null, mtu: number): Promise<string> {
  return (await plugVeth(port, hostNetns, mtu)).peer;
}

/** Remove the port's tap (its veth peer goes with it). Nothing to do when it is not there. */
export async function unplugPort(portId: string, hostNetns: string | null): Promise<void> {
  await ip(['link', 'del', tapName(portId)], hostNetns, true);
}
