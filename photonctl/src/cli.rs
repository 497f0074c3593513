use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// Operate a PhotonCloud platform: check that components are up, inspect their health.
///
/// Exit codes: 0 all healthy, 1 something answered but is unhealthy, 2 something is unreachable.
#[derive(Debug, Parser)]
#[command(name = "photonctl", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test the connection to one component: reachability, latency and its /health
    #[command(
        after_help = "Example:\n  photonctl check-connection --endpoint http://chainfire:2381"
    )]
    CheckConnection(CheckConnectionArgs),

    /// Show the health of several components as a table or JSON
    #[command(
        after_help = "Without --endpoint, every component's default admin endpoint on this \
                            host is checked (see docs/ports.md).\n\nExample:\n  photonctl status \
                            --endpoint http://10.0.0.5:9002 --endpoint http://10.0.0.6:8053"
    )]
    Status(StatusArgs),

    /// Read and write chainfire (or any etcd v3 server) keys
    #[command(subcommand)]
    Kv(KvCommand),

    /// Inspect flashdns through its read-only REST API: zones, records, lookups
    #[command(subcommand)]
    Dns(DnsCommand),

    /// Inspect lightningstor through its admin gRPC API: buckets and usage
    #[command(subcommand)]
    Storage(StorageCommand),

    /// Inspect and change fiberlb's load balancers through its REST API
    #[command(subcommand)]
    Lb(LbCommand),

    /// Query nightlight (or any Prometheus) through its HTTP API: PromQL, scrape targets
    #[command(subcommand)]
    Metrics(MetricsCommand),

    /// Print a shell completion script (e.g. photonctl completions bash > /etc/bash_completion.d/photonctl)
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Args)]
pub struct CheckConnectionArgs {
    /// Base URL of the component's admin HTTP server (its /health is queried)
    #[arg(long, value_name = "URL")]
    pub endpoint: String,

    /// Seconds to wait for an answer
    #[arg(long, default_value = "5", value_name = "SECONDS", value_parser = seconds)]
    pub timeout: Duration,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Base URL of a component's admin HTTP server; repeat for several
    #[arg(long, value_name = "URL")]
    pub endpoint: Vec<String>,

    /// Seconds to wait for each answer (all endpoints are asked at once)
    #[arg(long, default_value = "3", value_name = "SECONDS", value_parser = seconds)]
    pub timeout: Duration,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print a key's value, or every key under a prefix
    Get {
        key: String,
        /// Treat KEY as a prefix
        #[arg(long)]
        prefix: bool,
        #[command(flatten)]
        target: Chainfire,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Set a key
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        target: Chainfire,
    },
    /// Delete a key, or every key under a prefix; prints how many were deleted
    Del {
        key: String,
        /// Treat KEY as a prefix
        #[arg(long)]
        prefix: bool,
        #[command(flatten)]
        target: Chainfire,
    },
    /// Print changes to a key (or prefix) as they happen, until interrupted; survives chainfire
    /// restarts without losing events
    Watch {
        key: String,
        /// Treat KEY as a prefix
        #[arg(long)]
        prefix: bool,
        #[command(flatten)]
        target: Chainfire,
    },
}

#[derive(Debug, Args)]
pub struct Chainfire {
    /// chainfire client endpoints, comma-separated
    #[arg(
        long,
        env = "PHOTON_CHAINFIRE_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379",
        value_name = "URLS"
    )]
    pub endpoints: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// List the zones served, with serial, record count and any load error
    Zones {
        #[command(flatten)]
        target: Flashdns,
    },
    /// List a zone's records in zone-file form
    Records {
        /// The zone, e.g. example.com
        zone: String,
        #[command(flatten)]
        target: Flashdns,
    },
    /// Answer NAME TYPE exactly as the DNS port would
    Lookup {
        name: String,
        /// Record type (A, AAAA, MX, TXT, ...)
        #[arg(default_value = "A")]
        rtype: String,
        #[command(flatten)]
        target: Flashdns,
    },
}

