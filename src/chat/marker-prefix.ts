// Holding back text that may be the start of a marker, while it streams.

/** Length of the longest end of `text` that is a proper prefix of `marker` (0: none). */
export function prefixTail(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (marker.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}
