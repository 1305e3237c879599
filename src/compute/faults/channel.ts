/**
 * The data channel's faults, as wrappers around its two ends (transfer.ts takes them as
 * ChannelWrappers): the source's wire altered between the digest and the socket (truncated,
 * one byte flipped) or held to a slower pace, the target cutting the connection mid-part.
 * Each reads the faults when a send or a part starts, so a test can change them between runs.
 */
import { Transform } from 'node:stream';
import type { WireAlteration } from '../datachannel/sender.js';
import type { ChannelWrappers } from '../transfer.js';
import type { Faults } from './settings.js';

/** Where truncateTransfer stops a checkpoint part. */
const TRUNCATE_AFTER_BYTES = 32 * 1024;
/** The byte corruptTransfer flips. */
const CORRUPT_AT_BYTE = 10_000;

/**
 * The checkpoint part's wire under truncateTransfer / corruptTransfer: it stops after 32 KiB (the
 * request still ends with the digest of the whole part), or one byte is flipped; null when
 * neither applies. Only the checkpoint part is touched.
 */
export function checkpointWire(f: Faults, part: string): WireAlteration | undefined {
  if (part !== 'checkpoint' || !(f.truncateTransfer || f.corruptTransfer)) return undefined;
  let sent = 0;
  return (input) => {
    let chunk = input;
    if (f.truncateTransfer) {
      const room = TRUNCATE_AFTER_BYTES - sent;
      if (room <= 0) return Buffer.alloc(0);
      chunk = chunk.subarray(0, room);
    }
    if (f.corruptTransfer && sent <= CORRUPT_AT_BYTE && sent + chunk.length > CORRUPT_AT_BYTE) {
      chunk = Buffer.from(chunk);
      chunk[CORRUPT_AT_BYTE - sent] ^= 0xff;
    }
    sent += chunk.length;
    return chunk;
  };
}

/** The channel's ends with the faults `current()` names at each send and each received part. */
export function channelFaults(current: () => Faults): ChannelWrappers {
  return {
    sending(client) {
      const f = current();
      return {
        ...client,
        // A test may slow the send down to kill something while it is under way.
        ...(f.throttleTransferBytesPerSec ? { bandwidthBytesPerSec: f.throttleTransferBytesPerSec } : {}),
        alterWire: (part) => checkpointWire(f, part),
      };
    },
    receiving(_part, req, wireBytes) {
      const cut = current().cutTransferAfterBytes;
      if (cut === undefined) return undefined;
      // The target "dies" mid-part: its connection is dropped once this many bytes came.
      return new Transform({
        transform(chunk: Buffer, _e, cb) {
          if (wireBytes() + chunk.length > cut) {
            req.socket.destroy();
            cb(new Error('fault injected: connection cut by the target'));
            return;
          }
          cb(null, chunk);
        },
      });
    },
  };
}
