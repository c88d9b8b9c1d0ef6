//! Text features as onnxruntime computes them: `StringNormalizer`, the `com.microsoft` `Tokenizer` that
//! skl2onnx emits for `CountVectorizer`/`TfidfVectorizer`, and `TfIdfVectorizer` (n-grams, skip-grams,
//! TF/IDF/TFIDF over a string or integer pool).
//!
//! Where onnxruntime leans on a C library, the same rule is spelt out here: case changes map one code point
//! to one code point (glibc's `towlower`/`towupper`, which onnxruntime calls), and token expressions keep
//! RE2's ASCII meaning of `\w`, `\d`, `\s` and `\b`.
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use regex::Regex;
use regex_automata::nfa::thompson::pikevm::{self, PikeVM};
use regex_automata::{Anchored, Input, MatchKind};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{err, floats, ints, slice, string_or, strings};
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("StringNormalizer", string_normalizer);
    reg.insert("Tokenizer", tokenizer);
    reg.insert("TfIdfVectorizer", tfidf_vectorizer);
    reg.insert(FUSED, tokenize_tfidf);
}

/// `[C]` or `[N, C]`, as the text ops take their input.
fn rank_1_or_2(node: &str, op: &str, shape: &[TDim]) -> TractResult<()> {
    ensure!(
        matches!(shape.len(), 1 | 2),
        "node {node:?} ({op}): input has rank {}; onnxruntime takes [C] or [N, C]",
        shape.len()
    );
    Ok(())
}

// ---------------------------------------------------------------- StringNormalizer

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Lower,
    Upper,
    Keep,
}

/// One code point to one code point, as glibc's `towlower` in onnxruntime's `en_US.UTF-8` does: where
/// Unicode's full mapping has several (`İ` lower-cases to `i` + a combining dot), the simple mapping's
/// single code point is its first for lower case, and upper case keeps the character (`ß`).
fn change_case(c: char, case: Case) -> char {
    match case {
        Case::Keep => c,
        Case::Lower => c.to_lowercase().next().unwrap_or(c),
        Case::Upper => {
            let mut u = c.to_uppercase();
            match (u.next(), u.next()) {
                (Some(one), None) => one,
                _ => c,
            }
        }
    }
}

fn with_case(s: &str, case: Case) -> String {
    s.chars().map(|c| change_case(c, case)).collect()
}

#[derive(Debug, Clone)]
struct StringNormalizer {
    node: String,
    case: Case,
    case_sensitive: bool,
    /// As compared: lower-cased unless `is_case_sensitive`.
    stopwords: HashSet<String>,
    /// How many strings are left after filtering stop words (known only at run time).
    kept: Symbol,
}

fn string_normalizer(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let case = match string_or(node, "case_change_action", "NONE")?.as_str() {
        "LOWER" => Case::Lower,
        "UPPER" => Case::Upper,
        "NONE" => Case::Keep,
        other => return Err(err(node, "case_change_action", format!("is {other:?}; LOWER, UPPER or NONE"))),
    };
    let case_sensitive = node.get_attr_opt::<i64>("is_case_sensitive")?.unwrap_or(0) != 0;
    let stopwords = strings(node, "stopwords")?
        .into_iter()
        .map(|s| if case_sensitive { s } else { with_case(&s, Case::Lower) })
        .collect();
    let kept = ctx.template.symbols.new_with_prefix("kept");
    let op = StringNormalizer { node: node.name.clone(), case, case_sensitive, stopwords, kept };
    Ok((KernelOp::boxed(op), vec![]))
}

impl Kernel for StringNormalizer {
    fn name(&self) -> &'static str {
        "MlambdaStringNormalizer"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        rank_1_or_2(&self.node, "StringNormalizer", inputs[0].shape)?;
        ensure!(inputs[0].dt == DatumType::String, "node {:?} (StringNormalizer): input is not text", self.node);
        let mut shape: TVec<TDim> = inputs[0].shape.into();
        if let Some(last) = shape.last_mut().filter(|_| !self.stopwords.is_empty()) {
            *last = self.kept.to_dim();
        }
        Ok((DatumType::String, shape))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        ensure!(
            x.rank() == 1 || x.shape()[0] == 1,
            "node {:?} (StringNormalizer): input is [N, C] with N = {}; onnxruntime takes [C] or [1, C]",
            self.node,
            x.shape()[0]
        );
        let keep = |s: &String| {
            self.stopwords.is_empty()
                || !(if self.case_sensitive {
                    self.stopwords.contains(s)
                } else {
                    self.stopwords.contains(&with_case(s, Case::Lower))
                })
        };
        let mut out: Vec<String> =
            slice::<String>(x)?.iter().filter(|s| keep(s)).map(|s| with_case(s, self.case)).collect();
        if out.is_empty() {
            // every string was a stop word: onnxruntime answers one empty string
            out.push(String::new());
        }
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = out.len();
        }
        tensor_of(&shape, out)
    }
}

// ---------------------------------------------------------------- Tokenizer

#[derive(Debug, Clone)]
enum Split {
    /// Every character a token (`tokenexp="."`, or one empty separator).
    Chars,
    /// Cut at each separator, in order.
    Separators(Vec<Regex>),
    /// The tokens are the expression's matches.
    Expression(Expression),
}

