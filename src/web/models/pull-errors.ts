// A failed pull said plainly: the server's message (it names the repo, file or revision) and
// what to do about it, by the kind of failure the message shows.

export interface PullFailure { message: string; advice: string }

const ADVICE: [RegExp, string][] = [
  [/not found|404/i, 'Check the name on huggingface.co: it is org/name, e.g. bartowski/Llama-3.2-1B-Instruct-GGUF, optionally :Q4_K_M for one file.'],
  [/no \.gguf|matches nothing|has no \.gguf|matches ":/i, 'Pick a quantization the repo has (one of the files listed), or pull without a tag.'],
  [/not a Hugging Face repo|org\/name/i, 'Minerva pulls from the Hugging Face Hub: give org/name, e.g. bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M.'],
  [/disk full|ENOSPC|not enough (disk|space|room)/i, 'Free some disk space on the server and pull again: the partial download is kept and resumes.'],
  [/401|unauthori[sz]ed|gated|token/i, 'This repo needs a Hugging Face token: set HF_TOKEN for the server (and accept the model\'s terms on huggingface.co).'],
  [/offline|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|fetch failed|network|timed? ?out|socket/i, 'The server could not reach the Hugging Face Hub: check its network connection, then pull again (a partial download resumes).'],
  [/shutting down/i, 'The server is stopping: pull again once it is back.'],
];

export function describePullError(message: string): PullFailure {
  const advice = ADVICE.find(([re]) => re.test(message))?.[1] ?? 'Pull again; if it fails the same way, the server\'s log has the details.';
  return { message, advice };
}
