//! The HCL expression and template evaluator.
//!
//! It follows HCL's native syntax semantics for what a jobspec uses: literals, templates
//! (interpolations, `%{if}`/`%{for}` directives, `~` strip markers), collections, traversals
//! and splats, operators, conditionals, `for` expressions and function calls.
//!
//! One rule is Nomad's own: a reference to a variable the scope does not define (`attr.*`,
//! `node.*`, `meta.*`, `NOMAD_PORT_http`, `env["X"]`, …) is a runtime value the client fills
//! in later, so it evaluates to its own text, `"${attr.kernel.name}"`. An interpolation made
//! of such a reference is kept byte for byte, spaces included.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::rc::Rc;

use hcl_edit::Span;
use hcl_edit::expr::{
    BinaryOperator, Expression, ForExpr, FuncCall, ObjectKey, Traversal, TraversalOperator,
    UnaryOperator,
};
use hcl_edit::template::{Directive, Element, Template};

use crate::diag::{Diagnostic, SourceFile};
use crate::functions::{self, FuncError};
use crate::value::{Num, Value};

/// Variables visible to an expression; children shadow parents.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    vars: BTreeMap<String, Value>,
    parent: Option<Rc<Scope>>,
}

impl Scope {
    pub fn root(vars: BTreeMap<String, Value>) -> Rc<Scope> {
        Rc::new(Scope { vars, parent: None })
    }

    pub fn child(parent: &Rc<Scope>, vars: BTreeMap<String, Value>) -> Rc<Scope> {
        Rc::new(Scope {
            vars,
            parent: Some(Rc::clone(parent)),
        })
    }

    pub fn lookup(&self, name: &str) -> Option<&Value> {
        match self.vars.get(name) {
            Some(v) => Some(v),
            None => self.parent.as_ref().and_then(|p| p.lookup(name)),
        }
    }
}

/// What file-system functions may do.
#[derive(Debug, Clone)]
pub(crate) struct FsAccess {
    pub allowed: bool,
    /// Relative paths in `file()` resolve against this directory.
    pub base_dir: PathBuf,
}

/// Evaluates expressions of one source file.
pub(crate) struct Evaluator<'a> {
    pub file: &'a SourceFile,
    /// `None`: function calls are not allowed here (variable defaults, var files).
    pub fs: Option<&'a FsAccess>,
    /// `false`: variable references are not allowed here.
    pub vars_allowed: bool,
    /// Work left (values copied, strings built, loop iterations) before evaluation gives
    /// up: locals can double a value per reference, so a short file could otherwise ask for
    /// more memory than the machine has.
    budget: Cell<u64>,
}

/// The work one jobspec's evaluation may do, in values and bytes.
const EVAL_BUDGET: u64 = 64 * 1024 * 1024;

