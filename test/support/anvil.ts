// A real anvil node (npm @foundry-rs/anvil) per test file, on a free port (CONTRIBUTING.md §Tests:
// listen on port 0, nothing shared between files): the same launcher `pulse dev` uses
// (cli/dev/anvil-node.ts), with six funded accounts.
import { startAnvilNode, type AnvilNode } from '../../cli/dev/anvil-node.ts';

export type Anvil = AnvilNode;

export function startAnvil(extraArgs: readonly string[] = []): Promise<Anvil> {
  return startAnvilNode({ port: 0, accounts: 6, extraArgs });
}
