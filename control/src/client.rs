//! The HTTP client the CLI subcommands share: where the API is, and one
//! blocking request at a time (ureq) with every failure turned into one
//! line for stderr.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the CLI finds the appliance, from its flags.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Base URL of the appliance's API (default: http:// and the config's
    /// [api] listen).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Config file to read [api] listen (and [f5]) from [default:
    /// config/default.toml, if it exists].
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
}

/// The default config file.
pub const DEFAULT_CONFIG: &str = "config/default.toml";

/// A failure, as the one line the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// The config file as plain TOML: the CLI reads a few keys without
/// validating the rest (the file may name CPUs or captures of another
/// machine, or sections of a newer flowgate).
#[derive(Debug, Clone, Default)]
pub struct RawConfig(pub toml::Table);

impl RawConfig {
    /// Reads `path`, or the default file if it exists, or nothing.
    pub fn load(path: Option<&Path>) -> Result<RawConfig, ClientError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) if !required => return Ok(RawConfig::default()),
            Err(e) => {
                return Err(ClientError(format!(
                    "cannot read the config {}: {e}",
                    path.display()
                )))
            }
        };
        text.parse::<toml::Table>().map(RawConfig).map_err(|e| {
            ClientError(format!(
                "{}: not valid TOML: {}",
                path.display(),
                e.message()
            ))
        })
    }

    /// A string key of a section.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.0.get(section)?.get(key)?.as_str()
    }

    /// The first string value of `key` in any section.
    pub fn find(&self, key: &str) -> Option<&str> {
        self.0
            .values()
            .filter_map(|v| v.as_table())
            .find_map(|t| t.get(key).and_then(|v| v.as_str()))
    }
}

/// The base URL: `--api`, else the config's `[api] listen`, else the
/// built-in default. A wildcard listen address is reached on loopback.
pub fn base_url(api: Option<&str>, config: &RawConfig) -> String {
    let url = match api {
        Some(u) => u.to_string(),
        None => {
            let listen = config.get("api", "listen").unwrap_or("127.0.0.1:8080");
            let listen = listen
                .replacen("0.0.0.0:", "127.0.0.1:", 1)
                .replacen("[::]:", "[::1]:", 1);
            format!("http://{listen}")
        }
    };
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    url.trim_end_matches('/').to_string()
}

/// A response: status and body text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
}

/// A blocking client for one appliance.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `base` (no trailing slash).
    pub fn new(base: String, timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            // 4xx and 5xx bodies carry the reason; read them.
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            // The appliance is on a management address; never a proxy.
            .proxy(None)
            .build()
            .new_agent();
        Client { base, agent }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        self.finish(self.agent.get(&url).call())
    }

    /// `POST path` with a JSON body and extra headers.
    pub fn post_json(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.post(&url).header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req.send(body.to_string()))
    }

    fn finish(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ClientError> {
        let mut resp = r.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| ClientError(format!("{}: reading the answer failed: {e}", self.base)))?;
        Ok(Reply { status, body })
    }

    fn unreachable(&self, e: ureq::Error) -> ClientError {
        let why = match &e {
            ureq::Error::Io(io) => io.to_string(),
            ureq::Error::Timeout(_) => "no answer in time".to_string(),
            other => other.to_string(),
        };
        ClientError(format!(
            "cannot reach the flowgate API at {}: {why} (is it running? --api URL or --config FILE says where)",
            self.base
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_from_flag_or_config() {
        let none = RawConfig::default();
        assert_eq!(base_url(None, &none), "http://127.0.0.1:8080");
        assert_eq!(base_url(Some("127.0.0.1:9/"), &none), "http://127.0.0.1:9");
        assert_eq!(base_url(Some("https://x:1"), &none), "https://x:1");
        let c = RawConfig("[api]\nlisten = \"0.0.0.0:9090\"\n".parse().unwrap());
        assert_eq!(base_url(None, &c), "http://127.0.0.1:9090");
        let c = RawConfig(
            "[api]\nlisten = \"[::]:9090\"\n[nfw]\nfirewall_arn = \"arn:aws:x\"\n"
                .parse()
                .unwrap(),
        );
        assert_eq!(base_url(None, &c), "http://[::1]:9090");
        assert_eq!(c.find("firewall_arn"), Some("arn:aws:x"));
    }

    #[test]
    fn missing_files() {
        assert!(RawConfig::load(Some(Path::new("/nonexistent.toml"))).is_err());
        let e = RawConfig::load(Some(Path::new("/proc/self/status"))).unwrap_err();
        assert!(e.0.contains("not valid TOML") && !e.0.contains('\n'), "{e}");
    }

    #[test]
    fn unreachable_is_one_line() {
        // A port nothing listens on: bind one, then drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
        let e = c.get("/metrics").unwrap_err();
        assert!(e.0.starts_with("cannot reach the flowgate API"), "{e}");
        assert!(!e.0.contains('\n'));
    }
}
