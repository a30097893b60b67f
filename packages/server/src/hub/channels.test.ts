import { describe, expect, it } from 'vitest';
import { channelAllowed, isValidChannelName } from './channels.js';

describe('channels', () => {
  it('accepts 1–200 characters of [A-Za-z0-9_.:/-] as a channel name', () => {
    expect(isValidChannelName('project:42')).toBe(true);
    expect(isValidChannelName('org/team-1.chat_x')).toBe(true);
    expect(isValidChannelName('a'.repeat(200))).toBe(true);
    expect(isValidChannelName('a'.repeat(201))).toBe(false);
    expect(isValidChannelName('')).toBe(false);
    expect(isValidChannelName('has space')).toBe(false);
    expect(isValidChannelName('star*')).toBe(false);
    expect(isValidChannelName(42)).toBe(false);
  });

  it('allows an exact name, a prefix pattern ending in *, or * alone', () => {
    expect(channelAllowed(['project:42'], 'project:42')).toBe(true);
    expect(channelAllowed(['project:42'], 'project:420')).toBe(false);
    expect(channelAllowed(['support:*'], 'support:7')).toBe(true);
    expect(channelAllowed(['support:*'], 'supportx')).toBe(false);
    expect(channelAllowed(['*'], 'anything')).toBe(true);
    expect(channelAllowed([], 'project:42')).toBe(false);
    expect(channelAllowed(['a', 'b:*'], 'b:1')).toBe(true);
  });
});
