#!/usr/bin/env node
// The `minerva` command line: run · chat · embed · serve · info · pull · convert · list · rm · verify · devices · bench. Every argument is checked here, at the border;
// errors print one line and exit non-zero.
import { Command, Option } from 'commander';
import { runCommand } from './run.js';
import { chatCommand } from './chat.js';
import { embedCommand } from './embed.js';
import { infoCommand } from './info.js';
import { benchCommand } from './bench.js';
import { benchOpsArgs, benchOpsCommand } from './bench-ops.js';
import { serveCommand } from './serve.js';
import { devicesCommand } from './devices.js';
import { listCommand, rmCommand, verifyCommand } from './models.js';
import { pullCommand } from './pull.js';
import { convertCommand } from './convert.js';
import { CONVERT_TYPES } from '../convert/file-types.js';
import { BACKEND_NAMES } from '../engine/model.js';
import { BUILTIN_CHAT_TEMPLATES } from '../chat/builtin-templates.js';
import { DEFAULTS } from '../server/server.js';
import { bytesArg, collect, concurrencyArg, durationArg, floatArg, formatArg, intArg, urlArg } from './args.js';
import { LOAD_QUANT_TYPES } from '../quant/quantize-on-load.js';
import { SYNTHETIC_DTYPES, SYNTHETIC_PRESETS } from '../bench/synthetic.js';

const CHAT_TEMPLATE_NAMES = Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ');

const program = new Command('minerva')
  .description('Run open-weight language models from their SafeTensors or GGUF weights.')
  .showHelpAfterError()
  // Each command parses its own options (the program has none); needed so "bench ops" owns the
  // options after "ops" (--threads, --json… exist on bench as well).
  .enablePositionalOptions()
  .configureOutput({ outputError: (str, write) => write(str) });

/** --backend, the same everywhere. */
function backendOption(): Option {
  return new Option('--backend <name>', 'compute backend: auto (webgpu on a GPU, else cpu), webgpu (WGSL kernels through Dawn), '
    + 'cpu (wasm SIMD kernels on worker threads) or reference (plain TypeScript)').choices(BACKEND_NAMES).default('auto');
}

/** Options shared by run and chat: loading and sampling. */
function withModelOptions(cmd: Command): Command {
  return cmd
    .option('--tokenizer <path>', 'tokenizer to use: tokenizer.json (or its folder), a .gguf, or a llama2.c tokenizer.bin')
    .option('--chat-template <file|name>', `chat template instead of the model's: a .jinja file or ${CHAT_TEMPLATE_NAMES} (models without one use chatml)`)
    .option('--ctx-size <n>', 'context length to allocate (default: min(model, 4096))', intArg(1, 1 << 20))
    .addOption(backendOption())
    .option('--threads <n>', 'threads of the cpu backend (default: all cores)', intArg(1, 256))
    .addOption(new Option('--quant <type>', 'quantize float weight matrices as they load').choices(Object.keys(LOAD_QUANT_TYPES)))
    .option('-n, --max-tokens <n>', 'most tokens to generate', intArg(0))
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', floatArg(0))
    .option('--top-k <k>', 'keep the k most likely tokens; 0 = off', intArg(0))
    .option('--top-p <p>', 'nucleus sampling threshold; 1 = off', floatArg(Number.MIN_VALUE, 1))
    .option('--min-p <p>', 'drop tokens below p × the top probability; 0 = off', floatArg(0, 1))
    .option('--repeat-penalty <r>', 'penalty for recently seen tokens; 1 = off', floatArg(Number.MIN_VALUE))
    .option('--presence-penalty <r>', 'flat penalty for seen tokens', floatArg(-Infinity))
    .option('--frequency-penalty <r>', 'penalty per occurrence of seen tokens', floatArg(-Infinity))
    .option('--repeat-last-n <n>', 'how many recent tokens the penalties see; -1 = all', intArg(-1))
    .option('--seed <n>', 'PRNG seed: the same seed gives the same sample', intArg(0, 2 ** 32 - 1))
    .option('--stop <text>', 'stop before this text (repeatable)', collect)
    .option('--format <json|schema.json>', 'only output JSON: any object ("json"), or valid against a JSON schema file', formatArg)
    .option('--verbose', 'print timings to stderr');
}