/// A `tokenexp` matched as RE2 does in onnxruntime: leftmost-longest. The `regex` crate finds the leftmost
/// start (which both semantics share) and its leftmost-first end; a pattern with an alternation, where the two
/// ends can differ (`a|ab` on "ab"), also gets an anchored PikeVM that ignores branch priority and so stops at
/// the longest end.
#[derive(Debug, Clone)]
struct Expression {
    first: Regex,
    longest: Option<PikeVM>,
}

impl Expression {
    fn new(pattern: &str) -> Result<Expression, String> {
        let translated = re2_pattern(pattern);
        let first = Regex::new(&translated).map_err(|e| e.to_string())?;
        let longest = if pattern.contains('|') {
            let all = PikeVM::config().match_kind(MatchKind::All);
            Some(PikeVM::builder().configure(all).build(&translated).map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(Expression { first, longest })
    }

    /// The byte range of the leftmost-longest match at or after byte `start`.
    fn find_at(&self, s: &str, start: usize, cache: &mut Option<pikevm::Cache>) -> Option<(usize, usize)> {
        let m = self.first.find_at(s, start)?;
        let Some(vm) = &self.longest else { return Some((m.start(), m.end())) };
        let cache = cache.get_or_insert_with(|| vm.create_cache());
        let longest = vm.find(cache, Input::new(s).range(m.start()..).anchored(Anchored::Yes));
        Some((m.start(), longest.map_or(m.end(), |l| l.end().max(m.end()))))
    }
}

#[derive(Debug, Clone)]
struct Tokenizer {
    node: String,
    mark: bool,
    pad: String,
    mincharnum: usize,
    split: Split,
    /// Tokens per string, padded (known only at run time).
    width: Symbol,
}

/// RE2's Perl classes and word boundaries are ASCII; the `regex` crate's are Unicode. Spells them out so a
/// pattern means what it means in onnxruntime.
fn re2_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `pattern` built by `build` (a separator's `Regex`, or the `tokenexp`'s [`Expression`]), or the error naming
/// the attribute and the fix.
fn compile<T, E: std::fmt::Display>(
    node: &NodeProto,
    attr: &str,
    pattern: &str,
    build: impl FnOnce(&str) -> Result<T, E>,
) -> TractResult<T> {
    build(pattern)
        .map_err(|e| err(node, attr, format!("is not a regular expression mlambda can run ({e}); re-export the model")))
}

fn tokenizer_of(ctx: &ParsingContext, node: &NodeProto) -> TractResult<Tokenizer> {
    let mark = node.get_attr_opt::<i64>("mark")?.unwrap_or(0) != 0;
    let pad = string_or(node, "pad_value", "#")?;
    let mincharnum = node.get_attr_opt::<i64>("mincharnum")?.unwrap_or(1);
    if mincharnum < 1 {
        return Err(err(node, "mincharnum", "must be positive"));
    }
    let separators = strings(node, "separators")?;
    let split = if !separators.is_empty() {
        if separators.len() == 1 && separators[0].is_empty() {
            Split::Chars
        } else {
            Split::Separators(
                separators
                    .iter()
                    .map(|s| compile(node, "separators", s, |p| Regex::new(&re2_pattern(p))))
                    .collect::<TractResult<_>>()?,
            )
        }
    } else {
        let exp = string_or(node, "tokenexp", "")?;
        match exp.as_str() {
            "" => return Err(err(node, "tokenexp", "and `separators` are both missing; one is required")),
            "." => Split::Chars,
            _ => Split::Expression(compile(node, "tokenexp", &exp, Expression::new)?),
        }
    };
    if matches!(split, Split::Chars) && mincharnum > 1 {
        return Err(err(node, "mincharnum", "is too big for character tokens"));
    }
    let width = ctx.template.symbols.new_with_prefix("tokens");
    Ok(Tokenizer { node: node.name.clone(), mark, pad, mincharnum: mincharnum as usize, split, width })
}

fn tokenizer(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((KernelOp::boxed(tokenizer_of(ctx, node)?), vec![]))
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Bytes of the character at `at` (1 past the end, which ends a search, as RE2's `Match` does).
fn char_bytes(s: &str, at: usize) -> usize {
    s[at..].chars().next().map_or(1, char::len_utf8)
}

impl Tokenizer {
    fn expression<'s>(&self, re: &Expression, s: &'s str) -> Vec<&'s str> {
        let mut row = Vec::new();
        if char_len(s) < self.mincharnum {
            return row;
        }
        let (mut start, mut cache) = (0, None);
        while start <= s.len() {
            let Some((from, to)) = re.find_at(s, start, &mut cache) else { break };
            if char_len(&s[from..to]) >= self.mincharnum {
                row.push(&s[from..to]);
                start = to;
                if from == to {
                    start += char_bytes(s, from);
                }
            } else {
                // a match too short is skipped one character at a time, so a later, longer one can start inside it
                start = from + char_bytes(s, from);
            }
        }
        row
    }

    fn separators<'s>(&self, seps: &[Regex], s: &'s str) -> Vec<&'s str> {
        let mut row = vec![s];
        for sep in seps {
            let mut tokens = Vec::new();
            for text in &row {
                let mut start = 0;
                loop {
                    let found = if start <= text.len() { sep.find_at(text, start) } else { None };
                    let Some(m) = found else {
                        if start < text.len() && char_len(&text[start..]) >= self.mincharnum {
                            tokens.push(&text[start..]);
                        }
                        break;
                    };
                    if char_len(&text[start..m.start()]) >= self.mincharnum {
                        tokens.push(&text[start..m.start()]);
                    }
                    start = if m.is_empty() { m.start() + char_bytes(text, m.start()) } else { m.end() };
                }
            }
            if tokens.is_empty() {
                return tokens;
            }
            row = tokens;
        }
        row
    }

