// The server's status as the models screen shows it, read from /metrics (Prometheus counters and
// gauges summed over models), and tokens/s computed from two readings of the generated-tokens
// counter.
import type { MetricSample } from '../api';

export interface StatsReading {
  /** performance.now() when read. */
  at: number;
  generatedTokens: number;
  active: number;
  queued: number;
}

const sum = (m: Map<string, MetricSample[]>, name: string) => (m.get(name) ?? []).reduce((a, s) => a + s.value, 0);

export function readStats(m: Map<string, MetricSample[]>, at: number): StatsReading {
  return {
    at,
    generatedTokens: sum(m, 'minerva_generated_tokens_total'),
    active: sum(m, 'minerva_active_sequences'),
    queued: sum(m, 'minerva_queue_depth'),
  };
}

/** Tokens per second between two readings (0 when the counter went back, e.g. a restarted server). */
export function tokensPerSecond(prev: StatsReading, next: StatsReading): number {
  const dt = (next.at - prev.at) / 1000;
  const dn = next.generatedTokens - prev.generatedTokens;
  return dt > 0 && dn > 0 ? dn / dt : 0;
}
