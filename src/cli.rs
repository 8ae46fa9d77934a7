//! The `pyroscope-relay` command line: `run`, `check`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::admin::AdminServer;
use crate::runtime::{ConfigSource, Options, Runtime, plan, read_config};
use crate::telemetry::{LogFormat, LogLevel, init_logging};

#[derive(Parser, Debug)]
#[command(
    name = "pyroscope-relay",
    version,
    about = "Receives continuous-profiling data and routes it to Pyroscope backends, configured like Grafana Alloy."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay on a config file, or a directory of *.alloy files.
    Run(RunArgs),
    /// Parse and validate a config, print every problem, exit 0 or 1.
    Check {
        /// A .alloy file, or a directory whose *.alloy files are merged.
        /// Without it, the embedded quickstart config is checked.
        path: Option<PathBuf>,
    },
    /// List and fetch profiles kept by pyroscope.archive components.
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Inspect the durable queues of pyroscope.write components.
    #[command(subcommand)]
    Queue(QueueCommand),
}

#[derive(Subcommand, Debug)]
enum QueueCommand {
    /// For each queue on disk: component, endpoint, pending profiles,
    /// bytes and the oldest pending profile's age. Works while the relay
    /// runs and while it is stopped.
    Status {
        #[arg(long = "storage.path", default_value = "data-relay/")]
        storage_path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn queue(command: QueueCommand) -> ExitCode {
    let QueueCommand::Status { storage_path, json } = command;
    let status = match crate::write::queue::status::read(&storage_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        let body = serde_json::json!({ "queues": status });
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    let rows: Vec<[String; 5]> = status
        .iter()
        .map(|s| {
            [
                s.component.clone(),
                s.endpoint.clone(),
                s.pending_profiles.to_string(),
                s.pending_bytes.to_string(),
                format!("{:.0}s", s.oldest_age_seconds),
            ]
        })
        .collect();
    let header = ["COMPONENT", "ENDPOINT", "PENDING", "BYTES", "OLDEST"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header.map(String::from)).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    ExitCode::SUCCESS
}

#[derive(Subcommand, Debug)]
enum ProfilesCommand {
    /// A table of stored profiles, newest first.
    List {
        /// The relay's --storage.path, or one archive's directory.
        #[arg(long = "storage.path", default_value = "data-relay/")]
        storage_path: PathBuf,
        /// Only profiles of this service.
        #[arg(long)]
        service: Option<String>,
        /// Only profiles newer than this: a duration ("10m", "2h") or an RFC 3339 time.
        #[arg(long, value_parser = parse_since)]
        since: Option<std::time::SystemTime>,
        /// Only profiles with this label (name=value); repeatable.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// At most this many profiles.
        #[arg(long)]
        limit: Option<usize>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write one stored profile to a file ("-" for stdout).
    Get {
        /// The id `profiles list` shows, e.g. local-42.
        id: String,
        #[arg(short = 'o', long = "output", default_value = "-")]
        output: PathBuf,
        /// Gunzip a gzipped body before writing it.
        #[arg(long)]
        gunzip: bool,
        #[arg(long = "storage.path", default_value = "data-relay/")]
        storage_path: PathBuf,
    },
}

fn parse_since(s: &str) -> Result<std::time::SystemTime, String> {
    crate::archive::parse_since(s).map_err(|e| e.to_string())
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    crate::archive::cli::parse_label(s).map_err(|e| e.to_string())
}

fn profiles(command: ProfilesCommand) -> ExitCode {
    let result = match command {
        ProfilesCommand::List {
            storage_path,
            service,
            since,
            labels,
            limit,
            json,
        } => {
            let filter = crate::archive::Filter {
                service,
                since,
                labels,
                limit,
            };
            crate::archive::cli::list(&storage_path, filter, json, &mut std::io::stdout().lock())
        }
        ProfilesCommand::Get {
            id,
            output,
            gunzip,
            storage_path,
        } => crate::archive::cli::get(&storage_path, &id, gunzip, &output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// A .alloy file, or a directory whose *.alloy files are merged.
    /// Without it, the relay runs the embedded quickstart config
    /// (examples/quickstart.alloy).
    path: Option<PathBuf>,
    /// Address of the admin server (/-/ready, /-/healthy, /-/reload, /metrics).
    #[arg(long = "server.http.listen-addr", default_value = "127.0.0.1:12345")]
    listen_addr: String,
    /// Where components keep data; a component's dir is <storage.path>/<component id>.
    #[arg(long = "storage.path", default_value = "data-relay/")]
    storage_path: PathBuf,
    /// debug, info, warn or error. A `logging` block in the config overrides it.
    #[arg(long = "log.level", default_value = "info", value_parser = parse_level)]
    log_level: LogLevel,
    /// logfmt or json. A `logging` block in the config overrides it.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = parse_format)]
    log_format: LogFormat,
    /// Memory for request bodies and decompressed data, shared by every
    /// pyroscope.receive_http: 512MiB, 2GiB or bytes. Beyond it requests
    /// get 429 / resource_exhausted. Default: a quarter of the cgroup's
    /// memory limit, or of physical memory.
    #[arg(long = "request-memory-limit", value_parser = parse_memory_limit)]
    request_memory_limit: Option<u64>,
    /// Threads that accept and serve pyroscope.receive_http's connections,
    /// each with its own listener on the port; a request is handled start
    /// to end on one of them. Default: one per available core.
    #[arg(long = "receive-threads", value_parser = parse_receive_threads)]
    receive_threads: Option<usize>,
}

fn parse_receive_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("there must be at least 1 receive thread".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a number of threads: {e}")),
    }
}

fn parse_memory_limit(s: &str) -> Result<u64, String> {
    match crate::config::parse_byte_size(s)?.0 {
        0 => Err("the request memory limit must be more than 0 bytes".to_owned()),
        bytes => Ok(bytes),
    }
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { path } => check(&config_source(path)),
        Command::Profiles(command) => profiles(command),
        Command::Queue(command) => queue(command),
        Command::Run(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: starting the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(run(args))
        }
    }
}

fn config_source(path: Option<PathBuf>) -> ConfigSource {
    path.map_or(ConfigSource::Embedded, ConfigSource::Path)
}

fn check(source: &ConfigSource) -> ExitCode {
    let result = read_config(source).and_then(|map| plan(&map, &Default::default()).map(|_| ()));
    match result {
        Ok(()) => {
            println!("{source}: config is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let log = init_logging(args.log_level, args.log_format);
    install_crypto_provider();
    let options = Options {
        config: config_source(args.path),
        storage_path: args.storage_path,
        log_level: args.log_level,
        log_format: args.log_format,
        request_memory_limit: args
            .request_memory_limit
            .unwrap_or_else(crate::receive_http::default_request_memory_limit),
        receive_threads: args
            .receive_threads
            .unwrap_or_else(crate::receive_http::Workers::default_count),
    };
    tracing::info!(
        bytes = options.request_memory_limit,
        "request memory budget (--request-memory-limit)"
    );
    tracing::info!(
        threads = options.receive_threads,
        "receiving threads (--receive-threads)"
    );
    let runtime = match Runtime::new(options, Some(log)) {
        Ok(runtime) => Arc::new(runtime),
        Err(e) => {
            eprintln!("error: starting the receiving threads: {e}");
            return ExitCode::FAILURE;
        }
    };

    let admin = match AdminServer::bind(&args.listen_addr, runtime.clone()).await {
        Ok(admin) => admin,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stop_admin, admin_stopped) = watch::channel(false);
    let admin_addr = admin
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // The admin server answers only once the config is loaded, so that no
    // request gets past an `http` block's TLS and authentication before
    // they apply; connections made meanwhile wait in the listen backlog.
    if let Err(e) = runtime.reload().await {
        eprintln!("error: loading {}:\n{e}", runtime.config_source());
        runtime.shutdown().await;
        return ExitCode::FAILURE;
    }
    let admin_task = tokio::spawn(admin.serve(admin_stopped));
    tracing::info!(
        admin = %admin_addr,
        config = %runtime.config_source(),
        version = env!("CARGO_PKG_VERSION"),
        "pyroscope-relay is running"
    );

    wait_for_signals(&runtime).await;
    tracing::info!("shutting down");
    runtime.shutdown().await;
    let _ = stop_admin.send(true);
    let _ = admin_task.await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Reloads on SIGHUP; returns on SIGINT or SIGTERM.
async fn wait_for_signals(runtime: &Runtime) {
    let (Ok(mut hup), Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the relay with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => match runtime.reload().await {
                Ok(()) => tracing::info!("config reloaded on SIGHUP"),
                Err(e) => tracing::error!(error = %e, "config reload on SIGHUP failed; the running config is unchanged"),
            },
            _ = int.recv() => return,
            _ = term.recv() => return,
        }
    }
}

/// rustls needs one process-wide crypto provider; we ship ring.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
