//! Who may drive the appliance.
//!
//! The two AWS faces (Network Firewall, EC2) check AWS Signature Version 4
//! ([`sigv4`]) against the access keys in `[auth]`; the F5 face checks an
//! `Authorization: APIToken <token>` header. Each face maps a failure to
//! its own protocol's error. Health, readiness and metrics stay open (for
//! probes and scrapers).
//!
//! Secrets come from the config, a file, or an environment variable, and
//! are never logged. When authentication is on and no key is configured,
//! flowgate generates one at first start into `credentials_file` (mode
//! 0600, in the AWS CLI's shared-credentials format, profile `flowgate`)
//! and prints it once.

pub mod sigv4;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Loaded};

/// The credentials file's profile name.
pub const PROFILE: &str = "flowgate";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off: nobody in particular.
    Anonymous,
    /// Signed with this access key id, or bearing a valid API token.
    Authenticated(String),
}

impl Caller {
    /// Whether the caller proved who it is.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Caller::Authenticated(_))
    }
}

/// Why an F5 request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: APIToken ...` header.
    #[error("no API token: send Authorization: APIToken <token>")]
    Missing,
    /// A token that is not ours.
    #[error("the API token is not valid")]
    Wrong,
}

/// Generated credentials, to show the operator once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Where they were written.
    pub path: PathBuf,
    /// The access key id.
    pub key_id: String,
    /// The secret access key.
    pub secret: String,
    /// The F5 API token.
    pub token: String,
    /// Whether the key is accepted: only when the config lists no keys.
    pub key_in_force: bool,
    /// Whether the token is accepted: only when the config lists no tokens.
    pub token_in_force: bool,
}

