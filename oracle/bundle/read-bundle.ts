// Fetch a bundle file from a path or an http(s) URL (docs/verify.md): `pulse verify --bundle` takes
// either, since bundles are served by the oracle (GET /api/epochs/:n/bundle) and mirrored as plain
// files on object stores or IPFS gateways.
import { readFile } from 'node:fs/promises';
import { PulseError } from '../../shared/errors.ts';

/** The raw file bytes (still gzip-compressed). Throws BUNDLE_UNAVAILABLE. */
export async function readBundleSource(source: string, fetchImpl: typeof fetch = fetch): Promise<Uint8Array> {
  if (/^https?:\/\//i.test(source)) {
    let res: Response;
    try {
      res = await fetchImpl(source);
    } catch (e) {
      throw new PulseError('BUNDLE_UNAVAILABLE', `GET ${source}: ${(e as Error).message}`);
    }
    if (!res.ok) throw new PulseError('BUNDLE_UNAVAILABLE', `GET ${source}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  try {
    return new Uint8Array(await readFile(source));
  } catch (e) {
    throw new PulseError('BUNDLE_UNAVAILABLE', `${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
