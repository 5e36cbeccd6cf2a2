// Prometheus metrics (prom-client), served at /metrics: requests by route and status, time to
// first token and time per output token, tokens, model loads, and gauges read from the registry
// when scraped (queue depth, active sequences, KV cache in use, loaded models, their memory).
import client from 'prom-client';
import type { ModelRegistry } from './registry.js';

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly requests = new client.Counter({
    name: 'minerva_http_requests_total', help: 'HTTP requests by route, method and status code',
    labelNames: ['route', 'method', 'status'] as const, registers: [this.registry],
  });
  readonly timeToFirstToken = new client.Histogram({
    name: 'minerva_time_to_first_token_seconds', help: 'From a generation request to its first token',
    labelNames: ['model'] as const, buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120], registers: [this.registry],
  });
  readonly timePerToken = new client.Histogram({
    name: 'minerva_time_per_output_token_seconds', help: 'Between consecutive generated tokens of a sequence',
    labelNames: ['model'] as const, buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5], registers: [this.registry],
  });
  readonly generatedTokens = new client.Counter({
    name: 'minerva_generated_tokens_total', help: 'Tokens generated', labelNames: ['model'] as const, registers: [this.registry],
  });
  readonly promptTokens = new client.Counter({
    name: 'minerva_prompt_tokens_total', help: 'Prompt tokens received', labelNames: ['model'] as const, registers: [this.registry],
  });
  readonly modelLoads = new client.Counter({
    name: 'minerva_model_loads_total', help: 'Models loaded into memory (a first use, or a use after being unloaded)',
    labelNames: ['model'] as const, registers: [this.registry],
  });
  readonly rejected = new client.Counter({
    name: 'minerva_rejected_requests_total', help: 'Generation requests refused because every slot and the queue were full',
    labelNames: ['model'] as const, registers: [this.registry],
  });

  constructor(models: ModelRegistry) {
    const perModel = (name: string, help: string, value: (s: ReturnType<ModelRegistry['running']>[number]) => number) =>
      new client.Gauge({
        name, help, labelNames: ['model'] as const, registers: [this.registry],
        collect() {
          this.reset();
          for (const l of models.running()) this.set({ model: l.entry.name }, value(l));
        },
      });
    perModel('minerva_queue_depth', 'Requests waiting for a sequence slot', (l) => l.model.stats().queued);
    perModel('minerva_active_sequences', 'Sequences reading their prompt or generating', (l) => l.model.stats().active);
    perModel('minerva_kv_cache_tokens', 'KV cache positions holding live sequences', (l) => l.model.stats().kvTokens);
    perModel('minerva_model_memory_bytes', 'Bytes a loaded model holds (weights, KV cache and activations)', (l) => l.bytes);
    perModel('minerva_model_gpu_memory_bytes', 'Of those, bytes on the GPU (webgpu backend)', (l) => l.vram);
    new client.Gauge({
      name: 'minerva_loaded_models', help: 'Models loaded', registers: [this.registry],
      collect() { this.set(models.running().length); },
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: 'minerva_' });
  }
}
