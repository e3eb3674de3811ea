//! Input variables (`variable "x" {}` and `variables {}` blocks), the values given to them
//! (defaults, `NOMAD_VAR_*` environment, variable files, `-var` arguments, in that order of
//! precedence), their type constraints and validation rules, and `locals`.
//!
//! This follows Nomad's `jobspec2/types.variables.go`: a declared variable with no value is an
//! error even if nothing uses it; a `-var` value is a literal string for `string`, `number`
//! and untyped variables, and an HCL expression otherwise; variable files hold constant
//! expressions only.

use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Body, Structure};

use crate::decode::{AttrRef, BlockRef, BlockType, Decoder};
use crate::diag::{Diagnostic, SourceFile};
use crate::eval::{Evaluator, FsAccess, Scope};
use crate::value::{Type, Value};

/// A `validation { condition, error_message }` rule of a variable.
struct Validation<'a> {
    condition: Option<AttrRef<'a>>,
    error_message: String,
    span: Option<Range<usize>>,
}

/// One declared input variable.
struct InputVariable<'a> {
    name: String,
    ty: Option<Type>,
    /// Every value assigned, lowest precedence first; the last one wins.
    values: Vec<(Value, &'static str, Option<crate::diag::SourceRange>)>,
    validations: Vec<Validation<'a>>,
    def_span: Option<Range<usize>>,
}

impl InputVariable<'_> {
    /// Whether a `-var`/environment value is taken literally (string) or parsed as HCL.
    fn takes_literal(&self) -> bool {
        match &self.ty {
            None | Some(Type::String | Type::Number) => true,
            Some(_) => false,
        }
    }
}

/// The input variables of a jobspec, in declaration order.
#[derive(Default)]
pub(crate) struct Variables<'a> {
    vars: Vec<InputVariable<'a>>,
}

const BAD_IDENTIFIER: &str = "A name must start with a letter or underscore and may contain only letters, digits, underscores, and dashes.";

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Parses a type constraint expression (`string`, `list(number)`, `object({a = string})`).
pub(crate) fn parse_type(expr: &Expression) -> Result<Type, (String, Option<Range<usize>>)> {
    let bad = |detail: &str| Err((detail.to_owned(), expr.span()));
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Any),
            "list" | "map" | "set" => bad(&format!(
                "The {} type constructor requires one argument specifying the element type.",
                v.as_str()
            )),
            other => bad(&format!(
                "The keyword {other:?} is not a valid type specification."
            )),
        },
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            if args.len() != 1 {
                return bad(&format!(
                    "The {name} type constructor requires one argument specifying the element type."
                ));
            }
            match name {
                "list" => Ok(Type::List(Box::new(parse_type(args[0])?))),
                "set" => Ok(Type::Set(Box::new(parse_type(args[0])?))),
                "map" => Ok(Type::Map(Box::new(parse_type(args[0])?))),
                "object" => match args[0] {
                    Expression::Object(obj) => {
                        let mut fields = BTreeMap::new();
                        for (k, v) in obj.iter() {
                            let key = match k {
                                hcl_edit::expr::ObjectKey::Ident(id) => id.as_str().to_owned(),
                                hcl_edit::expr::ObjectKey::Expression(Expression::String(s)) => {
                                    s.value().clone()
                                }
                                hcl_edit::expr::ObjectKey::Expression(e) => {
                                    return Err(("Object constructor map keys must be attribute names.".to_owned(), e.span()));
                                }
                            };
                            fields.insert(key, parse_type(v.expr())?);
                        }
                        Ok(Type::Object(fields))
                    }
                    other => Err((
                        "Object type constructor requires a map whose keys are attribute names and whose values are the corresponding attribute types.".to_owned(),
                        other.span(),
                    )),
                },
                "tuple" => match args[0] {
                    Expression::Array(items) => Ok(Type::Tuple(
                        items.iter().map(parse_type).collect::<Result<_, _>>()?,
                    )),
                    other => Err((
                        "Tuple type constructor requires a list of element types.".to_owned(),
                        other.span(),
                    )),
                },
                other => bad(&format!("Keyword {other:?} is not a valid type constructor.")),
            }
        }
        _ => bad(
            "A type specification is either a primitive type keyword (bool, number, string) or a complex type constructor call, like list(string).",
        ),
    }
}

