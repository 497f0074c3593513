// Built-in dashboards for the PhotonCloud components, from the metrics every component exports
// on /metrics (photon_<component>_..., process_*, photon_build_info) and the scrape's own `up`.
// A panel is a chart of one or more PromQL expressions ("legend" names each series from its
// labels) or, with table: true, the current values.

// A chart of a latency histogram's 99th percentile, one series per value of `by`.
function latencyP99(title, histogram, by) {
  return {
    title,
    unit: "seconds",
    queries: [{
      expr: `histogram_quantile(0.99, sum by (le, ${by}) (rate(${histogram}_bucket[5m])))`,
      legend: `{{${by}}}`,
    }],
  };
}

export const DASHBOARDS = [
  {
    id: "overview",
    title: "PhotonCloud overview",
    description: "Every scraped target: is it up, what runs there, what it costs.",
    panels: [
      { title: "Targets up", table: true, queries: [{ expr: "up", legend: "{{job}} {{instance}}" }] },
      {
        title: "Components",
        table: true,
        queries: [{ expr: "photon_build_info", legend: "{{component}} {{version}} ({{mode}}) {{instance}}" }],
      },
      {
        title: "CPU used",
        unit: "percent",
        queries: [{ expr: "rate(process_cpu_seconds_total[5m])", legend: "{{instance}}" }],
      },
      {
        title: "Resident memory",
        unit: "bytes",
        queries: [{ expr: "process_resident_memory_bytes", legend: "{{instance}}" }],
      },
      { title: "Threads", queries: [{ expr: "process_threads", legend: "{{instance}}" }] },
      {
        title: "Open file descriptors",
        queries: [{ expr: "process_open_fds", legend: "{{instance}}" }],
      },
    ],
  },
  {
    id: "chainfire",
    title: "chainfire",
    description: "The etcd-compatible store: requests, latency, Raft and the keyspace.",
    panels: [
      {
        title: "Requests per second by method",
        queries: [{
          expr: "sum by (method) (rate(photon_chainfire_request_duration_seconds_count[5m]))",
          legend: "{{method}}",
        }],
      },
      latencyP99("Request latency p99 by method", "photon_chainfire_request_duration_seconds", "method"),
      {
        title: "Raft: has a leader, is the leader",
        queries: [
          { expr: "photon_chainfire_raft_has_leader", legend: "has leader {{instance}}" },
          { expr: "photon_chainfire_raft_is_leader", legend: "is leader {{instance}}" },
        ],
      },
      {
        title: "Raft: leader changes in the last hour",
        queries: [{ expr: "increase(photon_chainfire_raft_leader_changes_total[1h])", legend: "{{instance}}" }],
      },
      {
        title: "Raft log: last and applied index",
        queries: [
          { expr: "photon_chainfire_raft_last_log_index", legend: "last {{instance}}" },
          { expr: "photon_chainfire_raft_applied_index", legend: "applied {{instance}}" },
        ],
      },
      {
        title: "Database size",
        unit: "bytes",
        queries: [{ expr: "photon_chainfire_db_size_bytes", legend: "{{instance}}" }],
      },
      {
        title: "Watches and leases",
        queries: [
          { expr: "photon_chainfire_watches", legend: "watches {{instance}}" },
          { expr: "photon_chainfire_leases", legend: "leases {{instance}}" },
        ],
      },
      {
        title: "Cluster",
        table: true,
        queries: [
          { expr: "photon_chainfire_cluster_members", legend: "members {{instance}}" },
          { expr: "photon_chainfire_raft_term", legend: "term {{instance}}" },
          { expr: "photon_chainfire_mvcc_revision", legend: "revision {{instance}}" },
        ],
      },
    ],
  },
  {
    id: "lightningstor",
    title: "lightningstor",
    description: "S3 object storage: request rate, errors, latency and traffic.",
    panels: [
      {
        title: "S3 requests per second by operation",
        queries: [{
          expr: "sum by (operation) (rate(photon_lightningstor_s3_requests_total[5m]))",
          legend: "{{operation}}",
        }],
      },
      {
        title: "S3 responses per second by status",
        queries: [{
          expr: "sum by (status) (rate(photon_lightningstor_s3_requests_total[5m]))",
          legend: "{{status}}",
        }],
      },
      latencyP99("Latency p99 by operation", "photon_lightningstor_s3_request_duration_seconds", "operation"),
      {
        title: "Traffic",
        unit: "bytes",
        queries: [
          { expr: "sum(rate(photon_lightningstor_received_bytes_total[5m]))", legend: "received /s" },
          { expr: "sum(rate(photon_lightningstor_sent_bytes_total[5m]))", legend: "sent /s" },
        ],
      },
    ],
  },
  {
    id: "flashdns",
    title: "flashdns",
    description: "The authoritative DNS server: queries, answers, latency and zones.",
    panels: [
      {
        title: "Queries per second by response code",
        queries: [{ expr: "sum by (rcode) (rate(photon_flashdns_queries_total[5m]))", legend: "{{rcode}}" }],
      },
      {
        title: "Queries per second by type",
        queries: [{ expr: "sum by (qtype) (rate(photon_flashdns_queries_total[5m]))", legend: "{{qtype}}" }],
      },
      latencyP99("Latency p99 by transport", "photon_flashdns_query_duration_seconds", "transport"),
      {
        title: "Truncated responses per second",
        queries: [{ expr: "sum(rate(photon_flashdns_responses_truncated_total[5m]))", legend: "truncated" }],
      },
      {
        title: "Zones",
        table: true,
        queries: [
          { expr: "photon_flashdns_zones_serving", legend: "serving {{instance}}" },
          { expr: "photon_flashdns_zones_failing", legend: "failing {{instance}}" },
          { expr: "photon_flashdns_records", legend: "records {{instance}}" },
        ],
      },
      {
        title: "Zone reloads in the last hour",
        queries: [{ expr: "sum by (result) (increase(photon_flashdns_zone_reloads_total[1h]))", legend: "{{result}}" }],
      },
    ],
  },
  {
    id: "fiberlb",
    title: "fiberlb",
    description: "The load balancer: requests, latency, connections and backend health.",
    panels: [
      {
        title: "HTTP requests per second by load balancer and code",
        queries: [{
          expr: "sum by (lb, code) (rate(photon_fiberlb_http_requests_total[5m]))",
          legend: "{{lb}} {{code}}",
        }],
      },
      latencyP99("HTTP latency p99 by load balancer", "photon_fiberlb_http_request_duration_seconds", "lb"),
      {
        title: "Active connections by backend",
        queries: [{ expr: "sum by (lb, backend) (photon_fiberlb_active_connections)", legend: "{{lb}}/{{backend}}" }],
      },
      {
        title: "Backends up",
        table: true,
        queries: [{ expr: "photon_fiberlb_backend_up", legend: "{{lb}}/{{backend}}" }],
      },
      {
        title: "Traffic by direction",
        unit: "bytes",
        queries: [{ expr: "sum by (direction) (rate(photon_fiberlb_bytes_total[5m]))", legend: "{{direction}} /s" }],
      },
      {
        title: "Connect failures and failed health checks per second",
        queries: [
          { expr: "sum by (backend) (rate(photon_fiberlb_connect_failures_total[5m]))", legend: "connect {{backend}}" },
          {
            expr: "sum by (backend) (rate(photon_fiberlb_health_checks_total{result!=\"success\"}[5m]))",
            legend: "health {{backend}}",
          },
        ],
      },
    ],
  },
  {
    id: "nightlight",
    title: "nightlight",
    description: "This server: ingestion, series, queries, scrapes and rules.",
    panels: [
      {
        title: "Samples stored per second",
        queries: [{ expr: "rate(photon_nightlight_samples_appended_total[5m])", legend: "{{instance}}" }],
      },
      { title: "Series in the head", queries: [{ expr: "photon_nightlight_head_series", legend: "{{instance}}" }] },
      {
        title: "Queries per second by endpoint",
        queries: [{
          expr: "sum by (endpoint) (rate(photon_nightlight_queries_total[5m]))",
          legend: "{{endpoint}}",
        }],
      },
      latencyP99("Query latency p99 by endpoint", "photon_nightlight_query_duration_seconds", "endpoint"),
      {
        title: "Scrape duration by target",
        unit: "seconds",
        queries: [{ expr: "scrape_duration_seconds", legend: "{{job}} {{instance}}" }],
      },
      {
        title: "Rule evaluations per second by result",
        queries: [{
          expr: "sum by (rule_group, result) (rate(photon_nightlight_rule_evaluations_total[5m]))",
          legend: "{{rule_group}} {{result}}",
        }],
      },
    ],
  },
];
