//! The EC2 Traffic Mirroring face (EC2 query protocol, API 2016-11-15):
//! form-encoded `POST /` with `Action=`, SigV4 (service `ec2`), XML answers.
//!
//! This module owns the fifteen traffic-mirroring operations: it checks
//! each request against EC2's rules, changes the [`MirrorStore`], which
//! persists before anything is answered, and hands the compiled sessions
//! to every worker without waiting for them.

pub mod error;
pub mod query;
pub mod xml;

use std::sync::Arc;

use hyper::StatusCode;

use self::error::Ec2Error;
use self::query::Params;
use self::xml::Xml;
use crate::api::{respond, ApiRequest, ApiState, HttpResponse};
use crate::auth::Caller;
use crate::mirror_store::{
    new_id, Filter, FilterRule, MirrorPort, MirrorState, MirrorStore, Ports, Session, Tag, Target,
    TunnelConfig,
};

/// EC2 answers XML with this content type.
pub const CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

/// Every operation this face serves.
pub const ACTIONS: [&str; 15] = [
    "CreateTrafficMirrorFilter",
    "CreateTrafficMirrorFilterRule",
    "CreateTrafficMirrorSession",
    "CreateTrafficMirrorTarget",
    "DeleteTrafficMirrorFilter",
    "DeleteTrafficMirrorFilterRule",
    "DeleteTrafficMirrorSession",
    "DeleteTrafficMirrorTarget",
    "DescribeTrafficMirrorFilterRules",
    "DescribeTrafficMirrorFilters",
    "DescribeTrafficMirrorSessions",
    "DescribeTrafficMirrorTargets",
    "ModifyTrafficMirrorFilterNetworkServices",
    "ModifyTrafficMirrorFilterRule",
    "ModifyTrafficMirrorSession",
];

/// Whether a request is for this face: a form-encoded POST to `/` naming an
/// `Action`.
pub fn is_ec2(req: &ApiRequest) -> bool {
    req.method == hyper::Method::POST
        && req.path == "/"
        && !req.headers.contains_key("x-amz-target")
        && Params::parse(&req.body).get("Action").is_some()
}

/// The throttling answer (beyond the HTTP bounds).
pub fn throttled() -> HttpResponse {
    Ec2Error::RequestLimitExceeded.into_response(&uuid::Uuid::new_v4().to_string())
}

/// Answers one request.
pub fn handle(req: &ApiRequest, state: &Arc<ApiState>) -> HttpResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let params = Params::parse(&req.body);
    let action = params.get("Action").unwrap_or_default().to_string();
    let result = state
        .auth
        .aws(req, "ec2")
        .map_err(Ec2Error::from)
        .and_then(|caller| call(&action, &params, &caller, state, &request_id));
    match result {
        Ok(body) => respond(StatusCode::OK, CONTENT_TYPE, body),
        Err(e) => e.into_response(&request_id),
    }
}

/// The flowgate ports as the mirror API knows them, in port order (MACs
/// and MTUs are known once the ports are up).
pub fn port_enis(state: &ApiState) -> Vec<MirrorPort> {
    let views = state.ports.get().map_or(&[][..], Vec::as_slice);
    crate::appliance::mirror_ports(&state.config.ports, views)
}

/// The tunnel's addresses from `[mirror]`.
pub fn tunnel(state: &ApiState) -> TunnelConfig {
    TunnelConfig::from_config(&state.config.mirror)
}

/// Compiles the store and installs it in every worker (in the background:
/// the HTTP thread never waits on a worker).
///
/// A worker whose command ring is full keeps its old table, so the install
/// is tried again (with the store's latest state) until every worker has
/// confirmed it or a newer change has started its own install; otherwise a
/// busy moment could leave a worker mirroring an outdated configuration
/// until the next change.
pub fn install(state: &Arc<ApiState>) {
    let Some(dispatcher) = state.dispatcher.get().cloned() else {
        return; // installed when the data plane comes up
    };
    let state = state.clone();
    let deadline = std::time::Duration::from_millis(state.config.operations.worker_timeout_ms);
    tokio::task::spawn_local(async move {
        let generation = state.mirror().state.generation;
        let mut pause = std::time::Duration::from_millis(50);
        // Once per install, not per retry. A change can leave a session out
        // (a new one on a target restored without its port).
        let left_out = state.mirror().left_out(&port_enis(&state));
        for left in left_out {
            say!("flowgate: {left}");
        }
        let idle = state.mirror().idle_in(state.config.dataplane.mode);
        if let Some(idle) = idle {
            say!("flowgate: {idle}");
        }
        loop {
            let compiled = state.mirror().compile(&port_enis(&state), &tunnel(&state));
            let cfg = match compiled {
                Ok(cfg) => cfg,
                Err(e) => {
                    eprintln!("flowgate: mirror configuration not installed: {e}");
                    return;
                }
            };
            let installed = cfg.generation;
            let answers = dispatcher.install_mirror(Arc::new(cfg), deadline).await;
            if answers.iter().all(|ok| *ok) {
                state.mirror_installed(installed);
                return;
            }
            if state.mirror().state.generation != generation {
                return; // a newer change installs its own, later, state
            }
            eprintln!(
                "flowgate: mirror configuration not confirmed by every worker: {answers:?}; trying again"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(2));
        }
    });
}

fn call(
    action: &str,
    p: &Params,
    caller: &Caller,
    state: &Arc<ApiState>,
    request_id: &str,
) -> Result<String, Ec2Error> {
    if !ACTIONS.contains(&action) {
        return Err(Ec2Error::InvalidAction(action.to_string()));
    }
    let owner = state.config.mirror.owner_id.clone();
    let enis = port_enis(state);
    let mut doc = Xml::response(action, request_id);
    {
        let mut store = state.mirror();
        let limits = &state.config.mirror;
        let ctx = Ctx {
            p,
            caller,
            owner: &owner,
            enis: &enis,
            limits,
        };
        let Some(before) = apply(action, &ctx, &mut store, &mut doc)? else {
            return Ok(doc.finish(action));
        };
        if let Err(e) = store.save() {
            store.state = *before;
            return Err(Ec2Error::InternalError(e.to_string()));
        }
    }
    install(state);
    Ok(doc.finish(action))
}

/// Carries out `action` on `store`, all or nothing, writing the answer
/// into `doc`. Returns the state before when the store changed (to undo
/// it if saving fails), `None` when it did not.
fn apply(
    action: &str,
    c: &Ctx,
    store: &mut MirrorStore,
    doc: &mut Xml,
) -> Result<Option<Box<MirrorState>>, Ec2Error> {
    // A create retried with its ClientToken (boto3 fills one in and sends
    // the same on every retry) answers with what the first attempt made,
    // and changes nothing.
    let token =
        c.p.get("ClientToken")
            .filter(|_| action.starts_with("Create"));
    // Tokens are kept: EC2's bound keeps them small.
    if token.is_some_and(|t| t.len() > MAX_CLIENT_TOKEN || !t.is_ascii()) {
        return Err(Ec2Error::InvalidParameterValue(format!(
            "The client token must be at most {MAX_CLIENT_TOKEN} ASCII characters."
        )));
    }
    if let Some(t) = token {
        xml_chars("ClientToken", t)?;
    }
    let parameters = token.map(|_| {
        c.p.digest_without(&["ClientToken", "Action", "Version", "DryRun"])
    });
    if let (Some(token), Some(parameters)) = (token, &parameters) {
        if let Some(used) = store.state.client_tokens.get(token).cloned() {
            if used.action != action || used.parameters != *parameters {
                return Err(Ec2Error::IdempotentParameterMismatch(format!(
                    "Client token '{token}' was already used with different parameters."
                )));
            }
            c.dry_run()?;
            answer_created(action, &used.id, c, store, doc)?;
            return Ok(None);
        }
    }
    // Kept to undo a change that fails half-way; describes change nothing,
    // and copying every object (tags and all) for each of them was most of
    // their cost.
    let before = (!action.starts_with("Describe")).then(|| Box::new(store.state.clone()));
    match ops(action, c, store, doc) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => {
            if let Some(before) = before {
                store.state = *before;
            }
            return Err(e);
        }
    }
    if let (Some(token), Some(parameters)) = (token, parameters) {
        if let Some(id) = store.newest().map(str::to_string) {
            store.remember_token(token, action, parameters, id);
        }
    }
    Ok(before)
}

