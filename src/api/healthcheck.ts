/**
 * GET /healthcheck as oslo.middleware's healthcheck answers it: plain `OK` (200) for load
 * balancers; 503 `DISABLED BY FILE` while `[healthcheck] disable_by_file_path` exists (take a
 * node out before maintenance); and, for an admin token (or anyone with `?detail` when
 * `[healthcheck] detailed` is on), a JSON document with each check's reason and the versions.
 * A token that does not validate, or Keystone being down, only means no detail: the check
 * itself never depends on Keystone.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Request, Response } from 'express';
import { POLICY } from '../identity/policies.js';
import type { Policy } from '../identity/policy.js';
import type { TokenValidator } from '../identity/types.js';
import type { FerryConfig } from '../conf/index.js';
import { contextFromToken, locals, type AdminProject } from './auth.js';
import { HttpError } from './errors.js';

export const DISABLED_BY_FILE = 'DISABLED BY FILE';

export interface HealthcheckDeps {
  conf: Pick<FerryConfig, 'healthcheck'>;
  identity: TokenValidator;
  policy: Policy;
  adminProject: AdminProject;
  /** The service's own liveness check (false or a rejection: 503). */
  check?: () => boolean | Promise<boolean>;
  version: string;
}

interface Reason {
  class: string;
  reason: string;
  details: string;
}

async function isAdminCaller(req: Request, res: Response, deps: HealthcheckDeps): Promise<boolean> {
  const token = req.get('x-auth-token')?.trim();
  if (!token) return false;
  try {
    const info = await deps.identity.validateToken(token);
    if (!info) return false;
    const l = locals(res);
    const ctx = contextFromToken(info, token, { requestId: l.requestId, globalRequestId: l.globalRequestId }, deps.policy, deps.adminProject);
    return deps.policy.check(POLICY.contextIsAdmin, ctx);
  } catch {
    return false;
  }
}

export function healthcheckHandler(deps: HealthcheckDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    // Read at each request: SIGHUP may change the path ([healthcheck] options are mutable).
    const path = deps.conf.healthcheck.disable_by_file_path;
    const disabled = path !== '' && fs.existsSync(path);
    let alive = true;
    let aliveDetail = 'OK';
    if (!disabled && deps.check) {
      try {
        alive = await deps.check();
      } catch (e) {
        alive = false;
        aliveDetail = (e as Error).message;
      }
      if (!alive && aliveDetail === 'OK') aliveDetail = 'the service check failed';
    }
    const wantsDetail = req.query.detail !== undefined && deps.conf.healthcheck.detailed;
    const detail = wantsDetail || (await isAdminCaller(req, res, deps));
    const status = disabled || !alive ? 503 : 200;
    if (detail) {
      const reasons: Reason[] = [];
      if (path !== '') reasons.push({ class: 'DisableByFileHealthcheck', reason: disabled ? DISABLED_BY_FILE : 'OK', details: path });
      reasons.push({ class: 'ServiceHealthcheck', reason: disabled ? 'not checked' : alive ? 'OK' : 'FAILED', details: aliveDetail });
      res.status(status).json({
        detailed: true,
        available: status === 200,
        reasons,
        now: new Date().toISOString(),
        service: 'ferry-api',
        version: deps.version,
        node_version: process.version,
        platform: `${process.platform} ${os.release()} ${process.arch}`,
        pid: process.pid,
        uptime_s: Math.round(process.uptime()),
      });
      return;
    }
    if (disabled) {
      res.status(503).type('text/plain').send(DISABLED_BY_FILE);
      return;
    }
    if (!alive) throw new HttpError(503, 'ferry-api is not healthy.');
    res.type('text/plain').send('OK');
  };
}
