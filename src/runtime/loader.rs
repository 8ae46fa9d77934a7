//! Turns config files into a validated plan: which components exist, their
//! decoded arguments, and the order to start them in. Nothing runs here, so
//! `check` and a failed reload leave the running relay untouched.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::graph::{Dependency, order_components};
use super::registry::{Args, Kind, is_alloy_only};
use crate::admin::HttpBlock;
use crate::config::{
    BlockDecoder, DecodeBlock, Diagnostic, Evaluated, File, SourceMap, Span, Stmt, body_references,
    parse,
};
use crate::pipeline::Receiver;
use crate::runtime::exports::ExportScope;
use crate::telemetry::{LogFormat, LogLevel};

/// A validated config, ready to apply.
pub struct Plan {
    /// Components in start order: every component after those it references.
    pub components: Vec<PlannedComponent>,
    pub logging: Option<LoggingConfig>,
    /// The `http` block, for the admin server.
    pub http: Option<HttpBlock>,
    /// The receiver export of each component that has one.
    pub receivers: HashMap<String, Receiver>,
}

pub struct PlannedComponent {
    pub id: String,
    pub kind: Kind,
    pub args: Args,
    /// The arguments as evaluated, for display (secrets hold no value).
    pub evaluated: Vec<Evaluated>,
    /// The components this one references, in id order.
    pub references: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    pub level: Option<LogLevel>,
    pub format: Option<LogFormat>,
}

/// Why a config could not be loaded, rendered for the user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config directory {0} holds no *.alloy files")]
    EmptyDirectory(PathBuf),
    #[error("{rendered}")]
    Invalid { count: usize, rendered: String },
}

/// The config `pyroscope-relay run` uses when given no path.
pub const EMBEDDED_CONFIG: &str = include_str!("../../examples/quickstart.alloy");
const EMBEDDED_NAME: &str = "<embedded quickstart.alloy>";

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A `.alloy` file, or a directory whose `*.alloy` files are merged.
    Path(PathBuf),
    /// [`EMBEDDED_CONFIG`].
    Embedded,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Path(p) => write!(f, "{}", p.display()),
            ConfigSource::Embedded => f.write_str(EMBEDDED_NAME),
        }
    }
}

/// Reads a config source into a source map.
pub fn read_config(source: &ConfigSource) -> Result<SourceMap, LoadError> {
    match source {
        ConfigSource::Path(path) => read_sources(path),
        ConfigSource::Embedded => {
            let mut map = SourceMap::new();
            map.add(EMBEDDED_NAME, EMBEDDED_CONFIG);
            Ok(map)
        }
    }
}

/// Reads `path` (a file, or a directory whose `*.alloy` files are merged)
/// into a source map, in file-name order.
pub fn read_sources(path: &Path) -> Result<SourceMap, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut map = SourceMap::new();
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "alloy"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(LoadError::EmptyDirectory(path.to_path_buf()));
        }
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
                path: file.clone(),
                source,
            })?;
            map.add(file.display().to_string(), text);
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        map.add(path.display().to_string(), text);
    }
    Ok(map)
}