withModelOptions(program.command('run')
  .description('generate a continuation of a prompt and stream it to stdout')
  .argument('<model>', 'Hugging Face folder, .gguf file or llama2.c .bin checkpoint')
  .argument('<prompt>', 'the prompt text')
  .option('--chat', 'apply the model\'s chat template to the prompt (as a user message)')
  .option('--system <text>', 'system message (with --chat)'))
  .action(runCommand);

withModelOptions(program.command('chat')
  .description('chat with a model in the terminal')
  .argument('<model>', 'Hugging Face folder, .gguf file or llama2.c .bin checkpoint')
  .option('--system <text>', 'system message'))
  .action(chatCommand);

program.command('embed')
  .description('print the embedding of each text (or of stdin) as JSON, pooled as the model declares')
  .argument('<model>', 'Hugging Face folder, .gguf file or llama2.c .bin checkpoint')
  .argument('[text...]', 'texts to embed, one vector each (default: all of stdin as one text)')
  .option('--lines', 'with stdin: each non-empty line is a text of its own')
  .option('--dimensions <n>', 'keep the first n values, normalised again (models that declare an embedding pooling)', intArg(1, 1 << 20))
  .option('--truncate', 'cut a text longer than the context instead of failing')
  .option('--normalize', 'scale each vector to unit length (default: as the model declares)')
  .option('--no-normalize', 'leave each vector as pooled')
  .option('--tokenizer <path>', 'tokenizer to use: tokenizer.json (or its folder), a .gguf, or a llama2.c tokenizer.bin')
  .option('--ctx-size <n>', 'context length to allocate (default: min(model, 4096))', intArg(1, 1 << 20))
  .addOption(backendOption())
  .option('--threads <n>', 'threads of the cpu backend (default: all cores)', intArg(1, 256))
  .addOption(new Option('--quant <type>', 'quantize float weight matrices as they load').choices(Object.keys(LOAD_QUANT_TYPES)))
  .action(embedCommand);

program.command('serve')
  .description('serve the models in the models folder: OpenAI /v1, Ollama /api, Prometheus /metrics, web chat at /')
  .option('--host <host>', 'address to listen on', DEFAULTS.host)
  .option('--port <n>', 'port', intArg(0, 65535), DEFAULTS.port)
  .option('--models-dir <dir>', 'folder of .gguf files and Hugging Face folders (env MINERVA_MODELS)', DEFAULTS.modelsDir)
  .option('--api-key <key>', 'require "Authorization: Bearer <key>" (env MINERVA_API_KEY)')
  .option('--cors-origin <origins>', 'allow browser requests from these origins ("*" or a comma-separated list)')
  .option('--parallel <n>', 'sequences per model that generate together', intArg(1, 256), DEFAULTS.parallel)
  .option('--max-queue <n>', 'requests per model that may wait for a sequence slot (then 429)', intArg(0, 1 << 20), DEFAULTS.maxQueue)
  .option('--max-memory <size>', 'bytes all loaded models may hold (e.g. 8G; default 3/4 of RAM)', bytesArg, DEFAULTS.maxMemory)
  .option('--keep-alive <duration>', 'how long an idle model stays loaded (e.g. 5m; -1 = forever)', durationArg, DEFAULTS.keepAliveMs)
  .option('--ctx-size <n>', 'context per sequence (default: min(model, 4096))', intArg(16, 1 << 20))
  .option('--chat-template <file|name>', `chat template for every model instead of its own: a .jinja file or ${CHAT_TEMPLATE_NAMES}; `
    + 'a <model>.jinja beside a model in the folder applies to that model only')
  .option('--threads <n>', 'threads of the cpu backend (default: all cores)', intArg(1, 256))
  .addOption(backendOption())
  .option('--max-gpu-memory <size>', 'bytes all models on the GPU may hold (e.g. 12G; default: no limit, WebGPU does not report GPU memory)', bytesArg)
  .option('--request-timeout <duration>', 'longest a generation may run', durationArg, DEFAULTS.requestTimeoutMs)
  .option('--drain-timeout <seconds>', 'on SIGTERM or SIGINT: how long running requests may take to finish before they are stopped (a second signal stops at once)',
    floatArg(0, 86_400), 30)
  .option('--quiet', 'no request log')
  .action(serveCommand);

