// The live one-line summary on stderr (issue 8 §1). On a terminal the line is rewritten in place
// every second; otherwise (a log file, CI) a full line is printed every `periodMs`, so logs stay
// readable and small.
import { formatSummary, type FleetStats } from './fleet-stats.ts';

export type SummaryStream = { readonly isTTY?: boolean; write(text: string): unknown };

export function startSummary(stats: () => FleetStats, out: SummaryStream = process.stderr, periodMs = 10_000): { stop(): void } {
  const tty = out.isTTY === true;
  const print = () => out.write(tty ? `\r\x1b[K${formatSummary(stats())}` : `${new Date().toISOString()} ${formatSummary(stats())}\n`);
  const timer = setInterval(print, tty ? 1000 : periodMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      // Leave the final state on its own line either way.
      out.write(tty ? `\r\x1b[K${formatSummary(stats())}\n` : `${new Date().toISOString()} ${formatSummary(stats())}\n`);
    },
  };
}
