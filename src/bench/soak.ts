// The load soak (issue 17): many concurrent streaming clients against one model served by a
// `minerva serve` child process on loopback — OpenAI and Ollama, chat and completion, some hanging
// up midway, some asking more tokens than the context holds, more clients than slots + queue so
// that some get 429 and retry after its Retry-After. Checked: the server stays up, every finished
// stream is complete and, for greedy requests, equal to the same request run alone, the gauges
// return to zero (no slot, KV position or queue entry leaks), the server's count of refusals
// equals the clients', and the server's RSS after warm-up stays flat. Reported: requests/s, time to
// first token, latency, tokens/s, RSS.
import { percentile } from './measure.js';
import { APIS, attempt, PROMPTS, referenceKey, type SoakRequest } from './soak-requests.js';
import { Rng } from '../engine/rng.js';
import { sleep } from '../hub/retry.js';
import { readMemory, sampleMemory, scrapeMetrics, startChildServer, type ChildServer, type MemorySample, type ServerLaunch } from './soak-server.js';

/** The server (model, port, --parallel, --max-queue, --ctx-size, …) and the clients. --parallel + --max-queue below `clients` makes some clients get 429. */
export interface SoakOptions extends ServerLaunch {
  /** Clients streaming at once. */
  clients: number;
  /** Requests in all (each retried after a 429 until it is served). */
  requests: number;
  /** max_tokens / num_predict of an ordinary request. */
  maxTokens: number;
  /** Shares of requests that hang up midway, ask beyond the context, and sample (temperature 0.8, not compared). */
  abortShare: number;
  overContextShare: number;
  sampledShare: number;
  /** Requests finished before the RSS baseline is taken. */
  warmup: number;
  /**
   * MiB the server's RSS may grow from warm-up to the end. Fixed, not a share of the RSS: a leak
   * costs bytes per request whatever the model's size, while the weights, which are most of the
   * RSS, do not grow. It must stay above the swing of the V8 heap between collections (±10 MiB
   * measured on the demo model), and 32 MiB over the 9,000 requests after a 1,000-request warm-up
   * catches a leak of 3.7 KB a request — a stream's chunks or a sequence's state kept alive.
   */
  rssGrowthLimitMiB: number;
  /** A stream with no byte for this long is a hang. */
  stallMs: number;
  /** Seed of the request mix. */
  seed: number;
}

export const SOAK_DEFAULTS = {
  clients: 200, requests: 10_000, port: 0, parallel: 8, maxQueue: 32, ctxSize: 128, maxTokens: 24,
  abortShare: 0.2, overContextShare: 0.1, sampledShare: 0.1, rssGrowthLimitMiB: 32, stallMs: 60_000, seed: 1,
} as const;

/** How much of the run each RSS average covers: the first tenth after warm-up, and the last tenth. */
const RSS_WINDOW_SHARE = 0.1;
/** Most 429s one request takes before the client gives up (a failure: the queue never drained). */
const MAX_REJECTIONS = 1000;
/** How long the gauges may take to settle once every client is done (an aborted stream ends at the scheduler's next step). */
const SETTLE_MS = 10_000;
/** prom-client's default metric of the V8 heap in use, summed over its spaces' labels (none: one sample). */
const HEAP_USED = 'minerva_nodejs_heap_size_used_bytes';