/// The answer to a create: the object `id` as it is now, and the request's
/// ClientToken. A retried create (same token) gets the object the first
/// attempt made, unless it was deleted since.
fn answer_created(
    action: &str,
    id: &str,
    c: &Ctx,
    store: &MirrorStore,
    doc: &mut Xml,
) -> Result<(), Ec2Error> {
    let st = &store.state;
    let found = match action {
        "CreateTrafficMirrorTarget" => st.targets.get(id).map(|t| {
            doc.open("trafficMirrorTarget")
                .target(t, c.owner)
                .close("trafficMirrorTarget");
        }),
        "CreateTrafficMirrorFilter" => st.filters.get(id).map(|f| {
            doc.open("trafficMirrorFilter")
                .filter(f, store)
                .close("trafficMirrorFilter");
        }),
        "CreateTrafficMirrorFilterRule" => st.rules.get(id).map(|r| {
            doc.open("trafficMirrorFilterRule")
                .rule(r)
                .close("trafficMirrorFilterRule");
        }),
        "CreateTrafficMirrorSession" => st.sessions.get(id).map(|s| {
            doc.open("trafficMirrorSession")
                .session(s, c.owner)
                .close("trafficMirrorSession");
        }),
        _ => None,
    };
    if found.is_none() {
        return Err(Ec2Error::IdempotentParameterMismatch(
            "The client token you have provided is associated with a resource that is already deleted. Please use a different client token.".into(),
        ));
    }
    doc.opt("clientToken", c.p.get("ClientToken"));
    Ok(())
}

struct Ctx<'a> {
    p: &'a Params,
    caller: &'a Caller,
    owner: &'a str,
    enis: &'a [MirrorPort],
    limits: &'a crate::config::MirrorSection,
}

impl Ctx<'_> {
    /// EC2 checks DryRun once the request is valid: the answer is then an
    /// error either way.
    fn dry_run(&self) -> Result<(), Ec2Error> {
        if !self.p.flag("DryRun")? {
            return Ok(());
        }
        match self.caller {
            Caller::Authenticated(_) => Err(Ec2Error::DryRunOperation),
            Caller::Anonymous => Err(Ec2Error::UnauthorizedOperation),
        }
    }

    fn eni(&self, name: &str) -> Result<String, Ec2Error> {
        let id = self.p.required(name)?;
        if self.enis.iter().any(|p| p.eni == id) {
            Ok(id.to_string())
        } else {
            Err(Ec2Error::NotFound(
                "InvalidNetworkInterfaceId.NotFound",
                format!("The networkInterface ID '{id}' does not exist"),
            ))
        }
    }

    fn tags(&self, resource: &str) -> Result<Vec<Tag>, Ec2Error> {
        let mut out = Vec::new();
        for spec in self.p.structs("TagSpecification") {
            let rt = spec.get("ResourceType").unwrap_or_default();
            if rt != resource {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "'{rt}' is not a valid taggable resource type for this operation."
                )));
            }
            for t in spec.structs("Tag") {
                out.push(Tag {
                    key: t.required("Key")?.to_string(),
                    value: t.get("Value").unwrap_or_default().to_string(),
                });
            }
        }
        check_tags(&out)?;
        Ok(out)
    }
}

/// Longest ClientToken (ASCII characters), as EC2 allows.
const MAX_CLIENT_TOKEN: usize = 64;

