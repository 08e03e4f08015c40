// ESLint flat config: typescript-eslint's recommended rules plus the layer boundaries of docs/ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/** Layers below the CLI never reach up; the simulator is never imported by product code. */
const forbid = (from, targets, why) => ({
  files: [`src/${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: targets.map((t) => ({ group: [`**/${t}/**`, `**/${t}`], message: why })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**', 'scripts/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  forbid(
    'util',
    ['protocol', 'transport', 'lockdown', 'services', 'sim', 'cli'],
    'util depends on nothing',
  ),
  forbid(
    'protocol',
    ['transport', 'lockdown', 'services', 'sim', 'cli'],
    'protocol is pure codecs',
  ),
  forbid(
    'transport',
    ['pairing', 'lockdown', 'services', 'sim', 'cli'],
    'transport sits below pairing',
  ),
  forbid(
    'pairing',
    ['transport', 'lockdown', 'services', 'sim', 'cli'],
    'pairing is certificate material only',
  ),
  forbid('lockdown', ['services', 'sim', 'cli'], 'lockdown sits below services'),
  forbid('services', ['sim', 'cli'], 'services never import the simulator or the CLI'),
  forbid(
    'format',
    ['transport', 'pairing', 'lockdown', 'services', 'backup', 'store', 'sim', 'cli'],
    'format is the on-disk backup format only',
  ),
  forbid(
    'backup',
    ['store', 'sim', 'cli'],
    'the engine writes into a BackupTarget; it knows no store',
  ),
  forbid(
    'store',
    ['transport', 'pairing', 'lockdown', 'services', 'backup', 'sim', 'cli'],
    'the store works on folders, never on devices',
  ),
  forbid(
    'history',
    [
      'protocol',
      'transport',
      'pairing',
      'lockdown',
      'services',
      'backup',
      'store',
      'scheduler',
      'discovery',
      'sim',
      'cli',
    ],
    'history is the SQLite database only',
  ),
  forbid(
    'scheduler',
    [
      'protocol',
      'transport',
      'pairing',
      'lockdown',
      'services',
      'backup',
      'store',
      'history',
      'discovery',
      'sim',
      'cli',
    ],
    'scheduling decisions are pure: they see state, not devices',
  ),
  forbid(
    'discovery',
    ['services', 'backup', 'store', 'history', 'scheduler', 'sim', 'cli'],
    'discovery finds devices; it does not back them up',
  ),
  forbid('sim', ['cli'], 'the simulator is its own program'),
);
