import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = ['protocol', 'server', 'client', 'react'] as const;

/** Runs a command to completion; throws with its output when it fails. */
function run(command: string, args: string[], cwd: string, timeout = 240_000): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, CI: 'true' } });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/**
 * The packages as a team would get them: `npm pack`ed tarballs installed into an empty folder with no
 * workspace around it (dependencies from the registry, or npm's cache), then the installed `tether`
 * binary started and the installed client connected to it.
 */
describe('the packed packages, installed outside the workspace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-pack-'));
  const app = join(dir, 'app');
  let server: ChildProcess | undefined;

  beforeAll(() => {
    // The tarballs hold dist/: build it as `npm test` does (a no-op when up to date).
    run('npx', ['tsc', '-b', ...PACKAGES.map((p) => `packages/${p}`)], ROOT);
    const packed = JSON.parse(
      run(
        'npm',
        ['pack', '--json', '--pack-destination', dir, ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`])],
        ROOT,
      ),
    ) as { filename: string; files: { path: string }[] }[];
    for (const tarball of packed) {
      const files = tarball.files.map((f) => f.path);
      expect(files).toEqual(expect.arrayContaining(['package.json', 'LICENSE', 'CHANGELOG.md', 'README.md']));
      expect(files.some((f) => f.startsWith('src/'))).toBe(false);
    }
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'tether-adopter',
        private: true,
        type: 'module',
        allowScripts: { 'better-sqlite3': true },
      }),
    );
    // Node's headers for better-sqlite3's build come from the machine, as in the repository's .npmrc.
    writeFileSync(join(app, '.npmrc'), readFileSync(join(ROOT, '.npmrc'), 'utf8'));
    run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', ...packed.map((t) => join(dir, t.filename))],
      app,
      600_000,
    );
  }, 660_000);

  afterAll(() => {
    // npx runs the binary as its child: end the whole process group, not only npx.
    if (server?.pid !== undefined) {
      try {
        process.kill(-server.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('`tether --version` and `tether serve --help` answer from the installed binary', () => {
    const version = (
      JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')) as { version: string }
    ).version;
    expect(run('npx', ['--no-install', 'tether', '--version'], app).trim()).toBe(version);
    const help = run('npx', ['--no-install', 'tether', 'serve', '--help'], app);
    expect(help).toContain('--database-url');
    expect(help).toContain('[JWT_SECRET]');
  });

  it('the installed `tether serve` starts, and the installed client connects to it', async () => {
    const dataDir = join(dir, 'data');
    server = spawn('npx', ['--no-install', 'tether', 'serve'], {
      cwd: app,
      env: {
        PATH: process.env.PATH,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        JWT_SECRET: randomBytes(48).toString('base64url'),
        API_KEYS: randomBytes(24).toString('base64url'),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    const url = await new Promise<string>((resolveUrl, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`no "listening" line: ${stderr}`)), 60_000);
      server!.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        const match = /tether listening on (http:\/\/\S+)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]!);
        }
      });
      server!.once('exit', (code) => reject(new Error(`tether exited with ${code}: ${stderr}`)));
    });

    // An app's code, importing the installed client by its package name.
    writeFileSync(
      join(app, 'connect.mjs'),
      `import { RealtimeClient, TokenManager, createPlatform } from '@tether/client';
const tokens = new TokenManager({ baseUrl: process.argv[2], platform: createPlatform() });
await tokens.loginAsGuest();
const client = new RealtimeClient({ url: process.argv[2], tokens, transport: 'socket.io' });
const timer = setTimeout(() => { console.error('no session'); process.exit(1); }, 20000);
client.onSession((session) => {
  clearTimeout(timer);
  console.log(JSON.stringify({ userId: session.userId, isGuest: session.isGuest }));
  client.dispose();
  tokens.dispose();
  process.exit(0);
});
client.connect();
`,
    );
    const answer = JSON.parse(run('node', ['connect.mjs', url], app, 60_000)) as { userId: string; isGuest: boolean };
    expect(answer.isGuest).toBe(true);
    expect(answer.userId).toMatch(/^guest:/);
  }, 120_000);

  it('the installed @tether/react loads with its peers (react, the installed client) and without react-dom', () => {
    writeFileSync(
      join(app, 'react.mjs'),
      `import { createElement } from 'react';
import * as hooks from '@tether/react';
import { RealtimeClient, TokenManager } from '@tether/client';
const tokens = new TokenManager({ baseUrl: 'http://127.0.0.1:9' });
const client = new RealtimeClient({ url: 'http://127.0.0.1:9', tokens });
const element = createElement(hooks.TetherProvider, { client }, null);
console.log(JSON.stringify({ exports: Object.keys(hooks).sort(), provider: element.props.client === client }));
client.dispose();
tokens.dispose();
`,
    );
    const answer = JSON.parse(run('node', ['react.mjs'], app, 60_000)) as { exports: string[]; provider: boolean };
    expect(answer.exports).toEqual([
      'MissingTetherProviderError',
      'TetherProvider',
      'createTetherHooks',
      'useConnectionState',
      'useEvent',
      'useSend',
      'useSession',
      'useTetherClient',
      'useTokenExpiry',
      'useUser',
      'userFromAccessToken',
    ]);
    expect(answer.provider).toBe(true);
    // Hooks only: nothing pulls in React DOM, so React Native apps get no DOM renderer.
    expect(existsSync(join(app, 'node_modules', 'react-dom'))).toBe(false);
  });
});
