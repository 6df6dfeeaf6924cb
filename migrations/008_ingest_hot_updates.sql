-- 008: cheaper row updates on the ingest write path (issue 4 §Benchmark; docs/storage.md §Ingest).
-- Every accepted heartbeat updates rows that already exist: its device (max_seq), its slot rollup
-- and slot metric sums when the slot already had one, and always its (device, epoch) counters
-- (006), which are rewritten once per heartbeat for a whole epoch. At fillfactor 100 a page is full
-- after its first fill, so each such update writes the new row version to another page and adds an
-- entry to every index of the table; those index entries stay until VACUUM. With free space left on
-- each page PostgreSQL can update in place (a heap-only tuple, no index entry, pruned on the next
-- visit to the page). The rows are small and few (per device, per device and epoch), so the extra
-- space is cheap. Only new pages get it; nothing is rewritten now.
ALTER TABLE devices SET (fillfactor = 70);
ALTER TABLE slot_rollups SET (fillfactor = 70);
ALTER TABLE slot_metric_sums SET (fillfactor = 70);
ALTER TABLE epoch_device_stats SET (fillfactor = 50);
ALTER TABLE epoch_metric_stats SET (fillfactor = 50);

-- An UPDATE re-checks every CHECK constraint of the row, and PostgreSQL's regex engine costs a few
-- µs per check (006 replaced it on the tables written in bulk for the same reason). Ingest updates
-- each device row once per batch, so the device id format check is written without a regex here
-- too: "exactly 64 characters, all of them lowercase hex" is what '^[0-9a-f]{64}$' said. Adding the
-- constraint checks the existing rows once (a scan of the table).
ALTER TABLE devices
  DROP CONSTRAINT devices_device_id_check,
  ADD CONSTRAINT devices_device_id_check CHECK (octet_length(device_id) = 64 AND ltrim(device_id, '0123456789abcdef') = '');
