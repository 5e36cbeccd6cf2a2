// Where the Hub is, who we are to it, and where its files are kept: read from the environment the
// way huggingface_hub (Python) reads it, so Minerva, transformers and llama.cpp share one cache
// and one token.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HubError } from './hub-errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubSettings {
  /** Base URL without a trailing slash (HF_ENDPOINT). */
  endpoint: string;
  /** Bearer token, or undefined for anonymous access. */
  token: string | undefined;
  /** The hub cache: models--{org}--{name} folders live here. */
  cacheDir: string;
  /** HF_HUB_OFFLINE: no network at all, only what the cache holds. */
  offline: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
function hfHome(env: Env): string {
  if (env.HF_HOME) return env.HF_HOME;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
}

/** huggingface_hub's truthy spellings of a boolean variable. */
function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'on', 'yes', 'true'].includes(value.trim().toLowerCase());
}

/** HF_ENDPOINT checked at the border: an http(s) URL, trailing slashes dropped. */
export function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new HubError('bad-input', `HF_ENDPOINT: expected an http(s) URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HubError('bad-input', `HF_ENDPOINT: expected an http(s) URL, got "${value}"`);
  }
  return url.href.replace(/\/+$/, '');
}

/** HF_TOKEN, else the token file huggingface-cli login writes ($HF_TOKEN_PATH, else $HF_HOME/token). */
function readToken(env: Env): string | undefined {
  const fromEnv = env.HF_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const file = env.HF_TOKEN_PATH || path.join(hfHome(env), 'token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined; // no login: anonymous
  }
}

/** The settings from an environment (process.env by default); `overrides` win. */
export function hubSettings(env: Env = process.env, overrides: Partial<HubSettings> = {}): HubSettings {
  return {
    endpoint: overrides.endpoint ?? parseEndpoint(env.HF_ENDPOINT || DEFAULT_ENDPOINT),
    token: 'token' in overrides ? overrides.token : readToken(env),
    cacheDir: overrides.cacheDir ?? (env.HF_HUB_CACHE || path.join(hfHome(env), 'hub')),
    offline: overrides.offline ?? envFlag(env.HF_HUB_OFFLINE),
  };
}
