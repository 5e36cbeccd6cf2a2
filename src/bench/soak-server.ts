// The server under soak: `minerva serve` as a child process (so its memory is its own, read from
// /proc/<pid>/status), over a temporary models folder holding one model, on a loopback port; and
// what the soak reads from it (its RSS over time, its Prometheus gauges).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../hub/retry.js';

export interface ServerLaunch {
  /** A .gguf file or a Hugging Face model folder; linked into a fresh models folder. */
  model: string;
  /** 0: a free port the system picks. */
  port: number;
  parallel: number;
  maxQueue: number;
  ctxSize: number;
  threads?: number;
  backend?: string;
}

export interface ChildServer {
  url: string;
  pid: number;
  /** The one model's name, as /v1/models lists it. */
  model: string;
  /** Set (with how) once the process has exited. */
  exited(): string | undefined;
  /** The last lines it wrote to stderr (its log is --quiet: errors only). */
  log(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the models folder. */
  stop(graceMs?: number): Promise<void>;
}

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Starts the server and waits until /ready answers 200 and the model is listed. */
export async function startChildServer(o: ServerLaunch, startupMs = 60_000): Promise<ChildServer> {
  const model = path.resolve(o.model);
  // A dangling link would leave the folder empty, and the server would offer its demo model instead.
  await stat(model).catch((e: Error) => { throw new Error(`the model to serve, ${model}: ${e.message}`); });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-soak-'));
  await symlink(model, path.join(dir, path.basename(model)));
  const args = [
    MAIN, 'serve', '--host', '127.0.0.1', '--port', String(o.port), '--models-dir', dir,
    '--parallel', String(o.parallel), '--max-queue', String(o.maxQueue), '--ctx-size', String(o.ctxSize),
    // Never unloaded while idle: an unload and reload would show in the RSS as a leak or its absence.
    '--keep-alive', '-1', '--quiet',
    ...(o.threads ? ['--threads', String(o.threads)] : []), ...(o.backend ? ['--backend', o.backend] : []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '', exit: string | undefined;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => { stderr = (stderr + s).slice(-20_000); });
  // A soak that exits (process.exit, a signal the script turns into one) takes its server along.
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
    process.off('exit', orphan);
    resolve();
  }));
  const cleanup = async () => {
    if (exit === undefined) { child.kill('SIGKILL'); await exited; }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // The address is the one serve prints ("… at http://127.0.0.1:PORT on the … backend").
    const deadline = Date.now() + startupMs;
    let url: string | undefined;
    while (!url) {
      if (exit !== undefined) throw new Error(`minerva serve ${exit} while starting:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`minerva serve did not start within ${startupMs} ms:\n${stderr}`);
      url = / at (http:\/\/127\.0\.0\.1:\d+) /.exec(stderr)?.[1];
      if (!url) await sleep(50);
    }
    while ((await fetch(`${url}/ready`).then((r) => r.status, () => 0)) !== 200) {
      if (Date.now() > deadline) throw new Error(`minerva serve at ${url} was not ready within ${startupMs} ms:\n${stderr}`);
      await sleep(50);
    }
    const list = await (await fetch(`${url}/v1/models`)).json() as { data?: { id?: unknown }[] };
    const names = (list.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
    if (names.length !== 1) throw new Error(`the models folder should list one model, it lists ${JSON.stringify(names)}`);
    return {
      url, pid: child.pid!, model: names[0]!,
      exited: () => exit,
      log: () => stderr,
      async stop(graceMs = 10_000) {
        if (exit === undefined) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

export interface MemorySample {
  /** ms since the sampler started. */
  t: number;
  /** Requests finished by then. */
  done: number;
  /** Resident set, bytes (VmRSS). */
  rss: number;
}

/** The process's resident set and its peak (VmRSS, VmHWM), bytes; undefined where /proc is absent (not Linux) or the process is gone. */
export async function readMemory(pid: number): Promise<{ rss: number; peak: number } | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const rss = kb('VmRSS'), peak = kb('VmHWM');
  return Number.isFinite(rss) && Number.isFinite(peak) ? { rss, peak } : undefined;
}

/** Samples a process's RSS every `everyMs` until stopped, tagging each sample with done(). */
export function sampleMemory(pid: number, everyMs: number, done: () => number): { samples: MemorySample[]; stop(): Promise<void> } {
  const samples: MemorySample[] = [];
  const start = performance.now();
  let running = true;
  const loop = (async () => {
    while (running) {
      const m = await readMemory(pid);
      if (m) samples.push({ t: performance.now() - start, done: done(), rss: m.rss });
      await sleep(everyMs);
    }
  })();
  return { samples, async stop() { running = false; await loop; } };
}

/**
 * Prometheus text → the sum of each metric's samples over its labels (one model is loaded, so a
 * per-model gauge's sum is its value). A gauge with no sample (no model loaded) is absent.
 */
export function metricSums(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const key = m[1]! + (m[1] === 'minerva_http_requests_total' ? statusLabel(m[2]) : '');
    sums.set(key, (sums.get(key) ?? 0) + Number(m[3]));
  }
  return sums;
}

/** HTTP request counts are summed per status: minerva_http_requests_total{status="429"}. */
function statusLabel(labels: string | undefined): string {
  const status = /status="(\d+)"/.exec(labels ?? '')?.[1];
  return status ? `{status="${status}"}` : '';
}

export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return metricSums(await res.text());
}