    /// One text's slot of the output, as onnxruntime lays it out: the start marker, the tokens, the end marker,
    /// then `pads` pad values.
    fn slot<'a>(&'a self, tokens: &'a [&'a str], pads: usize) -> impl Iterator<Item = &'a str> {
        let (start, end) = if self.mark { (Some("\u{2}"), Some("\u{3}")) } else { (None, None) };
        start.into_iter().chain(tokens.iter().copied()).chain(end).chain(std::iter::repeat_n(self.pad.as_str(), pads))
    }

    fn tokens<'s>(&self, s: &'s str) -> Vec<&'s str> {
        match &self.split {
            Split::Chars => s.char_indices().map(|(i, c)| &s[i..i + c.len_utf8()]).collect(),
            Split::Separators(seps) => self.separators(seps, s),
            Split::Expression(re) => self.expression(re, s),
        }
    }
}

impl Kernel for Tokenizer {
    fn name(&self) -> &'static str {
        "MlambdaTokenizer"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        rank_1_or_2(&self.node, "Tokenizer", inputs[0].shape)?;
        ensure!(inputs[0].dt == DatumType::String, "node {:?} (Tokenizer): input is not text", self.node);
        let mut shape: TVec<TDim> = inputs[0].shape.into();
        shape.push(self.width.to_dim());
        Ok((DatumType::String, shape))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let rows: Vec<Vec<&str>> = slice::<String>(x)?.iter().map(|s| self.tokens(s)).collect();
        let most = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut shape = x.shape().to_vec();
        if most == 0 {
            shape.push(0);
            return tensor_of::<String>(&shape, vec![]);
        }
        let width = most + if self.mark { 2 } else { 0 };
        let mut out = Vec::with_capacity(rows.len() * width);
        for row in &rows {
            out.extend(self.slot(row, most - row.len()).map(str::to_string));
        }
        shape.push(width);
        tensor_of(&shape, out)
    }
}

// ---------------------------------------------------------------- TfIdfVectorizer

#[derive(Debug, Clone, Copy, PartialEq)]
enum Weighting {
    Tf,
    Idf,
    TfIdf,
}

/// Integer n-gram → id. Looked up once per token and n-gram size, so the hash is the hot path: Fx, not SipHash
/// (the keys are the model's own vocabulary, not an attacker's).
type NgramMap<T> = HashMap<Vec<T>, usize, BuildHasherDefault<rustc_hash::FxHasher>>;

/// String n-gram → id, looked up by borrowed `&str`s: a row's tokens are never copied into keys.
#[derive(Clone, Default)]
struct StrPool(hashbrown::HashTable<(Vec<String>, usize)>);

impl std::fmt::Debug for StrPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StrPool({} n-grams)", self.0.len())
    }
}

fn hash_strs<'a>(items: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    for s in items {
        s.hash(&mut h);
    }
    h.finish()
}

impl StrPool {
    fn find(&self, gram: &[&str]) -> Option<usize> {
        let hash = hash_strs(gram.iter().copied());
        self.0.find(hash, |(k, _)| k.len() == gram.len() && k.iter().zip(gram).all(|(a, b)| a == b)).map(|(_, id)| *id)
    }

    /// False when the n-gram is there already.
    fn insert(&mut self, gram: &[String], id: usize) -> bool {
        let refs: Vec<&str> = gram.iter().map(String::as_str).collect();
        if self.find(&refs).is_some() {
            return false;
        }
        let hash = hash_strs(refs.iter().copied());
        self.0.insert_unique(hash, (gram.to_vec(), id), |(k, _)| hash_strs(k.iter().map(String::as_str)));
        true
    }
}

#[derive(Debug, Clone)]
enum Pool {
    Strings(StrPool),
    Ints(NgramMap<i64>),
}

#[derive(Debug, Clone)]
struct TfIdf {
    node: String,
    weighting: Weighting,
    min_gram: usize,
    max_gram: usize,
    max_skip: usize,
    /// n-gram id → output column
    indexes: Vec<usize>,
    /// By output column (onnxruntime reads them so, though there is one per n-gram).
    weights: Vec<f32>,
    pool: Pool,
    width: usize,
}

/// Splits the pool into its n-grams by `ngram_counts`, numbering every n-gram but keeping only the sizes in
/// `[min, max]`; `insert` is false for a repeated one.
fn pool_of<T>(
    node: &NodeProto,
    items: &[T],
    counts: &[i64],
    (min, max): (usize, usize),
    mut insert: impl FnMut(&[T], usize) -> bool,
) -> TractResult<()> {
    let mut id = 0;
    for (i, start) in counts.iter().enumerate() {
        let size = i + 1;
        let start = usize::try_from(*start).map_err(|_| err(node, "ngram_counts", "has a negative entry"))?;
        let end = counts.get(i + 1).map_or(Ok(items.len()), |e| usize::try_from(*e));
        let end = end.map_err(|_| err(node, "ngram_counts", "has a negative entry"))?;
        if end < start || end > items.len() || (end - start) % size != 0 {
            return Err(err(node, "ngram_counts", format!("does not cut the pool into whole {size}-grams")));
        }
        for gram in items[start..end].chunks(size) {
            if (min..=max).contains(&size) && !insert(gram, id) {
                return Err(err(node, "pool", format!("repeats a {size}-gram")));
            }
            id += 1;
        }
    }
    Ok(())
}

