/*
 * The part of DPDK that flowgate-sys binds to.
 *
 * bindgen reads this header; the fg_* functions wrap DPDK's static-inline
 * functions and macros (which have no symbol to link against) and are built
 * by build.rs from shim.c with the compiler flags pkg-config gives for libdpdk.
 */
#ifndef FLOWGATE_SHIM_H
#define FLOWGATE_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_version.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_log.h>

/* Receive and transmit bursts (rte_eth_rx_burst / rte_eth_tx_burst). */
uint16_t fg_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t fg_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* mbuf life cycle. */
struct rte_mbuf *fg_pktmbuf_alloc(struct rte_mempool *mp);
void fg_pktmbuf_free(struct rte_mbuf *m);

/* mbuf data: room around it, and growing, shrinking and chaining it. Its
 * pointer, lengths, segment count and port the Rust side reads straight
 * from the mbuf's fields (fg_mbuf_off_* below check their offsets). */
uint16_t fg_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t fg_pktmbuf_tailroom(const struct rte_mbuf *m);
uint8_t *fg_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
uint8_t *fg_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
int fg_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int fg_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);

/* CPU and lcore helpers. */
void fg_prefetch0(const void *p);
uint64_t fg_rdtsc(void);
unsigned int fg_lcore_id(void);
int fg_errno(void);

/*
 * Layout facts the Rust side reads mbufs with on the hot path, so that a
 * per-packet data pointer costs a load and an add, not a call.
 */
extern const uint32_t fg_mbuf_off_buf_addr;
extern const uint32_t fg_mbuf_off_data_off;
extern const uint32_t fg_mbuf_off_data_len;
extern const uint32_t fg_mbuf_off_pkt_len;

/* RSS hash functions that spread flows: IP, TCP, UDP and SCTP (RTE_ETH_RSS_*). */
extern const uint64_t fg_rss_hf_flows;

/* Offloads for frames larger than one mbuf: scattered rx
 * (RTE_ETH_RX_OFFLOAD_SCATTER) and chained tx (RTE_ETH_TX_OFFLOAD_MULTI_SEGS). */
extern const uint64_t fg_rx_offload_scatter;
extern const uint64_t fg_tx_offload_multi_segs;

/* Bytes of data room each mbuf of a packet pool has, headroom included
 * (rte_pktmbuf_data_room_size). */
uint16_t fg_pktmbuf_data_room_size(struct rte_mempool *mp);

/* DPDK's log stream, made once and never closed: it writes to `fd`, or,
 * between fg_log_capture_begin and fg_log_capture_end, into a buffer.
 * Capturing never swaps the stream DPDK holds, so a thread logging
 * meanwhile can never write to a closed FILE (its line lands in the
 * capture). NULL if the stream cannot be made. */
FILE *fg_log_stream_open(int fd);
/* Starts capturing (dropping anything captured before). */
void fg_log_capture_begin(void);
/* Ends capturing: *len bytes in a malloc'd buffer (free with free(3)), or
 * NULL when nothing was logged. `stream` is flushed first. */
char *fg_log_capture_end(FILE *stream, size_t *len);

#endif
