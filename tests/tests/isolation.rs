//! Tenant and affiliate isolation, driven from the schema.
//!
//! The schema is read by introspection and an operation is generated for EVERY field of
//! `Query` and `Mutation` (bar the explicit exemptions below): arguments are filled from their
//! types, IDs with another tenant's (or another affiliate's) rows, and the selection set is
//! built from the return type. Each operation runs as the attacker and must neither reveal a
//! secret string of the victim nor tell "not yours" apart from "does not exist".
//!
//! When the generator meets a field, argument or type it cannot fill, the test fails and says
//! what to teach it: a field added later is covered, or the test stops passing.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use clickledger_e2e::ws::{GqlWs, WsProtocol};
use clickledger_e2e::{AFFILIATE_FIELDS, CAMPAIGN_FIELDS, LINK_FIELDS, PASSWORD, TestApp, spawn_app};
use serde_json::{Value, json};

/// Root fields that are not probed, each with the reason. Keep this list minimal: anything
/// here is not checked for isolation at all.
const EXEMPT: &[(&str, &str, &str)] = &[
    ("Mutation", "signUp", "unauthenticated entry point: creates a new tenant, reads no existing row"),
    ("Mutation", "login", "unauthenticated entry point: takes credentials, not IDs, and is throttled"),
    (
        "Mutation",
        "requestPasswordReset",
        "unauthenticated entry point: answers `true` for every input (no account oracle), throttled",
    ),
    ("Mutation", "setPassword", "unauthenticated entry point: acts only on the secret token it is given"),
    (
        "Subscription",
        "statsLive",
        "a live report, not an event feed (its rows carry no transaction ID for `watch` to wait on): \
         probed by `stats_live_is_tenant_and_affiliate_scoped` below",
    ),
];

/// How deep selection sets go below a root field (1 = the root field's own type): enough for
/// connection → edges → node, and for payload → object.
const SELECTION_LEVELS: usize = 3;
/// Page size asked of every connection; keeps each operation under the complexity limit.
const PAGE: i64 = 20;

const INTROSPECTION: &str = r#"
query IsolationIntrospection {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types {
      kind
      name
      fields(includeDeprecated: true) { name args { name type { ...TypeRef } } type { ...TypeRef } }
      inputFields { name type { ...TypeRef } }
      enumValues(includeDeprecated: true) { name }
    }
  }
}
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
}
"#;

// ---------------------------------------------------------------------------------------------
// The schema, as introspection describes it.

#[derive(Debug, Clone)]
enum Ty {
    NonNull(Box<Ty>),
    List(Box<Ty>),
    Named(String),
}

impl Ty {
    fn parse(value: &Value) -> Ty {
        match value["kind"].as_str() {
            Some("NON_NULL") => Ty::NonNull(Box::new(Ty::parse(&value["ofType"]))),
            Some("LIST") => Ty::List(Box::new(Ty::parse(&value["ofType"]))),
            _ => {
                Ty::Named(value["name"].as_str().unwrap_or_else(|| panic!("unnamed type {value}")).to_owned())
            }
        }
    }

    fn named(&self) -> &str {
        match self {
            Ty::NonNull(inner) | Ty::List(inner) => inner.named(),
            Ty::Named(name) => name,
        }
    }

    fn required(&self) -> bool {
        matches!(self, Ty::NonNull(_))
    }
}

#[derive(Debug, Clone)]
struct InputValue {
    name: String,
    ty: Ty,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    args: Vec<InputValue>,
    ty: Ty,
}

#[derive(Debug)]
struct TypeDef {
    kind: String,
    fields: Vec<Field>,
    input_fields: Vec<InputValue>,
    enum_values: Vec<String>,
}

struct Schema {
    types: HashMap<String, TypeDef>,
    query: String,
    mutation: Option<String>,
    subscription: Option<String>,
}

