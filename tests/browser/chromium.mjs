// Node side of the WebRTC tests: starts Debian's headless Chromium (playwright-core, never a
// downloaded browser) with the flags that work here as root (INTEROP-NOTES.md), in a fresh
// HOME, and gives the test a page that has page_helpers.js loaded.
//
// With `ca`, Chromium trusts that CA for turns: through a fresh NSS database in the temporary
// HOME (certutil, Debian package libnss3-tools): certificates are really verified.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// `--name value` pairs over `defaults`.
export function parseArgs(argv, defaults = {}) {
  const out = { ...defaults };
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

// Runs `body(page)` in a fresh browser and returns what it returns; the browser and its HOME
// are gone afterwards.
export async function withChromiumPage({ ca } = {}, body) {
  const home = mkdtempSync(join(tmpdir(), 'tern-chromium-home-'));
  if (ca) {
    const db = `sql:${join(home, '.pki', 'nssdb')}`;
    execFileSync('mkdir', ['-p', join(home, '.pki', 'nssdb')]);
    execFileSync('certutil', ['-N', '--empty-password', '-d', db]);
    execFileSync('certutil', ['-A', '-t', 'C,,', '-n', 'tern-test-ca', '-i', ca, '-d', db]);
  }
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      env: { ...process.env, HOME: home },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    await page.addScriptTag({ path: join(dirname(fileURLToPath(import.meta.url)), 'page_helpers.js') });
    return await body(page);
  } finally {
    if (browser) await browser.close();
    rmSync(home, { recursive: true, force: true });
  }
}