fn tfidf_of(node: &NodeProto) -> TractResult<TfIdf> {
    let weighting = match string_or(node, "mode", "")?.as_str() {
        "TF" => Weighting::Tf,
        "IDF" => Weighting::Idf,
        "TFIDF" => Weighting::TfIdf,
        other => return Err(err(node, "mode", format!("is {other:?}; TF, IDF or TFIDF"))),
    };
    let attr = |name: &str| -> TractResult<usize> {
        let v = node.get_attr_opt::<i64>(name)?.ok_or_else(|| err(node, name, "is missing"))?;
        usize::try_from(v).map_err(|_| err(node, name, "must not be negative"))
    };
    let (min_gram, max_gram, max_skip) = (attr("min_gram_length")?, attr("max_gram_length")?, attr("max_skip_count")?);
    let counts = ints(node, "ngram_counts")?;
    if min_gram == 0 || max_gram < min_gram || max_gram > counts.len() {
        return Err(err(node, "max_gram_length", "and `min_gram_length` do not fit `ngram_counts`"));
    }
    let indexes: Vec<usize> = ints(node, "ngram_indexes")?
        .iter()
        .map(|i| usize::try_from(*i))
        .collect::<Result<_, _>>()
        .map_err(|_| err(node, "ngram_indexes", "has a negative entry"))?;
    let width = indexes.iter().max().map(|m| m + 1).ok_or_else(|| err(node, "ngram_indexes", "is empty"))?;
    let weights = floats(node, "weights")?;
    if !weights.is_empty() && weights.len() != indexes.len() {
        return Err(err(node, "weights", "must have one entry per n-gram"));
    }
    let texts = strings(node, "pool_strings")?;
    let sizes = (min_gram, max_gram);
    let pool = if texts.is_empty() {
        let mut pool = NgramMap::default();
        pool_of(node, ints(node, "pool_int64s")?, counts, sizes, |g, id| pool.insert(g.to_vec(), id).is_none())?;
        Pool::Ints(pool)
    } else {
        let mut pool = StrPool::default();
        pool_of(node, &texts, counts, sizes, |g, id| pool.insert(g, id))?;
        Pool::Strings(pool)
    };
    let ids = match &pool {
        Pool::Strings(p) => p.0.iter().map(|(_, id)| *id).max(),
        Pool::Ints(p) => p.values().max().copied(),
    };
    if ids.is_some_and(|id| id >= indexes.len()) {
        return Err(err(node, "ngram_indexes", "has fewer entries than the pool has n-grams"));
    }
    Ok(TfIdf { node: node.name.clone(), weighting, min_gram, max_gram, max_skip, indexes, weights, pool, width })
}

fn tfidf_vectorizer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((KernelOp::boxed(tfidf_of(node)?), vec![]))
}

impl TfIdf {
    /// Counts one row's n-grams into `counts` (its output columns), the way onnxruntime walks them: 1-grams
    /// once, then for each skip distance every start, growing the n-gram one item at a time.
    fn count_row<T: Copy>(&self, find: impl Fn(&[T]) -> Option<usize>, row: &[T], counts: &mut [u32]) {
        let hit = |gram: &[T], counts: &mut [u32]| {
            if let Some(id) = find(gram) {
                counts[self.indexes[id]] += 1;
            }
        };
        let mut first = self.min_gram;
        if first == 1 {
            for item in row {
                hit(std::slice::from_ref(item), counts);
            }
            first = 2;
            if first > self.max_gram {
                return;
            }
        }
        // without skips an n-gram is a slice of the row: looked up as it is, nothing copied
        for start in 0..row.len() {
            if start + first > row.len() {
                break;
            }
            for size in first..=self.max_gram.min(row.len() - start) {
                hit(&row[start..start + size], counts);
            }
        }
        let mut gram: Vec<T> = Vec::with_capacity(self.max_gram);
        for distance in 2..=self.max_skip + 1 {
            for start in 0..row.len() {
                if start + distance * (first - 1) >= row.len() {
                    break;
                }
                gram.clear();
                let mut at = start;
                let mut size = 1;
                while size <= self.max_gram && at < row.len() {
                    gram.push(row[at]);
                    if size >= first {
                        hit(&gram, counts);
                    }
                    size += 1;
                    at += distance;
                }
            }
        }
    }

    /// Counts rows of string tokens (borrowed), one row at a time into its slice of `counts`.
    fn count_strs<'a>(&self, rows: impl Iterator<Item = &'a [&'a str]>, counts: &mut [u32]) -> TractResult<()> {
        let pool = self.str_pool()?;
        for (r, row) in rows.enumerate() {
            self.count_row(|g| pool.find(g), row, &mut counts[r * self.width..(r + 1) * self.width]);
        }
        Ok(())
    }

    fn str_pool(&self) -> TractResult<&StrPool> {
        match &self.pool {
            Pool::Strings(pool) => Ok(pool),
            Pool::Ints(_) => bail!("node {:?} (TfIdfVectorizer): text input for an integer pool", self.node),
        }
    }

