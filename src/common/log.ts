import { pino, type Logger } from 'pino';

/** One logger per process, JSON lines on stderr; `FERRY_LOG_LEVEL` overrides the level. */
const root: Logger = pino(
  { level: process.env.FERRY_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination(2),
);

export function getLogger(component: string): Logger {
  return root.child({ component });
}

export type { Logger };
