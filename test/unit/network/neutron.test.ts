/** The Neutron client's requests and its mapping of Neutron's answers to Ferry's errors (a fake fetch). */
import { InvalidInput, NetworkRequestRefused, NetworkResourceNotFound, NetworkUnavailable } from '../../../src/common/errors.js';
import { NeutronClient, bridgeName, tapName } from '../../../src/network/neutron.js';

interface Seen {
  method: string;
  url: string;
  token: string;
  body: unknown;
}

function fake(answers: (Response | Error)[]) {
  const seen: Seen[] = [];
  const f = (async (url: string, init: RequestInit) => {
    const headers = init.headers as Record<string, string>;
    seen.push({ method: init.method ?? 'GET', url, token: headers['x-auth-token'], body: init.body ? JSON.parse(init.body as string) : undefined });
    const a = answers.shift();
    if (!a) throw new Error('no answer left');
    if (a instanceof Error) throw a;
    return a;
  }) as unknown as typeof fetch;
  return { seen, f };
}

const json = (status: number, body: unknown) => new Response(body === null ? null : JSON.stringify(body), { status });
const PORT = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

function client(f: typeof fetch, renewals: boolean[] = []) {
  let n = 0;
  return new NeutronClient({
    endpoint: 'http://127.0.0.1:9696/v2.0/',
    token: (renew) => {
      renewals.push(renew);
      return Promise.resolve(`tok${n++}`);
    },
    fetch: f,
  });
}

describe('NeutronClient', () => {
  it('names devices as os-vif and the linuxbridge agent do', () => {
    expect(tapName(PORT)).toBe('tap0f1e2d3c-4b');
    expect(bridgeName('9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa')).toBe('brq9a8b7c6d-5e');
  });

  it('speaks the binding-extended API: create, activate, delete', async () => {
    const binding = { host: 'compute2', status: 'INACTIVE', vif_type: 'bridge', vnic_type: 'normal', vif_details: {}, profile: {} };
    const { seen, f } = fake([json(201, { binding }), json(200, { binding: { ...binding, status: 'ACTIVE' } }), json(204, null)]);
    const c = client(f);
    expect((await c.createBinding(PORT, 'compute2')).status).toBe('INACTIVE');
    expect((await c.activateBinding(PORT, 'compute2')).status).toBe('ACTIVE');
    await c.deleteBinding(PORT, 'compute2');
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      `POST http://127.0.0.1:9696/v2.0/ports/${PORT}/bindings`,
      `PUT http://127.0.0.1:9696/v2.0/ports/${PORT}/bindings/compute2/activate`,
      `DELETE http://127.0.0.1:9696/v2.0/ports/${PORT}/bindings/compute2`,
    ]);
    expect(seen[0].body).toEqual({ binding: { host: 'compute2' } });
  });

  it('passes filters as a query and returns the listed objects', async () => {
    const { seen, f } = fake([json(200, { agents: [{ id: 'a', host: 'compute1', alive: true }] })]);
    const agents = await client(f).listAgents({ binary: 'neutron-linuxbridge-agent', alive: true });
    expect(agents.map((a) => a.host)).toEqual(['compute1']);
    expect(seen[0].url).toBe('http://127.0.0.1:9696/v2.0/agents?binary=neutron-linuxbridge-agent&alive=true');
  });

  it("turns Neutron's refusals into Ferry's errors, with Neutron's type", async () => {
    const refusal = { NeutronError: { type: 'BadRequest', message: 'Operation only valid on compute ports.', detail: '' } };
    const { f } = fake([json(400, refusal), json(404, { NeutronError: { type: 'PortNotFound', message: 'Port x could not be found.' } }), json(503, null)]);
    const c = client(f);
    const refused = await c.createBinding(PORT, 'compute2').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NetworkRequestRefused);
    expect((refused as Error).message).toMatch(/HTTP 400 BadRequest: Operation only valid on compute ports/);
    expect((refused as InstanceType<typeof NetworkRequestRefused>).details).toMatchObject({ status: 400, neutron_type: 'BadRequest' });
    await expect(c.getPort(PORT)).rejects.toBeInstanceOf(NetworkResourceNotFound);
    await expect(c.getPort(PORT)).rejects.toBeInstanceOf(NetworkUnavailable);
  });

  it('an unreachable Neutron is NetworkUnavailable', async () => {
    const { f } = fake([new TypeError('fetch failed')]);
    await expect(client(f).listNetworks()).rejects.toThrow(NetworkUnavailable);
  });

  it('asks for a new token once after a 401, then gives up', async () => {
    const renewals: boolean[] = [];
    const { seen, f } = fake([json(401, null), json(200, { networks: [] }), json(401, null), json(401, null)]);
    const c = client(f, renewals);
    expect(await c.listNetworks()).toEqual([]);
    expect(seen.map((s) => s.token)).toEqual(['tok0', 'tok1']);
    await expect(c.listNetworks()).rejects.toThrow(NetworkUnavailable);
    expect(renewals).toEqual([false, true, false, true]);
  });

  it('refuses an ID that is not one before sending anything', async () => {
    const { seen, f } = fake([]);
    await expect(client(f).getPort('../networks')).rejects.toBeInstanceOf(InvalidInput);
    expect(() => new NeutronClient({ endpoint: 'ftp://x', token: () => Promise.resolve('t') })).toThrow(InvalidInput);
    expect(seen).toEqual([]);
  });
});