/// Parses and validates every source in `map`. `known_receivers` are the
/// receiver exports of the running components, reused so that a reload
/// keeps every `forward_to` pointing at the same, live handle.
pub fn plan(
    map: &SourceMap,
    known_receivers: &HashMap<String, Receiver>,
) -> Result<Plan, LoadError> {
    let mut diags = Vec::new();
    let files: Vec<File> = map
        .file_ids()
        .map(|id| {
            let (file, mut d) = parse(map, id);
            diags.append(&mut d);
            file
        })
        .collect();
    // Expressions that failed to parse cannot be evaluated; report the
    // syntax errors alone rather than follow-on errors about them.
    if !diags.is_empty() {
        return Err(render(map, diags));
    }

    let declared = collect_components(&files, &mut diags);
    let logging = collect_once::<LoggingConfig>(&files, "logging", &mut diags);
    let http = collect_once::<HttpBlock>(&files, "http", &mut diags);

    let mut receivers = HashMap::new();
    let mut scope = ExportScope::default();
    for c in declared.values() {
        if c.kind.exports().contains(&"receiver") {
            let receiver = known_receivers
                .get(&c.id)
                .cloned()
                .unwrap_or_else(|| Receiver::new(&c.id));
            scope.insert_receiver(&receiver);
            receivers.insert(c.id.clone(), receiver);
        }
    }

    let dependencies = dependencies(&declared, &mut diags);
    let mut references: HashMap<String, Vec<String>> = dependencies
        .iter()
        .map(|d| {
            let mut targets: Vec<String> = d.targets.iter().map(|(t, _)| t.clone()).collect();
            targets.sort();
            targets.dedup();
            (d.id.clone(), targets)
        })
        .collect();
    let order = order_components(&dependencies, &mut diags);

    let mut components = Vec::new();
    for id in order {
        let c = &declared[&id];
        let mut d = BlockDecoder::new(c.body, c.header_span, &scope, &mut diags);
        let args = c.kind.decode(&mut d);
        let evaluated = d.finish();
        // Components are decoded in dependency order, so a reference to
        // `pyroscope.relabel.<label>.rules` sees the rules decoded here.
        if let Args::Relabel(relabel) = &args {
            scope.insert(&id, "rules", rules_export(&id, &relabel.rules));
        }
        components.push(PlannedComponent {
            references: references.remove(&id).unwrap_or_default(),
            id,
            kind: c.kind,
            args,
            evaluated,
        });
    }

    if !diags.is_empty() {
        return Err(render(map, diags));
    }
    Ok(Plan {
        components,
        logging,
        http,
        receivers,
    })
}

/// Alloy's `RelabelRules` capsule: the rules as configured.
fn rules_export(id: &str, rules: &[crate::relabel::RuleConfig]) -> crate::config::Value {
    let capsule = crate::config::Capsule::new("RelabelRules", id, rules.to_vec());
    crate::config::Value::Capsule(capsule)
}

fn render(map: &SourceMap, mut diags: Vec<Diagnostic>) -> LoadError {
    diags.sort_by_key(|d| (d.span.file, d.span.start));
    diags.dedup();
    let rendered = diags
        .iter()
        .map(|d| map.render(d))
        .collect::<Vec<_>>()
        .join("\n");
    LoadError::Invalid {
        count: diags.len(),
        rendered,
    }
}

struct DeclaredComponent<'a> {
    id: String,
    kind: Kind,
    header_span: Span,
    body: &'a crate::config::Body,
}

fn collect_components<'a>(
    files: &'a [File],
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, DeclaredComponent<'a>> {
    let mut declared: BTreeMap<String, DeclaredComponent<'a>> = BTreeMap::new();
    for stmt in files.iter().flat_map(|f| f.body.stmts.iter()) {
        let block = match stmt {
            Stmt::Attribute(attr) => {
                diags.push(Diagnostic::new(
                    attr.name_span,
                    format!(
                        "unexpected attribute \"{}\" at the top level: only blocks may appear here",
                        attr.name
                    ),
                ));
                continue;
            }
            Stmt::Block(block) if TOP_LEVEL_BLOCKS.contains(&block.name.as_str()) => continue,
            Stmt::Block(block) => block,
        };
        let Some(kind) = Kind::from_name(&block.name) else {
            diags.push(unknown_component(&block.name, block.name_span));
            continue;
        };
        let Some(label) = &block.label else {
            diags.push(Diagnostic::new(
                block.name_span,
                format!(
                    "component {} must have a label, e.g. {} \"default\" {{ ... }}",
                    block.name, block.name
                ),
            ));
            continue;
        };
        let id = format!("{}.{label}", block.name);
        let header_span = block.label_span.unwrap_or(block.name_span);
        if declared.contains_key(&id) {
            diags.push(Diagnostic::new(
                header_span,
                format!("component {id} is declared more than once"),
            ));
            continue;
        }
        declared.insert(
            id.clone(),
            DeclaredComponent {
                id,
                kind,
                header_span,
                body: &block.body,
            },
        );
    }
    declared
}

