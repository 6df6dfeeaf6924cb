-- 009: the same integrity rules, checked per statement instead of per row, on the tables an epoch
-- close writes in bulk (issue 5 §Benchmark: close 100,000 devices in < 5 s; docs/storage.md §Close).
--
-- 1. Foreign keys to epochs. A FOREIGN KEY runs one referential-integrity query per inserted row
--    (`SELECT 1 FROM epochs WHERE epoch = $1 FOR KEY SHARE`): measured on the 100,000-device close,
--    that was 0.9–1.0 s of the 1.9–2.0 s COPY into epoch_device_scores, and ~0.15 s of the 20,000-row
--    insert into epoch_rewards. Here a statement-level trigger sees every inserted (or updated) row
--    at once through its transition table, locks the distinct parent epochs FOR KEY SHARE, as the
--    foreign key did, and refuses the statement if one is missing, with the foreign key's SQLSTATE
--    (23503). The other direction (an epoch deleted or renumbered while rows refer to it) is refused
--    by a row trigger on epochs, which only fires on those statements; nothing in Pulse issues them.
--    The trigger on epochs runs AFTER the row is changed, so a concurrent insert that still holds
--    its KEY SHARE lock has committed (or rolled back) by then, and each statement of a VOLATILE
--    PL/pgSQL function takes a new snapshot under READ COMMITTED: it sees those rows, as RI does.
--
-- 2. Format checks. `ltrim(x, '0123456789abcdef') = ''` (006, 008) still costs ~1–1.5 µs per check; a
--    regular expression under the "C" collation does not (character classes are then plain byte
--    ranges, no locale lookups): 0.15–0.3 s less for the two checks of 100,000 score rows. The rule
--    is unchanged: exactly 64 (40 after "0x") characters, every one of them in 0-9a-f. The new
--    constraints are NOT VALID: they hold for every row written from now on, and every existing row
--    already passed the constraint they replace, which says the same; validating would scan tables
--    that grow by a row per device and epoch (or per heartbeat) under an exclusive lock at oracle
--    start. On TimescaleDB heartbeats keeps its 001 checks, for the reason 006 gives (compressed
--    chunks).

CREATE FUNCTION pulse_epoch_refs_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing bigint;
BEGIN
  PERFORM 1 FROM epochs e WHERE e.epoch IN (SELECT DISTINCT n.epoch FROM new_rows n) FOR KEY SHARE OF e;
  SELECT n.epoch INTO missing FROM (SELECT DISTINCT epoch FROM new_rows) n
   WHERE NOT EXISTS (SELECT 1 FROM epochs e WHERE e.epoch = n.epoch) LIMIT 1;
  IF FOUND THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('insert or update on table "%s" violates the epoch reference', TG_TABLE_NAME),
      DETAIL = format('Key (epoch)=(%s) is not present in table "epochs".', missing),
      TABLE = TG_TABLE_NAME;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION pulse_epoch_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    -- A foreign key refuses TRUNCATE epochs (without CASCADE) while scores or rewards exist.
    IF EXISTS (SELECT 1 FROM epoch_device_scores) OR EXISTS (SELECT 1 FROM epoch_rewards) THEN
      RAISE feature_not_supported USING MESSAGE = 'cannot truncate epochs while epoch_device_scores or epoch_rewards hold rows; truncate them first';
    END IF;
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.epoch = OLD.epoch THEN
    RETURN NULL;
  END IF;
  -- Under REPEATABLE READ or SERIALIZABLE the check below would read the transaction's snapshot and
  -- miss rows a concurrent insert committed while this delete waited for its KEY SHARE lock (a
  -- foreign key re-checks with a newer snapshot). Pulse never deletes or renumbers epochs.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE feature_not_supported USING MESSAGE = 'deleting or renumbering an epoch needs READ COMMITTED isolation';
  END IF;
  IF EXISTS (SELECT 1 FROM epoch_device_scores WHERE epoch = OLD.epoch) OR EXISTS (SELECT 1 FROM epoch_rewards WHERE epoch = OLD.epoch) THEN
    RAISE foreign_key_violation USING
      MESSAGE = format('epoch %s is still referenced by its scores or rewards', OLD.epoch),
      TABLE = 'epochs';
  END IF;
  RETURN NULL;
