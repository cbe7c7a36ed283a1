// A data channel that runs across an upgrade of the TURN server (docs/upgrade.md): two
// RTCPeerConnections relayed through it (chromium.mjs, page_helpers.js), channel 'a' -> 'b'
// reliable and ordered, a numbered message every 20 ms.
//
//   node webrtc_upgrade.mjs --url turn:127.0.0.1:3478?transport=udp --username U --credential P
//                           --go-on FILE [--after-ms 2000]
//
// Once messages flow it prints `flowing {selected pairs}`; the caller then upgrades the
// server and creates FILE. After that the messages run on for --after-ms, stop, and it prints
// `result {...}`: the selected pairs before and after, every ICE connection state change
// after the first 'connected', and whether every message arrived, in order. Exits 0 when the
// pairs are the same, ICE stayed connected and nothing was lost.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, withChromiumPage } from './chromium.mjs';

// In the page: connect, start sending, and return the selected pairs once messages flow.
async function start(cfg) {
  const { a, b, errors } = window.tern.peers(cfg);
  const run = { a, b, errors, sent: 0, received: [], states: [], mark: -1 };
  window.run = run;
  const channel = a.createDataChannel('tern', { ordered: true });
  const opened = new Promise((resolve) => { channel.onopen = resolve; });
  b.ondatachannel = (e) => { e.channel.onmessage = (m) => run.received.push(Number(m.data)); };
  await window.tern.negotiate(a, b);
  await Promise.race([opened, window.tern.timeout(20000, 'data channel did not open')]);
  // From here on ICE must stay 'connected': a restart or a lost relay shows up as a change.
  for (const [name, pc] of [['a', a], ['b', b]]) {
    pc.oniceconnectionstatechange = () => run.states.push(`${name}:${pc.iceConnectionState}`);
  }
  run.timer = setInterval(() => { channel.send(String(run.sent)); run.sent += 1; }, 20);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return { a: await window.tern.selectedPair(a), b: await window.tern.selectedPair(b),
           states: [a.iceConnectionState, b.iceConnectionState], received: run.received.length };
}

// In the page: the server has been upgraded; what arrives from now on, the new process relayed.
function markUpgraded() { window.run.mark = window.run.received.length; }

// In the page: stop sending, wait for the last message, report.
async function finish() {
  const run = window.run;
  clearInterval(run.timer);
  const give_up = Date.now() + 10000;
  while (run.received.length < run.sent && Date.now() < give_up) await new Promise((r) => setTimeout(r, 50));
  const inOrder = run.received.every((n, i) => n === i);
  const result = { a: await window.tern.selectedPair(run.a), b: await window.tern.selectedPair(run.b),
                   iceStates: run.states, finalStates: [run.a.iceConnectionState, run.b.iceConnectionState],
                   sent: run.sent, received: run.received.length, inOrder,
                   receivedAfterUpgrade: run.received.length - run.mark, errors: run.errors };
  run.a.close(); run.b.close();
  return result;
}

const args = parseArgs(process.argv, { 'after-ms': 2000 });
const outcome = await withChromiumPage({}, async (page) => {
  const before = await page.evaluate(start, { url: args.url, username: args.username, credential: args.credential });
  console.log(`flowing ${JSON.stringify(before)}`);
  const give_up = Date.now() + 60000;
  while (!existsSync(args['go-on']) && Date.now() < give_up) await sleep(50);
  await page.evaluate(markUpgraded);
  await sleep(Number(args['after-ms']));
  return { before, after: await page.evaluate(finish) };
});
const { before, after } = outcome;
const same = (x, y) => x && y && x.id === y.id && x.localAddress === y.localAddress && x.remoteAddress === y.remoteAddress;
after.samePair = same(before.a, after.a) && same(before.b, after.b);
after.lost = after.sent - after.received;
console.log(`result ${JSON.stringify(after)}`);
const ok = after.samePair && after.iceStates.length === 0 && after.inOrder && after.lost === 0 &&
           after.receivedAfterUpgrade > 0 && before.a?.local === 'relay' && before.a?.remote === 'relay';
process.exit(ok ? 0 : 1);
