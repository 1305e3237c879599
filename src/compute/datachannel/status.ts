/**
 * The data channel's mapping from errors to HTTP statuses: the kinds' statuses shared with the
 * REST API (src/common/http-status.ts). Every refusal is a
 * FerryError from the registry in src/common/errors.ts: its kind gives the status, and a few
 * codes that HTTP has a more precise word for (413, 422, 405, 507) override the kind.
 * Anything else is a 500 whose message is still sent: the peer is another Ferry agent and the
 * text ends up in the migration's fault message.
 */
import { FerryError } from '../../common/errors.js';
import { STATUS_BY_KIND } from '../../common/http-status.js';

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  method_not_allowed: 405,
  transfer_quota_exceeded: 413,
  unsafe_archive: 422,
  transfer_corrupted: 422,
  insufficient_storage: 507,
};

export function channelStatus(e: unknown): number {
  if (!(e instanceof FerryError)) return 500;
  return STATUS_BY_CODE[e.code] ?? STATUS_BY_KIND[e.kind] ?? 500;
}

export interface ChannelErrorBody {
  error: { code: number; ferry_code: string; message: string };
}

export function channelErrorBody(e: unknown): ChannelErrorBody {
  const status = channelStatus(e);
  const ferryCode = e instanceof FerryError ? e.code : 'internal';
  return { error: { code: status, ferry_code: ferryCode, message: e instanceof Error ? e.message : String(e) } };
}
