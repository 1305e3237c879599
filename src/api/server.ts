/**
 * Listening: `startApiServer` serves an app on host:port; `startApiService` is the whole of
 * ferry-api's start (policy loaded, Keystone client made, catalog registered, app served)
 * for src/cmd/api.ts to call with the conductor's RPC client.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Express } from 'express';
import { FerryError } from '../common/errors.js';
import { getLogger, type Logger } from '../common/log.js';
import type { ConductorAPI } from '../conductor/interface.js';
import type { FerryConfig } from '../conf/index.js';
import { registerCatalog, registrationFromConf, type RegistrationResult } from '../identity/catalog.js';
import { KeystoneClient, keystoneOptionsFromConf } from '../identity/keystone.js';
import { Policy } from '../identity/policy.js';
import { generateRequestId } from '../common/context.js';
import { createApp } from './app.js';
import { clientErrorResponse } from './errors.js';

export interface ApiServer {
  server: http.Server;
  host: string;
  port: number;
  /** http://host:port (no path). */
  url: string;
  /** Stop accepting, let requests in flight finish (up to `graceMs`, default 5 s), then close. */
  close(graceMs?: number): Promise<void>;
}

export async function startApiServer(app: Express, opts: { host: string; port: number; logger?: Logger }): Promise<ApiServer> {
  const log = opts.logger ?? getLogger('api');
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 120_000;
  // A request Node cannot parse (headers too large, not HTTP) still gets the JSON error body.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // As Node's own handler: answer only when no response on this socket has begun (its in-flight one is `_httpMessage`).
    const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = generateRequestId();
    const out = clientErrorResponse(err.code, requestId);
    log.info({ request_id: requestId, status: out.status, code: err.code }, 'unparsable request refused');
    socket.end(out.raw);
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.info({ url }, 'ferry-api listening');
  let closing: Promise<void> | undefined;
  return {
    server,
    host: addr.address,
    port: addr.port,
    url,
    close(graceMs = 5000) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * SIGHUP's policy step: the policy file read again and the rules built with the [oslo_policy]
 * options now in force (the mutable options were applied first), swapped into the Policy the
 * app holds. A file that does not load throws and leaves the rules in force.
 */
export function reloadPolicy(policy: Policy, conf: Pick<FerryConfig, 'api' | 'oslo_policy'>, log: Logger): void {
  policy.replaceRules(Policy.load(conf.api.policy_file, { ...conf.oslo_policy, logger: log }));
  log.info({ policy_file: conf.api.policy_file, ...conf.oslo_policy }, 'SIGHUP: policy reloaded');
}

export interface ApiServiceOptions {
  conf: FerryConfig;
  conductor: ConductorAPI;
  logger?: Logger;
  /** Given ones are used as they are (tests); otherwise made from conf. */
  identity?: KeystoneClient;
  policy?: Policy;
  /** Seconds between registration attempts while Keystone is not reachable. Default 30. */
  registrationRetrySeconds?: number;
}

export interface ApiService extends ApiServer {
  identity: KeystoneClient;
  policy: Policy;
  /** Resolves when the catalog registration is done (immediately null when disabled). */
  registration: Promise<RegistrationResult | null>;
}

/**
 * ferry-api's start. A bad policy file or config fails here (ConfigError); Keystone being
 * down at start does not: the catalog registration is retried in the background.
 */
export async function startApiService(opts: ApiServiceOptions): Promise<ApiService> {
  const { conf } = opts;
  const log = opts.logger ?? getLogger('api');
  const policy = opts.policy ?? Policy.load(conf.api.policy_file, { ...conf.oslo_policy, logger: log });
  const identity = opts.identity ?? new KeystoneClient(keystoneOptionsFromConf(conf, { logger: log }));
  const app = createApp({ conf, identity, policy, conductor: opts.conductor, logger: log });
  const server = await startApiServer(app, { host: conf.api.bind_host, port: conf.api.bind_port, logger: log });

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let giveUp: (() => void) | undefined;
  const registration: Promise<RegistrationResult | null> = !conf.api.register_endpoints
    ? Promise.resolve(null)
    : new Promise((resolve, reject) => {
        giveUp = () => resolve(null);
        const attempt = () => {
          if (stopped) return resolve(null);
          registerCatalog(identity, registrationFromConf(conf), log).then(resolve, (e: unknown) => {
            const retriable = e instanceof FerryError && e.kind === 'unavailable';
            if (!retriable || stopped) return reject(e);
            const s = opts.registrationRetrySeconds ?? 30;
            log.error({ err: (e as Error).message, retry_in_s: s }, 'cannot register Ferry in the Keystone catalog yet');
            timer = setTimeout(attempt, s * 1000);
            timer.unref();
          });
        };
        attempt();
      });
  registration.catch((e: unknown) => log.error({ err: e }, 'Keystone catalog registration failed'));

  return {
    ...server,
    identity,
    policy,
    registration,
    close(graceMs?: number) {
      stopped = true;
      if (timer) clearTimeout(timer);
      giveUp?.();
      return server.close(graceMs);
    },
  };
}