    /// `counts` weighted as `mode` asks, in `shape`. A zero count weighs 0 in every mode, and a text's row is
    /// mostly zeros: only the counted n-grams are written.
    /// Each written value is then multiplied by `scale[col]` when `scale` is not empty (the absorbed `Mul`, in
    /// the same float32 operation it did).
    fn weighted(&self, counts: &[u32], shape: &[usize], scale: &[f32]) -> TractResult<Tensor> {
        let w = &self.weights;
        let mut out = vec![0f32; counts.len()];
        if self.width > 0 {
            for (row, o) in counts.chunks_exact(self.width).zip(out.chunks_exact_mut(self.width)) {
                for (col, &f) in row.iter().enumerate().filter(|(_, f)| **f > 0) {
                    o[col] = match self.weighting {
                        Weighting::Tf => f as f32,
                        Weighting::Idf if w.is_empty() => 1.0,
                        Weighting::Idf => w[col],
                        Weighting::TfIdf if w.is_empty() => f as f32,
                        Weighting::TfIdf => f as f32 * w[col],
                    };
                    if let Some(c) = scale.get(col) {
                        o[col] *= c;
                    }
                }
            }
        }
        tensor_of(shape, out)
    }
}

impl Kernel for TfIdf {
    fn name(&self) -> &'static str {
        "MlambdaTfIdfVectorizer"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let shape = inputs[0].shape;
        ensure!(
            shape.len() <= 2,
            "node {:?} (TfIdfVectorizer): input has rank {}; onnxruntime takes [C] or [N, C]",
            self.node,
            shape.len()
        );
        let mut out: TVec<TDim> = if shape.len() == 2 { tvec!(shape[0].clone()) } else { tvec!() };
        out.push(self.width.to_dim());
        Ok((DatumType::F32, out))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let (rows, width) = match x.shape() {
            [n, c] => (*n, *c),
            [c] => (1, *c),
            _ => (1, 1),
        };
        let mut counts = vec![0u32; rows * self.width];
        if width > 0 {
            match (&self.pool, x.datum_type()) {
                (Pool::Strings(_), DatumType::String) => {
                    let refs: Vec<&str> = slice::<String>(x)?.iter().map(String::as_str).collect();
                    self.count_strs(refs.chunks(width), &mut counts)?;
                }
                (Pool::Ints(pool), DatumType::I64 | DatumType::I32) => {
                    let x = x.cast_to::<i64>()?;
                    for (r, row) in slice::<i64>(&x)?.chunks(width).enumerate() {
                        let find = |g: &[i64]| pool.get(g).copied();
                        self.count_row(find, row, &mut counts[r * self.width..(r + 1) * self.width]);
                    }
                }
                (_, dt) => {
                    bail!("node {:?} (TfIdfVectorizer): input of type {dt:?} does not match its pool", self.node)
                }
            }
        }
        let shape: Vec<usize> = if x.rank() == 2 { vec![rows, self.width] } else { vec![self.width] };
        self.weighted(&counts, &shape, &[])
    }
}

// ---------------------------------------------------------------- Tokenizer → TfIdfVectorizer, fused

/// The op a `Tokenizer` (through a `Flatten`) feeding a `TfIdfVectorizer` becomes at load ([`fuse`]): the same
/// counts, with each row's tokens, markers and padding borrowed instead of materialized as a string tensor
/// (a batch is padded to its longest text, so one long row costs every row that many strings otherwise).
const FUSED: &str = "MlambdaTokenizeTfIdf";

#[derive(Debug, Clone)]
struct TokenizeTfIdf {
    tokenizer: Tokenizer,
    tfidf: TfIdf,
    /// Some n-gram made only of padding is in the pool, so every pad must be counted. Almost never: then a
    /// row's padding is walked only as far as an n-gram from its last token reaches, since n-grams of pads
    /// alone count nothing.
    pads_count: bool,
    /// The per-column constant of a `Mul` that read the counts and nothing else (skl2onnx's IDF weights for a
    /// `TfidfVectorizer`), absorbed at load ([`fuse`]); empty when there was none.
    scale: Vec<f32>,
}

fn tokenize_tfidf(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let (tokenizer, tfidf) = (tokenizer_of(ctx, node)?, tfidf_of(node)?);
    let pads_count = match &tfidf.pool {
        Pool::Strings(pool) => (1..=tfidf.max_gram).any(|k| pool.find(&vec![tokenizer.pad.as_str(); k]).is_some()),
        Pool::Ints(_) => bail!("node {:?} (TfIdfVectorizer): an integer pool cannot count text tokens", node.name),
    };
    let scale = floats(node, SCALE)?;
    ensure!(
        scale.is_empty() || scale.len() == tfidf.width,
        "node {:?}: {} IDF weights for {} columns",
        node.name,
        scale.len(),
        tfidf.width
    );
    Ok((KernelOp::boxed(TokenizeTfIdf { tokenizer, tfidf, pads_count, scale }), vec![]))
}

