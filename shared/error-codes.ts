// The catalogue of every stable code Pulse emits: rejection reason codes for data (heartbeats,
// tokens, signed identity messages) and error codes for operations (config, storage, chain, API).
// docs/errors.md lists exactly these codes; test/docs-errors.test.ts keeps the two in sync.
// Codes are stable API: never rename or reuse one, only add.

export type CodeInfo = { readonly area: string; readonly summary: string };

const heartbeat = {
  HB_TRUNCATED: { area: 'heartbeat', summary: 'Payload ends before the field the header announces (shorter than 55 bytes, or shorter than 119 + 10·n).' },
  HB_BAD_LENGTH: { area: 'heartbeat', summary: 'Payload is longer than 119 + 10·n bytes (trailing bytes are not allowed).' },
  HB_BAD_VERSION: { area: 'heartbeat', summary: 'Byte 0 (version) is not 0x01.' },
  HB_BAD_TYPE: { area: 'heartbeat', summary: 'Byte 1 (message type) is not 0x01 (heartbeat).' },
  HB_TOO_MANY_METRICS: { area: 'heartbeat', summary: 'Metric count n (byte 54) is greater than 16.' },
  HB_METRICS_UNORDERED: { area: 'heartbeat', summary: 'Metric ids are not strictly increasing.' },
  HB_BAD_SEQ: { area: 'heartbeat', summary: 'Sequence number is 0 or above 2^63 − 1; seq starts at 1.' },
  HB_WEAK_KEY: { area: 'heartbeat', summary: 'The public key is not a canonical encoding of a prime-order point (small-order, mixed-order or non-canonical); refused before any signature check.' },
  HB_NON_CANONICAL_SIGNATURE: { area: 'heartbeat', summary: 'Signature scalar S is not below the group order L (RFC 8032 §5.1.7 strict). A non-canonical or torsioned R is HB_BAD_SIGNATURE.' },
  HB_BAD_SIGNATURE: { area: 'heartbeat', summary: 'Ed25519 signature does not verify over DOMAIN || body.' },
  HB_WRONG_NETWORK: { area: 'heartbeat', summary: 'Network id in the payload differs from the network the receiver serves.' },
  HB_TOPIC_MISMATCH: { area: 'heartbeat', summary: 'The MQTT topic is not devices/<deviceId>/heartbeat for the key inside the payload, or not the authenticated device.' },
  HB_CLOCK_SKEW: { area: 'heartbeat', summary: 'Timestamp is further than the skew window (default 30 s) from the receive time.' },
  HB_DUPLICATE: { area: 'heartbeat', summary: 'Same device and seq with identical bytes was already accepted; harmless, not credited twice.' },
  HB_EQUIVOCATION: { area: 'heartbeat', summary: 'Same device and seq as an accepted heartbeat but different bytes: the device signed two messages for one seq.' },
  HB_REPLAY: { area: 'heartbeat', summary: 'Seq is lower than the highest seq already accepted for the device.' },
  HB_UNKNOWN_DEVICE: { area: 'heartbeat', summary: 'No registered device has this public key.' },
  HB_REVOKED_DEVICE: { area: 'heartbeat', summary: 'The device is registered but revoked (or its key was rotated away).' },
  HB_OVERSIZED: { area: 'heartbeat', summary: 'MQTT payload is larger than the broker limit (default 1 KiB).' },
  HB_RATE_LIMITED: { area: 'heartbeat', summary: "Device exceeded its publish rate (token bucket)." },
} as const satisfies Record<string, CodeInfo>;

