// Settings fixed when a database is created (oracle_settings): changing the slot interval or the
// network under existing rows would silently mix slot numbers, so a mismatch stops the oracle.
import type { Store } from './store.ts';
import { PulseError } from '../../shared/errors.ts';

/** Record `value` for `key` if unset; throw STORE_SETTINGS_MISMATCH if a different value is stored. */
export async function ensureSetting(store: Store, key: string, value: string): Promise<void> {
  await store.query('INSERT INTO oracle_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [key, value]);
  const rows = await store.query<{ value: string }>('SELECT value FROM oracle_settings WHERE key = $1', [key]);
  const stored = rows[0]?.value;
  if (stored !== value) throw new PulseError('STORE_SETTINGS_MISMATCH', `${key} is ${stored} in this database but configured as ${value}`);
}
