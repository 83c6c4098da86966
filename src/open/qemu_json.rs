//! `json:` names read as QEMU reads them (`qobject_from_json`, then
//! `qdict_flatten`): QEMU's JSON dialect (single-quoted strings, `\'`),
//! its limits and its exact error messages, then nested objects flattened
//! into dotted keys with QEMU's precedence rules.
//!
//! QEMU reads the text in three stages, and so does this file:
//!
//! ```text
//!   lexer     characters -> tokens; a character no token can start or
//!             continue is a "stray" error, after which input is skipped
//!             to the next structural character
//!   streamer  tokens -> complete values: a value ends when its braces and
//!             brackets balance (a scalar at top level is complete at once)
//!   parser    one value's tokens -> a value; the first error wins
//! ```
//!
//! The text must hold exactly one value: a second one (or an error after a
//! value) is "Expecting at most one JSON value".

use serde_json::{Map, Number, Value};

use crate::qjson::qdict_order;

/// QEMU's `MAX_NESTING`: open braces and brackets at once.
const MAX_NESTING: usize = 1 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Str,
    Integer,
    Float,
    Keyword,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
}

/// Lexer states (`json-lexer.c`), named after what has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// After an error: skipping to a structural or control character.
    Recovery,
    Str {
        quote: char,
        escape: bool,
    },
    Sign,
    Zero,
    Digits,
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

/// What the lexer does with one character in one state.
enum Step {
    /// The character belongs to the token; go to this state.
    Take(State),
    /// The token so far is complete (the character is read again).
    Finish(Kind),
    /// The character cannot go here: it ends the token as an error.
    Error,
}

fn step(state: State, c: char) -> Step {
    use State::*;
    let digit = c.is_ascii_digit();
    match state {
        Start => match c {
            '"' | '\'' => Step::Take(Str {
                quote: c,
                escape: false,
            }),
            '0' => Step::Take(Zero),
            '1'..='9' => Step::Take(Digits),
            '-' => Step::Take(Sign),
            'a'..='z' => Step::Take(Keyword),
            ' ' | '\t' | '\r' | '\n' => Step::Take(Start),
            '{' | '}' | '[' | ']' | ':' | ',' => Step::Take(Start),
            _ => Step::Error,
        },
        Recovery => Step::Take(Recovery),
        Str { quote, escape } => match c {
            _ if (c as u32) < 0x20 => Step::Error,
            _ if escape => Step::Take(Str {
                quote,
                escape: false,
            }),
            '\\' => Step::Take(Str {
                quote,
                escape: true,
            }),
            // The closing quote is taken; the token then ends.
            _ => Step::Take(Str { quote, escape }),
        },
        Sign => match c {
            '0' => Step::Take(Zero),
            '1'..='9' => Step::Take(Digits),
            _ => Step::Error,
        },
        Zero => match c {
            '.' => Step::Take(Mantissa),
            _ if digit => Step::Error,
            _ => Step::Finish(Kind::Integer),
        },
        Digits => match c {
            'e' | 'E' => Step::Take(ExpE),
            '.' => Step::Take(Mantissa),
            _ if digit => Step::Take(Digits),
            _ => Step::Finish(Kind::Integer),
        },
        Mantissa => match c {
            _ if digit => Step::Take(MantissaDigits),
            _ => Step::Error,
        },
        MantissaDigits => match c {
            'e' | 'E' => Step::Take(ExpE),
            _ if digit => Step::Take(MantissaDigits),
            _ => Step::Finish(Kind::Float),
        },
        ExpE => match c {
            '+' | '-' => Step::Take(ExpSign),
            _ if digit => Step::Take(ExpDigits),
            _ => Step::Error,
        },
        ExpSign => match c {
            _ if digit => Step::Take(ExpDigits),
            _ => Step::Error,
        },
        ExpDigits => match c {
            _ if digit => Step::Take(ExpDigits),
            _ => Step::Finish(Kind::Float),
        },
        Keyword => match c {
            'a'..='z' => Step::Take(Keyword),
            _ => Step::Finish(Kind::Keyword),
        },
    }
}

/// The token kind of a state at the end of the input, if it is complete.
fn finish_at_end(state: State) -> Option<Kind> {
    match state {
        State::Zero | State::Digits => Some(Kind::Integer),
        State::MantissaDigits | State::ExpDigits => Some(Kind::Float),
        State::Keyword => Some(Kind::Keyword),
        _ => None,
    }
}

