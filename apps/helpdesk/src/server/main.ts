import { ConfigError, loadConfig } from '@tether/server';
import { startHelpdesk } from './helpdesk.js';
import { DEMO_STAFF } from './seed.js';

/**
 * `npm start`: the helpdesk with demo data on http://127.0.0.1:3000 (PORT/HOST and every other
 * Tether setting come from the environment).
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  const helpdesk = await startHelpdesk(config);
  const lines = [
    `Farmers' helpdesk on ${helpdesk.url}`,
    `  staff inbox:     ${helpdesk.url}/`,
    `  customer chat:   ${helpdesk.url}/customer`,
    `  admin dashboard: ${helpdesk.url}/admin`,
    '  demo accounts (demo passwords, see apps/helpdesk/README.md):',
    ...DEMO_STAFF.map((s) => `    ${s.email.padEnd(28)} ${s.password.padEnd(12)} ${s.role} ${s.scope}`),
  ];
  console.warn(lines.join('\n'));
  const stop = () => {
    helpdesk.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