const token = {
  TOKEN_BAD_ENCODING: { area: 'connect', summary: 'Password is not exactly 144 lowercase hex characters.' },
  TOKEN_BAD_CLIENT_ID: { area: 'connect', summary: 'Client id / username is not a 64-character lowercase hex device id, or they differ.' },
  TOKEN_WEAK_KEY: { area: 'connect', summary: 'The device id is not a canonical prime-order public key.' },
  TOKEN_NON_CANONICAL_SIGNATURE: { area: 'connect', summary: 'Token signature scalar S is not below L (a bad R is TOKEN_BAD_SIGNATURE).' },
  TOKEN_BAD_SIGNATURE: { area: 'connect', summary: 'Token signature does not verify for this device and network.' },
  TOKEN_CLOCK_SKEW: { area: 'connect', summary: "Token timestamp is outside the skew window of the broker's clock." },
  TOKEN_STALE: { area: 'connect', summary: 'Token timestamp is not newer than the last token accepted for the device (replayed token).' },
  TOKEN_UNKNOWN_DEVICE: { area: 'connect', summary: 'The device is not registered.' },
  TOKEN_REVOKED_DEVICE: { area: 'connect', summary: 'The device is registered but not active.' },
} as const satisfies Record<string, CodeInfo>;

const identity = {
  MSG_TRUNCATED: { area: 'identity', summary: 'Signed identity message is shorter than its type requires.' },
  MSG_BAD_LENGTH: { area: 'identity', summary: 'Signed identity message is longer than its type requires.' },
  MSG_BAD_VERSION: { area: 'identity', summary: 'Version byte is not 0x01.' },
  MSG_BAD_TYPE: { area: 'identity', summary: 'Type byte is not the expected message type.' },
  MSG_WEAK_KEY: { area: 'identity', summary: 'A public key in the message is not a canonical prime-order point.' },
  MSG_NON_CANONICAL_SIGNATURE: { area: 'identity', summary: 'Signature scalar S is not below L (a bad R is MSG_BAD_SIGNATURE).' },
  MSG_BAD_SIGNATURE: { area: 'identity', summary: 'Signature does not verify for the signer the message names.' },
  MSG_WRONG_NETWORK: { area: 'identity', summary: 'Network id differs from the receiving network.' },
  MSG_BAD_FIELD: { area: 'identity', summary: 'A field is out of range (a zero owner address, an empty model, text over 64 bytes or not UTF-8).' },
} as const satisfies Record<string, CodeInfo>;

const operational = {
  CLI_USAGE: { area: 'cli', summary: 'Wrong command-line arguments; the message says which.' },
  CLI_INPUT: { area: 'cli', summary: 'A file or value given on the command line could not be read or parsed.' },
  CONFIG_INVALID: { area: 'config', summary: 'A configuration key has an invalid value; the message names the key and its environment variable.' },
  PORT_IN_USE: { area: 'service', summary: 'A listener could not bind because the port is taken; the message names the flag to change it.' },
} as const satisfies Record<string, CodeInfo>;

const busMemory = {
  BUS_CLOSED: { area: 'bus', summary: 'Publish or consume on a bus (or publisher) that was closed.' },
  BUS_FULL: { area: 'bus', summary: 'The in-memory bus holds its maximum number of messages; the publish is refused so the device retries.' },
} as const satisfies Record<string, CodeInfo>;

const busJetStream = {
  BUS_UNAVAILABLE: { area: 'bus', summary: 'NATS JetStream did not confirm a publish or consumer operation (disconnected, stream missing, timeout); the broker holds the PUBACK and retries until it does.' },
  BUS_BAD_CONFIG: { area: 'bus', summary: 'A stream, subject prefix, durable name or device id cannot be used as a NATS name (it contains ".", "*", ">" or whitespace).' },
} as const satisfies Record<string, CodeInfo>;

const oracleStore = {
  STORE_UNAVAILABLE: { area: 'storage', summary: 'The database could not be reached or the connection broke; the operation can be retried.' },
  MIGRATION_CHANGED: { area: 'storage', summary: 'An already applied migration file was edited (checksum differs); migrations are forward-only, add a new file instead.' },
  MIGRATION_FAILED: { area: 'storage', summary: 'A migration failed and was rolled back; the message names the file and the database error.' },
  STORE_SETTINGS_MISMATCH: { area: 'storage', summary: 'A setting fixed when the database was created (e.g. the slot interval) differs from the configured one.' },
  INGEST_BAD_ENVELOPE: { area: 'ingest', summary: 'A bus message has no valid device id, seq or receive time (a broker bug or a foreign publisher); recorded and terminated.' },
  INGEST_STORE_ERROR: { area: 'ingest', summary: 'Storing this one message failed with a data error even on its own; recorded with the database message and terminated so it is not redelivered forever.' },
  SESSION_BAD_REPORT: { area: 'ingest', summary: 'A broker session report on the bus is malformed (not the v1 JSON, a bad broker id, seq or part, an interval outside the report window or overlapping another, a window longer than 2 h); counted and terminated, never redelivered.' },
} as const satisfies Record<string, CodeInfo>;

