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
    ['protocol', 'transport', 'lockdown', 'services', 'sim', 'cli', 'job', 'agent', 'api'],
    'util depends on nothing',
  ),
  forbid(
    'protocol',
    ['transport', 'lockdown', 'services', 'sim', 'cli', 'job', 'agent', 'api'],
    'protocol is pure codecs',
  ),
  forbid(
    'transport',
    ['pairing', 'lockdown', 'services', 'sim', 'cli', 'job', 'agent', 'api'],
    'transport sits below pairing',
  ),
  forbid(
    'pairing',
    ['transport', 'lockdown', 'services', 'sim', 'cli', 'job', 'agent', 'api'],
    'pairing is certificate material only',
  ),
  forbid(
    'lockdown',
    ['services', 'sim', 'cli', 'job', 'agent', 'api'],
    'lockdown sits below services',
  ),
  forbid(
    'services',
    ['sim', 'cli', 'job', 'agent', 'api'],
    'services never import the simulator or the CLI',
  ),
  forbid(
    'format',
    [
      'transport',
      'pairing',
      'lockdown',
      'services',
      'backup',
      'store',
      'sim',
      'cli',
      'job',
      'agent',
      'api',
    ],
    'format is the on-disk backup format only',
  ),
  forbid(
    'backup',
    ['store', 'sim', 'cli', 'job', 'agent', 'api'],
    'the engine writes into a BackupTarget; it knows no store',
  ),
  forbid(
    'store',
    ['transport', 'pairing', 'lockdown', 'services', 'backup', 'sim', 'cli', 'job', 'agent', 'api'],
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
      'job',
      'agent',
      'api',
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
      'job',
      'agent',
      'api',
    ],
    'scheduling decisions are pure: they see state, not devices',
  ),
  forbid(
    'discovery',
    ['services', 'backup', 'store', 'history', 'scheduler', 'sim', 'cli', 'job', 'agent', 'api'],
    'discovery finds devices; it does not back them up',
  ),
  forbid(
    'job',
    ['history', 'scheduler', 'discovery', 'agent', 'api', 'sim', 'cli'],
    'a job backs up one device into the store; it knows no schedule and no history',
  ),
  forbid(
    'agent',
    ['api', 'sim', 'cli'],
    'the agent is the core; front ends import it, not the reverse',
  ),
  forbid(
    'api',
    [
      'protocol',
      'transport',
      'pairing',
      'lockdown',
      'services',
      'backup',
      'store',
      'job',
      'scheduler',
      'discovery',
      'sim',
      'cli',
    ],
    'the API speaks to the agent through AgentService only',
  ),
  forbid(
    'electron',
    ['sim', 'cli'],
    'the desktop app runs the agent; it never ships the simulator',
  ),
  forbid('sim', ['cli', 'job', 'agent', 'api'], 'the simulator is its own program'),
  // H8b: the password store sits just above util; front ends and the agent hand it down as callbacks.
  forbid(
    'secrets',
    [
      'protocol',
      'transport',
      'pairing',
      'lockdown',
      'services',
      'format',
      'backup',
      'store',
      'job',
      'history',
      'scheduler',
      'discovery',
      'sim',
      'cli',
      'agent',
      'api',
      'electron',
    ],
    'secrets keep passwords only; they know no device, backup or front end',
  ),
  ...rendererZone(),
);

/**
 * The renderer runs in a browser and in a sandboxed Electron page: it may import its own modules
 * and, type-only, src/agent/types.ts — no other layer, no package, no Node built-in. An allow-list
 * (regular expressions over the import text, per folder depth) rather than a list of layers, so a
 * new layer is forbidden too.
 */
function rendererZone() {
  const message =
    'the renderer imports only its own modules and, with `import type`, ../agent/types';
  const zone = (files, types, ownModules) => ({
    files,
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [{ name: types, allowTypeImports: true, message }],
          patterns: [
            {
              regex: `^(?!(?:${ownModules})(?!.*\\.\\.)|${types.replace(/\./g, '\\.')}$)`,
              message,
            },
          ],
        },
      ],
    },
  });
  return [
    // src/renderer/x.ts: ./y.js
    zone(['src/renderer/*.ts'], '../agent/types', '\\./'),
    // src/renderer/views/x.ts: ./y.js, ../y.js
    zone(['src/renderer/*/**/*.ts'], '../../agent/types', '\\./|\\.\\./'),
  ];
}
