// SPDX-License-Identifier: (MIT OR GPL-2.0)
/* tern's kernel fast path (issue 21, docs/fast-path.md): a TC ingress program that relays UDP
 * ChannelData between a client and a peer without waking user space.
 *
 *   client -> listener:  ChannelData (RFC 8656 §12.4)  -> relayed address -> peer, header and
 *                        padding stripped (§12.6 as user space does it);
 *   peer -> relayed:     payload                        -> listener -> client as ChannelData.
 *
 * The maps are a cache of what user space decided (DESIGN.md §6): an entry exists only for a
 * live channel whose permission is live, and carries the earliest of their ends, so the
 * program never relays past a permission's end even if user space is late to delete it.
 * Anything it does not recognise, or cannot relay exactly as user space would, it passes up
 * unchanged (PASS): STUN, Send/Data indications, fragments, IP options, extension
 * headers, GSO packets, checksums a device completes later, too big for the egress MTU, a
 * route that is not a plain forward (the peer is one of this host's addresses).
 *
 * TC rather than XDP: the program runs on any interface (veth included) without driver
 * support or an XDP program on the far end, the skb helpers resize the packet and keep the
 * device's checksum state right, and bpf_redirect_neigh resolves the next hop's MAC when the
 * neighbour table has none yet. Attached as a TCX link, it is detached when tern's last
 * descriptor of the link goes, a crash included. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "relay/io/fast_path_maps.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Sizes are set by user space before loading (--fast-path-capacity). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, TERN_FP_MAX_CHANNELS);
  __type(key, struct tern_fp_channel_key);
  __type(value, struct tern_fp_channel_value);
} channels SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, TERN_FP_MAX_CHANNELS);
  __type(key, struct tern_fp_peer_key);
  __type(value, struct tern_fp_peer_value);
} peers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TERN_FP_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct tern_fp_usage);
} usage SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct tern_fp_stats);
} stats SEC(".maps");

/* The kernel's own skb, for the one field __sk_buff does not show (CO-RE: the offset is
 * taken from the running kernel's BTF at load time). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
struct sk_buff___tern {
  __u8 ip_summed : 2;
} __attribute__((preserve_access_index));
#define TERN_CHECKSUM_PARTIAL 3

#define ETH_LEN 14
#define UDP_LEN 8
#define CHANNEL_HEADER_LEN 4
#define TTL_NEW 64
/* Not this program's packet: TCX runs the next program attached (another tern's during an
 * upgrade), and after the last one the stack takes it, unchanged. TC_ACT_OK would end the
 * chain here. */
#define PASS TC_ACT_UNSPEC
/* to_peer and to_client found no entry for the packet (not a TC verdict). */
#define NO_ENTRY (-1000)
/* Ethernet, IPv6 and UDP headers and the ChannelData header: what must be linear. */
#define HEADERS_MAX (ETH_LEN + 40 + UDP_LEN + CHANNEL_HEADER_LEN)

/* What both directions need of a parsed packet. */
struct packet {
  __u8 family;
  __u8 src[16];
  __u8 dst[16];
  __u32 l3_len;  /* IP header length: 20 or 40 */
  __u32 ip_len;  /* IP total length */
  struct udphdr udp;
  __u8 ip_header[40];
};

/* The words the UDP checksum loses and gains (RFC 1071 §2(4): incremental update). Addresses
 * take 16 bytes either way: an IPv4 address's zero tail adds nothing to the sum. */
struct checksum_words {
  __u8 src[16];
  __u8 dst[16];
  __be16 source;
  __be16 dest;
  __be16 len_pseudo;
  __be16 len_header;
  __be32 channel_header;
  __u8 padding[4];
};

static __always_inline void count_fallback(enum tern_fp_fallback reason) {
  __u32 zero = 0;
  struct tern_fp_stats *s = bpf_map_lookup_elem(&stats, &zero);
  if (s && reason < TERN_FP_FALLBACK_COUNT) s->fallbacks[reason]++;
}

static __always_inline void count_miss(void) {
  __u32 zero = 0;
  struct tern_fp_stats *s = bpf_map_lookup_elem(&stats, &zero);
  if (s) s->misses++;
}

static __always_inline int pass_up(enum tern_fp_fallback reason) {
  count_fallback(reason);
  return PASS;
}