/// The type a `-var` string is read as when the variable declares none: its default's.
fn implied_type(v: &Value) -> Option<Type> {
    match v {
        Value::String(_) => Some(Type::String),
        Value::Number(_) => Some(Type::Number),
        Value::Bool(_) => Some(Type::Bool),
        Value::Null => None,
        Value::List(_) | Value::Object(_) => Some(Type::Any),
    }
}

impl<'a> Variables<'a> {
    fn find(&mut self, name: &str) -> Option<&mut InputVariable<'a>> {
        self.vars.iter_mut().find(|v| v.name == name)
    }

    /// A `variable "name" { ... }` block.
    pub fn declare_block(&mut self, d: &mut Decoder<'a>, b: &BlockRef<'a>) {
        let name = b.label(0);
        let label_span = b.labels.first().and_then(|(_, s)| s.clone());
        if self.find(&name).is_some() {
            d.error(
                "Duplicate variable",
                format!("Duplicate {name} variable definition found."),
                &b.def_span(),
            );
            return;
        }
        let c = d.content(
            b.body,
            &b.scope,
            &["description", "default", "type"],
            &[BlockType("validation", 0)],
        );
        if !valid_identifier(&name) {
            d.error("Invalid variable name", BAD_IDENTIFIER, &label_span);
        }
        let constant = Evaluator::constant(d.ev.file);
        if let Some(a) = c.attr("description")
            && let Err(e) = constant.eval(a.expr, &a.scope)
        {
            d.diags.push(e);
        }
        let mut var = InputVariable {
            name: name.clone(),
            ty: None,
            values: Vec::new(),
            validations: Vec::new(),
            def_span: b.def_span(),
        };
        if let Some(a) = c.attr("type") {
            match parse_type(a.expr) {
                Ok(t) => var.ty = Some(t),
                Err((detail, span)) => {
                    d.error("Invalid type specification", detail, &span);
                    return;
                }
            }
        }
        if let Some(a) = c.attr("default") {
            match constant.eval(a.expr, &a.scope) {
                Ok(v) => {
                    let v = match &var.ty {
                        Some(t) => match t.convert(&v) {
                            Ok(v) => v,
                            Err(e) => {
                                d.error(
                                    "Invalid default value for variable",
                                    format!("This default value is not compatible with the variable's type constraint: {e}."),
                                    &a.expr.span(),
                                );
                                Value::Null
                            }
                        },
                        None => {
                            var.ty = implied_type(&v);
                            v
                        }
                    };
                    let at = a.expr.span().map(|s| d.ev.file.range(&s));
                    var.values.push((v, "default", at));
                }
                Err(e) => {
                    d.diags.push(e);
                    return;
                }
            }
        }
        for vb in c.blocks_of("validation") {
            let vc = d.content(vb.body, &vb.scope, &["condition", "error_message"], &[]);
            let ok_cond = d.require(&vc, vb, "condition");
            let ok_msg = d.require(&vc, vb, "error_message");
            let mut error_message = String::new();
            if ok_msg && let Some(a) = vc.attr("error_message") {
                match constant.eval(a.expr, &a.scope).map(|v| v.to_str()) {
                    Ok(Ok(Some(s))) => error_message = s,
                    Ok(_) => d.error(
                        "Invalid validation error message",
                        "The error message must be a string.",
                        &a.expr.span(),
                    ),
                    Err(e) => d.diags.push(e),
                }
            }
            var.validations.push(Validation {
                condition: if ok_cond {
                    vc.attr("condition").cloned()
                } else {
                    None
                },
                error_message,
                span: vb.def_span(),
            });
        }
        self.vars.push(var);
    }

    /// A `variables { name = default ... }` block.
    pub fn declare_attrs(&mut self, d: &mut Decoder<'a>, b: &BlockRef<'a>) {
        let constant = Evaluator::constant(d.ev.file);
        for s in b.body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str().to_owned();
                    if self.find(&name).is_some() {
                        d.error(
                            "Duplicate variable",
                            format!("Duplicate {name} variable definition found."),
                            &a.key.span(),
                        );
                        continue;
                    }
                    match constant.eval(&a.value, &b.scope) {
                        Ok(v) => {
                            let at = a.value.span().map(|s| d.ev.file.range(&s));
                            self.vars.push(InputVariable {
                                name,
                                ty: implied_type(&v),
                                values: vec![(v, "default", at)],
                                validations: Vec::new(),
                                def_span: a.key.span(),
                            });
                        }
                        Err(e) => d.diags.push(e),
                    }
                }
                Structure::Block(inner) => d.error(
                    format!("Unexpected {:?} block", inner.ident.as_str()),
                    "Blocks are not allowed here.",
                    &inner.ident.span(),
                ),
            }
        }
    }

    /// Sets a variable from a string given outside the files (`-var`, `NOMAD_VAR_*`).
    pub fn set_from_string(
        &mut self,
        diags: &mut Vec<Diagnostic>,
        name: &str,
        raw: &str,
        from: &'static str,
        strict: bool,
    ) {
        let Some(var) = self.find(name) else {
            if strict && from == "cmd" {
                diags.push(Diagnostic::new(
                    "Undefined -var variable",
                    format!("A {name:?} variable was passed in the command line but was not found in known variables. To declare variable {name:?}, place this block in your job file"),
                    None,
                ));
            }
            return;
        };
        let source = if from == "cmd" {
            format!("<value for var.{name} from arguments>")
        } else {
            format!("<value for var.{name} from env>")
        };
        let file = SourceFile::new(&source, raw);
        let whole = file.range(&(0..raw.len()));
        let value = if var.takes_literal() {
            Value::String(raw.to_owned())
        } else {
            let expr = match hcl_edit::parser::parse_expr(raw) {
                Ok(e) => e,
                Err(e) => {
                    diags.push(crate::syntax_error(&file, &e));
                    return;
                }
            };
            match Evaluator::constant(&file).eval(&expr, &Scope::root(BTreeMap::new())) {
                Ok(v) => v,
                Err(e) => {
                    diags.push(e);
                    return;
                }
            }
        };
        let value = match &var.ty {
            Some(t) => match t.convert(&value) {
                Ok(v) => v,
                Err(e) => {
                    let (summary, detail) = if from == "cmd" {
                        (
                            "Invalid argument value for -var variable",
                            format!(
                                "The received arg value for {name} is not compatible with the variable's type constraint: {e}."
                            ),
                        )
                    } else {
                        (
                            "Invalid value for variable",
                            format!(
                                "The value for {name} is not compatible with the variable's type constraint: {e}."
                            ),
                        )
                    };
                    diags.push(Diagnostic::new(summary, detail, Some(whole)));
                    return;
                }
            },
            None => value,
        };
        var.values.push((value, from, Some(whole)));
    }

    /// Sets variables from a variable file's attributes.
    pub fn set_from_file(
        &mut self,
        diags: &mut Vec<Diagnostic>,
        file: &SourceFile,
        body: &Body,
        strict: bool,
    ) {
        let ev = Evaluator::constant(file);
        let scope = Scope::root(BTreeMap::new());
        for s in body.iter() {
            match s {
                Structure::Block(b) if b.ident.as_str() == "variable" => {
                    let name = b
                        .labels
                        .first()
                        .map(|l| l.as_str().to_owned())
                        .unwrap_or_default();
                    diags.push(Diagnostic::new(
                        "Variable declaration in a .var file",
                        format!("A .var file is used to assign values to variables that have already been declared in job files, not to declare new variables. To declare variable {name:?}, place this block in one of your job files\n\nTo set a value for this variable in {}, use the definition syntax instead:\n    {name} = <value>", file.name),
                        b.ident.span().map(|sp| file.range(&sp)),
                    ));
                }
                Structure::Block(b) => diags.push(Diagnostic::new(
                    format!("Unexpected {:?} block", b.ident.as_str()),
                    "Blocks are not allowed here.",
                    b.ident.span().map(|sp| file.range(&sp)),
                )),
                Structure::Attribute(a) => {
                    let name = a.key.as_str();
                    let at = a.span().map(|sp| file.range(&sp));
                    let Some(var) = self.find(name) else {
                        if strict {
                            diags.push(Diagnostic::new(
                                "Undefined variable",
                                format!("A {name:?} variable was set but was not found in known variables. To declare variable {name:?}, place this block in your job files"),
                                at,
                            ));
                        }
                        continue;
                    };
                    let value = match ev.eval(&a.value, &scope) {
                        Ok(v) => v,
                        Err(e) => {
                            diags.push(e);
                            continue;
                        }
                    };
                    let value = match &var.ty {
                        Some(t) => match t.convert(&value) {
                            Ok(v) => v,
                            Err(e) => {
                                diags.push(Diagnostic::new(
                                    "Invalid value for variable",
                                    format!("The value for {name} is not compatible with the variable's type constraint: {e}."),
                                    a.value.span().map(|sp| file.range(&sp)),
                                ));
                                continue;
                            }
                        },
                        None => value,
                    };
                    let at = a.value.span().map(|sp| file.range(&sp));
                    var.values.push((value, "varfile", at));
                }
            }
        }
    }

    /// The final values; a variable without one is an error, and so is a value that fails
    /// a validation rule.
    pub fn values(&self, d: &mut Decoder<'a>, fs: &FsAccess) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for v in &self.vars {
            let Some((value, from, at)) = v.values.last() else {
                d.error(
                    format!("Unset variable {:?}", v.name),
                    "A used variable must be set or have a default value; see https://www.nomadproject.io/docs/job-specification/hcl2/variables for details.",
                    &v.def_span,
                );
                continue;
            };
            for rule in &v.validations {
                let Some(cond) = &rule.condition else {
                    continue;
                };
                let scope = Scope::root(BTreeMap::from([(
                    "var".to_owned(),
                    Value::Object(BTreeMap::from([(v.name.clone(), value.clone())])),
                )]));
                let ev = Evaluator::new(d.ev.file, fs);
                match ev.eval(cond.expr, &scope).map(|r| r.to_bool()) {
                    Ok(Ok(Some(true))) => {}
                    Ok(Ok(Some(false))) => {
                        let rule_at = d
                            .range(&rule.span)
                            .map_or_else(String::new, |r| r.to_string());
                        d.diags.push(Diagnostic::new(
                            format!("Invalid value for {from} variable"),
                            format!(
                                "{}\n\nThis was checked by the validation rule at {rule_at}.",
                                rule.error_message
                            ),
                            at.clone().or_else(|| d.range(&rule.span)),
                        ));
                    }
                    Ok(_) => d.error(
                        "Invalid variable validation result",
                        "Validation condition expression must return either true or false.",
                        &cond.expr.span(),
                    ),
                    Err(e) => d.diags.push(e),
                }
            }
            out.insert(v.name.clone(), value.clone());
        }
        out
    }
}