/// The keys and tokens flowgate accepts.
#[derive(Clone, Default)]
pub struct Authenticator {
    enabled: bool,
    keys: HashMap<String, String>,
    tokens: Vec<String>,
    /// SHA-256 of each of `tokens`, made once: a request's token is hashed
    /// and compared with these, in a time that depends on neither token.
    token_digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Authenticator {
    // Never print a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// One secret's source.
fn read_secret(
    l: &Loaded,
    key: &str,
    inline: &Option<String>,
    file: &Option<String>,
    env: &Option<String>,
) -> Result<String, ConfigError> {
    crate::config::check_secret_source(l, key, inline, file, env)?;
    let value = if let Some(v) = inline {
        v.clone()
    } else if let Some(f) = file {
        std::fs::read_to_string(f)
            .map_err(|e| l.error(key, format!("cannot read {f:?}: {e}")))?
            .trim()
            .to_string()
    } else {
        let var = env.as_ref().expect("one source");
        std::env::var(var)
            .map_err(|_| l.error(key, format!("environment variable {var} is not set")))?
    };
    if value.is_empty() {
        return Err(l.error(key, "is empty"));
    }
    // A token is read trimmed from its header, so one with edge white space
    // could never match; for a key's secret it is almost always a stray
    // newline from an environment variable or a paste, which clients would
    // sign without.
    if value.trim() != value {
        return Err(l.error(
            key,
            "starts or ends with white space (a stray space or newline?)",
        ));
    }
    Ok(value)
}

/// Reads the AWS-style credentials file: (key id, secret, token).
pub fn read_credentials_file(path: &Path) -> Result<(String, String, String), String> {
    let ini = ini::Ini::load_from_file(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let s = ini
        .section(Some(PROFILE))
        .ok_or_else(|| format!("{} has no [{PROFILE}] profile", path.display()))?;
    let get = |k: &str| {
        s.get(k)
            .map(str::to_string)
            .ok_or_else(|| format!("{} has no {k}", path.display()))
    };
    Ok((
        get("aws_access_key_id")?,
        get("aws_secret_access_key")?,
        get("flowgate_api_token")?,
    ))
}

fn random_string(alphabet: &[u8], n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Writes new credentials to `path` with mode 0600 (created exclusively,
/// so an existing file is never overwritten).
fn generate(path: &Path) -> std::io::Result<Generated> {
    use std::os::unix::fs::OpenOptionsExt;
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let secret_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let g = Generated {
        path: path.to_path_buf(),
        key_id: format!("AKFG{}", random_string(upper, 16)),
        secret: random_string(secret_chars, 40),
        token: random_string(b"0123456789abcdef", 32),
        key_in_force: true,
        token_in_force: true,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Written whole beside it, then linked into place: a crash leaves no
    // empty or half-written file that every later start would refuse, and
    // another flowgate racing this one reads theirs or ours, complete. A
    // link, unlike a rename, never replaces a file already there.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(
        f,
        "# flowgate API credentials, generated at first start. Use them with\n\
         #   AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={PROFILE} aws --endpoint-url http://<api> ...\n\
         # and with Authorization: APIToken <flowgate_api_token> for the F5 face.\n\
         [{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\nflowgate_api_token = {}",
        path.display(),
        g.key_id,
        g.secret,
        g.token
    )?;
    f.sync_all()?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(g)
}

impl Authenticator {
    /// Accepts everything (authentication off).
    pub fn disabled() -> Authenticator {
        Authenticator::default()
    }

    /// The authenticator the config describes; generates credentials at
    /// first start when auth is on and none are configured.
    pub fn from_config(l: &Loaded) -> Result<(Authenticator, Option<Generated>), ConfigError> {
        let a = &l.config.auth;
        if !a.enabled {
            return Ok((Authenticator::disabled(), None));
        }
        let mut auth = Authenticator {
            enabled: true,
            ..Authenticator::default()
        };
        for (i, k) in a.keys.iter().enumerate() {
            let secret = read_secret(
                l,
                &format!("auth.keys[{i}].secret"),
                &k.secret,
                &k.secret_file,
                &k.secret_env,
            )?;
            if k.id.is_empty() {
                return Err(l.error(format!("auth.keys[{i}].id"), "is empty"));
            }
            if auth.keys.insert(k.id.clone(), secret).is_some() {
                return Err(l.error(
                    format!("auth.keys[{i}].id"),
                    format!("{:?} is listed twice", k.id),
                ));
            }
        }
        for (i, t) in a.f5_tokens.iter().enumerate() {
            auth.tokens.push(read_secret(
                l,
                &format!("auth.f5_tokens[{i}].token"),
                &t.token,
                &t.token_file,
                &t.token_env,
            )?);
        }
        let mut generated = None;
        // The file supplies only the kind the config lists none of: a
        // configured key list is the whole list, so the file's key must not
        // join it (and is then neither accepted nor announced).
        let key_from_file = auth.keys.is_empty();
        let token_from_file = auth.tokens.is_empty();
        if key_from_file || token_from_file {
            let Some(path) = &a.credentials_file else {
                return Err(l.error("auth", "authentication is on but no keys, f5_tokens or credentials_file are configured"));
            };
            let path = Path::new(path);
            if !path.exists() {
                match generate(path) {
                    Ok(g) => generated = Some(g),
                    // Another flowgate created it meanwhile: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(l.error(
                            "auth.credentials_file",
                            format!("cannot create {}: {e}", path.display()),
                        ))
                    }
                }
            }
            let (id, secret, token) =
                read_credentials_file(path).map_err(|e| l.error("auth.credentials_file", e))?;
            if key_from_file {
                auth.keys.insert(id, secret);
            }
            if token_from_file {
                auth.tokens.push(token);
            }
            if let Some(g) = &mut generated {
                g.key_in_force = key_from_file;
                g.token_in_force = token_from_file;
            }
        }
        auth.token_digests = auth.tokens.iter().map(|t| digest(t.as_bytes())).collect();
        Ok((auth, generated))
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Checks an AWS request's SigV4 signature for `service`.
    pub fn aws(
        &self,
        req: &crate::api::ApiRequest,
        service: &str,
    ) -> Result<Caller, sigv4::SigV4Error> {
        if !self.enabled {
            return Ok(Caller::Anonymous);
        }
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let r = sigv4::SignedRequest {
            method: req.method.as_str(),
            path: &req.path,
            query: req.query.as_deref().unwrap_or(""),
            headers: &headers,
            body: &req.body,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let auth = headers
            .iter()
            .find(|(k, _)| *k == "authorization")
            .map(|(_, v)| *v);
        if let Some(a) = auth.map(sigv4::parse_authorization).transpose()? {
            if a.service != service {
                return Err(sigv4::SigV4Error::Malformed(format!(
                    "Credential should be scoped to correct service: '{service}'."
                )));
            }
        }
        sigv4::verify(&r, |id| self.keys.get(id).cloned(), now).map(Caller::Authenticated)
    }

    /// Checks an F5 request's `Authorization: APIToken <token>`.
    pub fn f5(&self, req: &crate::api::ApiRequest) -> Result<Caller, TokenError> {
        if !self.enabled {
            return Ok(Caller::Anonymous);
        }
        // The scheme is case-insensitive (RFC 9110); an empty token is none.
        let given = req
            .header("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("APIToken"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(TokenError::Missing)?;
        // Compare with every token fully, digest against digest, so that
        // timing says nothing about which part matched or how long either is.
        let given = digest(given.as_bytes());
        let ok = self
            .token_digests
            .iter()
            .fold(false, |acc, t| acc | digests_equal(t, &given));
        if ok {
            Ok(Caller::Authenticated("api-token".into()))
        } else {
            Err(TokenError::Wrong)
        }
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(b).into()
}

/// Whether `a` and `b` are equal, in a time that says nothing about where
/// they differ.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(extra: &str) -> Loaded {
        let text = format!("[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n{extra}");
        Loaded {
            path: "t.toml".into(),
            config: crate::config::parse(&text).unwrap(),
        }
    }

    #[test]
    fn generated_once_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("fg-auth-{}", std::process::id()));
        let file = dir.join("state/credentials");
        let l = loaded(&format!(
            "[auth]\ncredentials_file = \"{}\"\n",
            file.display()
        ));
        let (a, g) = Authenticator::from_config(&l).unwrap();
        let g = g.expect("generated at first start");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(g.key_id.starts_with("AKFG") && g.key_id.len() == 20 && g.secret.len() == 40);
        assert_eq!(a.keys.get(&g.key_id), Some(&g.secret));
        assert!(
            !format!("{a:?}").contains(&g.secret),
            "debug output never shows secrets"
        );
        let (again, g2) = Authenticator::from_config(&l).unwrap();
        assert!(g2.is_none(), "second start reuses the file");
        assert_eq!(again.keys.get(&g.key_id), Some(&g.secret));
        // Nothing left beside it; and a file that appears first is never
        // overwritten.
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["credentials"]);
        let before = std::fs::read(&file).unwrap();
        let again = generate(&file).map(|_| ());
        assert_eq!(
            again.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(std::fs::read(&file).unwrap(), before);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_supplies_only_the_kind_the_config_lists_none_of() {
        let dir = std::env::temp_dir().join(format!("fg-auth4-{}", std::process::id()));
        let file = dir.join("credentials");
        let keys_only = loaded(&format!(
            "[auth]\ncredentials_file = \"{}\"\n[[auth.keys]]\nid = \"OPS\"\nsecret = \"s3cret\"\n",
            file.display()
        ));
        let (a, g) = Authenticator::from_config(&keys_only).unwrap();
        let g = g.expect("the token is generated");
        assert_eq!(a.keys.keys().collect::<Vec<_>>(), ["OPS"], "no other key");
        assert_eq!(a.tokens, std::slice::from_ref(&g.token));
        assert!(!g.key_in_force && g.token_in_force);
        // Reusing the file later is the same.
        let (a, g2) = Authenticator::from_config(&keys_only).unwrap();
        assert!(g2.is_none());
        assert_eq!(a.keys.keys().collect::<Vec<_>>(), ["OPS"]);

        let tokens_only = loaded(&format!(
            "[auth]\ncredentials_file = \"{}\"\n[[auth.f5_tokens]]\ntoken = \"mine\"\n",
            file.display()
        ));
        let (a, _) = Authenticator::from_config(&tokens_only).unwrap();
        assert_eq!(a.tokens, ["mine"], "the file's token is not accepted");
        assert_eq!(a.keys.get(&g.key_id), Some(&g.secret));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_ids_are_named_once_and_secrets_carry_no_edge_space() {
        let twice = loaded("[auth]\n[[auth.keys]]\nid = \"K\"\nsecret = \"a\"\n[[auth.keys]]\nid = \"K\"\nsecret = \"b\"\n[[auth.f5_tokens]]\ntoken = \"t\"\n");
        let e = Authenticator::from_config(&twice).unwrap_err();
        assert_eq!(e.key, "auth.keys[1].id");
        assert!(e.problem.contains("twice"), "{e}");
        let empty = loaded(
            "[auth]\n[[auth.keys]]\nid = \"\"\nsecret = \"a\"\n[[auth.f5_tokens]]\ntoken = \"t\"\n",
        );
        assert_eq!(
            Authenticator::from_config(&empty).unwrap_err().key,
            "auth.keys[0].id"
        );
        let spaced = loaded("[auth]\n[[auth.keys]]\nid = \"K\"\nsecret = \"a\"\n[[auth.f5_tokens]]\ntoken = \" t\"\n");
        let e = Authenticator::from_config(&spaced).unwrap_err();
        assert_eq!(e.key, "auth.f5_tokens[0].token");
        assert!(e.problem.contains("white space"), "{e}");
    }

    #[test]
    fn secrets_from_value_file_or_env() {
        let dir = std::env::temp_dir().join(format!("fg-auth2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s"), "from-file\n").unwrap();
        std::env::set_var("FG_TEST_SECRET_XYZ", "from-env");
        let l = loaded(&format!(
            "[auth]\n[[auth.keys]]\nid = \"K1\"\nsecret = \"inline\"\n[[auth.keys]]\nid = \"K2\"\nsecret_file = \"{}\"\n[[auth.keys]]\nid = \"K3\"\nsecret_env = \"FG_TEST_SECRET_XYZ\"\n[[auth.f5_tokens]]\ntoken = \"tok\"\n",
            dir.join("s").display()
        ));
        let (a, g) = Authenticator::from_config(&l).unwrap();
        assert!(g.is_none());
        assert_eq!(a.keys["K1"], "inline");
        assert_eq!(a.keys["K2"], "from-file");
        assert_eq!(a.keys["K3"], "from-env");
        let bad = loaded("[auth]\n[[auth.keys]]\nid = \"K\"\nsecret = \"a\"\nsecret_env = \"B\"\n[[auth.f5_tokens]]\ntoken = \"t\"\n");
        assert_eq!(
            Authenticator::from_config(&bad).unwrap_err().key,
            "auth.keys[0].secret"
        );
        let missing = loaded("[auth]\n[[auth.keys]]\nid = \"K\"\nsecret_env = \"FG_NOT_SET_ANYWHERE\"\n[[auth.f5_tokens]]\ntoken = \"t\"\n");
        assert!(Authenticator::from_config(&missing)
            .unwrap_err()
            .problem
            .contains("FG_NOT_SET_ANYWHERE"));
        let unreadable = loaded(&format!(
            "[auth]\n[[auth.keys]]\nid = \"K\"\nsecret_file = \"{}\"\n[[auth.f5_tokens]]\ntoken = \"t\"\n",
            dir.join("absent").display()
        ));
        let e = Authenticator::from_config(&unreadable).unwrap_err();
        assert_eq!(e.key, "auth.keys[0].secret");
        assert!(e.problem.starts_with("cannot read "), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_credentials_file_stops_the_start() {
        let dir = std::env::temp_dir().join(format!("fg-auth3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        let config = loaded(&format!(
            "[auth]\ncredentials_file = \"{}\"\n",
            file.display()
        ));
        for (text, problem) in [
            (
                "[default]\naws_access_key_id = A\n",
                "has no [flowgate] profile",
            ),
            (
                "[flowgate]\naws_access_key_id = A\nflowgate_api_token = T\n",
                "has no aws_secret_access_key",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = Authenticator::from_config(&config).unwrap_err();
            assert_eq!(e.key, "auth.credentials_file");
            assert!(e.problem.ends_with(problem), "{e}");
            // Kept as it was: a damaged file is the operator's to mend.
            assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn off_only_when_asked() {
        let (a, _) = Authenticator::from_config(&loaded("[auth]\nenabled = false\n")).unwrap();
        assert!(!a.enabled());
    }
}