static __always_inline __u16 fold(__s64 sum) {
  __u32 s = (__u32)sum;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (__u16)~s;
}

/* The new UDP checksum: the old one minus `from`, plus `to`. An IPv4 sender's zero (no
 * checksum, RFC 768) stays zero; a computed zero is sent as all ones. */
static __always_inline __u16 udp_checksum(__u16 old, struct checksum_words *from, struct checksum_words *to,
                                          __u8 family) {
  if (old == 0 && family == TERN_FP_FAMILY_IPV4) return 0;
  __s64 sum = bpf_csum_diff((__be32 *)from, sizeof(*from), (__be32 *)to, sizeof(*to), (__u16)~old);
  __u16 check = fold(sum);
  return check ? check : 0xffff;
}

static __always_inline int checksum_is_partial(struct __sk_buff *skb) {
  struct sk_buff___tern *kskb = bpf_cast_to_kern_ctx(skb);
  return BPF_CORE_READ_BITFIELD(kskb, ip_summed) == TERN_CHECKSUM_PARTIAL;
}

static __always_inline int parse(struct __sk_buff *skb, struct packet *p) {
  if (skb->gso_size) return -1;
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  if (data + HEADERS_MAX > end) {
    __u32 want = skb->len < HEADERS_MAX ? skb->len : HEADERS_MAX;
    if (bpf_skb_pull_data(skb, want)) return -1;
    data = (void *)(long)skb->data;
    end = (void *)(long)skb->data_end;
  }
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return -1;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return -1;
    /* Options and fragments go up: user space sees the reassembled datagram. */
    if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return -1;
    if (ip->frag_off & bpf_htons(0x3fff)) return -1;
    p->family = TERN_FP_FAMILY_IPV4;
    p->l3_len = sizeof(*ip);
    p->ip_len = bpf_ntohs(ip->tot_len);
    __builtin_memcpy(p->src, &ip->saddr, 4);
    __builtin_memcpy(p->dst, &ip->daddr, 4);
    __builtin_memcpy(p->ip_header, ip, sizeof(*ip));
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = (void *)(eth + 1);
    if ((void *)(ip6 + 1) > end) return -1;
    if (ip6->nexthdr != IPPROTO_UDP) return -1; /* extension headers go up */
    p->family = TERN_FP_FAMILY_IPV6;
    p->l3_len = sizeof(*ip6);
    p->ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
    __builtin_memcpy(p->src, &ip6->saddr, 16);
    __builtin_memcpy(p->dst, &ip6->daddr, 16);
    __builtin_memcpy(p->ip_header, ip6, sizeof(*ip6));
  } else {
    return -1;
  }
  struct udphdr *udp = data + ETH_LEN + p->l3_len;
  if ((void *)(udp + 1) > end) return -1;
  __builtin_memcpy(&p->udp, udp, sizeof(*udp));
  /* The UDP length must be what the IP header says is left; Ethernet may pad beyond both. */
  if (bpf_ntohs(udp->len) != p->ip_len - p->l3_len || ETH_LEN + p->ip_len > skb->len) return -1;
  return 0;
}

/* Finds the way out from `src` to `dst` with the new packet's length, so the MTU is checked
 * too. Returns 0 with the egress in `fib`, or passes the packet up with the reason. */
static __always_inline int route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __u8 family, const __u8 *src,
                                 const __u8 *dst, __u32 ip_len) {
  __builtin_memset(fib, 0, sizeof(*fib));
  fib->l4_protocol = IPPROTO_UDP;
  fib->tot_len = (__u16)ip_len;
  fib->ifindex = skb->ingress_ifindex;
  if (family == TERN_FP_FAMILY_IPV4) {
    fib->family = 2; /* AF_INET */
    __builtin_memcpy(&fib->ipv4_src, src, 4);
    __builtin_memcpy(&fib->ipv4_dst, dst, 4);
  } else {
    fib->family = 10; /* AF_INET6 */
    __builtin_memcpy(fib->ipv6_src, src, 16);
    __builtin_memcpy(fib->ipv6_dst, dst, 16);
  }
  long rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
  if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) return (int)rc;
  if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED) return -TERN_FP_FALLBACK_MTU - 1;
  if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED) return -TERN_FP_FALLBACK_FORWARDING - 1;
  return -TERN_FP_FALLBACK_ROUTE - 1;
}

