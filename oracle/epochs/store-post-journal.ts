// The root poster's journal in the oracle database (migrations/005_post_intents.sql): durable when
// save() resolves because the statement commits before the poster broadcasts.
import type { PostIntent, PostJournal } from '../chain/post-journal.ts';
import type { Store } from '../store/store.ts';

export class StorePostJournal implements PostJournal {
  constructor(private readonly store: Store) {}

  async load(epoch: bigint): Promise<PostIntent | undefined> {
    const rows = await this.store.query<{ intent: PostIntent }>('SELECT intent FROM post_intents WHERE epoch = $1', [epoch.toString()]);
    return rows[0]?.intent;
  }

  async previous(epoch: bigint): Promise<PostIntent | undefined> {
    const rows = await this.store.query<{ intent: PostIntent }>('SELECT intent FROM post_intents WHERE epoch < $1 ORDER BY epoch DESC LIMIT 1', [epoch.toString()]);
    return rows[0]?.intent;
  }

  async save(intent: PostIntent): Promise<void> {
    await this.store.query(
      'INSERT INTO post_intents (epoch, intent) VALUES ($1, $2::jsonb) ON CONFLICT (epoch) DO UPDATE SET intent = EXCLUDED.intent, updated_at = now()',
      [intent.epoch, JSON.stringify(intent)],
    );
  }
}