/// Evaluates `locals` blocks: each local may use variables and other locals, in any order;
/// a cycle or an error leaves the local's error.
pub(crate) fn evaluate_locals<'a>(
    d: &mut Decoder<'a>,
    blocks: &[&BlockRef<'a>],
    vars: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    let mut pending: Vec<(String, &'a Expression)> = Vec::new();
    for b in blocks {
        for s in b.body.iter() {
            match s {
                Structure::Attribute(a) => {
                    let name = a.key.as_str();
                    if pending.iter().any(|(n, _)| n == name) {
                        d.error(
                            "Duplicate value in locals",
                            format!("Duplicate {name} definition found."),
                            &a.key.span(),
                        );
                        continue;
                    }
                    pending.push((name.to_owned(), &a.value));
                }
                Structure::Block(inner) => d.error(
                    format!("Unexpected {:?} block", inner.ident.as_str()),
                    "Blocks are not allowed here.",
                    &inner.ident.span(),
                ),
            }
        }
    }
    let mut locals: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let mut progressed = false;
        let mut failed = Vec::new();
        let mut still = Vec::new();
        for (name, expr) in pending {
            let scope = Scope::root(BTreeMap::from([
                ("var".to_owned(), Value::Object(vars.clone())),
                ("local".to_owned(), Value::Object(locals.clone())),
            ]));
            match d.ev.eval(expr, &Rc::clone(&scope)) {
                Ok(v) => {
                    locals.insert(name, v);
                    progressed = true;
                }
                Err(e) => {
                    failed.push(e);
                    still.push((name, expr));
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if !progressed {
            d.diags.extend(failed);
            break;
        }
    }
    locals
}
