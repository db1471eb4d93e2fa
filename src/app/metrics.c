/* metrics.c - the text of /metrics (Prometheus' text format): counters and gauges of net, the
 * store and the app, and the latency summaries of their histogram windows. app_http.c serves
 * it. */
#include "app/metrics.h"

#include "app/webhook.h"

#include <stdlib.h>

#include "common/clock.h"

#define METRICS_TEXT_MAX (1u << 20) /* the cap of the text's buffer */

/* One latency summary in the Prometheus text format: quantiles of the recent window (the last
 * one to two minutes, so a scrape shows what is happening now), _sum and _count since start. */
static void metrics_summary(struct buf *b, const char *name, const char *help,
                            const struct hist *recent, uint64_t total_count, uint64_t total_sum) {
  static const double qs[] = {0.5, 0.9, 0.99, 0.999};
  buf_printf(b, "# HELP %s %s\n# TYPE %s summary\n", name, help, name);
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
    buf_printf(b, "%s{quantile=\"%g\"} %.9f\n", name, qs[i],
               recent->count ? (double)hist_quantile(recent, qs[i]) / 1e9 : 0.0);
  buf_printf(b, "%s_sum %.9f\n%s_count %llu\n", name, (double)total_sum / 1e9, name,
             (unsigned long long)total_count);
}

/* `ss` is the store's counters as the rest of the text shows them: one snapshot per scrape, so
 * that its counts agree with each other (parley_store_batches_total with the commit summary's
 * _count) even when a batch commits while the text is written. */
static void metrics_latency(struct app *a, const struct store_stats *ss, struct buf *b) {
  uint64_t now = clock_mono_ns();
  struct hist *h = malloc(sizeof *h); /* ~40 KB: not on the stack */
  if (h == NULL)
    return;
  hist_window_recent(&a->metrics.delivery_lat, now, h);
  metrics_summary(b, "parley_delivery_seconds",
                  "msg.send read to its event written to every local subscriber",
                  h, a->metrics.delivery_lat.total_count, a->metrics.delivery_lat.total_sum);
  store_get_latency(a->store, now, h, NULL);
  metrics_summary(b, "parley_store_commit_latency_seconds", "one batch's COMMIT", h,
                  ss->commits, ss->commit_ns_total);
  store_get_latency(a->store, now, NULL, h);
  metrics_summary(b, "parley_store_request_seconds",
                  "store request submitted to its completion on the loop", h, ss->requests_done,
                  ss->request_ns_total);
  hist_window_recent(&a->metrics.loop_lag, now, h);
  metrics_summary(b, "parley_loop_lag_seconds",
                  "how late a 50 ms timer on the loop thread fires: what every event waits behind",
                  h, a->metrics.loop_lag.total_count, a->metrics.loop_lag.total_sum);
  hist_window_recent(&a->metrics.loop_turn, now, h);
  metrics_summary(b, "parley_loop_turn_seconds",
                  "one loop turn's work: the loop thread's CPU time from one flush to the next", h,
                  a->metrics.loop_turn.total_count, a->metrics.loop_turn.total_sum);
  buf_printf(b,
             "# HELP parley_loop_turn_max_seconds the longest loop turn's work since the "
             "previous scrape\n# TYPE parley_loop_turn_max_seconds gauge\n"
             "parley_loop_turn_max_seconds %.9f\n",
             (double)a->metrics.turn_max_ns / 1e9);
  a->metrics.turn_max_ns = 0;
  free(h);
}

