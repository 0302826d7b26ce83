//! Reading an EC2 query request: the form-encoded body's parameters,
//! with EC2's list serialisation (`Name.N`, `Filter.N.Value.M`) and its
//! typed members.

use super::error::Ec2Error;

/// The parameters of one request, in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Params {
        Params(form_urlencoded::parse(body).into_owned().collect())
    }

    /// A scalar member.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required scalar member.
    pub fn required(&self, name: &str) -> Result<&str, Ec2Error> {
        self.get(name)
            .ok_or_else(|| Ec2Error::MissingParameter(name.into()))
    }

    /// An integer member.
    pub fn int(&self, name: &str) -> Result<Option<i64>, Ec2Error> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    Ec2Error::InvalidParameterValue(format!(
                        "Value ({v}) for parameter {name} is invalid. Expected an integer."
                    ))
                })
            })
            .transpose()
    }

    /// An integer member within `lo..=hi`.
    pub fn int_in(&self, name: &str, lo: i64, hi: i64) -> Result<Option<i64>, Ec2Error> {
        match self.int(name)? {
            Some(v) if !(lo..=hi).contains(&v) => Err(Ec2Error::InvalidParameterValue(format!(
                "Value ({v}) for parameter {name} is invalid. It must be between {lo} and {hi}."
            ))),
            v => Ok(v),
        }
    }

    /// A boolean member (`true` / `false`).
    pub fn flag(&self, name: &str) -> Result<bool, Ec2Error> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Ec2Error::InvalidParameterValue(format!(
                "Value ({v}) for parameter {name} is invalid. Expected a boolean."
            ))),
        }
    }

    /// Every parameter under `prefix.N`, as (N, the rest of its name after
    /// `prefix.N`, value), by N and then in the order sent. One pass over
    /// the parameters: a lookup per index made a body of tens of thousands
    /// of `Filter.N.Name` entries cost billions of comparisons on the
    /// control thread.
    fn members(&self, prefix: &str) -> Vec<(u32, &str, &str)> {
        let mut v: Vec<(u32, &str, &str)> = self
            .0
            .iter()
            .filter_map(|(k, val)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                let (n, tail) = rest.split_once('.').unwrap_or((rest, ""));
                Some((n.parse().ok()?, tail, val.as_str()))
            })
            .collect();
        // Stable: the first of repeated names stays first, as `get` finds it.
        v.sort_by_key(|&(n, _, _)| n);
        v
    }

    /// A list of scalars: `prefix.1`, `prefix.2`, ...
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items = self.members(prefix);
        items.retain(|&(_, tail, _)| tail.is_empty());
        items.dedup_by_key(|&mut (n, _, _)| n);
        items.into_iter().map(|(_, _, v)| v.to_string()).collect()
    }

    /// A list of structures: each element's own parameters, names relative.
    pub fn structs(&self, prefix: &str) -> Vec<Params> {
        let mut out: Vec<(u32, Params)> = Vec::new();
        for (n, tail, v) in self.members(prefix) {
            if out.last().map(|(last, _)| *last) != Some(n) {
                out.push((n, Params::default()));
            }
            if !tail.is_empty() {
                if let Some((_, p)) = out.last_mut() {
                    p.0.push((tail.to_string(), v.to_string()));
                }
            }
        }
        out.into_iter().map(|(_, p)| p).collect()
    }

    /// SHA-256 (hex) of every parameter but those named in `skip`, in
    /// name order: what tells a retried request from another one.
    pub fn digest_without(&self, skip: &[&str]) -> String {
        use sha2::{Digest, Sha256};
        let mut kept: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| !skip.contains(&k.as_str()))
            .collect();
        kept.sort();
        let mut h = Sha256::new();
        for (k, v) in kept {
            // Lengths first, so that no two lists hash the same text.
            h.update((k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update((v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Describe filters: (name, values).
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        self.structs("Filter")
            .into_iter()
            .map(|f| {
                (
                    f.get("Name").unwrap_or_default().to_string(),
                    f.list("Value"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_grouped_by_index_whatever_order_they_come_in() {
        let p = Params::parse(
            b"Filter.2.Value.2=y&Filter.10.Name=ten&Filter.2.Name=two&Filter.1.Name=one\
              &Filter.2.Value.1=x&Filter.1.Name=again&Id.3=c&Id.1=a&Id.1=a2&Id.2.Sub=no&Filterx.1=no",
        );
        assert_eq!(
            p.filters(),
            vec![
                ("one".into(), vec![]),
                ("two".into(), vec!["x".into(), "y".into()]),
                ("ten".into(), vec![]),
            ]
        );
        // The first of a repeated name counts, as for a scalar member; an
        // index with only deeper members is not a scalar of the list.
        assert_eq!(p.list("Id"), vec!["a", "c"]);
        assert_eq!(p.structs("Id").len(), 3);
        assert!(p.list("Filter").is_empty());
    }

    #[test]
    fn ec2_list_serialisation() {
        let p = Params::parse(
            b"Action=DescribeTrafficMirrorSessions&Filter.1.Name=session-number&Filter.1.Value.1=1\
              &Filter.1.Value.2=2&Filter.2.Name=description&Filter.2.Value.1=a%20b\
              &TrafficMirrorSessionId.2=tms-b&TrafficMirrorSessionId.1=tms-a&MaxResults=5&DryRun=true",
        );
        assert_eq!(p.get("Action"), Some("DescribeTrafficMirrorSessions"));
        assert_eq!(
            p.filters(),
            vec![
                ("session-number".into(), vec!["1".into(), "2".into()]),
                ("description".into(), vec!["a b".into()]),
            ]
        );
        assert_eq!(p.list("TrafficMirrorSessionId"), vec!["tms-a", "tms-b"]);
        assert_eq!(p.int_in("MaxResults", 5, 1000).unwrap(), Some(5));
        assert!(p.int_in("MaxResults", 6, 1000).is_err());
        assert!(p.flag("DryRun").unwrap());
        assert!(matches!(
            p.required("X"),
            Err(Ec2Error::MissingParameter(_))
        ));
    }
}
