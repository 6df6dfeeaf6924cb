// Wire format v1 constants (docs/protocol.md). Every signed message is DOMAIN || version || type || …
export const DOMAIN = Uint8Array.from([0x50, 0x55, 0x4c, 0x53, 0x45, 0x2d, 0x56, 0x31]); // "PULSE-V1"
export const PROTOCOL_VERSION = 0x01;

/** Type bytes: one per signed message kind, never reused. */
export const MessageType = Object.freeze({
  HEARTBEAT: 0x01,
  CONNECT_TOKEN: 0x02,
  MAKER_CERTIFICATE: 0x03,
  OWNER_BINDING: 0x04,
  OWNER_TRANSFER: 0x05,
  KEY_ROTATION: 0x06,
});

export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;
export const MAX_METRICS = 16;
/** Heartbeat header: version, type, network id, public key, seq, timestamp, n. */
export const HEARTBEAT_HEADER_LENGTH = 55;
export const METRIC_LENGTH = 10;
/** Seq and timestamps fit PostgreSQL BIGINT: the largest accepted seq is 2^63 − 1. */
export const MAX_SEQ = (1n << 63n) - 1n;
export const CONNECT_TOKEN_LENGTH = 72;
export const CONNECT_TOKEN_HEX_LENGTH = 144;

/** Defaults from docs/protocol.md §Replay and time rules. */
export const DEFAULT_SKEW_MS = 30_000;
export const DEFAULT_SLOT_INTERVAL_MS = 60_000;

export function heartbeatLength(metricCount: number): number {
  return HEARTBEAT_HEADER_LENGTH + METRIC_LENGTH * metricCount + SIGNATURE_LENGTH;
}
