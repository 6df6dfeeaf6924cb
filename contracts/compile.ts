// Compiles contracts/*.sol with the npm `solc` package (solc-js, pinned by package.json) and writes
// contracts/build/<Contract>.json (abi, bytecode, deployedBytecode, compiler and settings). The
// artifacts are committed so the oracle and `pulse chain deploy` need no compiler at run time;
// test/chain-artifacts.test.ts recompiles and checks the committed files match byte for byte.
//
//   npx tsx contracts/compile.ts          write the artifacts
//   npx tsx contracts/compile.ts --check  exit 1 if the committed artifacts differ
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

export const BUILD_DIR = join(here, 'build');
/** Contracts whose artifacts are written (libraries and imports are not). */
export const CONTRACTS = ['RewardDistributor', 'PulseTestToken'] as const;
export type ContractName = (typeof CONTRACTS)[number];

export type Artifact = {
  readonly contractName: string;
  readonly sourceName: string;
  readonly compiler: string;
  readonly settings: unknown;
  readonly abi: unknown[];
  readonly bytecode: string;
  readonly deployedBytecode: string;
};

// Fixed settings: the artifacts must be reproducible. evmVersion is pinned rather than left to the
// compiler default so a solc upgrade cannot silently change the bytecode.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none' },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
} as const;

type SolcOutput = {
  errors?: { severity: string; formattedMessage: string }[];
  contracts: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string }; deployedBytecode: { object: string } } }>>;
};

type Solc = { version(): string; compile(input: string, callbacks: { import(path: string): { contents: string } | { error: string } }): string };

function findImport(path: string): { contents: string } | { error: string } {
  // OpenZeppelin (and any other package) resolved from node_modules; local sources from contracts/.
  for (const candidate of [join(root, 'node_modules', path), join(here, path)]) {
    try {
      return { contents: readFileSync(candidate, 'utf8') };
    } catch {
      // try the next location
    }
  }
  return { error: `not found: ${path}` };
}

export function compileContracts(): Record<ContractName, Artifact> {
  const solc = require('solc') as Solc;
  const sources: Record<string, { content: string }> = {};
  for (const f of readdirSync(here).filter((f) => f.endsWith('.sol')).sort()) {
    sources[f] = { content: readFileSync(join(here, f), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport })) as SolcOutput;
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const result = {} as Record<ContractName, Artifact>;
  for (const name of CONTRACTS) {
    const sourceName = `${name}.sol`;
    const c = out.contracts[sourceName]?.[name];
    if (c === undefined) throw new Error(`solc output has no ${sourceName}:${name}`);
    result[name] = {
      contractName: name,
      sourceName: `contracts/${sourceName}`,
      compiler: `solc-js ${solc.version()}`,
      settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion, metadata: SETTINGS.metadata },
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
  }
  return result;
}

export function artifactText(a: Artifact): string {
  return JSON.stringify(a, null, 2) + '\n';
}

export function artifactPath(name: ContractName): string {
  return join(BUILD_DIR, `${name}.json`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  const built = compileContracts();
  let differ = 0;
  mkdirSync(BUILD_DIR, { recursive: true });
  for (const name of CONTRACTS) {
    const text = artifactText(built[name]);
    if (check) {
      let old = '';
      try {
        old = readFileSync(artifactPath(name), 'utf8');
      } catch {
        // missing counts as different
      }
      if (old !== text) {
        console.error(`${artifactPath(name)} is out of date; run npx tsx contracts/compile.ts`);
        differ++;
      }
    } else {
      writeFileSync(artifactPath(name), text);
      console.log(`wrote ${artifactPath(name)} (${(built[name].deployedBytecode.length - 2) / 2} bytes deployed)`);
    }
  }
  process.exitCode = differ > 0 ? 1 : 0;
}
