import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'data/**',
      'coverage/**',
      'test-artifacts/**',
      'apps/*/public/**',
      'bench/results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**', 'bench/**', 'scripts/**', '.ci/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Apps live on Tether's public API only (what `@tether/server`, `@tether/client`, `@tether/react`
    // and `@tether/protocol` export): never on the gateway's internals or a package's files. Their
    // tests may look inside, as Tether's own tests do.
    files: ['apps/*/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@tether/*/internals', '@tether/*/internals/*'],
              message: "Apps use @tether/server's public API (Gateway); internals are for Tether's own tests.",
            },
            {
              group: ['@tether/*/src/*', '@tether/*/dist/*', '**/packages/*/src/**', '**/packages/*/dist/**'],
              message: "Import the package's public entry point (e.g. '@tether/server'), not its files.",
            },
          ],
        },
      ],
    },
  },
);
