//! caravan-jobspec: HCL2 jobspecs to the Nomad JSON Job.
//!
//! This crate owns reading what `nomad job run file.nomad.hcl` reads: it turns an HCL2
//! jobspec into the job `POST /v1/jobs/parse` returns, as Nomad's `jobspec2` package does,
//! for the gateway and the CLI. It does no I/O of its own unless the caller allows the
//! file functions (`file()`, `fileexists()`, ...).
//!
//! The result is *not* canonicalised: fields the jobspec does not set keep their zero
//! values (call `Job::canonicalize` for Nomad's defaults). The exceptions, where
//! `caravan_structs` has no "unset" for a field whose zero would change its meaning, are
//! documented in the `job` module: a group without `count` gets 1 (or its scaling `min`),
//! an affinity or spread without `weight` gets 50, a `periodic` block is enabled unless it
//! says otherwise, and job-level `reschedule`/`migrate` blocks are merged into each group.
//!
//! # Layout
//!
//! - [`parse`], [`ParseOptions`], [`parse_variables_text`]: the entry points (this file).
//! - `variables`: `variable`/`variables` blocks, values from var files, `-var` and the
//!   environment, validation rules, `locals`.
//! - `job`: the jobspec schema (every block and attribute, JSON names and types) and
//!   `jobspec2`'s rewrites.
//! - `decode`: schema checking of bodies, `dynamic` blocks, attribute type conversion.
//! - `eval`: the HCL expression and template evaluator, with Nomad's rule that unknown
//!   references (`${attr.kernel.name}`, `${NOMAD_PORT_http}`) stay as text.
//! - `functions`: the HCL function library.
//! - `value`, `duration`: HCL values and types; Go durations.
//! - `diag`: positions and diagnostics (`input.hcl:3,5-8: Summary; Detail`).
//!
//! # Coverage
//!
//! Top level: `job` (exactly one), `variable`, `variables`, `locals`; `dynamic` blocks
//! wherever a block type is allowed. Job: `region`, `namespace`, `id`, `name`, `type`,
//! `priority`, `all_at_once`, `datacenters`, `node_pool`, `consul_token`, `vault_token`,
//! `meta`, `constraint`, `affinity`, `spread`, `update`, `migrate`, `reschedule`,
//! `periodic`, `parameterized`, `multiregion`, `ui`, `vault`, `group`, and job-level `task`
//! blocks (each a group of its own). Group: `count`, `shutdown_delay`,
//! `stop_after_client_disconnect`, `max_client_disconnect`, `prevent_reschedule_on_lost`,
//! `meta`, placement blocks, `restart`, `reschedule`, `disconnect`, `ephemeral_disk`,
//! `update`, `migrate`, `network` (`port`, `reserved_ports`, `dns`), `service` (`check`,
//! `check_restart`, `header`, `connect` kept opaque), `volume`, `scaling`, `consul`, `vault`,
//! `task`. Task: `driver`, `user`, `config` (free-form), `env`, `meta`, `resources` (`cpu`,
//! `cores`, `memory`, `memory_max`, `disk`, `device`, `network`), `logs`, `kill_timeout`,
//! `kill_signal`, `shutdown_delay`, `leader`, `kind`, `lifecycle`, `artifact`, `template`
//! (`wait`, `change_script`), `service`, `restart`, `volume_mount`, `dispatch_payload`,
//! `vault`, `consul`, `identity`, `csi_plugin`, `scaling "cpu"`/`"mem"`.
//!
//! Not supported (an "Unsupported argument/block type" error, as for any unknown name):
//! `action` and `schedule` task blocks, `numa` and `secrets` resources, `cni` network
//! blocks, a port's `ignore_collision`, a service's `tagged_addresses`, `identity`, `weights`
//! and `cluster`, a check's `notes`; JSON jobspecs and the HCL1 parser.
//!
//! # Errors
//!
//! [`JobspecError`] carries every [`Diagnostic`] found, each printed as HCL prints them;
//! the HTTP layer answers 400 with `Failed to parse job: <error>`.

mod decode;
mod diag;
mod duration;
mod eval;
mod functions;
mod job;
mod value;
mod variables;

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use caravan_structs::Job;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Body, Structure};

pub use diag::{Diagnostic, Pos, SourceRange};

use decode::{BlockRef, BlockType, Decoder};
use diag::SourceFile;
use eval::{Evaluator, FsAccess, Scope};
use variables::Variables;

