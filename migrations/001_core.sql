-- 001: core schema (docs/storage.md). Runs unchanged on PostgreSQL >= 15, TimescaleDB and PGlite;
-- 002 adds the TimescaleDB-only features when the extension is available.
-- Invariants live here as constraints (house style: let SQL enforce invariants). Seq, timestamps and
-- receive times are BIGINT (the protocol caps seq at 2^63-1); u64 nonces and metric sums are NUMERIC
-- because a u64 does not fit BIGINT.

CREATE TABLE oracle_settings (
  key text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
  value text NOT NULL
);

CREATE TABLE makers (
  maker_key bytea PRIMARY KEY CHECK (octet_length(maker_key) = 32),
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
  added_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
  -- Hex of the device's first public key; never changes (docs/protocol.md §Key rotation).
  device_id text PRIMARY KEY CHECK (device_id ~ '^[0-9a-f]{64}$'),
  owner bytea CHECK (owner IS NULL OR (octet_length(owner) = 20 AND owner <> '\x0000000000000000000000000000000000000000'::bytea)),
  maker_key bytea REFERENCES makers (maker_key),
  model text CHECK (model IS NULL OR char_length(model) BETWEEN 1 AND 64),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  registered_via text NOT NULL CHECK (registered_via IN ('operator', 'onboarding')),
  registered_at timestamptz NOT NULL DEFAULT now(),
  -- Highest nonce of an owner binding / owner transfer the device signed; each must exceed it.
  owner_nonce numeric(20, 0) NOT NULL DEFAULT 0 CHECK (owner_nonce >= 0 AND owner_nonce < 18446744073709551616),
  -- Highest nonce of a key rotation the device signed.
  key_nonce numeric(20, 0) NOT NULL DEFAULT 0 CHECK (key_nonce >= 0 AND key_nonce < 18446744073709551616),
  -- Highest accepted heartbeat seq (replay rule, docs/protocol.md §Replay and time rules).
  max_seq bigint NOT NULL DEFAULT 0 CHECK (max_seq >= 0),
  -- Broker receive time of that heartbeat: a lower seq received before it is late processing by a
  -- concurrent worker, not a replay (docs/storage.md §Replay rule with concurrent workers).
  max_seq_received_at bigint NOT NULL DEFAULT 0 CHECK (max_seq_received_at >= 0),
  CHECK (registered_via = 'operator' OR (maker_key IS NOT NULL AND model IS NOT NULL AND owner IS NOT NULL))
);

CREATE TABLE device_keys (
  key_id text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{64}$'),
  device_id text NOT NULL REFERENCES devices (device_id),
  active_from timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  -- Timestamp of the last connect token accepted for this key (docs/protocol.md §Connect token).
  last_token_ts bigint NOT NULL DEFAULT 0 CHECK (last_token_ts >= 0),
  CHECK (retired_at IS NULL OR retired_at >= active_from)
);
-- At most one current key per device.
CREATE UNIQUE INDEX device_keys_current ON device_keys (device_id) WHERE retired_at IS NULL;
CREATE INDEX device_keys_device ON device_keys (device_id);

-- Device history: every registration, onboarding, transfer, rotation and revocation, with the
-- signed message that authorised it (so anyone can re-check it).
CREATE TABLE device_events (
  id bigserial PRIMARY KEY,
  device_id text NOT NULL REFERENCES devices (device_id),
  event text NOT NULL CHECK (event IN ('registered', 'onboarded', 'owner-transfer', 'key-rotation', 'revoked')),
  status text NOT NULL CHECK (status IN ('active', 'revoked')),
  owner bytea CHECK (owner IS NULL OR octet_length(owner) = 20),
  key_id text CHECK (key_id IS NULL OR key_id ~ '^[0-9a-f]{64}$'),
  signed bytea,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_events_device ON device_events (device_id, id);

-- Change feed for the broker's DeviceDirectory.changesSince (shared/device-directory.ts). Writers
-- take an EXCLUSIVE table lock before inserting so ids become visible in order and a reader's
-- cursor never skips a change committed late.
CREATE TABLE registry_changes (
  id bigserial PRIMARY KEY,
  key_id text NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),
  at timestamptz NOT NULL DEFAULT now()
);

-- Accepted heartbeats: the raw signed bytes, the parsed fields and the receive time.
CREATE TABLE heartbeats (
  device_id text NOT NULL CHECK (device_id ~ '^[0-9a-f]{64}$'),
  seq bigint NOT NULL CHECK (seq >= 1),
  key_id text NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),
  ts bigint NOT NULL CHECK (ts >= 0),                 -- device clock, unix ms
  at timestamptz NOT NULL,                           -- ts as a time (date_bin, partitioning)
  slot bigint NOT NULL CHECK (slot >= 0),            -- floor(ts / slot interval)
  received_at bigint NOT NULL CHECK (received_at >= 0),  -- broker receive time, unix ms
  raw bytea NOT NULL CHECK (octet_length(raw) BETWEEN 119 AND 279 AND (octet_length(raw) - 119) % 10 = 0),
  metrics jsonb NOT NULL,                            -- {"<metric id>": <u64 value>}
  stored_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, seq)
);

-- Every rejected bus message with its reason code (docs/errors.md). raw keeps at most 4 KiB.
CREATE TABLE rejections (
  id bigserial PRIMARY KEY,
  device_id text CHECK (device_id IS NULL OR device_id ~ '^[0-9a-f]{64}$'),
  seq bigint CHECK (seq IS NULL OR seq >= 1),
  reason text NOT NULL CHECK (reason ~ '^[A-Z][A-Z0-9_]{1,63}$'),
  detail text NOT NULL CHECK (char_length(detail) <= 500),
  raw bytea NOT NULL CHECK (octet_length(raw) <= 4096),
  raw_length integer NOT NULL CHECK (raw_length >= octet_length(raw)),
  received_at bigint NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejections_device ON rejections (device_id, id) WHERE device_id IS NOT NULL;
CREATE INDEX rejections_reason ON rejections (reason, id);

-- Rollups for scoring, maintained by ingest in the same transaction as the heartbeats, so closing
-- an epoch reads these and never scans raw heartbeats. A row means the slot is present (credited).
CREATE TABLE slot_rollups (
  device_id text NOT NULL,
  slot bigint NOT NULL CHECK (slot >= 0),
  heartbeats integer NOT NULL CHECK (heartbeats >= 1),
  first_seq bigint NOT NULL,
  last_seq bigint NOT NULL,
  PRIMARY KEY (device_id, slot),
  CHECK (first_seq >= 1 AND first_seq <= last_seq)
);
CREATE INDEX slot_rollups_slot ON slot_rollups (slot);

CREATE TABLE slot_metric_sums (
  device_id text NOT NULL,
  slot bigint NOT NULL CHECK (slot >= 0),
  metric_id integer NOT NULL CHECK (metric_id BETWEEN 0 AND 65535),
  total numeric(40, 0) NOT NULL CHECK (total >= 0),
  PRIMARY KEY (device_id, slot, metric_id)
);