/// A lexer event: a token, or a stray (the text of the failed token).
enum Lexed {
    Token(Token),
    Stray(String),
}

fn lex(text: &str) -> Vec<Lexed> {
    let mut out = Vec::new();
    let mut state = State::Start;
    let mut token = String::new();
    for c in text.chars() {
        loop {
            if state == State::Recovery {
                // Structural and control characters resynchronise.
                if "[]{}:,".contains(c) || ((c as u32) < 0x20 && c != '\t') {
                    state = State::Start;
                    continue;
                }
                break;
            }
            match step(state, c) {
                Step::Take(next) => {
                    if let State::Str { quote, escape } = state
                        && !escape
                        && c == quote
                    {
                        token.push(c);
                        out.push(Lexed::Token(Token {
                            kind: Kind::Str,
                            text: std::mem::take(&mut token),
                        }));
                        state = State::Start;
                        break;
                    }
                    if state == State::Start {
                        let kind = match c {
                            '{' => Some(Kind::LCurly),
                            '}' => Some(Kind::RCurly),
                            '[' => Some(Kind::LSquare),
                            ']' => Some(Kind::RSquare),
                            ':' => Some(Kind::Colon),
                            ',' => Some(Kind::Comma),
                            _ => None,
                        };
                        if let Some(kind) = kind {
                            out.push(Lexed::Token(Token {
                                kind,
                                text: c.to_string(),
                            }));
                            break;
                        }
                        if next == State::Start {
                            break; // white space
                        }
                    }
                    token.push(c);
                    state = next;
                    break;
                }
                Step::Finish(kind) => {
                    out.push(Lexed::Token(Token {
                        kind,
                        text: std::mem::take(&mut token),
                    }));
                    state = State::Start;
                }
                Step::Error => {
                    token.push(c);
                    out.push(Lexed::Stray(std::mem::take(&mut token)));
                    state = State::Recovery;
                    break;
                }
            }
        }
    }
    match state {
        State::Start | State::Recovery => {}
        s => match finish_at_end(s) {
            Some(kind) => out.push(Lexed::Token(Token { kind, text: token })),
            None => out.push(Lexed::Stray(token)),
        },
    }
    out
}

/// The recursive-descent parser over one complete value's tokens
/// (`json-parser.c`); the first error found is the one reported.
struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
}

type Parsed<T> = Result<T, String>;

fn parse_error(message: impl std::fmt::Display) -> String {
    format!("JSON parse error, {message}")
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn pop(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn value(&mut self) -> Parsed<Value> {
        let Some(token) = self.peek() else {
            return Err(parse_error("premature EOI"));
        };
        match token.kind {
            Kind::LCurly => self.object(),
            Kind::LSquare => self.array(),
            Kind::Str => {
                let token = self.pop().expect("peeked").clone();
                string(&token.text).map(Value::String)
            }
            Kind::Integer | Kind::Float => {
                let token = self.pop().expect("peeked");
                Ok(number(&token.text, token.kind))
            }
            Kind::Keyword => match self.pop().expect("peeked").text.as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "null" => Ok(Value::Null),
                other => Err(parse_error(format!("invalid keyword '{other}'"))),
            },
            _ => Err(parse_error("expecting value")),
        }
    }

    fn object(&mut self) -> Parsed<Value> {
        self.pop();
        let mut map = Map::new();
        match self.peek() {
            None => return Err(parse_error("premature EOI")),
            Some(t) if t.kind == Kind::RCurly => {
                self.pop();
                return Ok(Value::Object(map));
            }
            Some(_) => {}
        }
        loop {
            self.pair(&mut map)?;
            match self.pop().map(|t| t.kind) {
                None => return Err(parse_error("premature EOI")),
                Some(Kind::RCurly) => return Ok(Value::Object(map)),
                Some(Kind::Comma) => {}
                Some(_) => return Err(parse_error("expected separator in dict")),
            }
        }
    }

    fn pair(&mut self, map: &mut Map<String, Value>) -> Parsed<()> {
        if self.peek().is_none() {
            return Err(parse_error("premature EOI"));
        }
        let Value::String(key) = self.value()? else {
            return Err(parse_error("key is not a string in object"));
        };
        match self.pop().map(|t| t.kind) {
            None => return Err(parse_error("premature EOI")),
            Some(Kind::Colon) => {}
            Some(_) => return Err(parse_error("missing : in object pair")),
        }
        let value = self.value()?;
        if map.contains_key(&key) {
            return Err(parse_error("duplicate key"));
        }
        map.insert(key, value);
        Ok(())
    }

    fn array(&mut self) -> Parsed<Value> {
        self.pop();
        let mut items = Vec::new();
        match self.peek() {
            None => return Err(parse_error("premature EOI")),
            Some(t) if t.kind == Kind::RSquare => {
                self.pop();
                return Ok(Value::Array(items));
            }
            Some(_) => {}
        }
        loop {
            items.push(self.value()?);
            match self.pop().map(|t| t.kind) {
                None => return Err(parse_error("premature EOI")),
                Some(Kind::RSquare) => return Ok(Value::Array(items)),
                Some(Kind::Comma) => {}
                Some(_) => return Err(parse_error("expected separator in list")),
            }
        }
    }
}

