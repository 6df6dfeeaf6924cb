// The seq of a heartbeat read straight from its fixed offset, without decoding the rest
// (docs/protocol.md §Heartbeat: version u8 at 0, type u8 at 1, seq u64 big-endian at 38). Used for
// the rejection events of checks that run before edge verification (HB_OVERSIZED, HB_RATE_LIMITED)
// and of payloads too broken for the codec (HB_TRUNCATED, HB_BAD_LENGTH, …), so the device can tell
// which of its heartbeats an event is about. O(1): no copy, no allocation beyond the bigint, no
// signature check, which matters because these are exactly the paths a flooding client exercises.
//
// The seq is unauthenticated here (nothing was verified); it only labels an event sent back to the
// authenticated session that sent the payload, never anything stored or forwarded.
import { MessageType, PROTOCOL_VERSION } from '../shared/protocol/constants.ts';

const SEQ_OFFSET = 38;
const SEQ_END = SEQ_OFFSET + 8;

/**
 * The seq at offset 38 when the payload starts like a v1 heartbeat (version 0x01, type 0x01) and is
 * long enough to hold it; undefined otherwise (an event then says `"seq": null`). The value is
 * reported as read, even when it is outside 1 … 2^63 − 1 (that is HB_BAD_SEQ's business).
 */
export function peekSeq(payload: Uint8Array): bigint | undefined {
  if (payload.length < SEQ_END || payload[0] !== PROTOCOL_VERSION || payload[1] !== MessageType.HEARTBEAT) return undefined;
  let hi = 0;
  let lo = 0;
  for (let i = SEQ_OFFSET; i < SEQ_OFFSET + 4; i++) hi = hi * 256 + payload[i]!;
  for (let i = SEQ_OFFSET + 4; i < SEQ_END; i++) lo = lo * 256 + payload[i]!;
  return (BigInt(hi) << 32n) | BigInt(lo);
}
