// Lint runs as part of `npm test`. Type-aware rules are left out to keep the run fast on 2 cores;
// `tsc --strict` already checks types.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  // AssemblyScript kernels are checked by their compiler (asc), whose syntax (@inline, v128) ESLint's
  // TypeScript parser does not take.
  { ignores: ['dist/', 'build/', 'node_modules/', 'src/backends/cpu/kernels/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The web app (Preact, bundled by Vite) runs in the browser.
    files: ['src/web/**/*.{ts,tsx,js}'],
    languageOptions: { globals: globals.browser },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
);
