// JSON-RPC provider and key loading for the chain commands and the oracle's poster. The provider is
// created with a static network (chain id read once): ethers' default network detection retries
// forever in the background while an endpoint is down, which hides outages from the poster's own
// backoff (root-poster.ts).
import { readFileSync } from 'node:fs';
import { JsonRpcProvider, Network, Wallet } from 'ethers';
import { PulseError } from '../../shared/errors.ts';

export async function openChainProvider(rpcUrl: string): Promise<JsonRpcProvider> {
  let chainId: bigint;
  try {
    const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }) });
    const body = (await res.json()) as { result?: string };
    if (typeof body.result !== 'string') throw new Error(`eth_chainId answered ${JSON.stringify(body)}`);
    chainId = BigInt(body.result);
  } catch (e) {
    throw new PulseError('CHAIN_RPC_UNAVAILABLE', `${rpcUrl}: ${(e as Error).message}`, { cause: e });
  }
  return new JsonRpcProvider(rpcUrl, Network.from(chainId), { staticNetwork: true, pollingInterval: 1000 });
}

/** A 32-byte hex private key (0x optional, surrounding whitespace ignored) from a file or a variable. */
export function loadPrivateKey(source: { readonly file?: string; readonly env?: string }, env: NodeJS.ProcessEnv = process.env): string {
  let text: string | undefined;
  let where: string;
  if (source.file !== undefined) {
    where = `key file ${source.file}`;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (e) {
      throw new PulseError('CHAIN_BAD_KEY', `${where}: ${(e as Error).message}`);
    }
  } else if (source.env !== undefined) {
    where = `environment variable ${source.env}`;
    text = env[source.env];
  } else {
    throw new PulseError('CLI_USAGE', 'a signing key is needed: --key FILE or --key-env VAR');
  }
  const k = text?.trim().replace(/^0x/i, '');
  if (k === undefined || !/^[0-9a-fA-F]{64}$/.test(k)) throw new PulseError('CHAIN_BAD_KEY', `${where} does not hold a 32-byte hex private key`);
  return '0x' + k.toLowerCase();
}

export function walletFor(key: string, provider: JsonRpcProvider): Wallet {
  return new Wallet(key, provider);
}