const registry = {
  REG_BAD_INPUT: { area: 'registry', summary: 'A registry request field is missing or malformed (device id, owner address, key, model or name); the message names it.' },
  REG_WEAK_KEY: { area: 'registry', summary: 'A device or maker key is not a canonical prime-order Ed25519 point (small-order, mixed-order or non-canonical).' },
  REG_DEVICE_EXISTS: { area: 'registry', summary: 'A device (or a key) with this id is already registered.' },
  REG_UNKNOWN_DEVICE: { area: 'registry', summary: 'No registered device has this id or key.' },
  REG_UNKNOWN_MAKER: { area: 'registry', summary: 'The maker key is not a registered (trusted) maker.' },
  REG_DEVICE_REVOKED: { area: 'registry', summary: 'The device is revoked; it cannot be transferred, rotated or re-onboarded.' },
  REG_STALE_NONCE: { area: 'registry', summary: 'The signed message nonce is not greater than the last one the device used (a replayed transfer, binding or rotation).' },
  REG_NOT_CURRENT_KEY: { area: 'registry', summary: 'The message is signed by a key that is not the device\'s current key.' },
  API_UNAUTHORIZED: { area: 'api', summary: 'The request needs the operator token (Authorization: Bearer <token>) and did not carry a valid one.' },
  API_NOT_FOUND: { area: 'api', summary: 'No route matches the method and path.' },
  API_BAD_REQUEST: { area: 'api', summary: 'The request body is not valid JSON or lacks a required field.' },
  API_PAYLOAD_TOO_LARGE: { area: 'api', summary: 'The request body exceeds the API limit (64 KiB).' },
  API_INTERNAL: { area: 'api', summary: 'An unexpected server error; details are in the oracle log.' },
} as const satisfies Record<string, CodeInfo>;

// Reward reason codes (docs/rewards.md §Reason codes): attached to every device that earns less than
// the maximum for an epoch, and to every part of the emission that is not allocated.
const reward = {
  LOW_UPTIME: { area: 'reward', summary: 'Credited uptime (slots with an accepted heartbeat ÷ slots in the epoch) is below the minimum; the device earns nothing this epoch.' },
  PARTIAL_UPTIME: { area: 'reward', summary: 'Eligible, but some slots of the epoch hold no accepted heartbeat, so the availability share is smaller than for full uptime.' },
  METRIC_CAPPED: { area: 'reward', summary: 'A metric reached its per-slot or per-epoch cap; the amount above the cap earns nothing.' },
  NO_CONTRIBUTION: { area: 'reward', summary: 'Eligible, but the capped, weighted contribution is zero, so the device gets nothing from the contribution pool.' },
  UNWEIGHTED_METRIC: { area: 'reward', summary: 'The device reported a metric id that the reward parameters do not weight; it is ignored.' },
  REVOKED: { area: 'reward', summary: 'The device was revoked during or before the epoch; it earns nothing.' },
  NO_OWNER: { area: 'reward', summary: 'The device has no owner address bound; nobody can be paid, so it earns nothing.' },
  UNALLOCATED_NO_ELIGIBLE: { area: 'reward', summary: 'No device was eligible this epoch: the whole emission stays unallocated.' },
  UNALLOCATED_NO_CONTRIBUTION: { area: 'reward', summary: 'Eligible devices reported no weighted contribution: the contribution pool stays unallocated.' },
  PARAMS_INVALID: { area: 'reward', summary: 'Reward parameters are malformed (bad share, weight, cap, minimum uptime or version); the message names the field.' },
  SCORE_INPUT_INVALID: { area: 'reward', summary: 'A scoring input is malformed (bad epoch range, negative metric, bad owner address); the message names it.' },
  MERKLE_EMPTY: { area: 'merkle', summary: 'A reward tree needs at least one leaf.' },
  MERKLE_BAD_ADDRESS: { area: 'merkle', summary: 'A leaf account is not a 0x-prefixed 20-byte hex address.' },
  MERKLE_BAD_AMOUNT: { area: 'merkle', summary: 'A leaf amount is not a uint256 (negative or 2^256 or more).' },
  MERKLE_DUPLICATE_ACCOUNT: { area: 'merkle', summary: 'An account appears in two leaves; a tree holds one cumulative amount per account.' },
} as const satisfies Record<string, CodeInfo>;