/* Writes the new IP header for `src` -> `dst` with total length `ip_len`: the sender's
 * traffic class and flow label stay, the TTL is a new datagram's, as user space sends it. */
static __always_inline int write_ip(struct __sk_buff *skb, struct packet *p, const __u8 *src, const __u8 *dst,
                                    __u32 ip_len) {
  if (p->family == TERN_FP_FAMILY_IPV4) {
    struct iphdr ip;
    __builtin_memcpy(&ip, p->ip_header, sizeof(ip));
    __builtin_memcpy(&ip.saddr, src, 4);
    __builtin_memcpy(&ip.daddr, dst, 4);
    ip.tot_len = bpf_htons((__u16)ip_len);
    ip.ttl = TTL_NEW;
    ip.frag_off = bpf_htons(0x4000); /* DF, as Linux sends UDP with path MTU discovery */
    ip.check = 0;
    ip.check = fold(bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0));
    return (int)bpf_skb_store_bytes(skb, ETH_LEN, &ip, sizeof(ip), BPF_F_RECOMPUTE_CSUM);
  }
  struct ipv6hdr ip6;
  __builtin_memcpy(&ip6, p->ip_header, sizeof(ip6));
  __builtin_memcpy(&ip6.saddr, src, 16);
  __builtin_memcpy(&ip6.daddr, dst, 16);
  ip6.payload_len = bpf_htons((__u16)(ip_len - sizeof(ip6)));
  ip6.hop_limit = TTL_NEW;
  return (int)bpf_skb_store_bytes(skb, ETH_LEN, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM);
}

/* Sends the rewritten packet out of the interface the route chose. */
static __always_inline int redirect(struct __sk_buff *skb, struct bpf_fib_lookup *fib, int fib_rc) {
  if (fib_rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
    struct bpf_redir_neigh nh = {};
    nh.nh_family = fib->family;
    if (fib->family == 2)
      nh.ipv4_nh = fib->ipv4_dst;
    else
      __builtin_memcpy(nh.ipv6_nh, fib->ipv6_dst, 16);
    return (int)bpf_redirect_neigh(fib->ifindex, &nh, sizeof(nh), 0);
  }
  struct ethhdr eth;
  __builtin_memcpy(eth.h_dest, fib->dmac, ETH_ALEN);
  __builtin_memcpy(eth.h_source, fib->smac, ETH_ALEN);
  eth.h_proto = bpf_htons(fib->family == 2 ? ETH_P_IP : ETH_P_IPV6);
  if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0)) return TC_ACT_SHOT;
  return (int)bpf_redirect(fib->ifindex, 0);
}

static __always_inline void account(__u32 slot, int to_peer, __u32 bytes) {
  struct tern_fp_usage *u = bpf_map_lookup_elem(&usage, &slot);
  if (!u) return;
  if (to_peer) {
    u->packets_to_peer++;
    u->bytes_to_peer += bytes;
  } else {
    u->packets_to_client++;
    u->bytes_to_client += bytes;
  }
}

/* The padding after a ChannelData payload of `length` bytes (0-3 bytes), placed in `words`
 * where its bytes sit in the checksum's 16-bit words: after an odd length the first padding
 * byte shares a word with the payload's last byte. */
static __always_inline int read_padding(struct __sk_buff *skb, __u32 offset, __u32 length, __u32 padding,
                                        __u8 words[4]) {
  if (length & 1) {
    if (padding == 1) return (int)bpf_skb_load_bytes(skb, offset, words + 1, 1);
    if (padding == 2) return (int)bpf_skb_load_bytes(skb, offset, words + 1, 2);
    if (padding == 3) return (int)bpf_skb_load_bytes(skb, offset, words + 1, 3);
    return 0;
  }
  if (padding == 1) return (int)bpf_skb_load_bytes(skb, offset, words, 1);
  if (padding == 2) return (int)bpf_skb_load_bytes(skb, offset, words, 2);
  if (padding == 3) return (int)bpf_skb_load_bytes(skb, offset, words, 3);
  return 0;
}