void app__metrics_text(struct app *a, struct buf *out) {
  struct net_stats ns;
  struct store_stats ss;
  struct buf b;

  net_server_get_stats(a->net, &ns);
  store_get_stats(a->store, &ss);
  buf_init(&b, METRICS_TEXT_MAX);
  buf_printf(&b,
             "# TYPE parley_connections gauge\nparley_connections %zu\n"
             "# TYPE parley_connections_accepted_total counter\n"
             "parley_connections_accepted_total %llu\n"
             "# TYPE parley_ws_opened_total counter\nparley_ws_opened_total %llu\n"
             "# TYPE parley_messages_sent_total counter\nparley_messages_sent_total %llu\n"
             "# TYPE parley_deliveries_total counter\nparley_deliveries_total %llu\n"
             "# TYPE parley_frames_out_total counter\nparley_frames_out_total %llu\n"
             "# TYPE parley_bytes_out_total counter\nparley_bytes_out_total %llu\n"
             "# TYPE parley_slow_consumer_closes_total counter\n"
             "parley_slow_consumer_closes_total %llu\n"
             "# TYPE parley_dead_peer_closes_total counter\nparley_dead_peer_closes_total %llu\n"
             "# TYPE parley_rate_limited_total counter\nparley_rate_limited_total %llu\n"
             "# TYPE parley_store_batches_total counter\nparley_store_batches_total %llu\n"
             "# TYPE parley_store_requests_total counter\nparley_store_requests_total %llu\n"
             "# TYPE parley_store_commit_seconds_total counter\n"
             "parley_store_commit_seconds_total %.6f\n"
             "# TYPE parley_store_pending gauge\nparley_store_pending %zu\n",
             net_server_conn_count(a->net), (unsigned long long)ns.accepted,
             (unsigned long long)a->metrics.ws_opened, (unsigned long long)a->metrics.msgs_sent,
             (unsigned long long)a->metrics.deliveries, (unsigned long long)ns.frames_out,
             (unsigned long long)ns.bytes_out, (unsigned long long)ns.slow_closes,
             (unsigned long long)ns.dead_closes, (unsigned long long)a->metrics.rejected_rate,
             (unsigned long long)ss.batches, (unsigned long long)ss.requests,
             (double)ss.commit_us_total / 1e6, store_pending(a->store));
  buf_printf(&b,
             "# TYPE parley_ws_idle_releases_total counter\nparley_ws_idle_releases_total %llu\n",
             (unsigned long long)ns.ws_ctx_released);
  buf_printf(&b, "# TYPE parley_catch_ups_total counter\nparley_catch_ups_total %llu\n",
             (unsigned long long)a->metrics.catch_ups);
  buf_printf(&b, "# TYPE parley_heap_trims_total counter\nparley_heap_trims_total %llu\n",
             (unsigned long long)a->metrics.heap_trims);
  buf_printf(&b,
             "# TYPE parley_hash_running gauge\nparley_hash_running %d\n"
             "# TYPE parley_hash_queued gauge\nparley_hash_queued %d\n",
             a->hash_running, a->hash_queued);
  buf_printf(&b,
             "# TYPE parley_store_shed_total counter\nparley_store_shed_total %llu\n"
             "# TYPE parley_store_inflight gauge\nparley_store_inflight %llu\n"
             "# TYPE parley_store_oldest_wait_seconds gauge\n"
             "parley_store_oldest_wait_seconds %.6f\n",
             (unsigned long long)ss.shed, (unsigned long long)ss.queued,
             (double)ss.oldest_wait_ns / 1e9);
  buf_printf(&b,
             "# TYPE parley_store_wal_bytes gauge\nparley_store_wal_bytes %llu\n"
             "# TYPE parley_store_checkpoints_total counter\n"
             "parley_store_checkpoints_total{result=\"ok\"} %llu\n"
             "parley_store_checkpoints_total{result=\"busy\"} %llu\n"
             "parley_store_checkpoints_total{result=\"restart\"} %llu\n"
             "parley_store_checkpoints_total{result=\"forced\"} %llu\n"
             "# TYPE parley_store_wal_frames_total counter\nparley_store_wal_frames_total %llu\n"
             "# TYPE parley_store_checkpoint_hold_seconds summary\n"
             "parley_store_checkpoint_hold_seconds_sum %.9f\n"
             "parley_store_checkpoint_hold_seconds_count %llu\n"
             "# TYPE parley_store_search_flush_seconds summary\n"
             "parley_store_search_flush_seconds_sum %.9f\n"
             "parley_store_search_flush_seconds_count %llu\n"
             "# TYPE parley_store_search_flush_max_seconds gauge\n"
             "parley_store_search_flush_max_seconds %.9f\n"
             "# TYPE parley_store_search_merge_seconds summary\n"
             "parley_store_search_merge_seconds_sum %.9f\n"
             "parley_store_search_merge_seconds_count %llu\n",
             (unsigned long long)ss.wal_bytes, (unsigned long long)ss.checkpoints_ok,
             (unsigned long long)ss.checkpoints_busy, (unsigned long long)ss.wal_restarts,
             (unsigned long long)ss.wal_forced, (unsigned long long)ss.wal_frames,
             (double)ss.ckpt_hold_ns / 1e9, (unsigned long long)ss.ckpt_holds,
             (double)ss.search_flush_ns / 1e9, (unsigned long long)ss.search_flushes,
             (double)ss.search_flush_max_ns / 1e9, (double)ss.search_merge_ns / 1e9,
             (unsigned long long)ss.search_merges);
  metrics_latency(a, &ss, &b);
  {
    struct webhook_stats ws;
    webhook_get_stats(a->webhooks, &ws);
    buf_printf(&b,
               "# TYPE parley_webhook_deliveries_total counter\n"
               "parley_webhook_deliveries_total{result=\"ok\"} %llu\n"
               "parley_webhook_deliveries_total{result=\"retry\"} %llu\n"
               "parley_webhook_deliveries_total{result=\"failed\"} %llu\n"
               "parley_webhook_deliveries_total{result=\"dropped\"} %llu\n"
               "# TYPE parley_webhook_queue gauge\nparley_webhook_queue %llu\n",
               (unsigned long long)ws.ok, (unsigned long long)ws.retry,
               (unsigned long long)ws.failed, (unsigned long long)ws.dropped,
               (unsigned long long)ws.held);
  }
  *out = b;
}

