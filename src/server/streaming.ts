// A streamed response (server-sent events for OpenAI, NDJSON for Ollama), written straight to
// the socket: Fastify hands the response over (hijack), and the headers it had set (CORS) go
// with it. A client that disconnects is reported once, so its generation can be cancelled.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface Stream {
  write(text: string): void;
  end(text?: string): void;
  /** The client went away: further writes are dropped. */
  readonly closed: boolean;
}

export function openStream(req: FastifyRequest, reply: FastifyReply, contentType: string, onClientGone: () => void): Stream {
  reply.hijack();
  const res = reply.raw;
  const headers: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
  res.writeHead(200, {
    ...headers, 'content-type': contentType, 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no',
  });
  // Send the headers now, not with the first token: a request waiting in the queue shows a client
  // (and a proxy with a headers timeout) that the server took it.
  res.flushHeaders();
  let closed = false;
  res.on('close', () => {
    if (!res.writableFinished) {
      closed = true;
      onClientGone();
    }
  });
  req.log.debug('streaming response');
  return {
    write: (text) => { if (!closed) res.write(text); },
    end: (text) => { if (!closed) res.end(text); },
    get closed() { return closed; },
  };
}
