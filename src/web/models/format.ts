// How the models screen writes numbers: bytes in decimal units (as disks and the Hub count them),
// token counts with thousands separators.

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** "tinyllama:latest" → "tinyllama": Minerva's names carry Ollama's tag only for Ollama's clients. */
export function shortName(name: string): string {
  return name.replace(/:latest$/, '');
}
