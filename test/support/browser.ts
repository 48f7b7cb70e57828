import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import AxeBuilder from '@axe-core/playwright';

/** Debian's Chromium (`apt-get install chromium`), which playwright-core 1.64 drives; nothing is downloaded. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Starts Chromium headless. Playwright gives each launch a fresh --user-data-dir of its own (a temporary
 * profile it deletes on close); `close()` stops the browser process it started.
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

export const SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', 'test-artifacts', 'screenshots');

/** Keeps a full-page screenshot as a test artifact (test-artifacts/screenshots/<name>.png, git-ignored). */
export async function keepScreenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const take = () => page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  try {
    await take();
  } catch (err) {
    // Headless Chromium on a loaded machine sometimes answers a full-page capture with "Unable to capture
    // screenshot" (a frame not ready): tried once more, after a moment, before it fails the test.
    if (!/Unable to capture screenshot/.test((err as Error).message)) throw err;
    await new Promise((resolve) => setTimeout(resolve, 500));
    await take();
  }
}

export interface AxeFinding {
  id: string;
  impact: string;
  help: string;
  targets: string[];
}

/** axe-core's serious and critical violations on the page as it is now. */
export async function seriousAccessibilityViolations(page: Page): Promise<AxeFinding[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact ?? '', help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) }));
}
