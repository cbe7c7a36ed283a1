/* The maps the kernel fast path (channel_data.bpf.c) shares with user space (fast_path.cpp):
 * one layout, included by both the eBPF program (C, clang -target bpf) and tern (C++).
 * Addresses are 16 bytes in network order; an IPv4 address fills the first 4, the rest zero.
 * Ports and the channel number are in network order, as they sit in the packet. Expiry times
 * are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns, std::chrono::steady_clock). */
#ifndef TERN_FAST_PATH_MAPS_H
#define TERN_FAST_PATH_MAPS_H

#include <linux/types.h>

#define TERN_FP_FAMILY_IPV4 4
#define TERN_FP_FAMILY_IPV6 6

/* ChannelData a client sent to a UDP listener (RFC 8656 §12.4 -> §12.6). */
struct tern_fp_channel_key {
  __u8 family;
  __u8 zero;
  __be16 channel;
  __be16 client_port;
  __be16 listener_port;
  __u8 client_ip[16];
  __u8 listener_ip[16];
};

struct tern_fp_channel_value {
  __u8 relay_ip[16];
  __u8 peer_ip[16];
  __be16 relay_port;
  __be16 peer_port;
  __u32 slot; /* index into the usage map */
  __u64 expires_ns; /* the earliest of the channel's, its permission's and the allocation's end */
};

/* A datagram a peer sent to a relayed address (RFC 8656 §12.7 -> ChannelData). */
struct tern_fp_peer_key {
  __u8 family;
  __u8 zero[3];
  __be16 relay_port;
  __be16 peer_port;
  __u8 relay_ip[16];
  __u8 peer_ip[16];
};

struct tern_fp_peer_value {
  __u8 listener_ip[16];
  __u8 client_ip[16];
  __be16 listener_port;
  __be16 client_port;
  __be16 channel;
  __u16 zero;
  __u32 slot;
  __u64 expires_ns;
};

/* Per allocation and CPU: what the kernel relayed (ChannelData payload bytes, as user space
 * counts them). */
struct tern_fp_usage {
  __u64 packets_to_peer;
  __u64 bytes_to_peer;
  __u64 packets_to_client;
  __u64 bytes_to_client;
};

/* Why the program passed a packet it had an entry for up to user space. */
enum tern_fp_fallback {
  TERN_FP_FALLBACK_EXPIRED = 0,  /* the entry's time is over: user space decides */
  TERN_FP_FALLBACK_MTU,          /* would exceed the egress MTU once the header is added */
  TERN_FP_FALLBACK_ROUTE,        /* no route, or the route leads back to this host */
  TERN_FP_FALLBACK_CHECKSUM,     /* a checksum the device completes later (CHECKSUM_PARTIAL) */
  TERN_FP_FALLBACK_MALFORMED,    /* ChannelData whose lengths do not add up */
  TERN_FP_FALLBACK_FORWARDING,   /* forwarding is off on the ingress interface (fib lookup) */
  TERN_FP_FALLBACK_COUNT
};

/* Per CPU: ChannelData with no entry (channel not bound here, or cross-family) and the
 * fallbacks above. */
struct tern_fp_stats {
  __u64 misses;
  __u64 fallbacks[TERN_FP_FALLBACK_COUNT];
};

#define TERN_FP_MAX_CHANNELS 262144
#define TERN_FP_MAX_SLOTS 131072

#endif
