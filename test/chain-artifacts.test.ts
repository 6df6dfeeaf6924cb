// The committed contract artifacts (contracts/build/*.json) are exactly what contracts/compile.ts
// produces from contracts/*.sol with the pinned npm solc: nobody can change a .sol file and forget
// the artifacts the oracle deploys. If this fails: npx tsx contracts/compile.ts
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { artifactPath, artifactText, compileContracts, CONTRACTS } from '../contracts/compile.ts';

describe('contracts/build artifacts', () => {
  it('match a fresh solc-js compile byte for byte', () => {
    const built = compileContracts();
    for (const name of CONTRACTS) {
      expect(readFileSync(artifactPath(name), 'utf8'), `${name}.json is stale: run npx tsx contracts/compile.ts`).toBe(artifactText(built[name]));
      expect(built[name].bytecode.length).toBeGreaterThan(1000);
    }
  }, 180_000);
});
