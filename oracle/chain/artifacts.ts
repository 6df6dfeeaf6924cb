// The committed contract artifacts (contracts/build/*.json, written by contracts/compile.ts) and
// typed ethers interfaces for them. Read once; the oracle needs no Solidity compiler at run time.
import { readFileSync } from 'node:fs';
import { Interface, type InterfaceAbi } from 'ethers';

export type ContractArtifact = { readonly contractName: string; readonly abi: InterfaceAbi; readonly bytecode: string };

const cache = new Map<string, ContractArtifact>();

export function loadArtifact(name: 'RewardDistributor' | 'PulseTestToken'): ContractArtifact {
  let a = cache.get(name);
  if (a === undefined) {
    a = JSON.parse(readFileSync(new URL(`../../contracts/build/${name}.json`, import.meta.url), 'utf8')) as ContractArtifact;
    cache.set(name, a);
  }
  return a;
}

let distributorIface: Interface | undefined;

export function distributorInterface(): Interface {
  distributorIface ??= new Interface(loadArtifact('RewardDistributor').abi);
  return distributorIface;
}
