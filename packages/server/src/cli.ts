#!/usr/bin/env node
import { constants } from 'node:os';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from './config/index.js';
import { SETTINGS, type SettingName } from './config/schema.js';
import { createGateway, gatewayInternals } from './gateway.js';
import { SERVER_VERSION } from './util/version.js';

/** How long past the grace period a shutdown may run before the watchdog ends the process. */
const SHUTDOWN_WATCHDOG_EXTRA_MS = 5000;

/**
 * `tether serve`: every setting of the contract is an environment variable and a flag; a flag wins.
 * An invalid value stops start-up with one line naming the setting.
 */
const program = new Command('tether')
  .description('Tether real-time gateway')
  .version(SERVER_VERSION, '-v, --version', 'print the version')
  .showHelpAfterError();

const serve = program
  .command('serve')
  .description('start the gateway (settings from environment variables; each flag mirrors one)')
  .option('--demo', 'seed demo users into the store at start (idempotent)');
for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
  const fallback = 'default' in spec && spec.default !== '' ? ` (default: ${spec.default})` : '';
  serve.addOption(new Option(`--${spec.flag} <value>`, `${spec.help}${fallback} [${name}]`));
}

serve.action(async (flags: Record<string, string | boolean | undefined>) => {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, (typeof SETTINGS)[SettingName]][]) {
    const key = camel(spec.flag);
    const value = flags[key];
    if (typeof value === 'string') env[name] = value;
  }
  let gateway;
  try {
    // Some settings can only be judged against what they point at (DATABASE_SCHEMA against the database).
    gateway = await createGateway(loadConfig(env));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  if (flags.demo === true) {
    const { seedDemoUsers } = await import('./cli/seed.js');
    await seedDemoUsers(gatewayInternals(gateway).store);
  }
  const { url } = await gateway.listen();
  // The structured log has this line too, but only at LOG_LEVEL=info or lower: PORT=0 must always say where it went.
  process.stderr.write(`tether listening on ${url}\n`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now": an operator or orchestrator that will not wait for the drain.
      gateway.logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    stopping = true;
    gateway.logger.info({ signal }, 'shutting down');
    // close() is bounded (grace period + about a second); should a dependency hang it anyway
    // (a store or Redis that never answers), the process still ends. Unref'd: never keeps it alive.
    const timeoutMs = gateway.config.shutdownGraceMs + SHUTDOWN_WATCHDOG_EXTRA_MS;
    setTimeout(() => {
      gateway.logger.error({ signal, timeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, timeoutMs).unref();
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        gateway.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
});

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? `tether: ${err.message}` : String(err));
  process.exit(1);
});
