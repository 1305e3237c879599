/** The event follower's logic with a scripted event source (pure logic), and Docker's event messages read as ContainerEvents. */
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { sleep } from '../../../src/common/sleep.js';
import { fromDockerEvent, JsonLines } from '../../../src/compute/docker/events.js';
import { ContainerEventFollower, type ContainerEvent, type ContainerEventSource, type EventSubscription } from '../../../src/compute/events.js';

const log = pino({ level: 'silent' });
const ID = 'f'.repeat(64);

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe("Docker's events", () => {
  const base = {
    Type: 'container',
    Actor: { ID, Attributes: { name: 'web', image: 'ferry/counter' } },
    time: 1796000000,
    timeNano: 1796000000123 * 1e6 + 456789,
  };

  it.each([
    ['create', 'created'],
    ['start', 'running'],
    ['die', 'exited'],
    ['destroy', 'removed'],
    ['pause', 'paused'],
    ['unpause', 'running'],
    ['rename', null],
    ['checkpoint', null],
  ])('%s -> status %s', (action, status) => {
    expect(fromDockerEvent({ ...base, Action: action })).toEqual({
      kind: action,
      id: ID,
      name: 'web',
      image: 'ferry/counter',
      status,
      project_id: null,
      at: new Date(1796000000123).toISOString(),
    });
  });

  it("carries the container's project label (Docker lists labels among the attributes)", () => {
    const labelled = { ...base, Action: 'create', Actor: { ID, Attributes: { name: 'web', image: 'x', 'org.openstack.project_id': 'p-demo', other: 'y' } } };
    expect(fromDockerEvent(labelled)?.project_id).toBe('p-demo');
  });

  it('ignores what it does not follow', () => {
    for (const action of ['exec_start: sh', 'health_status: healthy', 'attach', 'kill', 'stop', 'top', '']) {
      expect(fromDockerEvent({ ...base, Action: action })).toBeNull();
    }
    expect(fromDockerEvent({ ...base, Type: 'network', Action: 'create' })).toBeNull();
    expect(fromDockerEvent({ Type: 'container', Action: 'start' })).toBeNull();
  });

  it('a rename carries the new name; old API fields (status, id, time) still work', () => {
    expect(fromDockerEvent({ ...base, Action: 'rename', Actor: { ID, Attributes: { name: '/new', oldName: '/web' } } })?.name).toBe('new');
    expect(fromDockerEvent({ status: 'start', id: ID, time: 1796000000 })).toMatchObject({ kind: 'start', id: ID, at: new Date(1796000000000).toISOString() });
  });

  it('JSON lines cut anywhere are put back together; garbage lines are skipped', () => {
    const out: unknown[] = [];
    const j = new JsonLines();
    const text = '{"a":1}\n{"b":\n';
    j.push(text.slice(0, 5), (o) => out.push(o));
    j.push(text.slice(5), (o) => out.push(o));
    j.push('2}\nnot json\n\n{"c":3}', (o) => out.push(o));
    expect(out).toEqual([{ a: 1 }]);
    j.push('\n', (o) => out.push(o));
    expect(out).toEqual([{ a: 1 }, { c: 3 }]);
  });
});

/** An event source the test drives: each subscription can be fed events and broken. */
class ScriptedSource implements ContainerEventSource {
  readonly engine = 'scripted';
  subscriptions = 0;
  failNext = 0;
  private current: { emit: (e: ContainerEvent) => void; breakWith: (e: Error) => void } | null = null;

  async subscribe(onEvent: (e: ContainerEvent) => void): Promise<EventSubscription> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('connect ENOENT docker.sock');
    }
    this.subscriptions++;
    let resolve!: (e: Error | null) => void;
    const closed = new Promise<Error | null>((r) => (resolve = r));
    this.current = { emit: onEvent, breakWith: (e) => resolve(e) };
    return { closed, close: () => resolve(null) };
  }

  emit(e: ContainerEvent) {
    this.current?.emit(e);
  }
  breakStream() {
    this.current?.breakWith(new Error('the engine closed its event stream'));
    this.current = null;
  }
}

const event = (n: number): ContainerEvent => ({
  kind: 'start',
  id: ID,
  name: `c${n}`,
  image: null,
  status: 'running',
  at: new Date(1796000000000 + n).toISOString(),
});

describe('ContainerEventFollower', () => {
  it('sends a full inventory on connect and after every reconnect; events in order between', async () => {
    const source = new ScriptedSource();
    const sent: string[] = [];
    const f = new ContainerEventFollower(
      source,
      {
        event: async (e) => {
          await sleep(e.name === 'c1' ? 20 : 0); // a slow send must not reorder what follows
          sent.push(`event ${e.name}`);
        },
        inventory: async (why) => void sent.push(`inventory (${why})`),
      },
      log,
      { retryInitialMs: 5, retryMaxMs: 20 },
    );
    f.start();
    await until(() => sent.length === 1);
    expect(sent).toEqual(['inventory (event stream connected)']);
    source.emit(event(1));
    source.emit(event(2));
    await until(() => sent.length === 3);
    // The engine restarts: the first tries fail, then it is back.
    source.failNext = 3;
    source.breakStream();
    await until(() => sent.length === 4);
    expect(f.connections).toBe(2);
    source.emit(event(3));
    await until(() => sent.length === 5);
    await f.stop();
    expect(sent).toEqual(['inventory (event stream connected)', 'event c1', 'event c2', 'inventory (event stream reconnected)', 'event c3']);
    expect(f.connected).toBe(false);
  });

  it('inventory requests during one being sent are folded into one more, sent after it', async () => {
    const source = new ScriptedSource();
    const reasons: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const f = new ContainerEventFollower(
      source,
      {
        event: async () => undefined,
        inventory: async (why) => {
          reasons.push(why);
          if (reasons.length === 1) await gate;
        },
      },
      log,
    );
    const first = f.requestInventory('bus reconnected');
    void f.requestInventory('a');
    void f.requestInventory('b');
    release();
    await first;
    expect(reasons).toEqual(['bus reconnected', 'b']);
  });

  it('a failing sink never stops the follower; a backlog beyond the limit turns into an inventory', async () => {
    const source = new ScriptedSource();
    let inventories = 0;
    let events = 0;
    let hold!: () => void;
    const held = new Promise<void>((r) => (hold = r));
    const f = new ContainerEventFollower(
      source,
      {
        event: async () => {
          events++;
          await held;
          throw new Error('bus down');
        },
        inventory: async () => void inventories++,
      },
      log,
      { maxPending: 2 },
    );
    f.start();
    await until(() => inventories === 1);
    for (let i = 0; i < 5; i++) source.emit(event(i));
    await until(() => inventories === 2);
    hold();
    await until(() => events === 2);
    await f.stop();
    expect(events).toBe(2);
  });
});
