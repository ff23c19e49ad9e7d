//! Artifact filter expressions: boolean expressions over an artifact's metadata, compatible with HashiCorp
//! [go-bexpr](https://github.com/hashicorp/go-bexpr) as the Go operator evaluates them (docs/run-completion-events.md,
//! "What the operator records").
//!
//! ```text
//! pushed == 1
//! accuracy > 0.9 and stage == "prod"
//! not (tags contains "draft") or owner.team in `["ml", "data"]`
//! name matches "^model-[0-9]+$" and labels is not empty
//! ```
//!
//! # Grammar
//! - **Selectors** name a value in the metadata object: an identifier (`[A-Za-z_][A-Za-z0-9_/-]*`), then any number
//!   of `.field`, `.0` (array index) or `["any key"]` steps into nested objects and arrays.
//! - **Match expressions**: `sel == v`, `sel != v`, `sel < n`, `sel <= n`, `sel > n`, `sel >= n`, `v in sel`,
//!   `v not in sel`, `sel contains v`, `sel not contains v`, `sel matches "regex"`, `sel not matches "regex"`,
//!   `sel is empty`, `sel is not empty`.
//! - **Values**: numbers (`1`, `-2.5`), double-quoted strings with Go escapes (`"a\"b"`), backtick raw strings,
//!   and bare words (`true`, `prod`, `a.b`), which stand for their own text.
//! - **Boolean structure**: `not`, `and` (binds tighter), `or`, parentheses.
//!
//! # Semantics (as go-bexpr over a decoded JSON object)
//! A value is converted to the type of the metadata field it is compared with; how it was written does not matter:
//! - string field: compared with the value's text (`v == 1` matches `{"v": "1"}`, `v == 1.0` does not);
//! - number field: the value is parsed as a number (`v == 1`, `v == 1.0` and `v == "1"` all match `{"v": 1}`);
//! - boolean field: the value is parsed like Go's `strconv.ParseBool` (`true`, `T`, `1`, `false`, `F`, `0`, ...).
//!
//! `in`/`contains` look for an element equal to the value in an array, a key in an object, or a substring in a
//! string. `is empty` holds for an empty string, array or object. `matches` applies a regular expression (RE2 syntax,
//! checked when the filter is parsed) to a string field. `and`/`or` evaluate left to right and stop early.
//!
//! Anything else is an evaluation error: a missing field, a field of a type the operator does not apply to (`null`,
//! an object compared with `==`), or a value that does not convert. As in go-bexpr, an error anywhere makes the whole
//! expression fail ([`Filter::evaluate`]); [`Filter::matches`] treats that as "no match", which is what artifact
//! selection does (the artifact is skipped).
//!
//! # Extensions over go-bexpr (documented choices)
//! - `<`, `<=`, `>`, `>=` compare numbers: the field must be a number, or a string holding one; the value must be a
//!   number (checked at parse time).
//! - Identifiers may start with `_` and contain `-`, because an artifact path (`COMPONENT:ARTIFACT[FILTER]`) cannot
//!   hold the `["key"]` form (no brackets in a filter there) and metadata keys often contain dashes.
//!
//! Parsing is a recursive descent with a nesting limit ([`MAX_NESTING`]), so hostile input fails with an error rather
//! than overflowing the stack.

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde_json::{Map, Value};

/// How deep parentheses and `not`s may nest.
pub const MAX_NESTING: usize = 64;