/// The work a copy of a value costs.
fn cost(v: &Value) -> u64 {
    match v {
        Value::String(s) => 1 + s.len() as u64,
        Value::List(items) => 1 + items.iter().map(cost).sum::<u64>(),
        Value::Object(m) => 1 + m.iter().map(|(k, v)| k.len() as u64 + cost(v)).sum::<u64>(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 1,
    }
}

type EvalResult = Result<Value, Diagnostic>;

impl<'a> Evaluator<'a> {
    /// An evaluator for job bodies and locals: variables, functions, unknown references kept.
    pub fn new(file: &'a SourceFile, fs: &'a FsAccess) -> Evaluator<'a> {
        Evaluator {
            file,
            fs: Some(fs),
            vars_allowed: true,
            budget: Cell::new(EVAL_BUDGET),
        }
    }

    /// An evaluator for constant expressions only (defaults, var files, `-var` values).
    pub fn constant(file: &'a SourceFile) -> Evaluator<'a> {
        Evaluator {
            file,
            fs: None,
            vars_allowed: false,
            budget: Cell::new(EVAL_BUDGET),
        }
    }

    /// Spends evaluation work; running out is an error at `span`.
    fn charge(&self, units: u64, span: Option<Range<usize>>) -> Result<(), Diagnostic> {
        let left = self.budget.get();
        if units > left {
            self.budget.set(0);
            return Err(self.diag(
                "Expression too large",
                format!(
                    "Evaluating this expression needs more than the {EVAL_BUDGET} values and \
                     bytes a jobspec may expand to."
                ),
                span,
            ));
        }
        self.budget.set(left - units);
        Ok(())
    }

    pub fn diag(
        &self,
        summary: impl Into<String>,
        detail: impl Into<String>,
        span: Option<Range<usize>>,
    ) -> Diagnostic {
        Diagnostic::new(summary, detail, span.map(|s| self.file.range(&s)))
    }

    pub fn eval(&self, expr: &Expression, scope: &Rc<Scope>) -> EvalResult {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => {
                let n = n.value();
                Ok(Value::Number(match n.as_i64() {
                    Some(i) => Num::Int(i),
                    None => Num::from_f64(n.as_f64().unwrap_or(0.0)),
                }))
            }
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items.iter() {
                    out.push(self.eval(item, scope)?);
                }
                Ok(Value::List(out))
            }
            Expression::Object(obj) => {
                let mut out = BTreeMap::new();
                for (key, value) in obj.iter() {
                    let k = self.object_key(key, scope)?;
                    out.insert(k, self.eval(value.expr(), scope)?);
                }
                Ok(Value::Object(out))
            }
            Expression::StringTemplate(t) => self.eval_template_expr(t, scope),
            Expression::HeredocTemplate(h) => self.eval_template_expr(&h.template, scope),
            Expression::Parenthesis(p) => self.eval(p.inner(), scope),
            Expression::Variable(v) => match scope.lookup(v.as_str()) {
                Some(val) => {
                    self.charge(cost(val), expr.span())?;
                    Ok(val.clone())
                }
                None => self.unknown_reference(expr, v.as_str()),
            },
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr, scope)?;
                match cond.to_bool() {
                    Ok(Some(true)) => self.eval(&c.true_expr, scope),
                    Ok(Some(false)) => self.eval(&c.false_expr, scope),
                    Ok(None) => Err(self.diag(
                        "Null condition",
                        "The condition value is null. Conditions must either be true or false.",
                        c.cond_expr.span(),
                    )),
                    Err(_) => Err(self.diag(
                        "Incorrect condition type",
                        "The condition expression must be of type bool.",
                        c.cond_expr.span(),
                    )),
                }
            }
            Expression::FuncCall(call) => self.eval_call(call, scope),
            Expression::Traversal(t) => self.eval_traversal(t, expr, scope),
            Expression::UnaryOp(op) => {
                let v = self.eval(&op.expr, scope)?;
                match op.operator.value() {
                    UnaryOperator::Neg => match v.to_num() {
                        Ok(Some(n)) => Ok(Value::Number(n.neg())),
                        _ => Err(self.operand_error("number", &v, op.expr.span())),
                    },
                    UnaryOperator::Not => match v.to_bool() {
                        Ok(Some(b)) => Ok(Value::Bool(!b)),
                        _ => Err(self.operand_error("bool", &v, op.expr.span())),
                    },
                }
            }
            Expression::BinaryOp(op) => {
                let lhs = self.eval(&op.lhs_expr, scope)?;
                // `&&` and `||` do not short-circuit in HCL, but both sides must be bools.
                let rhs = self.eval(&op.rhs_expr, scope)?;
                self.binary(
                    *op.operator.value(),
                    &lhs,
                    &rhs,
                    op.lhs_expr.span(),
                    op.rhs_expr.span(),
                )
            }
            Expression::ForExpr(f) => self.eval_for(f, scope),
        }
    }

    /// A reference the scope does not define: Nomad keeps it as `${...}` text.
    fn unknown_reference(&self, expr: &Expression, name: &str) -> EvalResult {
        if !self.vars_allowed {
            return Err(self.diag(
                "Variables not allowed",
                "Variables may not be used here.",
                expr.span(),
            ));
        }
        let text = expr
            .span()
            .map_or_else(|| name.to_owned(), |s| self.file.slice(&s).to_owned());
        Ok(Value::String(format!("${{{text}}}")))
    }

    /// Whether an expression is a reference to a variable the scope does not define.
    fn is_unknown_reference(&self, expr: &Expression, scope: &Scope) -> bool {
        if !self.vars_allowed {
            return false;
        }
        match expr {
            Expression::Variable(v) => scope.lookup(v.as_str()).is_none(),
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(v) => scope.lookup(v.as_str()).is_none(),
                _ => false,
            },
            _ => false,
        }
    }

    fn object_key(&self, key: &ObjectKey, scope: &Rc<Scope>) -> Result<String, Diagnostic> {
        match key {
            ObjectKey::Ident(id) => Ok(id.as_str().to_owned()),
            ObjectKey::Expression(e) => {
                // A bare identifier in parentheses or a traversal is an expression; a lone
                // word is the key's own name.
                let v = self.eval(e, scope)?;
                match v.to_str() {
                    Ok(Some(s)) => Ok(s),
                    _ => Err(self.diag(
                        "Incorrect key type",
                        "Can't use this value as a key: string required.",
                        e.span(),
                    )),
                }
            }
        }
    }

    fn operand_error(&self, want: &str, got: &Value, span: Option<Range<usize>>) -> Diagnostic {
        self.diag(
            "Invalid operand",
            format!(
                "Unsuitable value for operand: a {want} is required, not {}.",
                got.type_name()
            ),
            span,
        )
    }

    fn binary(
        &self,
        op: BinaryOperator,
        lhs: &Value,
        rhs: &Value,
        lspan: Option<Range<usize>>,
        rspan: Option<Range<usize>>,
    ) -> EvalResult {
        use BinaryOperator as B;
        match op {
            B::Eq => Ok(Value::Bool(lhs.equals(rhs))),
            B::NotEq => Ok(Value::Bool(!lhs.equals(rhs))),
            B::And | B::Or => {
                let a = match lhs.to_bool() {
                    Ok(Some(b)) => b,
                    _ => return Err(self.operand_error("bool", lhs, lspan)),
                };
                let b = match rhs.to_bool() {
                    Ok(Some(b)) => b,
                    _ => return Err(self.operand_error("bool", rhs, rspan)),
                };
                Ok(Value::Bool(if op == B::And { a && b } else { a || b }))
            }
            _ => {
                let a = match lhs.to_num() {
                    Ok(Some(n)) => n,
                    _ => return Err(self.operand_error("number", lhs, lspan)),
                };
                let b = match rhs.to_num() {
                    Ok(Some(n)) => n,
                    _ => return Err(self.operand_error("number", rhs, rspan)),
                };
                let out = match op {
                    B::Plus => Value::Number(a.add(b)),
                    B::Minus => Value::Number(a.sub(b)),
                    B::Mul => Value::Number(a.mul(b)),
                    B::Div | B::Mod if b.as_f64() == 0.0 => {
                        return Err(self.diag(
                            "Error in function call",
                            "Call to function \"divide\" failed: can't divide by zero.",
                            rspan,
                        ));
                    }
                    B::Div => Value::Number(a.div(b)),
                    B::Mod => Value::Number(a.rem(b)),
                    B::Less => Value::Bool(a.cmp(b).is_lt()),
                    B::LessEq => Value::Bool(a.cmp(b).is_le()),
                    B::Greater => Value::Bool(a.cmp(b).is_gt()),
                    B::GreaterEq => Value::Bool(a.cmp(b).is_ge()),
                    B::Eq | B::NotEq | B::And | B::Or => Value::Null,
                };
                Ok(out)
            }
        }
    }

    fn eval_traversal(&self, t: &Traversal, whole: &Expression, scope: &Rc<Scope>) -> EvalResult {
        let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
        let spans: Vec<Option<Range<usize>>> = t.operators.iter().map(Span::span).collect();
        if let Expression::Variable(v) = &t.expr {
            let Some(root) = scope.lookup(v.as_str()) else {
                return self.unknown_reference(whole, v.as_str());
            };
            // Walk by reference, so `var.x` copies `x`, not every variable.
            let mut cur: &Value = root;
            for (i, op) in ops.iter().enumerate() {
                let span = spans.get(i).cloned().flatten();
                cur = match op {
                    TraversalOperator::GetAttr(name) => self.get_attr(cur, name.as_str(), span)?,
                    TraversalOperator::Index(idx) => {
                        let key = self.eval(idx, scope)?;
                        self.index(cur, &key, span)?
                    }
                    TraversalOperator::LegacyIndex(n) => {
                        let key =
                            Value::Number(Num::Int(i64::try_from(*n.value()).unwrap_or(i64::MAX)));
                        self.index(cur, &key, span)?
                    }
                    TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                        self.charge(cost(cur), whole.span())?;
                        return self.apply_ops(cur.clone(), &ops[i..], &spans[i..], scope);
                    }
                };
            }
            self.charge(cost(cur), whole.span())?;
            return Ok(cur.clone());
        }
        let base = self.eval(&t.expr, scope)?;
        self.apply_ops(base, &ops, &spans, scope)
    }

    fn apply_ops(
        &self,
        mut cur: Value,
        ops: &[&TraversalOperator],
        spans: &[Option<Range<usize>>],
        scope: &Rc<Scope>,
    ) -> EvalResult {
        for (i, op) in ops.iter().enumerate() {
            let span = spans.get(i).cloned().flatten();
            match op {
                TraversalOperator::GetAttr(name) => {
                    let next = self.get_attr(&cur, name.as_str(), span)?.clone();
                    cur = next;
                }
                TraversalOperator::Index(idx) => {
                    let key = self.eval(idx, scope)?;
                    let next = self.index(&cur, &key, span)?.clone();
                    cur = next;
                }
                TraversalOperator::LegacyIndex(n) => {
                    let key =
                        Value::Number(Num::Int(i64::try_from(*n.value()).unwrap_or(i64::MAX)));
                    let next = self.index(&cur, &key, span)?.clone();
                    cur = next;
                }
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    let items = match cur {
                        Value::Null => Vec::new(),
                        Value::List(items) => items,
                        other => vec![other],
                    };
                    let rest = &ops[i + 1..];
                    let rest_spans = &spans[(i + 1).min(spans.len())..];
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.apply_ops(item, rest, rest_spans, scope)?);
                    }
                    return Ok(Value::List(out));
                }
            }
        }
        Ok(cur)
    }

    fn get_attr<'v>(
        &self,
        v: &'v Value,
        name: &str,
        span: Option<Range<usize>>,
    ) -> Result<&'v Value, Diagnostic> {
        match v {
            Value::Object(m) => m.get(name).ok_or_else(|| {
                self.diag(
                    "Unsupported attribute",
                    format!("This object does not have an attribute named {name:?}."),
                    span,
                )
            }),
            Value::List(_) => Err(self.diag(
                "Unsupported attribute",
                "Can't access attributes on a list of objects. Did you mean to access an \
                 attribute for a specific element of the list, or across all elements of the \
                 list?",
                span,
            )),
            Value::Null => Err(self.diag(
                "Attempt to get attribute from null value",
                "This value is null, so it does not have any attributes.",
                span,
            )),
            _ => Err(self.diag(
                "Unsupported attribute",
                format!(
                    "Can't access attributes on a primitive-typed value ({}).",
                    v.type_name()
                ),
                span,
            )),
        }
    }

    fn index<'v>(
        &self,
        v: &'v Value,
        key: &Value,
        span: Option<Range<usize>>,
    ) -> Result<&'v Value, Diagnostic> {
        let invalid = |detail: &str| self.diag("Invalid index", detail.to_owned(), span.clone());
        match v {
            Value::List(items) => {
                let n = match key.to_num() {
                    Ok(Some(n)) => n,
                    _ => {
                        return Err(invalid(
                            "The given key does not identify an element in this collection value: a number is required.",
                        ));
                    }
                };
                let idx = n
                    .as_i64()
                    .and_then(|i| usize::try_from(i).ok())
                    .filter(|i| *i < items.len());
                match idx {
                    Some(i) => Ok(&items[i]),
                    None => Err(invalid(
                        "The given key does not identify an element in this collection value.",
                    )),
                }
            }
            Value::Object(m) => {
                let k = match key.to_str() {
                    Ok(Some(k)) => k,
                    _ => {
                        return Err(invalid(
                            "The given key does not identify an element in this collection value: string required.",
                        ));
                    }
                };
                m.get(&k).ok_or_else(|| {
                    invalid("The given key does not identify an element in this collection value.")
                })
            }
            Value::Null => Err(self.diag(
                "Attempt to index null value",
                "This value is null, so it does not have any indices.",
                span,
            )),
            _ => Err(invalid("This value does not have any indices.")),
        }
    }

    fn eval_for(&self, f: &ForExpr, scope: &Rc<Scope>) -> EvalResult {
        let coll = self.eval(&f.intro.collection_expr, scope)?;
        let pairs: Vec<(Value, Value)> = match coll {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Number(Num::Int(i64::try_from(i).unwrap_or(0))), v))
                .collect(),
            Value::Object(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            other => {
                return Err(self.diag(
                    "Iteration over non-iterable value",
                    format!(
                        "A value of type {} cannot be used as the collection in a 'for' expression.",
                        other.type_name()
                    ),
                    f.intro.collection_expr.span(),
                ));
            }
        };
        let mut list = Vec::new();
        let mut obj: BTreeMap<String, Value> = BTreeMap::new();
        let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (k, v) in pairs {
            let mut vars = BTreeMap::new();
            if let Some(kv) = &f.intro.key_var {
                vars.insert(kv.as_str().to_owned(), k);
            }
            vars.insert(f.intro.value_var.as_str().to_owned(), v);
            self.charge(1, f.intro.collection_expr.span())?;
            let inner = Scope::child(scope, vars);
            if let Some(cond) = &f.cond {
                let c = self.eval(&cond.expr, &inner)?;
                match c.to_bool() {
                    Ok(Some(true)) => {}
                    Ok(Some(false)) => continue,
                    _ => {
                        return Err(self.diag(
                            "Invalid 'for' condition",
                            "The 'if' clause value is invalid: bool required.",
                            cond.expr.span(),
                        ));
                    }
                }
            }
            let value = self.eval(&f.value_expr, &inner)?;
            match &f.key_expr {
                None => list.push(value),
                Some(key_expr) => {
                    let key = match self.eval(key_expr, &inner)?.to_str() {
                        Ok(Some(k)) => k,
                        _ => {
                            return Err(self.diag(
                                "Invalid object key",
                                "Key expression in 'for' expression must be a string.",
                                key_expr.span(),
                            ));
                        }
                    };
                    if f.grouping {
                        groups.entry(key).or_default().push(value);
                    } else {
                        match obj.entry(key) {
                            std::collections::btree_map::Entry::Vacant(e) => {
                                e.insert(value);
                            }
                            std::collections::btree_map::Entry::Occupied(e) => {
                                return Err(self.diag(
                                    "Duplicate object key",
                                    format!(
                                        "Two different items produced the key {:?} in this 'for' \
                                         expression. If duplicates are expected, use the ellipsis \
                                         (...) after the value expression to enable grouping by key.",
                                        e.key()
                                    ),
                                    key_expr.span(),
                                ));
                            }
                        }
                    }
                }
            }
        }
        Ok(match &f.key_expr {
            None => Value::List(list),
            Some(_) if f.grouping => Value::Object(
                groups
                    .into_iter()
                    .map(|(k, v)| (k, Value::List(v)))
                    .collect(),
            ),
            Some(_) => Value::Object(obj),
        })
    }

    fn eval_call(&self, call: &FuncCall, scope: &Rc<Scope>) -> EvalResult {
        let name = call.name.name.as_str();
        let span = call.name.name.span();
        let Some(fs) = self.fs else {
            return Err(self.diag(
                "Function calls not allowed",
                "Functions may not be called here.",
                span,
            ));
        };
        if call.name.is_namespaced() {
            return Err(self.diag(
                "Call to unknown function",
                format!("There is no function named {name:?}."),
                span,
            ));
        }
        // `try` and `can` look at their arguments' errors, so they evaluate them themselves.
        if name == "try" || name == "can" {
            let args: Vec<&Expression> = call.args.iter().collect();
            if name == "can" {
                if args.len() != 1 {
                    return Err(self.arity_error(name, 1, args.len(), span));
                }
                return Ok(Value::Bool(self.eval(args[0], scope).is_ok()));
            }
            if args.is_empty() {
                return Err(self.diag(
                    "Error in function call",
                    "Call to function \"try\" failed: at least one argument is required.",
                    span,
                ));
            }
            let mut last = None;
            for a in args {
                match self.eval(a, scope) {
                    Ok(v) => return Ok(v),
                    Err(e) => last = Some(e),
                }
            }
            return Err(last.unwrap_or_else(|| {
                self.diag(
                    "Error in function call",
                    "No argument succeeded.",
                    span.clone(),
                )
            }));
        }
        let mut args = Vec::with_capacity(call.args.len());
        for a in call.args.iter() {
            args.push(self.eval(a, scope)?);
        }
        if call.args.expand_final() {
            match args.pop() {
                Some(Value::List(items)) => args.extend(items),
                Some(Value::Null) | None => {}
                Some(other) => {
                    return Err(self.diag(
                        "Invalid expanding argument value",
                        format!(
                            "The expanding argument (indicated by ...) must be of a tuple, list, \
                             or set type, not {}.",
                            other.type_name()
                        ),
                        call.args.iter().last().and_then(Span::span),
                    ));
                }
            }
        }
        match functions::call(name, args, fs) {
            Ok(v) => Ok(v),
            Err(FuncError::Unknown) => Err(self.diag(
                "Call to unknown function",
                format!("There is no function named {name:?}."),
                span,
            )),
            Err(FuncError::Arity { min, max, got }) => {
                if got < min {
                    Err(self.arity_error(name, min, got, span))
                } else {
                    Err(self.diag(
                        "Too many function arguments",
                        format!(
                            "Function {name:?} expects only {} argument(s).",
                            max.unwrap_or(min)
                        ),
                        call.span(),
                    ))
                }
            }
            Err(FuncError::Failed(msg)) => Err(self.diag(
                "Error in function call",
                format!("Call to function {name:?} failed: {msg}."),
                call.span(),
            )),
        }
    }

    fn arity_error(
        &self,
        name: &str,
        want: usize,
        got: usize,
        span: Option<Range<usize>>,
    ) -> Diagnostic {
        if got < want {
            self.diag(
                "Not enough function arguments",
                format!("Function {name:?} expects {want} argument(s)."),
                span,
            )
        } else {
            self.diag(
                "Too many function arguments",
                format!("Function {name:?} expects only {want} argument(s)."),
                span,
            )
        }
    }

    /// A quoted or heredoc template. A template that is exactly one interpolation yields the
    /// interpolated value itself, not its string form, as HCL's template wrapping does.
    fn eval_template_expr(&self, t: &Template, scope: &Rc<Scope>) -> EvalResult {
        let elems: Vec<&Element> = t.iter().collect();
        if let [Element::Interpolation(interp)] = elems.as_slice() {
            if self.is_unknown_reference(&interp.expr, scope) {
                return Ok(Value::String(self.interp_text(interp)));
            }
            return self.eval(&interp.expr, scope);
        }
        Ok(Value::String(self.render(t, scope, false, false)?))
    }

    fn interp_text(&self, interp: &hcl_edit::template::Interpolation) -> String {
        match interp.span() {
            Some(s) => self.file.slice(&s).to_owned(),
            None => String::new(),
        }
    }

    /// Renders a template to a string. `strip_first`/`strip_last`: the enclosing directive's
    /// markers ask to trim whitespace at the start/end.
    pub fn render(
        &self,
        t: &Template,
        scope: &Rc<Scope>,
        strip_first: bool,
        strip_last: bool,
    ) -> Result<String, Diagnostic> {
        let elems: Vec<&Element> = t.iter().collect();
        let mut out = String::new();
        for (i, elem) in elems.iter().enumerate() {
            match elem {
                Element::Literal(lit) => {
                    let mut s: &str = lit.value();
                    let trim_start = if i == 0 {
                        strip_first
                    } else {
                        strips_after(elems[i - 1])
                    };
                    let trim_end = match elems.get(i + 1) {
                        Some(next) => strips_before(next),
                        None => strip_last,
                    };
                    if trim_start {
                        s = s.trim_start();
                    }
                    if trim_end {
                        s = s.trim_end();
                    }
                    self.charge(s.len() as u64, lit.span())?;
                    out.push_str(s);
                }
                Element::Interpolation(interp) => {
                    if self.is_unknown_reference(&interp.expr, scope) {
                        out.push_str(&self.interp_text(interp));
                        continue;
                    }
                    let v = self.eval(&interp.expr, scope)?;
                    out.push_str(&self.template_string(&v, interp.expr.span())?);
                }
                Element::Directive(dir) => match dir.as_ref() {
                    Directive::If(d) => {
                        let cond = self.eval(&d.if_expr.cond_expr, scope)?;
                        let truth = match cond.to_bool() {
                            Ok(Some(b)) => b,
                            _ => {
                                return Err(self.diag(
                                    "Invalid 'if' directive condition",
                                    "The condition value must be of type bool.",
                                    d.if_expr.cond_expr.span(),
                                ));
                            }
                        };
                        let end_strip = match &d.else_expr {
                            Some(e) => e.strip.strip_start(),
                            None => d.endif_expr.strip.strip_start(),
                        };
                        if truth {
                            out.push_str(&self.render(
                                &d.if_expr.template,
                                scope,
                                d.if_expr.strip.strip_end(),
                                end_strip,
                            )?);
                        } else if let Some(e) = &d.else_expr {
                            out.push_str(&self.render(
                                &e.template,
                                scope,
                                e.strip.strip_end(),
                                d.endif_expr.strip.strip_start(),
                            )?);
                        }
                    }
                    Directive::For(d) => {
                        let f = &d.for_expr;
                        let coll = self.eval(&f.collection_expr, scope)?;
                        let pairs: Vec<(Value, Value)> = match coll {
                            Value::List(items) => items
                                .into_iter()
                                .enumerate()
                                .map(|(i, v)| {
                                    (Value::Number(Num::Int(i64::try_from(i).unwrap_or(0))), v)
                                })
                                .collect(),
                            Value::Object(m) => {
                                m.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                            }
                            other => {
                                return Err(self.diag(
                                    "Invalid template for directive",
                                    format!(
                                        "A value of type {} cannot be used as the collection in a 'for' directive.",
                                        other.type_name()
                                    ),
                                    f.collection_expr.span(),
                                ));
                            }
                        };
                        for (k, v) in pairs {
                            let mut vars = BTreeMap::new();
                            if let Some(kv) = &f.key_var {
                                vars.insert(kv.as_str().to_owned(), k);
                            }
                            vars.insert(f.value_var.as_str().to_owned(), v);
                            self.charge(1, f.collection_expr.span())?;
                            let inner = Scope::child(scope, vars);
                            out.push_str(&self.render(
                                &f.template,
                                &inner,
                                f.strip.strip_end(),
                                d.endfor_expr.strip.strip_start(),
                            )?);
                        }
                    }
                },
            }
        }
        Ok(out)
    }

    fn template_string(&self, v: &Value, span: Option<Range<usize>>) -> Result<String, Diagnostic> {
        match v.to_str() {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(self.diag(
                "Invalid template interpolation value",
                "The expression result is null. Cannot include a null value in a string template.",
                span,
            )),
            Err(e) => Err(self.diag(
                "Invalid template interpolation value",
                format!("Cannot include the given value in a string template: {e}."),
                span,
            )),
        }
    }
}

