/**
 * Docker's side of the container event stream: its /events messages (API 1.41) read through
 * dockerode and turned into Ferry's engine-neutral ContainerEvent (src/compute/events.ts).
 * Docker has no restore event: a restore shows as `start`.
 */
import type Docker from 'dockerode';
import { REMOVED_STATUS, type ContainerEvent, type ContainerEventKind, type ContainerEventSource, type EventSubscription } from '../events.js';
import { PROJECT_LABEL } from '../../objects/host.js';

/** Docker's container actions Ferry follows, and the status each leaves (null: unchanged). */
const DOCKER_ACTIONS: Readonly<Record<string, { kind: ContainerEventKind; status: string | null }>> = {
  create: { kind: 'create', status: 'created' },
  start: { kind: 'start', status: 'running' },
  die: { kind: 'die', status: 'exited' },
  destroy: { kind: 'destroy', status: REMOVED_STATUS },
  rename: { kind: 'rename', status: null },
  pause: { kind: 'pause', status: 'paused' },
  unpause: { kind: 'unpause', status: 'running' },
  checkpoint: { kind: 'checkpoint', status: null },
  restore: { kind: 'restore', status: 'running' },
};

/** The `event` filter Docker is asked for (exec_*, health_status, attach ... are not wanted). */
export const DOCKER_EVENT_FILTER = Object.keys(DOCKER_ACTIONS);

/** A message of Docker's /events stream (API 1.41), the fields Ferry reads. */
export interface DockerEventMessage {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/** A Docker event as a ContainerEvent; null for anything that is not a followed container action. */
export function fromDockerEvent(msg: DockerEventMessage): ContainerEvent | null {
  if ((msg.Type ?? 'container') !== 'container') return null;
  const action = msg.Action ?? msg.status ?? '';
  const m = DOCKER_ACTIONS[action];
  const id = msg.Actor?.ID ?? msg.id;
  if (!m || !id) return null;
  const attrs = msg.Actor?.Attributes ?? {};
  const ms = msg.timeNano !== undefined ? Math.floor(msg.timeNano / 1e6) : msg.time !== undefined ? msg.time * 1000 : Date.now();
  return {
    kind: m.kind,
    id,
    name: attrs.name ? attrs.name.replace(/^\//, '') : null,
    image: attrs.image ?? null,
    status: m.status,
    // Docker puts a container's labels among its events' attributes.
    project_id: attrs[PROJECT_LABEL] ?? null,
    at: new Date(ms).toISOString(),
  };
}

/** Splits a stream of concatenated JSON documents (one per line, chunks cut anywhere) into objects. */
export class JsonLines {
  private buf = '';

  push(chunk: string, out: (obj: unknown) => void): void {
    this.buf += chunk;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      try {
        out(JSON.parse(line));
      } catch {
        // Not JSON: skip the line, the stream goes on.
      }
    }
  }
}

/** Docker's /events through dockerode, container events only. */
export class DockerEventSource implements ContainerEventSource {
  readonly engine = 'docker';

  constructor(private readonly docker: Docker) {}

  async subscribe(onEvent: (e: ContainerEvent) => void): Promise<EventSubscription> {
    const stream = (await this.docker.getEvents({
      filters: { type: ['container'], event: DOCKER_EVENT_FILTER },
    })) as NodeJS.ReadableStream & { destroy(err?: Error): void };
    const lines = new JsonLines();
    let closedOnPurpose = false;
    const closed = new Promise<Error | null>((resolve) => {
      let done = false;
      const finish = (err: Error | null) => {
        if (done) return;
        done = true;
        resolve(closedOnPurpose ? null : (err ?? new Error('the engine closed its event stream')));
      };
      stream.on('data', (chunk: Buffer | string) =>
        lines.push(chunk.toString(), (obj) => {
          const e = fromDockerEvent(obj as DockerEventMessage);
          if (e) onEvent(e);
        }),
      );
      stream.on('error', (err: Error) => finish(err));
      stream.on('end', () => finish(null));
      stream.on('close', () => finish(null));
    });
    return {
      closed,
      close: () => {
        closedOnPurpose = true;
        stream.destroy();
      },
    };
  }
}

// ---------------------------------------------------------------- the follower