END
$$;

-- PostgreSQL allows a transition table only on a trigger for a single event: one trigger per event.
ALTER TABLE epoch_device_scores DROP CONSTRAINT epoch_device_scores_epoch_fkey;
CREATE TRIGGER epoch_device_scores_epoch_ref_ins AFTER INSERT ON epoch_device_scores
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pulse_epoch_refs_exist();
CREATE TRIGGER epoch_device_scores_epoch_ref_upd AFTER UPDATE ON epoch_device_scores
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pulse_epoch_refs_exist();

ALTER TABLE epoch_rewards DROP CONSTRAINT epoch_rewards_epoch_fkey;
CREATE TRIGGER epoch_rewards_epoch_ref_ins AFTER INSERT ON epoch_rewards
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pulse_epoch_refs_exist();
CREATE TRIGGER epoch_rewards_epoch_ref_upd AFTER UPDATE ON epoch_rewards
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pulse_epoch_refs_exist();

CREATE TRIGGER epochs_referenced AFTER DELETE OR UPDATE OF epoch ON epochs
  FOR EACH ROW EXECUTE FUNCTION pulse_epoch_unreferenced();
CREATE TRIGGER epochs_truncate BEFORE TRUNCATE ON epochs
  FOR EACH STATEMENT EXECUTE FUNCTION pulse_epoch_unreferenced();

-- Name resolution inside the functions is pinned to the schema the tables live in, with pg_temp
-- last: a session's search_path (pg_dump/pg_restore set it to '') or a temporary table named
-- epochs must not change what they check.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION pulse_epoch_refs_exist() SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION pulse_epoch_unreferenced() SET search_path = %I, pg_temp', current_schema());
END
$$;

ALTER TABLE epoch_device_scores
  DROP CONSTRAINT epoch_device_scores_device_id_check,
  DROP CONSTRAINT epoch_device_scores_owner_check,
  ADD CONSTRAINT epoch_device_scores_device_id_check CHECK (octet_length(device_id) = 64 AND device_id COLLATE "C" !~ '[^0-9a-f]') NOT VALID,
  ADD CONSTRAINT epoch_device_scores_owner_check
    CHECK (owner IS NULL OR (octet_length(owner) = 42 AND owner COLLATE "C" ~ '^0x' AND substr(owner, 3) COLLATE "C" !~ '[^0-9a-f]')) NOT VALID;

ALTER TABLE epoch_rewards
  DROP CONSTRAINT epoch_rewards_owner_check,
  ADD CONSTRAINT epoch_rewards_owner_check CHECK (octet_length(owner) = 42 AND owner COLLATE "C" ~ '^0x' AND substr(owner, 3) COLLATE "C" !~ '[^0-9a-f]') NOT VALID;
ALTER TABLE cumulative_rewards
  DROP CONSTRAINT cumulative_rewards_owner_check,
  ADD CONSTRAINT cumulative_rewards_owner_check CHECK (octet_length(owner) = 42 AND owner COLLATE "C" ~ '^0x' AND substr(owner, 3) COLLATE "C" !~ '[^0-9a-f]') NOT VALID;
ALTER TABLE devices
  DROP CONSTRAINT devices_device_id_check,
  ADD CONSTRAINT devices_device_id_check CHECK (octet_length(device_id) = 64 AND device_id COLLATE "C" !~ '[^0-9a-f]') NOT VALID;

DO $$
BEGIN
  IF (SELECT value FROM oracle_settings WHERE key = 'storage_mode') IS DISTINCT FROM 'timescaledb' THEN
    ALTER TABLE heartbeats
      DROP CONSTRAINT heartbeats_device_id_check,
      DROP CONSTRAINT heartbeats_key_id_check,
      ADD CONSTRAINT heartbeats_device_id_check CHECK (octet_length(device_id) = 64 AND device_id COLLATE "C" !~ '[^0-9a-f]') NOT VALID,
      ADD CONSTRAINT heartbeats_key_id_check CHECK (octet_length(key_id) = 64 AND key_id COLLATE "C" !~ '[^0-9a-f]') NOT VALID;
  END IF;
END
$$;
