// CLI11 wiring for the serve options; see cli_options.hpp.
#include "relay/config/cli_options.hpp"

#include "relay/config/user_file.hpp"

namespace tern::config {

namespace {

// One helper per option group. --help and --print-config list options in the order they were
// added, so each helper keeps its group's order and addServeOptions calls them in turn.

// Where and how tern serves: listeners, worker threads, logging and socket tuning.
void addServingOptions(CLI::App& app, Config& config) {
  app.add_option("--listen", config.listen,
                 "Address to serve STUN/TURN on, UDP and TCP (repeatable): ADDR:PORT, "
                 "IPv6 as [ADDR]:PORT; port 0 picks a free port")
      ->type_name("ADDR:PORT")
      ->default_str(config.listen.empty() ? "" : config.listen.front())
      ->delimiter(',');
  app.add_option("--workers", config.workers, "Worker threads, each with its own event loop (0: one per core)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn or error")->type_name("LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", config.log_format, "plain or json (one object per line)")
      ->type_name("FORMAT")
      ->capture_default_str();
  app.add_option("--software", config.software,
                 "SOFTWARE attribute in responses (RFC 8489 §14.14); empty to leave it out")
      ->type_name("TEXT")
      ->capture_default_str();
  app.add_option("--udp-receive-buffer", config.udp_receive_buffer,
                 "SO_RCVBUF of UDP listeners in bytes, K/M suffix allowed (0: system default; capped by net.core.rmem_max)")
      ->type_name("BYTES")
      ->capture_default_str();
  app.add_option("--udp-send-buffer", config.udp_send_buffer,
                 "SO_SNDBUF of UDP listeners in bytes, K/M suffix allowed (0: system default; capped by net.core.wmem_max)")
      ->type_name("BYTES")
      ->capture_default_str();
  app.add_option("--udp-segmentation", config.udp_segmentation,
                 "Send bursts of equal-sized datagrams to one destination with UDP segmentation offload "
                 "(UDP_SEGMENT); a socket whose path refuses it falls back by itself")
      ->type_name("BOOL")
      ->capture_default_str();
  app.add_option("--fast-path", config.fast_path,
                 "Relay UDP ChannelData in the kernel (eBPF, TC ingress; docs/fast-path.md): auto uses it "
                 "when this process may load it and logs once otherwise, on refuses to start without it")
      ->type_name("auto|on|off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--fast-path-interface", config.fast_path_interfaces,
                 "An interface the fast path attaches to (repeatable; default: those holding the "
                 "listen and relay addresses, every non-loopback interface for a wildcard)")
      ->type_name("NAME");
  app.add_option("--fast-path-capacity", config.fast_path_capacity,
                 "Allocations the fast path carries at once (its maps' size); more stay in user space")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--tcp-idle-timeout", config.tcp_idle_timeout,
                 "Seconds a TCP connection may stay silent before it is closed")
      ->type_name("SECONDS")
      ->capture_default_str();
}

// Operations: the HTTP port, admin calls and draining.
void addOperationsOptions(CLI::App& app, Config& config) {
  app.add_option("--metrics-listen", config.metrics_listen,
                 "Serve /metrics (Prometheus), /healthz, /readyz, and POST /drain, POST /upgrade and the "
                 "admin API /admin/ (loopback clients with the --admin-token-file token only) over HTTP on "
                 "ADDR:PORT; off unless set")
      ->type_name("ADDR:PORT");
  // The token stays in its file: a printed configuration shows only the path.
  app.add_option("--admin-token-file", config.admin_token_file,
                 "File whose first line (at least 16 characters) is the bearer token admin calls "
                 "(POST /drain, tern drain, tern upgrade, tern admin) must carry; reloaded on SIGHUP. Without "
                 "it they get 403")
      ->type_name("FILE");
  app.add_option("--redis", config.redis,
                 "Fleet state in Redis (docs/fleet.md): revocations reach every node sharing it; without it "
                 "each node's state is its own. A Redis outage falls back to this node's state and "
                 "reconnects; restart-only")
      ->type_name("redis://HOST[:PORT][/DB]");
  app.add_option("--redis-password-file", config.redis_password_file,
                 "File whose first line is the Redis AUTH password; restart-only")
      ->type_name("FILE");
  app.add_option("--drain-timeout", config.drain_timeout,
                 "Seconds a drain (SIGTERM, tern drain) lets existing allocations run before tern exits "
                 "(a second SIGTERM exits at once)")
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option(
         "--hand-over-socket", config.hand_over_socket,
         "Unix socket (absolute path) through which a tern started beside this one with the same "
         "path takes over its sockets and calls, as tern upgrade does: a new Kubernetes pod on "
         "the node; a start finding nobody there serves normally and listens on it")
      ->type_name("PATH");
  app.add_option("--upgrade-timeout", config.upgrade_timeout,
                 "Seconds an upgrade's new process has to say it is ready, and again to take "
                 "everything over; past either it is killed and this process serves on (1-3600)")
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("--alternate-server", config.alternate_servers,
                 "While draining, redirect new allocations here with 300 Try Alternate (repeatable; the "
                 "first of the client's address family is used; without one they get 508)")
      ->type_name("ADDR:PORT");
  app.add_option("--alternate-domain", config.alternate_domain,
                 "The name in the alternate servers' TLS certificates: sent as ALTERNATE-DOMAIN with "
                 "ALTERNATE-SERVER to TLS and DTLS clients, which verify the alternate against it (RFC 8489 §14.16)")
      ->type_name("NAME");
}

// TLS and DTLS listeners and their certificate.
void addTlsOptions(CLI::App& app, Config& config) {
  app.add_option("--tls-listen", config.tls_listen,
                 "Address to serve TURN over TLS on (TCP, repeatable); needs --cert and --key")
      ->type_name("ADDR:PORT");
  app.add_option("--dtls-listen", config.dtls_listen,
                 "Address to serve TURN over DTLS on (UDP, RFC 7350, repeatable); needs --cert and --key")
      ->type_name("ADDR:PORT");
  app.add_option("--proxy-protocol-from", config.proxy_protocol_from,
                 "TCP and TLS connections from CIDR (a load balancer) must start with a PROXY protocol v1 "
                 "or v2 header, whose client address tern then uses; from elsewhere a header is not "
                 "accepted (repeatable; needs a restart)")
      ->type_name("CIDR");
  app.add_option("--cert", config.cert,
                 "PEM certificate chain for TLS; with it, --listen TCP ports also accept TLS")
      ->type_name("FILE");
  app.add_option("--key", config.key, "PEM private key of --cert")->type_name("FILE");
}

// Authentication: long-term credentials, TURN REST secrets, static users, OAuth.
void addAuthOptions(CLI::App& app, Config& config) {
  app.add_option("--realm", config.realm, "REALM of long-term credentials (RFC 8489 §9.2)")
      ->type_name("TEXT")
      ->capture_default_str();
  app.add_option("--auth-secret-file", config.auth_secret_files,
                 "File of TURN REST API shared secrets, one per line (repeatable; several "
                 "secrets are accepted at once, for rotation)")
      ->type_name("FILE");
  // Secrets never need to appear in argv or in a printed configuration.
  app.add_option("--auth-secret", config.auth_secret,
                 "A TURN REST API shared secret; prefer the TERN_AUTH_SECRET environment "
                 "variable or --auth-secret-file")
      ->type_name("SECRET")
      ->envname("TERN_AUTH_SECRET")
      ->configurable(false);
  app.add_option("--user", config.users,
                 "Static user NAME:PASSWORD (repeatable); visible in argv to local users: prefer "
                 "--user-file")
      ->type_name("NAME:PASSWORD");
  app.add_option("--user-file", config.user_files,
                 "File of static users, one NAME:PASSWORD per line ('#' comments and blank lines "
                 "skipped; repeatable), read again on SIGHUP: add, remove or change users without "
                 "a restart")
      ->type_name("FILE");
  app.add_option("--mobility", config.mobility,
                 "RFC 8016: a client that asks for it gets a MOBILITY-TICKET and may move its UDP or DTLS "
                 "allocation to a new address; false answers such requests 405 (Mobility Forbidden)")
      ->type_name("BOOL")
      ->capture_default_str();
  app.add_option("--strict-expiry", config.strict_expiry,
                 "A TURN REST credential's expiry also bounds its allocations: lifetimes end at it and "
                 "Refresh fails after it (default: only new allocations check it, so calls outlive it)")
      ->type_name("BOOL")
      ->capture_default_str();
  // Keys stay in files: a printed configuration shows only the paths.
  app.add_option("--oauth-key-file", config.oauth_key_files,
                 "File of OAuth AS-RS keys for RFC 7635 ACCESS-TOKENs, one 'KID BASE64-KEY [A256GCM|A128GCM]' "
                 "per line (repeatable; every kid must be unique). Loaded and checked; the relay does not "
                 "accept access tokens yet")
      ->type_name("FILE");
  app.add_option("--oauth-server-name", config.oauth_server_name,
                 "STUN server name of RFC 7635, to be sent as THIRD-PARTY-AUTHORIZATION and bound into every "
                 "access token, so tokens must be minted for it (default: the --realm; needs --oauth-key-file)")
      ->type_name("NAME");
  app.add_option("--nonce-lifetime", config.nonce_lifetime,
                 "Seconds a NONCE stays valid before 438 Stale Nonce")
      ->type_name("SECONDS")
      ->capture_default_str();
}

// Relaying: the relayed addresses and which peers they may reach.
void addRelayOptions(CLI::App& app, Config& config) {
  app.add_option("--relay-ip", config.relay_ips,
                 "Address to allocate relayed ports on (repeatable; default: the --listen "
                 "addresses, or the host's addresses when listening on a wildcard)")
      ->type_name("IP");
  app.add_option("--relay-ports", config.relay_ports, "Relay port range, split across workers")
      ->type_name("MIN-MAX")
      ->capture_default_str();
  app.add_option("--external-ip", config.external_ips,
                 "Advertise PUBLIC for relayed addresses on PRIVATE (1:1 NAT; repeatable)")
      ->type_name("PUBLIC[=PRIVATE]");
  app.add_option("--allow-peer", config.allow_peers,
                 "Allow peers in CIDR despite the default deny list (repeatable)")
      ->type_name("CIDR");
  app.add_option("--deny-peer", config.deny_peers, "Deny peers in CIDR; wins over --allow-peer (repeatable)")
      ->type_name("CIDR");
  app.add_option("--allow-own-address-peers", config.allow_own_address_peers,
                 "Peers on the relay's own addresses may use any port but tern's listening ports "
                 "(default: only relay ports); for one-host labs and tests, with --allow-peer for loopback")
      ->type_name("BOOL")
      ->capture_default_str();
}

// Limits on what one allocation or one user may hold or send.
void addAllocationLimitOptions(CLI::App& app, Config& config) {
  app.add_option("--max-allocations", config.max_allocations, "Allocations in total (0: no limit but ports)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-allocations-per-user", config.max_allocations_per_user,
                 "Allocations per username (0: no limit)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-lifetime", config.max_lifetime, "Longest allocation lifetime a client may ask for")
      ->type_name("SECONDS")
      ->capture_default_str();
  // For tests only (RFC 8656 §9, §12 fix 300 and 600 seconds): an empty group hides them.
  app.add_option("--permission-lifetime", config.permission_lifetime, "Seconds a permission lasts (tests only)")
      ->type_name("SECONDS")
      ->group("")
      ->capture_default_str();
  app.add_option("--channel-lifetime", config.channel_lifetime, "Seconds a channel binding lasts (tests only)")
      ->type_name("SECONDS")
      ->group("")
      ->capture_default_str();
  app.add_option("--max-permissions-per-allocation", config.max_permissions_per_allocation,
                 "Permissions (peer IPs) per allocation")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-channels-per-allocation", config.max_channels_per_allocation,
                 "Channel bindings per allocation")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-connections-per-allocation", config.max_connections_per_allocation,
                 "TCP connections to peers per TCP allocation (RFC 6062)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-bps", config.max_bps,
                 "Relayed application data per allocation, in bits per second and each direction on its own "
                 "(K, M, G: 10^3, 10^6, 10^9; bursts of one second's worth pass; 0: no limit). Datagrams over "
                 "it are dropped; RFC 6062 TCP connections stop reading instead. coturn's --max-bps counts "
                 "bytes: multiply its value by 8")
      ->type_name("BITS_PER_SECOND")
      ->capture_default_str();
  app.add_option("--max-bps-per-user", config.max_bps_per_user,
                 "Like --max-bps, shared by all allocations of one username (a TURN REST username's user "
                 "part) on every worker (0: no limit)")
      ->type_name("BITS_PER_SECOND")
      ->capture_default_str();
}