impl Schema {
    fn from_introspection(answer: &Value) -> Schema {
        let schema = &answer["data"]["__schema"];
        assert!(schema.is_object(), "introspection failed: {answer}");
        let input_values = |list: &Value| -> Vec<InputValue> {
            list.as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|v| InputValue {
                            name: v["name"].as_str().unwrap().to_owned(),
                            ty: Ty::parse(&v["type"]),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut types = HashMap::new();
        for t in schema["types"].as_array().unwrap() {
            let fields = t["fields"]
                .as_array()
                .map(|fields| {
                    fields
                        .iter()
                        .map(|f| Field {
                            name: f["name"].as_str().unwrap().to_owned(),
                            args: input_values(&f["args"]),
                            ty: Ty::parse(&f["type"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let enum_values = t["enumValues"]
                .as_array()
                .map(|values| values.iter().map(|v| v["name"].as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            types.insert(
                t["name"].as_str().unwrap().to_owned(),
                TypeDef {
                    kind: t["kind"].as_str().unwrap().to_owned(),
                    fields,
                    input_fields: input_values(&t["inputFields"]),
                    enum_values,
                },
            );
        }
        let name = |v: &Value| v["name"].as_str().map(str::to_owned);
        Schema {
            types,
            query: name(&schema["queryType"]).expect("a query type"),
            mutation: name(&schema["mutationType"]),
            subscription: name(&schema["subscriptionType"]),
        }
    }

    fn kind(&self, name: &str) -> &str {
        self.types.get(name).map(|t| t.kind.as_str()).unwrap_or("MISSING")
    }

    /// (root type name, GraphQL operation keyword, field) for every root field.
    fn root_fields(&self) -> Vec<(String, &'static str, Field)> {
        let mut roots = vec![(self.query.clone(), "query")];
        roots.extend(self.mutation.clone().map(|m| (m, "mutation")));
        roots.extend(self.subscription.clone().map(|s| (s, "subscription")));
        roots
            .into_iter()
            .flat_map(|(root, keyword)| {
                self.types[&root]
                    .fields
                    .iter()
                    .map(move |f| (root.clone(), keyword, f.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// What IDs name.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Entity {
    Affiliate,
    Campaign,
    TrackingLink,
    ApiKey,
    Conversion,
    User,
    Plan,
    LedgerEntry,
    Statement,
    Endpoint,
    Delivery,
    AuditEntry,
    ImportJob,
}

/// Entities by the (lower-case) word that names them in field, argument and type names.
const ENTITIES: &[(Entity, &str)] = &[
    (Entity::Affiliate, "affiliate"),
    (Entity::Campaign, "campaign"),
    (Entity::TrackingLink, "trackinglink"),
    (Entity::ApiKey, "apikey"),
    (Entity::Conversion, "conversion"),
    (Entity::User, "user"),
    (Entity::Plan, "commissionplan"),
    (Entity::LedgerEntry, "commissionentry"),
    (Entity::Statement, "statement"),
    (Entity::Endpoint, "postbackendpoint"),
    (Entity::Delivery, "postbackdelivery"),
    (Entity::AuditEntry, "auditentry"),
    (Entity::ImportJob, "importjob"),
];

/// Argument names ending in `Id` whose prefix is not an entity's name.
const ID_ALIASES: &[(&str, Entity)] = &[
    ("parentId", Entity::Affiliate),
    ("planId", Entity::Plan),
    ("endpointId", Entity::Endpoint),
    ("deliveryId", Entity::Delivery),
];

/// Optional input fields without which no valid value exists (a plan must pay for something).
const REQUIRED_IN_PRACTICE: &[(&str, &str)] = &[
    ("CommissionRulesInput", "cpl"),
    ("CreatePostbackEndpointInput", "affiliateId"),
    ("StatsInput", "from"),
    ("StatsInput", "to"),
];

/// Input fields never generated: the other form of an either-or (`stats` takes `from` and
/// `to`, or `period`; both forms read the same scope, only the window differs).
const LEFT_OUT: &[(&str, &str)] = &[("StatsInput", "period")];

/// ID arguments whose field names no entity, by (field, argument).
const FIELD_ID_ALIASES: &[(&str, &str, Entity)] = &[
    ("setCommissionStatus", "ids", Entity::LedgerEntry),
    ("rotatePostbackSecret", "id", Entity::Endpoint),
    ("inviteAffiliate", "id", Entity::Affiliate),
];

/// The entity a field is about, from its name: `updateAffiliate`, `setCampaignStatus`,
/// `revokeApiKey`, `trackingLinks`.
fn entity_in_field_name(field: &str) -> Result<Entity, String> {
    let lower = field.to_lowercase();
    let found: Vec<Entity> =
        ENTITIES.iter().filter(|(_, word)| lower.contains(word)).map(|(e, _)| *e).collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("cannot tell which entity `{field}` is about (no entity name in it)")),
        _ => Err(format!("cannot tell which entity `{field}` is about (it names several: {found:?})")),
    }
}

/// The entity an ID argument or input field names.
fn entity_of_id(name: &str, owner_field: &str) -> Result<Entity, String> {
    if let Some((_, _, entity)) = FIELD_ID_ALIASES.iter().find(|(f, a, _)| *f == owner_field && *a == name) {
        return Ok(*entity);
    }
    if name == "id" {
        return entity_in_field_name(owner_field);
    }
    if let Some((_, entity)) = ID_ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Ok(*entity);
    }
    let prefix = name.strip_suffix("Id").ok_or_else(|| format!("ID `{name}` is neither `id` nor `…Id`"))?;
    ENTITIES
        .iter()
        .find(|(_, word)| *word == prefix.to_lowercase())
        .map(|(e, _)| *e)
        .ok_or_else(|| format!("ID `{name}`: `{prefix}` is not a known entity"))
}

/// Connections whose node names no entity, by node type: the entity their cursors name.
const CONNECTION_ALIASES: &[(&str, Entity)] = &[("FraudReviewItem", Entity::Conversion)];

/// The entity a connection type lists: `AffiliateConnection` → affiliate.
fn entity_of_connection(type_name: &str) -> Option<Entity> {
    let node = type_name.strip_suffix("Connection")?;
    if let Some((_, entity)) = CONNECTION_ALIASES.iter().find(|(alias, _)| *alias == node) {
        return Some(*entity);
    }
    let node = node.to_lowercase();
    ENTITIES.iter().find(|(_, word)| *word == node).map(|(e, _)| *e)
}

// ---------------------------------------------------------------------------------------------
// Operation generator.

/// Where an ID slot's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    /// A row of the victim.
    Victim,
    /// A row the attacker may legitimately use.
    Own,
    /// An ID of the right kind that names no row at all.
    Missing,
}

struct Book {
    victims: BTreeMap<Entity, Vec<String>>,
    own: BTreeMap<Entity, String>,
    /// A closed month (`YYYY-MM`) in which the victim has statements.
    period: String,
}

impl Book {
    fn id(&self, entity: Entity, pick: Pick, slot: usize, round: usize) -> String {
        let victims =
            self.victims.get(&entity).unwrap_or_else(|| panic!("no victim {entity:?} in the fixture"));
        match pick {
            Pick::Victim => victims[(slot + round) % victims.len()].clone(),
            Pick::Own => self.own[&entity].clone(),
            Pick::Missing => {
                let prefix = victims[0].split('_').next().unwrap();
                format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
            }
        }
    }
}

struct Generator<'a> {
    schema: &'a Schema,
    book: &'a Book,
    include_optional: bool,
    /// Slot i takes `picks[i]` (Victim past the end).
    picks: Vec<Pick>,
    round: usize,
    /// The entity of each ID slot, in order of appearance.
    slots: Vec<Entity>,
    problems: Vec<String>,
    counter: &'a mut u32,
}

impl Generator<'_> {
    fn unique(&mut self) -> u32 {
        *self.counter += 1;
        *self.counter
    }

    fn id_slot(&mut self, entity: Entity) -> String {
        let slot = self.slots.len();
        self.slots.push(entity);
        let pick = self.picks.get(slot).copied().unwrap_or(Pick::Victim);
        format!("{:?}", self.book.id(entity, pick, slot, self.round))
    }

    fn teach(&mut self, at: &str, what: String) {
        self.problems.push(format!(
            "{at}: {what}. Teach the isolation generator (tests/tests/isolation.rs) how to fill it, \
             scoped to the victim's rows where it names one."
        ));
    }

    /// A GraphQL literal for an argument or input field called `name`, at `at` (for messages).
    /// `owner` is the field the argument belongs to; `connection` the entity it lists, if any.
    fn literal(&mut self, ty: &Ty, name: &str, owner: &str, connection: Option<Entity>, at: &str) -> String {
        match ty {
            Ty::NonNull(inner) => self.literal(inner, name, owner, connection, at),
            Ty::List(inner) => format!("[{}]", self.literal(inner, name, owner, connection, at)),
            Ty::Named(type_name) => match (self.schema.kind(type_name), type_name.as_str()) {
                ("SCALAR", "ID") => match entity_of_id(name, owner) {
                    Ok(entity) => self.id_slot(entity),
                    Err(why) => {
                        self.teach(at, why);
                        "\"?\"".into()
                    }
                },
                ("SCALAR", "String") => match name {
                    // A cursor is an ID of the listed entity.
                    "after" | "before" => match connection {
                        Some(entity) => self.id_slot(entity),
                        None => {
                            self.teach(
                                at,
                                format!("cursor `{name}` on a field that is not a known connection"),
                            );
                            "\"?\"".into()
                        }
                    },
                    // A custom dialect's renames: a sent name read as one of ours.
                    "from" if at.contains(".customDialect.parameters") => "\"probe_cid\"".into(),
                    "to" if at.contains(".customDialect.parameters") => "\"click_id\"".into(),
                    // A live feed's resume cursor: "c0" replays the caller's feed from the start.
                    "since" => "\"c0\"".into(),
                    "period" => format!("{:?}", self.book.period),
                    // Every plan in the fixture is in USD.
                    "currency" | "from" => "\"USD\"".into(),
                    "to" => "\"EUR\"".into(),
                    "reason" => format!("\"probe reason {}\"", self.unique()),
                    // A review decision's note: free text kept with the decision.
                    "note" => format!("\"probe note {}\"", self.unique()),
                    "country" => "\"DE\"".into(),
                    "timeZone" => "\"Europe/Malta\"".into(),
                    "group" => "\"FX_MAJORS\"".into(),
                    "instrument" => "\"EURUSD\"".into(),
                    // `stats`: group by and filter on affiliates, whose IDs are the victim's rows.
                    "groupBy" | "dimension" => "\"AFFILIATE\"".into(),
                    "values" => self.id_slot(Entity::Affiliate),
                    "sortBy" => "\"CLICKS\"".into(),
                    "events" => "\"deposit\"".into(),
                    "statuses" => "\"approved\"".into(),
                    // Loopback is allowed for this test's server (`--outbound-allow`).
                    "urlTemplate" => {
                        format!("\"http://127.0.0.1:9/probe-{}?cid={{click_id}}\"", self.unique())
                    }
                    "name" | "tenantName" => format!("\"probe {}\"", self.unique()),
                    "email" => format!("\"probe-{}@probe.test\"", self.unique()),
                    "password" => format!("\"probe password {}\"", self.unique()),
                    "landingUrl" | "fallbackUrl" => format!("\"https://probe.test/land/{}\"", self.unique()),
                    // `importProgram`: a file's text names rows by the old tracker's IDs, which
                    // resolve in the caller's own tenant only; the source is free text.
                    "content" => format!(
                        "\"external_id,name,email\\nprobe-{n},Probe,probe-{n}@probe.test\\n\"",
                        n = self.unique()
                    ),
                    // A custom dialect's words are free text, mapped to our own events and
                    // statuses; they name no row.
                    "statusParameter" | "word" if at.contains(".customDialect.") => {
                        format!("\"probe{}\"", self.unique())
                    }
                    "event" | "defaultEvent" if at.contains(".customDialect.") => "\"ftd\"".into(),
                    "status" if at.contains(".customDialect.") => "\"approved\"".into(),
                    // `reconcile`: the operator's own export, matched by transaction ID against
                    // the caller's tenant only.
                    "theirs" => "\"txn_id,event,amount,currency,commission,occurred_at\\n\"".into(),
                    "source" if at.starts_with("Mutation.importProgram(") => {
                        format!("\"probe source {}\"", self.unique())
                    }
                    _ => {
                        self.teach(
                            at,
                            format!("String `{name}`: unknown meaning (could it name another tenant's row?)"),
                        );
                        "\"?\"".into()
                    }
                },
                ("SCALAR", "Int") => match name {
                    "first" | "last" => PAGE.to_string(),
                    "lookbackDays" => "7".into(),
                    "minTrades" => "1".into(),
                    "withinDays" => "30".into(),
                    "maxConcurrency" => "2".into(),
                    "timeoutMs" => "1000".into(),
                    "overlapHours" => "1".into(),
                    "score" => "60".into(),
                    "registrationFloorSecs" | "ftdFloorSecs" => "10".into(),
                    "registrationsPerHour" => "5".into(),
                    "promoClaimsLimit" => "3".into(),
                    "promoWindowHours" => "720".into(),
                    "thresholdPercent" => "30".into(),
                    "minConversions" => "20".into(),
                    "offset" => "0".into(),
                    "limit" => PAGE.to_string(),
                    "postbacksPerMinute" => "1000".into(),
                    _ => {
                        self.teach(at, format!("Int `{name}`: unknown meaning"));
                        "0".into()
                    }
                },
                ("SCALAR", "Boolean") => "true".into(),
                // A report's period covers the fixture's clicks and conversions (made just now).
                ("SCALAR", "DateTime") => match name {
                    "from" => format!("{:?}", (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339()),
                    "to" => format!("{:?}", (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339()),
                    _ => "\"2026-01-01T00:00:00Z\"".into(),
                },
                // A report's days cover the fixture's conversions (made today).
                ("SCALAR", "NaiveDate") => match name {
                    "from" => format!(
                        "{:?}",
                        (chrono::Utc::now() - chrono::Duration::days(2)).date_naive().to_string()
                    ),
                    "to" => format!(
                        "{:?}",
                        (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().to_string()
                    ),
                    _ => "\"2026-01-01\"".into(),
                },
                // Money and rates: values every rule accepts (tiers start at 0, percents ≤ 100).
                ("SCALAR", "Decimal") => match name {
                    "from" => "\"0\"".into(),
                    "percent" | "overrides" => "\"10\"".into(),
                    _ => "\"5\"".into(),
                },
                ("SCALAR", other) => {
                    self.teach(at, format!("scalar `{other}` of `{name}`: no generic value known"));
                    "null".into()
                }
                // A custom dialect (given when optional fields are) goes with the CUSTOM dialect.
                ("ENUM", _) if name == "dialect" && self.include_optional => "CUSTOM".into(),
                ("ENUM", _) => match self.schema.types[type_name].enum_values.first() {
                    Some(value) => value.clone(),
                    None => {
                        self.teach(at, format!("enum `{type_name}` has no values"));
                        "null".into()
                    }
                },
                ("INPUT_OBJECT", _) => {
                    let fields = self.schema.types[type_name].input_fields.clone();
                    let mut parts = Vec::new();
                    for field in fields {
                        let needed =
                            REQUIRED_IN_PRACTICE.contains(&(type_name.as_str(), field.name.as_str()));
                        let left_out = LEFT_OUT.contains(&(type_name.as_str(), field.name.as_str()));
                        if (field.ty.required() || self.include_optional || needed) && !left_out {
                            let value = self.literal(
                                &field.ty,
                                &field.name,
                                owner,
                                connection,
                                &format!("{at}.{}", field.name),
                            );
                            parts.push(format!("{}: {value}", field.name));
                        }
                    }
                    format!("{{ {} }}", parts.join(", "))
                }
                (kind, _) => {
                    self.teach(at, format!("argument type `{type_name}` of kind {kind}"));
                    "null".into()
                }
            },
        }
    }

    fn arguments(&mut self, field: &Field, at: &str, nested: bool) -> String {
        let connection = entity_of_connection(field.ty.named());
        let mut parts = Vec::new();
        for arg in &field.args {
            // Below the root only required arguments are filled; optional ones keep defaults.
            if arg.ty.required() || (self.include_optional && !nested) {
                let value =
                    self.literal(&arg.ty, &arg.name, &field.name, connection, &format!("{at}({})", arg.name));
                parts.push(format!("{}: {value}", arg.name));
            }
        }
        if parts.is_empty() { String::new() } else { format!("({})", parts.join(", ")) }
    }

    /// A selection set for `type_name`: every scalar and enum, and objects down to
    /// [`SELECTION_LEVELS`].
    fn selection(&mut self, type_name: &str, level: usize, at: &str) -> String {
        let fields = self.schema.types[type_name].fields.clone();
        let mut parts = vec!["__typename".to_owned()];
        for field in &fields {
            let here = format!("{at}.{}", field.name);
            let target = field.ty.named();
            match self.schema.kind(target) {
                "SCALAR" | "ENUM" => {
                    let args = self.arguments(field, &here, true);
                    parts.push(format!("{}{args}", field.name));
                }
                "OBJECT" if level < SELECTION_LEVELS => {
                    let args = self.arguments(field, &here, true);
                    let inner = self.selection(target, level + 1, &here);
                    parts.push(format!("{}{args} {{ {inner} }}", field.name));
                }
                "OBJECT" => {}
                kind => self.teach(&here, format!("output type `{target}` of kind {kind}")),
            }
        }
        parts.join(" ")
    }

    /// The whole operation for a root field.
    fn operation(&mut self, keyword: &str, root: &str, field: &Field) -> String {
        let at = format!("{root}.{}", field.name);
        let args = self.arguments(field, &at, false);
        let target = field.ty.named();
        let selection = match self.schema.kind(target) {
            "SCALAR" | "ENUM" => String::new(),
            "OBJECT" => format!(" {{ {} }}", self.selection(target, 1, &at)),
            kind => {
                self.teach(&at, format!("return type `{target}` of kind {kind}"));
                String::new()
            }
        };
        format!("{keyword} IsolationProbe {{ {}{args}{selection} }}", field.name)
    }
}

fn has_optional_input(schema: &Schema, field: &Field) -> bool {
    fn optional(schema: &Schema, ty: &Ty, depth: usize) -> bool {
        if !ty.required() {
            return true;
        }
        let name = ty.named();
        depth < 5
            && schema.kind(name) == "INPUT_OBJECT"
            && schema.types[name].input_fields.iter().any(|f| optional(schema, &f.ty, depth + 1))
    }
    field.args.iter().any(|a| optional(schema, &a.ty, 0))
}

/// One generated operation to run.
struct Probe {
    root: String,
    field: String,
    text: String,
    /// The entities of its ID slots and where each value came from.
    slots: Vec<(Entity, Pick)>,
    /// For a probe with victim IDs: the same operation with those IDs replaced by IDs of rows
    /// that do not exist.
    missing_twin: Option<String>,
}

impl Probe {
    fn touches_victim(&self) -> bool {
        self.slots.iter().any(|(_, pick)| *pick == Pick::Victim)
    }
}

/// Every probe for every root field; or the list of things the generator must be taught.
fn generate(schema: &Schema, book: &Book, counter: &mut u32) -> Result<Vec<Probe>, Vec<String>> {
    let mut problems = Vec::new();
    for (root, field, _) in EXEMPT {
        let exists = schema.root_fields().iter().any(|(r, _, f)| r == root && f.name == *field);
        if !exists {
            problems.push(format!("exempt field {root}.{field} no longer exists: remove it from EXEMPT"));
        }
    }
    let mut probes = Vec::new();
    for (root, keyword, field) in schema.root_fields() {
        if EXEMPT.iter().any(|(r, f, _)| *r == root && *f == field.name) {
            continue;
        }
        let variants: &[bool] = if has_optional_input(schema, &field) { &[false, true] } else { &[false] };
        for &include_optional in variants {
            let mut dry = Generator {
                schema,
                book,
                include_optional,
                picks: Vec::new(),
                round: 0,
                slots: Vec::new(),
                problems: Vec::new(),
                counter: &mut *counter,
            };
            dry.operation(keyword, &root, &field);
            let slot_entities = dry.slots.clone();
            if !dry.problems.is_empty() {
                problems.extend(dry.problems);
                continue;
            }
            let k = slot_entities.len();
            // Each slot is the victim's or the attacker's own row, at least one the victim's.
            let masks: Vec<u32> = if k == 0 { vec![0] } else { (1..(1u32 << k)).collect() };
            for mask in masks {
                let picks: Vec<Pick> =
                    (0..k).map(|i| if mask & (1 << i) != 0 { Pick::Victim } else { Pick::Own }).collect();
                if picks.iter().zip(&slot_entities).any(|(p, e)| *p == Pick::Own && !book.own.contains_key(e))
                {
                    continue;
                }
                let rounds =
                    slot_entities.iter().map(|e| book.victims.get(e).map_or(1, Vec::len)).max().unwrap_or(1);
                for round in 0..rounds {
                    let mut build = |picks: Vec<Pick>| {
                        let mut generator = Generator {
                            schema,
                            book,
                            include_optional,
                            picks,
                            round,
                            slots: Vec::new(),
                            problems: Vec::new(),
                            counter: &mut *counter,
                        };
                        generator.operation(keyword, &root, &field)
                    };
                    let text = build(picks.clone());
                    let missing_twin = (k > 0 && round == 0).then(|| {
                        build(
                            picks
                                .iter()
                                .map(|p| if *p == Pick::Victim { Pick::Missing } else { *p })
                                .collect(),
                        )
                    });
                    probes.push(Probe {
                        root: root.clone(),
                        field: field.name.clone(),
                        text,
                        slots: slot_entities.iter().copied().zip(picks.iter().copied()).collect(),
                        missing_twin,
                    });
                }
            }
        }
    }
    if problems.is_empty() { Ok(probes) } else { Err(problems) }
}

// ---------------------------------------------------------------------------------------------
// Running probes.

fn codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("<no code>").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn leaks(answer: &Value, secrets: &[(String, String)]) -> Vec<String> {
    let text = answer.to_string();
    secrets
        .iter()
        .filter(|(_, secret)| text.contains(secret.as_str()))
        .map(|(what, _)| what.clone())
        .collect()
}

/// Runs every probe as the attacker; returns what went wrong.
async fn attack(
    app: &TestApp,
    token: &str,
    probes: &[Probe],
    secrets: &[(String, String)],
    allowed_errors: &[&str],
    who: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    for probe in probes {
        let answer = app.graphql(Some(token), &probe.text, json!({})).await;
        let found = leaks(&answer, secrets);
        if !found.is_empty() {
            failures.push(format!(
                "{who}: {}.{} leaked {found:?}\n  op: {}\n  answer: {answer}",
                probe.root, probe.field, probe.text
            ));
        }
        let errors = codes(&answer);
        if let Some(code) = errors.iter().find(|c| !allowed_errors.contains(&c.as_str())) {
            failures.push(format!(
                "{who}: {}.{} answered {code}, expected only {allowed_errors:?} (a FORBIDDEN or other code on another \
                 tenant's row tells that it exists; <no code> means the generator built an invalid operation)\n  op: {}\n  answer: {answer}",
                probe.root, probe.field, probe.text
            ));
        }
        if probe.root == "Mutation" && probe.touches_victim() && errors.is_empty() {
            failures.push(format!(
                "{who}: {}.{} succeeded on the victim's rows\n  op: {}\n  answer: {answer}",
                probe.root, probe.field, probe.text
            ));
        }
        if let Some(twin) = &probe.missing_twin {
            let twin_answer = app.graphql(Some(token), twin, json!({})).await;
            if codes(&twin_answer) != errors {
                failures.push(format!(
                    "{who}: {}.{} answers differently for the victim's rows and for rows that do not exist \
                     (an existence oracle)\n  victim op: {}\n  victim answer: {answer}\n  missing op: {twin}\n  missing answer: {twin_answer}",
                    probe.root, probe.field, probe.text
                ));
            }
        }
    }
    failures
}

/// The controls: run as the victim, the generated queries must reveal the very secrets the
/// attack looks for (or be refused for the victim's role too, where `refusal` is given);
/// otherwise the attack proves nothing.
async fn control(
    app: &TestApp,
    token: &str,
    probes: &[Probe],
    secrets: &[(String, String)],
    refusal: Option<&str>,
    who: &str,
) -> Vec<String> {
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    for probe in probes
        .iter()
        .filter(|p| p.root != "Mutation" && p.slots.iter().all(|(_, pick)| *pick == Pick::Victim))
    {
        let answer = app.graphql(Some(token), &probe.text, json!({})).await;
        let refused = refusal
            .is_some_and(|code| codes(&answer).iter().all(|c| c == code) && answer["errors"].is_array());
        let revealed = !leaks(&answer, secrets).is_empty() || refused;
        *seen.entry(probe.field.clone()).or_default() |= revealed;
    }
    seen.into_iter()
        .filter(|(_, revealed)| !revealed)
        .map(|(field, _)| {
            format!("{who}: control failed: as the victim, no generated `{field}` operation shows any secret")
        })
        .collect()
}

/// A conversion to post: (API key, link, transaction ID prefix).
type Post<'a> = (&'a str, &'a Value, &'a str);

/// Subscribes with `operation` as `token` and returns everything the feed delivered. First it
/// posts conversions the watcher may see (`visible`) until one arrives, so the subscription is
/// known to be live; then the `trigger` (which it must not see, or, for a control, must see);
/// then one more visible conversion, whose arrival ends the watch.
async fn watch(app: &TestApp, token: &str, operation: &str, visible: Post<'_>, trigger: Post<'_>) -> String {
    let (visible_key, visible_link, visible_txn) = visible;
    let (trigger_key, trigger_link, trigger_txn) = trigger;
    // `fraudAlerts` delivers flagged conversions only: every conversion of this watch shares a
    // device with a seed posted first in its tenant, so multi-accounting flags it.
    let alerts = operation.contains("fraudAlerts");
    let extra: &[(&str, &str)] = if alerts { &[("device_id", "watched-device")] } else { &[] };
    if alerts {
        let (seed_v, seed_t) = (format!("{visible_txn}-seedv"), format!("{visible_txn}-seedt"));
        convert_with(app, visible_key, visible_link, &seed_v, &format!("player-{seed_v}"), extra).await;
        convert_with(app, trigger_key, trigger_link, &seed_t, &format!("player-{seed_t}"), extra).await;
    }
    let mut ws = GqlWs::connect(app, Some(token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(operation, json!({})).await;
    let mut seen = String::new();
    let mut live = false;
    for attempt in 0..20 {
        let txn = format!("{visible_txn}-warm{attempt}");
        convert_with(app, visible_key, visible_link, &txn, &format!("player-{txn}"), extra).await;
        let deadline = Instant::now() + Duration::from_millis(500);
        while let Some(Ok(data)) = ws.next_for(&sub, deadline.saturating_duration_since(Instant::now())).await
        {
            seen.push_str(&data.to_string());
            live |= seen.contains(&txn);
            if live {
                break;
            }
        }
        if live {
            break;
        }
    }
    assert!(live, "the feed never went live; seen: {seen}");
    convert_with(app, trigger_key, trigger_link, trigger_txn, &format!("player-{trigger_txn}"), extra).await;
    let end = format!("{visible_txn}-end");
    convert_with(app, visible_key, visible_link, &end, &format!("player-{end}"), extra).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&end) {
        match ws.next_for(&sub, deadline.saturating_duration_since(Instant::now())).await {
            Some(Ok(data)) => seen.push_str(&data.to_string()),
            Some(Err(message)) => {
                seen.push_str(&message.to_string());
                break;
            }
            None => break,
        }
    }
    assert!(seen.contains(&end), "the feed stopped before its end marker; seen: {seen}");
    ws.close().await;
    seen
}

/// Subscriptions only owners and managers may open: an affiliate's is refused.
const STAFF_ONLY_FEEDS: &[&str] = &["fraudAlerts"];

async fn refused_to_affiliate(app: &TestApp, token: &str, feed: &Probe) -> Vec<String> {
    let mut ws = GqlWs::connect(app, Some(token), WsProtocol::TransportWs).await;
    let sub = ws.subscribe(&feed.text, json!({})).await;
    let answer = ws.next_for(&sub, Duration::from_secs(10)).await;
    ws.close().await;
    let refused = match &answer {
        Some(Err(message)) => {
            let error = &message["payload"];
            let error = if error.is_array() { &error[0] } else { &error["errors"][0] };
            error["extensions"]["code"] == "FORBIDDEN"
        }
        _ => false,
    };
    if refused {
        return Vec::new();
    }
    vec![format!("affiliate: {}.{} was not refused: {answer:?}\n  op: {}", feed.root, feed.field, feed.text)]
}

fn feed_leaks(
    seen: &str,
    secrets: &[(String, String)],
    trigger: &str,
    who: &str,
    feed: &Probe,
) -> Vec<String> {
    let mut failures = Vec::new();
    let leaked: Vec<&String> =
        secrets.iter().filter(|(_, secret)| seen.contains(secret.as_str())).map(|(what, _)| what).collect();
    if !leaked.is_empty() || seen.contains(trigger) {
        failures.push(format!(
            "{who}: {}.{} delivered the victim's data ({leaked:?}, live `{trigger}`: {})\n  op: {}\n  seen: {seen}",
            feed.root,
            feed.field,
            seen.contains(trigger),
            feed.text
        ));
    }
    failures
}

fn feed_control(seen: &str, trigger: &str, who: &str, feed: &Probe) -> Vec<String> {
    if seen.contains(trigger) {
        return Vec::new();
    }
    vec![format!(
        "{who}: control failed: {}.{} never delivered `{trigger}`\n  seen: {seen}",
        feed.root, feed.field
    )]
}

/// Clicks `link` and posts a deposit for its click ID with `key`; returns the answer.
async fn convert(app: &TestApp, key: &str, link: &Value, txn: &str, player: &str) -> Value {
    convert_with(app, key, link, txn, player, &[]).await
}

/// [`convert`] with more postback parameters.
async fn convert_with(
    app: &TestApp,
    key: &str,
    link: &Value,
    txn: &str,
    player: &str,
    extra: &[(&str, &str)],
) -> Value {
    let code = link["code"].as_str().unwrap();
    let click = app.click(code, "", None).await;
    let click_id = click.click_id();
    let mut params = vec![
        ("key", key),
        ("click_id", click_id.as_str()),
        ("player_id", player),
        ("event", "deposit"),
        ("txn_id", txn),
        ("amount", "25"),
        ("currency", "EUR"),
    ];
    params.extend_from_slice(extra);
    let (status, answer) = app.postback_get(&params).await;
    assert_eq!(status, 200, "postback failed: {answer}");
    assert_eq!(answer["attributed"], true, "{answer}");
    answer
}

/// `YYYY-MM` of the month before the RFC 3339 instant `now`.
fn previous_month(now: &str) -> String {
    let year: i32 = now[..4].parse().unwrap();
    let month: u32 = now[5..7].parse().unwrap();
    if month == 1 { format!("{}-12", year - 1) } else { format!("{year}-{:02}", month - 1) }
}

/// A USD CPA plan, in force since 2000, as the default of `campaigns`; returns its ID.
async fn commission_plan(app: &TestApp, owner: &str, name: &str, campaigns: &[&Value]) -> String {
    let plan = app
        .ok(
            Some(owner),
            "mutation($input: CreateCommissionPlanInput!) { createCommissionPlan(input: $input) { id } }",
            json!({ "input": { "name": name, "effectiveFrom": "2000-01-01T00:00:00Z",
                                "rules": { "currency": "USD", "cpa": { "amount": "30" } } } }),
        )
        .await["createCommissionPlan"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for campaign in campaigns {
        app.ok(
            Some(owner),
            "mutation($input: AssignCommissionPlanInput!) { assignCommissionPlan(input: $input) { id } }",
            json!({ "input": { "planId": plan, "campaignId": campaign["id"], "effectiveFrom": "2000-01-01T00:00:00Z" } }),
        )
        .await;
    }
    plan
}

/// Registers `player` through a click on `link` now, then reports its first deposit in `period`.
async fn first_deposit_in(app: &TestApp, key: &str, link: &Value, player: &str, period: &str) {
    let click_id = app.click(link["code"].as_str().unwrap(), "", None).await.click_id();
    let (status, answer) = app
        .postback_get(&[
            ("key", key),
            ("click_id", &click_id),
            ("player_id", player),
            ("event", "registration"),
        ])
        .await;
    assert_eq!(status, 200, "{answer}");
    let (txn, occurred) = (format!("ftd-{player}"), format!("{period}-15T12:00:00Z"));
    let (status, answer) = app
        .postback_get(&[
            ("key", key),
            ("player_id", player),
            ("event", "ftd"),
            ("txn_id", &txn),
            ("amount", "50"),
            ("currency", "USD"),
            ("occurred_at", &occurred),
        ])
        .await;
    assert_eq!(status, 200, "{answer}");
}

async fn close_period(app: &TestApp, owner: &str, period: &str) -> Value {
    app.ok(
        Some(owner),
        "mutation($period: String!) { closePeriod(period: $period) { id affiliateId } }",
        json!({ "period": period }),
    )
    .await["closePeriod"]
        .clone()
}

fn statement_of(statements: &Value, affiliate: &Value) -> String {
    statements
        .as_array()
        .and_then(|all| all.iter().find(|s| s["affiliateId"] == affiliate["id"]))
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("no statement for {affiliate} in {statements}"))
        .to_owned()
}

async fn first_entry(app: &TestApp, owner: &str, affiliate: &Value) -> String {
    let entries = app
        .ok(
            Some(owner),
            "query($a: ID) { commissions(affiliateId: $a) { nodes { id } } }",
            json!({ "a": affiliate["id"] }),
        )
        .await;
    entries["commissions"]["nodes"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no entry: {entries}"))
        .to_owned()
}

/// A GET endpoint for `affiliate` whose URL carries `marker`; returns its ID.
async fn endpoint(app: &TestApp, owner: &str, affiliate: &Value, marker: &str) -> String {
    app.ok(
        Some(owner),
        "mutation($i: CreatePostbackEndpointInput!) { createPostbackEndpoint(input: $i) { endpoint { id } } }",
        json!({ "i": { "affiliateId": affiliate["id"], "urlTemplate": format!("http://127.0.0.1:9/{marker}?cid={{click_id}}") } }),
    )
    .await["createPostbackEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The first delivery queued for `endpoint`, waiting for the notifier to queue it.
/// The tenant's oldest audit entry (a cursor after which the rest of its log follows).
/// An `importProgram` job of the owner's tenant (a dry run of one affiliate); its ID.
async fn import_job(app: &TestApp, owner: &str) -> String {
    let file = json!({ "name": "affiliates.csv", "content": "external_id,name,email\nx-1,Imported,x1@import.test\n" });
    let job = app
        .ok(
            Some(owner),
            "mutation($input: ImportProgramInput!) { importProgram(input: $input) { id } }",
            json!({ "input": { "files": [file], "dryRun": true } }),
        )
        .await;
    job["importProgram"]["id"].as_str().unwrap_or_else(|| panic!("no import job: {job}")).to_owned()
}

async fn first_audit_entry(app: &TestApp, owner: &str) -> String {
    let log = app.ok(Some(owner), "{ auditLog(first: 1) { nodes { id } } }", json!({})).await;
    log["auditLog"]["nodes"][0]["id"].as_str().unwrap_or_else(|| panic!("no audit entry: {log}")).to_owned()
}

async fn first_delivery(app: &TestApp, owner: &str, endpoint: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = app
            .ok(
                Some(owner),
                "query($e: ID!) { postbackDeliveries(endpointId: $e) { nodes { id } } }",
                json!({ "e": endpoint }),
            )
            .await;
        if let Some(id) = answer["postbackDeliveries"]["nodes"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no delivery queued for {endpoint}: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn conversion_id(answer: &Value) -> String {
    answer["conversion_id"].as_str().unwrap_or_else(|| panic!("no conversion_id in {answer}")).to_owned()
}

// ---------------------------------------------------------------------------------------------
// The fixture.

struct Tenant {
    owner: String,
    secrets: Vec<(String, String)>,
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

fn secret(list: &mut Vec<(String, String)>, what: &str, value: &Value) {
    let value = value.as_str().unwrap_or_else(|| panic!("{what} is not a string: {value}")).to_owned();
    assert!(value.len() >= 8, "{what} `{value}` is too short to be a distinctive secret");
    list.push((what.to_owned(), value));
}

/// A's rows as its owner sees them; compared before and after the attacks.
async fn snapshot(app: &TestApp, owner: &str) -> Value {
    let mut all = serde_json::Map::new();
    for (field, fields) in [
        ("affiliates", AFFILIATE_FIELDS),
        ("campaigns", CAMPAIGN_FIELDS),
        ("trackingLinks", LINK_FIELDS),
        // Not `lastUsedAt`: A's own postbacks during the attacks move it, as they should.
        ("apiKeys", "id name prefix createdAt revokedAt"),
    ] {
        let data = app
            .ok(Some(owner), &format!("{{ {field}(first: 100) {{ nodes {{ {fields} }} }} }}"), json!({}))
            .await;
        all.insert(field.to_owned(), data[field].clone());
    }
    let me = app
        .ok(
            Some(owner),
            "{ me { role user { id email name role } tenant { id name slug createdAt } } }",
            json!({}),
        )
        .await;
    all.insert("me".into(), me);
    Value::Object(all)
}

#[tokio::test]
async fn every_query_and_mutation_is_tenant_and_affiliate_scoped() {
    let app = spawn_app!("--outbound-allow", "127.0.0.1/32").await;

    // ---- Tenant A, the victim.
    let (a_owner, a_tenant) = app.sign_up("iso-alpha").await;
    let kestrel = app
        .create_affiliate(
            &a_owner,
            "Alpha Partner Kestrel",
            "kestrel@alpha-partners.test",
            Some("kestrel pass 1"),
            None,
        )
        .await;
    let heron = app
        .create_affiliate(
            &a_owner,
            "Alpha Sub Heron",
            "heron@alpha-partners.test",
            Some("heron pass 1"),
            Some(&id(&kestrel)),
        )
        .await;
    let osprey = app
        .create_affiliate(
            &a_owner,
            "Alpha Partner Osprey",
            "osprey@alpha-partners.test",
            Some("osprey pass 1"),
            None,
        )
        .await;
    let plover = app
        .create_affiliate(
            &a_owner,
            "Alpha Sub Plover",
            "plover@alpha-partners.test",
            None,
            Some(&id(&osprey)),
        )
        .await;
    let falcon = app
        .create_campaign(&a_owner, "Alpha Campaign Falcon", "https://falcon.alpha.test/land?cid={click_id}")
        .await;
    let merlin = app
        .create_campaign(&a_owner, "Alpha Campaign Merlin", "https://merlin.alpha.test/land?cid={click_id}")
        .await;
    let kestrel_falcon = app.create_link(&a_owner, &id(&kestrel), &id(&falcon)).await;
    let kestrel_merlin = app.create_link(&a_owner, &id(&kestrel), &id(&merlin)).await;
    let heron_falcon = app.create_link(&a_owner, &id(&heron), &id(&falcon)).await;
    let osprey_merlin = app.create_link(&a_owner, &id(&osprey), &id(&merlin)).await;
    let condor = app.create_api_key(&a_owner, "Alpha Key Condor").await;
    let kestrel_login = app.login("iso-alpha", "kestrel@alpha-partners.test", "kestrel pass 1").await;
    let heron_login = app.login("iso-alpha", "heron@alpha-partners.test", "heron pass 1").await;
    let osprey_login = app.login("iso-alpha", "osprey@alpha-partners.test", "osprey pass 1").await;
    let kestrel_token = kestrel_login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let osprey_token = osprey_login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let alpha_key = condor["key"].as_str().unwrap().to_owned();
    // Outbound postback endpoints (to a closed loopback port: deliveries stay pending).
    let kestrel_endpoint = endpoint(&app, &a_owner, &kestrel, "alpha-kestrel-hook").await;
    let osprey_endpoint = endpoint(&app, &a_owner, &osprey, "alpha-osprey-hook").await;
    let kestrel_conversion =
        convert(&app, &alpha_key, &kestrel_falcon, "ALPHA-TXN-KESTREL-1", "alpha-player-kestrel").await;
    let osprey_conversion =
        convert(&app, &alpha_key, &osprey_merlin, "ALPHA-TXN-OSPREY-1", "alpha-player-osprey").await;
    // Commission: a plan for A's campaigns, first deposits booked last month, that month closed.
    let received = app
        .ok(
            Some(&a_owner),
            "query($id: ID!) { conversion(id: $id) { receivedAt } }",
            json!({ "id": conversion_id(&kestrel_conversion) }),
        )
        .await;
    let period = previous_month(received["conversion"]["receivedAt"].as_str().unwrap());
    let alpha_plan = commission_plan(&app, &a_owner, "Alpha Plan Gyrfalcon", &[&falcon, &merlin]).await;
    for (link, player) in [(&kestrel_falcon, "alpha-stmt-kestrel"), (&osprey_merlin, "alpha-stmt-osprey")] {
        first_deposit_in(&app, &alpha_key, link, player, &period).await;
    }
    let alpha_statements = close_period(&app, &a_owner, &period).await;
    let kestrel_statement = statement_of(&alpha_statements, &kestrel);
    let osprey_statement = statement_of(&alpha_statements, &osprey);
    let kestrel_entry = first_entry(&app, &a_owner, &kestrel).await;
    let kestrel_delivery = first_delivery(&app, &a_owner, &kestrel_endpoint).await;
    let osprey_delivery = first_delivery(&app, &a_owner, &osprey_endpoint).await;
    // A rate only A set: `fxRates` must show it to A alone.
    app.ok(
        Some(&a_owner),
        "mutation($input: SetFxRateInput!) { setFxRate(input: $input) { rate } }",
        json!({ "input": { "day": "2026-01-02", "from": "GBP", "to": "USD", "rate": "1.23456789" } }),
    )
    .await;
    let osprey_entry = first_entry(&app, &a_owner, &osprey).await;
    // A trained model lists A's affiliates: `attributionModel` must then show them to A only.
    app.ok(Some(&a_owner), "mutation { trainAttributionModel { version } }", json!({})).await;
    let a_me =
        app.ok(Some(&a_owner), "{ me { user { id email } tenant { id name slug } } }", json!({})).await;
    assert_eq!(a_me["me"]["tenant"]["id"], a_tenant);

    // What Osprey (affiliate 2) must never see: Kestrel's branch, its campaign, the owner,
    // the API key.
    let mut kestrel_side = Vec::new();
    for (who, affiliate, login) in [("kestrel", &kestrel, &kestrel_login), ("heron", &heron, &heron_login)] {
        secret(&mut kestrel_side, &format!("{who} id"), &affiliate["id"]);
        secret(&mut kestrel_side, &format!("{who} name"), &affiliate["name"]);
        secret(&mut kestrel_side, &format!("{who} email"), &affiliate["email"]);
        secret(&mut kestrel_side, &format!("{who} user id"), &login["data"]["login"]["user"]["id"]);
    }
    secret(&mut kestrel_side, "falcon id", &falcon["id"]);
    secret(&mut kestrel_side, "falcon name", &falcon["name"]);
    secret(&mut kestrel_side, "falcon landing URL", &falcon["landingUrl"]);
    for (who, link) in [
        ("kestrel×falcon", &kestrel_falcon),
        ("kestrel×merlin", &kestrel_merlin),
        ("heron×falcon", &heron_falcon),
    ] {
        secret(&mut kestrel_side, &format!("{who} link id"), &link["id"]);
        secret(&mut kestrel_side, &format!("{who} link code"), &link["code"]);
    }
    secret(&mut kestrel_side, "API key id", &condor["apiKey"]["id"]);
    secret(&mut kestrel_side, "API key name", &condor["apiKey"]["name"]);
    secret(&mut kestrel_side, "API key prefix", &condor["apiKey"]["prefix"]);
    secret(&mut kestrel_side, "API key", &condor["key"]);
    secret(&mut kestrel_side, "API key signing secret", &condor["signingSecret"]);
    secret(&mut kestrel_side, "owner user id", &a_me["me"]["user"]["id"]);
    secret(&mut kestrel_side, "kestrel conversion id", &kestrel_conversion["conversion_id"]);
    secret(&mut kestrel_side, "kestrel txn id", &json!("ALPHA-TXN-KESTREL-1"));
    secret(&mut kestrel_side, "kestrel player id", &json!("alpha-player-kestrel"));
    secret(&mut kestrel_side, "kestrel statement id", &json!(kestrel_statement));
    secret(&mut kestrel_side, "kestrel ledger entry id", &json!(kestrel_entry));
    secret(&mut kestrel_side, "kestrel endpoint id", &json!(kestrel_endpoint));
    secret(&mut kestrel_side, "kestrel endpoint URL", &json!("alpha-kestrel-hook"));
    secret(&mut kestrel_side, "kestrel delivery id", &json!(kestrel_delivery));
    secret(&mut kestrel_side, "owner email", &a_me["me"]["user"]["email"]);

    // Two of A's players on one device: the second is flagged (multi-accounting) and waits in
    // A's review queue, naming the first as its cluster: `fraudReview` must show it to A only.
    let mut flagged = Value::Null;
    for player in ["alpha-shrike-1", "alpha-shrike-2"] {
        let (status, answer) = app
            .postback_get(&[
                ("key", alpha_key.as_str()),
                ("player_id", player),
                ("event", "registration"),
                ("device_id", "alpha-device-shrike"),
            ])
            .await;
        assert_eq!(status, 200, "postback failed: {answer}");
        flagged = answer;
    }
    assert_eq!(flagged["fraud_action"], "flag", "{flagged}");

    // A's fraud settings, distinctive enough to spot in any answer (B's own stay at 10 and 5).
    app.ok(
        Some(&a_owner),
        "mutation { updateFraudSettings(input: { ftdFloorSecs: 86399, registrationsPerHour: 9731 }) { ftdFloorSecs } }",
        json!({}),
    )
    .await;

    // What tenant B must never see: all of the above and the rest of A.
    let mut alpha = Tenant { owner: a_owner.clone(), secrets: kestrel_side.clone() };
    secret(&mut alpha.secrets, "tenant A id", &a_me["me"]["tenant"]["id"]);
    secret(&mut alpha.secrets, "tenant A slug", &a_me["me"]["tenant"]["slug"]);
    secret(&mut alpha.secrets, "tenant A name", &a_me["me"]["tenant"]["name"]);
    for (who, affiliate) in [("osprey", &osprey), ("plover", &plover)] {
        secret(&mut alpha.secrets, &format!("{who} id"), &affiliate["id"]);
        secret(&mut alpha.secrets, &format!("{who} name"), &affiliate["name"]);
        secret(&mut alpha.secrets, &format!("{who} email"), &affiliate["email"]);
    }
    secret(&mut alpha.secrets, "osprey user id", &osprey_login["data"]["login"]["user"]["id"]);
    secret(&mut alpha.secrets, "merlin id", &merlin["id"]);
    secret(&mut alpha.secrets, "merlin name", &merlin["name"]);
    secret(&mut alpha.secrets, "merlin landing URL", &merlin["landingUrl"]);
    secret(&mut alpha.secrets, "osprey×merlin link id", &osprey_merlin["id"]);
    secret(&mut alpha.secrets, "osprey×merlin link code", &osprey_merlin["code"]);
    secret(&mut alpha.secrets, "osprey conversion id", &osprey_conversion["conversion_id"]);
    secret(&mut alpha.secrets, "osprey txn id", &json!("ALPHA-TXN-OSPREY-1"));
    secret(&mut alpha.secrets, "osprey player id", &json!("alpha-player-osprey"));
    secret(&mut alpha.secrets, "osprey statement id", &json!(osprey_statement));
    secret(&mut alpha.secrets, "osprey ledger entry id", &json!(osprey_entry));
    secret(&mut alpha.secrets, "osprey endpoint id", &json!(osprey_endpoint));
    secret(&mut alpha.secrets, "osprey endpoint URL", &json!("alpha-osprey-hook"));
    secret(&mut alpha.secrets, "osprey delivery id", &json!(osprey_delivery));
    secret(&mut alpha.secrets, "plan id", &json!(alpha_plan));
    secret(&mut alpha.secrets, "alpha's GBP rate", &json!("1.23456789"));
    secret(&mut alpha.secrets, "plan name", &json!("Alpha Plan Gyrfalcon"));
    secret(&mut alpha.secrets, "alpha's fraud settings", &json!("\"ftdFloorSecs\":86399"));
    secret(&mut alpha.secrets, "flagged conversion id", &flagged["conversion_id"]);
    secret(&mut alpha.secrets, "flagged player id", &json!("alpha-shrike-2"));
    secret(&mut alpha.secrets, "clustered player id", &json!("alpha-shrike-1"));
    secret(&mut alpha.secrets, "alpha's velocity limit", &json!("\"registrationsPerHour\":9731"));

    // ---- Tenant B, the attacker, with rows of its own to mix in.
    let (b_owner, _) = app.sign_up("iso-bravo").await;
    let b_affiliate =
        app.create_affiliate(&b_owner, "Bravo Partner", "partner@bravo.test", Some(PASSWORD), None).await;
    let b_campaign =
        app.create_campaign(&b_owner, "Bravo Campaign", "https://bravo.test/?cid={click_id}").await;
    let b_link = app.create_link(&b_owner, &id(&b_affiliate), &id(&b_campaign)).await;
    let b_key = app.create_api_key(&b_owner, "Bravo Key").await;
    let bravo_key = b_key["key"].as_str().unwrap().to_owned();
    let b_endpoint = endpoint(&app, &b_owner, &b_affiliate, "bravo-hook").await;
    let b_conversion = convert(&app, &bravo_key, &b_link, "BRAVO-TXN-1", "bravo-player-1").await;
    let b_me = app.ok(Some(&b_owner), "{ me { user { id } } }", json!({})).await;
    let b_plan = commission_plan(&app, &b_owner, "Bravo Plan", &[&b_campaign]).await;
    first_deposit_in(&app, &bravo_key, &b_link, "bravo-stmt", &period).await;
    let b_statement = statement_of(&close_period(&app, &b_owner, &period).await, &b_affiliate);
    let b_entry = first_entry(&app, &b_owner, &b_affiliate).await;
    let b_delivery = first_delivery(&app, &b_owner, &b_endpoint).await;
    // A's log (its owner's e-mail on every entry) must show to A's owner alone.
    let a_audit = first_audit_entry(&app, &alpha.owner).await;
    let b_audit = first_audit_entry(&app, &b_owner).await;
    let a_job = import_job(&app, &alpha.owner).await;
    secret(&mut alpha.secrets, "import job id", &json!(a_job));
    let b_job = import_job(&app, &b_owner).await;

    let before = snapshot(&app, &alpha.owner).await;

    // ---- The schema.
    let introspection = app.graphql(Some(&b_owner), INTROSPECTION, json!({})).await;
    let schema = Schema::from_introspection(&introspection);
    let mut counter = 0;

    // ---- Pass 1: tenant B's owner against all of tenant A.
    let tenant_book = Book {
        victims: BTreeMap::from([
            (Entity::Affiliate, vec![id(&kestrel), id(&osprey), id(&heron)]),
            (Entity::Campaign, vec![id(&falcon), id(&merlin)]),
            (Entity::TrackingLink, vec![id(&kestrel_falcon), id(&osprey_merlin)]),
            (Entity::ApiKey, vec![id(&condor["apiKey"])]),
            (Entity::Conversion, vec![conversion_id(&kestrel_conversion), conversion_id(&osprey_conversion)]),
            (Entity::User, vec![id(&a_me["me"]["user"])]),
            (Entity::Plan, vec![alpha_plan.clone()]),
            (Entity::LedgerEntry, vec![kestrel_entry.clone(), osprey_entry.clone()]),
            (Entity::Statement, vec![kestrel_statement.clone(), osprey_statement.clone()]),
            (Entity::Endpoint, vec![kestrel_endpoint.clone(), osprey_endpoint.clone()]),
            (Entity::Delivery, vec![kestrel_delivery.clone(), osprey_delivery.clone()]),
            (Entity::AuditEntry, vec![a_audit.clone()]),
            (Entity::ImportJob, vec![a_job.clone()]),
        ]),
        own: BTreeMap::from([
            (Entity::Affiliate, id(&b_affiliate)),
            (Entity::Campaign, id(&b_campaign)),
            (Entity::TrackingLink, id(&b_link)),
            (Entity::ApiKey, id(&b_key["apiKey"])),
            (Entity::Conversion, conversion_id(&b_conversion)),
            (Entity::User, id(&b_me["me"]["user"])),
            (Entity::Plan, b_plan),
            (Entity::LedgerEntry, b_entry),
            (Entity::Statement, b_statement),
            (Entity::Endpoint, b_endpoint),
            (Entity::Delivery, b_delivery),
            (Entity::AuditEntry, b_audit),
            (Entity::ImportJob, b_job),
        ]),
        period: period.clone(),
    };
    let probes = match generate(&schema, &tenant_book, &mut counter) {
        Ok(probes) => probes,
        Err(problems) => {
            panic!("the isolation generator cannot cover the schema:\n- {}", problems.join("\n- "))
        }
    };
    let (feeds, probes): (Vec<Probe>, Vec<Probe>) =
        probes.into_iter().partition(|p| Some(&p.root) == schema.subscription.as_ref());
    let mut failures = control(&app, &alpha.owner, &probes, &alpha.secrets, None, "tenant A owner").await;
    failures.extend(attack(&app, &b_owner, &probes, &alpha.secrets, &["NOT_FOUND"], "tenant B owner").await);
    for (n, feed) in feeds.iter().enumerate() {
        // While B watches, a conversion of A's happens between two of B's own.
        let trigger = format!("ALPHA-LIVE-A{n}");
        let mark = format!("BRAVO-MARK-{n}");
        let seen = watch(
            &app,
            &b_owner,
            &feed.text,
            (&bravo_key, &b_link, &mark),
            (&alpha_key, &kestrel_falcon, &trigger),
        )
        .await;
        failures.extend(feed_leaks(&seen, &alpha.secrets, &trigger, "tenant B owner", feed));
        let (control_trigger, control_mark) = (format!("{trigger}-control"), format!("ALPHA-MARK-{n}"));
        let visible = (alpha_key.as_str(), &osprey_merlin, control_mark.as_str());
        let control =
            watch(&app, &alpha.owner, &feed.text, visible, (&alpha_key, &kestrel_falcon, &control_trigger))
                .await;
        failures.extend(feed_control(&control, &control_trigger, "tenant A owner", feed));
    }

    // Coverage: every non-exempt root field was run, with the victim's IDs wherever it takes IDs.
    let mut covered: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for probe in probes.iter().chain(&feeds) {
        let entry = covered.entry(format!("{}.{}", probe.root, probe.field)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(!probe.slots.is_empty());
        entry.2 += usize::from(probe.touches_victim());
    }
    for (root, _, field) in schema.root_fields() {
        let key = format!("{root}.{}", field.name);
        let exempt = EXEMPT.iter().any(|(r, f, _)| *r == root && *f == field.name);
        match covered.get(&key) {
            None if !exempt => failures.push(format!("{key} was not probed")),
            Some((_, with_ids, victim)) if *with_ids > 0 && *victim == 0 => {
                failures.push(format!("{key} takes IDs but was never run with the victim's"));
            }
            _ => {}
        }
    }
    let probed: Vec<&String> = covered.keys().collect();
    assert!(probed.len() >= 20, "suspiciously few root fields probed: {probed:?}");

    // ---- Pass 2: Osprey (affiliate 2 of tenant A) against Kestrel's branch.
    let affiliate_book = Book {
        victims: BTreeMap::from([
            (Entity::Affiliate, vec![id(&kestrel), id(&heron)]),
            (Entity::Campaign, vec![id(&falcon)]),
            (Entity::TrackingLink, vec![id(&kestrel_falcon), id(&heron_falcon), id(&kestrel_merlin)]),
            (Entity::ApiKey, vec![id(&condor["apiKey"])]),
            (Entity::Conversion, vec![conversion_id(&kestrel_conversion)]),
            (Entity::User, vec![id(&a_me["me"]["user"])]),
            (Entity::Plan, vec![alpha_plan.clone()]),
            (Entity::LedgerEntry, vec![kestrel_entry.clone()]),
            (Entity::Statement, vec![kestrel_statement.clone()]),
            (Entity::Endpoint, vec![kestrel_endpoint.clone()]),
            (Entity::Delivery, vec![kestrel_delivery.clone()]),
            (Entity::AuditEntry, vec![a_audit.clone()]),
            (Entity::ImportJob, vec![a_job.clone()]),
        ]),
        own: BTreeMap::from([
            (Entity::Affiliate, id(&osprey)),
            (Entity::Campaign, id(&merlin)),
            (Entity::TrackingLink, id(&osprey_merlin)),
            (Entity::Conversion, conversion_id(&osprey_conversion)),
            (Entity::User, id(&osprey_login["data"]["login"]["user"])),
            (Entity::Plan, alpha_plan.clone()),
            (Entity::LedgerEntry, osprey_entry.clone()),
            (Entity::Statement, osprey_statement.clone()),
            (Entity::Endpoint, osprey_endpoint.clone()),
            (Entity::Delivery, osprey_delivery.clone()),
        ]),
        period: period.clone(),
    };
    let probes = generate(&schema, &affiliate_book, &mut counter).expect("generated once already");
    let (feeds, probes): (Vec<Probe>, Vec<Probe>) =
        probes.into_iter().partition(|p| Some(&p.root) == schema.subscription.as_ref());
    for (n, feed) in feeds.iter().enumerate() {
        if STAFF_ONLY_FEEDS.contains(&feed.field.as_str()) {
            failures.extend(refused_to_affiliate(&app, &osprey_token, feed).await);
            continue;
        }
        let trigger = format!("ALPHA-LIVE-K{n}");
        let mark = format!("ALPHA-OSPREY-MARK-{n}");
        let visible = (alpha_key.as_str(), &osprey_merlin, mark.as_str());
        let seen =
            watch(&app, &osprey_token, &feed.text, visible, (&alpha_key, &kestrel_falcon, &trigger)).await;
        failures.extend(feed_leaks(&seen, &kestrel_side, &trigger, "affiliate Osprey", feed));
        let (control_trigger, control_mark) =
            (format!("{trigger}-control"), format!("ALPHA-KESTREL-MARK-{n}"));
        let visible = (alpha_key.as_str(), &kestrel_merlin, control_mark.as_str());
        let control =
            watch(&app, &kestrel_token, &feed.text, visible, (&alpha_key, &kestrel_falcon, &control_trigger))
                .await;
        failures.extend(feed_control(&control, &control_trigger, "affiliate Kestrel", feed));
    }
    failures.extend(
        control(&app, &kestrel_token, &probes, &kestrel_side, Some("FORBIDDEN"), "affiliate Kestrel").await,
    );
    failures.extend(
        attack(&app, &osprey_token, &probes, &kestrel_side, &["NOT_FOUND", "FORBIDDEN"], "affiliate Osprey")
            .await,
    );
    // Osprey does see its own branch: the attack above was not blind.
    let mine = app
        .ok(
            Some(&osprey_token),
            "{ affiliates { nodes { id } } trackingLinks { nodes { id } } campaigns { nodes { id } } }",
            json!({}),
        )
        .await;
    let expected = json!({
        "affiliates": { "nodes": [{ "id": osprey["id"] }, { "id": plover["id"] }] },
        "trackingLinks": { "nodes": [{ "id": osprey_merlin["id"] }] },
        "campaigns": { "nodes": [{ "id": merlin["id"] }] },
    });
    if mine != expected {
        failures.push(format!(
            "affiliate Osprey's own view is wrong:\n  expected: {expected}\n  got:      {mine}"
        ));
    }

    // ---- Tenant A is exactly as it was, and its people can still work.
    let after = snapshot(&app, &alpha.owner).await;
    if before != after {
        failures.push(format!("tenant A's data changed:\n  before: {before}\n  after:  {after}"));
    }
    for token in [&kestrel_token, &osprey_token] {
        assert_eq!(app.ok(Some(token), "{ me { role } }", json!({})).await["me"]["role"], "AFFILIATE");
    }

    assert!(failures.is_empty(), "{} isolation failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The generator refuses what it does not understand, so a field added later cannot slip
/// through unprobed. (No server: a hand-written introspection answer.)
#[test]
fn the_generator_demands_to_be_taught_unknown_fields() {
    let id_type = json!({ "kind": "NON_NULL", "name": null, "ofType": { "kind": "SCALAR", "name": "ID", "ofType": null } });
    let string = json!({ "kind": "SCALAR", "name": "String", "ofType": null });
    let object = |name: &str| json!({ "kind": "NON_NULL", "name": null, "ofType": { "kind": "OBJECT", "name": name, "ofType": null } });
    let answer = json!({ "data": { "__schema": {
        "queryType": { "name": "Query" }, "mutationType": null, "subscriptionType": { "name": "Subscription" },
        "types": [
            { "kind": "OBJECT", "name": "Query", "fields": [
                { "name": "payout", "args": [{ "name": "id", "type": id_type }], "type": object("Conversion") },
                { "name": "clicks", "args": [{ "name": "source", "type": string }], "type": object("Conversion") },
                { "name": "affiliate", "args": [{ "name": "id", "type": id_type }], "type": object("Conversion") },
            ], "inputFields": null, "enumValues": null },
            { "kind": "OBJECT", "name": "Conversion", "fields": [
                { "name": "id", "args": [], "type": id_type },
            ], "inputFields": null, "enumValues": null },
            { "kind": "OBJECT", "name": "Subscription", "fields": [
                { "name": "feed", "args": [{ "name": "region", "type": string }], "type": object("Conversion") },
            ], "inputFields": null, "enumValues": null },
            { "kind": "SCALAR", "name": "ID", "fields": null, "inputFields": null, "enumValues": null },
            { "kind": "SCALAR", "name": "String", "fields": null, "inputFields": null, "enumValues": null },
        ]
    } } });
    let schema = Schema::from_introspection(&answer);
    let book = Book {
        victims: BTreeMap::from([(
            Entity::Affiliate,
            vec!["aff_0192f0c0a0a07000800000000000beef".to_owned()],
        )]),
        own: BTreeMap::new(),
        period: "2026-10".into(),
    };
    let problems = generate(&schema, &book, &mut 0).err().expect("the generator must refuse");
    let all = problems.join("\n");
    assert!(all.contains("Query.payout(id)"), "{all}");
    assert!(all.contains("Query.clicks(source)"), "{all}");
    assert!(all.contains("Subscription.feed(region)"), "{all}");
    assert!(all.contains("exempt field Mutation.signUp no longer exists"), "{all}");
    assert!(all.contains("Teach the isolation generator"), "{all}");
    assert!(!all.contains("Query.affiliate("), "known fields are filled: {all}");
}

/// `GET /reports/stats.csv` keeps tenants and affiliates apart like `stats` does (the GraphQL
/// field is probed by the generator above): another tenant's or affiliate's rows never appear,
/// not even when filtered on by ID.
#[tokio::test]
async fn the_stats_csv_route_is_tenant_and_affiliate_scoped() {
    use clickledger_e2e::tenant::Tenant;

    let app = spawn_app!().await;
    let (a, b) = (Tenant::create(&app, "csv-victim").await, Tenant::create(&app, "csv-attacker").await);
    let mut affiliates = Vec::new();
    for (tenant, names) in [(&a, ["kite", "hawk"]), (&b, ["wren", "lark"])] {
        let campaign = tenant.create_campaign("Offer", json!({})).await;
        tenant.create_default_plan(&campaign, "Leads", json!({ "currency": "USD", "cpl": "2.5" })).await;
        for name in names {
            let affiliate = tenant.create_affiliate(name, true).await;
            let link = tenant.create_link(&affiliate, &campaign).await;
            let click = app.click(&link.code, "sub1=secret-sub", None).await.click_id();
            app.wait_for_recorded_clicks((affiliates.len() + 1) as f64).await;
            tenant.postback_ok(&[("click_id", &click), ("player_id", name), ("event", "registration")]).await;
            affiliates.push(affiliate);
        }
    }
    let (kite, hawk, wren, lark) = (&affiliates[0], &affiliates[1], &affiliates[2], &affiliates[3]);
    let from = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let csv = |token: String, filter: Option<String>| {
        let (from, to) = (from.clone(), to.clone());
        let app = &app;
        async move {
            let mut query = vec![("from", from), ("to", to), ("groupBy", "AFFILIATE,LINK".to_owned())];
            if let Some(affiliate) = filter {
                query.push(("filter.AFFILIATE", affiliate));
            }
            let response = app
                .client
                .get(app.url("/reports/stats.csv"))
                .query(&query)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };

    // Control: the victim's owner sees both its affiliates.
    let own = csv(a.token.clone(), None).await;
    assert!(own.contains(kite.as_str()) && own.contains(hawk.as_str()), "{own}");
    // Another tenant's owner: its own rows only, even filtering on the victim's affiliate.
    let other = csv(b.token.clone(), None).await;
    assert!(
        other.contains(wren.as_str()) && !other.contains(kite.as_str()) && !other.contains(hawk.as_str()),
        "{other}"
    );
    let probing = csv(b.token.clone(), Some(kite.clone())).await;
    assert_eq!(probing.lines().count(), 1, "only the header: {probing}");
    // An affiliate: its own rows only, even filtering on its neighbour.
    let wren_token = b.login_affiliate("wren").await;
    let mine = csv(wren_token.clone(), None).await;
    assert!(mine.contains(wren.as_str()) && !mine.contains(lark.as_str()), "{mine}");
    let neighbour = csv(wren_token.clone(), Some(lark.clone())).await;
    assert_eq!(neighbour.lines().count(), 1, "only the header: {neighbour}");

    // The exports: a tenant's conversions and ledger entries, an affiliate's own only.
    let export = |path: &'static str, token: String, query: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let response =
                app.client.get(app.url(path)).query(&query).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let period = vec![("from", from.clone()), ("to", to.clone())];
    let own = export("/reports/conversions.csv", a.token.clone(), period.clone()).await;
    assert!(own.contains(kite.as_str()) && own.contains(hawk.as_str()), "{own}");
    let other = export("/reports/conversions.csv", b.token.clone(), period.clone()).await;
    assert!(
        other.contains(wren.as_str()) && !other.contains(kite.as_str()) && !other.contains("kite"),
        "{other}"
    );
    let mine = export("/reports/conversions.csv", wren_token.clone(), period).await;
    assert!(
        mine.contains(wren.as_str()) && !mine.contains(lark.as_str()) && !mine.contains("lark"),
        "{mine}"
    );
    let month = vec![("period", chrono::Utc::now().format("%Y-%m").to_string())];
    let own = export("/reports/commissions.csv", a.token.clone(), month.clone()).await;
    assert!(own.contains(kite.as_str()) && own.contains(hawk.as_str()), "{own}");
    let probing = export(
        "/reports/commissions.csv",
        b.token.clone(),
        [month.clone(), vec![("affiliateId", kite.clone())]].concat(),
    )
    .await;
    assert_eq!(probing.lines().count(), 1, "only the header: {probing}");
    let neighbour =
        export("/reports/commissions.csv", wren_token, [month, vec![("affiliateId", lark.clone())]].concat())
            .await;
    assert_eq!(neighbour.lines().count(), 1, "only the header: {neighbour}");
}

/// `statsLive` keeps tenants and affiliates apart like `stats`: another tenant's or a
/// neighbour's rows never appear, not in the snapshot (even filtered on by ID) and not as a
/// push when they change.
#[tokio::test]
async fn stats_live_is_tenant_and_affiliate_scoped() {
    use clickledger_e2e::tenant::Tenant;

    const STATS_LIVE: &str = "subscription($input: StatsInput!) { statsLive(input: $input) {
        snapshot totals { clicks registrations } rows { affiliateId metrics { clicks } } removedRows { affiliateId }
    } }";
    let app = spawn_app!().await;
    let (a, b) = (Tenant::create(&app, "live-victim").await, Tenant::create(&app, "live-attacker").await);
    let mut affiliates = Vec::new();
    let mut links = Vec::new();
    for (tenant, names) in [(&a, ["kite", "hawk"]), (&b, ["wren", "lark"])] {
        let campaign = tenant.create_campaign("Offer", json!({})).await;
        for name in names {
            let affiliate = tenant.create_affiliate(name, true).await;
            let link = tenant.create_link(&affiliate, &campaign).await;
            app.click(&link.code, "", None).await.click_id();
            app.wait_for_recorded_clicks((affiliates.len() + 1) as f64).await;
            affiliates.push(affiliate);
            links.push(link);
        }
    }
    let (kite, hawk, wren, lark) = (&affiliates[0], &affiliates[1], &affiliates[2], &affiliates[3]);
    let input = |filter: Option<&String>| {
        let now = chrono::Utc::now();
        let mut input = json!({
            "from": (now - chrono::Duration::days(1)).to_rfc3339(),
            "to": (now + chrono::Duration::days(1)).to_rfc3339(),
            "groupBy": ["AFFILIATE"],
        });
        if let Some(affiliate) = filter {
            // The probes ask for a rolling period (LAST_24_HOURS): scoped all the same.
            input = json!({
                "period": "LAST_24_HOURS",
                "groupBy": ["AFFILIATE"],
                "filters": [{ "dimension": "AFFILIATE", "values": [affiliate] }],
            });
        }
        json!({ "input": input })
    };
    let open = |token: String, filter: Option<&String>| {
        let variables = input(filter);
        let app = &app;
        async move {
            let mut ws = GqlWs::connect(app, Some(&token), WsProtocol::TransportWs).await;
            let sub = ws.subscribe(STATS_LIVE, variables).await;
            let snapshot = ws.expect_data(&sub, Duration::from_secs(10)).await["statsLive"].to_string();
            (ws, sub, snapshot)
        }
    };

    // Control: the victim's owner sees both its affiliates, and a change of theirs is pushed.
    let (mut control, control_sub, own) = open(a.token.clone(), None).await;
    assert!(own.contains(kite.as_str()) && own.contains(hawk.as_str()), "{own}");
    // Another tenant's owner, one watching everything and one filtering on the victim's
    // affiliate; an affiliate filtering on its neighbour.
    let (mut other, other_sub, everything) = open(b.token.clone(), None).await;
    assert!(everything.contains(wren.as_str()), "{everything}");
    assert!(!everything.contains(kite.as_str()) && !everything.contains(hawk.as_str()), "{everything}");
    let (mut probing, probing_sub, filtered) = open(b.token.clone(), Some(kite)).await;
    assert!(!filtered.contains(kite.as_str()) && filtered.contains(r#""clicks":0"#), "{filtered}");
    let wren_token = b.login_affiliate("wren").await;
    let (mut neighbour, neighbour_sub, nosy) = open(wren_token, Some(lark)).await;
    assert!(!nosy.contains(lark.as_str()) && nosy.contains(r#""clicks":0"#), "{nosy}");

    // The victim's conversion and the neighbour's click: only the victim's owner hears.
    let kite_click = app.click(&links[0].code, "", None).await.click_id();
    app.click(&links[3].code, "", None).await.click_id();
    app.wait_for_recorded_clicks(6.0).await;
    a.postback_ok(&[("click_id", &kite_click), ("player_id", "kite-live"), ("event", "registration")]).await;
    let pushed = control.expect_data(&control_sub, Duration::from_secs(10)).await.to_string();
    assert!(pushed.contains(kite.as_str()), "{pushed}");
    let quiet = Duration::from_millis(1500);
    // B's owner hears of lark's click (its own), never of A's rows or A's registration.
    while let Some(update) = other.next_for(&other_sub, quiet).await {
        let update = update.expect("an update").to_string();
        assert!(!update.contains(kite.as_str()) && !update.contains(hawk.as_str()), "{update}");
        assert!(update.contains(r#""registrations":0"#), "tenant A's registration counted: {update}");
    }
    if let Some(update) = probing.next_for(&probing_sub, quiet).await {
        panic!("tenant B's owner filtering on kite heard of tenant A's conversion: {update:?}");
    }
    if let Some(update) = neighbour.next_for(&neighbour_sub, quiet).await {
        panic!("wren heard of lark's click: {update:?}");
    }
}