/// A filter expression that does not parse. The message names the expression and the column (1-based, in
/// characters) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter expression {expression:?}: {message} at column {column}")]
pub struct FilterError {
    /// The expression as written.
    pub expression: String,
    /// 1-based character column of the offending token (one past the end for "unexpected end").
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Why an expression could not be evaluated against some metadata (go-bexpr reports these as errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The metadata has no value at the selector.
    #[error("no value at selector {selector:?}")]
    Missing {
        /// The selector, e.g. `pushed`.
        selector: String,
    },
    /// The operator does not apply to the value's type (e.g. `<` on a string).
    #[error("operator {operator} does not apply to the {kind} at selector {selector:?}")]
    Unsupported {
        /// The selector.
        selector: String,
        /// The operator.
        operator: &'static str,
        /// The value's type.
        kind: &'static str,
    },
    /// The literal cannot be converted to the value's type.
    #[error("cannot convert {value:?} to the {kind} at selector {selector:?}")]
    Conversion {
        /// The selector.
        selector: String,
        /// The literal.
        value: String,
        /// The value's type.
        kind: &'static str,
    },
}

/// A parsed filter expression. Parse once with [`Filter::parse`], evaluate many times.
#[derive(Debug, Clone)]
pub struct Filter {
    source: String,
    expr: Expr,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Filter {
    /// Parses an expression, checking its syntax, number operands and regular expressions.
    pub fn parse(source: &str) -> Result<Self, FilterError> {
        let error = |column: usize, message: String| FilterError {
            expression: source.to_string(),
            column,
            message,
        };
        let tokens = lex(source).map_err(|(column, message)| error(column, message))?;
        let end_column = source.chars().count() + 1;
        let mut parser = Parser {
            tokens,
            pos: 0,
            depth: 0,
            end_column,
        };
        let expr = parser
            .parse_or()
            .map_err(|(column, message)| error(column, message))?;
        if let Some(token) = parser.tokens.get(parser.pos) {
            return Err(error(
                token.column,
                format!("unexpected {}", token.tok.describe()),
            ));
        }
        Ok(Self {
            source: source.to_string(),
            expr,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `metadata` satisfies the expression; evaluation errors (missing fields, type mismatches) count as
    /// no match.
    pub fn matches(&self, metadata: &Value) -> bool {
        self.evaluate(metadata).unwrap_or(false)
    }

    /// [`Filter::matches`] for metadata held as a JSON object.
    pub fn matches_object(&self, metadata: &Map<String, Value>) -> bool {
        self.evaluate_object(metadata).unwrap_or(false)
    }

    /// Evaluates the expression, reporting why it could not be (for logs and diagnostics).
    pub fn evaluate(&self, metadata: &Value) -> Result<bool, EvalError> {
        eval(&self.expr, Root::Value(metadata))
    }

    /// [`Filter::evaluate`] for metadata held as a JSON object.
    pub fn evaluate_object(&self, metadata: &Map<String, Value>) -> Result<bool, EvalError> {
        eval(&self.expr, Root::Object(metadata))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Match(Selector, MatchOp),
}

#[derive(Debug, Clone)]
struct Selector(Vec<String>);

impl Selector {
    fn text(&self) -> String {
        self.0.join(".")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ordering {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone)]
enum MatchOp {
    Equal { value: String, negated: bool },
    Compare { ordering: Ordering, value: f64 },
    Contains { value: String, negated: bool },
    Matches { regex: Box<Regex>, negated: bool },
    IsEmpty { negated: bool },
}

// ---------------------------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------------------------

type SyntaxError = (usize, String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// A selector or bare word; `bare` when it is a single identifier (so it may be a keyword).
    Word {
        segments: Vec<String>,
        bare: bool,
    },
    Number(String),
    Str(String),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Eq => "'=='".into(),
            Tok::Ne => "'!='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Word { segments, .. } => format!("'{}'", segments.join(".")),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(s) => format!("string {s:?}"),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Tok::Word { segments, bare: true } if segments.len() == 1 && segments[0] == keyword)
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    column: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '-')
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.i + offset).copied()
    }

    fn column(&self) -> usize {
        self.i + 1
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> String {
        let start = self.i;
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
        self.chars[start..self.i].iter().collect()
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let column = self.column();
        let quote = self.peek();
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err((column, "unterminated string".into()));
            };
            self.i += 1;
            match (quote, c) {
                (Some('`'), '`') | (Some('"'), '"') => return Ok(out),
                (Some('`'), '\r') => {}
                (Some('"'), '\n') => return Err((column, "newline in string".into())),
                (Some('"'), '\\') => out.push(self.escape()?),
                _ => out.push(c),
            }
        }
    }

    /// A Go escape sequence after `\` in a double-quoted string.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        let column = self.i;
        let bad = || (column, "invalid escape sequence in string".to_string());
        let c = self.peek().ok_or_else(bad)?;
        self.i += 1;
        let hex = |lexer: &mut Lexer, n: usize| -> Result<char, SyntaxError> {
            let digits: String = lexer
                .chars
                .get(lexer.i..lexer.i + n)
                .ok_or_else(bad)?
                .iter()
                .collect();
            lexer.i += n;
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(bad)
        };
        Ok(match c {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            '"' => '"',
            'x' => hex(self, 2)?,
            'u' => hex(self, 4)?,
            'U' => hex(self, 8)?,
            '0'..='7' => {
                let digits: String = self
                    .chars
                    .get(self.i - 1..self.i + 2)
                    .ok_or_else(bad)?
                    .iter()
                    .collect();
                self.i += 2;
                u32::from_str_radix(&digits, 8)
                    .ok()
                    .filter(|v| *v <= 255)
                    .and_then(char::from_u32)
                    .ok_or_else(bad)?
            }
            _ => return Err(bad()),
        })
    }

    fn number(&mut self) -> Result<String, SyntaxError> {
        let column = self.column();
        let bad = || (column, "invalid number".to_string());
        let start = self.i;
        if self.peek() == Some('-') {
            self.i += 1;
        }
        match self.peek() {
            Some('0') => self.i += 1,
            Some('1'..='9') => {
                self.take_while(|c| c.is_ascii_digit());
            }
            _ => return Err(bad()),
        }
        if self.peek() == Some('.') {
            self.i += 1;
            if self.take_while(|c| c.is_ascii_digit()).is_empty() {
                return Err(bad());
            }
        }
        // go-bexpr: a number ends at whitespace, ')' or the end of the expression.
        match self.peek() {
            None | Some(')') => {}
            Some(c) if c.is_whitespace() => {}
            Some(_) => return Err(bad()),
        }
        Ok(self.chars[start..self.i].iter().collect())
    }

    fn word(&mut self) -> Result<Tok, SyntaxError> {
        let mut segments = vec![self.take_while(is_ident_char)];
        let mut bare = true;
        loop {
            match (self.peek(), self.peek_at(1)) {
                (Some('.'), Some(c)) if is_ident_start(c) => {
                    self.i += 1;
                    segments.push(self.take_while(is_ident_char));
                }
                (Some('.'), Some(c)) if c.is_ascii_digit() => {
                    self.i += 1;
                    segments.push(self.take_while(|c| c.is_ascii_digit()));
                }
                (Some('.'), _) => return Err((self.column(), "expected a field name after '.'".into())),
                (Some('['), _) => {
                    let column = self.column();
                    self.i += 1;
                    self.skip_whitespace();
                    if !matches!(self.peek(), Some('"' | '`')) {
                        return Err((
                            column,
                            "invalid index: expected a quoted key inside '[...]'".into(),
                        ));
                    }
                    segments.push(self.string()?);
                    self.skip_whitespace();
                    if self.peek() != Some(']') {
                        return Err((column, "invalid index: expected ']'".into()));
                    }
                    self.i += 1;
                }
                _ => break,
            }
            bare = false;
        }
        Ok(Tok::Word { segments, bare })
    }
}

fn lex(source: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer {
        chars: source.chars().collect(),
        i: 0,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let column = lexer.column();
        let Some(c) = lexer.peek() else { return Ok(tokens) };
        let two = |lexer: &mut Lexer, second: char, with: Tok, without: Option<Tok>| {
            if lexer.peek_at(1) == Some(second) {
                lexer.i += 2;
                Ok(with)
            } else {
                lexer.i += 1;
                without.ok_or_else(|| (column, format!("unexpected '{c}' (did you mean '{c}{second}'?)")))
            }
        };
        let tok = match c {
            '(' => {
                lexer.i += 1;
                Tok::LParen
            }
            ')' => {
                lexer.i += 1;
                Tok::RParen
            }
            '=' => two(&mut lexer, '=', Tok::Eq, None)?,
            '!' => two(&mut lexer, '=', Tok::Ne, None)?,
            '<' => two(&mut lexer, '=', Tok::Le, Some(Tok::Lt))?,
            '>' => two(&mut lexer, '=', Tok::Ge, Some(Tok::Gt))?,
            '"' | '`' => Tok::Str(lexer.string()?),
            '-' | '0'..='9' => Tok::Number(lexer.number()?),
            c if is_ident_start(c) => lexer.word()?,
            c => return Err((column, format!("unexpected character {c:?}"))),
        };
        tokens.push(Token { tok, column });
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + offset).map(|t| &t.tok)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end_column, |t| t.column)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(keyword))
    }

    fn unexpected(&self, expected: &str) -> SyntaxError {
        let found = self
            .peek()
            .map_or_else(|| "end of expression".to_string(), Tok::describe);
        (self.column(), format!("expected {expected}, found {found}"))
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err((
                self.column(),
                format!("expression nested deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.parse_and()?];
        while self.is_keyword("or") {
            self.pos += 1;
            terms.push(self.parse_and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.parse_not()?];
        while self.is_keyword("and") {
            self.pos += 1;
            terms.push(self.parse_not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn parse_not(&mut self) -> Result<Expr, SyntaxError> {
        // `not` negates, unless it is itself the selector or value of a match (`not == 1`, `not in tags`).
        let operand_follows = !matches!(
            self.peek_at(1),
            None | Some(Tok::RParen | Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge)
        ) && !["is", "contains", "matches", "in", "and", "or"]
            .iter()
            .any(|kw| self.peek_at(1).is_some_and(|t| t.is_keyword(kw)));
        if self.is_keyword("not") && operand_follows {
            self.pos += 1;
            self.enter()?;
            let inner = self.parse_not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek() == Some(&Tok::LParen) {
            let open = self.column();
            self.pos += 1;
            self.enter()?;
            let inner = self.parse_or()?;
            if self.peek() != Some(&Tok::RParen) {
                let (column, message) = self.unexpected("')'");
                return Err((column, format!("{message} (unmatched '(' at column {open})")));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        self.parse_match()
    }

    fn parse_match(&mut self) -> Result<Expr, SyntaxError> {
        let operand_column = self.column();
        let operand = match self.peek() {
            Some(Tok::Word { .. } | Tok::Number(_) | Tok::Str(_)) => self.next().map(|t| t.tok),
            _ => None,
        };
        let Some(operand) = operand else {
            return Err(self.unexpected("a selector, a value, 'not' or '('"));
        };

        // `value in selector` / `value not in selector`
        let negated_in = self.is_keyword("not") && self.peek_at(1).is_some_and(|t| t.is_keyword("in"));
        if self.is_keyword("in") || negated_in {
            self.pos += if negated_in { 2 } else { 1 };
            let value = literal_text(operand);
            let selector = match self.peek() {
                Some(Tok::Word { segments, .. }) => Selector(segments.clone()),
                _ => return Err(self.unexpected("a selector after 'in'")),
            };
            self.pos += 1;
            return Ok(Expr::Match(
                selector,
                MatchOp::Contains {
                    value,
                    negated: negated_in,
                },
            ));
        }

        let Tok::Word { segments, .. } = operand else {
            return Err((
                operand_column,
                format!(
                    "a value must be followed by 'in' or 'not in', found {}",
                    self.peek()
                        .map_or_else(|| "end of expression".to_string(), Tok::describe)
                ),
            ));
        };
        let selector = Selector(segments);
        let mut negated = false;
        if self.is_keyword("not")
            && self
                .peek_at(1)
                .is_some_and(|t| t.is_keyword("contains") || t.is_keyword("matches"))
        {
            negated = true;
            self.pos += 1;
        }
        let op_column = self.column();
        let op = match self.next().map(|t| t.tok) {
            Some(Tok::Eq) if !negated => MatchOp::Equal {
                value: self.parse_value()?.1,
                negated: false,
            },
            Some(Tok::Ne) if !negated => MatchOp::Equal {
                value: self.parse_value()?.1,
                negated: true,
            },
            Some(tok @ (Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge)) if !negated => {
                let ordering = match tok {
                    Tok::Lt => Ordering::Less,
                    Tok::Le => Ordering::LessOrEqual,
                    Tok::Gt => Ordering::Greater,
                    _ => Ordering::GreaterOrEqual,
                };
                let (column, text) = self.parse_value()?;
                let value = text
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        (
                            column,
                            format!("expected a number after {}, found {text:?}", tok.describe()),
                        )
                    })?;
                MatchOp::Compare { ordering, value }
            }
            Some(tok) if tok.is_keyword("contains") => MatchOp::Contains {
                value: self.parse_value()?.1,
                negated,
            },
            Some(tok) if tok.is_keyword("matches") => {
                let (column, pattern) = self.parse_value()?;
                let regex = Regex::new(&pattern)
                    .map_err(|e| (column, format!("invalid regular expression {pattern:?}: {e}")))?;
                MatchOp::Matches {
                    regex: Box::new(regex),
                    negated,
                }
            }
            Some(tok) if tok.is_keyword("is") && !negated => {
                let negated = self.is_keyword("not");
                if negated {
                    self.pos += 1;
                }
                if !self.is_keyword("empty") {
                    return Err(self.unexpected(if negated {
                        "'empty'"
                    } else {
                        "'empty' or 'not empty'"
                    }));
                }
                self.pos += 1;
                MatchOp::IsEmpty { negated }
            }
            _ => {
                self.pos -= 1;
                let (_, message) = self.unexpected(
                    "an operator (==, !=, <, <=, >, >=, contains, matches, is empty, is not empty)",
                );
                return Err((op_column, message));
            }
        };
        Ok(Expr::Match(selector, op))
    }

    fn parse_value(&mut self) -> Result<(usize, String), SyntaxError> {
        let column = self.column();
        match self.peek() {
            Some(Tok::Word { .. } | Tok::Number(_) | Tok::Str(_)) => {}
            _ => return Err(self.unexpected("a value")),
        }
        let tok = self.next().map(|t| t.tok);
        Ok((column, tok.map(literal_text).unwrap_or_default()))
    }
}

/// The text a value token stands for (go-bexpr's `MatchValue.Raw`).
fn literal_text(tok: Tok) -> String {
    match tok {
        Tok::Word { segments, .. } => segments.join("."),
        Tok::Number(text) | Tok::Str(text) => text,
        other => other.describe(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Root<'a> {
    Value(&'a Value),
    Object(&'a Map<String, Value>),
}

fn step<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

impl<'a> Root<'a> {
    fn get(self, selector: &Selector) -> Option<&'a Value> {
        let (first, rest) = selector.0.split_first()?;
        let start = match self {
            Root::Value(value) => step(value, first)?,
            Root::Object(map) => map.get(first)?,
        };
        rest.iter().try_fold(start, |value, segment| step(value, segment))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// go-bexpr equality: `text` converted to the type of `value`. `None` when it does not convert or the type has
/// no equality.
fn equal(value: &Value, text: &str) -> Result<bool, &'static str> {
    match value {
        Value::String(s) => Ok(s == text),
        Value::Number(n) => {
            let parsed = text.trim().parse::<f64>().map_err(|_| "number")?;
            Ok(n.as_f64() == Some(parsed))
        }
        Value::Bool(b) => parse_go_bool(text).map(|parsed| parsed == *b).ok_or("boolean"),
        other => Err(kind(other)),
    }
}

fn eval(expr: &Expr, root: Root<'_>) -> Result<bool, EvalError> {
    match expr {
        Expr::Or(terms) => {
            for term in terms {
                if eval(term, root)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::And(terms) => {
            for term in terms {
                if !eval(term, root)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Not(inner) => Ok(!eval(inner, root)?),
        Expr::Match(selector, op) => eval_match(selector, op, root),
    }
}

fn eval_match(selector: &Selector, op: &MatchOp, root: Root<'_>) -> Result<bool, EvalError> {
    let value = root.get(selector).ok_or_else(|| EvalError::Missing {
        selector: selector.text(),
    })?;
    let unsupported = |operator: &'static str| EvalError::Unsupported {
        selector: selector.text(),
        operator,
        kind: kind(value),
    };
    match op {
        MatchOp::Equal { value: text, negated } => {
            let operator = if *negated { "!=" } else { "==" };
            match equal(value, text) {
                Ok(eq) => Ok(eq != *negated),
                Err(target @ ("number" | "boolean")) => Err(EvalError::Conversion {
                    selector: selector.text(),
                    value: text.clone(),
                    kind: target,
                }),
                Err(_) => Err(unsupported(operator)),
            }
        }
        MatchOp::Compare {
            ordering,
            value: bound,
        } => {
            let number = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(number) = number else {
                return Err(unsupported(match ordering {
                    Ordering::Less => "<",
                    Ordering::LessOrEqual => "<=",
                    Ordering::Greater => ">",
                    Ordering::GreaterOrEqual => ">=",
                }));
            };
            Ok(match ordering {
                Ordering::Less => number < *bound,
                Ordering::LessOrEqual => number <= *bound,
                Ordering::Greater => number > *bound,
                Ordering::GreaterOrEqual => number >= *bound,
            })
        }
        MatchOp::Contains { value: text, negated } => {
            let found = match value {
                Value::String(s) => s.contains(text.as_str()),
                Value::Array(items) => items.iter().any(|item| equal(item, text) == Ok(true)),
                Value::Object(map) => map.contains_key(text.as_str()),
                _ => return Err(unsupported(if *negated { "not in" } else { "in" })),
            };
            Ok(found != *negated)
        }
        MatchOp::Matches { regex, negated } => match value {
            Value::String(s) => Ok(regex.is_match(s) != *negated),
            _ => Err(unsupported(if *negated { "not matches" } else { "matches" })),
        },
        MatchOp::IsEmpty { negated } => {
            let empty = match value {
                Value::String(s) => s.is_empty(),
                Value::Array(items) => items.is_empty(),
                Value::Object(map) => map.is_empty(),
                _ => return Err(unsupported(if *negated { "is not empty" } else { "is empty" })),
            };
            Ok(empty != *negated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn check(expression: &str, metadata: Value) -> bool {
        Filter::parse(expression)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&metadata)
    }

    #[test]
    fn spec_examples() {
        assert!(check("pushed == 1", json!({"pushed": 1})));
        assert!(check("pushed == 1", json!({"pushed": 1.0})));
        assert!(!check("pushed == 1", json!({"pushed": 0})));
        assert!(!check("pushed == 1", json!({})));
        assert!(check(r#"a > 2 and b == "x""#, json!({"a": 3, "b": "x"})));
        assert!(!check(r#"a > 2 and b == "x""#, json!({"a": 2, "b": "x"})));
        assert!(!check(r#"a > 2 and b == "x""#, json!({"a": 3, "b": "y"})));
    }

    #[test]
    fn table() {
        let metadata = json!({
            "pushed": 1, "flag": true, "name": "model-42", "s1": "1", "empty": "", "none": null,
            "tags": ["prod", "v2", 3], "labels": {"team": "ml", "tier": "gold"}, "nested": {"deep": {"x": 1.5}},
            "list": [], "obj": {}, "key-with-dash": "d", "a/b": "slash", "big": 12345678901234u64, "neg": -2
        });
        let cases: &[(&str, bool)] = &[
            // equality converts the value to the field's type
            ("pushed == 1.0", true),
            (r#"pushed == "1""#, true),
            ("pushed != 1", false),
            ("pushed != 2", true),
            ("s1 == 1", true),
            ("s1 == 1.0", false),
            (r#"s1 == "1""#, true),
            ("flag == true", true),
            ("flag == T", true),
            ("flag == 1", true),
            ("flag == false", false),
            ("flag == yes", false), // conversion error
            ("name == model-42", true),
            ("name == `model-42`", true),
            ("neg == -2", true),
            ("big == 12345678901234", true),
            // ordering (extension)
            ("pushed >= 1", true),
            ("pushed > 1", false),
            ("pushed < 1.5", true),
            ("pushed <= 0", false),
            ("s1 > 0", true),
            ("name > 0", false),
            ("nested.deep.x > 1", true),
            ("neg < -1", true),
            // selectors
            ("labels.team == ml", true),
            (r#"labels["tier"] == "gold""#, true),
            ("tags.0 == prod", true),
            ("tags.9 == prod", false),
            ("key-with-dash == d", true),
            ("a/b == slash", true),
            ("missing.path == 1", false),
            ("pushed.x == 1", false),
            // in / contains
            ("prod in tags", true),
            ("3 in tags", true),
            (r#""v3" in tags"#, false),
            ("v3 not in tags", true),
            ("tags contains v2", true),
            ("tags not contains v2", false),
            ("team in labels", true),
            ("labels contains owner", false),
            ("42 in name", true),
            ("1 in pushed", false), // error: in on a number
            // matches
            (r#"name matches "^model-[0-9]+$""#, true),
            (r#"name not matches "^x""#, true),
            (r#"pushed matches "1""#, false), // error: not a string
            // empty
            ("empty is empty", true),
            ("list is empty", true),
            ("obj is empty", true),
            ("tags is empty", false),
            ("tags is not empty", true),
            ("pushed is empty", false),  // error
            ("missing is empty", false), // error, like go-bexpr
            // null and objects have no equality
            ("none == null", false),
            ("labels == 1", false),
            // boolean structure, precedence and short-circuit
            ("pushed == 1 or missing == 1", true),
            ("missing == 1 or pushed == 1", false),
            ("pushed == 2 and missing == 1", false),
            ("not pushed == 2", true),
            ("not not pushed == 1", true),
            ("not (pushed == 1 and flag == false)", true),
            ("pushed == 2 and flag == true or name == model-42", true),
            ("pushed == 2 and (flag == true or name == model-42)", false),
            ("(((pushed == 1)))", true),
            ("not missing == 1", false), // the error fails the whole expression
        ];
        for (expression, expected) in cases {
            assert_eq!(check(expression, metadata.clone()), *expected, "{expression}");
        }
    }

    #[test]
    fn keywords_can_still_be_field_names() {
        assert!(check("not == 1", json!({"not": 1})));
        assert!(check("in == x and is is empty", json!({"in": "x", "is": ""})));
    }

    #[test]
    fn evaluation_errors_say_why() {
        let filter = Filter::parse("pushed == 1").unwrap();
        assert_eq!(
            filter.evaluate(&json!({})).unwrap_err().to_string(),
            "no value at selector \"pushed\""
        );
        assert_eq!(
            Filter::parse("pushed == 2")
                .unwrap()
                .evaluate(&json!({"pushed": true}))
                .unwrap_err()
                .to_string(),
            "cannot convert \"2\" to the boolean at selector \"pushed\""
        );
        assert_eq!(
            filter.evaluate(&json!({"pushed": [1]})).unwrap_err().to_string(),
            "operator == does not apply to the array at selector \"pushed\""
        );
        assert!(!filter.matches(&json!("not an object")));
        let object = json!({"pushed": 1});
        assert!(filter.matches_object(object.as_object().unwrap()));
    }

    #[test]
    fn parse_errors_name_the_expression_and_column() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "expected a selector, a value, 'not' or '(', found end of expression at column 1",
            ),
            (
                "pushed",
                "expected an operator (==, !=, <, <=, >, >=, contains, matches, is empty, is not empty), found end of expression at column 7",
            ),
            ("pushed = 1", "unexpected '=' (did you mean '=='?) at column 8"),
            (
                "pushed == ",
                "expected a value, found end of expression at column 11",
            ),
            (
                "(pushed == 1",
                "expected ')', found end of expression (unmatched '(' at column 1) at column 13",
            ),
            ("pushed == 1)", "unexpected ')' at column 12"),
            ("pushed == \"1", "unterminated string at column 11"),
            ("pushed == 1x", "invalid number at column 11"),
            ("pushed == 01", "invalid number at column 11"),
            ("a > x", "expected a number after '>', found \"x\" at column 5"),
            ("a matches \"(\"", "invalid regular expression \"(\""),
            (
                "1 == a",
                "a value must be followed by 'in' or 'not in', found '==' at column 1",
            ),
            (
                "a is full",
                "expected 'empty' or 'not empty', found 'full' at column 6",
            ),
            ("a == 1 and", "found end of expression at column 11"),
            ("a. == 1", "expected a field name after '.' at column 2"),
            ("a[b] == 1", "invalid index"),
            ("a == 1 # b", "unexpected character '#' at column 8"),
            ("a == \"\\q\"", "invalid escape sequence"),
        ];
        for (expression, expected) in cases {
            let err = Filter::parse(expression).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid filter expression {expression:?}: ")),
                "{err}"
            );
            assert!(err.contains(expected), "{expression}: {err}");
        }
    }

    #[test]
    fn strings_unescape_like_go() {
        assert!(check(
            r#"s == "a\"b\\c\u00e9\x41\101""#,
            json!({"s": "a\"b\\céAA"})
        ));
        assert!(check("s == `a\\n`", json!({"s": "a\\n"})));
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}a == 1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(check(&ok, json!({"a": 1})));
        let deep = format!("{}a == 1{}", "(".repeat(100_000), ")".repeat(100_000));
        let err = Filter::parse(&deep).unwrap_err();
        assert!(
            err.message.contains("nested deeper than 64 levels"),
            "{}",
            err.message
        );
        assert!(Filter::parse(&"not ".repeat(100_000)).is_err());
        assert!(Filter::parse(&"(".repeat(100_000)).is_err());
        // Long flat chains are not nesting.
        let long = vec!["a == 1"; 10_000].join(" or ");
        assert!(check(&long, json!({"a": 1})));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "[a-z0-9 ]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_strings_never_panic_the_parser(s in "\\PC{0,60}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn random_token_soup_never_panics(
            parts in prop::collection::vec(prop_oneof![
                Just("a"), Just("b.c"), Just("("), Just(")"), Just("=="), Just("!="), Just("<"), Just(">="),
                Just("and"), Just("or"), Just("not"), Just("in"), Just("contains"), Just("matches"), Just("is"),
                Just("empty"), Just("1"), Just("-2.5"), Just("\"x\""), Just("`y`"), Just("true"), Just("\"a.*\""),
                Just("tags.0"), Just("[\"k\"]"),
            ], 0..16),
            metadata in arb_json(),
        ) {
            if let Ok(filter) = Filter::parse(&parts.join(" ")) {
                let _ = filter.matches(&metadata);
            }
        }

        #[test]
        fn random_metadata_never_panics_evaluation(metadata in arb_json()) {
            for expression in [
                "a == 1", "a.b != x", "a > 1.5", "b in a", "a contains 1", "a matches \"[0-9]\"", "a is not empty",
                "not (a.a == true or b.c.0 <= -1) and c is empty",
            ] {
                let filter = Filter::parse(expression).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let _ = filter.matches(&metadata);
            }
        }
    }
}
