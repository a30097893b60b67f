/** Bundles the web UI to `apps/helpdesk/dist/public`; resolves with that directory. */
export function buildWeb(options?: { dev?: boolean }): Promise<string>;