#[derive(Debug, Args)]
pub struct Flashdns {
    /// flashdns's admin API (standalone.server.admin_api_addr)
    #[arg(
        long,
        env = "PHOTON_FLASHDNS_ENDPOINT",
        default_value = "http://127.0.0.1:8053",
        value_name = "URL"
    )]
    pub endpoint: String,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// List buckets with their object count and stored bytes
    Buckets {
        #[command(flatten)]
        target: Lightningstor,
    },
    /// Show the server's version, endpoints and totals
    Usage {
        #[command(flatten)]
        target: Lightningstor,
    },
}

#[derive(Debug, Args)]
pub struct Lightningstor {
    /// lightningstor's admin gRPC API (standalone.server.grpc_addr)
    #[arg(
        long,
        env = "PHOTON_LIGHTNINGSTOR_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        value_name = "URL"
    )]
    pub endpoint: String,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// List load balancers with their listener, method and backends up
    List {
        #[command(flatten)]
        target: Fiberlb,
    },
    /// Show one load balancer's backends: state, weight, connections, traffic, last check error
    Show {
        name: String,
        #[command(flatten)]
        target: Fiberlb,
    },
    /// Add, remove or drain a backend
    #[command(subcommand)]
    Backend(LbBackendCommand),
}

#[derive(Debug, Subcommand)]
pub enum LbBackendCommand {
    /// Add a backend to a load balancer (it takes traffic at once)
    #[command(
        after_help = "Example:\n  photonctl lb backend add web-lb web-3 --address 10.0.0.13 --port 8080"
    )]
    Add {
        lb: String,
        name: String,
        /// IP address or host name
        #[arg(long)]
        address: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 100)]
        weight: u32,
        #[command(flatten)]
        target: Fiberlb,
    },
    /// Remove a backend; its open connections finish first
    Remove {
        lb: String,
        name: String,
        #[command(flatten)]
        target: Fiberlb,
    },
    /// Stop sending new traffic to a backend while its in-flight work finishes
    Drain {
        lb: String,
        name: String,
        /// Put a drained backend back in rotation instead
        #[arg(long)]
        undo: bool,
        #[command(flatten)]
        target: Fiberlb,
    },
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Evaluate a PromQL expression at one instant and print each series with its value
    #[command(
        after_help = "Example:\n  photonctl metrics query 'sum by (job) (rate(http_requests_total[5m]))'"
    )]
    Query {
        expr: String,
        /// Evaluation time: Unix seconds or RFC 3339 (default: now)
        #[arg(long, value_name = "TIME")]
        time: Option<String>,
        #[command(flatten)]
        target: Nightlight,
    },
    /// List scrape targets with their health, last scrape and last error
    Targets {
        #[command(flatten)]
        target: Nightlight,
    },
    /// List pending and firing alerts with their labels, value and summary
    Alerts {
        #[command(flatten)]
        target: Nightlight,
    },
    /// List rule groups and their rules with health, state and last error
    Rules {
        #[command(flatten)]
        target: Nightlight,
    },
}

#[derive(Debug, Args)]
pub struct Nightlight {
    /// nightlight's HTTP API (standalone.server.http_addr)
    #[arg(
        long,
        env = "PHOTON_NIGHTLIGHT_ENDPOINT",
        default_value = "http://127.0.0.1:9090",
        value_name = "URL"
    )]
    pub endpoint: String,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct Fiberlb {
    /// fiberlb's REST API (standalone.server.admin_api_addr)
    #[arg(
        long,
        env = "PHOTON_FIBERLB_ENDPOINT",
        default_value = "http://127.0.0.1:8081",
        value_name = "URL"
    )]
    pub endpoint: String,

    /// The API token for changes (standalone.server.admin_token)
    #[arg(
        long,
        env = "PHOTON_FIBERLB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable
    Table,
    /// Machine-readable JSON
    Json,
}

/// A positive number of seconds, fractions allowed (`0.5`).
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 3600"
        )),
    }
}