program.command('info')
  .description('show a model\'s architecture, size, dtypes and tokenizer (reads headers only)')
  .argument('<model>', 'Hugging Face folder, .gguf file or llama2.c .bin checkpoint')
  .option('--tokenizer <path>', 'tokenizer to use where the model has none')
  .option('--json', 'print JSON')
  .action(infoCommand);

program.command('list').alias('ls')
  .description('list the models in the models folder: name, architecture, parameters, weight type, size')
  .option('--models-dir <dir>', 'folder of .gguf files and Hugging Face folders (env MINERVA_MODELS)', DEFAULTS.modelsDir)
  .option('--json', 'print JSON')
  .action(listCommand);

program.command('rm')
  .description('remove a model from the models folder')
  .argument('<model>', 'its name, as minerva list shows it')
  .option('--models-dir <dir>', 'folder of .gguf files and Hugging Face folders (env MINERVA_MODELS)', DEFAULTS.modelsDir)
  .action(rmCommand);

program.command('verify')
  .description('check a model offline: file structure, tensors against the architecture, tokenizer, every weight readable and finite; '
    + 'a pulled model\'s files against the hashes recorded when it was pulled')
  .argument('<model>', 'a path (Hugging Face folder, .gguf file or llama2.c .bin), or the name of a model in the models folder')
  .option('--tokenizer <path>', 'tokenizer to use where the model has none')
  .option('--models-dir <dir>', 'folder of .gguf files and Hugging Face folders (env MINERVA_MODELS)', DEFAULTS.modelsDir)
  .action(verifyCommand);

program.command('convert')
  .description('write a model as a GGUF file llama.cpp loads: f32, f16, bf16, q8_0, or llama-quantize\'s q4_0, q4_k_m, q6_k, q5_k_m, q3_k_m mixes')
  .argument('<model>', 'Hugging Face folder, .gguf file or llama2.c .bin checkpoint')
  .argument('<out>', 'the .gguf file to write')
  .addOption(new Option('--type <type>', 'file type (which tensor gets which type follows llama.cpp)')
    .choices(Object.keys(CONVERT_TYPES)).makeOptionMandatory())
  .option('--tokenizer <path>', 'tokenizer to write instead of the model\'s own (needed for a llama2.c checkpoint): '
    + 'tokenizer.json or its folder, a .gguf, or a llama2.c tokenizer.bin')
  .option('--name <name>', 'general.name (default: the model\'s file or folder name)')
  .action(convertCommand);

program.command('pull')
  .description('download a model from the Hugging Face Hub into the shared Hugging Face cache and link it into the models folder')
  .argument('<repo>', 'org/name[:QUANT], hf.co/org/name[:QUANT] or https://huggingface.co/org/name')
  .option('--revision <rev>', 'branch, tag or commit (default: main)')
  .option('--file <path>', 'take exactly this file of the repo (all parts of a split GGUF)')
  .option('--models-dir <dir>', 'folder to link the model into (env MINERVA_MODELS)', DEFAULTS.modelsDir)
  .action(pullCommand);

program.command('devices')
  .description('list GPU adapters (WebGPU through Dawn), their features and limits, and which backend --backend auto picks')
  .option('--json', 'print JSON')
  .action(devicesCommand);