/* `channel_header`: the ChannelData header as it sits in the packet (number, length). */
static __always_inline int to_peer(struct __sk_buff *skb, struct packet *p, const __be16 channel_header[2]) {
  const __be16 channel = channel_header[0];
  const __u16 length = bpf_ntohs(channel_header[1]);
  struct tern_fp_channel_key key = {};
  key.family = p->family;
  key.channel = channel;
  key.client_port = p->udp.source;
  key.listener_port = p->udp.dest;
  __builtin_memcpy(key.client_ip, p->src, 16);
  __builtin_memcpy(key.listener_ip, p->dst, 16);
  struct tern_fp_channel_value *v = bpf_map_lookup_elem(&channels, &key);
  if (!v) return NO_ENTRY;
  if (bpf_ktime_get_ns() >= v->expires_ns) return pass_up(TERN_FP_FALLBACK_EXPIRED);
  __u32 data_len = bpf_ntohs(p->udp.len) - UDP_LEN - CHANNEL_HEADER_LEN;
  if (length > data_len || data_len - length > 3) return pass_up(TERN_FP_FALLBACK_MALFORMED);
  if (checksum_is_partial(skb)) return pass_up(TERN_FP_FALLBACK_CHECKSUM);
  __u32 padding = data_len - length;
  __u32 ip_len = p->l3_len + UDP_LEN + length;
  struct bpf_fib_lookup fib;
  int rc = route(skb, &fib, p->family, v->relay_ip, v->peer_ip, ip_len);
  if (rc < 0) return pass_up((enum tern_fp_fallback)(-rc - 1));

  struct checksum_words from = {}, to = {};
  __builtin_memcpy(from.src, p->src, 16);
  __builtin_memcpy(from.dst, p->dst, 16);
  from.source = p->udp.source;
  from.dest = p->udp.dest;
  from.len_pseudo = from.len_header = p->udp.len;
  __u32 l4 = ETH_LEN + p->l3_len;
  __builtin_memcpy(&from.channel_header, channel_header, 4);
  if (read_padding(skb, l4 + UDP_LEN + CHANNEL_HEADER_LEN + length, length, padding, from.padding))
    return PASS;
  __builtin_memcpy(to.src, v->relay_ip, 16);
  __builtin_memcpy(to.dst, v->peer_ip, 16);
  to.source = v->relay_port;
  to.dest = v->peer_port;
  to.len_pseudo = to.len_header = bpf_htons((__u16)(UDP_LEN + length));
  struct udphdr udp = {.source = to.source, .dest = to.dest, .len = to.len_header};
  udp.check = udp_checksum(p->udp.check, &from, &to, p->family);
  __u32 slot = v->slot;
  __u8 relay_ip[16], peer_ip[16];
  __builtin_memcpy(relay_ip, v->relay_ip, 16);
  __builtin_memcpy(peer_ip, v->peer_ip, 16);

  /* From here on the packet is being rewritten: a failing helper drops it (it is neither the
   * client's datagram nor the peer's any more). The 4 bytes after the IP header go (the UDP
   * ports, rewritten below), then padding and any Ethernet trailer. */
  if (bpf_skb_adjust_room(skb, -CHANNEL_HEADER_LEN, BPF_ADJ_ROOM_NET, 0)) return TC_ACT_SHOT;
  if (bpf_skb_change_tail(skb, ETH_LEN + ip_len, 0)) return TC_ACT_SHOT;
  if (write_ip(skb, p, relay_ip, peer_ip, ip_len)) return TC_ACT_SHOT;
  if (bpf_skb_store_bytes(skb, l4, &udp, sizeof(udp), BPF_F_RECOMPUTE_CSUM)) return TC_ACT_SHOT;
  account(slot, 1, length);
  return redirect(skb, &fib, rc);
}