/// Four hex digits at the start of `s`, if they are there.
fn hex4(s: &[char]) -> Option<u32> {
    if s.len() < 4 {
        return None;
    }
    s[..4]
        .iter()
        .try_fold(0, |acc, c| Some(acc << 4 | c.to_digit(16)?))
}

/// A string token's value (`parse_string`): escapes decoded, `\u` pairs
/// joined; anything else after a backslash is an error.
fn string(token: &str) -> Parsed<String> {
    let chars: Vec<char> = token.chars().collect();
    let body = &chars[1..chars.len() - 1];
    let mut out = String::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] != '\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let begin = i;
        i += 1;
        let c = body[i];
        i += 1;
        match c {
            '"' | '\'' | '\\' | '/' => out.push(c),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let mut cp = hex4(&body[i..]);
                i += 4;
                if let Some(high @ 0xd800..=0xdbff) = cp
                    && body.get(i) == Some(&'\\')
                    && body.get(i + 1) == Some(&'u')
                {
                    cp = match hex4(&body[i + 2..]) {
                        Some(low @ 0xdc00..=0xdfff) => {
                            i += 6;
                            Some(0x10000 + ((high & 0x3ff) << 10) + (low & 0x3ff))
                        }
                        _ => None,
                    };
                }
                match cp.and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        // QEMU quotes what it consumed, up to the token's end.
                        let end = i.min(body.len() + 1);
                        let quoted: String = chars[begin + 1..end + 1].iter().collect();
                        return Err(parse_error(format!(
                            "{quoted} is not a valid Unicode character"
                        )));
                    }
                }
            }
            _ => return Err(parse_error("invalid escape sequence in string")),
        }
    }
    Ok(out)
}

/// A number token: int64, else uint64, else a double, as QEMU's `QNum`.
fn number(text: &str, kind: Kind) -> Value {
    if kind == Kind::Integer {
        if let Ok(n) = text.parse::<i64>() {
            return Value::Number(n.into());
        }
        if let Ok(n) = text.parse::<u64>() {
            return Value::Number(n.into());
        }
    }
    let f: f64 = text.parse().unwrap_or(0.0);
    // An exponent past the double's range is infinite, which JSON cannot
    // carry; QEMU would print it as "inf".
    Number::from_f64(f).map_or_else(|| Value::String(format!("{f}")), Value::Number)
}

/// Parses a `json:` name's text into one value, or QEMU's error message.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut result: Option<Value> = None;
    let mut error: Option<String> = None;
    let mut emit = |outcome: Result<Value, String>| {
        if result.take().is_some() {
            error = Some("Expecting at most one JSON value".to_string());
        }
        if error.is_some() {
            return;
        }
        match outcome {
            Ok(v) => result = Some(v),
            Err(e) => error = Some(e),
        }
    };
    let mut pending: Vec<Token> = Vec::new();
    let (mut braces, mut brackets) = (0i64, 0i64);
    for event in lex(text) {
        let token = match event {
            Lexed::Stray(text) => {
                emit(Err(parse_error(format!("stray '{text}'"))));
                pending.clear();
                (braces, brackets) = (0, 0);
                continue;
            }
            Lexed::Token(t) => t,
        };
        match token.kind {
            Kind::LCurly => braces += 1,
            Kind::RCurly => braces -= 1,
            Kind::LSquare => brackets += 1,
            Kind::RSquare => brackets -= 1,
            _ => {}
        }
        if braces + brackets > MAX_NESTING as i64 {
            emit(Err("JSON nesting depth limit exceeded".to_string()));
            pending.clear();
            (braces, brackets) = (0, 0);
            continue;
        }
        pending.push(token);
        if (braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0 {
            continue;
        }
        let mut parser = Parser {
            tokens: &pending,
            pos: 0,
        };
        emit(parser.value());
        pending.clear();
        (braces, brackets) = (0, 0);
    }
    if !pending.is_empty() {
        let mut parser = Parser {
            tokens: &pending,
            pos: 0,
        };
        emit(parser.value());
    }
    match (result, error) {
        (_, Some(e)) => Err(e),
        (Some(v), None) => Ok(v),
        (None, None) => Err("Expecting a JSON value".to_string()),
    }
}