// Chain operations (docs/contracts.md): deploying, posting roots, claiming.
const chain = {
  CHAIN_RPC_UNAVAILABLE: { area: 'chain', summary: 'The JSON-RPC endpoint kept failing for longer than the retry budget; the signed intent is kept and the next run resumes it.' },
  CHAIN_ROOT_CONFLICT: { area: 'chain', summary: 'The chain already holds a different root for this epoch; the oracle never posts a second root for one epoch.' },
  CHAIN_EPOCH_PASSED: { area: 'chain', summary: 'A later epoch is already posted, so this epoch can no longer be posted (epochs must strictly increase).' },
  CHAIN_REVERTED: { area: 'chain', summary: 'The contract refused the call; the message names the decoded custom error (e.g. IncreaseOverCap, InvalidProof, NothingToClaim).' },
  CHAIN_NOT_DEPLOYED: { area: 'chain', summary: 'No contract code at the configured RewardDistributor address on this RPC endpoint.' },
  CHAIN_BAD_KEY: { area: 'chain', summary: 'The private key file or environment variable does not hold a 32-byte hex key.' },
  CHAIN_NOT_MINED: { area: 'chain', summary: 'The root transaction was not mined after every fee bump; the journal keeps it and the next run resumes.' },
} as const satisfies Record<string, CodeInfo>;

// Operator surface (issue 7): read API, live feed, alerts.
const operatorSurface = {
  API_BAD_QUERY: { area: 'api', summary: 'A query parameter is malformed (status, owner, maker, q, limit, offset); the message names it.' },
  API_METHOD_NOT_ALLOWED: { area: 'api', summary: 'The path exists but does not accept this HTTP method; the Allow header lists the ones it does.' },
  API_UNKNOWN_DEVICE: { area: 'api', summary: 'GET /api/devices/:id names no registered device (or is not a 64-hex-character device id).' },
  API_FEED_FULL: { area: 'api', summary: 'The live feed (/api/events) already serves its maximum number of clients; retry later.' },
  ALERT_DELIVERY_FAILED: { area: 'alerts', summary: 'A webhook did not accept an alert (network error or a non-2xx status) after every retry; the alert is dropped and counted.' },
  ALERT_QUEUE_FULL: { area: 'alerts', summary: 'The alert queue is full (webhooks down for long); the oldest pending alert is dropped so ingest never waits.' },
} as const satisfies Record<string, CodeInfo>;

// Epoch closing, bundles and posting (issues 5 and 6).
const epochs = {
  HB_EPOCH_CLOSED: { area: 'heartbeat', summary: "The heartbeat's slot belongs to an epoch that is already closed (it arrived after the grace period); it is recorded, never credited." },
  PARAMS_CHANGED: { area: 'epoch', summary: 'The configured reward parameters differ from the set already recorded under the same version; a changed set needs a new version.' },
  EPOCH_CLOSE_FAILED: { area: 'epoch', summary: 'Closing an epoch failed (bad inputs or a database error); nothing was written and the close is retried.' },
  CHAIN_ROOT_VANISHED: { area: 'epoch', summary: 'A root the oracle had posted is no longer on chain (a reorg); later epochs wait while it is posted again, in order.' },
  API_UNKNOWN_EPOCH: { area: 'api', summary: 'The epoch named in the path is not closed yet (or does not exist).' },
  TIMING_INVALID: { area: 'epoch', summary: 'Network timing is invalid (genesis not a multiple of the slot interval, empty epoch, or a timing that differs from the one recorded in the database).' },
} as const satisfies Record<string, CodeInfo>;

