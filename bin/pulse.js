#!/usr/bin/env node
// The `pulse` CLI entry. TypeScript sources run through tsx's loader, so `npx pulse …` works right
// after `npm install` in a fresh clone with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
