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

/// What the client proves itself with.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Access key id and secret, for the AWS faces (SigV4).
    pub aws: Option<(String, String)>,
    /// API token, for the F5 face.
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("aws", &self.aws.as_ref().map(|(id, _)| id))
            .field("token", &self.token.is_some())
            .finish()
    }
}

impl Credentials {
    /// The credentials a config's `[auth]` section gives: its first key
    /// and token, else its credentials file; none when auth is off.
    /// `FLOWGATE_API_TOKEN` and the standard `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` variables take precedence.
    pub fn from_config(c: &RawConfig) -> Credentials {
        let auth = c.0.get("auth").and_then(|a| a.as_table());
        if auth
            .and_then(|a| a.get("enabled"))
            .and_then(|v| v.as_bool())
            == Some(false)
        {
            return Credentials::default();
        }
        let secret = |t: &toml::Table, base: &str| -> Option<String> {
            if let Some(v) = t.get(base).and_then(|v| v.as_str()) {
                return Some(v.to_string());
            }
            if let Some(f) = t.get(&format!("{base}_file")).and_then(|v| v.as_str()) {
                return std::fs::read_to_string(f)
                    .ok()
                    .map(|s| s.trim().to_string());
            }
            t.get(&format!("{base}_env"))
                .and_then(|v| v.as_str())
                .and_then(|v| std::env::var(v).ok())
        };
        let first = |list: &str| {
            auth.and_then(|a| a.get(list))
                .and_then(|v| v.as_array())
                .and_then(|a| a.first())
                .and_then(|v| v.as_table())
                .cloned()
        };
        let mut creds = Credentials {
            aws: first("keys")
                .and_then(|k| Some((k.get("id")?.as_str()?.to_string(), secret(&k, "secret")?))),
            token: first("f5_tokens").and_then(|t| secret(&t, "token")),
        };
        if creds.aws.is_none() || creds.token.is_none() {
            let file = auth
                .and_then(|a| a.get("credentials_file"))
                .and_then(|v| v.as_str())
                .unwrap_or("state/credentials");
            // As the server: the file's key or token counts only where the
            // config lists none of its kind (an unreadable listed secret
            // must not fall back to a key the server refuses).
            if let Ok((id, secret, token)) = crate::auth::read_credentials_file(Path::new(file)) {
                if first("keys").is_none() {
                    creds.aws.get_or_insert((id, secret));
                }
                if first("f5_tokens").is_none() {
                    creds.token.get_or_insert(token);
                }
            }
        }
        if let (Ok(id), Ok(secret)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            creds.aws = Some((id, secret));
        }
        if let Ok(t) = std::env::var("FLOWGATE_API_TOKEN") {
            creds.token = Some(t);
        }
        creds
    }
}

/// A blocking client for one appliance.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    credentials: Credentials,
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
        Client {
            base,
            agent,
            credentials: Credentials::default(),
        }
    }

    /// The same client, proving itself with `c`.
    pub fn with_credentials(mut self, c: Credentials) -> Client {
        self.credentials = c;
        self
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
        let body = body.to_string();
        let mut all: Vec<(String, String)> = vec![("content-type".into(), content_type.into())];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if content_type.starts_with("application/x-amz-json") {
            // The AWS faces want SigV4, over exactly what is sent.
            if let Some((id, secret)) = &self.credentials.aws {
                let host = host_header(&self.base);
                let mut signed: Vec<(&str, &str)> =
                    all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                signed.push(("host", &host));
                let r = crate::auth::sigv4::SignedRequest {
                    method: "POST",
                    path,
                    query: "",
                    headers: &signed,
                    body: body.as_bytes(),
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let service = if content_type.contains("json") {
                    "network-firewall"
                } else {
                    "ec2"
                };
                let extra = crate::auth::sigv4::sign(&r, id, secret, "us-east-1", service, now);
                all.extend(extra);
            }
        } else if let Some(t) = &self.credentials.token {
            all.push(("authorization".into(), format!("APIToken {t}")));
        }
        let mut req = self.agent.post(&url);
        for (k, v) in &all {
            req = req.header(k.as_str(), v.as_str());
        }
        self.finish(req.send(body))
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

/// The Host header the HTTP client sends for `base` (`http://h:p/...`), as
/// SigV4 must sign it: ureq leaves the scheme's default port out.
fn host_header(base: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let authority = rest.split('/').next().unwrap_or("");
    match (scheme, authority.rsplit_once(':')) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h,
        _ => authority,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_host_is_the_one_sent() {
        assert_eq!(host_header("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host_header("http://mgmt:80/"), "mgmt");
        assert_eq!(host_header("https://mgmt:443"), "mgmt");
        assert_eq!(host_header("https://mgmt:80"), "mgmt:80");
        assert_eq!(host_header("http://[::1]:80"), "[::1]");
        assert_eq!(host_header("http://[::1]"), "[::1]");
    }

    #[test]
    fn the_file_counts_only_for_the_kind_the_config_lists_none_of() {
        let dir = std::env::temp_dir().join(format!("fg-cli-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[flowgate]\naws_access_key_id = AKFILE\naws_secret_access_key = s\nflowgate_api_token = t\n",
        )
        .unwrap();
        let c = RawConfig(
            format!(
                "[auth]\ncredentials_file = \"{}\"\n[[auth.keys]]\nid = \"OPS\"\nsecret_env = \"FG_CLI_TEST_UNSET\"\n",
                file.display()
            )
            .parse()
            .unwrap(),
        );
        let creds = Credentials::from_config(&c);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            // The listed key's secret is not readable here; the server
            // would refuse the file's key, so it is not used either.
            assert_eq!(creds.aws, None);
        }
        if std::env::var_os("FLOWGATE_API_TOKEN").is_none() {
            assert_eq!(creds.token.as_deref(), Some("t"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

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
