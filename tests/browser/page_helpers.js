// Runs inside the page (chromium.mjs adds it before a test's own page code): what every
// WebRTC test here shares. Two RTCPeerConnections that may use only relay candidates of the
// one TURN server under test, wired to each other, and the selected candidate pair as
// getStats reports it (RTCTransportStats.selectedCandidatePairId).
window.tern = {
  // The pair, each trickling its candidates to the other; `errors` collects
  // icecandidateerror, `gathered` resolves once both have gathered.
  peers(cfg) {
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
    return { a, b, errors, relayCandidates, gathered: Promise.all(gathered) };
  },

  // Offer from `a`, answer from `b` (call after a's data channel exists).
  async negotiate(a, b) {
    const offer = await a.createOffer();
    await a.setLocalDescription(offer);
    await b.setRemoteDescription(offer);
    const answer = await b.createAnswer();
    await b.setLocalDescription(answer);
    await a.setRemoteDescription(answer);
  },

  timeout(ms, what) {
    return new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms));
  },

  // `pc`'s selected pair: candidate types, relay protocol and state, then the pair's id and
  // both candidates' addresses (a relay candidate's address is its relayed transport address).
  async selectedPair(pc) {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return { local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol,
             state: pair.state, id: pair.id, localAddress: `${local.address}:${local.port}`,
             remoteAddress: `${remote.address}:${remote.port}` };
  },
};
