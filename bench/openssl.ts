// The machine's Ed25519 verify limit, measured in the same run: `openssl speed ed25519`, one process
// per core for the multi-core figure (OpenSSL's `-multi`).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Verifies per second reported by `openssl speed` (summed over `multi` processes). */
export async function opensslVerifyRate(seconds: number, multi = 1): Promise<number> {
  const args = ['speed', '-seconds', String(seconds), ...(multi > 1 ? ['-multi', String(multi)] : []), 'ed25519'];
  const { stdout } = await run('openssl', args, { maxBuffer: 1 << 20 });
  // Single: " 253 bits EdDSA (Ed25519)   0.0001s   0.0002s  14813.1   5775.1"
  // Multi:  "+F6:...:Ed25519:<sign s>:<verify s>" lines summed into the same table shape.
  const line = stdout.split('\n').find((l) => /EdDSA \(Ed25519\)/.test(l));
  if (line === undefined) throw new Error(`could not parse openssl speed output:\n${stdout}`);
  const nums = line.trim().split(/\s+/).map(Number).filter((n) => Number.isFinite(n));
  const verify = nums[nums.length - 1];
  if (verify === undefined || !(verify > 0)) throw new Error(`could not parse openssl verify rate: ${line}`);
  return verify;
}