export interface SoakProgress {
  done: number;
  total: number;
  completed: number;
  aborted: number;
  rejected: number;
  errors: number;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SoakReport {
  options: SoakOptions;
  server: { url: string; model: string; pid: number };
  wallSeconds: number;
  requests: number;
  requestsPerSecond: number;
  /** Streams read to their end, planned hang-ups, requests that failed (status, network, stall, shape). */
  completed: number;
  aborted: number;
  errors: number;
  /** 429 responses, and the requests that got at least one. */
  rejected: number;
  requestsRejected: number;
  /** Greedy completed streams compared with their solo reference. */
  compared: number;
  /** From sending the accepted attempt to its first text, ms (completed and aborted streams). */
  ttftMs: { p50: number; p99: number; max: number };
  /** From sending the accepted attempt to the stream's end, ms (completed streams). */
  latencyMs: { p50: number; p99: number; max: number };
  /** Tokens the server generated during the run (its counter), per second of wall time. */
  generatedTokens: number;
  tokensPerSecond: number;
  /** Bytes; undefined where /proc is absent. */
  rss?: {
    afterWarmup: number; end: number; peak: number; growth: number; limit: number; samples: number;
    /** RSS (MiB) against requests finished, at most 50 points: a leak is a slope. */
    series: { done: number; rssMiB: number }[];
  };
  /** The server's V8 heap in use (its /metrics), bytes, when warm-up ended and at the end: a leak of JS objects shows here first. */
  heapUsed?: { afterWarmup: number; end: number };
  checks: Check[];
  /** The names and details of the failed checks. */
  failures: string[];
}

/** A deterministic request mix: APIs in turn, prompts, hang-ups, lengths and sampling drawn from `seed`. */
export function soakPlan(o: Pick<SoakOptions, 'requests' | 'ctxSize' | 'maxTokens' | 'abortShare' | 'overContextShare' | 'sampledShare' | 'seed'>): SoakRequest[] {
  const rng = new Rng(o.seed);
  const random = () => rng.next();
  return Array.from({ length: o.requests }, (_, i) => {
    const overContext = random() < o.overContextShare;
    const abort = random() < o.abortShare;
    const r: SoakRequest = {
      api: APIS[i % APIS.length]!, prompt: Math.floor(random() * PROMPTS.length), greedy: random() >= o.sampledShare,
      seed: Math.floor(random() * 2 ** 32), maxTokens: overContext ? 2 * o.ctxSize : o.maxTokens, overContext,
    };
    // A quarter of the hang-ups come early, at 0 to 250 ms, most of them while queued or before
    // the first token; the others after 1 to 5 pieces of text (a chat's first chunk, the role, is empty).
    const early = random() < 0.25, at = random();
    if (abort && early) r.abortAfterMs = Math.floor(at * 250);
    else if (abort) r.abortAfter = 1 + Math.floor(at * 5);
    return r;
  });
}

/** One request as a client runs it: attempts until one is not a 429, waiting each Retry-After. */
interface Served {
  kind: 'completed' | 'aborted' | 'error';
  rejections: number;
  /** 429s without a usable Retry-After. */
  badRetryAfter: string[];
  /** Hung up before the response's status came. */
  beforeHeaders?: boolean;
  ttftMs?: number;
  totalMs?: number;
  text?: string;
  finish?: string;
  problem?: string;
}

async function serve(base: string, model: string, r: SoakRequest, stallMs: number): Promise<Served> {
  const badRetryAfter: string[] = [];
  for (let rejections = 0; ; rejections++) {
    const a = await attempt(base, model, r, stallMs);
    if (a.kind === 'rejected') {
      const seconds = retryAfterSeconds(a.retryAfter);
      if (seconds === undefined) badRetryAfter.push(`Retry-After ${JSON.stringify(a.retryAfter)} (body ${a.body.slice(0, 200)})`);
      if (rejections + 1 >= MAX_REJECTIONS) return { kind: 'error', rejections: rejections + 1, badRetryAfter, problem: `still refused after ${MAX_REJECTIONS} tries` };
      await sleep(1000 * Math.min(seconds ?? 1, 30));
      continue;
    }
    if (a.kind === 'error') return { kind: 'error', rejections, badRetryAfter, problem: a.message };
    if (a.kind === 'aborted') return { kind: 'aborted', rejections, badRetryAfter, ttftMs: a.ttftMs, beforeHeaders: a.beforeHeaders };
    return { kind: 'completed', rejections, badRetryAfter, ttftMs: a.ttftMs, totalMs: a.totalMs, text: a.text, finish: a.finish, problem: a.problem };
  }
}

/** Retry-After as seconds: a non-negative integer, or an HTTP date; undefined when missing or malformed. */
export function retryAfterSeconds(v: string | null): number | undefined {
  if (v === null) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

/** Runs the soak; resolves to its report (report.failures empty when every check passed). */
export async function runSoak(o: SoakOptions, onProgress?: (p: SoakProgress) => void): Promise<SoakReport> {
  const plan = soakPlan(o);
  const server = await startChildServer({
    model: o.model, port: o.port, parallel: o.parallel, maxQueue: o.maxQueue, ctxSize: o.ctxSize, threads: o.threads, backend: o.backend,
  });
  try {
    return await soakServer(o, plan, server, onProgress);
  } finally {
    await server.stop();
  }
}

async function soakServer(o: SoakOptions, plan: SoakRequest[], server: ChildServer, onProgress?: (p: SoakProgress) => void): Promise<SoakReport> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  // References first, one request at a time: each greedy (API, prompt, length) alone.
  const references = new Map<string, { text: string; finish: string }>();
  for (const r of plan) {
    const key = referenceKey(r);
    if (!r.greedy || references.has(key)) continue;
    const solo = await attempt(server.url, server.model, { ...r, abortAfter: undefined, abortAfterMs: undefined }, o.stallMs);
    if (solo.kind !== 'completed' || solo.problem) {
      throw new Error(`the solo reference run of ${key} failed: ${JSON.stringify(solo)}\n${server.log()}`);
    }
    references.set(key, { text: solo.text, finish: solo.finish });
  }
  const before = await scrapeMetrics(server.url);

  const progress: SoakProgress = { done: 0, total: plan.length, completed: 0, aborted: 0, rejected: 0, errors: 0 };
  const memory = sampleMemory(server.pid, 250, () => progress.done);
  // The queue and the slots, sampled while the clients run: together they hold at most their limits
  // (the queue alone may hold a few more for a moment: those about to take a slot a step freed).
  const most = { queue: 0, active: 0, both: 0 };
  let sampling = true;
  const gaugeSampler = (async () => {
    while (sampling) {
      const m = await scrapeMetrics(server.url).catch(() => undefined);
      most.queue = Math.max(most.queue, m?.get('minerva_queue_depth') ?? 0);
      most.active = Math.max(most.active, m?.get('minerva_active_sequences') ?? 0);
      most.both = Math.max(most.both, (m?.get('minerva_queue_depth') ?? 0) + (m?.get('minerva_active_sequences') ?? 0));
      await sleep(100);
    }
  })();
  const served: Served[] = new Array(plan.length);
  let heapAtWarmup: Promise<number | undefined> | undefined;
  let next = 0;
  const start = performance.now();
  const client = async () => {
    while (next < plan.length && server.exited() === undefined) {
      const i = next++;
      const s = await serve(server.url, server.model, plan[i]!, o.stallMs);
      served[i] = s;
      progress.done++;
      progress.rejected += s.rejections;
      if (s.kind === 'completed') progress.completed++;
      else if (s.kind === 'aborted') progress.aborted++;
      else progress.errors++;
      if (progress.done === Math.min(o.warmup, plan.length - 1) + 1) {
        heapAtWarmup = scrapeMetrics(server.url).then((m) => m.get(HEAP_USED), () => undefined);
      }
      onProgress?.({ ...progress });
    }
  };
  await Promise.all(Array.from({ length: o.clients }, client));
  const wallMs = performance.now() - start;
  sampling = false;
  await gaugeSampler;

  // The gauges settle once the scheduler has seen the last hang-up.
  const gauges = ['minerva_queue_depth', 'minerva_active_sequences', 'minerva_kv_cache_tokens'];
  let after = await scrapeMetrics(server.url).catch(() => new Map<string, number>());
  for (const deadline = Date.now() + SETTLE_MS; gauges.some((g) => (after.get(g) ?? 0) !== 0) && Date.now() < deadline;) {
    await sleep(100);
    after = await scrapeMetrics(server.url).catch(() => new Map<string, number>());
  }
  const endMemory = await readMemory(server.pid);
  await memory.stop();
  const health = await fetch(`${server.url}/health`).then((r) => r.status, (e: Error) => e.message);

  // The server stayed up.
  const exited = server.exited();
  check('server up', exited === undefined && health === 200,
    exited ? `the server ${exited}; its log:\n${server.log().slice(-3000)}` : `GET /health: ${health}`);

  // Every request was served: a finished stream, or a planned hang-up; nothing else.
  const missing = served.filter((s) => s === undefined).length;
  const errors = served.filter((s) => s?.kind === 'error');
  check('no failed requests', errors.length === 0 && missing === 0,
    `${errors.length} failed${missing ? `, ${missing} never sent` : ''}${examples(errors.map((s) => s.problem!))}`);

  // Every finished stream ended as it must.
  const completed = served.map((s, i) => ({ s, r: plan[i]! })).filter(({ s }) => s?.kind === 'completed');
  const broken = completed.filter(({ s }) => s.problem);
  check('streams complete', broken.length === 0, `${broken.length} of ${completed.length} finished streams malformed or cut short${examples(broken.map(({ r, s }) => `${r.api}: ${s.problem}`))}`);

  // Greedy streams equal their solo runs.
  const compared = completed.filter(({ r, s }) => r.greedy && !s.problem);
  const differ = compared.filter(({ r, s }) => {
    const ref = references.get(referenceKey(r))!;
    return s.text !== ref.text || s.finish !== ref.finish;
  });
  check('greedy = solo', differ.length === 0, `${differ.length} of ${compared.length} greedy streams differ from their solo run${examples(differ.map(({ r, s }) => {
    const ref = references.get(referenceKey(r))!;
    return `${referenceKey(r)}: got ${JSON.stringify(s.text)} (${s.finish}), alone ${JSON.stringify(ref.text)} (${ref.finish})`;
  }))}`);

  // Over-context requests stop at the context at the latest.
  const overs = completed.filter(({ r, s }) => r.overContext && !s.problem);
  const overLong = overs.filter(({ s }) => s.finish !== 'length' && s.finish !== 'stop');
  check('over-context requests end', overLong.length === 0, `${overs.length} finished over-context streams, ${overLong.length} without stop/length`);

  // 429s: each with a usable Retry-After; some there must be when clients outnumber slots + queue; the server counted the same.
  const rejected = served.reduce((n, s) => n + (s?.rejections ?? 0), 0);
  const badRetry = served.flatMap((s) => s?.badRetryAfter ?? []);
  check('429 with Retry-After', badRetry.length === 0, `${rejected} responses 429, ${badRetry.length} without a usable Retry-After${examples(badRetry)}`);
  // The clients start together: more first requests than slots + queue must overflow.
  const burst = Math.min(o.clients, plan.length);
  const overflow = burst > o.parallel + o.maxQueue;
  check('429 once the queue is full', !overflow || rejected > 0,
    overflow ? `${burst} clients > ${o.parallel} slots + ${o.maxQueue} queued: ${rejected} refusals` : `${burst} clients fit in the slots and the queue (not checked)`);
  check('queue and slots bounded', most.both <= o.maxQueue + o.parallel && most.active <= o.parallel,
    `at most ${most.both} queued or running (--max-queue ${o.maxQueue} + --parallel ${o.parallel}), ${most.queue} queued, ${most.active} running; sampled every 100 ms`);
  const counted = (after.get('minerva_rejected_requests_total') ?? 0) - (before.get('minerva_rejected_requests_total') ?? 0);
  const counted429 = (after.get('minerva_http_requests_total{status="429"}') ?? 0) - (before.get('minerva_http_requests_total{status="429"}') ?? 0);
  // A client that hung up before the status came may have been refused unseen: the server's count may exceed the clients' by those.
  const unseen = served.filter((s) => s?.beforeHeaders).length;
  const countOk = (n: number) => n >= rejected && n <= rejected + unseen;
  check('server counts the 429s', countOk(counted) && countOk(counted429),
    `clients saw ${rejected} (and hung up on ${unseen} before the status); minerva_rejected_requests_total +${counted}, minerva_http_requests_total{status="429"} +${counted429}`);

  // Nothing leaks: no request running or waiting, no KV position held.
  const leaks = gauges.map((g) => `${g} ${after.get(g) ?? 0}`);
  check('gauges back to zero', gauges.every((g) => (after.get(g) ?? 0) === 0), `${SETTLE_MS / 1000} s after the last client: ${leaks.join(', ')}`);
  const status5xx = [...after.entries()].filter(([k, v]) => /status="5\d\d"/.test(k) && v > 0);
  check('no 5xx', status5xx.length === 0, status5xx.length ? status5xx.map(([k, v]) => `${k} ${v}`).join(', ') : 'none');

  // RSS flat after warm-up.
  let rss: SoakReport['rss'];
  const samples = [...memory.samples];
  if (endMemory) samples.push({ t: wallMs, done: plan.length, rss: endMemory.rss });
  if (endMemory && samples.length > 0) {
    const window = Math.max(1, Math.floor(plan.length * RSS_WINDOW_SHARE));
    const warmup = Math.min(o.warmup, plan.length - 1);
    const afterWarmup = meanRss(samples, warmup, warmup + window) ?? endMemory.rss;
    const end = meanRss(samples, plan.length - window, plan.length + 1) ?? endMemory.rss;
    const limit = o.rssGrowthLimitMiB * 2 ** 20;
    const step = Math.max(1, Math.ceil(samples.length / 50));
    const series = samples.filter((_, i) => i % step === 0 || i === samples.length - 1).map((x) => ({ done: x.done, rssMiB: Number(mib(x.rss)) }));
    rss = { afterWarmup, end, peak: endMemory.peak, growth: end - afterWarmup, limit, samples: samples.length, series };
    check('RSS flat', end - afterWarmup <= limit,
      `mean RSS ${mib(afterWarmup)} MiB over requests ${warmup}..${warmup + window}, ${mib(end)} MiB over the last ${window}: `
      + `${end >= afterWarmup ? '+' : ''}${mib(end - afterWarmup)} MiB, ${((end - afterWarmup) / Math.max(1, plan.length - warmup - window)).toFixed(0)} B a request `
      + `(limit ${mib(limit)} MiB)`);
  }

  const heapWarm = await heapAtWarmup;
  const sorted = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const ttft = sorted(served.map((s) => s?.ttftMs));
  const latency = sorted(completed.map(({ s }) => s.totalMs));
  const generatedTokens = (after.get('minerva_generated_tokens_total') ?? 0) - (before.get('minerva_generated_tokens_total') ?? 0);
  return {
    options: o, server: { url: server.url, model: server.model, pid: server.pid },
    wallSeconds: wallMs / 1000, requests: plan.length, requestsPerSecond: (progress.done * 1000) / wallMs,
    completed: progress.completed, aborted: progress.aborted, errors: progress.errors,
    rejected, requestsRejected: served.filter((s) => (s?.rejections ?? 0) > 0).length, compared: compared.length,
    ttftMs: { p50: percentile(ttft, 0.5), p99: percentile(ttft, 0.99), max: ttft.at(-1) ?? NaN },
    latencyMs: { p50: percentile(latency, 0.5), p99: percentile(latency, 0.99), max: latency.at(-1) ?? NaN },
    generatedTokens, tokensPerSecond: (generatedTokens * 1000) / wallMs,
    ...(rss ? { rss } : {}),
    ...(heapWarm !== undefined && after.has(HEAP_USED) ? { heapUsed: { afterWarmup: heapWarm, end: after.get(HEAP_USED)! } } : {}),
    checks, failures: checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`),
  };
}

/** Mean RSS of the samples taken while `done` was in [from, to). */
function meanRss(samples: readonly MemorySample[], from: number, to: number): number | undefined {
  const xs = samples.filter((s) => s.done >= from && s.done < to).map((s) => s.rss);
  return xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** The first few of a list, for a check's detail. */
function examples(xs: readonly string[], n = 3): string {
  return xs.length === 0 ? '' : `; e.g.\n    ${xs.slice(0, n).map((x) => x.slice(0, 600)).join('\n    ')}`;
}

/** The report as a table, then each check. */
export function formatSoakReport(r: SoakReport): string {
  const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : '–');
  const o = r.options;
  const rows: [string, string][] = [
    ['server', `${r.server.model} at ${r.server.url}, --parallel ${o.parallel} --max-queue ${o.maxQueue} --ctx-size ${o.ctxSize}${o.threads ? ` --threads ${o.threads}` : ''}`],
    ['clients × requests', `${o.clients} × ${r.requests} in ${r.wallSeconds.toFixed(1)} s`],
    ['requests/s', r.requestsPerSecond.toFixed(1)],
    ['completed / aborted / failed', `${r.completed} / ${r.aborted} / ${r.errors}`],
    ['429 responses (requests)', `${r.rejected} (${r.requestsRejected})`],
    ['greedy streams compared', String(r.compared)],
    ['time to first token p50 / p99 / max', `${ms(r.ttftMs.p50)} / ${ms(r.ttftMs.p99)} / ${ms(r.ttftMs.max)}`],
    ['latency p50 / p99 / max', `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)}`],
    ['generated tokens/s', `${r.tokensPerSecond.toFixed(0)} (${r.generatedTokens} tokens)`],
  ];
  if (r.rss) {
    rows.push(['peak RSS', `${mib(r.rss.peak)} MiB`],
      ['RSS after warm-up → end', `${mib(r.rss.afterWarmup)} → ${mib(r.rss.end)} MiB (${r.rss.growth >= 0 ? '+' : ''}${mib(r.rss.growth)}, limit +${mib(r.rss.limit)})`]);
  } else {
    rows.push(['RSS', 'not measured (no /proc)']);
  }
  if (r.heapUsed) rows.push(['V8 heap used after warm-up → end', `${mib(r.heapUsed.afterWarmup)} → ${mib(r.heapUsed.end)} MiB`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push('', ...r.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`));
  return lines.join('\n') + '\n';
}
