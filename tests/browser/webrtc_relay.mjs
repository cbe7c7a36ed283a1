// Drives Debian's headless Chromium (playwright-core, never a downloaded browser) through a
// WebRTC data channel between two RTCPeerConnections forced to relay through one TURN server.
//
//   node webrtc_relay.mjs --url turn:127.0.0.1:3478?transport=udp --username U --credential P
//                         [--expect relay|no-relay] [--messages 20] [--ca ca.pem]
//
// With --ca, Chromium trusts that CA for turns: through a fresh NSS database in a temporary
// HOME (certutil, Debian package libnss3-tools): certificates are really verified.
//
// Prints one JSON line: the selected candidate pair's types and relay protocol, messages
// echoed, and any icecandidateerror. Exits 0 when the expectation holds.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function parseArgs(argv) {
  const out = { expect: 'relay', messages: 20 };
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  out.messages = Number(out.messages);
  return out;
}

// Runs inside the page.
async function call(cfg) {
  const config = {
    iceServers: [{ urls: [cfg.url], username: cfg.username, credential: cfg.credential }],
    iceTransportPolicy: 'relay',
  };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const errors = [];
  const relayCandidates = { a: 0, b: 0 };
  const gathered = [];
  for (const [name, pc, other] of [['a', a, b], ['b', b, a]]) {
    gathered.push(new Promise((resolve) => {
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    }));
    pc.onicecandidate = (e) => {
      if (!e.candidate) return;
      if (e.candidate.type === 'relay') relayCandidates[name] += 1;
      other.addIceCandidate(e.candidate).catch(() => {});
    };
    pc.onicecandidateerror = (e) => errors.push({ code: e.errorCode, text: e.errorText });
  }
  const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms));

  const channel = a.createDataChannel('tern');
  const echoed = [];
  const allEchoed = new Promise((resolve) => {
    channel.onmessage = (m) => { echoed.push(m.data); if (echoed.length === cfg.messages) resolve(); };
  });
  b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
  const opened = new Promise((resolve) => { channel.onopen = resolve; });

  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription(answer);

  const result = { relayCandidates, errors, echoed: 0 };
  if (cfg.expect === 'no-relay') {
    await Promise.race([Promise.all(gathered), timeout(15000, 'gathering did not complete')]).catch(() => {});
    result.errors = errors;
    a.close(); b.close();
    return result;
  }
  try {
    await Promise.race([opened, timeout(20000, 'data channel did not open')]);
    const sent = [];
    for (let i = 0; i < cfg.messages; i++) {
      const text = `message ${i} ` + 'x'.repeat(i * 50);
      sent.push(text);
      channel.send(text);
    }
    await Promise.race([allEchoed, timeout(10000, 'not every message came back')]);
    result.echoed = echoed.filter((m, i) => m === sent[i]).length;
  } catch (e) {
    result.failure = String(e);
  }
  // The selected pair, as getStats reports it (RTCTransportStats.selectedCandidatePairId).
  const stats = await a.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  if (pair) {
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    result.selected = { local: local.candidateType, remote: remote.candidateType,
                        relayProtocol: local.relayProtocol, state: pair.state };
  }
  a.close(); b.close();
  return result;
}

const args = parseArgs(process.argv);
const home = mkdtempSync(join(tmpdir(), 'tern-chromium-home-'));
if (args.ca) {
  const db = `sql:${join(home, '.pki', 'nssdb')}`;
  execFileSync('mkdir', ['-p', join(home, '.pki', 'nssdb')]);
  execFileSync('certutil', ['-N', '--empty-password', '-d', db]);
  execFileSync('certutil', ['-A', '-t', 'C,,', '-n', 'tern-test-ca', '-i', args.ca, '-d', db]);
}
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  env: { ...process.env, HOME: home },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let result;
try {
  const page = await browser.newPage();
  result = await page.evaluate(call, { url: args.url, username: args.username, credential: args.credential,
                                       expect: args.expect, messages: args.messages });
} finally {
  await browser.close();
  rmSync(home, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
const ok = args.expect === 'no-relay'
  ? result.relayCandidates.a === 0 && result.relayCandidates.b === 0
  : result.selected?.local === 'relay' && result.selected?.remote === 'relay' && result.echoed === args.messages;
process.exit(ok ? 0 : 1);