fn unknown_component(name: &str, span: Span) -> Diagnostic {
    if is_alloy_only(name) {
        return Diagnostic::new(
            span,
            format!("component {name} is not supported by pyroscope-relay"),
        );
    }
    let names = Kind::ALL.map(Kind::name);
    let closest = names
        .iter()
        .map(|n| (strsim::jaro_winkler(n, name), *n))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let diag = Diagnostic::new(span, format!("unknown component {name}"));
    match closest {
        Some((_, n)) => diag.with_help(format!("did you mean {n}?")),
        None => diag,
    }
}

/// Blocks that configure the process rather than declare a component.
const TOP_LEVEL_BLOCKS: [&str; 2] = ["logging", "http"];

/// The one block called `name`, decoded; a second is an error.
fn collect_once<T: DecodeBlock>(
    files: &[File],
    name: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let scope = ExportScope::default();
    let mut found: Option<T> = None;
    for stmt in files.iter().flat_map(|f| f.body.stmts.iter()) {
        let Stmt::Block(block) = stmt else { continue };
        if block.name != name {
            continue;
        }
        if found.is_some() {
            diags.push(Diagnostic::new(
                block.name_span,
                format!("block \"{name}\" may only be given once"),
            ));
            continue;
        }
        if let Some(span) = block.label_span {
            diags.push(Diagnostic::new(
                span,
                format!("block \"{name}\" takes no label"),
            ));
        }
        let mut d = BlockDecoder::new(&block.body, block.name_span, &scope, diags);
        let config = T::decode(&mut d);
        d.finish();
        found = Some(config);
    }
    found
}

impl DecodeBlock for LoggingConfig {
    fn decode(d: &mut BlockDecoder<'_>) -> Self {
        let parsed = |d: &mut BlockDecoder<'_>, name: &str| {
            let text: Option<String> = d.optional(name);
            let span = d.attr_span(name);
            (text, span)
        };
        let (level_text, level_span) = parsed(d, "level");
        let (format_text, format_span) = parsed(d, "format");
        let level = level_text.and_then(|t| match t.parse() {
            Ok(l) => Some(l),
            Err(e) => {
                d.error_at(level_span.unwrap_or(d.header_span()), e);
                None
            }
        });
        let format = format_text.and_then(|t| match t.parse() {
            Ok(f) => Some(f),
            Err(e) => {
                d.error_at(format_span.unwrap_or(d.header_span()), e);
                None
            }
        });
        // Alloy's `write_to` has no use here: logs go to stderr.
        LoggingConfig { level, format }
    }
}

/// Resolves every reference in each component's body to the component it
/// names, reporting references that resolve to nothing.
fn dependencies(
    declared: &BTreeMap<String, DeclaredComponent<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Dependency> {
    let mut deps = Vec::new();
    for c in declared.values() {
        let mut targets = Vec::new();
        for reference in body_references(c.body) {
            match resolve_reference(&reference.path, declared) {
                Ok(target) => targets.push((target.to_string(), reference.span)),
                Err(message) => diags.push(Diagnostic::new(reference.span, message)),
            }
        }
        deps.push(Dependency {
            id: c.id.clone(),
            span: c.header_span,
            targets,
        });
    }
    deps
}

fn resolve_reference<'a>(
    path: &[String],
    declared: &'a BTreeMap<String, DeclaredComponent<'_>>,
) -> Result<&'a str, String> {
    let joined = path.join(".");
    for split in (1..path.len()).rev() {
        let id = path[..split].join(".");
        if let Some(c) = declared.get(&id) {
            let export = &path[split];
            if !c.kind.exports().contains(&export.as_str()) {
                return Err(match c.kind.exports() {
                    [] => format!("component {id} has no exports; {joined} cannot be referenced"),
                    names => format!(
                        "component {id} has no export \"{export}\"; it exports: {}",
                        names.join(", ")
                    ),
                });
            }
            return Ok(c.id.as_str());
        }
    }
    let looks_like_component = path.len() >= 3
        && (Kind::from_name(&path[..2].join(".")).is_some() || is_alloy_only(&path[..2].join(".")));
    if looks_like_component {
        let id = path[..3].join(".");
        return Err(format!(
            "component \"{id}\" does not exist; {joined} cannot be resolved"
        ));
    }
    Err(format!("identifier \"{}\" does not exist", path[0]))
}