/// Most tags on one resource, and the longest key and value (characters),
/// as EC2 allows.
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// EC2's bounds on a resource's tags: each object's tags are kept, saved
/// and described with it, so without them one request could make every
/// later save and describe carry megabytes.
fn check_tags(tags: &[Tag]) -> Result<(), Ec2Error> {
    if tags.len() > MAX_TAGS {
        return Err(Ec2Error::LimitExceeded(
            "TagLimitExceeded",
            "The maximum number of Tags for a resource has been reached.".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let invalid = |m: String| Err(Ec2Error::InvalidParameterValue(m));
        xml_chars("Tag.Key", &t.key)?;
        xml_chars("Tag.Value", &t.value)?;
        if t.key.chars().count() > MAX_TAG_KEY {
            return invalid(format!(
                "Tag key exceeds the maximum length of {MAX_TAG_KEY} characters"
            ));
        }
        if t.value.chars().count() > MAX_TAG_VALUE {
            return invalid(format!(
                "Tag value exceeds the maximum length of {MAX_TAG_VALUE} characters"
            ));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return invalid("Tag keys starting with 'aws:' are reserved for internal use".into());
        }
        if !seen.insert(t.key.as_str()) {
            return invalid(format!("Duplicate tag key '{}' specified", t.key));
        }
    }
    Ok(())
}

fn not_found(kind: &'static str, id: &str) -> Ec2Error {
    let (code, what) = match kind {
        "target" => (
            "InvalidTrafficMirrorTargetId.NotFound",
            "traffic mirror target",
        ),
        "filter" => (
            "InvalidTrafficMirrorFilterId.NotFound",
            "traffic mirror filter",
        ),
        "rule" => (
            "InvalidTrafficMirrorFilterRuleId.NotFound",
            "traffic mirror filter rule",
        ),
        _ => (
            "InvalidTrafficMirrorSessionId.NotFound",
            "traffic mirror session",
        ),
    };
    Ec2Error::NotFound(code, format!("The {what} ID '{id}' does not exist."))
}

/// Longest Description, in characters (not UTF-8 bytes), as EC2 allows.
const MAX_DESCRIPTION: usize = 255;

fn description(p: &Params) -> Result<Option<String>, Ec2Error> {
    match p.get("Description") {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(Ec2Error::InvalidParameterValue(
            format!("Description must be at most {MAX_DESCRIPTION} characters"),
        )),
        Some(d) => xml_chars("Description", d).map(|()| Some(d.to_string())),
        None => Ok(None),
    }
}

/// Refuses a value that holds a character XML 1.0 cannot carry (`%01`
/// decodes to U+0001): kept, it would be described in every later answer,
/// and the writer could only show it replaced. The value itself is not
/// echoed, as it is what cannot be written.
fn xml_chars(name: &str, v: &str) -> Result<(), Ec2Error> {
    match v.chars().find(|&c| !xml::is_xml_char(c)) {
        Some(c) => Err(Ec2Error::InvalidParameterValue(format!(
            "Value for parameter {name} is invalid. Character U+{:04X} is not allowed.",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn ports(p: &Params, name: &str) -> Result<Option<Ports>, Ec2Error> {
    let from = p.int_in(&format!("{name}.FromPort"), 0, 65535)?;
    let to = p.int_in(&format!("{name}.ToPort"), 0, 65535)?;
    match (from, to) {
        (None, None) => Ok(None),
        (f, t) => {
            let (f, t) = (f.unwrap_or(0) as u16, t.unwrap_or(65535) as u16);
            if f > t {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "{name}: FromPort ({f}) must not be greater than ToPort ({t})"
                )));
            }
            Ok(Some(Ports { from: f, to: t }))
        }
    }
}

fn cidr(p: &Params, name: &str) -> Result<Option<String>, Ec2Error> {
    p.get(name)
        .map(|v| {
            v.parse::<ipnet::IpNet>()
                .map(|n| n.trunc().to_string())
                .map_err(|_| {
                    Ec2Error::InvalidParameterValue(format!(
                        "Value ({v}) for parameter {name} is invalid. This is not a valid CIDR block."
                    ))
                })
        })
        .transpose()
}

/// Checks a rule's fields together, as EC2 does.
fn check_rule(r: &FilterRule) -> Result<(), Ec2Error> {
    let v6 = |s: &str| s.contains(':');
    if v6(&r.source_cidr) != v6(&r.destination_cidr) {
        return Err(Ec2Error::InvalidParameterCombination(
            "SourceCidrBlock and DestinationCidrBlock must be of the same IP version".into(),
        ));
    }
    if (r.source_ports.is_some() || r.destination_ports.is_some())
        && !matches!(r.protocol, Some(6) | Some(17))
    {
        return Err(Ec2Error::InvalidParameterCombination(
            "Port ranges can only be given with protocol 6 (TCP) or 17 (UDP)".into(),
        ));
    }
    Ok(())
}

fn direction(v: &str) -> Result<bool, Ec2Error> {
    match v {
        "ingress" => Ok(true),
        "egress" => Ok(false),
        _ => Err(Ec2Error::InvalidParameterValue(format!(
            "Value ({v}) for parameter TrafficDirection is invalid. Expected ingress or egress."
        ))),
    }
}

fn action_of(v: &str) -> Result<bool, Ec2Error> {
    match v {
        "accept" => Ok(true),
        "reject" => Ok(false),
        _ => Err(Ec2Error::InvalidParameterValue(format!(
            "Value ({v}) for parameter RuleAction is invalid. Expected accept or reject."
        ))),
    }
}

fn rule_number_free(store: &MirrorStore, r: &FilterRule) -> Result<(), Ec2Error> {
    let taken = store.state.rules.values().any(|o| {
        o.id != r.id
            && o.filter_id == r.filter_id
            && o.ingress == r.ingress
            && o.rule_number == r.rule_number
    });
    if taken {
        return Err(Ec2Error::InvalidParameterValue(format!(
            "Rule number {} is already used in the {} rules of {}",
            r.rule_number,
            if r.ingress { "ingress" } else { "egress" },
            r.filter_id
        )));
    }
    Ok(())
}

fn session_number_free(store: &MirrorStore, s: &Session) -> Result<(), Ec2Error> {
    let taken = store.state.sessions.values().any(|o| {
        o.id != s.id
            && o.network_interface_id == s.network_interface_id
            && o.session_number == s.session_number
    });
    if taken {
        return Err(Ec2Error::InvalidParameterValue(format!(
            "Session number {} is already in use on {}",
            s.session_number, s.network_interface_id
        )));
    }
    Ok(())
}

/// EC2 refuses a session whose source is its own target's interface; in
/// flowgate the copies would also leave by the port being watched.
fn not_own_target(store: &MirrorStore, s: &Session) -> Result<(), Ec2Error> {
    let own = store
        .state
        .targets
        .get(&s.target_id)
        .is_some_and(|t| t.network_interface_id == s.network_interface_id);
    if own {
        return Err(Ec2Error::InvalidParameterCombination(format!(
            "The source {} and the target {} cannot be the same network interface",
            s.network_interface_id, s.target_id
        )));
    }
    Ok(())
}

/// EC2's limit error once `have` objects reach the configured `max`;
/// `message` has one `{}` for the bound.
fn within(have: usize, max: usize, code: &'static str, message: &str) -> Result<(), Ec2Error> {
    if have >= max {
        return Err(Ec2Error::LimitExceeded(
            code,
            message.replace("{}", &max.to_string()),
        ));
    }
    Ok(())
}

/// A VNI as EC2 assigns one when none is given: at random, and used by no
/// other session (EC2's is unique in the account), so a collector can tell
/// sessions apart by it.
fn unused_vni(store: &MirrorStore) -> u32 {
    fresh_vni(store, || rand::random::<u32>() & 0x00ff_ffff)
}

/// The first of `draw`'s VNIs no session has. With a few hundred sessions
/// among 2^24 values a second draw is rare and a hundredth never happens;
/// the bound keeps a broken `draw` from spinning, and the scan after it
/// still finds a free one.
fn fresh_vni(store: &MirrorStore, mut draw: impl FnMut() -> u32) -> u32 {
    let taken = |v: u32| {
        store
            .state
            .sessions
            .values()
            .any(|s| s.virtual_network_id == v)
    };
    (0..100)
        .map(|_| draw())
        .chain(0..=0x00ff_ffff)
        .find(|&v| !taken(v))
        .unwrap_or_default()
}

/// Runs one operation; returns whether the store changed.
fn ops(
    action: &str,
    c: &Ctx<'_>,
    store: &mut MirrorStore,
    doc: &mut Xml,
) -> Result<bool, Ec2Error> {
    let p = c.p;
    match action {
        "CreateTrafficMirrorTarget" => {
            if p.get("NetworkLoadBalancerArn").is_some()
                || p.get("GatewayLoadBalancerEndpointId").is_some()
            {
                return Err(Ec2Error::InvalidParameterCombination(
                    "flowgate targets are network interfaces: give NetworkInterfaceId only".into(),
                ));
            }
            let eni = c.eni("NetworkInterfaceId")?;
            let t = Target {
                id: new_id("tmt"),
                network_interface_id: eni,
                description: description(p)?,
                tags: c.tags("traffic-mirror-target")?,
            };
            c.dry_run()?;
            within(
                store.state.targets.len(),
                c.limits.max_targets,
                "TrafficMirrorTargetLimitExceeded",
                "The maximum number of traffic mirror targets ({}) has been reached.",
            )?;
            let id = t.id.clone();
            store.created(&id);
            store.state.targets.insert(id.clone(), t);
            answer_created(action, &id, c, store, doc)?;
            Ok(true)
        }
        "DeleteTrafficMirrorTarget" => {
            let id = p.required("TrafficMirrorTargetId")?;
            if !store.state.targets.contains_key(id) {
                return Err(not_found("target", id));
            }
            if store.state.sessions.values().any(|s| s.target_id == id) {
                return Err(Ec2Error::DependencyViolation(format!(
                    "The traffic mirror target '{id}' is in use by a traffic mirror session."
                )));
            }
            c.dry_run()?;
            store.state.targets.remove(id);
            doc.leaf("trafficMirrorTargetId", id);
            Ok(true)
        }
        "CreateTrafficMirrorFilter" => {
            let f = Filter {
                id: new_id("tmf"),
                description: description(p)?,
                network_services: Vec::new(),
                tags: c.tags("traffic-mirror-filter")?,
            };
            c.dry_run()?;
            within(
                store.state.filters.len(),
                c.limits.max_filters,
                "TrafficMirrorFilterLimitExceeded",
                "The maximum number of traffic mirror filters ({}) has been reached.",
            )?;
            let id = f.id.clone();
            store.created(&id);
            store.state.filters.insert(id.clone(), f);
            answer_created(action, &id, c, store, doc)?;
            Ok(true)
        }
        "DeleteTrafficMirrorFilter" => {
            let id = p.required("TrafficMirrorFilterId")?;
            if !store.state.filters.contains_key(id) {
                return Err(not_found("filter", id));
            }
            if store.state.sessions.values().any(|s| s.filter_id == id) {
                return Err(Ec2Error::DependencyViolation(format!(
                    "The traffic mirror filter '{id}' is in use by a traffic mirror session."
                )));
            }
            c.dry_run()?;
            store.state.filters.remove(id);
            store.state.rules.retain(|_, r| r.filter_id != id);
            doc.leaf("trafficMirrorFilterId", id);
            Ok(true)
        }
        "ModifyTrafficMirrorFilterNetworkServices" => {
            let id = p.required("TrafficMirrorFilterId")?.to_string();
            if !store.state.filters.contains_key(&id) {
                return Err(not_found("filter", &id));
            }
            let add = p.list("AddNetworkService");
            let remove = p.list("RemoveNetworkService");
            for s in add.iter().chain(remove.iter()) {
                if s != "amazon-dns" {
                    return Err(Ec2Error::InvalidParameterValue(format!(
                        "Value ({s}) for parameter NetworkService is invalid. Expected amazon-dns."
                    )));
                }
            }
            c.dry_run()?;
            let f = store.state.filters.get_mut(&id).expect("checked above");
            for s in add {
                if !f.network_services.contains(&s) {
                    f.network_services.push(s);
                }
            }
            f.network_services.retain(|s| !remove.contains(s));
            let f = f.clone();
            doc.open("trafficMirrorFilter")
                .filter(&f, store)
                .close("trafficMirrorFilter");
            Ok(true)
        }
        "CreateTrafficMirrorFilterRule" => {
            let filter_id = p.required("TrafficMirrorFilterId")?.to_string();
            let ingress = direction(p.required("TrafficDirection")?)?;
            let rule_number = p
                .int_in("RuleNumber", 1, 32766)?
                .ok_or_else(|| Ec2Error::MissingParameter("RuleNumber".into()))?
                as u32;
            let accept = action_of(p.required("RuleAction")?)?;
            p.required("DestinationCidrBlock")?;
            p.required("SourceCidrBlock")?;
            let r = FilterRule {
                id: new_id("tmfr"),
                filter_id: filter_id.clone(),
                ingress,
                rule_number,
                accept,
                protocol: p.int_in("Protocol", 0, 255)?.map(|v| v as u8),
                destination_ports: ports(p, "DestinationPortRange")?,
                source_ports: ports(p, "SourcePortRange")?,
                destination_cidr: cidr(p, "DestinationCidrBlock")?.unwrap_or_default(),
                source_cidr: cidr(p, "SourceCidrBlock")?.unwrap_or_default(),
                description: description(p)?,
                tags: c.tags("traffic-mirror-filter-rule")?,
            };
            if !store.state.filters.contains_key(&filter_id) {
                return Err(not_found("filter", &filter_id));
            }
            check_rule(&r)?;
            rule_number_free(store, &r)?;
            c.dry_run()?;
            within(
                store.rules_of(&filter_id, ingress).len(),
                c.limits.max_rules_per_filter,
                "TrafficMirrorFilterRuleLimitExceeded",
                "A traffic mirror filter has at most {} rules per direction.",
            )?;
            let id = r.id.clone();
            store.created(&id);
            store.state.rules.insert(id.clone(), r);
            answer_created(action, &id, c, store, doc)?;
            Ok(true)
        }
        "ModifyTrafficMirrorFilterRule" => {
            let id = p.required("TrafficMirrorFilterRuleId")?.to_string();
            let mut r = store
                .state
                .rules
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found("rule", &id))?;
            if let Some(d) = p.get("TrafficDirection") {
                r.ingress = direction(d)?;
            }
            if let Some(n) = p.int_in("RuleNumber", 1, 32766)? {
                r.rule_number = n as u32;
            }
            if let Some(a) = p.get("RuleAction") {
                r.accept = action_of(a)?;
            }
            if let Some(v) = p.int_in("Protocol", 0, 255)? {
                r.protocol = Some(v as u8);
            }
            if let Some(v) = ports(p, "DestinationPortRange")? {
                r.destination_ports = Some(v);
            }
            if let Some(v) = ports(p, "SourcePortRange")? {
                r.source_ports = Some(v);
            }
            if let Some(v) = cidr(p, "DestinationCidrBlock")? {
                r.destination_cidr = v;
            }
            if let Some(v) = cidr(p, "SourceCidrBlock")? {
                r.source_cidr = v;
            }
            if let Some(v) = description(p)? {
                r.description = Some(v);
            }
            for field in p.list("RemoveField") {
                match field.as_str() {
                    "destination-port-range" => r.destination_ports = None,
                    "source-port-range" => r.source_ports = None,
                    "protocol" => r.protocol = None,
                    "description" => r.description = None,
                    f => {
                        return Err(Ec2Error::InvalidParameterValue(format!(
                            "Value ({f}) for parameter RemoveField is invalid."
                        )))
                    }
                }
            }
            check_rule(&r)?;
            rule_number_free(store, &r)?;
            c.dry_run()?;
            // Moving a rule to the other direction must respect that
            // direction's bound as a new rule would.
            if store
                .state
                .rules
                .get(&id)
                .is_some_and(|o| o.ingress != r.ingress)
            {
                within(
                    store.rules_of(&r.filter_id, r.ingress).len(),
                    c.limits.max_rules_per_filter,
                    "TrafficMirrorFilterRuleLimitExceeded",
                    "A traffic mirror filter has at most {} rules per direction.",
                )?;
            }
            doc.open("trafficMirrorFilterRule")
                .rule(&r)
                .close("trafficMirrorFilterRule");
            store.state.rules.insert(id, r);
            Ok(true)
        }
        "DeleteTrafficMirrorFilterRule" => {
            let id = p.required("TrafficMirrorFilterRuleId")?;
            if !store.state.rules.contains_key(id) {
                return Err(not_found("rule", id));
            }
            c.dry_run()?;
            store.state.rules.remove(id);
            doc.leaf("trafficMirrorFilterRuleId", id);
            Ok(true)
        }
        "CreateTrafficMirrorSession" => {
            let eni = c.eni("NetworkInterfaceId")?;
            let target_id = p.required("TrafficMirrorTargetId")?.to_string();
            let filter_id = p.required("TrafficMirrorFilterId")?.to_string();
            let number = p
                .int_in("SessionNumber", 1, 32766)?
                .ok_or_else(|| Ec2Error::MissingParameter("SessionNumber".into()))?;
            let s = Session {
                id: new_id("tms"),
                network_interface_id: eni,
                target_id: target_id.clone(),
                filter_id: filter_id.clone(),
                packet_length: p.int_in("PacketLength", 1, 8947)?.map(|v| v as u16),
                session_number: number as u16,
                virtual_network_id: p
                    .int_in("VirtualNetworkId", 0, 16_777_215)?
                    .map_or_else(|| unused_vni(store), |v| v as u32),
                description: description(p)?,
                tags: c.tags("traffic-mirror-session")?,
            };
            if !store.state.targets.contains_key(&target_id) {
                return Err(not_found("target", &target_id));
            }
            if !store.state.filters.contains_key(&filter_id) {
                return Err(not_found("filter", &filter_id));
            }
            not_own_target(store, &s)?;
            session_number_free(store, &s)?;
            c.dry_run()?;
            within(
                store.state.sessions.len(),
                c.limits.max_sessions,
                "TrafficMirrorSessionLimitExceeded",
                "The maximum number of traffic mirror sessions ({}) has been reached.",
            )?;
            let id = s.id.clone();
            store.created(&id);
            store.state.sessions.insert(id.clone(), s);
            answer_created(action, &id, c, store, doc)?;
            Ok(true)
        }
        "ModifyTrafficMirrorSession" => {
            let id = p.required("TrafficMirrorSessionId")?.to_string();
            let mut s = store
                .state
                .sessions
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found("session", &id))?;
            if let Some(t) = p.get("TrafficMirrorTargetId") {
                if !store.state.targets.contains_key(t) {
                    return Err(not_found("target", t));
                }
                s.target_id = t.to_string();
            }
            if let Some(f) = p.get("TrafficMirrorFilterId") {
                if !store.state.filters.contains_key(f) {
                    return Err(not_found("filter", f));
                }
                s.filter_id = f.to_string();
            }
            if let Some(v) = p.int_in("PacketLength", 1, 8947)? {
                s.packet_length = Some(v as u16);
            }
            if let Some(v) = p.int_in("SessionNumber", 1, 32766)? {
                s.session_number = v as u16;
            }
            if let Some(v) = p.int_in("VirtualNetworkId", 0, 16_777_215)? {
                s.virtual_network_id = v as u32;
            }
            if let Some(v) = description(p)? {
                s.description = Some(v);
            }
            for field in p.list("RemoveField") {
                match field.as_str() {
                    "packet-length" => s.packet_length = None,
                    "description" => s.description = None,
                    "virtual-network-id" => s.virtual_network_id = unused_vni(store),
                    f => {
                        return Err(Ec2Error::InvalidParameterValue(format!(
                            "Value ({f}) for parameter RemoveField is invalid."
                        )))
                    }
                }
            }
            not_own_target(store, &s)?;
            session_number_free(store, &s)?;
            c.dry_run()?;
            doc.open("trafficMirrorSession")
                .session(&s, c.owner)
                .close("trafficMirrorSession");
            store.state.sessions.insert(id, s);
            Ok(true)
        }
        "DeleteTrafficMirrorSession" => {
            let id = p.required("TrafficMirrorSessionId")?;
            if !store.state.sessions.contains_key(id) {
                return Err(not_found("session", id));
            }
            c.dry_run()?;
            store.state.sessions.remove(id);
            doc.leaf("trafficMirrorSessionId", id);
            Ok(true)
        }
        "DescribeTrafficMirrorTargets" => {
            let ids = p.list("TrafficMirrorTargetId");
            let all: Vec<&Target> = store.state.targets.values().collect();
            let chosen = describe(
                c,
                store,
                all,
                &ids,
                (
                    "target",
                    &[
                        "description",
                        "network-interface-id",
                        "network-load-balancer-arn",
                        "owner-id",
                        "traffic-mirror-target-id",
                    ],
                ),
                |t| &t.id,
                |t, name| match name {
                    "description" => Some(t.description.iter().cloned().collect()),
                    "network-interface-id" => Some(vec![t.network_interface_id.clone()]),
                    "network-load-balancer-arn" => Some(vec![]),
                    "owner-id" => Some(vec![c.owner.to_string()]),
                    "traffic-mirror-target-id" => Some(vec![t.id.clone()]),
                    _ => None,
                },
            )?;
            doc.open("trafficMirrorTargetSet");
            for t in chosen.items {
                doc.open("item").target(t, c.owner).close("item");
            }
            doc.close("trafficMirrorTargetSet")
                .opt("nextToken", chosen.next);
            Ok(false)
        }
        "DescribeTrafficMirrorFilters" => {
            let ids = p.list("TrafficMirrorFilterId");
            let all: Vec<&Filter> = store.state.filters.values().collect();
            let chosen = describe(
                c,
                store,
                all,
                &ids,
                ("filter", &["description", "traffic-mirror-filter-id"]),
                |f| &f.id,
                |f, name| match name {
                    "description" => Some(f.description.iter().cloned().collect()),
                    "traffic-mirror-filter-id" => Some(vec![f.id.clone()]),
                    _ => None,
                },
            )?;
            doc.open("trafficMirrorFilterSet");
            for f in chosen.items {
                doc.open("item").filter(f, store).close("item");
            }
            doc.close("trafficMirrorFilterSet")
                .opt("nextToken", chosen.next);
            Ok(false)
        }
        "DescribeTrafficMirrorFilterRules" => {
            let ids = p.list("TrafficMirrorFilterRuleId");
            let filter = p.get("TrafficMirrorFilterId");
            if let Some(f) = filter {
                if !store.state.filters.contains_key(f) {
                    return Err(not_found("filter", f));
                }
            }
            let all: Vec<&FilterRule> = store
                .state
                .rules
                .values()
                .filter(|r| filter.is_none_or(|f| r.filter_id == f))
                .collect();
            let chosen = describe(
                c,
                store,
                all,
                &ids,
                (
                    "rule",
                    &[
                        "description",
                        "destination-cidr-block",
                        "source-cidr-block",
                        "protocol",
                        "rule-action",
                        "rule-number",
                        "traffic-direction",
                        "traffic-mirror-filter-rule-id",
                        "traffic-mirror-filter-id",
                    ],
                ),
                |r| &r.id,
                |r, name| match name {
                    "description" => Some(r.description.iter().cloned().collect()),
                    "destination-cidr-block" => Some(vec![r.destination_cidr.clone()]),
                    "source-cidr-block" => Some(vec![r.source_cidr.clone()]),
                    "protocol" => Some(r.protocol.map(|p| p.to_string()).into_iter().collect()),
                    "rule-action" => Some(vec![if r.accept { "accept" } else { "reject" }.into()]),
                    "rule-number" => Some(vec![r.rule_number.to_string()]),
                    "traffic-direction" => {
                        Some(vec![if r.ingress { "ingress" } else { "egress" }.into()])
                    }
                    "traffic-mirror-filter-rule-id" => Some(vec![r.id.clone()]),
                    "traffic-mirror-filter-id" => Some(vec![r.filter_id.clone()]),
                    _ => None,
                },
            )?;
            doc.open("trafficMirrorFilterRuleSet");
            for r in chosen.items {
                doc.open("item").rule(r).close("item");
            }
            doc.close("trafficMirrorFilterRuleSet")
                .opt("nextToken", chosen.next);
            Ok(false)
        }
        "DescribeTrafficMirrorSessions" => {
            let ids = p.list("TrafficMirrorSessionId");
            let all: Vec<&Session> = store.state.sessions.values().collect();
            let chosen = describe(
                c,
                store,
                all,
                &ids,
                (
                    "session",
                    &[
                        "description",
                        "network-interface-id",
                        "owner-id",
                        "packet-length",
                        "session-number",
                        "traffic-mirror-filter-id",
                        "traffic-mirror-session-id",
                        "traffic-mirror-target-id",
                        "virtual-network-id",
                    ],
                ),
                |s| &s.id,
                |s, name| match name {
                    "description" => Some(s.description.iter().cloned().collect()),
                    "network-interface-id" => Some(vec![s.network_interface_id.clone()]),
                    "owner-id" => Some(vec![c.owner.to_string()]),
                    "packet-length" => {
                        Some(s.packet_length.map(|v| v.to_string()).into_iter().collect())
                    }
                    "session-number" => Some(vec![s.session_number.to_string()]),
                    "traffic-mirror-filter-id" => Some(vec![s.filter_id.clone()]),
                    "traffic-mirror-session-id" => Some(vec![s.id.clone()]),
                    "traffic-mirror-target-id" => Some(vec![s.target_id.clone()]),
                    "virtual-network-id" => Some(vec![s.virtual_network_id.to_string()]),
                    _ => None,
                },
            )?;
            doc.open("trafficMirrorSessionSet");
            for s in chosen.items {
                doc.open("item").session(s, c.owner).close("item");
            }
            doc.close("trafficMirrorSessionSet")
                .opt("nextToken", chosen.next);
            Ok(false)
        }
        _ => Err(Ec2Error::InvalidAction(action.to_string())),
    }
}

/// One page of a describe call.
struct Page<'a, T> {
    items: Vec<&'a T>,
    next: Option<String>,
}

/// The shared rules of every Describe call: ids (each must exist), filters
/// (names checked; AND across filters, OR within values; `*` and `?`
/// wildcards as EC2 allows), then MaxResults / NextToken in creation order.
fn describe<'a, T>(
    c: &Ctx<'_>,
    store: &MirrorStore,
    mut all: Vec<&'a T>,
    ids: &[String],
    (kind, names): (&'static str, &[&str]),
    id_of: impl Fn(&T) -> &String,
    field: impl Fn(&T, &str) -> Option<Vec<String>>,
) -> Result<Page<'a, T>, Ec2Error> {
    let p = c.p;
    let max = p.int_in("MaxResults", 5, 1000)?;
    if max.is_some() && !ids.is_empty() {
        return Err(Ec2Error::InvalidParameterCombination(
            "The parameter MaxResults cannot be used with the parameter ids".into(),
        ));
    }
    for id in ids {
        if !all.iter().any(|t| id_of(t) == id) {
            return Err(not_found(kind, id));
        }
    }
    let filters = p.filters();
    for (name, _) in &filters {
        if !names.contains(&name.as_str()) {
            return Err(Ec2Error::InvalidParameterValue(format!(
                "The filter '{name}' is invalid"
            )));
        }
    }
    // The token names the creation order of the last object listed, not
    // a position: objects deleted (or no longer matching) between pages
    // would otherwise shift the rest, and one would never be listed.
    let after = match p.get("NextToken") {
        None => 0,
        Some(tok) => tok
            .strip_prefix("fg2.")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or(Ec2Error::InvalidPaginationToken)?,
    };
    c.dry_run()?;
    all.retain(|t| ids.is_empty() || ids.contains(id_of(t)));
    all.retain(|t| {
        filters.iter().all(|(name, values)| {
            let have = field(t, name).unwrap_or_default();
            values
                .iter()
                .any(|want| have.iter().any(|h| wildcard(want, h)))
        })
    });
    all.retain(|t| store.seq(id_of(t)) > after);
    all.sort_by_key(|t| store.seq(id_of(t)));
    let max = max.map_or(usize::MAX, |m| (m as usize).max(1));
    let end = max.min(all.len());
    let next = (end < all.len()).then(|| format!("fg2.{}", store.seq(id_of(all[end - 1]))));
    all.truncate(end);
    Ok(Page { items: all, next })
}