/// Whether an element's opening marker (`${~`, `%{~`) trims the literal before it.
fn strips_before(e: &Element) -> bool {
    match e {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip.strip_start(),
        Element::Directive(d) => match d.as_ref() {
            Directive::If(d) => d.if_expr.strip.strip_start(),
            Directive::For(d) => d.for_expr.strip.strip_start(),
        },
    }
}

/// Whether an element's closing marker (`~}`) trims the literal after it.
fn strips_after(e: &Element) -> bool {
    match e {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip.strip_end(),
        Element::Directive(d) => match d.as_ref() {
            Directive::If(d) => d.endif_expr.strip.strip_end(),
            Directive::For(d) => d.endfor_expr.strip.strip_end(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn eval_str(src: &str, vars: BTreeMap<String, Value>) -> Result<Value, Diagnostic> {
        let text = format!("x = {src}\n");
        let file = SourceFile::new("t.hcl", &text);
        let body = hcl_edit::parser::parse_body(&text).unwrap();
        let attr = body.attributes().next().unwrap();
        let fs = FsAccess {
            allowed: false,
            base_dir: PathBuf::from("."),
        };
        let ev = Evaluator::new(&file, &fs);
        ev.eval(&attr.value, &Scope::root(vars))
    }

    fn s(v: &str) -> Value {
        Value::String(v.to_owned())
    }

    #[test]
    fn unknown_references_are_kept_verbatim() {
        let none = BTreeMap::new();
        assert_eq!(
            eval_str(r#""${attr.kernel.name}""#, none.clone()).unwrap(),
            s("${attr.kernel.name}")
        );
        assert_eq!(
            eval_str(
                r#""with spaces ${   root.  field[  "FOO"].5  }""#,
                none.clone()
            )
            .unwrap(),
            s(r#"with spaces ${   root.  field[  "FOO"].5  }"#)
        );
        assert_eq!(
            eval_str("meta.mytest", none.clone()).unwrap(),
            s("${meta.mytest}")
        );
        assert_eq!(
            eval_str(r#""${env["X"]}-y""#, none.clone()).unwrap(),
            s(r#"${env["X"]}-y"#)
        );
        assert_eq!(eval_str(r#""$${literal}""#, none).unwrap(), s("${literal}"));
    }

    #[test]
    fn strip_markers_and_heredocs() {
        let none = BTreeMap::new();
        assert_eq!(
            eval_str("\"a  ${~ \"b\" ~}  c\"", none.clone()).unwrap(),
            s("abc")
        );
        assert_eq!(
            eval_str("<<-EOT\n    x\n      y\n    EOT\n", none.clone()).unwrap(),
            s("x\n  y\n")
        );
        assert_eq!(
            eval_str(
                "<<EOT\n%{ for i in [1, 2] ~}\n${i}\n%{ endfor ~}\nEOT\n",
                none
            )
            .unwrap(),
            s("1\n2\n")
        );
    }

    #[test]
    fn runaway_expansion_stops() {
        let mut vars = BTreeMap::new();
        vars.insert("big".to_owned(), s(&"x".repeat(1 << 20)));
        let err = eval_str(
            "[for i in range(1000) : [for j in range(1000) : big]]",
            vars,
        )
        .unwrap_err();
        assert_eq!(err.summary, "Expression too large");
    }

    #[test]
    fn known_references_and_operators() {
        let mut vars = BTreeMap::new();
        vars.insert(
            "var".to_owned(),
            Value::Object(BTreeMap::from([
                ("n".to_owned(), Value::Number(Num::Int(3))),
                ("name".to_owned(), s("web")),
                ("list".to_owned(), Value::List(vec![s("a"), s("b")])),
            ])),
        );
        assert_eq!(
            eval_str("var.n * 2 + 1", vars.clone()).unwrap(),
            Value::Number(Num::Int(7))
        );
        assert_eq!(
            eval_str(r#""${var.n}""#, vars.clone()).unwrap(),
            Value::Number(Num::Int(3))
        );
        assert_eq!(
            eval_str(r#""x-${var.name}-${var.n}""#, vars.clone()).unwrap(),
            s("x-web-3")
        );
        assert_eq!(
            eval_str("var.n > 2 ? \"big\" : \"small\"", vars.clone()).unwrap(),
            s("big")
        );
        assert_eq!(
            eval_str("[for v in var.list : upper(v)]", vars.clone()).unwrap(),
            Value::List(vec![s("A"), s("B")])
        );
        assert_eq!(
            eval_str("{for i, v in var.list : v => i}", vars.clone()).unwrap(),
            Value::Object(BTreeMap::from([
                ("a".to_owned(), Value::Number(Num::Int(0))),
                ("b".to_owned(), Value::Number(Num::Int(1))),
            ]))
        );
        assert_eq!(eval_str("var.list[1]", vars.clone()).unwrap(), s("b"));
        assert_eq!(
            eval_str(r#""%{ for v in var.list }${v},%{ endfor }""#, vars.clone()).unwrap(),
            s("a,b,")
        );
        assert_eq!(
            eval_str(
                r#""%{ if var.n == 3 }three%{ else }other%{ endif }""#,
                vars.clone()
            )
            .unwrap(),
            s("three")
        );
        let err = eval_str("var.nope", vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.hcl:1,8-13: Unsupported attribute; This object does not have an attribute named \"nope\"."
        );
    }
}