// Abuse resistance: answer rates and connection caps against floods and spoofed sources.
void addAbuseOptions(CLI::App& app, Config& config) {
  app.add_option("--unauthenticated-rate", config.unauthenticated_rate,
                 "Answers per second, on average, to requests without valid credentials (401s, Binding "
                 "responses, 400s) from one source address (an IPv6 /64; UDP and TCP/TLS counted apart), per "
                 "worker: a source whose packets spread over N workers gets up to N times this. Over it they "
                 "are dropped and counted, so tern cannot be aimed at a spoofed victim. Generous so that "
                 "hundreds of callers behind one NAT never notice (0: no limit)")
      ->type_name("PER_SECOND")
      ->capture_default_str();
  app.add_option("--unauthenticated-burst", config.unauthenticated_burst,
                 "Answers to requests without valid credentials that one source may get at once, before "
                 "--unauthenticated-rate applies (a whole office starting its calls together)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-requests-per-allocation", config.max_requests_per_allocation,
                 "Authenticated requests per second, on average, on one allocation (Refresh, "
                 "CreatePermission, ChannelBind, Connect; not ChannelData or Send, which --max-bps "
                 "limits). Over it they are dropped unanswered and counted, so one credential holder "
                 "cannot spend a worker's CPU. Real clients send a few a minute (0: no limit)")
      ->type_name("PER_SECOND")
      ->capture_default_str();
  app.add_option("--max-requests-per-allocation-burst", config.max_requests_per_allocation_burst,
                 "Authenticated requests one allocation may send at once before "
                 "--max-requests-per-allocation applies (a call's first permissions and channels, "
                 "with retransmissions)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-tcp-connections-per-ip", config.max_tcp_connections_per_ip,
                 "TCP and TLS client connections from one IP address (an IPv6 /64), across workers; more are "
                 "reset at once. Generous for offices whose callers reach TURN only over TLS, about two "
                 "connections per caller (0: no limit)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-tcp-connections", config.max_tcp_connections,
                 "TCP and TLS client connections in all, across workers; more are reset at once. auto: half the "
                 "open files limit, so a flood of connections cannot take the descriptors relay sockets need "
                 "(0: no limit)")
      ->type_name("N|auto")
      ->capture_default_str();
  app.add_option("--max-dtls-handshakes-per-ip", config.max_dtls_handshakes_per_ip,
                 "DTLS handshakes in progress from one IP address (an IPv6 /64), across workers, counted from the "
                 "cookie echo until the handshake ends (10 s at most); more are refused until some end, so one "
                 "host cannot fill the handshake slots (0: no limit)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-dtls-sessions-per-ip", config.max_dtls_sessions_per_ip,
                 "DTLS sessions from one IP address (an IPv6 /64), across workers, in handshake or established; "
                 "more are refused (0: no limit)")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--max-dtls-sessions", config.max_dtls_sessions,
                 "DTLS sessions in all, across workers; more are refused. auto: half the open files limit, as "
                 "for --max-tcp-connections: each useful session holds a relay socket (0: no limit)")
      ->type_name("N|auto")
      ->capture_default_str();
}

}  // namespace

void addServeOptions(CLI::App& app, Config& config) {
  // The file's keys are the long option names: `listen = ["127.0.0.1:3478"]`, `workers = 2`.
  app.set_config("--config", "", "Read options from FILE (TOML; keys are the long option names)")
      ->type_name("FILE");
  // A misspelt key must stop start-up, not be silently ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  addServingOptions(app, config);
  addOperationsOptions(app, config);
  addTlsOptions(app, config);
  addAuthOptions(app, config);
  addRelayOptions(app, config);
  addAllocationLimitOptions(app, config);
  addAbuseOptions(app, config);
}

std::string printableConfig(CLI::App& app) {
  // docs/security.md: secrets are never printed. --auth-secret is not configurable, so it is
  // left out; a --user's name is configuration, its password a secret. The Config the
  // options wrote into keeps the real values: only what CLI11 prints is redacted.
  if (CLI::Option* users = app.get_option_no_throw("--user");
      users != nullptr && users->count() > 0) {
    std::vector<std::string> printed;
    for (const std::string& user : users->results()) printed.push_back(redactedUser(user));
    users->clear();
    for (std::string& user : printed) users->add_result(std::move(user));
  }
  return app.config_to_str(true, true);
}

}  // namespace tern::config
