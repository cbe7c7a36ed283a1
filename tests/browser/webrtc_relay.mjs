// Drives Debian's headless Chromium (chromium.mjs) through a WebRTC data channel between two
// RTCPeerConnections forced to relay through one TURN server.
//
//   node webrtc_relay.mjs --url turn:127.0.0.1:3478?transport=udp --username U --credential P
//                         [--expect relay|no-relay] [--messages 20] [--ca ca.pem]
//
// Prints one JSON line: the selected candidate pair's types and relay protocol, messages
// echoed, and any icecandidateerror. Exits 0 when the expectation holds.
import { parseArgs, withChromiumPage } from './chromium.mjs';

// Runs inside the page.
async function call(cfg) {
  const { a, b, errors, relayCandidates, gathered } = window.tern.peers(cfg);
  const channel = a.createDataChannel('tern');
  const echoed = [];
  const allEchoed = new Promise((resolve) => {
    channel.onmessage = (m) => { echoed.push(m.data); if (echoed.length === cfg.messages) resolve(); };
  });
  b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
  const opened = new Promise((resolve) => { channel.onopen = resolve; });
  await window.tern.negotiate(a, b);

  const result = { relayCandidates, errors, echoed: 0 };
  if (cfg.expect === 'no-relay') {
    await Promise.race([gathered, window.tern.timeout(15000, 'gathering did not complete')]).catch(() => {});
    result.errors = errors;
    a.close(); b.close();
    return result;
  }
  try {
    await Promise.race([opened, window.tern.timeout(20000, 'data channel did not open')]);
    const sent = [];
    for (let i = 0; i < cfg.messages; i++) {
      const text = `message ${i} ` + 'x'.repeat(i * 50);
      sent.push(text);
      channel.send(text);
    }
    await Promise.race([allEchoed, window.tern.timeout(10000, 'not every message came back')]);
    result.echoed = echoed.filter((m, i) => m === sent[i]).length;
  } catch (e) {
    result.failure = String(e);
  }
  const selected = await window.tern.selectedPair(a);
  if (selected) result.selected = selected;
  a.close(); b.close();
  return result;
}

const args = parseArgs(process.argv, { expect: 'relay', messages: 20 });
args.messages = Number(args.messages);
const result = await withChromiumPage({ ca: args.ca }, (page) => page.evaluate(call, {
  url: args.url, username: args.username, credential: args.credential, expect: args.expect, messages: args.messages,
}));
console.log(JSON.stringify(result));
const ok = args.expect === 'no-relay'
  ? result.relayCandidates.a === 0 && result.relayCandidates.b === 0
  : result.selected?.local === 'relay' && result.selected?.remote === 'relay' && result.echoed === args.messages;
process.exit(ok ? 0 : 1);
