import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium, headless, as every browser test launches it (never a downloaded browser).
 * Without the background-networking flags it keeps trying hosts this closed network refuses.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