/// EC2 filter values: `*` matches any run of characters, `?` one.
fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENIS: [&str; 3] = ["eni-a", "eni-b", "eni-c"];

    /// Runs one request body against `store` as `caller`, as `call` does
    /// short of saving: the answer document, or the error.
    fn run(store: &mut MirrorStore, body: &str, caller: &Caller) -> Result<String, Ec2Error> {
        let p = Params::parse(body.as_bytes());
        let action = p.get("Action").unwrap_or_default().to_string();
        let enis: Vec<MirrorPort> = ENIS
            .iter()
            .map(|e| MirrorPort {
                eni: e.to_string(),
                mac: [2; 6],
                mtu: 1500,
            })
            .collect();
        let limits = crate::config::MirrorSection {
            max_sessions: 2,
            ..Default::default()
        };
        let ctx = Ctx {
            p: &p,
            caller,
            owner: "111122223333",
            enis: &enis,
            limits: &limits,
        };
        let mut doc = Xml::response(&action, "req-1");
        apply(&action, &ctx, store, &mut doc).map(|_| doc.finish(&action))
    }

    /// The text of the first `<name>` element (enough for these documents).
    fn first(doc: &str, name: &str) -> String {
        let open = format!("<{name}>");
        let start = doc.find(&open).expect(name) + open.len();
        doc[start..start + doc[start..].find('<').unwrap()].to_string()
    }

    /// Every answer must be well-formed XML.
    fn well_formed(doc: &str) {
        let mut r = quick_xml::Reader::from_str(doc);
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}: {doc}"),
            }
        }
    }

    #[test]
    fn a_change_that_cannot_be_saved_is_an_internal_error_and_changes_nothing() {
        let config = crate::config::parse(
            "[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\ninterface_id = \"eni-a\"\n",
        )
        .unwrap();
        let state = Arc::new(ApiState::new(Arc::new(config)));
        // Its directory cannot be made, even by root.
        *state.mirror() =
            MirrorStore::open(std::path::Path::new("/proc/flowgate-none/mirror.json")).unwrap();
        let before = state.mirror().state.clone();
        let me = Caller::Authenticated("test".into());
        let p = Params::parse(b"Action=CreateTrafficMirrorFilter&Description=d");
        let e = call("CreateTrafficMirrorFilter", &p, &me, &state, "rid").unwrap_err();
        assert_eq!(e.code(), "InternalError");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(state.mirror().state, before, "nothing changed");
    }

    #[test]
    fn a_create_retried_with_its_client_token_answers_with_the_first_object() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        let create = "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-b&Description=d&ClientToken=tok-1";
        let first_answer = run(&mut st, create, &me).unwrap();
        let again = run(&mut st, create, &me).unwrap();
        let id = first(&first_answer, "trafficMirrorTargetId");
        assert_eq!(first(&again, "trafficMirrorTargetId"), id);
        assert_eq!(first(&again, "clientToken"), "tok-1");
        well_formed(&again);
        assert_eq!(st.state.targets.len(), 1, "the retry made nothing");
        // The same token for other parameters, or for another action.
        let other = "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-b&Description=e&ClientToken=tok-1";
        assert_eq!(
            run(&mut st, other, &me).unwrap_err().code(),
            "IdempotentParameterMismatch"
        );
        let filter = "Action=CreateTrafficMirrorFilter&ClientToken=tok-1";
        assert_eq!(
            run(&mut st, filter, &me).unwrap_err().code(),
            "IdempotentParameterMismatch"
        );
        // Another token makes another target; a deleted one's token is spent.
        let second = create.replace("tok-1", "tok-2");
        assert_ne!(
            first(
                &run(&mut st, &second, &me).unwrap(),
                "trafficMirrorTargetId"
            ),
            id
        );
        run(
            &mut st,
            &format!("Action=DeleteTrafficMirrorTarget&TrafficMirrorTargetId={id}"),
            &me,
        )
        .unwrap();
        let e = run(&mut st, create, &me).unwrap_err();
        assert_eq!(e.code(), "IdempotentParameterMismatch");
        assert!(e.to_string().contains("already deleted"), "{e}");
        // Tokens are kept, so they are bounded as EC2 bounds them.
        let long = create.replace("tok-1", &"t".repeat(65));
        assert_eq!(
            run(&mut st, &long, &me).unwrap_err().code(),
            "InvalidParameterValue"
        );
        assert!(run(&mut st, &create.replace("tok-1", &"t".repeat(64)), &me).is_ok());
        // Only the latest tokens are kept.
        for i in 0..crate::mirror_store::MAX_CLIENT_TOKENS + 5 {
            st.remember_token(
                &format!("t{i}"),
                "CreateTrafficMirrorFilter",
                String::new(),
                format!("x{i}"),
            );
        }
        assert_eq!(
            st.state.client_tokens.len(),
            crate::mirror_store::MAX_CLIENT_TOKENS
        );
    }

    #[test]
    fn the_lifecycle_through_the_operations() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        let ok = |st: &mut MirrorStore, body: &str| {
            let d = run(st, body, &me).unwrap_or_else(|e| panic!("{body}: {e:?}"));
            well_formed(&d);
            d
        };
        let d = ok(
            &mut st,
            "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-b&Description=a%3Cb\
             &TagSpecification.1.ResourceType=traffic-mirror-target&TagSpecification.1.Tag.1.Key=k\
             &TagSpecification.1.Tag.1.Value=v",
        );
        assert!(d.contains("xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""));
        assert!(d.contains("<requestId>req-1</requestId>"));
        assert!(d.contains("<description>a&lt;b</description>"));
        assert!(d.contains("<tagSet><item><key>k</key><value>v</value></item></tagSet>"));
        assert!(d.contains("<ownerId>111122223333</ownerId>"));
        let t = first(&d, "trafficMirrorTargetId");
        assert!(t.starts_with("tmt-") && t.len() == 21);
        let f = first(
            &ok(&mut st, "Action=CreateTrafficMirrorFilter"),
            "trafficMirrorFilterId",
        );
        // Rules listed by rule number whatever the creation order.
        for n in [20, 10] {
            ok(
                &mut st,
                &format!(
                    "Action=CreateTrafficMirrorFilterRule&TrafficMirrorFilterId={f}\
                     &TrafficDirection=ingress&RuleNumber={n}&RuleAction=accept&Protocol=17\
                     &DestinationPortRange.FromPort=53&DestinationPortRange.ToPort=53\
                     &DestinationCidrBlock=0.0.0.0/0&SourceCidrBlock=10.1.2.3/8"
                ),
            );
        }
        let d = ok(
            &mut st,
            &format!("Action=DescribeTrafficMirrorFilters&TrafficMirrorFilterId.1={f}"),
        );
        let (a, b) = (
            d.find("<ruleNumber>10<").unwrap(),
            d.find("<ruleNumber>20<").unwrap(),
        );
        assert!(a < b, "{d}");
        assert!(d.contains("<sourceCidrBlock>10.0.0.0/8</sourceCidrBlock>"));
        assert!(d.contains("<egressFilterRuleSet></egressFilterRuleSet>"));
        let s = first(
            &ok(
                &mut st,
                &format!(
                    "Action=CreateTrafficMirrorSession&NetworkInterfaceId=eni-a\
                     &TrafficMirrorTargetId={t}&TrafficMirrorFilterId={f}&SessionNumber=3\
                     &VirtualNetworkId=99&PacketLength=64"
                ),
            ),
            "trafficMirrorSessionId",
        );
        // In use: neither the target nor the filter can go.
        for body in [
            format!("Action=DeleteTrafficMirrorTarget&TrafficMirrorTargetId={t}"),
            format!("Action=DeleteTrafficMirrorFilter&TrafficMirrorFilterId={f}"),
        ] {
            assert_eq!(
                run(&mut st, &body, &me).unwrap_err().code(),
                "DependencyViolation"
            );
        }
        let d = ok(
            &mut st,
            &format!(
                "Action=ModifyTrafficMirrorSession&TrafficMirrorSessionId={s}\
                 &RemoveField.1=packet-length&SessionNumber=4"
            ),
        );
        assert!(!d.contains("<packetLength>") && d.contains("<sessionNumber>4<"));
        ok(
            &mut st,
            &format!("Action=DeleteTrafficMirrorSession&TrafficMirrorSessionId={s}"),
        );
        ok(
            &mut st,
            &format!("Action=DeleteTrafficMirrorFilter&TrafficMirrorFilterId={f}"),
        );
        ok(
            &mut st,
            &format!("Action=DeleteTrafficMirrorTarget&TrafficMirrorTargetId={t}"),
        );
        assert!(st.state.rules.is_empty() && st.state.targets.is_empty());
    }

    #[test]
    fn errors_dry_run_and_bounds() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        let err =
            |st: &mut MirrorStore, body: &str, who: &Caller| run(st, body, who).unwrap_err().code();
        // DryRun comes after validation, and depends on who asks.
        let dry = "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-b&DryRun=true";
        assert_eq!(err(&mut st, dry, &me), "DryRunOperation");
        assert_eq!(
            err(&mut st, dry, &Caller::Anonymous),
            "UnauthorizedOperation"
        );
        assert!(st.state.targets.is_empty());
        let bad_eni = "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-zz&DryRun=true";
        assert_eq!(
            err(&mut st, bad_eni, &me),
            "InvalidNetworkInterfaceId.NotFound"
        );
        assert_eq!(
            err(&mut st, "Action=CreateTrafficMirrorTarget", &me),
            "MissingParameter"
        );
        let t = run(
            &mut st,
            "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-c",
            &me,
        )
        .unwrap();
        let t = first(&t, "trafficMirrorTargetId");
        let f = run(&mut st, "Action=CreateTrafficMirrorFilter", &me).unwrap();
        let f = first(&f, "trafficMirrorFilterId");
        let session = |eni: &str, n: u32| {
            format!(
                "Action=CreateTrafficMirrorSession&NetworkInterfaceId={eni}\
                 &TrafficMirrorTargetId={t}&TrafficMirrorFilterId={f}&SessionNumber={n}"
            )
        };
        assert_eq!(
            err(&mut st, &session("eni-c", 1), &me),
            "InvalidParameterCombination"
        );
        assert_eq!(
            err(&mut st, &session("eni-a", 0), &me),
            "InvalidParameterValue"
        );
        run(&mut st, &session("eni-a", 1), &me).unwrap();
        assert_eq!(
            err(&mut st, &session("eni-a", 1), &me),
            "InvalidParameterValue"
        );
        run(&mut st, &session("eni-b", 1), &me).unwrap();
        assert_eq!(
            err(&mut st, &session("eni-a", 2), &me),
            "TrafficMirrorSessionLimitExceeded"
        );
        for (body, code) in [
            (
                "Action=DeleteTrafficMirrorSession&TrafficMirrorSessionId=tms-1",
                "InvalidTrafficMirrorSessionId.NotFound",
            ),
            (
                "Action=DeleteTrafficMirrorFilterRule&TrafficMirrorFilterRuleId=tmfr-1",
                "InvalidTrafficMirrorFilterRuleId.NotFound",
            ),
            (
                "Action=DescribeTrafficMirrorTargets&TrafficMirrorTargetId.1=tmt-1",
                "InvalidTrafficMirrorTargetId.NotFound",
            ),
            (
                "Action=DescribeTrafficMirrorSessions&MaxResults=4",
                "InvalidParameterValue",
            ),
            (
                "Action=DescribeTrafficMirrorSessions&NextToken=x",
                "InvalidPaginationToken",
            ),
            (
                "Action=DescribeTrafficMirrorSessions&Filter.1.Name=bogus&Filter.1.Value.1=1",
                "InvalidParameterValue",
            ),
            (
                "Action=DescribeTrafficMirrorSessions&DryRun=true",
                "DryRunOperation",
            ),
        ] {
            assert_eq!(err(&mut st, body, &me), code, "{body}");
        }
    }

    #[test]
    fn a_description_is_bounded_in_characters_not_bytes() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        // λ is two bytes in UTF-8, 字 three: 255 of either is over 255 bytes.
        for (ch, encoded) in [('λ', "%CE%BB"), ('字', "%E5%AD%97")] {
            let body = |n: usize| {
                format!(
                    "Action=CreateTrafficMirrorFilter&Description={}",
                    encoded.repeat(n)
                )
            };
            let d = run(&mut st, &body(255), &me).unwrap();
            well_formed(&d);
            assert_eq!(first(&d, "description"), ch.to_string().repeat(255));
            let e = run(&mut st, &body(256), &me).unwrap_err();
            assert_eq!(e.code(), "InvalidParameterValue");
            assert_eq!(e.to_string(), "Description must be at most 255 characters");
        }
        assert_eq!(st.state.filters.len(), 2, "only the 255-character ones");
    }

    #[test]
    fn values_xml_cannot_carry_are_refused_and_nothing_is_kept() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        let tag = |k: &str, v: &str| {
            format!(
                "&TagSpecification.1.ResourceType=traffic-mirror-filter\
                 &TagSpecification.1.Tag.1.Key={k}&TagSpecification.1.Tag.1.Value={v}"
            )
        };
        let filter = "Action=CreateTrafficMirrorFilter";
        for bad in ["%01", "%1F", "%00", "%EF%BF%BE", "%EF%BF%BF"] {
            for (body, name) in [
                (format!("{filter}&Description=a{bad}b"), "Description"),
                (
                    format!("{filter}{}", tag(&format!("k{bad}"), "v")),
                    "Tag.Key",
                ),
                (
                    format!("{filter}{}", tag("k", &format!("v{bad}"))),
                    "Tag.Value",
                ),
                (format!("{filter}&ClientToken=t{bad}"), "ClientToken"),
            ] {
                let e = run(&mut st, &body, &me).unwrap_err();
                assert_eq!(e.code(), "InvalidParameterValue", "{body}");
                assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                // A non-ASCII token is refused as such before.
                let ascii = !bad.starts_with("%E");
                assert!(
                    (name == "ClientToken" && !ascii)
                        || e.to_string()
                            .starts_with(&format!("Value for parameter {name} is invalid.")),
                    "{e}"
                );
            }
        }
        assert!(st.state.filters.is_empty() && st.state.client_tokens.is_empty());
        // Tab, LF and CR are XML characters: kept, and CR written so that
        // it reads back as CR.
        let d = run(&mut st, &format!("{filter}&Description=a%09b%0Ac%0Dd"), &me).unwrap();
        well_formed(&d);
        assert!(
            d.contains("<description>a\tb\nc&#13;d</description>"),
            "{d}"
        );
        // Every operation that takes a Description checks it.
        let f = first(&d, "trafficMirrorFilterId");
        let t = first(
            &run(
                &mut st,
                "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-c",
                &me,
            )
            .unwrap(),
            "trafficMirrorTargetId",
        );
        let r = first(
            &run(
                &mut st,
                &format!(
                    "Action=CreateTrafficMirrorFilterRule&TrafficMirrorFilterId={f}\
                     &TrafficDirection=ingress&RuleNumber=1&RuleAction=accept\
                     &DestinationCidrBlock=0.0.0.0/0&SourceCidrBlock=0.0.0.0/0"
                ),
                &me,
            )
            .unwrap(),
            "trafficMirrorFilterRuleId",
        );
        let s = first(
            &run(
                &mut st,
                &format!(
                    "Action=CreateTrafficMirrorSession&NetworkInterfaceId=eni-a\
                     &TrafficMirrorTargetId={t}&TrafficMirrorFilterId={f}&SessionNumber=1"
                ),
                &me,
            )
            .unwrap(),
            "trafficMirrorSessionId",
        );
        let before = st.state.clone();
        for body in [
            "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-b".to_string(),
            format!(
                "Action=CreateTrafficMirrorFilterRule&TrafficMirrorFilterId={f}\
                 &TrafficDirection=egress&RuleNumber=1&RuleAction=accept\
                 &DestinationCidrBlock=0.0.0.0/0&SourceCidrBlock=0.0.0.0/0"
            ),
            format!("Action=ModifyTrafficMirrorFilterRule&TrafficMirrorFilterRuleId={r}"),
            format!("Action=ModifyTrafficMirrorSession&TrafficMirrorSessionId={s}"),
        ] {
            let e = run(&mut st, &format!("{body}&Description=%07"), &me).unwrap_err();
            assert_eq!(e.code(), "InvalidParameterValue", "{body}");
        }
        assert_eq!(st.state, before, "nothing changed");
    }

    #[test]
    fn describe_pages_in_creation_order_with_filters() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        let ids: Vec<String> = (0..12)
            .map(|i| {
                let d = run(
                    &mut st,
                    &format!("Action=CreateTrafficMirrorFilter&Description=d{}", i % 2),
                    &me,
                )
                .unwrap();
                first(&d, "trafficMirrorFilterId")
            })
            .collect();
        let page = |token: &str| {
            let d = run(
                &mut st.snapshot(),
                &format!(
                    "Action=DescribeTrafficMirrorFilters&MaxResults=5{token}\
                     &Filter.1.Name=description&Filter.1.Value.1=d0&Filter.1.Value.2=nothing"
                ),
                &me,
            )
            .unwrap();
            well_formed(&d);
            d
        };
        let one = page("");
        assert!(one.contains("<nextToken>"));
        let two = page(&format!("&NextToken={}", first(&one, "nextToken")));
        assert!(!two.contains("<nextToken>"));
        let seen: Vec<&String> = ids
            .iter()
            .filter(|id| one.contains(id.as_str()) || two.contains(id.as_str()))
            .collect();
        // d0 = the six even ones: five on the first page, one on the second,
        // in creation order, and nothing else.
        assert_eq!(one.matches("<trafficMirrorFilterId>").count(), 5);
        assert_eq!(seen, ids.iter().step_by(2).collect::<Vec<_>>());
        assert!(one.find(ids[0].as_str()) < one.find(ids[8].as_str()));
        assert!(two.contains(ids[10].as_str()));
    }

    #[test]
    fn a_description_filter_lists_no_object_without_one() {
        let me = Caller::Authenticated("test".into());
        let mut st = MirrorStore::in_memory();
        let mut made = |body: &str, id: &str| first(&run(&mut st, body, &me).unwrap(), id);
        let with = made(
            "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-b&Description=collector",
            "trafficMirrorTargetId",
        );
        let without = made(
            "Action=CreateTrafficMirrorTarget&NetworkInterfaceId=eni-c",
            "trafficMirrorTargetId",
        );
        let f = made("Action=CreateTrafficMirrorFilter", "trafficMirrorFilterId");
        let s = made(
            &format!(
                "Action=CreateTrafficMirrorSession&NetworkInterfaceId=eni-a\
                 &TrafficMirrorTargetId={with}&TrafficMirrorFilterId={f}&SessionNumber=1"
            ),
            "trafficMirrorSessionId",
        );
        let describe = |st: &mut MirrorStore, action: &str, value: &str| {
            run(
                st,
                &format!("Action={action}&Filter.1.Name=description&Filter.1.Value.1={value}"),
                &me,
            )
            .unwrap()
        };
        let d = describe(&mut st, "DescribeTrafficMirrorTargets", "*");
        assert!(d.contains(&with) && !d.contains(&without), "{d}");
        // Nor does the empty value pick out the ones without.
        let d = describe(&mut st, "DescribeTrafficMirrorTargets", "");
        assert!(!d.contains(&without), "{d}");
        for action in [
            "DescribeTrafficMirrorFilters",
            "DescribeTrafficMirrorSessions",
        ] {
            let d = describe(&mut st, action, "*");
            assert!(!d.contains(&f) && !d.contains(&s), "{action}: {d}");
        }
    }

    #[test]
    fn a_default_vni_is_one_no_other_session_has() {
        let mut st = MirrorStore::in_memory();
        for (id, vni) in [("tms-1", 0), ("tms-2", 5), ("tms-3", 6)] {
            st.state.sessions.insert(
                id.into(),
                Session {
                    id: id.into(),
                    network_interface_id: "eni-a".into(),
                    target_id: "tmt-1".into(),
                    filter_id: "tmf-1".into(),
                    packet_length: None,
                    session_number: vni as u16 + 1,
                    virtual_network_id: vni,
                    description: None,
                    tags: vec![],
                },
            );
        }
        let mut draws = [5, 6, 5, 9, 10].into_iter();
        assert_eq!(fresh_vni(&st, || draws.next().unwrap()), 9);
        // A draw that only ever repeats one in use still ends, on a free one.
        assert_eq!(fresh_vni(&st, || 6), 1);
        let v = unused_vni(&st);
        assert!(v <= 0x00ff_ffff && ![0, 5, 6].contains(&v));
    }

    #[test]
    fn wildcards_match_as_ec2_filters_do() {
        assert!(wildcard("tms-*", "tms-0123"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "abbc"));
        assert!(wildcard("*", ""));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exactly"));
    }
}