impl Kernel for TokenizeTfIdf {
    fn name(&self) -> &'static str {
        FUSED
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let shape = inputs[0].shape;
        ensure!(inputs[0].dt == DatumType::String, "node {:?} (Tokenizer): input is not text", self.tokenizer.node);
        // [C] → one row per string; [N, C] → one row per N, its C texts side by side (Flatten's rows)
        let rows = match shape {
            [c] => c.clone(),
            [n, _] => n.clone(),
            _ => bail!(
                "node {:?} (Tokenizer): input has rank {}; onnxruntime takes [C] or [N, C]",
                self.tokenizer.node,
                shape.len()
            ),
        };
        Ok((DatumType::F32, tvec!(rows, self.tfidf.width.to_dim())))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let texts = slice::<String>(x)?;
        let per_row = if x.rank() == 2 { x.shape()[1] } else { 1 };
        let rows = texts.len() / per_row.max(1);
        let tokens: Vec<Vec<&str>> = texts.iter().map(|s| self.tokenizer.tokens(s)).collect();
        let most = tokens.iter().map(Vec::len).max().unwrap_or(0);
        let width = self.tfidf.width;
        let mut counts = vec![0u32; rows * width];
        if most > 0 {
            let pool = self.tfidf.str_pool()?;
            // how far past its last token an n-gram can reach: (size - 1) steps of (skips + 1)
            let reach = (self.tfidf.max_gram - 1) * (self.tfidf.max_skip + 1);
            // one row as the Flatten after the Tokenizer lays it out: its texts' slots side by side
            let mut line: Vec<&str> = Vec::new();
            for (r, texts) in tokens.chunks(per_row.max(1)).enumerate() {
                line.clear();
                for (i, row) in texts.iter().enumerate() {
                    let pads = most - row.len();
                    let last = i + 1 == texts.len();
                    let pads = if last && !self.pads_count { pads.min(reach) } else { pads };
                    line.extend(self.tokenizer.slot(row, pads));
                }
                self.tfidf.count_row(|g| pool.find(g), &line, &mut counts[r * width..(r + 1) * width]);
            }
        }
        self.tfidf.weighted(&counts, &[rows, self.tfidf.width], &self.scale)
    }
}

fn attr_of<'a>(node: &'a NodeProto, name: &str) -> Option<&'a tract_onnx::pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// Rewrites every `Tokenizer` → (`Flatten` axis 1) → `TfIdfVectorizer` chain whose links feed nothing else into
/// one [`FUSED`] node carrying both nodes' attributes (their names do not overlap). Other graphs are untouched.
pub fn fuse(graph: &mut tract_onnx::pb::GraphProto) {
    let consumers = |g: &tract_onnx::pb::GraphProto, name: &str| -> usize {
        g.node.iter().flat_map(|n| n.input.iter()).filter(|i| *i == name).count()
            + g.output.iter().filter(|o| o.name == name).count()
    };
    loop {
        let found = graph.node.iter().enumerate().find_map(|(ti, t)| {
            if t.op_type != "Tokenizer" || consumers(graph, t.output.first()?) != 1 {
                return None;
            }
            let out = t.output.first()?;
            let (fi, f) = graph.node.iter().enumerate().find(|(_, n)| n.input.first() == Some(out))?;
            let axis_one = attr_of(f, "axis").is_none_or(|a| a.i == 1);
            if f.op_type != "Flatten" || !axis_one || consumers(graph, f.output.first()?) != 1 {
                return None;
            }
            let flat = f.output.first()?;
            let (vi, _) = graph
                .node
                .iter()
                .enumerate()
                .find(|(_, n)| n.op_type == "TfIdfVectorizer" && n.input.first() == Some(flat))?;
            Some((ti, fi, vi))
        });
        let Some((ti, fi, vi)) = found else { return };
        let mut fused = graph.node[ti].clone();
        fused.op_type = FUSED.to_string();
        fused.domain = String::new();
        fused.attribute.extend(graph.node[vi].attribute.iter().cloned());
        fused.output = graph.node[vi].output.clone();
        fused.name = format!("{}+{}", graph.node[ti].name, graph.node[vi].name);
        graph.node[ti] = fused;
        let (first, second) = if fi > vi { (fi, vi) } else { (vi, fi) };
        graph.node.remove(first);
        graph.node.remove(second);
        absorb_scale(graph, ti - [first, second].iter().filter(|r| **r < ti).count());
    }
}

/// The attribute a fused node carries an absorbed `Mul`'s constant in (ours: no ONNX op has it).
const SCALE: &str = "mlambda_scale";

/// Folds the `Mul` by a float initializer of shape `[width]` or `[1, width]` that alone reads fused node
/// `at`'s counts into that node (`SCALE`), so the mostly-zero `[N, width]` matrix is not multiplied column by
/// column; left alone when anything else reads the counts or the constant is not that shape.
fn absorb_scale(graph: &mut tract_onnx::pb::GraphProto, at: usize) {
    let Some(out) = graph.node.get(at).and_then(|n| n.output.first()).cloned() else { return };
    let readers: Vec<usize> = (0..graph.node.len()).filter(|&i| graph.node[i].input.contains(&out)).collect();
    let [mi] = readers.as_slice() else { return };
    if graph.output.iter().any(|o| o.name == out)
        || graph.node[*mi].op_type != "Mul"
        || graph.node[*mi].input.len() != 2
    {
        return;
    }
    let other = graph.node[*mi].input.iter().find(|i| **i != out).cloned();
    let Some(constant) = other.and_then(|name| graph.initializer.iter().find(|t| t.name == name)) else { return };
    let per_column = match constant.dims.as_slice() {
        [w] | [1, w] => usize::try_from(*w).ok(),
        _ => None,
    };
    let Some(values) = float_values(constant).filter(|v| Some(v.len()) == per_column) else { return };
    let mul = graph.node.remove(*mi);
    let node = &mut graph.node[if *mi < at { at - 1 } else { at }];
    node.output = mul.output;
    node.attribute.push(tract_onnx::pb::AttributeProto {
        name: SCALE.into(),
        r#type: tract_onnx::pb::attribute_proto::AttributeType::Floats as i32,
        floats: values,
        ..Default::default()
    });
}

