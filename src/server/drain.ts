// Graceful shutdown. Draining, the server takes no new work (/ready and every new request that
// would start some answer 503) while the requests already running go on; at the deadline each
// piece of work still running is stopped, and its response ends saying the server shut down
// (a last SSE chunk with an error, a last NDJSON line with done_reason "shutdown"), not cut off.
//
// Two counts: HTTP requests in flight (counted from their arrival, so a request still loading
// its model or reading its body is waited for too) and registered work (generations, pulls),
// which is what can be stopped early.

/** Refused or cut short because the server is shutting down: a 503. */
export class ShuttingDownError extends Error {
  readonly statusCode = 503;
  constructor(message = SHUTDOWN_MESSAGE) {
    super(message);
    this.name = 'ShuttingDownError';
  }
}

/** What a client is told when its request is refused by a shutdown. */
export const SHUTDOWN_MESSAGE = 'the server is shutting down and takes no new requests; retry once it is back (or on another instance)';
/** What a client is told when a shutdown ended its generation. */
export const STOPPED_MESSAGE = 'the server is shutting down: the generation was stopped before it finished (the drain deadline passed)';

/** Work that can be ended early: stop() makes it end soon, with its response saying why. */
export interface Stoppable {
  stop(): void;
}

/** 'serving'; 'draining' (no new work, running work goes on); 'stopping' (the deadline passed: running work is being ended). */
type DrainState = 'serving' | 'draining' | 'stopping';

export class Drain {
  private phase: DrainState = 'serving';
  private inFlight = 0;
  private readonly work = new Set<Stoppable>();
  private readonly idleWaiters = new Set<() => void>();

  get draining(): boolean {
    return this.phase !== 'serving';
  }

  /** Counts a request from its arrival; call the returned function (once) when its response has ended. */
  requestStarted(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.inFlight === 0) for (const w of [...this.idleWaiters]) w();
    };
  }

  /**
   * Registers running work until the returned function is called. Once the drain deadline has
   * passed, no work may start: ShuttingDownError. Work registered while draining (a request that
   * arrived before the drain began) runs, and is stopped at the deadline like the rest.
   */
  register(work: Stoppable): () => void {
    if (this.phase === 'stopping') throw new ShuttingDownError();
    this.work.add(work);
    return () => { this.work.delete(work); };
  }

  /**
   * Stops taking work, waits up to `deadlineMs` for the requests in flight to end, then stops the
   * work still running and waits up to `graceMs` more for those responses to end. Resolves to how
   * many requests were still unfinished at the end (0 when all ended cleanly).
   */
  async drain(deadlineMs: number, graceMs = 5_000): Promise<{ stopped: number; unfinished: number }> {
    if (this.phase === 'serving') this.phase = 'draining';
    await this.idle(deadlineMs);
    if (this.inFlight === 0) return { stopped: 0, unfinished: 0 };
    this.phase = 'stopping';
    const stopped = this.work.size;
    for (const w of [...this.work]) w.stop();
    await this.idle(graceMs);
    return { stopped, unfinished: this.inFlight };
  }

  /** Resolves when no request is in flight, or after `ms`. */
  private idle(ms: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.idleWaiters.delete(done); resolve(); };
      const timer = setTimeout(done, ms);
      this.idleWaiters.add(done);
    });
  }
}
