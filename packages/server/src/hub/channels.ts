/**
 * Channel names and the patterns a token's `channels` claim may hold.
 * A pattern is an exact name (`project:42`), a prefix ending in `*` (`support:*`), or `*` alone (any).
 */

export const MAX_CHANNEL_NAME_LENGTH = 200;

const CHANNEL_NAME = /^[A-Za-z0-9_.:/-]{1,200}$/;

/** Whether `name` is a valid channel name: 1–200 characters of `[A-Za-z0-9_.:/-]`. */
export function isValidChannelName(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_NAME.test(name);
}

/** Whether one of the `patterns` allows joining `channel`. */
export function channelAllowed(patterns: readonly string[], channel: string): boolean {
  for (const pattern of patterns) {
    if (pattern === '*') return true;
    if (pattern.endsWith('*')) {
      if (channel.startsWith(pattern.slice(0, -1))) return true;
    } else if (pattern === channel) {
      return true;
    }
  }
  return false;
}
