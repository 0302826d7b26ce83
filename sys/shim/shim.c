/* Out-of-line copies of DPDK's static-inline functions; see shim.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fopencookie */
#endif
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <pthread.h>
#include "shim.h"

uint16_t fg_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t fg_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
			 struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *fg_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void fg_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

uint16_t fg_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

uint16_t fg_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	/* rte_pktmbuf_tailroom measures the segment it is given; appends go to
	 * the last one. lastseg only reads, despite its non-const parameter. */
	return rte_pktmbuf_tailroom(rte_pktmbuf_lastseg((struct rte_mbuf *)m));
}

uint8_t *fg_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return (uint8_t *)rte_pktmbuf_append(m, len);
}

uint8_t *fg_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return (uint8_t *)rte_pktmbuf_prepend(m, len);
}

int fg_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

int fg_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail)
{
	return rte_pktmbuf_chain(head, tail);
}

void fg_prefetch0(const void *p)
{
	rte_prefetch0(p);
}

uint64_t fg_rdtsc(void)
{
	return rte_rdtsc();
}

unsigned int fg_lcore_id(void)
{
	return rte_lcore_id();
}

int fg_errno(void)
{
	return rte_errno;
}

const uint32_t fg_mbuf_off_buf_addr = offsetof(struct rte_mbuf, buf_addr);
const uint32_t fg_mbuf_off_data_off = offsetof(struct rte_mbuf, data_off);
const uint32_t fg_mbuf_off_data_len = offsetof(struct rte_mbuf, data_len);
const uint32_t fg_mbuf_off_pkt_len = offsetof(struct rte_mbuf, pkt_len);

const uint64_t fg_rss_hf_flows = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_SCTP;

const uint64_t fg_rx_offload_scatter = RTE_ETH_RX_OFFLOAD_SCATTER;
const uint64_t fg_tx_offload_multi_segs = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

uint16_t fg_pktmbuf_data_room_size(struct rte_mempool *mp)
{
	return rte_pktmbuf_data_room_size(mp);
}

/* The log stream's state; every access holds log_lock. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static int log_capturing;
static char *log_buf;
static size_t log_len, log_room;

static ssize_t log_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	pthread_mutex_lock(&log_lock);
	if (log_capturing) {
		if (log_len + size > log_room) {
			size_t room = (log_len + size) * 2;
			char *grown = realloc(log_buf, room);
			if (grown == NULL) {
				/* Out of memory: the line is lost, the caller is not failed. */
				pthread_mutex_unlock(&log_lock);
				return (ssize_t)size;
			}
			log_buf = grown;
			log_room = room;
		}
		memcpy(log_buf + log_len, buf, size);
		log_len += size;
		pthread_mutex_unlock(&log_lock);
		return (ssize_t)size;
	}
	int fd = log_fd;
	pthread_mutex_unlock(&log_lock);
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a closed stdout loses log lines, nothing else */
		done += (size_t)n;
	}
	return (ssize_t)size;
}

FILE *fg_log_stream_open(int fd)
{
	cookie_io_functions_t io = { .read = NULL, .write = log_write, .seek = NULL, .close = NULL };
	pthread_mutex_lock(&log_lock);
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
	FILE *f = fopencookie(NULL, "w", io);
	if (f != NULL)
		setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

void fg_log_capture_begin(void)
{
	pthread_mutex_lock(&log_lock);
	log_capturing = 1;
	log_len = 0;
	pthread_mutex_unlock(&log_lock);
}

char *fg_log_capture_end(FILE *stream, size_t *len)
{
	if (stream != NULL)
		fflush(stream);
	pthread_mutex_lock(&log_lock);
	log_capturing = 0;
	char *out = log_buf;
	*len = log_len;
	log_buf = NULL;
	log_len = 0;
	log_room = 0;
	pthread_mutex_unlock(&log_lock);
	if (*len == 0) {
		free(out);
		return NULL;
	}
	return out;
}