/// `qdict_flatten`: nested non-empty objects and arrays become dotted keys
/// (`file.filename`, `server.0.host`). A nested value replaces a dotted key
/// given at the top level; between two nested values the later one in
/// QEMU's dictionary order wins. Empty objects and arrays stay as values.
pub fn flatten(top: &Map<String, Value>) -> Map<String, Value> {
    let mut out = top.clone();
    for (key, _) in qdict_order(top) {
        // Earlier flattening may have replaced this entry with a scalar.
        let Some(value) = out.get(key).cloned() else {
            continue;
        };
        if is_nested(&value) {
            out.shift_remove(key);
            flatten_into(&value, key, &mut out);
        }
    }
    out
}

fn is_nested(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn flatten_into(value: &Value, prefix: &str, out: &mut Map<String, Value>) {
    let entries: Vec<(String, &Value)> = match value {
        Value::Object(m) => qdict_order(m)
            .into_iter()
            .map(|(k, v)| (format!("{prefix}.{k}"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{prefix}.{i}"), v))
            .collect(),
        _ => return,
    };
    for (key, v) in entries {
        if is_nested(v) {
            flatten_into(v, &key, out);
        } else {
            out.insert(key, v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn reads_qemu_dialect() {
        assert_eq!(
            parse(r#"{'a': "x\'y", "b": [1, -2, 1.5e3, true, null], "c": {}}"#).unwrap(),
            json!({"a": "x'y", "b": [1, -2, 1500.0, true, null], "c": {}})
        );
        assert_eq!(parse(r#""\u00e9\ud83d\ude00""#).unwrap(), json!("é😀"));
        assert_eq!(
            parse("18446744073709551615").unwrap(),
            json!(18446744073709551615u64)
        );
    }

    #[test]
    fn errors_are_worded_as_qemu_words_them() {
        let cases = [
            (r#"{"a":1,"a":2}"#, "JSON parse error, duplicate key"),
            (r#"{"driver":"raw""#, "JSON parse error, premature EOI"),
            (r#"{"a":1} x"#, "Expecting at most one JSON value"),
            ("", "Expecting a JSON value"),
            ("   ", "Expecting a JSON value"),
            (r#"{"a" 1}"#, "JSON parse error, missing : in object pair"),
            (
                r#"{"a":1 "b":2}"#,
                "JSON parse error, expected separator in dict",
            ),
            ("[1 2]", "JSON parse error, expected separator in list"),
            ("{1:2}", "JSON parse error, key is not a string in object"),
            (r#"{"a":x}"#, "JSON parse error, invalid keyword 'x'"),
            ("@", "JSON parse error, stray '@'"),
            ("01", "JSON parse error, stray '01'"),
            ("1.", "JSON parse error, stray '1.'"),
            (r#""abc"#, "JSON parse error, stray '\"abc'"),
            ("]", "JSON parse error, expecting value"),
            (
                r#""\x""#,
                "JSON parse error, invalid escape sequence in string",
            ),
            (
                r#""\ud800""#,
                "JSON parse error, \\ud800 is not a valid Unicode character",
            ),
            (
                r#""\u12""#,
                "JSON parse error, \\u12\" is not a valid Unicode character",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), message, "{text}");
        }
        let deep = "[".repeat(MAX_NESTING + 1);
        assert_eq!(err(&deep), "JSON nesting depth limit exceeded");
    }

    #[test]
    fn nested_keys_win_over_dotted_ones() {
        let v = parse(r#"{"file.filename":"B","file":{"filename":"A"},"x":[]}"#).unwrap();
        let flat = flatten(v.as_object().unwrap());
        assert_eq!(flat["file.filename"], json!("A"));
        assert_eq!(flat["x"], json!([]));
        assert!(!flat.contains_key("file"));
        let v = parse(r#"{"server":[{"host":"h","port":1}]}"#).unwrap();
        let flat = flatten(v.as_object().unwrap());
        assert_eq!(flat["server.0.host"], json!("h"));
        assert_eq!(flat["server.0.port"], json!(1));
    }
}
