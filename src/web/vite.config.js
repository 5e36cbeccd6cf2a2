// The web app's build (npm run build:web): Preact with JSX compiled by Vite's oxc, output in
// build/web/ with relative asset URLs, served by `minerva serve` at /. Everything is bundled:
// the page works offline, with no CDN.
import { fileURLToPath } from 'node:url';

export default {
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../build/web/', import.meta.url)),
    emptyOutDir: true,
    // One file per kind keeps the server's list of assets short; the app is small.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  logLevel: 'warn',
};
