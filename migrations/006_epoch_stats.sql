-- 006: per-(device, epoch) counters maintained by ingest in the same transaction as the heartbeats
-- (issue 4 §Rollups, issue 5 §Epochs; docs/storage.md §Epoch counters). Closing an epoch then reads
-- one row per device (and per device and metric) instead of one per device, slot and metric: the
-- slot rollups stay the source of truth and the counters are exactly what aggregating them gives.
--
-- The epoch of a slot needs the network layout, and the capped sums need the per-slot caps of the
-- reward parameters, so the cursor records both (oracle/epochs/epoch-stats.ts ensureCursor). Ingest
-- reads them in the cursor read it already does and maintains the counters only while the layout is
-- known; ensureCursor rebuilds the counters of every open epoch from the rollups when it records the
-- layout, under a lock that waits for in-flight ingest batches, so no batch is ever missed.
ALTER TABLE epoch_cursor
  ADD COLUMN genesis_slot bigint CHECK (genesis_slot >= 0),
  ADD COLUMN epoch_slots integer CHECK (epoch_slots >= 1),
  ADD COLUMN slot_ms bigint CHECK (slot_ms >= 1),
  ADD COLUMN cap_metric_ids integer[] NOT NULL DEFAULT '{}',
  ADD COLUMN cap_per_slot numeric(40, 0)[] NOT NULL DEFAULT '{}',
  ADD CONSTRAINT epoch_cursor_layout_complete
    CHECK ((genesis_slot IS NULL) = (epoch_slots IS NULL) AND (epoch_slots IS NULL) = (slot_ms IS NULL)),
  ADD CONSTRAINT epoch_cursor_caps_paired CHECK (cardinality(cap_metric_ids) = cardinality(cap_per_slot));

CREATE TABLE epoch_device_stats (
  epoch bigint NOT NULL CHECK (epoch >= 0),
  device_id text NOT NULL,
  -- Slots of the epoch with at least one accepted heartbeat (= slot_rollups rows of the epoch).
  credited_slots integer NOT NULL DEFAULT 0 CHECK (credited_slots >= 0),
  heartbeats bigint NOT NULL DEFAULT 0 CHECK (heartbeats >= 0),
  -- Broker session time inside the epoch (reported beside the score, never paid).
  connected_ms bigint NOT NULL DEFAULT 0 CHECK (connected_ms >= 0),
  PRIMARY KEY (epoch, device_id)
);

CREATE TABLE epoch_metric_stats (
  epoch bigint NOT NULL CHECK (epoch >= 0),
  device_id text NOT NULL,
  metric_id integer NOT NULL CHECK (metric_id BETWEEN 0 AND 65535),
  -- Sum of the metric over the epoch (= Σ slot_metric_sums.total over its slots).
  total numeric(40, 0) NOT NULL CHECK (total >= 0),
  -- The largest slot sum in the epoch. When it is within the per-slot cap, the capped sum equals the
  -- total and the close needs no per-slot rows.
  max_slot_total numeric(40, 0) NOT NULL CHECK (max_slot_total >= 0),
  -- Σ over the epoch's slots of min(slot sum, slot_cap), kept while every slot was capped with the
  -- same cap (the cursor's cap when the rows arrived); NULL once the cap changed mid-epoch, and then
  -- the close caps the slots one by one.
  capped_total numeric(40, 0) CHECK (capped_total >= 0),
  slot_cap numeric(40, 0) CHECK (slot_cap >= 0),
  CHECK ((capped_total IS NULL) = (slot_cap IS NULL)),
  PRIMARY KEY (epoch, device_id, metric_id)
);

-- The same format rules as before, written without regular expressions on the tables written in
-- bulk (a heartbeat per row in ingest, a score per device in the close): PostgreSQL's regex engine
-- costs ~6 µs per check here, which was 1.5 s of a 100,000-device close (bench/README.md §epoch).
-- "exactly 64 (40) characters, all of them lowercase hex" is what '^[0-9a-f]{64}$' said.
--
-- heartbeats only on plain PostgreSQL: on TimescaleDB it is a hypertable with compression, and
-- TimescaleDB releases before 2.19 refuse to add a constraint once a chunk is compressed (after
-- 7 days), which would fail this migration and keep the oracle from starting. There it keeps the
-- regex checks. Adding the constraint checks the existing rows once (a scan of the table).
DO $$
BEGIN
  IF (SELECT value FROM oracle_settings WHERE key = 'storage_mode') IS DISTINCT FROM 'timescaledb' THEN
    ALTER TABLE heartbeats
      DROP CONSTRAINT heartbeats_device_id_check,
      DROP CONSTRAINT heartbeats_key_id_check,
      ADD CONSTRAINT heartbeats_device_id_check CHECK (octet_length(device_id) = 64 AND ltrim(device_id, '0123456789abcdef') = ''),
      ADD CONSTRAINT heartbeats_key_id_check CHECK (octet_length(key_id) = 64 AND ltrim(key_id, '0123456789abcdef') = '');
  END IF;
END
$$;
ALTER TABLE epoch_device_scores
  DROP CONSTRAINT epoch_device_scores_device_id_check,
  DROP CONSTRAINT epoch_device_scores_owner_check,
  ADD CONSTRAINT epoch_device_scores_device_id_check CHECK (octet_length(device_id) = 64 AND ltrim(device_id, '0123456789abcdef') = ''),
  ADD CONSTRAINT epoch_device_scores_owner_check
    CHECK (owner IS NULL OR (octet_length(owner) = 42 AND left(owner, 2) = '0x' AND ltrim(substr(owner, 3), '0123456789abcdef') = ''));
ALTER TABLE epoch_rewards
  DROP CONSTRAINT epoch_rewards_owner_check,
  ADD CONSTRAINT epoch_rewards_owner_check CHECK (octet_length(owner) = 42 AND left(owner, 2) = '0x' AND ltrim(substr(owner, 3), '0123456789abcdef') = '');
ALTER TABLE cumulative_rewards
  DROP CONSTRAINT cumulative_rewards_owner_check,
  ADD CONSTRAINT cumulative_rewards_owner_check CHECK (octet_length(owner) = 42 AND left(owner, 2) = '0x' AND ltrim(substr(owner, 3), '0123456789abcdef') = '');
