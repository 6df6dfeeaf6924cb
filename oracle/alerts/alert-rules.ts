// Fleet-wide alert detectors (issue 7 §3, docs/operations.md §Alerts). Pure: they are fed one count
// per window and say whether to alert; alert-monitor.ts does the IO.
//
// Both keep a baseline as an exponentially weighted moving average of past windows. The baseline
// does not learn while an alert is active, so a long outage does not become the new normal and the
// alert does not silently clear itself; each alert fires once per episode and re-arms on recovery.

export type RateDropRules = {
  /** Alert when the window's count is below dropRatio × baseline (e.g. 0.5: a 50 % drop). */
  readonly dropRatio: number;
  /** Ignore the detector until the baseline reaches this many heartbeats per window (a tiny fleet is noise). */
  readonly minBaseline: number;
  /** Windows needed before the baseline is trusted. */
  readonly warmupWindows: number;
  /** EWMA weight of the newest window. */
  readonly alpha: number;
};

export type RateVerdict = { readonly kind: 'none' } | { readonly kind: 'drop' | 'recovered'; readonly count: number; readonly baseline: number };

export class RateDropDetector {
  private baseline: number | undefined;
  private windows = 0;
  private dropped = false;

  constructor(private readonly rules: RateDropRules) {}

  get currentBaseline(): number | undefined {
    return this.baseline;
  }

  observe(count: number): RateVerdict {
    const b = this.baseline;
    const ready = b !== undefined && this.windows >= this.rules.warmupWindows && b >= this.rules.minBaseline;
    if (this.dropped && b !== undefined) {
      // Recovered once back above the midpoint between the drop threshold and the baseline
      // (hysteresis: a rate hovering at the threshold does not alert on every window).
      if (count >= b * (this.rules.dropRatio + (1 - this.rules.dropRatio) / 2)) {
        this.dropped = false;
        this.learn(count);
        return { kind: 'recovered', count, baseline: b };
      }
      return { kind: 'none' };
    }
    if (ready && count < b * this.rules.dropRatio) {
      this.dropped = true;
      return { kind: 'drop', count, baseline: b };
    }
    this.learn(count);
    return { kind: 'none' };
  }

  private learn(count: number): void {
    this.windows += 1;
    this.baseline = this.baseline === undefined ? count : this.rules.alpha * count + (1 - this.rules.alpha) * this.baseline;
  }
}

export type SpikeRules = {
  /** A window needs at least this many rejections of one reason to alert. */
  readonly minCount: number;
  /** … and at least factor × that reason's baseline. */
  readonly factor: number;
  readonly alpha: number;
};

export type SpikeVerdict = { readonly reason: string; readonly count: number; readonly baseline: number };

export class RejectionSpikeDetector {
  private readonly baselines = new Map<string, number>();
  private readonly active = new Set<string>();

  constructor(private readonly rules: SpikeRules) {}

  /** Counts per reason for one window (reasons absent from the map had zero); returns new spikes. */
  observe(counts: ReadonlyMap<string, number>): SpikeVerdict[] {
    const spikes: SpikeVerdict[] = [];
    const reasons = new Set([...this.baselines.keys(), ...this.active, ...counts.keys()]);
    for (const reason of reasons) {
      const count = counts.get(reason) ?? 0;
      const base = this.baselines.get(reason) ?? 0;
      // A reason never seen before has baseline 0: the floor of 1 keeps factor × baseline meaningful.
      const spiking = count >= this.rules.minCount && count >= this.rules.factor * Math.max(1, base);
      if (spiking) {
        if (!this.active.has(reason)) {
          this.active.add(reason);
          spikes.push({ reason, count, baseline: base });
        }
        continue;
      }
      this.active.delete(reason);
      this.baselines.set(reason, this.rules.alpha * count + (1 - this.rules.alpha) * base);
    }
    return spikes;
  }
}