/// A float32 initializer's values, from `float_data` or little-endian `raw_data`.
fn float_values(t: &tract_onnx::pb::TensorProto) -> Option<Vec<f32>> {
    if t.data_type != tract_onnx::pb::tensor_proto::DataType::Float as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        let chunks = t.raw_data.chunks_exact(4);
        if !chunks.remainder().is_empty() {
            return None;
        }
        return Some(chunks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
    }
    Some(t.float_data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(exp: &str, mincharnum: usize) -> Tokenizer {
        let split = match exp {
            "." => Split::Chars,
            _ => Split::Expression(Expression::new(exp).unwrap()),
        };
        Tokenizer {
            node: "t".into(),
            mark: false,
            pad: "#".into(),
            mincharnum,
            split,
            width: SymbolScope::default().sym("w"),
        }
    }

    #[test]
    fn case_changes_map_one_code_point_to_one_as_glibc_does() {
        assert_eq!(with_case("ÉTÉ Café ΣΊΣΥΦΟΣ", Case::Lower), "été café σίσυφοσ");
        assert_eq!(with_case("İstanbul", Case::Lower), "istanbul");
        assert_eq!(with_case("straße ǆ", Case::Upper), "STRAßE Ǆ");
        assert_eq!(with_case("日本語 🎉", Case::Upper), "日本語 🎉");
    }

    #[test]
    fn re2_perl_classes_stay_ascii() {
        let t = tokenizer(r"\w+", 1);
        assert_eq!(t.tokens("café naïve_1 日本"), vec!["caf", "na", "ve_1"]);
        let t = tokenizer(r"\b\w\w+\b", 1);
        assert_eq!(t.tokens("an été ok"), vec!["an", "ok"]);
    }

    #[test]
    fn alternations_take_the_longest_match_as_re2_does() {
        // each expected list is onnxruntime 1.32.0's Tokenizer on the same text (leftmost-longest, RE2)
        assert_eq!(tokenizer("a|ab", 1).tokens("abc ab a"), vec!["ab", "ab", "a"]);
        assert_eq!(tokenizer("[a-z]+|[a-z]+[0-9]+", 1).tokens("abc123 de4 f"), vec!["abc123", "de4", "f"]);
        assert_eq!(tokenizer(r"\w+|\w+-\w+", 1).tokens("state-of-the-art x-y"), vec!["state-of", "the-art", "x-y"]);
        assert_eq!(tokenizer("ab|abcd|abc", 1).tokens("abcde abc ab"), vec!["abcd", "abc", "ab"]);
        assert_eq!(tokenizer("(?:ab|abcd|abc)", 3).tokens("xabcdx"), vec!["abcd"]);
        assert_eq!(tokenizer("do|don't|not", 1).tokens("don't do not"), vec!["don't", "do", "not"]);
    }

    #[test]
    fn a_match_under_mincharnum_is_skipped_a_character_at_a_time() {
        let t = tokenizer("[a-z]+", 3);
        assert_eq!(t.tokens("ab cdef g hij"), vec!["cdef", "hij"]);
        assert!(t.tokens("ab").is_empty(), "shorter than mincharnum as a whole: no tokens");
        assert_eq!(tokenizer(".", 1).tokens("a日🎉"), vec!["a", "日", "🎉"]);
    }

    #[test]
    fn separators_cut_in_order_and_drop_short_pieces() {
        let seps = vec![Regex::new(" ").unwrap(), Regex::new(",").unwrap()];
        let t = Tokenizer { split: Split::Separators(seps), mincharnum: 2, ..tokenizer(".", 1) };
        assert_eq!(t.tokens("ab,cd e,fgh"), vec!["ab", "cd", "fgh"]);
        assert!(t.tokens(" , ").is_empty());
    }

    #[test]
    fn rows_are_padded_to_the_longest_and_marked() {
        let mut t = tokenizer("[a-z]+", 1);
        let x = tensor_of(&[2], vec!["ab cd".to_string(), "e".to_string()]).unwrap();
        let y = t.eval(&[&x]).unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(slice::<String>(&y).unwrap(), &["ab", "cd", "e", "#"]);
        t.mark = true;
        let y = t.eval(&[&x]).unwrap();
        assert_eq!(slice::<String>(&y).unwrap(), &["\u{2}", "ab", "cd", "\u{3}", "\u{2}", "e", "\u{3}", "#"]);
        let empty = tensor_of(&[2], vec![String::new(), "  ".to_string()]).unwrap();
        assert_eq!(t.eval(&[&empty]).unwrap().shape(), &[2, 0]);
    }

    fn tfidf(weighting: Weighting, max_skip: usize, weights: Vec<f32>) -> TfIdf {
        // 1-grams a, b; 2-grams (a b), (b a)
        let items: Vec<String> = ["a", "b", "a", "b", "b", "a"].iter().map(|s| s.to_string()).collect();
        let node = NodeProto::default();
        let mut pool = StrPool::default();
        pool_of(&node, &items, &[0, 2], (1, 2), |g, id| pool.insert(g, id)).unwrap();
        TfIdf {
            node: "v".into(),
            weighting,
            min_gram: 1,
            max_gram: 2,
            max_skip,
            indexes: vec![0, 1, 2, 3],
            weights,
            pool: Pool::Strings(pool),
            width: 4,
        }
    }

    fn run(v: &TfIdf, rows: &[&[&str]]) -> Vec<f32> {
        let width = rows[0].len();
        let data: Vec<String> = rows.iter().flat_map(|r| r.iter().map(|s| s.to_string())).collect();
        let x = tensor_of(&[rows.len(), width], data).unwrap();
        slice::<f32>(&v.eval(&[&x]).unwrap()).unwrap().to_vec()
    }

    #[test]
    fn ngrams_and_skip_grams_are_counted_as_onnxruntime_counts_them() {
        let v = tfidf(Weighting::Tf, 0, vec![]);
        assert_eq!(run(&v, &[&["a", "b", "a", "#"]]), vec![2.0, 1.0, 1.0, 1.0]);
        // a skip of one more: (a _ a) is no pool n-gram, (a b) across "a x b" now is
        let v = tfidf(Weighting::Tf, 1, vec![]);
        assert_eq!(run(&v, &[&["a", "x", "b", "#"]]), vec![1.0, 1.0, 1.0, 0.0]);
        let v = tfidf(Weighting::Idf, 0, vec![0.5, 1.5, 2.5, 3.5]);
        assert_eq!(run(&v, &[&["a", "a", "a"], &["b", "b", "x"]]), vec![0.5, 0.0, 0.0, 0.0, 0.0, 1.5, 0.0, 0.0]);
        let v = tfidf(Weighting::TfIdf, 0, vec![0.5, 1.5, 2.5, 3.5]);
        assert_eq!(run(&v, &[&["a", "a", "b"]]), vec![1.0, 1.5, 2.5, 0.0]);
    }

    #[test]
    fn a_pool_that_does_not_cut_into_whole_ngrams_is_refused() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let e = pool_of(&NodeProto::default(), &items, &[0, 2], (1, 2), |_, _| true).unwrap_err();
        assert!(e.to_string().contains("whole 2-grams"), "{e}");
        let mut pool = StrPool::default();
        let twice: Vec<String> = ["a", "a"].iter().map(|s| s.to_string()).collect();
        let e = pool_of(&NodeProto::default(), &twice, &[0], (1, 1), |g, id| pool.insert(g, id)).unwrap_err();
        assert!(e.to_string().contains("repeats a 1-gram"), "{e}");
    }

    fn node(op: &str, input: &str, output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: vec![input.into()],
            output: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_tokenizer_flatten_tfidf_chain_is_fused_and_a_shared_link_is_not() {
        let chain = || {
            vec![
                node("StringNormalizer", "text", "a"),
                node("Tokenizer", "a", "b"),
                node("Flatten", "b", "c"),
                node("TfIdfVectorizer", "c", "d"),
                node("Mul", "d", "e"),
            ]
        };
        let mut g = tract_onnx::pb::GraphProto { node: chain(), ..Default::default() };
        fuse(&mut g);
        let ops: Vec<(&str, &str, &str)> =
            g.node.iter().map(|n| (n.op_type.as_str(), n.input[0].as_str(), n.output[0].as_str())).collect();
        assert_eq!(ops, vec![("StringNormalizer", "text", "a"), (FUSED, "a", "d"), ("Mul", "d", "e")]);
        // a Mul by a per-column constant is absorbed into the fused node; by anything else it is not
        let idf = |dims: Vec<i64>, n: usize| tract_onnx::pb::TensorProto {
            name: "idf".into(),
            dims,
            data_type: tract_onnx::pb::tensor_proto::DataType::Float as i32,
            float_data: vec![2.0; n],
            ..Default::default()
        };
        let mut nodes = chain();
        nodes[4].input.push("idf".into());
        let mut g = tract_onnx::pb::GraphProto {
            node: nodes.clone(),
            initializer: vec![idf(vec![1, 3], 3)],
            ..Default::default()
        };
        fuse(&mut g);
        assert_eq!((g.node.len(), g.node[1].op_type.as_str(), g.node[1].output[0].as_str()), (2, FUSED, "e"));
        let scale = g.node[1].attribute.iter().find(|a| a.name == SCALE).map(|a| a.floats.clone());
        assert_eq!(scale, Some(vec![2.0; 3]));
        let mut g =
            tract_onnx::pb::GraphProto { node: nodes, initializer: vec![idf(vec![3, 1], 3)], ..Default::default() };
        fuse(&mut g);
        assert_eq!(g.node.last().map(|n| n.op_type.as_str()), Some("Mul"));
        // the tokens feed something else too: left as they are
        let mut nodes = chain();
        nodes.push(node("Identity", "b", "f"));
        let mut g = tract_onnx::pb::GraphProto { node: nodes, ..Default::default() };
        fuse(&mut g);
        assert!(g.node.iter().all(|n| n.op_type != FUSED), "{:?}", g.node);
    }
}
