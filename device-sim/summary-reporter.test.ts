// The live summary line: rewritten in place on a terminal, periodic full lines otherwise.
import { describe, expect, it, vi } from 'vitest';
import { StatsRecorder, formatSummary } from './fleet-stats.ts';
import { startSummary } from './summary-reporter.ts';

function recorder(): StatsRecorder {
  const r = new StatsRecorder(3);
  r.connected('honest');
  r.connected('forge');
  r.disconnected('forge');
  r.sent('honest', 5);
  r.sent('forge', 2);
  for (let i = 0; i < 6; i++) r.acknowledged(i < 5 ? 'honest' : 'forge');
  r.rejected('forge', 'HB_BAD_SIGNATURE');
  r.rejected('forge', 'HB_BAD_SIGNATURE');
  r.rejected('burst', 'HB_RATE_LIMITED');
  r.refused('skew', 4);
  r.onboardFailed('honest', 'REG_UNKNOWN_MAKER');
  return r;
}

describe('summary line', () => {
  it('shows connected, sent, acked, rejections by reason, refusals and onboarding failures', () => {
    const s = recorder().snapshot();
    expect(formatSummary(s)).toBe(
      'sim 3 devices · connected 1 · sent 7 · acked 6 · rejected 3 (HB_BAD_SIGNATURE=2 HB_RATE_LIMITED=1) · connect refused 1 · onboard failed 1 (REG_UNKNOWN_MAKER=1)',
    );
    expect(s.byBehaviour.forge).toMatchObject({ connected: 0, connects: 1, sent: 2, acknowledged: 1, rejected: { HB_BAD_SIGNATURE: 2 } });
    expect(s.byBehaviour.honest?.rejected).toEqual({});
  });

  it('rewrites one line on a TTY and prints timestamped lines otherwise', () => {
    vi.useFakeTimers();
    try {
      const r = recorder();
      const tty: string[] = [];
      const a = startSummary(() => r.snapshot(), { isTTY: true, write: (t) => tty.push(t) });
      vi.advanceTimersByTime(3000);
      a.stop();
      expect(tty).toHaveLength(4);
      expect(tty.slice(0, 3).every((t) => t.startsWith('\r\x1b[K') && !t.endsWith('\n'))).toBe(true);
      expect(tty[3]!.endsWith('\n')).toBe(true);

      const log: string[] = [];
      const b = startSummary(() => r.snapshot(), { isTTY: false, write: (t) => log.push(t) }, 10_000);
      vi.advanceTimersByTime(25_000);
      b.stop();
      expect(log).toHaveLength(3);
      expect(log.every((t) => /^\d{4}-\d\d-\d\dT[\d:.]+Z sim 3 devices .*\n$/.test(t))).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
