/**
 * The ferry-api express application (it does not listen; see server.ts).
 *
 * Pipeline: request id (x-openstack-request-id on every response; every log line of the
 * request carries it, src/common/log.ts) -> access log -> strip
 * caller-supplied identity headers -> public documents (/, /v1, /healthcheck) -> Keystone
 * auth for everything else under /v1 -> the request's microversion (microversions.ts) -> the v1 resources -> 404 -> the error handler,
 * which alone turns errors into HTTP (src/api/errors.ts).
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { generateRequestId } from '../common/context.js';
import { packageVersion } from '../common/gmr.js';
import { getLogger, runWithRequestIds, type Logger } from '../common/log.js';
import type { ConductorAPI } from '../conductor/interface.js';
import type { FerryConfig } from '../conf/index.js';
import type { Policy } from '../identity/policy.js';
import type { TokenValidator } from '../identity/types.js';
import { authenticate, locals, stripIdentityHeaders } from './auth.js';
import { HttpError, toErrorResponse } from './errors.js';
import { healthcheckHandler } from './healthcheck.js';
import { microversionMiddleware } from './microversions.js';
import { methodNotAllowed, v1Router } from './routes.js';
import { baseUrl, versionDocument, versionsDocument } from './versions.js';

export interface ApiDeps {
  conf: FerryConfig;
  identity: TokenValidator;
  policy: Policy;
  conductor: ConductorAPI;
  logger?: Logger;
  /** Extra liveness check for /healthcheck (false or a rejection -> 503; src/api/healthcheck.ts). Default: always up. */
  healthcheck?: () => boolean | Promise<boolean>;
}

export const REQUEST_ID_HEADER = 'x-openstack-request-id';
const REQUEST_ID_RE = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function createApp(deps: ApiDeps): Express {
  const { conf, identity, policy, conductor } = deps;
  const log = deps.logger ?? getLogger('api');
  const wwwAuthenticate = `Keystone uri="${conf.keystone_authtoken.www_authenticate_uri}"`;

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Every response carries its request id; a valid inbound one becomes the global request id
  // (oslo.middleware's request_id).
  app.use((req: Request, res: Response, next: NextFunction) => {
    const requestId = generateRequestId();
    const inbound = req.get(REQUEST_ID_HEADER);
    const l = locals(res);
    l.requestId = requestId;
    l.globalRequestId = inbound && REQUEST_ID_RE.test(inbound) ? inbound : null;
    res.setHeader(REQUEST_ID_HEADER, requestId);
    // Everything this request runs (routes, the conductor client, error handler) logs its ids.
    runWithRequestIds({ request_id: requestId, global_request_id: l.globalRequestId }, next);
  });

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const l = locals(res);
      log.info(
        {
          request_id: l.requestId,
          global_request_id: l.globalRequestId,
          user_id: l.context?.user_id ?? undefined,
          project_id: l.context?.project_id ?? undefined,
          method: req.method,
          path: req.originalUrl,
          status: res.statusCode,
          ms: Number((process.hrtime.bigint() - started) / 1000n) / 1000,
        },
        'request',
      );
    });
    next();
  });

  app.use(stripIdentityHeaders);

  // Public documents: no token needed, as with every OpenStack API's version discovery.
  app.get('/', (req, res) => {
    res.json(versionsDocument(conf, req));
  });
  app.all('/', methodNotAllowed(['GET']));
  app.get('/v1', (req, res) => {
    res.json(versionDocument(conf, req));
  });
  app.all('/v1', methodNotAllowed(['GET']));
  const adminProject = { name: conf.api.admin_project_name, domain: conf.api.admin_project_domain_name };
  app.get('/healthcheck', healthcheckHandler({ conf, identity, policy, adminProject, check: deps.healthcheck, version: packageVersion() }));
  app.all('/healthcheck', methodNotAllowed(['GET']));

  app.use(
    '/v1',
    authenticate(identity, policy, adminProject),
    microversionMiddleware,
    v1Router({ conductor, policy, maxBodyBytes: conf.api.max_body_bytes, maxLimit: conf.api.max_limit, baseUrl: (req) => baseUrl(conf, req) }),
  );

  app.use((req: Request) => {
    throw new HttpError(404, `The resource could not be found: ${req.method} ${req.path}`);
  });

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const out = toErrorResponse(err);
    const l = locals(res);
    if (out.internal) {
      log.error({ err, request_id: l.requestId, method: req.method, path: req.originalUrl }, 'request failed');
    } else if (out.status === 503 || out.status === 504) {
      log.warn({ request_id: l.requestId, err: (err as Error).message }, 'dependency unavailable');
    }
    if (!res.getHeader(REQUEST_ID_HEADER)) res.setHeader(REQUEST_ID_HEADER, l.requestId ?? generateRequestId());
    res.set(out.headers);
    if (out.status === 401) res.set('WWW-Authenticate', wwwAuthenticate);
    res.status(out.status).json(out.body);
  });

  return app;
}