// Epoch bundles, `pulse verify`, proofs and claims (issue 6; docs/bundle.md, docs/verify.md).
const bundles = {
  BUNDLE_MALFORMED: { area: 'bundle', summary: 'The bundle file is not a valid Pulse epoch bundle (bad gzip, a line that is not canonical JSON, a missing or out-of-order record, unknown format version); the message names the line.' },
  BUNDLE_NOT_CLOSED: { area: 'bundle', summary: 'A bundle was requested for an epoch that is not closed yet (no epochs row).' },
  BUNDLE_CHANGED: { area: 'bundle', summary: 'Rebuilding the bundle of an epoch gave bytes whose hash differs from the hash already recorded (and maybe posted); the stored inputs changed after the epoch closed.' },
  BUNDLE_UNAVAILABLE: { area: 'bundle', summary: 'The bundle file or URL could not be read (missing file, HTTP error, network failure).' },
  VERIFY_HASH_MISMATCH: { area: 'verify', summary: 'The keccak256 of the bundle bytes is not the inputsHash posted on chain (or the hash given with --expect-hash).' },
  VERIFY_BAD_HEARTBEAT: { area: 'verify', summary: 'A heartbeat in the bundle is malformed or its Ed25519 signature does not verify (forged or altered bytes); the message names the device, seq and the heartbeat reason code.' },
  VERIFY_WRONG_NETWORK: { area: 'verify', summary: 'A heartbeat in the bundle carries a network id other than the bundle\'s network.' },
  VERIFY_WRONG_KEY: { area: 'verify', summary: 'A heartbeat is signed by a key that was not the device\'s active key (not in its key history, or retired before the heartbeat was received).' },
  VERIFY_REPLAY: { area: 'verify', summary: 'A device\'s heartbeats in the bundle do not have strictly increasing seqs (a duplicated or re-ordered heartbeat).' },
  VERIFY_OUTSIDE_EPOCH: { area: 'verify', summary: 'A heartbeat\'s slot lies outside the epoch, or its timestamp is outside the skew window of its receive time.' },
  VERIFY_UNKNOWN_DEVICE: { area: 'verify', summary: 'A heartbeat or score names a device that is not in the bundle\'s registry snapshot.' },
  VERIFY_PARAMS_MISMATCH: { area: 'verify', summary: 'The reward parameters in the bundle do not hash to the stated paramsHash (or the chain\'s), or the scorer version is unknown.' },
  VERIFY_SCORE_MISMATCH: { area: 'verify', summary: 'A device score recomputed from the bundle\'s heartbeats and parameters differs from the score the bundle states.' },
  VERIFY_REWARD_MISMATCH: { area: 'verify', summary: 'An owner reward, the allocated or unallocated total recomputed from the scores differs from what the bundle states.' },
  VERIFY_ROOT_MISMATCH: { area: 'verify', summary: 'The cumulative leaves, cumulative total, tree dump or merkle root recomputed from the bundle differ from what the bundle states.' },
  VERIFY_CHAIN_MISMATCH: { area: 'verify', summary: 'The root, cumulativeTotal or paramsHash posted on chain for the epoch differs from the bundle (or the epoch is not posted).' },
  CLAIM_NO_LEAF: { area: 'claim', summary: 'The address has no leaf (no cumulative reward) in the epoch\'s merkle tree.' },
  CLAIM_NOT_CLAIMABLE: { area: 'claim', summary: 'The contract has no claimable root yet, or the proof is for a different root than the newest claimable one.' },
} as const satisfies Record<string, CodeInfo>;

export const ERROR_CODES = Object.freeze({ ...heartbeat, ...token, ...identity, ...operational, ...busMemory, ...busJetStream, ...oracleStore, ...registry, ...reward, ...chain, ...operatorSurface, ...epochs, ...bundles });

export type HeartbeatCode = keyof typeof heartbeat;
export type TokenCode = keyof typeof token;
export type IdentityCode = keyof typeof identity;
export type RewardCode = keyof typeof reward;
export type ChainCode = keyof typeof chain;
export type BundleCode = keyof typeof bundles;
export type ErrorCode = keyof typeof ERROR_CODES;
