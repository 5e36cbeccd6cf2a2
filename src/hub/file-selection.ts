// Which files of a repo a pull brings, as llama.cpp's -hf chooses them: for GGUF one quantization
// (by tag, else Q4_K_M, else Q8_0, else the first) with all parts of a split model; for SafeTensors
// the weights and what loading them needs (config, tokenizer, chat template), nothing else.
import path from 'node:path';
import { HubError } from './hub-errors.js';

export interface Selection<F extends { path: string }> {
  kind: 'gguf' | 'safetensors' | 'file';
  /** In download order. */
  files: F[];
  /** What the models-folder link points at: a file's path in the snapshot, '' for the snapshot folder, undefined for no link. */
  entry: string | undefined;
  /** The quantization, from the GGUF file name (or the tag asked for). */
  quant: string | undefined;
}

export interface SelectionRequest {
  tag?: string;
  file?: string;
}

/** Files a SafeTensors model needs beside its weights, when the repo has them. */
export const SAFETENSORS_COMPANIONS = [
  'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'tokenizer.model',
  'special_tokens_map.json', 'chat_template.json', 'chat_template.jinja', 'model.safetensors.index.json',
];

const DEFAULT_TAGS = ['Q4_K_M', 'Q8_0'];
const SPLIT = /-(\d{5})-of-(\d{5})(\.gguf)$/i;
// transformers' own weight names: a repo with these may also carry other .safetensors (Mistral's
// consolidated.safetensors, adapters) that the model does not need.
const TRANSFORMERS_WEIGHTS = /^model(?:-\d+-of-\d+)?\.safetensors$/;

const isGGUF = (p: string) => p.toLowerCase().endsWith('.gguf');
/** Projectors and importance matrices are GGUF files but not the model. */
const isModelGGUF = (p: string) => isGGUF(p) && !/mmproj|imatrix/i.test(p);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Does a path carry this tag, as `TAG.` or `TAG-` after a non-alphanumeric (so F16 is not BF16)? */
export function matchesTag(p: string, tag: string): boolean {
  return new RegExp(`(?:^|[^A-Za-z0-9])${escape(tag)}[.-]`, 'i').test(p);
}

/** The quantization named in a GGUF file name (Q4_K_M, IQ3_XS, F16, …), upper-cased. */
export function quantOf(p: string): string | undefined {
  const stem = path.posix.basename(p).replace(SPLIT, '').replace(/\.gguf$/i, '');
  const all = [...stem.matchAll(/(?:^|[^A-Za-z0-9])(I?Q\d(?:_[A-Za-z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9])/gi)];
  return all.at(-1)?.[1]?.toUpperCase();
}

/** The first part of a split GGUF and all its parts, or just the file. */
function withParts<F extends { path: string }>(chosen: F, byPath: Map<string, F>, where: string): { first: string; parts: F[] } {
  const m = SPLIT.exec(chosen.path);
  if (!m) return { first: chosen.path, parts: [chosen] };
  const count = Number(m[2]);
  const prefix = chosen.path.slice(0, m.index);
  const parts: F[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `${prefix}-${String(i).padStart(5, '0')}-of-${m[2]}${m[3]}`;
    const part = byPath.get(name);
    if (!part) throw new HubError('no-match', `split model ${chosen.path}: part ${name} is missing from ${where}`);
    parts.push(part);
  }
  return { first: parts[0]!.path, parts };
}

function listNames(names: string[]): string {
  return names.length <= 20 ? names.join(', ') : `${names.slice(0, 20).join(', ')} and ${names.length - 20} more`;
}

/** The files to pull from a listing; `where` names the repo and revision in errors. */
export function selectFiles<F extends { path: string }>(files: readonly F[], req: SelectionRequest, where: string): Selection<F> {
  const byPath = new Map(files.map((f) => [f.path, f]));
  if (req.file !== undefined) {
    const f = byPath.get(req.file);
    if (!f) throw new HubError('not-found', `${req.file} not found in ${where}`);
    if (!isGGUF(f.path)) return { kind: 'file', files: [f], entry: undefined, quant: undefined };
    const { first, parts } = withParts(f, byPath, where);
    return { kind: 'gguf', files: parts, entry: first, quant: quantOf(first) };
  }

  const ggufs = files.filter((f) => isModelGGUF(f.path));
  if (ggufs.length > 0) {
    let chosen: F | undefined;
    if (req.tag !== undefined) {
      chosen = ggufs.find((f) => matchesTag(f.path, req.tag!));
      if (!chosen) {
        throw new HubError('no-match', `no .gguf file in ${where} matches ":${req.tag}"; it has: ${listNames(ggufs.map((f) => f.path))}`);
      }
    } else {
      for (const tag of DEFAULT_TAGS) chosen ??= ggufs.find((f) => matchesTag(f.path, tag));
      chosen ??= ggufs[0]!;
    }
    const { first, parts } = withParts(chosen, byPath, where);
    return { kind: 'gguf', files: parts, entry: first, quant: quantOf(first) ?? req.tag?.toUpperCase() };
  }

  if (req.tag !== undefined) {
    throw new HubError('no-match', `${where} has no .gguf files, so ":${req.tag}" matches nothing (pull it without a tag)`);
  }
  const topLevel = files.filter((f) => !f.path.includes('/'));
  let weights = topLevel.filter((f) => f.path.endsWith('.safetensors'));
  if (weights.some((f) => TRANSFORMERS_WEIGHTS.test(f.path))) weights = weights.filter((f) => TRANSFORMERS_WEIGHTS.test(f.path));
  if (weights.length === 0) {
    const some = files.slice(0, 20).map((f) => f.path);
    throw new HubError('no-match', `${where} has no .gguf or .safetensors files${some.length ? ` (it has: ${listNames(some)})` : ''}`);
  }
  if (!byPath.has('config.json')) throw new HubError('no-match', `${where} has .safetensors files but no config.json`);
  const companions = SAFETENSORS_COMPANIONS.flatMap((name) => byPath.get(name) ?? []);
  return { kind: 'safetensors', files: [...companions, ...weights], entry: '', quant: undefined };
}