const bench = program.command('bench')
  .description('measure prompt and decode speed; --vs llamacpp runs llama.cpp on the same GGUF in the same run; '
    + '"minerva bench ops": per-op throughput of a backend')
  .argument('[model]', 'Hugging Face folder, .gguf file or llama2.c .bin checkpoint (.gguf for --vs llamacpp)')
  .addOption(new Option('--synthetic <preset>', 'instead of a model: random weights with these real dimensions (generated once, cached)')
    .choices(Object.keys(SYNTHETIC_PRESETS)))
  .addOption(new Option('--dtype <type>', 'weight type of the --synthetic model').choices(Object.keys(SYNTHETIC_DTYPES)))
  .addOption(backendOption())
  .option('--threads <n>', 'threads (both engines; default: all cores)', intArg(1, 256))
  .addOption(new Option('--quant <type>', 'quantize float weight matrices as Minerva loads them').choices(Object.keys(LOAD_QUANT_TYPES)))
  .option('-p, --prompt-tokens <n>', 'prompt length in tokens', intArg(1, 1 << 16), 128)
  .option('-n, --gen-tokens <n>', 'greedy tokens to generate', intArg(2, 1 << 16), 64)
  .option('-r, --repeat <n>', 'runs per engine', intArg(1, 1000), 3)
  .option('--vs <engine>', 'also run this engine and print ratios (llamacpp)')
  .option('--tokenizer <path>', 'tokenizer where the model has none')
  .option('--json <file>', 'write results as JSON')
  .option('--csv <file>', 'write per-run results as CSV')
  .option('--concurrency <list>', 'streams at once, per level (e.g. 1,4,8,16): aggregate and per-stream tokens/s, time to first token', concurrencyArg)
  .option('--url <url>', 'with --concurrency: measure a running server (OpenAI /v1/completions) instead of loading a model', urlArg)
  .option('--model-name <name>', 'with --url: the model to ask for (default: the first the server lists)')
  .option('--api-key <key>', 'with --url: bearer token for the server')
  .action(benchCommand);

bench.command('ops')
  .description('tensor-op throughput of a backend: matmul per weight type (GFLOP/s; GB/s against the measured read bandwidth), '
    + 'elementwise ops, rmsNorm, rope, attention, SafeTensors vs JSON loading')
  .option('--backend <list>', 'backends: auto, or a list of cpu, reference, webgpu (default: auto)', benchOpsArgs.backend)
  .option('--ops <list>', 'ops to measure: matmul, add, siluMul, geluMul, softcap, rmsNorm, rope, attention, load (default: all)', benchOpsArgs.ops)
  .option('--dtypes <list>', 'matmul weight types, e.g. f32,q8_0,q4_k (default: every type the backends load)', benchOpsArgs.dtypes)
  .option('--sizes <list>', 'matmul n = k, and the row length of the elementwise ops (default cpu 256,1024,4096; reference 256,512)', benchOpsArgs.sizes)
  .option('--batches <list>', 'tokens per call (default cpu 1,16,128; reference 1,8)', benchOpsArgs.batches)
  .option('--contexts <list>', 'attention context lengths (default cpu 128,512,2048,4096; reference 128,512)', benchOpsArgs.contexts)
  .option('--threads <list>', 'cpu worker-pool sizes, e.g. 1,2 (default: all cores)', benchOpsArgs.threads)
  .option('-r, --repeat <n>', 'fewest calls timed per case', intArg(1, 100000))
  .option('--min-time <ms>', 'least time per case in ms (default 200)', intArg(0, 600000))
  .option('--bandwidth-mib <n>', 'MiB the read bandwidth is measured over (default 256)', intArg(1, 3072))
  .option('--load-mib <n>', 'MiB of the f32 tensor loaded from SafeTensors and from JSON (default 16)', intArg(1, 1024))
  .option('--json <file>', 'write the results as JSON')
  .option('--csv <file>', 'write the results as CSV')
  .option('--svg <file>', 'write the matmul chart as SVG (default: beside --json or --csv)')
  .action(benchOpsCommand);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`minerva: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