static __always_inline int to_client(struct __sk_buff *skb, struct packet *p) {
  struct tern_fp_peer_key key = {};
  key.family = p->family;
  key.relay_port = p->udp.dest;
  key.peer_port = p->udp.source;
  __builtin_memcpy(key.relay_ip, p->dst, 16);
  __builtin_memcpy(key.peer_ip, p->src, 16);
  struct tern_fp_peer_value *v = bpf_map_lookup_elem(&peers, &key);
  if (!v) return NO_ENTRY; /* not a channel's peer: a Data indication, or not tern's */
  if (bpf_ktime_get_ns() >= v->expires_ns) return pass_up(TERN_FP_FALLBACK_EXPIRED);
  __u32 length = bpf_ntohs(p->udp.len) - UDP_LEN;
  __u32 ip_len = p->ip_len + CHANNEL_HEADER_LEN;
  if (ip_len > 0xffff || length > 0xffff - CHANNEL_HEADER_LEN) return pass_up(TERN_FP_FALLBACK_MTU);
  if (checksum_is_partial(skb)) return pass_up(TERN_FP_FALLBACK_CHECKSUM);
  struct bpf_fib_lookup fib;
  int rc = route(skb, &fib, p->family, v->listener_ip, v->client_ip, ip_len);
  if (rc < 0) return pass_up((enum tern_fp_fallback)(-rc - 1));

  struct checksum_words from = {}, to = {};
  __builtin_memcpy(from.src, p->src, 16);
  __builtin_memcpy(from.dst, p->dst, 16);
  from.source = p->udp.source;
  from.dest = p->udp.dest;
  from.len_pseudo = from.len_header = p->udp.len;
  __builtin_memcpy(to.src, v->listener_ip, 16);
  __builtin_memcpy(to.dst, v->client_ip, 16);
  to.source = v->listener_port;
  to.dest = v->client_port;
  to.len_pseudo = to.len_header = bpf_htons((__u16)(UDP_LEN + CHANNEL_HEADER_LEN + length));
  __be16 channel_header[2] = {v->channel, bpf_htons((__u16)length)};
  __builtin_memcpy(&to.channel_header, channel_header, 4);
  struct {
    struct udphdr udp;
    __be16 channel_header[2];
  } headers = {.udp = {.source = to.source, .dest = to.dest, .len = to.len_header},
               .channel_header = {channel_header[0], channel_header[1]}};
  headers.udp.check = udp_checksum(p->udp.check, &from, &to, p->family);
  __u32 slot = v->slot;
  __u8 listener_ip[16], client_ip[16];
  __builtin_memcpy(listener_ip, v->listener_ip, 16);
  __builtin_memcpy(client_ip, v->client_ip, 16);

  /* Rewriting from here (see to_peer). Any Ethernet trailer goes first, then 4 bytes open
   * after the IP header: the new UDP header starts there and the ChannelData header takes
   * the old one's place. */
  if (skb->len > ETH_LEN + p->ip_len && bpf_skb_change_tail(skb, ETH_LEN + p->ip_len, 0)) return TC_ACT_SHOT;
  if (bpf_skb_adjust_room(skb, CHANNEL_HEADER_LEN, BPF_ADJ_ROOM_NET, 0)) return TC_ACT_SHOT;
  if (write_ip(skb, p, listener_ip, client_ip, ip_len)) return TC_ACT_SHOT;
  if (bpf_skb_store_bytes(skb, ETH_LEN + p->l3_len, &headers, sizeof(headers), BPF_F_RECOMPUTE_CSUM))
    return TC_ACT_SHOT;
  account(slot, 0, length);
  return redirect(skb, &fib, rc);
}

SEC("tc")
int tern_fast_path(struct __sk_buff *skb) {
  struct packet p = {};
  if (parse(skb, &p)) return PASS;
  int looks_like_channel_data = 0;
  /* ChannelData starts with a channel number: 0x4000-0x4fff in RFC 8656 §12, up to 0x7fff in
   * RFC 5766 §11, which clients still use and tern still binds (the first two bits are 01). */
  if (bpf_ntohs(p.udp.len) >= UDP_LEN + CHANNEL_HEADER_LEN) {
    __be16 channel_header[2];
    if (bpf_skb_load_bytes(skb, ETH_LEN + p.l3_len + UDP_LEN, channel_header, 4)) return PASS;
    __u16 channel = bpf_ntohs(channel_header[0]);
    if ((channel & 0xc000) == 0x4000) {
      looks_like_channel_data = 1;
      int verdict = to_peer(skb, &p, channel_header);
      if (verdict != NO_ENTRY) return verdict;
    }
  }
  /* A peer's payload may look like ChannelData too: the relayed address's entry decides. */
  int verdict = to_client(skb, &p);
  if (verdict == NO_ENTRY) {
    if (looks_like_channel_data) count_miss();
    return PASS;
  }
  return verdict;
}
