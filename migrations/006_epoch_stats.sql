-- 006: per-(device, epoch) counters maintained by ingest in the same transaction as the heartbeats
-- (issue 4 §Rollups, issue 5 §Epochs; docs/storage.md §Epoch counters). Closing an epoch then reads
-- one row per device (and per device and metric) instead of one per device, slot and metric: the
-- slot rollups stay the source of truth and the counters are exactly what aggregating them gives.
--
-- The epoch of a slot needs the network layout, so the cursor records it (filled by the oracle's
-- ensureCursor, oracle/epochs/epoch-stats.ts). Ingest maintains the counters only while the layout
-- is known; ensureCursor rebuilds the counters of every open epoch from the rollups when it records
-- the layout, under a lock that waits for in-flight ingest batches, so no batch is ever missed.
ALTER TABLE epoch_cursor
  ADD COLUMN genesis_slot bigint CHECK (genesis_slot >= 0),
  ADD COLUMN epoch_slots integer CHECK (epoch_slots >= 1),
  ADD COLUMN slot_ms bigint CHECK (slot_ms >= 1),
  ADD CONSTRAINT epoch_cursor_layout_complete
    CHECK ((genesis_slot IS NULL) = (epoch_slots IS NULL) AND (epoch_slots IS NULL) = (slot_ms IS NULL));

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
  -- total and the close needs no per-slot rows; otherwise it caps that device's slots one by one.
  max_slot_total numeric(40, 0) NOT NULL CHECK (max_slot_total >= 0 AND max_slot_total <= total),
  PRIMARY KEY (epoch, device_id, metric_id)
);
