// The server's status: loaded models, memory in use against the budget (--max-memory), requests
// active and queued, and a live chart of generated tokens/s, from /metrics polled every second.
import { useEffect, useRef, useState } from 'preact/hooks';
import { metrics, type LoadedListing } from '../api';
import { formatBytes, formatCount, shortName } from './format';
import { readStats, tokensPerSecond, type StatsReading } from './server-stats';

const POLL_MS = 1000;
/** Points on the chart: the last minute. */
const HISTORY = 60;

export function StatusPanel({ loaded, maxMemory }: { loaded: LoadedListing[]; maxMemory: number | undefined }) {
  const [reading, setReading] = useState<StatsReading | undefined>();
  const [rates, setRates] = useState<number[]>([]);
  const [error, setError] = useState('');
  const last = useRef<StatsReading | undefined>(undefined);

  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      try {
        const next = readStats(await metrics(), performance.now());
        if (stopped) return;
        const prev = last.current;
        last.current = next;
        setReading(next);
        setError('');
        if (prev) setRates((r) => [...r, tokensPerSecond(prev, next)].slice(-HISTORY));
      } catch (e) {
        if (!stopped) setError(`Status unavailable: ${(e as Error).message}`);
      }
    };
    void poll();
    const timer = setInterval(poll, POLL_MS);
    return () => { stopped = true; clearInterval(timer); };
  }, []);

  const used = loaded.reduce((a, m) => a + m.size, 0);
  const share = maxMemory ? Math.min(1, used / maxMemory) : 0;
  const now = rates.at(-1) ?? 0;
  return (
    <section class="status-panel" aria-labelledby="status-title">
      <h2 id="status-title">Server status</h2>
      {error && <p class="error" role="alert">{error}</p>}
      <dl class="status-figures">
        <div><dt>Loaded models</dt><dd data-stat="loaded">{loaded.length}</dd></div>
        <div><dt>Requests active</dt><dd data-stat="active">{reading ? reading.active : '—'}</dd></div>
        <div><dt>Requests queued</dt><dd data-stat="queued">{reading ? reading.queued : '—'}</dd></div>
        <div><dt>Tokens generated</dt><dd data-stat="tokens">{reading ? formatCount(reading.generatedTokens) : '—'}</dd></div>
      </dl>
      <div class="memory">
        <div class="memory-label" id="memory-label">
          Memory in use: <span data-stat="memory">{formatBytes(used)}</span>
          {maxMemory ? <> of {formatBytes(maxMemory)} budget</> : null}
        </div>
        {maxMemory ? (
          <div class="gauge" role="meter" aria-labelledby="memory-label" aria-valuemin={0} aria-valuemax={maxMemory}
            aria-valuenow={used} aria-valuetext={`${formatBytes(used)} of ${formatBytes(maxMemory)}`}>
            <div class="gauge-fill" style={{ width: `${(share * 100).toFixed(1)}%` }} />
          </div>
        ) : null}
        {loaded.length > 0 && (
          <ul class="loaded-list">
            {loaded.map((m) => <li key={m.name}>{shortName(m.name)}: {formatBytes(m.size)}</li>)}
          </ul>
        )}
      </div>
      <figure class="rate-chart">
        <figcaption>
          Generated tokens/s: <span data-stat="rate">{now.toFixed(1)}</span> now,{' '}
          <span data-stat="peak">{Math.max(0, ...rates).toFixed(1)}</span> peak in the last minute
        </figcaption>
        <RateChart rates={rates} />
      </figure>
    </section>
  );
}

const W = 300, H = 80;

/** A line of the last HISTORY readings, scaled to the highest (at least 1 token/s). */
function RateChart({ rates }: { rates: number[] }) {
  const top = Math.max(1, ...rates);
  const x = (i: number) => (W * (i + HISTORY - rates.length)) / (HISTORY - 1);
  const y = (v: number) => H - 2 - ((H - 4) * v) / top;
  const points = rates.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const peak = rates.length ? Math.max(...rates) : 0;
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img"
      aria-label={`Tokens per second over the last ${HISTORY} seconds: now ${(rates.at(-1) ?? 0).toFixed(1)}, peak ${peak.toFixed(1)}`}>
      <line x1="0" y1={H - 2} x2={W} y2={H - 2} class="chart-axis" />
      {rates.length > 1 && <polygon points={`${x(0).toFixed(1)},${H - 2} ${points} ${W},${H - 2}`} class="chart-area" />}
      {rates.length > 1 && <polyline points={points} class="chart-line" fill="none" />}
      <text x="4" y="12" class="chart-scale">{top.toFixed(top < 10 ? 1 : 0)} tok/s</text>
    </svg>
  );
}