/// How to parse: variable values and what the file functions may do.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// `-var name=value` arguments. A value is a literal string for `string`, `number` and
    /// untyped variables, an HCL expression (`["a","b"]`) for other types.
    pub variables: BTreeMap<String, String>,
    /// Contents of variable files (`name = value` lines, HCL syntax), lowest precedence
    /// first. The HTTP endpoint's `Variables` field is one of these.
    pub var_files: Vec<String>,
    /// Lets `file()`, `filebase64()`, `fileexists()`, `abspath()` ... touch the file
    /// system (relative to the jobspec's directory). `false` for the HTTP endpoint.
    pub allow_fs: bool,
    /// Values for variables that are not declared are errors (the CLI's default,
    /// `-hcl2-strict`); otherwise they are ignored (the HTTP endpoint).
    pub strict: bool,
    /// The process environment; `NOMAD_VAR_<name>` entries set variables (CLI only).
    pub env: BTreeMap<String, String>,
}

/// A jobspec that could not be parsed: every problem found, each with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_all(.diagnostics))]
pub struct JobspecError {
    pub diagnostics: Vec<Diagnostic>,
}

fn display_all(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl JobspecError {
    fn new(diagnostics: Vec<Diagnostic>) -> JobspecError {
        JobspecError { diagnostics }
    }
}

/// A syntax error from the parser as a diagnostic at its position.
pub(crate) fn syntax_error(file: &SourceFile, e: &hcl_edit::parser::Error) -> Diagnostic {
    let offset = e.location().offset().min(file.text.len());
    let rest = file.text.get(offset..).unwrap_or("");
    let msg = e.message();
    if msg.contains("redefined attribute") {
        // HCL's own wording for an argument set twice.
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let range = file.range(&(offset..offset + name.len()));
        return Diagnostic::new(
            "Attribute redefined",
            format!("The argument {name:?} was already set. Each argument may be set only once."),
            Some(range),
        );
    }
    // One character wide, or empty at a line end.
    let width = rest
        .chars()
        .next()
        .filter(|c| *c != '\n' && *c != '\r')
        .map_or(0, char::len_utf8);
    let range = file.range(&(offset..offset + width));
    let (summary, detail) = match msg.split_once("; ") {
        Some((s, d)) => (capitalize(s), format!("{}.", capitalize(d))),
        None => ("Invalid syntax".to_owned(), format!("{}.", capitalize(msg))),
    };
    Diagnostic::new(summary, detail, Some(range))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Name of the `i`th of `n` variable files in diagnostics.
fn var_file_name(i: usize, n: usize) -> String {
    if n == 1 {
        "variables.hcl".to_owned()
    } else {
        format!("variables-{}.hcl", i + 1)
    }
}

/// Parses an HCL2 jobspec into a (not canonicalised) job. `filename` names the source in
/// diagnostics (Nomad's HTTP endpoint uses `input.hcl`) and, with `allow_fs`, is where
/// relative paths of `file()` resolve from.
pub fn parse(src: &str, filename: &str, opts: &ParseOptions) -> Result<Job, JobspecError> {
    let file = SourceFile::new(filename, src);
    if src.trim_start_matches(' ').starts_with('{') {
        return Err(JobspecError::new(vec![Diagnostic::new(
            "Unsupported jobspec format",
            "JSON jobspecs are not supported; submit JSON jobs to /v1/jobs instead.",
            Some(file.range(&(0..1))),
        )]));
    }
    let mut diags = Vec::new();
    let body = hcl_edit::parser::parse_body(src).map_err(|e| syntax_error(&file, &e));
    let n = opts.var_files.len();
    let var_files: Vec<SourceFile> = opts
        .var_files
        .iter()
        .enumerate()
        .map(|(i, text)| SourceFile::new(&var_file_name(i, n), text))
        .collect();
    let mut var_bodies = Vec::new();
    for f in &var_files {
        match hcl_edit::parser::parse_body(&f.text) {
            Ok(b) => var_bodies.push(b),
            Err(e) => diags.push(syntax_error(f, &e)),
        }
    }
    let body = match body {
        Ok(b) => b,
        Err(d) => {
            diags.insert(0, d);
            return Err(JobspecError::new(diags));
        }
    };
    if !diags.is_empty() {
        return Err(JobspecError::new(diags));
    }
    let base_dir = Path::new(filename)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| Path::new(".").to_path_buf(), Path::to_path_buf);
    let fs = FsAccess {
        allowed: opts.allow_fs,
        base_dir,
    };
    decode_file(&file, &body, &var_files, &var_bodies, &fs, opts)
}

fn decode_file(
    file: &SourceFile,
    body: &Body,
    var_files: &[SourceFile],
    var_bodies: &[Body],
    fs: &FsAccess,
    opts: &ParseOptions,
) -> Result<Job, JobspecError> {
    let mut d = Decoder::new(Evaluator::new(file, fs));
    let empty = Scope::root(BTreeMap::new());
    let top = d.content(
        body,
        &empty,
        &[],
        &[
            BlockType("variable", 1),
            BlockType("variables", 0),
            BlockType("locals", 0),
            BlockType("job", 1),
        ],
    );

    let mut vars = Variables::default();
    for b in &top.blocks {
        match b.ident {
            "variable" => vars.declare_block(&mut d, b),
            "variables" => vars.declare_attrs(&mut d, b),
            _ => {}
        }
    }
    for (k, v) in &opts.env {
        if let Some(name) = k.strip_prefix("NOMAD_VAR_") {
            vars.set_from_string(&mut d.diags, name, v, "env", opts.strict);
        }
    }
    for (f, b) in var_files.iter().zip(var_bodies) {
        vars.set_from_file(&mut d.diags, f, b, opts.strict);
    }
    for (k, v) in &opts.variables {
        vars.set_from_string(&mut d.diags, k, v, "cmd", opts.strict);
    }
    if !d.diags.is_empty() {
        return Err(JobspecError::new(d.diags));
    }
    let var_values = vars.values(&mut d, fs);
    if !d.diags.is_empty() {
        return Err(JobspecError::new(d.diags));
    }
    let local_blocks: Vec<&BlockRef<'_>> = top.blocks_of("locals").collect();
    let locals = variables::evaluate_locals(&mut d, &local_blocks, &var_values);
    if !d.diags.is_empty() {
        return Err(JobspecError::new(d.diags));
    }

    let jobs: Vec<&BlockRef<'_>> = top.blocks_of("job").collect();
    let Some(first) = jobs.first() else {
        d.diags.push(Diagnostic::new(
            "Missing job block",
            "A job block is required",
            None,
        ));
        return Err(JobspecError::new(d.diags));
    };
    for extra in &jobs[1..] {
        let at = d
            .range(&first.def_span())
            .map_or_else(String::new, |r| r.to_string());
        d.error(
            "Duplicate job block",
            format!("Only one block of type \"job\" is allowed. Previous definition was at {at}."),
            &extra.def_span(),
        );
    }
    let scope: Rc<Scope> = job::job_scope(var_values, locals);
    let job_block = BlockRef {
        scope,
        ..(*first).clone()
    };
    let job_json = job::decode_job(&mut d, &job_block);
    if !d.diags.is_empty() {
        return Err(JobspecError::new(d.diags));
    }
    let mut value = serde_json::Value::Object(job_json);
    caravan_structs::default_missing_group_counts(&mut value);
    caravan_structs::fill_api_job_service_defaults(&mut value);
    serde_json::from_value::<Job>(value).map_err(|e| {
        JobspecError::new(vec![Diagnostic::new(
            "Invalid job",
            format!("The decoded job does not fit the job model: {e}."),
            None,
        )])
    })
}

/// Parses the `Variables` field of `POST /v1/jobs/parse` (variable-file syntax,
/// `name = value` per line) into `-var` style strings: strings as they are, numbers and
/// bools in their HCL spelling, lists and objects as their HCL source text. Values must be
/// constants.
pub fn parse_variables_text(s: &str) -> Result<BTreeMap<String, String>, JobspecError> {
    let file = SourceFile::new("variables.hcl", s);
    let body = hcl_edit::parser::parse_body(s)
        .map_err(|e| JobspecError::new(vec![syntax_error(&file, &e)]))?;
    let ev = Evaluator::constant(&file);
    let scope = Scope::root(BTreeMap::new());
    let mut out = BTreeMap::new();
    let mut diags = Vec::new();
    for st in body.iter() {
        match st {
            Structure::Attribute(a) => {
                let text = match ev.eval(&a.value, &scope) {
                    Ok(value::Value::String(s)) => s,
                    Ok(value::Value::Null) => "null".to_owned(),
                    Ok(v @ (value::Value::Number(_) | value::Value::Bool(_))) => {
                        v.to_str().ok().flatten().unwrap_or_default()
                    }
                    Ok(_) => source_text(&file, &a.value),
                    Err(e) => {
                        diags.push(e);
                        continue;
                    }
                };
                out.insert(a.key.as_str().to_owned(), text);
            }
            Structure::Block(b) => diags.push(Diagnostic::new(
                format!("Unexpected {:?} block", b.ident.as_str()),
                "Blocks are not allowed here.",
                hcl_edit::Span::span(&b.ident).map(|sp| file.range(&sp)),
            )),
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(JobspecError::new(diags))
    }
}

fn source_text(file: &SourceFile, e: &Expression) -> String {
    hcl_edit::Span::span(e).map_or_else(String::new, |s| file.slice(&s).to_owned())
}
